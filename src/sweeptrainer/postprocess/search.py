"""A search's studies (``search/<study>/journal.log``) in the report: how the objective
improved trial after trial, and each trial's dev metric per iteration with the pruned
ones apart, so that one sees what the sampler tried and where the pruner cut.

Optuna is an optional extra: without it the studies are only named. A results folder is
untrusted: a study folder or journal that is a symbolic link, or leads out of the
experiment, is not read, and a journal Optuna cannot read is skipped with a note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweeptrainer.io.untrusted import finite
from sweeptrainer.postprocess.collect import Experiment, inside
from sweeptrainer.postprocess.curves import unit
from sweeptrainer.postprocess.plots import Figure, file_name, log_axis, short
from sweeptrainer.postprocess.tables import esc, fmt
from sweeptrainer.study import JOURNAL, RUN_ATTR, SEARCH_DIR

STATES = ("complete", "pruned", "fail", "running", "waiting")  # Optuna's, in this order


@dataclass
class Trial:
    """One trial as the report shows it."""

    number: int  # 1-based, as the sweep's lines say ``trial k/N``
    state: str  # one of STATES
    value: float | None  # its objective; a pruned trial's last reported value
    steps: np.ndarray  # the iterations it reported at
    values: np.ndarray  # its dev tracking metric there
    run: str | None  # its run folder's name
    params: dict[str, Any]


@dataclass
class Study:
    """One study's trials, and the figures drawn of them."""

    name: str
    maximize: bool
    metric: str  # what the objective is: ``dev accuracy``
    n_trials: int | None  # how many the search asks for (best.yaml); None when unknown
    trials: list[Trial]
    figures: list[Figure] = field(default_factory=list)

    @property
    def best(self) -> Trial | None:
        """The best complete trial (Optuna's pick: the first of equal ones)."""
        complete = [t for t in self.trials if t.state == "complete" and t.value is not None]
        sign = 1.0 if self.maximize else -1.0
        return max(complete, key=lambda t: sign * float(t.value or 0)) if complete else None


