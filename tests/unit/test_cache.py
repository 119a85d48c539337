"""The preprocessing cache: per-file versions, reuse, damage, the lock, pruning, RNG."""

from __future__ import annotations

import json
import multiprocessing
import random
import time

import numpy as np
import pytest
import torch

from sweeptrainer.data import cache
from sweeptrainer.data.cache import (
    CacheKey,
    cache_key,
    open_cache,
    remove_cache,
    unused_caches,
)
from sweeptrainer.errors import ConfigError

DAMAGED = (
    r"the preprocessing cache .* is damaged \({}.*\); delete it or run trainer preprocess --rebuild"
)


def _square(name: str) -> np.ndarray:
    time.sleep(0.05)
    return np.full((2, int(name)), int(name), np.float32)


def _value(name: str) -> np.ndarray:
    return np.full((2, 3), float(name), np.float32)


class Counting:
    """compute(name): the file's array (``version`` + name), counting the calls."""

    def __init__(self, version: float = 0.0) -> None:
        self.calls: list[str] = []
        self.version = version

    def __call__(self, name: str) -> np.ndarray:
        self.calls.append(name)
        return np.full((2, 3), float(name) + self.version, np.float32)


def _key(n: int = 5, changed: dict[str, int] | None = None) -> CacheKey:
    stamps = {str(i): (8, 1000 + (changed or {}).get(str(i), 0)) for i in range(n)}
    return CacheKey("steps", stamps)


def _build_in_a_process(folder, key, out):
    _, info = open_cache(folder, key, _square)
    out.put(info.built)


def test_cache_is_built_once_by_parallel_jobs_and_read_back(tmp_path):
    key = CacheKey("steps", {"1": (1, 0), "2": (1, 0), "3": (1, 0)})
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    jobs = [context.Process(target=_build_in_a_process, args=(tmp_path, key, out))
            for _ in range(3)]  # fmt: skip
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(30)
    assert sorted(out.get(timeout=5) for _ in jobs) == [False, False, True]
    store, info = open_cache(tmp_path, key, _square)
    assert not info.built and store["3"].tolist() == [[3, 3, 3]] * 2 and len(store) == 3
    # nested <config>/<version>/, and no lock file left behind
    assert [p.name for p in (tmp_path / key.config_hash).iterdir()] == [key.version_hash]
    assert {p.name for p in info.folder.iterdir()} == {"values.bin", "index.json", "info.yaml"}


def test_cache_key_follows_the_steps_and_the_files(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"1")
    key = cache_key("steps", tmp_path, ["a.wav"])
    assert cache_key("steps", tmp_path, ["a.wav"]) == key
    other = cache_key("other steps", tmp_path, ["a.wav"])
    assert other.config_hash != key.config_hash and other.version_hash == key.version_hash
    (tmp_path / "a.wav").write_bytes(b"12")
    changed = cache_key("steps", tmp_path, ["a.wav"])
    assert changed.config_hash == key.config_hash and changed.version_hash != key.version_hash
    with pytest.raises(ConfigError, match=r"dataset: cannot read 'b.wav'"):
        cache_key("steps", tmp_path, ["b.wav"])


def test_a_changed_file_recomputes_that_file_only(tmp_path, caplog):
    compute = Counting()
    first, info = open_cache(tmp_path, _key(), compute)
    assert (info.built, info.computed, info.reused, info.files) == (True, 5, 0, 5)
    assert compute.calls == ["0", "1", "2", "3", "4"]
    newer = Counting(version=100.0)  # what the steps make of the changed file now
    caplog.set_level("INFO", "sweeptrainer")
    store, info = open_cache(tmp_path, _key(changed={"3": 1}), newer)
    assert newer.calls == ["3"] and (info.computed, info.reused) == (1, 4)
    assert f"computed 1 of 5 files (4 reused) in {info.seconds:.1f} s -> {info.folder}" in (
        caplog.text
    )
    assert store["3"].tolist() == [[103.0] * 3] * 2  # computed anew
    assert store["2"].tolist() == first["2"].tolist() == [[2.0] * 3] * 2  # copied
    # both versions stay (until pruned); the first is still read as it was
    assert len(list(info.folder.parent.iterdir())) == 2 and first["3"][0, 0] == 3.0
    # a file added: only it is computed, from whichever version holds the others
    added = Counting()
    _, info = open_cache(tmp_path, _key(6, changed={"3": 1}), added)
    assert added.calls == ["5"] and (info.computed, info.reused) == (1, 5)


