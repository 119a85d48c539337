"""The run lease: who trains a run right now, read the same way by every command."""

from __future__ import annotations

import os
import socket
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from sweeptrainer.io import lease as lease_module
from sweeptrainer.io.lease import (
    GRACE_S,
    IDLE,
    LEASE,
    RUNNING_ELSEWHERE,
    RUNNING_HERE,
    STALE,
    STALE_INTERVALS,
    Heartbeat,
    activity,
    read_lease,
)
from sweeptrainer.io.lock import RunLock

UTC = timezone.utc
HERE = socket.gethostname()
OTHER = f"{HERE}-not"  # any name but this host's


def write_lease(run: Path, host: str, age_s: float, interval_s: float = 10.0, pid: int = 4242):
    heartbeat = datetime.now(UTC) - timedelta(seconds=age_s)
    data = {
        "host": host,
        "pid": pid,
        "started": (heartbeat - timedelta(seconds=60)).isoformat(),
        "heartbeat": heartbeat.isoformat(timespec="milliseconds"),
        "interval_s": interval_s,
    }
    (run / LEASE).write_text(yaml.safe_dump(data))
    return heartbeat


def test_no_lease_and_no_lock_is_idle(tmp_path):
    assert activity(tmp_path).state == IDLE
    assert not activity(tmp_path).running
    assert read_lease(tmp_path) is None


def test_no_lease_asks_this_hosts_lock(tmp_path):
    lock = RunLock(tmp_path)
    assert lock.acquire()
    try:
        live = activity(tmp_path)
        assert live.state == RUNNING_HERE and live.running and not live.elsewhere
        assert live.host is None  # no lease: the status file names the trainer
    finally:
        lock.release()


def test_a_fresh_lease_of_another_host_is_running_there_without_any_lock(tmp_path):
    heartbeat = write_lease(tmp_path, OTHER, age_s=1)
    live = activity(tmp_path)
    assert live.state == RUNNING_ELSEWHERE and live.running and live.elsewhere
    assert (live.host, live.pid) == (OTHER, 4242)
    assert abs((live.last_heard - heartbeat).total_seconds()) < 0.01


def test_an_old_lease_of_another_host_is_stale(tmp_path):
    heartbeat = write_lease(tmp_path, OTHER, age_s=STALE_INTERVALS * 10 + GRACE_S + 1)
    live = activity(tmp_path)
    assert live.state == STALE and not live.running
    assert live.host == OTHER and abs((live.last_heard - heartbeat).total_seconds()) < 0.01


def test_staleness_counts_intervals(tmp_path):
    """3 intervals and the grace: fresh just before, stale just after."""
    write_lease(tmp_path, OTHER, age_s=0, interval_s=2)
    lease = read_lease(tmp_path)
    assert lease is not None and lease.stale_after_s == 3 * 2 + GRACE_S
    just_before = lease.heartbeat + timedelta(seconds=lease.stale_after_s - 0.1)
    just_after = lease.heartbeat + timedelta(seconds=lease.stale_after_s + 0.1)
    assert activity(tmp_path, now=just_before).state == RUNNING_ELSEWHERE
    assert activity(tmp_path, now=just_after).state == STALE


def test_a_lease_of_this_host_is_decided_by_the_lock(tmp_path, monkeypatch):
    """However fresh or old, a lease naming this host defers to /proc/locks."""
    calls = []

    def held(self):
        calls.append(self.path)
        return False

    monkeypatch.setattr(RunLock, "held_elsewhere", held)
    write_lease(tmp_path, HERE, age_s=0)
    assert activity(tmp_path).state == IDLE  # fresh, but its process is gone: killed
    write_lease(tmp_path, HERE, age_s=3600)
    assert activity(tmp_path).state == IDLE
    monkeypatch.setattr(RunLock, "held_elsewhere", lambda self: True)
    live = activity(tmp_path)
    assert live.state == RUNNING_HERE and live.host == HERE and live.pid == 4242
    assert len(calls) == 2


