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


def test_metrics_rows_are_appended_and_anything_unexpected_rewrites_the_file(tmp_path):
    from sweeptrainer.io.run_dir import RunDir

    run = RunDir(tmp_path)
    rows = [{"iteration": 1, "dev_loss": 0.5}]
    run.write_metrics(rows, durable=False)
    rows.append({"iteration": 2, "dev_loss": 0.25})
    run.write_metrics(rows, durable=False)  # appended
    assert run.metrics.read_text() == "iteration,dev_loss\n1,0.5\n2,0.25\n"
    run.metrics.write_text("iteration,dev_loss\n1,0.5\n2,0.2")  # torn by another hand
    rows.append({"iteration": 3, "dev_loss": 0.125, "extra": 1.0})  # and a new column
    run.write_metrics(rows, durable=False)
    assert run.metrics.read_text() == ("iteration,dev_loss,extra\n1,0.5,\n2,0.25,\n3,0.125,1.0\n")
    rows.append({"iteration": 4, "dev_loss": 0.0625, "extra": 2.0})
    run.write_metrics(rows, durable=False)
    with open(run.metrics, "a") as f:
        f.write("5,0.03")  # a row cut short by a kill
    fresh = RunDir(tmp_path)  # a resumed run: another process, the rows from its state
    fresh.write_metrics(rows, durable=False)
    assert fresh.metrics.read_text().endswith("4,0.0625,2.0\n")
    assert len(fresh.read_metrics()) == 4
