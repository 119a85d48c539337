"""Callback classes the tests list in YAML, as a user would list their own."""

from __future__ import annotations

import os
from pathlib import Path

from sweeptrainer.callbacks.hooks import HOOKS


class Recorder:
    """Writes one line per hook call into ``<run_dir>/hooks.txt``: the hook and its numbers."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "hooks.txt"
        self.lines: list[str] = []

    def _record(self, hook: str, kwargs: dict) -> None:
        parts = [hook.removeprefix("cb_on_")]
        parts += [str(kwargs[k]) for k in ("iteration", "batch_idx") if k in kwargs]
        parts.append(f"trainer={id(kwargs['trainer'])}")
        self.lines.append(" ".join(parts))
        if hook == "cb_on_test_end":
            self.path.write_text("\n".join(self.lines) + "\n")


def _make_hook(hook: str):
    def method(self, **kwargs):
        self._record(hook, kwargs)

    method.__name__ = hook
    return method


for _hook in HOOKS:
    setattr(Recorder, _hook, _make_hook(_hook))


class FailingCallback:
    """Raises in cb_on_iteration_end at ``at``: a bug in a user's callback. ``raises``:
    RuntimeError, or SystemExit / KeyboardInterrupt (a library calling ``sys.exit``)."""

    def __init__(self, at: int = 2, raises: str = "RuntimeError") -> None:
        self.at, self.raises = at, raises

    def cb_on_iteration_end(self, iteration):
        if iteration == self.at and self.raises == "SystemExit":
            raise SystemExit(3)
        if iteration == self.at and self.raises == "KeyboardInterrupt":
            raise KeyboardInterrupt
        if iteration == self.at:
            raise RuntimeError(f"callback bug at iteration {iteration}")


class PauseAt:
    """At (iteration, batch_idx) writes ``marker`` and waits (up to ``timeout`` s) for a stop
    signal, so a test can signal the process at a known point mid-epoch. Else it does nothing."""

    def __init__(
        self,
        iteration: int,
        batch_idx: int,
        marker: str,
        timeout: float = 20.0,
        linger: float = 0.0,
    ) -> None:
        self.at, self.marker, self.timeout = (iteration, batch_idx), Path(marker), timeout
        self.linger = linger  # seconds the step goes on after the signal (a long step)

    def cb_on_step_end(self, trainer, iteration, batch_idx):
        if (iteration, batch_idx) != self.at or self.marker.exists():
            return
        import time

        self.marker.write_text(str(os.getpid()))
        deadline = time.monotonic() + self.timeout
        while trainer.signals.received is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(self.linger)


class Slow:
    """Sleeps after every step: stretches a tiny run so a test can kill it at random moments."""

    def __init__(self, seconds: float = 0.005) -> None:
        self.seconds = seconds

    def cb_on_step_end(self):
        import time

        time.sleep(self.seconds)


class StopAfter:
    """Asks the trainer to stop after evaluating ``iteration``: a run cut short on purpose."""

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def cb_on_iteration_end(self, trainer, iteration):
        if iteration == self.iteration:
            trainer.should_stop = True


class ParamDeltas:
    """Records how far each optimizer step moved the parameters: the largest update norm
    and the largest single-element change, written to ``<run_dir>/deltas.txt`` at the end."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "deltas.txt"
        self.previous = None
        self.norms: list[float] = []
        self.abs_max: list[float] = []

    def _flat(self, trainer):
        import torch

        return torch.cat([p.detach().flatten().clone() for p in trainer.model.parameters()])

    def cb_on_step_begin(self, trainer):
        current = self._flat(trainer)
        if self.previous is not None:
            delta = current - self.previous
            self.norms.append(float(delta.norm()))
            self.abs_max.append(float(delta.abs().max()))
        self.previous = current

    def cb_on_train_end(self):
        self.path.write_text(f"{max(self.norms)!r} {max(self.abs_max)!r}\n")