def test_another_hosts_lease_never_asks_the_lock(tmp_path, monkeypatch):
    def boom(self):
        raise AssertionError("/proc/locks asked for another host's lease")

    monkeypatch.setattr(RunLock, "held_elsewhere", boom)
    write_lease(tmp_path, OTHER, age_s=0)
    assert activity(tmp_path).elsewhere
    write_lease(tmp_path, OTHER, age_s=3600)
    assert activity(tmp_path).state == STALE


@pytest.mark.parametrize(
    "content",
    [
        "",
        "[not, a, mapping]",
        "host: [unclosed",
        "!!python/object/apply:os.system ['true']",
        b"\xff\xfe binary",
        "host: x\npid: 1\nstarted: yesterday\nheartbeat: now\ninterval_s: 1\n",
        "host: x\npid: 0\nstarted: 2024-01-01T00:00:00\nheartbeat: 2024-01-01T00:00:00\n"
        "interval_s: 1\n",
        "host: x\npid: 1\nstarted: 2024-01-01T00:00:00\nheartbeat: 2024-01-01T00:00:00\n"
        "interval_s: -1\n",
        "host: x\npid: 1\nstarted: 2024-01-01T00:00:00\nheartbeat: 2024-01-01T00:00:00\n"
        "interval_s: .nan\n",
        "host: ''\npid: 1\nstarted: 2024-01-01T00:00:00\nheartbeat: 2024-01-01T00:00:00\n"
        "interval_s: 1\n",
        "x" * 100_000,
        "host: x\npid: 1\nstarted: 0001-01-01T00:00:00-05:00\n"
        "heartbeat: 0001-01-01T00:00:00-05:00\ninterval_s: 1\n",
        "host: x\npid: 1\nstarted: 9999-12-31T23:59:59+00:00\n"
        "heartbeat: 9999-12-31T23:59:59+00:00\ninterval_s: 1\n",
    ],
    ids=[
        "empty",
        "list",
        "bad yaml",
        "python tag",
        "binary",
        "bad times",
        "pid 0",
        "negative interval",
        "nan interval",
        "no host",
        "huge",
        "year 1",
        "year 9999",
    ],
)
def test_a_damaged_lease_reads_as_no_lease(tmp_path, content):
    path = tmp_path / LEASE
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert read_lease(tmp_path) is None
    assert activity(tmp_path).state == IDLE  # as without a lease: this host's lock decides


