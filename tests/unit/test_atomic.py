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
