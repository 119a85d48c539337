"""Callbacks: hook order, argument introspection, start-up checks, early stopping, isolation."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import torch
import yaml

from sweeptrainer.callbacks.dispatcher import CallbackDispatcher
from sweeptrainer.errors import ConfigError
from tests.conftest import run_dirs

RECORD = ("+callbacks.rec._target_=tests.helpers.Recorder", "progress_bar=false")
# Wine: 124 training samples -> 3 batches of 50; 27 dev and 27 test samples -> 1 batch each.
WINE = ("dataset=Wine", "batch_size=50")


def _trace(tmp_path) -> list[str]:
    (run,) = run_dirs(tmp_path)
    lines = (run / "hooks.txt").read_text().split("\n")
    return [line.rsplit(" trainer=", 1)[0] for line in lines if line]


def _dev(it):
    return [f"dev_begin {it}", "dev_step_begin 0", "dev_step_end 0", f"dev_end {it}"]


TEST = ["test_begin", "test_step_begin 0", "test_step_end 0", "test_end"]


def _epoch(it):
    hooks = ("step_begin", "before_optimizer_step", "step_end")
    steps = [f"{hook} {it} {b}" for b in range(3) for hook in hooks]
    return [*steps, f"loader_exhausted {it}"]


def _step(it, b):
    return [f"step_begin {it} {b}", f"before_optimizer_step {it} {b}", f"step_end {it} {b}"]


def test_hook_order_epoch_training(trainer, tmp_path):
    result = trainer(*WINE, *RECORD, "iterations=3", "eval_frequency=2", "save_frequency=2")
    assert result.code == 0, result.err
    assert _trace(tmp_path) == [
        "train_begin",
        "iteration_begin 1", *_epoch(1), *_epoch(2), *_dev(2), "iteration_end 2",
        "iteration_begin 3", *_epoch(3), *_dev(3), "iteration_end 3",
        "train_end",
        *TEST,
    ]  # fmt: skip


def test_hook_order_step_training_with_loader_exhausted_mid_period(trainer, tmp_path):
    result = trainer(*WINE, *RECORD, "training_type=step", "iterations=4", "eval_frequency=2")
    assert result.code == 0, result.err
    assert _trace(tmp_path) == [
        "train_begin",
        "iteration_begin 1",
        *_step(1, 0), *_step(2, 1),
        *_dev(2), "iteration_end 2",
        "iteration_begin 3",
        *_step(3, 2), "loader_exhausted 3",
        *_step(4, 0),
        *_dev(4), "iteration_end 4",
        "train_end",
        *TEST,
    ]  # fmt: skip


USER_MODULE = '''
import json

import torch


class TinyNet(torch.nn.Module):
    """A user's model that also listens to the end of every evaluation period."""

    def __init__(self, input_shape, output_dim, hidden=16):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(input_shape[0], hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, output_dim),
        )

    def forward(self, x):
        return self.net(x)

    def cb_on_iteration_end(self, metrics):
        with open("model_saw.jsonl", "a") as f:
            f.write(json.dumps(metrics) + "\\n")


class LossLog:
    """A user's callback that records the loss of every optimizer step."""

    def cb_on_step_end(self, trainer, loss):
        assert trainer.model.training
        with open("losses.txt", "a") as f:
            f.write(f"{trainer.state.iteration} {loss.item()!r}\\n")