def test_a_damaged_entry_of_an_earlier_version_is_computed_not_copied(tmp_path, caplog):
    _, info = open_cache(tmp_path, _key(), Counting())
    values = info.folder / "values.bin"
    data = bytearray(values.read_bytes())
    data[6 * 4 * 2] ^= 0xFF  # a bit of file "2" (entries of 6 float32 values, in order)
    values.write_bytes(bytes(data))
    compute = Counting()
    store, info = open_cache(tmp_path, _key(changed={"4": 1}), compute)
    assert sorted(compute.calls) == ["2", "4"] and (info.computed, info.reused) == (2, 3)
    assert store["2"].tolist() == [[2.0] * 3] * 2
    assert "1 damaged entries in" in caplog.text


@pytest.mark.parametrize("workers", [0, 2])
def test_building_draws_nothing_from_the_random_generators(tmp_path, workers):
    def compute(name):  # a step that draws (it should not, but the states stay anyway)
        return torch.rand(2) + float(np.random.rand()) + random.random()

    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    before = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    _, info = open_cache(tmp_path, _key(4), compute, workers=workers)
    assert info.computed == 4
    assert torch.equal(torch.get_rng_state(), before[0])
    assert (np.random.get_state()[1] == before[1]).all() and random.getstate() == before[2]


@pytest.mark.parametrize("existing_root", [True, False])
def test_a_failing_file_leaves_no_cache_and_no_lock(tmp_path, existing_root):
    def compute(name):
        if name == "bad":
            raise ValueError("cannot decode")
        return np.zeros(1)

    root = tmp_path / "cache"
    if existing_root:
        root.mkdir()
    key = CacheKey("steps", {"ok": (1, 0), "bad": (1, 0)})
    with pytest.raises(ConfigError, match=r"dataset.preprocess: 'bad': ValueError: cannot decode"):
        open_cache(root, key, compute)
    # nothing that looks complete, and no folder holding only a lock file
    assert (list(root.iterdir()) == []) if existing_root else not root.exists()


def _built(tmp_path):
    _, info = open_cache(tmp_path, _key(), _value)
    return info.folder


def test_values_of_the_wrong_size_are_damage(tmp_path):
    folder = _built(tmp_path)
    with open(folder / "values.bin", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ConfigError, match=DAMAGED.format(r"values.bin holds 121 bytes, .* 120")):
        open_cache(tmp_path, _key(), _value)
    (folder / "values.bin").unlink()
    with pytest.raises(ConfigError, match=DAMAGED.format("values.bin: No such file")):
        open_cache(tmp_path, _key(), _value)


@pytest.mark.parametrize(
    ("text", "what"),
    [
        (b'{"format": 2, "entr', "index.json cannot be read"),
        (b"\xff\xfe not utf-8", "index.json cannot be read"),
        (b'{"format": 2}', "index.json is not an index: KeyError"),
        (b'{"format": 1}', "format 1, not 2"),
    ],
)
def test_an_unreadable_index_is_damage(tmp_path, text, what):
    folder = _built(tmp_path)
    (folder / "index.json").write_bytes(text)
    with pytest.raises(ConfigError, match=DAMAGED.format(what)):
        open_cache(tmp_path, _key(), _value)


