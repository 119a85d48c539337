"""The fast path stays fast: no host-device sync per training step, no heavy imports.

Not timed asserts (those live in benches/): the tests count synchronising calls
(``.item()``, ``.cpu()``, ``float(tensor)``, ...) during real in-process runs, and check
that twice the steps with the same evaluations make the same number of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest
import torch

from sweeptrainer.callbacks.dispatcher import CallbackDispatcher

SYNCS = ("item", "cpu", "tolist", "numpy", "__float__", "__int__", "__bool__", "__index__")


class StepHooks:
    """Implements every per-batch hook and does nothing: dispatch itself must not sync."""

    def cb_on_step_begin(self, trainer, iteration, batch_idx): ...
    def cb_on_step_end(self, trainer, iteration, batch_idx, loss): ...
    def cb_on_dev_step_begin(self, batch_idx): ...
    def cb_on_dev_step_end(self, batch_idx, loss): ...


class ItemEveryStep:
    """A user's callback that syncs on purpose: proves the counter sees what it should."""

    def cb_on_step_end(self, loss):
        loss.item()


TORCH_DIR = os.path.dirname(torch.__file__)


@pytest.fixture
def count_syncs(monkeypatch):
    """Count calls of the synchronising tensor methods while a test runs.

    Calls from inside torch are left out: e.g. Adam reads its CPU step counter with
    ``.item()``, which never waits for a device. Everything else (sweeptrainer, hooks,
    callbacks, tqdm) is counted.
    """
    counts: Counter[str] = Counter()
    for name in SYNCS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            if not sys._getframe(1).f_code.co_filename.startswith(TORCH_DIR):
                counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return counts


def syncs_of(trainer, count_syncs, steps: int, *extra: str) -> Counter[str]:
    """The synchronising calls of a whole in-process run of ``steps`` training steps."""
    count_syncs.clear()
    # one evaluation and one save whatever the number of steps: only per-step syncs differ
    result = trainer("training_type=step", f"iterations={steps}", f"eval_frequency={steps}",
                     f"save_frequency={steps}", f"experiment_id=steps{steps}", *extra)  # fmt: skip
    assert result.code == 0, result.err
    if "progress_bar=true" in extra:
        assert f"{steps}/{steps} [" in result.err  # tqdm drew the bar
    return Counter(count_syncs)


CASES = {
    "plain": (),
    "hooks and progress bar": (
        "+callbacks.steps._target_=tests.unit.test_fast_path.StepHooks",
        "progress_bar=true",
    ),
    "accumulation, clipping, bf16": (
        "accumulation_steps=2",
        "gradient_clip_norm=1.0",
        "gradient_clip_value=0.5",
        "precision=bf16",
    ),
    "step-training scheduler": ("scheduler=CosineAnnealingLR",),
}


@pytest.mark.parametrize("extra", CASES.values(), ids=CASES.keys())
def test_no_sync_per_training_step(trainer, count_syncs, monkeypatch, extra):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # the bar draws as in a terminal
    few = syncs_of(trainer, count_syncs, 8, *extra)
    many = syncs_of(trainer, count_syncs, 24, *extra)  # 16 more steps, across an epoch end
    assert sum(few.values()) > 0  # the counter is live: evaluation syncs once per pass
    assert many == few, f"syncs that grow with the steps: {many - few}"


def test_the_counter_sees_a_sync_per_step(trainer, count_syncs):
    extra = ("+callbacks.item._target_=tests.unit.test_fast_path.ItemEveryStep",)
    few = syncs_of(trainer, count_syncs, 8, *extra)
    many = syncs_of(trainer, count_syncs, 24, *extra)
    assert (many - few)["item"] == 16


def test_hooks_nobody_implements_are_skipped():
    dispatcher = CallbackDispatcher([("callbacks.steps", StepHooks()), ("model", object())])
    assert "cb_on_step_end" in dispatcher
    assert "cb_on_test_step_end" not in dispatcher
    assert "cb_on_train_begin" not in dispatcher


@pytest.mark.parametrize("compile_", [False, True])
def test_determinism_without_importing_the_compiler(compile_):
    """use_deterministic_algorithms imports TorchInductor (~2 s); only compile needs it."""
    code = (
        "import sys, torch\n"
        "from sweeptrainer.training.step import configure_determinism\n"
        f"configure_determinism(True, compile={compile_})\n"
        "assert torch.are_deterministic_algorithms_enabled()\n"
        "assert torch.is_deterministic_algorithms_warn_only_enabled()\n"
        "print('torch._inductor.config' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(compile_)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
def test_files_rewritten_per_evaluation_are_not_fsynced_until_the_end(trainer, monkeypatch):
    """metrics.csv and states are atomic at every evaluation, durable (fsync) at the end."""
    synced: Counter[str] = Counter()
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        synced[name.lstrip(".").split(".")[0]] += 1  # ".metrics.csv.123.tmp" -> "metrics"
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    result = trainer("iterations=6", "progress_bar=false")
    assert result.code == 0, result.err
    assert synced["metrics"] == 1  # six evaluations, one durable write
    assert 1 <= synced["best"] <= 2 and 1 <= synced["last"] <= 2  # final write + end sync
    assert synced["status"] >= 2 and synced["results"] == 1  # the rest stays durable
