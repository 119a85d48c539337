"""Issue 34: the data path's bad inputs, each one clear line (mixed sample rates and channels
are in test_file_shapes.py)."""

from __future__ import annotations

import pandas as pd

from tests.conftest import run_dirs
from tests.files_data import AUDIO, write_tone_wavs


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