'''


def _user_project(tmp_path, module: str = USER_MODULE):
    # a module name of its own per test: Python caches imported modules by name
    name = "usercode_" + re.sub(r"\W", "_", tmp_path.name)
    (tmp_path / f"{name}.py").write_text(module)
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "callbacks").mkdir()
    (tmp_path / "conf" / "model" / "TinyNet.yaml").write_text(
        f"id: TinyNet\n_target_: {name}.TinyNet\nhidden: 16\n"
    )
    (tmp_path / "conf" / "callbacks" / "loss_log.yaml").write_text(
        f"# @package callbacks.loss_log\n_target_: {name}.LossLog\n"
    )


def test_user_model_and_yaml_callback_receive_the_right_values(trainer, tmp_path):
    _user_project(tmp_path)
    result = trainer(*WINE, "model=TinyNet", "+callbacks=loss_log", "iterations=3",
                     "progress_bar=false")  # fmt: skip
    assert result.code == 0, result.err
    (run,) = run_dirs(tmp_path)
    metrics = pd.read_csv(run / "metrics.csv")
    seen = [json.loads(line) for line in (tmp_path / "model_saw.jsonl").read_text().splitlines()]
    assert pd.DataFrame(seen)[list(metrics.columns)].round(6).equals(metrics.round(6))
    losses = pd.read_csv(tmp_path / "losses.txt", sep=" ", names=["iteration", "loss"])
    assert len(losses) == 3 * 3  # 3 epochs of 3 batches
    # state.iteration still counts completed epochs during the steps of an epoch
    per_epoch = losses.groupby("iteration").loss.mean().tolist()
    assert per_epoch == pytest.approx(metrics.train_loss.tolist(), rel=1e-5)


@pytest.mark.parametrize(
    ("method", "message"),
    [
        (
            "def cb_on_iteraton_end(self, metrics): pass",
            "callbacks.loss_log (LossLog.cb_on_iteraton_end): unknown hook 'cb_on_iteraton_end' "
            "(did you mean 'cb_on_iteration_end'?); valid hooks: cb_on_train_begin,",
        ),
        (
            "def cb_on_step_end(self, trainer, losss): pass",
            "callbacks.loss_log (LossLog.cb_on_step_end): parameter 'losss' is not provided by "
            "cb_on_step_end (did you mean 'loss'?); "
            "it provides: trainer, iteration, batch_idx, loss",
        ),
    ],
)
def test_bad_hooks_fail_at_start_up(trainer, tmp_path, method, message):
    module = USER_MODULE.replace(
        "    def cb_on_step_end(self, trainer, loss):",
        f"    {method}\n\n    def _unused(self, trainer, loss):",
    )
    _user_project(tmp_path, module)
    result = trainer(*WINE, "+callbacks=loss_log", "iterations=2", "progress_bar=false")
    assert result.code == 2
    assert message in result.err
    assert not (tmp_path / "results").exists()  # nothing trained, nothing written


def test_bad_hook_on_a_model_fails_before_any_run_of_a_sweep(trainer, tmp_path):
    module = USER_MODULE.replace(
        "def cb_on_iteration_end(self, metrics)", "def cb_on_epoch_end(self)"
    )
    _user_project(tmp_path, module)
    result = trainer("-m", "seed=1,2", *WINE, "model=TinyNet", "iterations=2", "progress_bar=false")
    assert result.code == 2
    assert "model (TinyNet.cb_on_epoch_end): unknown hook 'cb_on_epoch_end'" in result.err
    assert not (tmp_path / "results").exists()


def test_early_stopping_in_a_sweep_stops_only_the_stalled_run(trainer, tmp_path):
    result = trainer(
        "-m", "learning_rate=1e-7,0.003", *WINE, "iterations=8", "progress_bar=false",
        "device=cpu",  # the epochs it stops after are the CPU's numbers
        "+callbacks=early_stopping", "callbacks.early_stopping.metric=train_loss",
        "callbacks.early_stopping.patience=2", "callbacks.early_stopping.min_delta=0.01",
    )  # fmt: skip
    assert result.code == 0, result.err
    runs = {yaml.safe_load((r / "config.yaml").read_text())["learning_rate"]: r
            for r in run_dirs(tmp_path)}  # fmt: skip
    stalled, learning = runs[1e-7], runs[0.003]
    stopped = yaml.safe_load((stalled / "results.yaml").read_text())
    assert stopped["stopped_early"] is True
    assert stopped["stopped_at"] == 3  # epoch 1 sets the best, 2 and 3 do not improve
    details = stopped["early_stopping"]
    assert details == details | {"metric": "train_loss", "stopped_at": 3, "best_iteration": 1}
    first_loss = pd.read_csv(stalled / "metrics.csv").train_loss[0]
    assert details["best"] == pytest.approx(first_loss)
    assert len(pd.read_csv(stalled / "metrics.csv")) == 3
    full = yaml.safe_load((learning / "results.yaml").read_text())
    assert full["stopped_early"] is False and full["stopped_at"] is None
    assert "early_stopping" not in full
    assert len(pd.read_csv(learning / "metrics.csv")) == 8
    # the stopped run saved its last state at the stop, with the callback's state in it
    last = torch.load(stalled / "states/last.pt", weights_only=True)
    assert last["training"]["iteration"] == 3
    assert last["callbacks"]["callbacks.early_stopping"]["waited"] == 2


def test_timer_writes_phase_times(trainer, tmp_path):
    assert trainer(*WINE, "+callbacks=timer", "iterations=2", "progress_bar=false").code == 0
    (run,) = run_dirs(tmp_path)
    times = yaml.safe_load((run / "results.yaml").read_text())["time_s"]
    assert set(times) == {"train", "dev", "test"} and all(v > 0 for v in times.values())


def test_a_failing_callback_fails_the_run_and_keeps_saved_states(trainer, tmp_path):
    result = trainer(*WINE, "+callbacks.bug._target_=tests.helpers.FailingCallback",
                     "iterations=3", "progress_bar=false")  # fmt: skip
    assert result.code == 1
    (run,) = run_dirs(tmp_path)
    status = yaml.safe_load((run / "status.yaml").read_text())
    assert status == status | {
        "state": "failed",
        "error": "RuntimeError: callback bug at iteration 2",
    }
    state = torch.load(run / "states/last.pt", weights_only=True)  # saved after iteration 1
    assert state["training"]["iteration"] == 1
    assert "RuntimeError: callback bug at iteration 2" in (run / "train.log").read_text()


@pytest.mark.parametrize("raises", ["SystemExit", "KeyboardInterrupt"])
def test_sys_exit_or_keyboard_interrupt_in_user_code_fails_the_run_only(trainer, tmp_path, raises):
    """Issue 19, item 10: the run is `failed` (not left `running`), the other run of the
    sweep trains, a re-run counts the attempt, and nothing speaks of a Ctrl-C."""
    args = ("-m", "seed=1,2", *WINE, "+callbacks.bug._target_=tests.helpers.FailingCallback",
            f"+callbacks.bug.raises={raises}", "+callbacks.bug.at=1", "iterations=2",
            "progress_bar=false", "max_retries=1")  # fmt: skip
    result = trainer(*args)
    assert result.code == 1, result.out
    assert "sweep: 2 runs: 0 trained, 0 skipped (finished before), 2 failed" in result.out
    assert "second Ctrl-C" not in result.out + result.err
    assert f"{raises}" in result.out and "raised by the run's code" in result.out
    for run in run_dirs(tmp_path):
        status = yaml.safe_load((run / "status.yaml").read_text())
        assert status["state"] == "failed" and status["attempt"] == 1
    again = trainer(*args)
    assert again.code == 1 and "retry (attempt 2)" in again.out
    last = trainer(*args)
    assert last.code == 1 and "failed 2 times, max_retries is 1" in last.out


def test_a_stop_while_components_are_built_is_honoured_at_once(trainer, tmp_path):
    """Issue 19, item 11: a long loop outside the training step (here a callback's slow
    start-up) ends at a stop signal; nothing of the run is saved, the next command trains it."""
    args = (*WINE, "iterations=1", "progress_bar=false")
    result = trainer(*args, "+callbacks.slow._target_=tests.helpers.StopWhileBuilt")
    assert result.code == 143, (result.out, result.err)
    assert "before it started training (stopped by SIGTERM)" in result.out
    assert not list(tmp_path.glob("results/default/training/*/status.yaml"))


def test_sequential_runs_in_one_process_see_only_their_own_callbacks(trainer, tmp_path):
    result = trainer("-m", "seed=1,2", *WINE, *RECORD, "iterations=1")
    assert result.code == 0, result.err
    traces = [(run / "hooks.txt").read_text().splitlines() for run in run_dirs(tmp_path)]
    for lines in traces:
        assert len({line.rsplit("trainer=", 1)[1] for line in lines}) == 1
        assert sum(line.startswith("train_begin") for line in lines) == 1
    assert traces[0][0].rsplit("trainer=")[1] != traces[1][0].rsplit("trainer=")[1]


def test_two_dispatchers_hold_only_their_own_components():
    calls: list[tuple[str, int]] = []

    class Listener:
        def __init__(self, n):
            self.n = n

        def cb_on_train_begin(self):
            calls.append(("begin", self.n))

    first = CallbackDispatcher([("callbacks.a", Listener(1))])
    second = CallbackDispatcher([("callbacks.a", Listener(2)), ("callbacks.b", Listener(3))])
    first("cb_on_train_begin", trainer=None)
    second("cb_on_train_begin", trainer=None)
    assert calls == [("begin", 1), ("begin", 2), ("begin", 3)]
    assert len(first.handlers("cb_on_train_begin")) == 1


def test_only_declared_arguments_are_passed_and_kwargs_get_all():
    got = {}

    class Partial:
        def cb_on_step_end(self, loss, iteration):
            got["partial"] = (loss, iteration)

    class Everything:
        def cb_on_step_end(self, **kwargs):
            got["all"] = sorted(kwargs)

    dispatcher = CallbackDispatcher([("a", Partial()), ("b", Everything())])
    dispatcher("cb_on_step_end", trainer="t", iteration=4, batch_idx=1, loss=0.5)
    assert got == {"partial": (0.5, 4), "all": ["batch_idx", "iteration", "loss", "trainer"]}


def test_hook_must_be_a_method():
    class NotAMethod:
        cb_on_train_begin = 3

    with pytest.raises(ConfigError, match="must be a method"):
        CallbackDispatcher([("callbacks.x", NotAMethod())])


def test_hook_contract_is_documented():
    from sweeptrainer.callbacks.hooks import HOOKS

    doc = (
        pytest.importorskip("pathlib").Path(__file__).parents[2] / "docs/callbacks.md"
    ).read_text()
    for hook, args in HOOKS.items():
        assert f"`{hook}`" in doc and ", ".join(f"`{a}`" for a in args) in doc, hook


GRADIENTS = '''
import json


