"""The preprocessing cache of a Files dataset through ``trainer preprocess``: one changed
file of 300 recomputes one file; ``--prune`` removes the caches no dataset uses; a
damaged cache is named and ``--rebuild`` mends it."""

from __future__ import annotations

import builtins
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import snapshot

# a Files dataset of write_arrays' files with one cheap preprocess step
ARRAYS = (
    "dataset=Files", "dataset.path=arrays", "dataset.train=null", "dataset.dev=null",
    "dataset.test=null", "dataset.index=all.csv",
    "dataset.preprocess=[{_target_:sweeptrainer.data.transforms.Standardize}]",
    "progress_bar=false",
)  # fmt: skip
BUILT = re.compile(
    r"preprocessing cache: computed (\d+) of (\d+) files \((\d+) reused\) in ([\d.]+) s"
)


def write_arrays(root: Path, n: int = 300) -> list[Path]:
    """``n`` tiny .npy files (2 x 4 values) with all.csv (columns file, label)."""
    rng = np.random.default_rng(0)
    root.mkdir()
    rows = []
    for i in range(n):
        np.save(root / f"{i:03d}.npy", rng.normal(size=(2, 4)).astype(np.float32))
        rows.append({"file": f"{i:03d}.npy", "label": "ab"[i % 2]})
    pd.DataFrame(rows).to_csv(root / "all.csv", index=False)
    return [root / row["file"] for row in rows]


def built(out: str) -> tuple[int, int, int, float]:
    """(computed, files, reused, seconds) of the one cache the output says was built."""
    (match,) = BUILT.findall(out)
    return int(match[0]), int(match[1]), int(match[2]), float(match[3])


def versions(data: Path) -> list[Path]:
    """The cache versions beside the data: <cache>/<config>/<version>."""
    return sorted(p.parent for p in (data / ".sweeptrainer-cache").glob("*/*/index.json"))


def test_touching_one_of_300_files_recomputes_one_and_prune_removes_the_orphan(
    trainer, tmp_path, monkeypatch
):
    files = write_arrays(tmp_path / "arrays")
    first = trainer("preprocess", *ARRAYS)
    assert first.code == 0, first.err
    computed, total, reused, _ = built(first.out)
    assert (computed, total, reused) == (300, 300, 0)
    (old,) = versions(tmp_path / "arrays")
    assert "up to date (300 files)" in trainer("preprocess", *ARRAYS).out

    # one file rewritten (new values, new mtime): one file computed, 299 copied
    np.save(files[7], np.full((2, 4), 3.0, np.float32))
    os.utime(files[7], ns=(os.stat(files[7]).st_atime_ns, os.stat(files[7]).st_mtime_ns + 10**9))
    second = trainer("preprocess", *ARRAYS)
    assert second.code == 0, second.err
    computed, total, reused, _ = built(second.out)
    assert (computed, total, reused) == (1, 300, 299)
    assert "preprocessing 1 file once" in second.out
    current = [v for v in versions(tmp_path / "arrays") if v != old]
    assert len(current) == 1
    # timed (info.yaml's seconds, to the ms): copying 299 entries is not rebuilding them
    first_s, second_s = (yaml.safe_load((v / "info.yaml").read_text())["seconds"]
                         for v in (old, current[0]))  # fmt: skip
    print(f"300 files computed in {first_s} s; 1 computed, 299 copied in {second_s} s")
    assert second_s < first_s

    # --prune: the orphan is listed; without an answer (stdin closed) nothing is removed
    kept = trainer("preprocess", *ARRAYS, "--prune")
    assert kept.code == 0, kept.err
    assert f"unused: {old} (300 files, " in kept.out and f"unused: {current[0]}" not in kept.out
    assert "no answer (standard input is closed)" in kept.out and "nothing removed" in kept.out
    assert old.is_dir()
    removed = trainer("preprocess", *ARRAYS, "--prune", "--yes")
    assert removed.code == 0, removed.err
    assert f"unused: {old} (300 files, " in removed.out
    assert "removed 1 unused preprocessing cache(s)" in removed.out
    assert versions(tmp_path / "arrays") == current  # the one in use is kept


