"""A real one-node SLURM cluster on loopback, for the slow tests and the bench.

:func:`start` brings it up as root in a new folder under /tmp: munged (as the munge user,
with the key the Debian package installs), MariaDB from a fresh data folder, slurmdbd
(submitit reads job states with ``sacct``, so accounting is needed), slurmctld and one
slurmd whose node is ``localhost`` with this machine's cores, in a ``debug`` partition.
Every daemon runs in the foreground as a child of this process, on its own free port
and socket, so a cluster never meets another one (or a system one) on the machine;
:meth:`SlurmCluster.stop` cancels the jobs left and stops every daemon by its PID.

Where a piece is missing (not root, a package not installed, a daemon that does not
start) :func:`start` returns the reason as a string, for ``pytest.skip``. The packages:
``apt-get install --no-install-recommends slurmctld slurmd slurm-client slurmdbd munge
mariadb-server`` (``.ci/run`` installs them when it runs as root).
"""

from __future__ import annotations

import atexit
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "slurmdbd", "munge", "mariadb-server")
# program -> the Debian package that brings it
PROGRAMS = {
    "munged": "munge",
    "mariadb-install-db": "mariadb-server",
    "mariadbd": "mariadb-server",
    "slurmdbd": "slurmdbd",
    "slurmctld": "slurmctld",
    "slurmd": "slurmd",
    "sbatch": "slurm-client",
    "sinfo": "slurm-client",
    "sacct": "slurm-client",
    "squeue": "slurm-client",
    "scancel": "slurm-client",
}
MUNGE_KEY = Path("/etc/munge/munge.key")
# the daemons live in /usr/sbin, which a non-login shell's PATH may lack
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
PARTITION = "debug"
# Seconds SLURM waits between SIGTERM and SIGKILL when a job is cancelled or ends at its
# time limit: the run's time to finish its step and save.
KILL_WAIT = 30


