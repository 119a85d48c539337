"""The ModularTaskTrainer: one loop for epoch and step training, evaluation, best state, test.

Read top to bottom: :meth:`fit` trains period by period (a period is the
``eval_frequency`` iterations between two evaluations), :meth:`_train_until`
runs the batches of one period, :meth:`_evaluate` scores dev and keeps the best
state, :meth:`test` scores the best state on test. The only difference between
epoch and step training is whether an iteration ends with a batch or with the
end of the training data (:class:`~sweeptrainer.training.budget.Budget`).
"""

from __future__ import annotations

import functools
import logging
import math
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import torch
from omegaconf import DictConfig
from torch import nn

from sweeptrainer.callbacks.dispatcher import CallbackDispatcher
from sweeptrainer.errors import Interrupted, Pruned, TrainingError
from sweeptrainer.io.run_dir import RunDir
from sweeptrainer.io.state_saver import StateSaver
from sweeptrainer.training.batch_source import Batch, BatchSource, epoch_order
from sweeptrainer.training.budget import Budget
from sweeptrainer.training.builder import Components
from sweeptrainer.training.checkpoint import describe_dataset
from sweeptrainer.training.distributed import Distributed
from sweeptrainer.training.evaluate import (
    SplitResult,
    evaluate,
    grouped_metrics,
    outputs_frame,
    sample_info,
)
from sweeptrainer.training.progress import Progress, evaluation_line
from sweeptrainer.training.schedule import Schedule
from sweeptrainer.training.signals import StopSignals
from sweeptrainer.training.state import (
    TrainingState,
    pack_optimizer_state,
    rng_state,
    set_rng_state,
    unpack_optimizer_state,
)
from sweeptrainer.training.step import Stepper, fit_groups

log = logging.getLogger("sweeptrainer")