@dataclass
class Searches:
    """The experiment's readable studies and one line per thing that could not be read."""

    studies: list[Study] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _xy(pairs: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) pairs as two arrays."""
    array = np.array(pairs, dtype=float).reshape(-1, 2)
    return array[:, 0], array[:, 1]


def _journals(root: Path, notes: list[str]) -> list[Path]:
    """The study journals that may be read: no symbolic link on the way, inside ``root``."""
    folder = root / SEARCH_DIR
    if not folder.exists() and not folder.is_symlink():
        return []
    if folder.is_symlink() or not folder.is_dir() or not inside(folder, root):
        notes.append(f"{folder}: a symbolic link or not a folder, not read")
        return []
    journals = []
    try:
        studies = sorted(folder.iterdir())
    except OSError as err:
        notes.append(f"{folder}: unreadable ({err.strerror}), not read")
        return []
    for study in studies:
        journal = study / JOURNAL
        if study.is_symlink() or journal.is_symlink():
            notes.append(f"{journal}: a symbolic link, not read")
        elif journal.is_file() and inside(journal, root):
            journals.append(journal)
    return journals


def _run_curve(run: str | None, experiment: Experiment) -> tuple[np.ndarray, np.ndarray]:
    """The run's dev tracking metric per iteration from its metrics.csv (for a trial that
    reported nothing to the study)."""
    curves = experiment.curves
    column = f"dev_{experiment.run_tracking.get(run or '', experiment.tracking)}"
    if run is None or curves.empty or column not in curves.columns:
        return np.empty(0), np.empty(0)
    own = curves[curves["run"] == run]
    steps = pd.to_numeric(own["iteration"], errors="coerce").to_numpy(dtype=float)
    values = pd.to_numeric(own[column], errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(steps) & np.isfinite(values)
    return steps[keep], values[keep]


def _trial(frozen: Any, experiment: Experiment) -> Trial:
    """An Optuna FrozenTrial as the figures draw it."""
    points = sorted(
        (step, value)
        for step, value in ((finite(k), finite(v)) for k, v in frozen.intermediate_values.items())
        if step is not None and value is not None
    )
    run = frozen.user_attrs.get(RUN_ATTR)
    run = run if isinstance(run, str) else None
    steps, values = _xy(points) if points else _run_curve(run, experiment)
    state = frozen.state.name.lower()
    value = finite(frozen.value) if state == "complete" else None
    if state == "pruned" and len(values):
        value = float(values[-1])
    return Trial(frozen.number + 1, state, value, steps, values, run, dict(frozen.params))


def _read_study(journal: Path, experiment: Experiment) -> Study:
    """The study in ``journal``, named like its folder (as the sweeper names it)."""
    from sweeptrainer import study as search

    name = journal.parent.name
    study = search.open_study(search.journal(journal), name)
    progress = search.read_progress(journal.parent) or {}
    metric = progress.get("metric")
    if not isinstance(metric, str):
        metric = f"dev {experiment.tracking}" if experiment.tracking else "objective"
    n_trials = progress.get("n_trials")
    trials = [_trial(t, experiment) for t in study.get_trials(deepcopy=False)]
    return Study(name, study.direction.name == "MAXIMIZE", metric, n_trials, trials)


def read_searches(experiment: Experiment) -> Searches:
    """Every study of the experiment that can be read; a note for each one that cannot
    (postprocessing goes on without it)."""
    searches = Searches()
    journals = _journals(experiment.root, searches.notes)
    if not journals:
        return searches
    try:
        import optuna  # noqa: F401  (the search extra)
    except ImportError:
        searches.notes.append(f"{experiment.root / SEARCH_DIR}: {len(journals)} search "
                              "study(ies) not plotted: Optuna is not installed "
                              "(pip install 'sweeptrainer[search]')")  # fmt: skip
        return searches
    for journal in journals:
        try:
            searches.studies.append(_read_study(journal, experiment))
        except Exception as err:  # anything Optuna raises on a damaged journal
            first = (str(err).strip().splitlines() or [""])[0][:120]
            searches.notes.append(f"{journal}: not a readable study journal "
                                  f"({type(err).__name__}: {first}), skipped")  # fmt: skip
    return searches


def _history(study: Study, out: Path) -> Figure | None:
    """The objective per trial: complete trials and the best so far, pruned ones apart."""
    xs, ys = _xy(sorted((float(t.number), t.value) for t in study.trials
                        if t.state == "complete" and t.value is not None))  # fmt: skip
    px, py = _xy([(float(t.number), t.value) for t in study.trials
                  if t.state == "pruned" and t.value is not None])  # fmt: skip
    if not len(xs) and not len(px):
        return None
    best = (np.maximum if study.maximize else np.minimum).accumulate(ys) if len(ys) else ys
    last = max(t.number for t in study.trials)
    top = study.best

    def make(plt: Any) -> Any:
        from matplotlib.ticker import MaxNLocator

        fig, ax = plt.subplots(figsize=(6.5, 4.2), layout="constrained")
        if len(xs):
            ax.step(np.append(xs, last), np.append(best, best[-1]), where="post",
                    color="tab:red", linewidth=1.5, label="best so far")  # fmt: skip
            ax.scatter(xs, ys, s=22, color="tab:blue", zorder=3, label="complete trial")
        if len(px):
            ax.scatter(px, py, s=30, marker="x", color="tab:gray", zorder=3,
                       label="pruned trial (last value)")  # fmt: skip
        if top is not None:
            ax.scatter([top.number], [top.value], marker="*", s=160, color="gold",
                       edgecolors="black", zorder=4, label=f"best: trial {top.number}")  # fmt: skip
        if log_axis("objective", np.concatenate([ys, py])):
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("trial")
        ax.set_ylabel(short(study.metric, 40))
        ax.set_title(short(f"{study.name}: optimisation history", 70), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return fig

    caption = (f"Study {study.name}: {study.metric} of each trial, by trial number; dots: "
               f"complete trials, line: the best so far ({'higher' if study.maximize else 'lower'}"
               " is better), crosses: pruned trials at the last value they reported; failed "
               "trials are left out.")  # fmt: skip
    return Figure(out / file_name(f"search_{study.name}_history"), make, None, caption, "search")


def _trials(study: Study, out: Path, unit_name: str) -> Figure | None:
    """Each trial's dev metric per iteration: complete ones coloured by trial number,
    pruned ones dashed grey up to where the pruner stopped them, the best one black."""
    complete = [t for t in study.trials if t.state == "complete" and len(t.steps)]
    pruned = [t for t in study.trials if t.state == "pruned" and len(t.steps)]
    if not complete and not pruned:
        return None
    top = study.best

    def make(plt: Any) -> Any:
        from matplotlib.collections import LineCollection
        from matplotlib.colors import Normalize
        from matplotlib.ticker import MaxNLocator

        fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
        handles = []
        if complete:
            numbers = np.array([t.number for t in complete], dtype=float)
            norm = Normalize(numbers.min(), max(numbers.max(), numbers.min() + 1))
            lines = LineCollection([np.column_stack([t.steps, t.values]) for t in complete],
                                   cmap="viridis", norm=norm, linewidths=1.2,
                                   alpha=0.8)  # fmt: skip
            lines.set_array(numbers)
            ax.add_collection(lines)
            ax.scatter([t.steps[-1] for t in complete], [t.values[-1] for t in complete],
                       c=numbers, cmap="viridis", norm=norm, s=14, zorder=3)  # fmt: skip
            if len(complete) > 1:
                bar = fig.colorbar(lines, ax=ax, label="trial", pad=0.01)
                bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            handles.append(plt.Line2D([], [], color=plt.get_cmap("viridis")(0.5),
                                      label="complete trial"))  # fmt: skip
        if pruned:
            ax.add_collection(LineCollection([np.column_stack([t.steps, t.values]) for t in pruned],
                                             colors="tab:gray", linestyles="--", linewidths=1,
                                             alpha=0.7))  # fmt: skip
            ax.scatter([t.steps[-1] for t in pruned], [t.values[-1] for t in pruned],
                       marker="x", s=30, color="tab:gray", zorder=3)  # fmt: skip
            handles.append(plt.Line2D([], [], color="tab:gray", linestyle="--", marker="x",
                                      label="pruned trial (x: where it was pruned)"))  # fmt: skip
        if top is not None and len(top.steps):
            ax.plot(top.steps, top.values, color="black", linewidth=2, zorder=4)
            handles.append(plt.Line2D([], [], color="black", linewidth=2,
                                      label=f"best: trial {top.number}"))  # fmt: skip
        ax.autoscale_view()
        values = np.concatenate([t.values for t in (*complete, *pruned)])
        if log_axis("objective", values):
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(unit_name)
        ax.set_ylabel(short(study.metric, 40))
        ax.set_title(short(f"{study.name}: each trial per {unit_name}", 70), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(handles=handles, fontsize=8)
        return fig

    caption = (f"Study {study.name}: {study.metric} of each trial per {unit_name}, as its run "
               "reported it to the study; complete trials coloured by trial number, pruned "
               "trials dashed grey up to where the pruner stopped them, the best trial "
               "black.")  # fmt: skip
    return Figure(out / file_name(f"search_{study.name}_trials"), make, None, caption, "search")


def search_figures(searches: Searches, experiment: Experiment, out: Path) -> list[Figure]:
    """Per study: the optimisation history and each trial's curve (kept in the study too,
    for the report's section)."""
    figures: list[Figure] = []
    for study in searches.studies:
        made = (_history(study, out), _trials(study, out, unit(experiment)))
        study.figures = [f for f in made if f is not None]
        figures += study.figures
    return figures


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{short(k, 40)}={short(fmt(v), 40)}" for k, v in params.items())