def test_prune_asks_lists_only_and_removes_another_configs_folder(trainer, tmp_path, monkeypatch):
    files = write_arrays(tmp_path / "arrays", n=20)
    assert trainer("preprocess", *ARRAYS).code == 0
    (old,) = versions(tmp_path / "arrays")
    files[0].write_bytes(files[1].read_bytes())  # another version of the file list
    assert built(trainer("preprocess", *ARRAYS).out)[:3] == (1, 20, 19)
    (current,) = (v for v in versions(tmp_path / "arrays") if v != old)
    dry = trainer("preprocess", *ARRAYS, "--prune", "--dry-run")
    assert f"unused: {old} (20 files, " in dry.out
    assert "1 unused cache(s) would be removed (--dry-run: nothing removed)" in dry.out
    answers = []
    monkeypatch.setattr(builtins, "input", lambda q: answers.append(q) or "n")
    assert "nothing removed" in trainer("preprocess", *ARRAYS, "--prune").out and old.is_dir()
    monkeypatch.setattr(builtins, "input", lambda q: answers.append(q) or "y")
    removed = trainer("preprocess", *ARRAYS, "--prune")
    assert removed.code == 0, removed.err
    assert answers == ["remove 1 unused preprocessing cache(s)? [y/N] "] * 2
    assert "removed 1 unused preprocessing cache(s)" in removed.out
    assert versions(tmp_path / "arrays") == [current]
    # another step config: a new config folder; the old config's goes with its last version
    normal = "{_target_:sweeptrainer.data.transforms.Normalize,mean:0.0,std:2.0}"
    other = (*ARRAYS[:-2], f"dataset.preprocess=[{normal}]", "progress_bar=false")
    pruned = trainer("preprocess", *other, "--prune", "-y")
    assert pruned.code == 0, pruned.err
    assert built(pruned.out)[:3] == (20, 20, 0)  # another config: nothing to reuse
    assert f"unused: {current}" in pruned.out
    (left,) = versions(tmp_path / "arrays")
    assert left.parent != current.parent and not current.parent.exists()
    again = trainer("preprocess", *other, "--prune")
    assert "no unused preprocessing caches" in again.out


def test_a_damaged_cache_is_named_and_rebuild_mends_it(trainer, tmp_path):
    write_arrays(tmp_path / "arrays", n=20)
    assert trainer("preprocess", *ARRAYS).code == 0
    (version,) = versions(tmp_path / "arrays")
    with open(version / "values.bin", "r+b") as f:
        f.truncate(100)
    for command in (("preprocess",), ("iterations=1",)):
        result = trainer(*command, *ARRAYS)
        assert result.code == 2
        assert (
            f"the preprocessing cache {version} is damaged (values.bin holds 100 bytes, the "
            "index says 640); delete it or run trainer preprocess --rebuild"
        ) in result.err
        assert "Traceback" not in result.err
    rebuilt = trainer("preprocess", *ARRAYS, "--rebuild")
    assert rebuilt.code == 0, rebuilt.err
    assert built(rebuilt.out)[:3] == (20, 20, 0)
    assert versions(tmp_path / "arrays") == [version]
    (version / "index.json").write_bytes(b"\xff{not json")
    assert "index.json cannot be read" in trainer("preprocess", *ARRAYS).err
    assert trainer("preprocess", *ARRAYS, "--rebuild").code == 0
    assert "up to date (20 files)" in trainer("preprocess", *ARRAYS).out
    bad = trainer("preprocess", *ARRAYS, "--yes")
    assert bad.code == 2 and "--yes and --dry-run go with --prune" in bad.err


def _flip(version: Path) -> None:
    with open(version / "values.bin", "r+b") as f:  # one bit of the 7th file, same size
        f.seek(7 * 32 + 5)
        byte = f.read(1)[0]
        f.seek(7 * 32 + 5)
        f.write(bytes([byte ^ 0x10]))


def _swap(version: Path) -> None:
    meta = json.loads((version / "index.json").read_text())
    for column in ("names", "stamps"):  # two files trade places: a valid index
        meta[column][2], meta[column][9] = meta[column][9], meta[column][2]
    (version / "index.json").write_text(json.dumps(meta))


def _truncate(version: Path) -> None:
    with open(version / "values.bin", "r+b") as f:
        f.truncate(100)


@pytest.mark.parametrize("damage", [_truncate, _flip, _swap], ids=["truncated", "bit", "swap"])
def test_damage_is_found_before_training_and_rebuild_restores(trainer, tmp_path, damage):
    """Issue 34: a truncated, bit-flipped or swapped-index cache is named as damaged before
    training (exit 2, nothing under results/), and trainer preprocess --rebuild restores
    it: the run then trains as on the cache first built."""
    write_arrays(tmp_path / "arrays", n=20)
    assert trainer("preprocess", *ARRAYS).code == 0
    (version,) = versions(tmp_path / "arrays")
    good = (version / "values.bin").read_bytes(), (version / "index.json").read_text()
    damage(version)
    result = trainer("iterations=1", *ARRAYS)
    assert result.code == 2, result.out + result.err
    assert f"the preprocessing cache {version} is damaged (" in result.err
    assert "delete it or run trainer preprocess --rebuild" in result.err
    assert "Traceback" not in result.err and not (tmp_path / "results").exists()
    assert trainer("preprocess", *ARRAYS, "--rebuild").code == 0
    assert (version / "values.bin").read_bytes() == good[0]
    assert json.loads((version / "index.json").read_text())["names"] == json.loads(good[1])["names"]
    assert trainer("iterations=1", *ARRAYS).code == 0