@dataclass
class SlurmCluster:
    """A running cluster: its folder, the environment its clients need, its daemons."""

    root: Path
    cpus: int
    partition: str = PARTITION
    daemons: dict[str, subprocess.Popen] = field(default_factory=dict)
    bring_up_s: float = 0.0

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """This process's environment with the cluster's ``slurm.conf``: for ``trainer``
        (submitit runs sbatch, sacct and scancel) and for the jobs, which inherit it."""
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": SEARCH_PATH}

    def run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """A SLURM client command (``sinfo``, ``squeue``, ``scancel``...) on this cluster."""
        return subprocess.run(list(command), env=self.env, capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip

    def jobs(self) -> list[str]:
        """``JOBID STATE`` of every job in the queue."""
        out = self.run("squeue", "-h", "-o", "%i %T").stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def log(self, daemon: str, lines: int = 20) -> str:
        """The last lines of a daemon's log and of what it printed."""
        text = ""
        for path in (self.root / "log" / f"{daemon}.log", self.root / "log" / f"{daemon}.out"):
            if path.is_file():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Cancel the jobs left, then stop every daemon this cluster started, newest first,
        by PID (SIGTERM, SIGKILL after 20 s). Safe to call twice."""
        if "slurmctld" in self.daemons and self.daemons["slurmctld"].poll() is None:
            self.run("scancel", "--partition", self.partition)
            deadline = time.monotonic() + KILL_WAIT + 15
            while self.jobs() and time.monotonic() < deadline:
                time.sleep(1)
        for name in reversed(list(self.daemons)):
            _stop(self.daemons.pop(name))
        shutil.rmtree(self.root, ignore_errors=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def missing() -> str | None:
    """Why a cluster cannot be brought up here, or None."""
    if os.geteuid() != 0:
        return "a real SLURM cluster needs root (munged as the munge user, slurmd)"
    absent = sorted({p for prog, p in PROGRAMS.items() if not shutil.which(prog, path=SEARCH_PATH)})
    if absent:
        return (
            f"a real SLURM cluster needs the Debian packages {' '.join(absent)} "
            f"(apt-get install --no-install-recommends {' '.join(PACKAGES)})"
        )
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "a real SLURM cluster needs the munge user (Debian package munge)"
    if not MUNGE_KEY.is_file():
        return f"a real SLURM cluster needs the munge key {MUNGE_KEY} (Debian package munge)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(what: str, ready, timeout: float, daemon: subprocess.Popen | None = None) -> None:
    """Poll ``ready()`` until true; raise RuntimeError(what) after ``timeout`` seconds or
    as soon as ``daemon`` has exited."""
    deadline = time.monotonic() + timeout
    while not ready():
        if daemon is not None and daemon.poll() is not None:
            raise RuntimeError(f"{what}: it exited with code {daemon.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(0.5)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _node_line(cpus: int) -> str:
    """The node's definition: this machine's cores and topology (``slurmd -C``), named
    localhost on 127.0.0.1, with 90 % of its memory."""
    slurmd = shutil.which("slurmd", path=SEARCH_PATH) or "slurmd"
    out = subprocess.run([slurmd, "-C"], capture_output=True, text=True, timeout=30).stdout
    facts = dict(
        item.split("=", 1) for item in out.split() if "=" in item and not item.startswith("Node")
    )
    keep = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")
    topology = " ".join(f"{k}={facts[k]}" for k in keep if k in facts) or f"CPUs={cpus}"
    memory = int(int(facts.get("RealMemory", "2000")) * 0.9)
    return f"NodeName=localhost NodeAddr=127.0.0.1 {topology} RealMemory={memory} State=UNKNOWN"


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.write_text(text)
    path.chmod(mode)


def start(timeout: float = 180) -> SlurmCluster | str:
    """Bring a cluster up and wait until its node is idle and ``sacct`` answers.

    Returns the cluster, or why it could not be brought up (everything started is
    stopped again). Stopped at the latest when this process exits."""
    reason = missing()
    if reason:
        return reason
    clock = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="sweeptrainer-slurm-"))
    root.chmod(0o755)  # munged (the munge user) reaches its folder inside
    cluster = SlurmCluster(root=root, cpus=os.cpu_count() or 1)
    atexit.register(cluster.stop)
    try:
        _bring_up(cluster, timeout)
    except (RuntimeError, OSError, subprocess.SubprocessError) as err:
        daemon = str(err).split(":")[0].split()[0]
        detail = cluster.log(daemon, 6) if daemon in cluster.daemons else ""
        cluster.stop()
        return f"the SLURM test cluster did not come up: {err}" + (
            f"; its log ends: {detail!r}" if detail else ""
        )
    cluster.bring_up_s = time.monotonic() - clock
    return cluster


def _bring_up(cluster: SlurmCluster, timeout: float) -> None:
    root = cluster.root
    for sub in ("etc", "log", "run", "state", "spool", "db"):
        (root / sub).mkdir(mode=0o755)
    munge_dir = root / "munge"
    munge_dir.mkdir(mode=0o755)  # munged wants its socket folder searchable by all
    munge = pwd.getpwnam("munge")
    os.chown(munge_dir, munge.pw_uid, munge.pw_gid)
    socket_path = munge_dir / "munge.socket"
    ports = {name: free_port() for name in ("mariadb", "slurmdbd", "slurmctld", "slurmd")}
    password = secrets.token_hex(8)
    auth = f"AuthType=auth/munge\nAuthInfo=socket={socket_path}\n"
    log = root / "log"

    def daemon(name: str, command: list[str], **kwargs) -> subprocess.Popen:
        # a session of its own: a Ctrl-C meant for the tests reaches this process, which
        # stops the daemons in order, not the daemons themselves
        with (log / f"{name}.out").open("ab") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=cluster.env,
                                    start_new_session=True, **kwargs)  # fmt: skip
        cluster.daemons[name] = proc
        return proc

    # munged, in the foreground, as the munge user, with the packaged key
    munged = daemon("munged", [
        "munged", "--foreground", f"--socket={socket_path}", f"--key-file={MUNGE_KEY}",
        f"--log-file={munge_dir / 'munged.log'}", f"--pid-file={munge_dir / 'munged.pid'}",
        f"--seed-file={munge_dir / 'munged.seed'}",
    ], user=munge.pw_uid, group=munge.pw_gid, extra_groups=[])  # fmt: skip
    _wait("munged", socket_path.exists, 20, munged)

    # MariaDB from a fresh data folder, on loopback TCP only; the accounting user made at start
    datadir = root / "db"
    install_db = shutil.which("mariadb-install-db", path=SEARCH_PATH) or "mariadb-install-db"
    install = subprocess.run(
        [install_db, "--no-defaults", f"--datadir={datadir}", "--user=root",
         "--auth-root-authentication-method=socket", "--skip-test-db"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if install.returncode != 0:
        raise RuntimeError(f"mariadb-install-db failed: {install.stderr.strip()[-300:]}")
    init = root / "etc" / "init.sql"
    _write(init, "".join(
        f"CREATE USER IF NOT EXISTS 'slurm'@'{host}' IDENTIFIED BY '{password}';\n"
        f"GRANT ALL ON slurm_acct_db.* TO 'slurm'@'{host}';\n"
        for host in ("127.0.0.1", "localhost")
    ), 0o600)  # fmt: skip
    mariadb = daemon("mariadb", [
        "mariadbd", "--no-defaults", f"--datadir={datadir}", "--user=root",
        f"--port={ports['mariadb']}", "--bind-address=127.0.0.1", "--skip-name-resolve",
        f"--socket={root / 'run' / 'mariadb.sock'}", f"--pid-file={root / 'run' / 'mariadb.pid'}",
        f"--log-error={log / 'mariadb.log'}", f"--init-file={init}", "--skip-log-bin",
        "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M",
        "--innodb-flush-log-at-trx-commit=2",
    ])  # fmt: skip
    _wait("mariadb", lambda: _port_open(ports["mariadb"]), 60, mariadb)

    # slurmdbd: accounting, which sacct (and so submitit) reads
    etc = root / "etc"
    _write(etc / "slurmdbd.conf", (
        f"{auth}DbdHost=localhost\nDbdPort={ports['slurmdbd']}\nSlurmUser=root\n"
        f"LogFile={log / 'slurmdbd.log'}\nPidFile={root / 'run' / 'slurmdbd.pid'}\n"
        "StorageType=accounting_storage/mysql\nStorageHost=127.0.0.1\n"
        f"StoragePort={ports['mariadb']}\nStorageUser=slurm\nStoragePass={password}\n"
        "StorageLoc=slurm_acct_db\n"
    ), 0o600)  # fmt: skip
    _write(etc / "slurm.conf", (
        f"ClusterName=sweeptrainer\nSlurmctldHost=localhost\nSlurmUser=root\n{auth}"
        f"SlurmctldPort={ports['slurmctld']}\nSlurmdPort={ports['slurmd']}\n"
        f"StateSaveLocation={root / 'state'}\nSlurmdSpoolDir={root / 'spool'}\n"
        f"SlurmctldPidFile={root / 'run' / 'slurmctld.pid'}\n"
        f"SlurmdPidFile={root / 'run' / 'slurmd.pid'}\n"
        f"SlurmctldLogFile={log / 'slurmctld.log'}\nSlurmdLogFile={log / 'slurmd.log'}\n"
        "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
        "JobAcctGatherType=jobacct_gather/none\nMpiDefault=none\n"
        "SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n"
        "SchedulerType=sched/backfill\nReturnToService=2\nInactiveLimit=0\n"
        f"KillWait={KILL_WAIT}\nMinJobAge=300\n"
        "AccountingStorageType=accounting_storage/slurmdbd\n"
        f"AccountingStorageHost=localhost\nAccountingStoragePort={ports['slurmdbd']}\n"
        f"AccountingStoragePass={socket_path}\n"  # the munge socket for talking to slurmdbd
        f"{_node_line(cluster.cpus)}\n"
        f"PartitionName={PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP\n"
    ))  # fmt: skip
    slurmdbd = daemon("slurmdbd", ["slurmdbd", "-D"])
    _wait("slurmdbd", lambda: _port_open(ports["slurmdbd"]), 60, slurmdbd)
    slurmctld = daemon("slurmctld", ["slurmctld", "-D", "-i"])
    _wait("slurmctld", lambda: _port_open(ports["slurmctld"]), 60, slurmctld)
    slurmd = daemon("slurmd", ["slurmd", "-D", "-N", "localhost"])

    def idle() -> bool:
        state = cluster.run("sinfo", "-h", "-N", "-n", "localhost", "-o", "%T").stdout.strip()
        return state == "idle"

    _wait("slurmd (node idle in sinfo)", idle, timeout, slurmd)

    def sacct_answers() -> bool:
        answer = cluster.run("sacct", "-n", "-X", "-a")
        return answer.returncode == 0 and "error" not in answer.stderr.lower()

    _wait("slurmdbd (sacct answers)", sacct_answers, 60, slurmdbd)


def main() -> None:
    """``python -m tests.clusters.slurm``: bring a cluster up, print how to use it, keep it
    up until Ctrl-C or SIGTERM."""
    cluster = start()
    if isinstance(cluster, str):
        raise SystemExit(cluster)
    print(f"SLURM cluster up in {cluster.bring_up_s:.0f} s: export SLURM_CONF={cluster.conf}",
          flush=True)  # fmt: skip

    def leave(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, leave)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