def _summary(study: Study, run_links: dict[str, tuple[str | None, str | None]]) -> str:
    """Trials per state, the direction, the best trial and its run (linked)."""
    counts = {s: sum(t.state == s for t in study.trials) for s in STATES}
    tally = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    of = f" of {study.n_trials}" if study.n_trials is not None else ""
    goal = "maximize" if study.maximize else "minimize"
    text = f"{esc(len(study.trials))} trials{esc(of)} ({esc(tally or 'none')}); {goal} "
    text += esc(study.metric) + "."
    top = study.best
    if top is None:
        return text + " No complete trial yet."
    text += (f" Best: <b>trial {top.number}</b>, {esc(study.metric)} {esc(fmt(top.value))}"
             f" ({esc(_params(top.params))})")  # fmt: skip
    link = run_links.get(top.run or "", (None, None))[0]
    if top.run:
        text += (
            f', run <a href="{esc(link)}">{esc(top.run)}</a>' if link else f", run {esc(top.run)}"
        )
    return text + "."


def search_section(
    searches: Searches,
    figure_html: Callable[[Figure], str],
    run_links: dict[str, tuple[str | None, str | None]],
) -> list[str]:
    """The report's Search section (nothing when the experiment has no study): per study
    its trials and best one, and its figures."""
    if not searches.studies and not searches.notes:
        return []
    parts = ['<h2 id="search">Search</h2>']
    parts += [f'<p class="note">{esc(note)}</p>' for note in searches.notes]
    for study in searches.studies:
        parts += [f"<h3>Study {esc(study.name)}</h3>", f"<p>{_summary(study, run_links)}</p>"]
        if study.figures:
            parts.append(f'<div class="panels">{"".join(map(figure_html, study.figures))}</div>')
    return parts
