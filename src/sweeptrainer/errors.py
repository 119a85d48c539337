"""The two kinds of failure a user sees, and the exit codes they map to."""

from __future__ import annotations

from collections.abc import Iterable


class ConfigError(Exception):
    """Something the user gave is wrong (config, override, file): exit code 2, no traceback.

    The message names the config key or file and what was expected.
    """

    exit_code = 2


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the option closest to a misspelt ``name``, else ``""``:
    the hint every "unknown ..." message ends with."""
    import difflib

    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class TrainingError(Exception):
    """Training itself went wrong (e.g. the loss became NaN): the run is marked failed."""

    exit_code = 1


class DamagedRunError(ConfigError):
    """A file of a run folder is damaged or was not written by sweeptrainer: that run is
    reported ``damaged`` and left as it is; the other runs of a command go on."""


class StorageError(OSError):
    """The machine refused a write (disk full, read-only, no permission): not the run's fault.
    The run is left to resume (it is not a failed attempt); the message names the folder."""


class UnsafeStateError(ConfigError):
    """A state file holds pickled objects beyond tensors and plain containers: never loaded."""


class Pruned(Exception):
    """A search's pruner stopped the run at an evaluation: it saved its state and ends
    ``pruned``, a final state (neither failed nor retried). ``reason`` is the line kept in
    its ``status.yaml``: ``pruned at iteration 4: dev accuracy 0.21``."""

    def __init__(self, iteration: int, metric: str, value: float) -> None:
        self.iteration, self.metric, self.value = iteration, metric, value
        self.reason = f"pruned at iteration {iteration}: dev {metric} {value:.4g}"
        super().__init__(self.reason)

    def __reduce__(self) -> tuple:
        return (Pruned, (self.iteration, self.metric, self.value))


class Interrupted(BaseException):
    """A stop signal arrived; the run saved its state and stops (exit code 128 + signal).

    A BaseException, as KeyboardInterrupt is: a stop raised while components are built
    (see ``StopSignals.at_once``) must pass through the ``except Exception`` of a user's
    data code or of a per-file preprocessing loop, not be recorded as their error."""

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = 128 + signum

    def __reduce__(self) -> tuple:
        return (Interrupted, (self.signum,))  # a launcher's worker sends it back pickled


class ParamError(ConfigError):
    """A step's argument that cannot work (a probability of 2, a negative padding): raised
    by the step's constructor with the argument's name; the pipeline that builds the step
    names its config key (``augmentation.steps.0.p: expected ...``)."""

    def __init__(self, param: str, expected: str, got: object) -> None:
        self.param, self.detail = param, f"expected {expected}, got {got!r}"
        super().__init__(f"{param}: {self.detail}")
