"""Issue 34: the data path's bad inputs, each one clear line (mixed sample rates and channels
are in test_file_shapes.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import run_dirs
from tests.files_data import AUDIO, IMAGES, write_digit_pngs, write_tone_wavs


def test_duplicate_rows_are_said_once_with_the_count(trainer, tmp_path):
    write_tone_wavs(tmp_path / "clips", n_per_class=4)
    table = pd.read_csv(tmp_path / "clips/train.csv")
    pd.concat([table, table.iloc[[1, 2]]]).to_csv(tmp_path / "clips/train.csv", index=False)
    result = trainer(*AUDIO, "iterations=1")
    assert result.code == 0, result.err
    said = (result.out + result.err).count("has 2 duplicate row(s)")
    assert said == 1, result.out + result.err
    assert f"(row {len(table) + 1} repeats row 2)" in result.out + result.err
    assert len(run_dirs(tmp_path)) == 1


NOISE = ("augmentation=Noise", "iterations=1")
CROP = (*IMAGES, "augmentation=RandomCrop", "iterations=1")
BAD_STEPS = [
    # (overrides, the message): each step's arguments are checked when it is built
    ((*NOISE, "+augmentation.steps.0.p=-1"), "augmentation.steps.0.p: expected a probability"),
    ((*NOISE, "+augmentation.steps.0.p=2"), "augmentation.steps.0.p: expected a probability"),
    ((*NOISE, "augmentation.steps.0.min_snr_db=40"), "min_snr_db: expected at most max_snr_db"),
    ((*NOISE, "augmentation.steps.0.min_snr_db=abc"), "min_snr_db: expected a number, got 'abc'"),
    ((*CROP, "augmentation.steps.0.padding=-3"), "augmentation.steps.0.padding: expected an int"),
    ((*CROP, "+augmentation.steps.0.size=20"), "augmentation.steps.0.size: expected at most the"),
    ((*IMAGES, "iterations=1", "dataset.transform=[{_target_: sweeptrainer.data.transforms"
      ".Resize, size: 0}]"), "dataset.transform.0.size: expected a positive integer"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "message"), BAD_STEPS, ids=[m for _, m in BAD_STEPS])
def test_a_step_argument_out_of_range_is_named_when_built(trainer, tmp_path, overrides, message):
    """Not accepted, and not blamed on a data file at the first batch: exit 2, one line
    naming the key, nothing under results/."""
    write_digit_pngs(tmp_path / "images", n=40)
    result = trainer(*overrides)
    assert result.code == 2, result.out + result.err
    assert message in result.err and result.err.count("\n") == 1, result.err
    assert "batch cannot be made" not in result.err
    assert not (tmp_path / "results").exists()