@pytest.mark.parametrize(
    ("column", "row", "value"),
    [
        ("stamps", 2, [8, 1000.5]),  # a fraction
        ("stamps", 2, [8]),  # not a pair
        ("offsets", 0, -6),  # negative
        ("offsets", 1, True),  # a boolean is not a number here
        ("shapes", 3, [2, "3"]),  # text
        ("crc32", 4, None),
        ("names", 0, 7),
    ],
)
def test_an_index_column_of_the_wrong_kind_is_damage(tmp_path, column, row, value):
    """The columns are checked in numpy, not number by number (a 100,000-file index is read
    at every open): every kind of wrong value is still refused, naming the index."""
    folder = _built(tmp_path)
    meta = json.loads((folder / "index.json").read_text())
    meta[column][row] = value
    (folder / "index.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=DAMAGED.format("index.json is not an index")):
        open_cache(tmp_path, _key(), _value)


def test_an_index_of_files_of_several_ranks_reads_and_one_past_the_end_is_damage(tmp_path):
    key = CacheKey("steps", {"1": (1, 0), "2": (1, 0)})
    ranks = {"1": np.arange(3, dtype=np.float32), "2": np.ones((2, 2, 2), np.float32)}
    store, _ = open_cache(tmp_path, key, ranks.__getitem__)
    store, _ = open_cache(tmp_path, key, ranks.__getitem__)  # read back from its index
    assert store["1"].tolist() == [0, 1, 2] and store["2"].shape == (2, 2, 2)
    meta = json.loads((store.folder / "index.json").read_text())
    meta["shapes"][1] = [2, 2, 3]
    (store.folder / "index.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=DAMAGED.format("index.json: '2' ends past the last")):
        open_cache(tmp_path, key, ranks.__getitem__)


def test_an_index_that_lists_other_files_is_damage(tmp_path):
    folder = _built(tmp_path)
    meta = json.loads((folder / "index.json").read_text())
    meta["names"][1] = "x"
    (folder / "index.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=DAMAGED.format("index.json does not list '1'")):
        open_cache(tmp_path, _key(), _value)
    meta["names"][1], meta["stamps"][1] = "1", [8, 5]
    (folder / "index.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=DAMAGED.format("index.json holds another version")):
        open_cache(tmp_path, _key(), _value)


def test_every_entry_is_checked_when_a_cache_is_opened(tmp_path):
    folder = _built(tmp_path)
    data = bytearray((folder / "values.bin").read_bytes())
    data[-1] ^= 0x01  # the last file's bytes, same size
    (folder / "values.bin").write_bytes(bytes(data))
    with pytest.raises(ConfigError, match=DAMAGED.format("the values of '4' do not match")):
        open_cache(tmp_path, _key(), _value)


def test_an_entry_of_a_large_cache_is_checked_at_its_first_read(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "VERIFY_AT_OPEN", 0)  # a cache too large to check whole
    folder = _built(tmp_path)
    data = bytearray((folder / "values.bin").read_bytes())
    data[-1] ^= 0x01  # the last file's bytes, same size
    (folder / "values.bin").write_bytes(bytes(data))
    store, _ = open_cache(tmp_path, _key(), _value)  # the sizes agree: opens
    assert store["0"].tolist() == [[0.0] * 3] * 2
    with pytest.raises(ConfigError, match=DAMAGED.format("the values of '4' do not match")):
        store["4"]


def test_an_index_with_two_entries_swapped_is_damage(tmp_path):
    """Issue 34 (item 4): a valid index.json whose two files trade places (their names and
    stamps swapped; offsets, shapes and checksums kept) is caught at the first read of
    either file (here when the cache is opened): the checksum covers the name."""
    folder = _built(tmp_path)
    meta = json.loads((folder / "index.json").read_text())
    for column in ("names", "stamps"):
        meta[column][1], meta[column][3] = meta[column][3], meta[column][1]
    (folder / "index.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=DAMAGED.format("the values of '3' do not match")):
        open_cache(tmp_path, _key(), _value)


def test_rebuilding_computes_every_file_once_per_command(tmp_path):
    folder = _built(tmp_path)
    (folder / "index.json").write_bytes(b"not json")
    compute = Counting()
    rebuilt: set = set()  # what trainer preprocess --rebuild gives every dataset it opens
    store, info = open_cache(tmp_path, _key(), compute, rebuilt=rebuilt)
    assert info.built and (info.computed, info.reused) == (5, 0)
    _, again = open_cache(tmp_path, _key(), compute, rebuilt=rebuilt)  # a second dataset
    assert not again.built and len(compute.calls) == 5 and info.folder == folder
    assert store["4"].tolist() == [[4.0] * 3] * 2
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # nothing left aside


def test_unused_caches_are_listed_and_removed_with_their_config_folder(tmp_path):
    old = _built(tmp_path)
    _, info = open_cache(tmp_path, _key(changed={"1": 1}), _value)
    _, other = open_cache(tmp_path, CacheKey("other steps", _key().stamps), _value)
    legacy = tmp_path / "0123456789abcdef"  # a cache of the earlier format
    legacy.mkdir()
    (legacy / "index.json").write_text("{}")
    (tmp_path / ".0123456789abcdef.lock").write_text("")  # its lock file
    (tmp_path / "notes").mkdir()  # not ours: never listed
    unused = unused_caches([tmp_path], [info.folder])
    assert sorted(c.folder for c in unused) == sorted([old, other.folder, legacy])
    listed = {c.folder: c for c in unused}
    assert listed[old].files == 5 and listed[old].grouped and not listed[legacy].grouped
    assert "(5 files, " in listed[old].describe()
    for stored in unused:
        remove_cache(stored)
    assert sorted(p.name for p in tmp_path.iterdir()) == [info.folder.parent.name, "notes"]
    assert [p.name for p in info.folder.parent.iterdir()] == [info.folder.name]
    assert open_cache(tmp_path, _key(changed={"1": 1}), _value)[0]["1"][0, 0] == 1.0
