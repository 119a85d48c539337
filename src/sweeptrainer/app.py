"""One run, start to finish: check -> decide (skip or train) -> build -> fit -> test -> write.

Everything that can be wrong with the user's input is found before the run
folder is touched: a bad config or a missing data file leaves the results folder
exactly as it was. Failures during training are written to the run's
``status.yaml`` and ``train.log``, never only to the terminal.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweeptrainer.config.naming import config_hash, run_name
from sweeptrainer.config.schema import validate
from sweeptrainer.errors import ConfigError
from sweeptrainer.io.run_dir import RunDir, training_dir
from sweeptrainer.logs import attach_file, detach

log = logging.getLogger("sweeptrainer")


@dataclass
class RunOutcome:
    """What happened to one run: trained, skipped or failed, and where."""

    name: str
    path: Path | None
    state: str  # finished | skipped | failed | invalid
    exit_code: int = 0
    error: str | None = None
    results: dict[str, Any] = field(default_factory=dict)


def locate_run(cfg: DictConfig, overrides: Sequence[str]) -> RunDir:
    return RunDir(training_dir(cfg.results_dir, cfg.experiment_id) / run_name(cfg, overrides))


def train_run(cfg: DictConfig, overrides: Sequence[str] = ()) -> RunOutcome:
    """Train the run ``cfg`` describes, or skip it when it already finished.

    Raises ConfigError for problems in the input (before anything is written);
    a failure during training returns a ``failed`` outcome after recording it.
    """
    validate(cfg)
    run_dir = locate_run(cfg, overrides)
    chash = config_hash(cfg)
    status = run_dir.read_status()
    if status is not None and status.get("config_hash") != chash:
        raise ConfigError(
            f"run folder {run_dir.path} holds a run of a different config "
            f"(hash {status.get('config_hash')} there, {chash} now). Use another experiment_id, "
            "or remove that folder to train it again."
        )
    if status is not None and status.get("state") == "finished":
        log.info(f"skip {run_dir.name}: finished ({run_dir.path})")
        return RunOutcome(
            run_dir.name, run_dir.path, "skipped", results=run_dir.read_results() or {}
        )

    # Build everything before touching the run folder: input errors change nothing on disk.
    from sweeptrainer.training.builder import build, resolve_device
    from sweeptrainer.training.state import seed_everything
    from sweeptrainer.training.trainer import ModularTaskTrainer

    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    components = build(cfg, device, run_dir.path)
    trainer = ModularTaskTrainer(cfg, components, run_dir, device)

    run_dir.path.mkdir(parents=True, exist_ok=True)
    run_dir.write_config(OmegaConf.to_yaml(cfg, resolve=True))
    run_dir.write_status("running", chash)
    handler = attach_file(run_dir.log)
    try:
        log.info(f"train {run_dir.name} on {device} -> {run_dir.path}")
        trainer.fit()
        results = trainer.test()
        run_dir.write_results(results)
        run_dir.write_status("finished", chash)
    except ConfigError as err:  # found at start-up by a component (e.g. a callback's check)
        log.error(f"error: {err}")
        run_dir.write_status("failed", chash, error=f"ConfigError: {err}")
        return RunOutcome(run_dir.name, run_dir.path, "invalid", 2, str(err))
    except Exception as err:
        message = f"{type(err).__name__}: {err}"
        log.debug(traceback.format_exc())  # train.log only
        log.error(f"run failed: {message} (details: {run_dir.log})")
        run_dir.write_status("failed", chash, error=message)
        return RunOutcome(run_dir.name, run_dir.path, "failed", 1, message)
    finally:
        detach(handler)
    tests = "  ".join(f"{k} {v:.4f}" for k, v in results["test"].items())
    log.info(f"finished {run_dir.name}: test {tests}")
    log.info(f"run folder: {run_dir.path}")
    return RunOutcome(run_dir.name, run_dir.path, "finished", results=results)


def make_task(outcomes: list[RunOutcome]) -> Callable[[DictConfig], None]:
    """The Hydra task function: trains one job's run and records its outcome.

    It never raises for a failed or invalid run, so the other jobs of a sweep go on;
    the CLI turns the outcomes into the exit code.
    """

    def task(cfg: DictConfig) -> None:
        from hydra.core.hydra_config import HydraConfig

        overrides = list(HydraConfig.get().overrides.task)
        try:
            outcomes.append(train_run(cfg, overrides))
        except ConfigError as err:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                traceback.print_exc()
            print(f"trainer: error: {err}", file=sys.stderr)
            outcomes.append(RunOutcome(" ".join(overrides), None, "invalid", 2, str(err)))

    return task