class ModularTaskTrainer:
    """Trains the built components of one run and writes what it produces into ``run_dir``.

    Callbacks see the trainer: ``model``, ``optimizer``, ``scheduler``, ``criterion``,
    ``dataset``, ``cfg``, ``run_dir``, ``device``, ``state`` (a TrainingState),
    ``components`` (metrics and tracking metric too). They may set ``should_stop = True``
    to end training after the current evaluation, and put entries into ``summary``,
    which is written into ``results.yaml``.

    ``trial``: set when the run is a trial of a search (``hydra/sweeper=search``); called
    at every evaluation with the iteration and the dev tracking metric, it reports them to
    the study and says whether the search's pruner stops the run here.
    """

    trial: Callable[[int, float], bool] | None = None

    def __init__(
        self,
        cfg: DictConfig,
        components: Components,
        run_dir: RunDir,
        device: torch.device,
        signals: StopSignals | None = None,
        dist: Distributed | None = None,
    ) -> None:
        self.cfg = cfg
        self.components = components
        self.dataset = components.dataset
        self.model = components.model
        self.criterion = components.criterion
        self.optimizer = components.optimizer
        self.scheduler = components.scheduler
        assert components.schedule is not None  # set by build()
        self.schedule: Schedule = components.schedule  # when the scheduler steps
        self.run_dir = run_dir
        self._saver = StateSaver(run_dir)  # states/*.pt written beside the training
        self.device = device
        self.budget = Budget(
            cfg.training_type, cfg.iterations, cfg.eval_frequency, cfg.save_frequency
        )
        self.state = TrainingState()
        self.signals = signals
        self.dist = dist or Distributed()
        # Checks every cb_on_* method now, so a typo fails before the first step.
        self.callbacks = CallbackDispatcher(components.in_dispatch_order())
        loading = {
            "seed": cfg.seed,
            "num_workers": cfg.num_workers,
            "pin_memory": cfg.pin_memory,
            "persistent_workers": cfg.persistent_workers,
            "collate": components.collate,  # dataset.batch.collate, for every split
        }
        splits = components.splits  # the dataset's, the training one with its augmentation
        self.sources = {
            "train": BatchSource(
                splits["train"],
                cfg.batch_size,
                device,
                **loading,
                batch_transform=components.batch_transform,
            ),
            "dev": BatchSource(splits["dev"], cfg.inference_batch_size, device, **loading),
            "test": BatchSource(splits["test"], cfg.inference_batch_size, device, **loading),
        }
        # the compiled module shares its weights with self.model, which states save
        # torch.compile returns an OptimizedModule (a Module) for a module, typed a callable
        self.forward: nn.Module = (
            cast(nn.Module, torch.compile(self.model)) if cfg.compile else self.model
        )
        self._eval_forward = self.forward
        if self.dist.world > 1:  # one run across processes: gradients averaged by DDP
            ids = [device.index] if device.type == "cuda" else None
            self.forward = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.stepper = Stepper(
            self.forward, self.model, self.criterion, self.optimizer, cfg, device
        )
        self._period_loss = torch.zeros((), device=device)
        self._bar: Any = None
        self._order: torch.Tensor | None = None  # the current epoch's data order
        self._dataset_info = describe_dataset(self.dataset)  # for `trainer inference`

    @property
    def optimizer_steps(self) -> int:
        """Optimizer steps taken so far: the x-axis of per-step logging (TensorBoard)."""
        batches, done, n = (
            self.sources["train"].num_batches,
            self.state.batch_in_epoch,
            self.stepper.accumulation,
        )
        per_epoch = -(-batches // n)
        # a group still accumulating has not stepped; the epoch's last (smaller) group has
        in_epoch = per_epoch if done >= batches else done // n
        return self.state.epoch * per_epoch + in_epoch

    def steps_at(self, iteration: int) -> int:
        """The optimizer steps taken when ``iteration`` ended (an epoch is a full pass)."""
        if self.budget.per_step:
            return iteration
        return iteration * -(-self.sources["train"].num_batches // self.stepper.accumulation)

    @property
    def should_stop(self) -> bool:
        """Set to True (from a callback) to end training after the current evaluation."""
        return self.state.should_stop

    @should_stop.setter
    def should_stop(self, value: bool) -> None:
        self.state.should_stop = bool(value)

    @property
    def summary(self) -> dict[str, Any]:
        """Entries a callback adds here are written into results.yaml (and survive a resume)."""
        return self.state.summary

    # -- training -------------------------------------------------------------------
    def fit(self) -> None:
        """Train until ``iterations`` are done or a callback asks to stop."""
        self._clock = time.perf_counter() - self.state.elapsed_s
        self._bar = Progress.open(
            self.cfg.progress_bar, self.budget.unit, self.budget.total, self.state.iteration,
            self.sources["train"].num_batches,
        )  # fmt: skip
        self.callbacks("cb_on_train_begin", trainer=self)
        batches = self._train_batches()
        try:
            while not self.budget.done(self.state.iteration) and not self.should_stop:
                self._train_until(self.budget.next_eval(self.state.iteration), batches)
                self._evaluate()
        except BaseException:
            self._saver.close_quietly()  # the states saved so far land; the error wins
            if self._bar is not None:
                self._bar.close()
            raise
        self._saver.close()
        self.state.elapsed_s = time.perf_counter() - self._clock
        if self.dist.is_main:
            self.run_dir.sync_states()
        if self._bar is not None:
            self._bar.close()
        self.callbacks("cb_on_train_end", trainer=self)

    def _train_batches(self) -> Iterator[tuple[int, Batch, bool]]:
        """(batch_idx, batch, is_last_of_epoch), epoch after epoch, from the saved position."""
        source = self.sources["train"]
        while True:
            if self._order is None or self.state.batch_in_epoch == 0:
                self._order = epoch_order(source.n, self.cfg.seed, self.state.epoch)
            start = self.state.batch_in_epoch
            shard = self.dist.shard if self.dist.world > 1 else None
            batches = source.batches(self._order, start, shard, token=self.state.epoch)
            given = False
            for batch_idx, batch in enumerate(batches, start=start):
                given = True
                yield batch_idx, batch, batch_idx == source.num_batches - 1
            if not given:  # else this loop would spin for ever, deaf to stop signals
                raise TrainingError(
                    f"the training data gave no batch in epoch {self.state.epoch + 1} "
                    f"(from batch {start} of {source.num_batches}): nothing to train on"
                )

    def _train_until(self, end: int, batches: Iterator[tuple[int, Batch, bool]]) -> None:
        """Train the batches of one period: up to iteration ``end``.

        With ``accumulation_steps`` N, the batches of an epoch form groups of N (the last
        group may be smaller) and each group ends with one optimizer step.
        """
        self.model.train()
        self.callbacks("cb_on_iteration_begin", trainer=self, iteration=self.state.iteration + 1)
        per_step, n, world = self.budget.per_step, self.stepper.accumulation, self.dist.world
        split_batch = self.components.layout.split
        per_batch_schedule = self.schedule.frequency == "batch"
        # read once per period, not per step (config access is slow on the hot path)
        batch_size, n_train = self.cfg.batch_size, self.sources["train"].n
        n_batches = self.sources["train"].num_batches
        # per-step hooks only when some component implements them (no dict per step otherwise)
        step_begin, step_end, before_step = (
            "cb_on_step_begin" in self.callbacks,
            "cb_on_step_end" in self.callbacks,
            "cb_on_before_optimizer_step" in self.callbacks,
        )
        bar = self._bar
        while self.state.iteration < end:
            if self._stop_requested() and self._group_start():
                received = self.signals.received if self.signals is not None else None
                self._stop_now(received or signal.SIGTERM)  # between optimizer steps
            batch_idx, batch, last = next(batches)
            inputs, y, _ = split_batch(batch)
            iteration = self.state.iteration + 1
            if step_begin:
                self.callbacks(
                    "cb_on_step_begin", trainer=self, iteration=iteration, batch_idx=batch_idx
                )
            group_start = batch_idx // n * n
            # across processes: this one's part of the batch, relative to an even split
            share = (
                len(y) * world / min(batch_size, n_train - batch_idx * batch_size)
                if world > 1
                else 1.0
            )
            loss = self.stepper.backward(inputs, y, min(n, n_batches - group_start), share)
            # stays on the device: no sync per step
            self._period_loss += loss if world == 1 else loss * (share / world)
            self.state.period_batches += 1
            self.state.batch_in_epoch += 1
            group_done = last or batch_idx + 1 == group_start + n
            if group_done:
                hook = None
                if before_step:
                    hook = functools.partial(
                        self.callbacks, "cb_on_before_optimizer_step", trainer=self,
                        iteration=iteration, batch_idx=batch_idx, optimizer=self.optimizer,
                    )  # fmt: skip
                self.stepper.step(hook)
                if per_batch_schedule:
                    self.schedule.step()
            if step_end:
                self.callbacks(
                    "cb_on_step_end",
                    trainer=self,
                    iteration=iteration,
                    batch_idx=batch_idx,
                    loss=loss,
                )
            if bar is not None:
                bar.batch(loss, self.state.batch_in_epoch, self.state.epoch)
            if per_step and group_done:
                self._complete_iteration()
            if last:
                self.callbacks("cb_on_loader_exhausted", trainer=self, iteration=iteration)
                self.state.epoch += 1
                self.state.batch_in_epoch = 0
                if not per_step:
                    self._complete_iteration()

    def _stop_now(self, signum: int) -> None:
        """A stop signal: keep everything done so far in last.pt, then stop."""
        self._period_loss.copy_(self.dist.sum(self._period_loss))  # every process takes part
        if self.dist.is_main:
            self._saver.close()  # in order: an earlier best.pt, then this last.pt
            self.run_dir.save_state("last", self.state_dict())
        if self._bar is not None:
            self._bar.close()
        raise Interrupted(signum)

    def _stop_requested(self) -> bool:
        """A stop signal reached this process (or, across processes, any of them)."""
        received = self.signals is not None and self.signals.received is not None
        return self.dist.any(received) if self.dist.world > 1 else received

    def _group_start(self) -> bool:
        """True between two optimizer steps (no gradients are being accumulated)."""
        return self.state.batch_in_epoch % self.stepper.accumulation == 0

    def _complete_iteration(self) -> None:
        self.state.iteration += 1
        if self.schedule.frequency == "iteration":
            self.schedule.step()
        if self._bar is not None:
            self._bar.iteration()

    # -- evaluation -------------------------------------------------------------------
    def _run_split(
        self, split: str, hooks: bool = True, source: BatchSource | None = None
    ) -> SplitResult:
        begin, end = f"cb_on_{split}_step_begin", f"cb_on_{split}_step_end"
        wanted = hooks and (begin in self.callbacks or end in self.callbacks)

        def on_step(phase: str, batch_idx: int, loss: torch.Tensor | None) -> None:
            if phase == "begin":
                self.callbacks(begin, trainer=self, batch_idx=batch_idx)
            else:
                self.callbacks(end, trainer=self, batch_idx=batch_idx, loss=loss)

        c = self.components
        with self.stepper.autocast():
            return evaluate(
                self._eval_forward,
                self.criterion,
                source or self.sources[split],
                self.dataset,
                c.metrics,
                c.layout,
                on_step if wanted else None,
                self.dist,
            )

    def _evaluate(self) -> None:
        """Score dev, record the metrics row, keep the best state, save, tell the callbacks."""
        it, state = self.state.iteration, self.state
        train_loss = float(self.dist.sum(self._period_loss)) / max(state.period_batches, 1)
        if not math.isfinite(train_loss):
            first = (it - 1) // self.budget.eval_every * self.budget.eval_every + 1
            span = f"{first}-{it}" if first < it else str(it)
            raise TrainingError(
                f"the training loss became {train_loss} in {self.budget.unit} {span}"
            )
        self.callbacks("cb_on_dev_begin", trainer=self, iteration=it)
        dev = self._run_split("dev")
        state.elapsed_s = time.perf_counter() - self._clock
        row = {
            "iteration": it,
            "train_loss": train_loss,
            "dev_loss": dev.loss,
            **{f"dev_{name}": value for name, value in dev.metrics.items()},
            "learning_rate": self.schedule.rate(),  # the rate this period trained with
            "elapsed_s": round(state.elapsed_s, 3),
        }
        self._period_loss.zero_()
        state.period_batches = 0
        self.callbacks("cb_on_dev_end", trainer=self, iteration=it, metrics=row)
        state.rows.append(row)
        tracking = self.components.tracking
        value = dev.loss if tracking.name == "loss" else dev.metrics[tracking.name]
        improved = tracking.is_better(value, state.best_value)
        if improved:
            state.best_value, state.best_iteration = value, it
        if self.schedule.frequency == "evaluation":
            self.schedule.step(row)
        self._log_row(row, improved)
        self.callbacks("cb_on_iteration_end", trainer=self, iteration=it, metrics=row)
        pruned = self._pruned(it, float(value))
        if self.dist.is_main:  # one writer per run folder
            # the files of the final evaluation are fsynced; the ones before need be atomic
            final = self.budget.done(it) or self.should_stop or pruned
            self.run_dir.write_metrics(state.rows, durable=final)
            save_last = self.budget.is_save_point(it) or self.should_stop or pruned
            if improved or save_last:
                names = ("best",) * improved + ("last",) * save_last
                self._saver.save(names, self.state_dict(), durable=final)  # one copy for both
        if pruned:
            if self.dist.is_main:
                self._saver.close()  # last.pt lands before the run reads as pruned
            raise Pruned(it, tracking.name, float(value))

    def _pruned(self, iteration: int, value: float) -> bool:
        """Whether the search's pruner stops the run at this evaluation (asked on the main
        process, which owns the trial; every process of a distributed run follows it)."""
        if self.trial is None:
            return False
        pruned = self.trial(iteration, value) if self.dist.is_main else False
        if self.budget.done(iteration):  # reported, but the run is complete: not pruned
            return False
        return self.dist.any(pruned) if self.dist.world > 1 else pruned

    def _log_row(self, row: dict[str, float], improved: bool) -> None:
        # regression targets standardised for training: the losses are in those units, the
        # metrics in the original ones (0.50 vs 3075 would read as a contradiction)
        scaled = getattr(self.dataset, "target_std", None) is not None
        unit, total = self.budget.unit, self.budget.total
        log.info(evaluation_line(unit, int(row["iteration"]), total, row, improved, scaled))

    def test(self) -> dict[str, Any]:
        """Load the best state, score test (and dev) with it, write outputs and results."""
        self.dist.barrier()  # rank 0 has written best.pt
        best = self.run_dir.load_state("best", map_location=str(self.device))
        self.model.load_state_dict(best["model"])
        self.callbacks("cb_on_test_begin", trainer=self)
        test = self._run_split("test")
        metrics = {"test_loss": test.loss, **{f"test_{k}": v for k, v in test.metrics.items()}}
        self.callbacks("cb_on_test_end", trainer=self, metrics=metrics)
        outputs = {"test": (test, self.cfg.save_test_outputs)}
        outputs["dev"] = (self._run_split("dev", hooks=False), self.cfg.save_dev_outputs)
        if self.cfg.save_train_outputs:  # the training data as it is, without augmentation
            plain = BatchSource(  # the training data as it is, without augmentation
                self.dataset.train,
                self.cfg.inference_batch_size,
                self.device,
                self.cfg.seed,
                self.cfg.num_workers,
                self.cfg.pin_memory,
                collate=self.components.collate,
            )
            outputs["train"] = (self._run_split("train", hooks=False, source=plain), True)
        for split, (result, wanted) in outputs.items():
            if wanted and self.dist.is_main:
                self.run_dir.write_output(split, outputs_frame(result, self.dataset, split))
        best_row = next(r for r in self.state.rows if r["iteration"] == self.state.best_iteration)
        stopped_early = self.should_stop and self.state.iteration < self.budget.total
        stratify = list(self.cfg.dataset.get("stratify") or [])
        stratified = (
            {  # every metric per group (speaker, device, ...), on dev and test
                split: grouped_metrics(
                    outputs[split][0],
                    sample_info(self.dataset, split),
                    stratify,
                    self.components.metrics,
                )
                for split in ("dev", "test")
            }
            if stratify
            else None
        )
        return {
            "best_iteration": self.state.best_iteration,
            "tracking_metric": self.components.tracking.name,
            "tracking_direction": "max" if self.components.tracking.higher_is_better else "min",
            "dev": {k.removeprefix("dev_"): v for k, v in best_row.items() if k.startswith("dev_")},
            "test": {k.removeprefix("test_"): v for k, v in metrics.items()},
            "train_time_s": round(self.state.elapsed_s, 3),
            "iterations_done": self.state.iteration,
            "stopped_early": stopped_early,
            "stopped_at": self.state.iteration if stopped_early else None,
            **({"stratified": stratified} if stratified else {}),
            **self.summary,
        }

    # -- state ------------------------------------------------------------------------
    @functools.cached_property
    def _hashes(self) -> tuple[str, str]:
        from sweeptrainer.config.naming import config_hash

        return config_hash(self.cfg), config_hash(self.cfg, ignore=("iterations",))

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly; loadable with ``weights_only=True``."""
        self.state.period_loss = float(self._period_loss)
        self.state.elapsed_s = time.perf_counter() - self._clock
        return {
            "model": self.model.state_dict(),
            "optimizer": pack_optimizer_state(self.optimizer.state_dict()),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "training": self.state.state_dict(),
            "rng": rng_state(),
            "data_order": self._order,
            "scaler": self.stepper.state_dict(),
            "dataset": self._dataset_info,
            # whose state this is: a state copied from another run is refused on resume
            "config_hash": self._hashes[0],
            "base_hash": self._hashes[1],
            "callbacks": {label: obj.state_dict() for label, obj in self._stateful_callbacks()},
        }

    def _stateful_callbacks(self) -> list[tuple[str, Any]]:
        """Loggers and callbacks that keep state across a resume (they define state_dict)."""
        c = self.components
        entries = [(f"loggers.{k}", v) for k, v in c.loggers.items()]
        entries += [(f"callbacks.{k}", v) for k, v in c.callbacks.items()]
        return [(label, obj) for label, obj in entries if hasattr(obj, "state_dict")]

    def load_state_dict(self, data: dict[str, Any]) -> None:
        self.model.load_state_dict(data["model"])
        optimizer_state = unpack_optimizer_state(data["optimizer"])
        self.optimizer.load_state_dict(fit_groups(optimizer_state, self.optimizer))
        if self.scheduler is not None and data["scheduler"] is not None:
            self.scheduler.load_state_dict(data["scheduler"])
        self.state.load_state_dict(data["training"])
        self._order = data.get("data_order") if self.state.batch_in_epoch else None
        self._period_loss.fill_(self.state.period_loss / self.dist.world)
        self.stepper.load_state_dict(data.get("scaler"))
        set_rng_state(data["rng"])
        saved = data.get("callbacks", {})
        for label, obj in self._stateful_callbacks():
            if label in saved:
                obj.load_state_dict(saved[label])