class ParamSnapshots:
    """Saves every parameter at the start and the end of training (``params_begin.pt`` and
    ``params_end.pt`` in the run folder), keyed by name."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)

    def _save(self, trainer, name):
        import torch

        params = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
        torch.save(params, self.run_dir / name)

    def cb_on_train_begin(self, trainer):
        self._save(trainer, "params_begin.pt")

    def cb_on_train_end(self, trainer):
        self._save(trainer, "params_end.pt")


class ZeroLoss:
    """A criterion whose gradients are all zero: only weight decay moves the parameters."""

    reduction = "mean"

    def __new__(cls):
        import torch

        class _Zero(torch.nn.Module):
            reduction = "mean"

            def forward(self, outputs, targets):
                zero = (outputs * 0).sum(dim=-1)
                return zero if self.reduction == "none" else zero.mean()

        return _Zero()


class NoisyWine:
    """Wine, served sample by sample (not a TensorDataset) with random noise on every read:
    a dataset with augmentation, for the DataLoader path."""

    def __init__(self) -> None:
        from sweeptrainer.components.datasets import Wine

        base = Wine()
        for name in ("task", "input_shape", "output_dim", "class_names"):
            setattr(self, name, getattr(base, name))
        self.train = _Noisy(base.train)
        self.dev, self.test = base.dev, base.test


class _Noisy:
    def __init__(self, tensors) -> None:
        self.x, self.y = tensors.tensors

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        import torch

        return self.x[i] + 0.1 * torch.randn_like(self.x[i]), self.y[i]


class EditConfigOnce:
    """At the end of the first run's test, edits ``path`` on disk (``old`` -> ``new``): a user
    changing ``conf/config.yaml`` while their sweep runs. Later runs find it edited already."""

    def __init__(self, path: str = "conf/config.yaml", old: str = "", new: str = "") -> None:
        self.path, self.old, self.new = Path(path), old, new

    def cb_on_test_end(self):
        text = self.path.read_text()
        if self.old in text:
            self.path.write_text(text.replace(self.old, self.new))


class SignalSelf:
    """Sends ``signum`` (default SIGINT: Ctrl-C) to its own process at (iteration, batch_idx):
    a user interrupting a notebook cell mid-epoch."""

    def __init__(self, iteration: int = 1, batch_idx: int = 0, signum: int = 2) -> None:
        self.at, self.signum = (iteration, batch_idx), signum

    def cb_on_step_end(self, iteration, batch_idx):
        if (iteration, batch_idx) == self.at:
            os.kill(os.getpid(), self.signum)


def die_after_saving(patch, iteration: int) -> None:
    """Patch (``monkeypatch`` or its context) ``RunDir.save_state`` to save as usual, then
    raise StopNow (a second Ctrl-C) right after ``last.pt`` of ``iteration`` is written: the process
    dies at the worst moment for a resume, with no hook told (exit code 130). States are
    then saved on the training thread (not the saver's worker), so the death comes at once."""
    from sweeptrainer.io.run_dir import RunDir
    from sweeptrainer.io.state_saver import StateSaver
    from sweeptrainer.training.signals import StopNow

    save_state = RunDir.save_state

    def save_then_die(self, name, state, **kwargs):
        save_state(self, name, state, **kwargs)
        if name == "last" and state["training"]["iteration"] == iteration:
            raise StopNow

    def save_here(self, names, state, durable=True):
        for name in (names,) if isinstance(names, str) else names:
            self.run_dir.save_state(name, state, durable=durable)

    patch.setattr(RunDir, "save_state", save_then_die)
    patch.setattr(StateSaver, "save", save_here)


class WineSamples:
    """Wine served sample by sample in the shapes users bring: ``kind: dict`` gives
    ``{"x": features, "mask": ones, "y": label, "id": 1000 + i}``, ``kind: indexed`` gives
    ``(features, label, 1000 + i)``; random noise on the training features (an augmentation
    inside the dataset, for the resume test)."""

    def __init__(self, kind: str = "dict") -> None:
        from sweeptrainer.components.datasets import Wine

        base = Wine()
        for name in ("task", "input_shape", "output_dim", "class_names"):
            setattr(self, name, getattr(base, name))
        self.train = _Shaped(base.train, kind, noise=0.05)
        self.dev, self.test = _Shaped(base.dev, kind), _Shaped(base.test, kind)


class WineTensors:
    """Wine as a user's dataset class whose splits are in-memory ``TensorDataset``s of
    ``tensors`` fields: ``3`` gives ``(x, y, ids)`` (ids 1000 + i), ``1`` gives ``(x,)``."""

    def __init__(self, tensors: int = 3) -> None:
        import torch
        from torch.utils.data import TensorDataset

        from sweeptrainer.components.datasets import Wine

        base = Wine()
        for name in ("task", "input_shape", "output_dim", "class_names"):
            setattr(self, name, getattr(base, name))
        for split in ("train", "dev", "test"):
            x, y = getattr(base, split).tensors
            fields = (x, y, torch.arange(1000, 1000 + len(x)))[:tensors]
            setattr(self, split, TensorDataset(*fields))


class _Shaped:
    def __init__(self, tensors, kind: str, noise: float = 0.0) -> None:
        self.x, self.y = tensors.tensors
        self.kind, self.noise = kind, noise

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        import torch

        x = self.x[i] + self.noise * torch.randn_like(self.x[i])
        if self.kind == "dict":
            return {"x": x, "mask": torch.ones_like(x), "y": self.y[i], "id": 1000 + i}
        return x, self.y[i], 1000 + i


class MaskedMLP:
    """A model whose forward takes two named inputs, ``x`` and ``mask``."""

    def __new__(cls, input_shape, output_dim, hidden: int = 32):
        import math

        import torch

        class _Masked(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = torch.nn.Sequential(
                    torch.nn.Linear(math.prod(input_shape), hidden), torch.nn.ReLU(),
                    torch.nn.Linear(hidden, output_dim),
                )  # fmt: skip

            def forward(self, x, mask):
                return self.net(x * mask)

        return _Masked()


def touch(path: str) -> None:
    """A plain function that leaves a marker file: a ``_target_`` that must never be called
    from a run folder's config."""
    Path(path).touch()


def train_in(folder, *args: str):
    """``trainer ARGS`` in-process with ``folder`` as the current folder (for module-scoped
    fixtures that train once and copy the results per test); returns its results folder."""
    import os

    from sweeptrainer.cli import main

    here = os.getcwd()
    os.chdir(folder)
    try:
        main(list(args))
    except SystemExit as exit_:
        assert not exit_.code, f"trainer {' '.join(args)} exited with {exit_.code}"
    finally:
        os.chdir(here)
    return Path(folder) / "results"


class StopWhileBuilt:
    """A callback whose construction takes long (a slow data scan, a big model's start-up):
    it sends its process SIGTERM, then works for up to ``seconds``; a stop that is not
    honoured at once ends in a RuntimeError."""

    def __init__(self, seconds: float = 30.0) -> None:
        import signal
        import time

        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            sum(range(10_000))  # busy, as a real scan is
        raise RuntimeError("the stop signal was not honoured while building")

    def cb_on_train_begin(self):
        return None


class CountEvaluated:
    """Writes how many dev and test batches this process evaluated, per rank, into
    ``<folder>/evaluated.<rank>`` once the test split is scored: one run across processes splits
    its evaluation."""

    def __init__(self, folder: str) -> None:
        self.folder, self.batches = Path(folder), 0

    def cb_on_dev_step_end(self):
        self.batches += 1

    def cb_on_test_step_end(self):
        self.batches += 1

    def cb_on_test_end(self):  # every process tests (only rank 0 ends the run)
        rank = os.environ.get("RANK", "0")
        (self.folder / f"evaluated.{rank}").write_text(str(self.batches))


def study_trials(experiment: Path) -> list:
    """The trials of an experiment's one search study, by number, read as a user would:
    ``optuna.load_study`` on its journal file (a plain Optuna journal)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    (folder,) = (Path(experiment) / "search").iterdir()
    storage = JournalStorage(JournalFileBackend(str(folder / "journal.log")))
    study = optuna.load_study(study_name=folder.name, storage=storage)
    return sorted(study.get_trials(), key=lambda t: t.number)
