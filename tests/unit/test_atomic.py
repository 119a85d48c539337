import pytest

from sweeptrainer.io.atomic import atomic_write, atomic_write_text


def test_replaces_content(tmp_path):
    path = tmp_path / "a" / "file.txt"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["file.txt"]


def test_failed_write_keeps_old_content_and_leaves_no_temp(tmp_path):
    path = tmp_path / "file.txt"
    atomic_write_text(path, "old")

    def broken(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, broken)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


def test_metrics_csv_round_trip_with_missing_values(tmp_path):
    import math

    import pandas as pd

    from sweeptrainer.io.run_dir import RunDir

    run = RunDir(tmp_path)
    rows = [{"iteration": 1, "dev_pcc": float("nan"), "train_loss": 0.1},
            {"iteration": 2, "dev_pcc": 0.25, "train_loss": 1 / 3}]  # fmt: skip
    run.write_metrics(rows, durable=False)
    back = run.read_metrics()
    assert list(back.columns) == ["iteration", "dev_pcc", "train_loss"]
    assert math.isnan(back.loc[0, "dev_pcc"]) and back.loc[1, "train_loss"] == 1 / 3
    assert back["iteration"].dtype == "int64" and isinstance(back, pd.DataFrame)