def test_a_yaml_timestamp_without_quotes_is_read(tmp_path):
    """YAML parses an unquoted timestamp itself; a time without a zone is UTC."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    (tmp_path / LEASE).write_text(
        f"host: {OTHER}\npid: 7\nstarted: {now.isoformat()}\nheartbeat: {now.isoformat()}\n"
        "interval_s: 30\n"
    )
    lease = read_lease(tmp_path)
    assert lease is not None and lease.heartbeat == now.replace(tzinfo=UTC)
    assert activity(tmp_path).elsewhere


def test_a_linked_lease_is_not_followed(tmp_path):
    outside = tmp_path / "outside.yaml"
    write_lease(tmp_path, OTHER, age_s=0)
    (tmp_path / LEASE).rename(outside)
    run = tmp_path / "run"
    run.mkdir()
    (run / LEASE).symlink_to(outside)
    assert read_lease(run) is None
    assert activity(run).state == IDLE


def test_a_lease_that_is_a_fifo_or_a_folder_does_not_block(tmp_path):
    os.mkfifo(tmp_path / LEASE)  # opening it for reading would wait for a writer
    assert read_lease(tmp_path) is None
    (tmp_path / LEASE).unlink()
    (tmp_path / LEASE).mkdir()
    assert read_lease(tmp_path) is None


def test_heartbeat_writes_refreshes_and_removes_the_lease(tmp_path):
    beat = Heartbeat(tmp_path, 0.05).start()
    try:
        first = read_lease(tmp_path)
        assert first is not None
        assert (first.host, first.pid, first.interval_s) == (HERE, os.getpid(), 0.05)
        deadline = time.monotonic() + 10
        while (now := read_lease(tmp_path)) is None or now.heartbeat == first.heartbeat:
            assert time.monotonic() < deadline, "the heartbeat was not refreshed"
            time.sleep(0.01)
        assert now.started == first.started and now.heartbeat > first.heartbeat
    finally:
        beat.stop()
    assert not (tmp_path / LEASE).exists()
    assert not beat._thread.is_alive()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temp file left


def test_heartbeat_as_a_context_manager(tmp_path):
    with Heartbeat(tmp_path, 30):
        assert read_lease(tmp_path).host == HERE
    assert not (tmp_path / LEASE).exists()


def test_heartbeat_leaves_a_lease_that_is_not_its_own(tmp_path):
    beat = Heartbeat(tmp_path, 30).start()
    write_lease(tmp_path, OTHER, age_s=0)  # e.g. a node that took the run over
    beat.stop()
    assert read_lease(tmp_path).host == OTHER


def test_heartbeat_does_not_write_through_a_planted_temp_link(tmp_path):
    target = tmp_path / "precious"
    target.write_text("not yours")
    run = tmp_path / "run"
    run.mkdir()
    (run / f".{LEASE}.{os.getpid()}.tmp").symlink_to(target)
    with Heartbeat(run, 30):
        assert read_lease(run) is not None
    assert target.read_text() == "not yours"


def test_a_failing_write_warns_once_and_training_goes_on(tmp_path, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lease_module, "atomic_write", refuse)
    beat = Heartbeat(tmp_path, 0.02)
    with caplog.at_level("WARNING", logger="sweeptrainer"):
        beat.start()
        time.sleep(0.2)  # several beats, all refused
        beat.stop()
    warnings = [r for r in caplog.records if "cannot write" in r.getMessage()]
    assert len(warnings) == 1, caplog.text


@pytest.mark.parametrize("interval", [0, -1, float("inf"), float("nan")])
def test_heartbeat_refuses_an_interval_that_is_not_positive(tmp_path, interval):
    with pytest.raises(ValueError, match="positive"):
        Heartbeat(tmp_path, interval)


# ------------------------------------------------------------------ claiming a run's lease


def test_claim_refuses_another_nodes_fresh_lease_and_leaves_it(tmp_path):
    write_lease(tmp_path, OTHER, age_s=0)
    beat = Heartbeat(tmp_path, 30)
    assert not beat.claim()
    assert read_lease(tmp_path).host == OTHER
    assert beat._thread is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [LEASE]  # no claim file left


@pytest.mark.parametrize("holder", ["stale other node", "dead process of this host", "damaged"])
def test_claim_takes_over_a_lease_nobody_holds(tmp_path, holder):
    if holder == "stale other node":
        write_lease(tmp_path, OTHER, age_s=3600)
    elif holder == "dead process of this host":
        write_lease(tmp_path, HERE, age_s=0, pid=4242)  # this process holds the run's lock
    else:
        (tmp_path / LEASE).write_text("{not: a lease")
    beat = Heartbeat(tmp_path, 30)
    try:
        assert beat.claim()
        lease = read_lease(tmp_path)
        assert (lease.host, lease.pid) == (HERE, os.getpid())
    finally:
        beat.stop()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_of_two_claims_at_the_same_moment_one_wins(tmp_path, monkeypatch):
    """Two nodes start the same new run at once (their locks do not see each other): the
    other node's lease lands just before this one's is created, and this claim fails,
    leaving the other's lease as it is."""
    link = os.link

    def the_other_node_first(source, target):
        write_lease(tmp_path, OTHER, age_s=0)
        return link(source, target)

    monkeypatch.setattr(lease_module.os, "link", the_other_node_first)
    beat = Heartbeat(tmp_path, 30)
    assert not beat.claim()
    assert read_lease(tmp_path).host == OTHER
    assert sorted(p.name for p in tmp_path.iterdir()) == [LEASE]


def test_a_heartbeat_whose_lease_was_taken_over_stops_refreshing(tmp_path, caplog):
    beat = Heartbeat(tmp_path, 0.05)
    assert beat.claim()
    try:
        write_lease(tmp_path, OTHER, age_s=0, pid=7)  # it stalled; another node took over
        beat._thread.join(timeout=10)
        assert not beat._thread.is_alive()
        assert read_lease(tmp_path).host == OTHER  # never overwritten
        assert f"taken over by {OTHER}:7" in caplog.text
    finally:
        beat.stop()
    assert read_lease(tmp_path).host == OTHER  # stop() leaves a lease that is not its own
