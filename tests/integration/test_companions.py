"""torchvision or torchaudio built for another torch (issue 33): the error names the two
versions and the release that matches, not "invalid config: RuntimeError: ..."."""

from __future__ import annotations

import sys

import pytest
import torch

from tests.conftest import TINY


@pytest.fixture
def broken_torchvision(tmp_path, monkeypatch):
    """A torchvision 0.99.0 whose import fails as one built for another torch does."""
    if "torchvision" in sys.modules:
        pytest.skip("a real torchvision is imported in this process")
    site = tmp_path / "site"
    (site / "torchvision").mkdir(parents=True)
    (site / "torchvision/__init__.py").write_text(
        'raise RuntimeError("operator torchvision::nms does not exist")\n'
    )
    meta = site / "torchvision-0.99.0.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: torchvision\nVersion: 0.99.0\n")
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("torchvision", None)


def test_a_torchvision_of_another_torch_is_named_with_the_fix(trainer, broken_torchvision):
    result = trainer("model=TorchVision", "model.name=resnet18", *TINY)
    assert result.code == 2
    minor, patch = (int(v) for v in torch.__version__.split("+")[0].split(".")[1:3])
    assert "torchvision failed to import (RuntimeError: operator torchvision::nms" in result.err
    fix = f"pip install 'torchvision==0.{minor + 15}.{patch}'"
    assert f"and torchvision 0.99.0 do not match; {fix}" in result.err
    assert result.err.strip().count("\n") == 0  # one line
