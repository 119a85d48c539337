"""Issue 34: the data path's bad inputs, each one clear line (mixed sample rates and channels
are in test_file_shapes.py)."""

from __future__ import annotations

import numpy as np
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


STEP = '''
class Boom:
    """Fails on the one image whose top-left pixel is 7/255."""

    def __call__(self, x):
        if abs(float(x[0, 0, 0]) * 255 - 7) < 0.5:
            raise ValueError("boom: this image is marked")
        return x
'''


@pytest.mark.parametrize("workers", [0, 2])
def test_a_step_failing_in_a_worker_is_the_same_one_line(trainer, tmp_path, workers):
    """A step that raises mid-run on one file: the same line with DataLoader workers as
    without, naming the file and the step (not 'Caught ... in DataLoader worker process 0'
    and the worker's traceback)."""
    from PIL import Image

    write_digit_pngs(tmp_path / "images", n=40)
    (tmp_path / "mysteps.py").write_text(STEP)
    marked = pd.read_csv(tmp_path / "images/train.csv").file[5]
    pixels = np.asarray(Image.open(tmp_path / "images" / marked)).copy()
    pixels[0, 0] = 7
    Image.fromarray(pixels, "L").save(tmp_path / "images" / marked)
    result = trainer(
        *IMAGES,
        "iterations=1",
        f"num_workers={workers}",
        "+dataset.transform=[{_target_: mysteps.Boom}]",
    )
    assert result.code == 1, result.out + result.err
    text = result.out + result.err
    line = f"run failed: SampleError: {marked!r} (the train file 'train.csv' row 6): "
    assert line + "dataset.transform[0] (mysteps.Boom) failed: ValueError: boom" in text, text
    assert "Caught" not in text and "Traceback" not in text