class GradientWatch:
    """Sees the gradients before the optimizer step, and none after it."""

    def __init__(self):
        self.seen = []

    def cb_on_before_optimizer_step(self, trainer, optimizer, batch_idx):
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
        norm = sum(float(g.norm()) ** 2 for g in grads if g is not None) ** 0.5
        self.seen.append(("before", batch_idx, norm))

    def cb_on_step_end(self, trainer, batch_idx):
        grads = [p.grad for p in trainer.model.parameters()]
        self.seen.append(("end", batch_idx, sum(g is not None for g in grads)))

    def cb_on_test_end(self):
        with open("gradients.json", "w") as f:
            json.dump(self.seen, f)
'''


def test_gradients_are_there_before_the_optimizer_step_and_gone_at_step_end(trainer, tmp_path):
    (tmp_path / "gradient_watch.py").write_text(GRADIENTS)
    # accumulation over 2 batches: one optimizer step per pair, the hook once per step
    result = trainer(*WINE, "iterations=1", "accumulation_steps=2", "progress_bar=false",
                     "+callbacks.watch._target_=gradient_watch.GradientWatch")  # fmt: skip
    assert result.code == 0, result.err
    seen = json.loads((tmp_path / "gradients.json").read_text())
    assert [s[:2] for s in seen] == [["end", 0], ["before", 1], ["end", 1], ["before", 2],
                                     ["end", 2]]  # fmt: skip
    assert all(norm > 0 for kind, _, norm in seen if kind == "before")
    ends = {batch: count for kind, batch, count in seen if kind == "end"}
    assert ends[0] > 0 and ends[1] == ends[2] == 0  # accumulating; then stepped and cleared