def test_a_rejected_file_leaves_no_cache_folder(trainer, tmp_path):
    files = write_arrays(tmp_path / "arrays", n=10)
    files[3].write_bytes(b"not an array")
    before = snapshot(tmp_path / "arrays")
    result = trainer("preprocess", *ARRAYS, "dataset.check_files=false")
    assert result.code == 2 and "dataset.preprocess: '003.npy'" in result.err
    assert not (tmp_path / "arrays/.sweeptrainer-cache").exists()
    assert snapshot(tmp_path / "arrays") == before


def test_headers_checked_once_are_not_read_again_until_their_file_changes(tmp_path, monkeypatch):
    """Issue 34 (item 12): the checks before training are proportionate: the headers a
    dataset checked are recorded beside its cache with each file's size and mtime, so the
    next command reads only the headers of files that changed."""
    from sweeptrainer.data import loaders
    from sweeptrainer.data.files import Files

    files = write_arrays(tmp_path / "arrays", n=40)
    read: list[str] = []
    check = loaders.Array.check
    monkeypatch.setattr(loaders.Array, "check", lambda self, p: read.append(p) or check(self, p))
    steps = [{"_target_": "sweeptrainer.data.transforms.Standardize"}]
    kwargs = dict(path=str(tmp_path / "arrays"), train=None, dev=None, test=None,
                  index="all.csv", preprocess=steps)  # fmt: skip
    first = Files(**kwargs)
    assert len(read) == 40 and len(first.headers) == 40
    read.clear()
    again = Files(**kwargs)
    assert read == [] and again.headers == first.headers
    os.utime(files[7], ns=(files[7].stat().st_atime_ns, files[7].stat().st_mtime_ns + 10**9))
    Files(**kwargs)
    assert [Path(p).name for p in read] == ["007.npy"]


def test_a_header_record_of_another_layout_is_read_again_and_rewritten(tmp_path, monkeypatch):
    """The record is a cache of checks, not a source of truth: one in an older layout, or
    naming a header it does not hold, counts as none for those files."""
    from sweeptrainer.data import loaders
    from sweeptrainer.data.files import Files

    write_arrays(tmp_path / "arrays", n=20)
    steps = [{"_target_": "sweeptrainer.data.transforms.Standardize"}]
    kwargs = dict(path=str(tmp_path / "arrays"), train=None, dev=None, test=None,
                  index="all.csv", preprocess=steps)  # fmt: skip
    Files(**kwargs)
    (record,) = (tmp_path / "arrays/.sweeptrainer-cache/.headers").glob("*.json")
    data = json.loads(record.read_text())
    assert data["headers"] == [[[2, 4], None, False, None]] and data["kinds"] == [0] * 20
    read: list[str] = []
    check = loaders.Array.check
    monkeypatch.setattr(loaders.Array, "check", lambda self, p: read.append(p) or check(self, p))
    data["kinds"][2] = 5  # a header the record does not hold
    record.write_text(json.dumps(data))
    assert Files(**kwargs).headers and [Path(p).name for p in read] == ["002.npy"]
    read.clear()
    old = {"names": data["names"], "sizes": data["sizes"], "mtimes": data["mtimes"],
           "shapes": [[2, 4]] * 20, "modes": [None] * 20, "transparent": [False] * 20,
           "rates": [None] * 20}  # fmt: skip
    record.write_text(json.dumps(old))  # the layout before
    Files(**kwargs)
    assert len(read) == 20 and json.loads(record.read_text())["kinds"] == [0] * 20


def test_files_are_stat_in_this_thread_unless_the_calls_wait(monkeypatch):
    """The first files, timed, choose: CPU-bound calls stay in this thread (threads only
    take turns at the interpreter); calls that wait (a network file system) go to a pool.
    Either way every chunk comes back with its results, in order. A stall of this thread
    (a busy machine) shorter than MIN_WAIT_S is not taken for a slow file system. The
    clocks are the test's (each call says what it used and waited): no timing here."""
    import threading
    from types import SimpleNamespace

    from sweeptrainer.data import files

    wall, cpu = [0.0], [0.0]
    clocks = SimpleNamespace(perf_counter=lambda: wall[0], thread_time=lambda: cpu[0])
    monkeypatch.setattr(files, "time", clocks)
    monkeypatch.setattr(files, "PROBE_FILES", 4)
    names = [str(i) for i in range(16)]
    assert files.MIN_WAIT_S <= 0.05  # 4 files that wait 0.02 s each wait 0.08 s
    cases = [(0.0, 0.0, False), (0.0, 0.0025, False), (0.02, 0.02, False), (0.0, 0.02, True)]
    for used, wait, pooled in cases:  # per file: CPU time, time waited; a pool?
        threads: set[str] = set()

        def work(chunk, used=used, wait=wait, threads=threads):
            threads.add(threading.current_thread().name)
            cpu[0] += used * len(chunk)
            wall[0] += (used + wait) * len(chunk)
            return [int(n) * 2 for n in chunk]

        done = list(files._over_files(work, names))
        assert [n for chunk, _ in done for n in chunk] == names
        assert [r for _, results in done for r in results] == [i * 2 for i in range(16)]
        assert (len(threads) > 1) is pooled, (used, wait)
