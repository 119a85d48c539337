"""One run across processes (issue 32): evaluation is split between the processes and
gathered in sample order, so two gloo processes score and write what one process does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import SUBPROCESS_TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
# dropout off (the two sides then train the same weights); small inference batches, so the
# dev split (36 samples) is 9 batches in one process and 5 + 5 in two
RUN = ("dataset=Wine", "model.dropout=0.0", "iterations=2", "inference_batch_size=4",
       "progress_bar=false", "+callbacks.count._target_=tests.helpers.CountEvaluated",
       "+callbacks.count.folder=.")  # fmt: skip


def trainer(cwd: Path, *args: str, processes: int = 1) -> subprocess.CompletedProcess:
    launch = ["-m", "torch.distributed.run", f"--nproc_per_node={processes}"]
    return subprocess.run(
        [sys.executable, *(launch if processes > 1 else []), "-m", "sweeptrainer", *args],
        cwd=cwd, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


@pytest.mark.slow  # torchrun starts two processes (about 14 s)
def test_two_processes_split_the_evaluation_and_score_as_one(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = trainer(tmp_path / "one", *RUN)
    assert one.returncode == 0, one.stderr
    two = trainer(tmp_path / "two", *RUN, processes=2)
    assert two.returncode == 0, two.stdout + two.stderr
    alone = int((tmp_path / "one/evaluated.0").read_text())
    split = [int((tmp_path / f"two/evaluated.{r}").read_text()) for r in (0, 1)]
    assert split[0] + split[1] >= alone and max(split) < alone  # each did a part
    (a,), (b,) = ((tmp_path / side / "results/default/training").iterdir()
                  for side in ("one", "two"))  # fmt: skip
    ma, mb = (pd.read_csv(r / "metrics.csv").drop(columns="elapsed_s") for r in (a, b))
    pd.testing.assert_frame_equal(ma, mb, rtol=1e-5)
    for split_name in ("dev", "test"):
        oa, ob = (pd.read_csv(r / "outputs" / f"{split_name}.csv") for r in (a, b))
        pd.testing.assert_frame_equal(oa, ob, rtol=1e-5)
    ra, rb = (yaml.safe_load((r / "results.yaml").read_text()) for r in (a, b))
    assert ra["best_iteration"] == rb["best_iteration"]
    assert ra["test"] == pytest.approx(rb["test"], rel=1e-5)
    assert ra["dev"] == pytest.approx(rb["dev"], rel=1e-5)
