"""Test harness: run `trainer` but SIGKILL the process half-way through its Nth state save.

    python tests/kill_on_save.py N [trainer arguments]

The save is the real atomic write; the kill lands after part of the temp file is written,
the worst moment for a state file. Used by tests/e2e/test_fault_tolerance.py.
"""

import os
import signal
import sys

from sweeptrainer.cli import main
from sweeptrainer.io import run_dir

nth = int(sys.argv.pop(1))
original = run_dir.atomic_write
saves = 0


def dying_write(path, write, *args, **kwargs):
    global saves
    if path.suffix == ".pt":
        saves += 1
        if saves == nth:

            def half_then_die(f):
                f.write(b"PK\x03\x04 half of a state file")
                f.flush()
                os.kill(os.getpid(), signal.SIGKILL)

            return original(path, half_then_die, *args, **kwargs)
    return original(path, write, *args, **kwargs)


run_dir.atomic_write = dying_write
main()
