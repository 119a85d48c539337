"""Library models from YAML alone: torchvision and timm networks on image files.

They run `trainer` with the Python of the venv that runs pytest, which needs torchvision
built for its torch (and timm): `make install VISION=1` installs the matching pair and the
vision extra; without them, or with a torchvision built for another torch, they are skipped
with the reason.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import SUBPROCESS_TIMEOUT
from tests.files_data import write_digit_pngs

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _why_no_torchvision() -> str | None:
    """Why torchvision cannot run in this venv, or None; imported in a child process, so
    that a torchvision of another torch fails there, not in the test process."""
    if importlib.util.find_spec("torchvision") is None:
        return f"no torchvision in this venv ({sys.prefix}): make install VISION=1"
    check = subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True,
                           text=True, timeout=SUBPROCESS_TIMEOUT)  # fmt: skip
    if check.returncode != 0:
        error = (check.stderr.strip().splitlines() or ["no message"])[-1]
        return (f"torchvision does not load beside this venv's torch ({error}): "
                "make install VISION=1 installs a matching pair")  # fmt: skip
    return None


@pytest.fixture(scope="module", autouse=True)
def _torchvision() -> None:
    """Checked when a test of this file first runs, not at collection: `make test`, which
    deselects them, starts no child process for it."""
    why = _why_no_torchvision()
    if why is not None:
        pytest.skip(why)


# 8x8 digit PNGs resized once (cached) to 32x32; ResNet-18 with random weights.
IMAGES = (
    "dataset=ImageFiles", "dataset.path=images", "batch_size=32", "progress_bar=false",
    "learning_rate=0.003",
)  # fmt: skip


def trainer(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "sweeptrainer", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)  # fmt: skip


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_resnet18_by_name_with_a_torchvision_augmentation_workers_and_inference(tmp_path):
    write_digit_pngs(tmp_path / "images", n=240)
    _write(tmp_path / "conf/augmentation/TVCrop.yaml", """\
id: TVCrop
_target_: sweeptrainer.data.augmentation.Augmentation
steps:
  - _target_: torchvision.transforms.v2.RandomCrop
    size: 32
    padding: 4
""")  # fmt: skip
    result = trainer(tmp_path, *IMAGES, "model=TorchVision", "augmentation=TVCrop",
                     "num_workers=2", "iterations=3")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (run,) = (tmp_path / "results/default/training").iterdir()
    assert "TorchVision" in run.name and "TVCrop" in run.name
    metrics = pd.read_csv(run / "metrics.csv")
    assert metrics.iteration.tolist() == [1, 2, 3]
    # it learns (dev accuracy after 3 epochs of 168 images swings too much between library
    # versions and devices to assert on: ResNet-18's batch norm on so little data)
    assert metrics.train_loss.iloc[-1] < 0.8 * metrics.train_loss.iloc[0]
    assert set(yaml.safe_load((run / "results.yaml").read_text())["test"]) >= {"accuracy", "f1"}

    outputs = pd.read_csv(run / "outputs/test.csv")
    for name in outputs.file:
        (tmp_path / "new" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "images" / name, tmp_path / "new" / name)
    result = trainer(tmp_path, "inference", str(run), "new", "predictions.csv")
    assert result.returncode == 0, result.stderr
    predicted = pd.read_csv(tmp_path / "predictions.csv").set_index("file").loc[outputs.file]
    assert (predicted.prediction.to_numpy() == outputs.prediction.to_numpy()).all()
    scores = [c for c in outputs.columns if c.startswith("score_")]
    # inference runs on the CPU; a run trained on a GPU scored its test set with TF32
    # convolutions there (seen on an H100: the same predictions, scores within 1e-3)
    np.testing.assert_allclose(predicted[scores].to_numpy(), outputs[scores].to_numpy(), atol=2e-3)


def test_resnet18_as_a_plain_target_and_a_clear_error_without_num_classes(tmp_path):
    write_digit_pngs(tmp_path / "images", n=80)
    _write(tmp_path / "conf/model/ResNet18.yaml", """\
id: ResNet18
_target_: torchvision.models.resnet18
num_classes: 4
""")  # fmt: skip
    rgb = (*IMAGES, "dataset.image_mode=RGB", "dataset.transform.0.mean=[0.5,0.5,0.5]",
           "dataset.transform.0.std=[0.5,0.5,0.5]", "model=ResNet18")  # fmt: skip
    assert trainer(tmp_path, "validate", *rgb).returncode == 0
    result = trainer(tmp_path, *rgb, "iterations=1")
    assert result.returncode == 0, result.stdout + result.stderr
    bad = trainer(tmp_path, *rgb, "~model.num_classes", "iterations=1", "experiment_id=bad")
    assert bad.returncode == 2
    assert "gives outputs of shape (2, 1000) for 2 samples" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "results/bad").exists()


def test_timm_and_local_pretrained_weights(tmp_path):
    if importlib.util.find_spec("timm") is None:
        pytest.skip("no timm in this venv: make install VISION=1")
    write_digit_pngs(tmp_path / "images", n=80)
    result = trainer(tmp_path, *IMAGES, "model=Timm", "model.name=resnet18", "iterations=1")
    assert result.returncode == 0, result.stdout + result.stderr
    # ImageNet-shaped weights (3 channels, 1000 classes) into a grey 4-class network
    made = subprocess.run(
        [sys.executable, "-c", "import torch, torchvision; "
         "torch.save(torchvision.models.resnet18().state_dict(), 'imagenet_like.pt')"],
        cwd=tmp_path, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    result = trainer(tmp_path, *IMAGES, "model=TorchVision", "model.pretrained=imagenet_like.pt",
                     "iterations=1", "experiment_id=pretrained")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pretrained weights: 2 tensor(s) kept their new values (fc.weight, fc.bias)" in (
        result.stdout
    )
