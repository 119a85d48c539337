"""Every config key that a message of the code names exists: a hint never sends a user to
a key that is not there.

What is collected (with ``ast``, from every ``.py`` file under ``src/sweeptrainer`` and
``src/hydra_plugins``): every string literal that is not a docstring, and the constant
parts of every f-string. Not only the literals inside ``raise``/``ConfigError(...)``/
``log.warning(...)``: many messages are built by helpers that get the key as a literal of
its own (``check_columns(parts, columns, "dataset.features")``, ``key="model.pretrained"``),
and the help texts of the commands are plain module constants. The rest of the literals
that name keys are keys the code reads (``OmegaConf.select(cfg, "hydra.sweeper.params")``),
which must exist just as much. Docstrings are left out: they describe code with keys of
made-up options (``+model.extra=1``) and no user reads them in a message.

Two kinds of key are taken from those literals:

1. Dotted keys whose first segment is a config root (the top-level keys of the composed
   default config that hold mappings, and ``hydra``): ``dataset.batch.collate``,
   ``+dataset.cache_dir=...``, ``dataset.transform[0]._target_``. Rules:

   - list indices (``[0]``, or ``.0`` as in an override) are dropped, here and in the
     composed configs: a key under a list exists when an element of that list in some
     option has it;
   - a match preceded by a word character, ``.``, ``/``, ``\\`` or ``-`` is part of
     something else (``sweeptrainer.data.dataset.X``, ``states/model.pt``);
   - f-strings: a key that starts right after an expression is skipped, and the segment
     that runs into an expression is partial and dropped (``f"dataset.{split}"`` checks
     nothing, ``f"hydra.sweeper.{name}: ..."`` checks ``hydra.sweeper``);
   - a key followed by ``(`` is a call, and one whose first two segments are a Python
     module (``hydra.utils.instantiate``) is an import path: both are skipped.

2. Overrides of top-level keys, ``KEY=VALUE`` (``rerun_on_change=rerun``,
   ``experiment_id=NAME``, ``model=CNN``): a lower-case name after white space, a bracket
   or a quote (or at the start of the text), then ``=`` and a value that is no quote (HTML
   attributes, ``class="x"``, are not overrides). KEY must be a top-level key or a config
   group of the composed config; the value is not checked (``model=Wide`` in a help text is
   a user's own option). The generic placeholders ``key=value`` and ``group=option`` are
   not keys. Hints written as YAML (``use task: multilabel``) are not collected: a plain
   name before ``: `` is mostly prose ("Exit codes: 0 ok"), and in a YAML hint the name is
   relative to an option file, so it has no root to check it under; their dotted form
   (``dataset.mono: true``) is collected by rule 1.

A key exists when it is a key path of at least one composition: the default config and
every option of every config group composed over it (``dataset=Files``,
``+callbacks=early_stopping``, ``hydra/launcher=slurm``, ``hydra/sweeper=search``: the
groups and options Hydra lists from conf/ and the installed Hydra plugins), with the hydra
node (``return_hydra_config``); and the options of the ``trainer create`` templates, composed
with the template's conf/ as the user's folder (``model.hidden`` of ``MyModel``). Two more
keys exist without being in any option, as the config check accepts them:

- a keyword parameter of a node's ``_target_`` (when it imports here), under that node:
  ``scheduler.mode`` (``ReduceLROnPlateau(mode=...)``), ``augmentation.steps.p``;
- under ``dataset.batch``, the keys :func:`sweeptrainer.config.keys.check_batch_config`
  accepts (``dataset.batch.inputs``).

A key that names nothing fails the test with its file and line, unless it is in
:data:`ALLOWED` (each entry with its reason); an entry that no longer matches anything
fails the test too, so the list stays as short as the code allows.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from sweeptrainer.config.compose import ConfigSources, compose
from sweeptrainer.config.instantiate import declares, locate, signature_of
from sweeptrainer.config.keys import check_batch_config
from sweeptrainer.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SCANNED = (REPO / "src" / "sweeptrainer", REPO / "src" / "hydra_plugins")
TEMPLATES = REPO / "src" / "sweeptrainer" / "templates"

# (file relative to the repository, key) -> why a key that composes nowhere is right there
ALLOWED: dict[tuple[str, str], str] = {
    # `trainer --shell-completion install=bash`: Hydra's completion actions, not config keys
    ("src/sweeptrainer/sweep/args.py", "install"): "a --shell-completion action",
    ("src/sweeptrainer/sweep/args.py", "uninstall"): "a --shell-completion action",
    ("src/sweeptrainer/sweep/args.py", "query"): "a --shell-completion action",
}
PLACEHOLDERS = frozenset({"key", "group"})  # "overrides are key=value, group=option"

INDEX = re.compile(r"\[\d+\]|\.\d+\b")  # dataset.transform[0], augmentation.steps.0
DOTTED = re.compile(r"(?<![\w./\\-])[A-Za-z_]\w*(?:\.\w+|\[\d+\])+")
OVERRIDE = re.compile(r"(?:^|(?<=[\s(\[`])|(?<=[^=]['\"]))[+~]*([a-z_]\w*)=(?:(?=[^\s=\"'])|$)")
ADVICE = re.compile(r"\b(?:use|set|with)\s+$")  # f"use criterion={name}": a hint


@dataclass(frozen=True)
class Hint:
    file: str  # relative to the repository
    line: int
    key: str  # without list indices

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.key}"


# --- the literals ---------------------------------------------------------------------


def literals(tree: ast.AST) -> Iterator[tuple[range, str, bool, bool]]:
    """(its lines, text, an expression before it, an expression after it) of every string
    literal but docstrings; an f-string gives each of its constant parts (with the lines
    of the whole f-string)."""
    skipped: set[int] = set()  # docstrings, parts of f-strings
    for node in ast.walk(tree):  # parents before children: a function before its docstring
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skipped.add(id(first.value))
        elif isinstance(node, ast.JoinedStr):
            for i, part in enumerate(node.values):
                skipped.add(id(part))
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    lines = range(node.lineno, (node.end_lineno or node.lineno) + 1)
                    yield lines, part.value, i > 0, i < len(node.values) - 1
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in skipped
        ):
            yield range(node.lineno, (node.end_lineno or node.lineno) + 1), node.value, False, False


@functools.cache
def is_module(key: str) -> bool:
    """Whether the first two segments of ``key`` are an importable module."""
    root, _, rest = key.partition(".")
    if importlib.util.find_spec(root) is None:
        return False
    return importlib.util.find_spec(f"{root}.{rest.split('.')[0]}") is not None


def dotted_keys(
    text: str, before: bool, after: bool, roots: frozenset[str]
) -> Iterator[tuple[str, str]]:
    """Rule 1 of the module docstring: (the text matched, the key)."""
    for match in DOTTED.finditer(text):
        if (before and match.start() == 0) or text.startswith("(", match.end()):
            continue
        key = INDEX.sub("", match.group())
        if after and match.end() == len(text):  # runs into an expression: partial
            key = key.rpartition(".")[0]
        if key.split(".")[0] in roots and "." in key and not is_module(key):
            yield match.group(), key


def override_keys(text: str, before: bool, after: bool) -> Iterator[tuple[str, str]]:
    """Rule 2 of the module docstring: (the text matched, the key)."""
    for match in OVERRIDE.finditer(text):
        if before and match.start() == 0:
            continue
        if match.end() == len(text) and not (after and ADVICE.search(text, 0, match.start())):
            continue  # no value, or one shown (``got seed={seed}``)
        if match.group(1) not in PLACEHOLDERS:
            yield match.group(), match.group(1)


def hints(roots: frozenset[str]) -> list[Hint]:
    found = []
    for folder in SCANNED:
        for path in sorted(folder.rglob("*.py")):
            name = path.relative_to(REPO).as_posix()
            source = path.read_text("utf-8")
            lines = source.splitlines()
            for span, text, before, after in literals(ast.parse(source)):
                for matched, key in [
                    *dotted_keys(text, before, after, roots),
                    *override_keys(text, before, after),
                ]:  # the line of a literal of several lines that has the key
                    line = next((n for n in span if matched in lines[n - 1]), span[0])
                    found.append(Hint(name, line, key))
    return found


# --- the composed configs -------------------------------------------------------------


def group_options(sources: ConfigSources) -> dict[str, list[str]]:
    """Every config group Hydra finds (``dataset``, ``hydra/launcher``) and its options."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from hydra_plugins.sweeptrainer_plugins.searchpath import user_folder

    with (
        user_folder(sources.user_dir),
        initialize_config_dir(config_dir=str(sources.packaged), version_base="1.3"),
    ):
        loader = GlobalHydra.instance().config_loader()

        def walk(parent: str) -> Iterator[tuple[str, list[str]]]:
            for name in loader.list_groups(parent):
                group = f"{parent}/{name}" if parent else name
                yield group, loader.get_group_options(group)
                yield from walk(group)

        return dict(walk(""))


@functools.cache
def parameters(target: str) -> tuple[str, ...]:
    """The keyword parameters of ``target`` (none when it does not import)."""
    try:
        signature = signature_of(locate(target, "_target_"))
    except Exception:  # an optional library that is not installed here (ray, timm)
        return ()
    return tuple(n for n in signature.parameters if declares(signature, n)) if signature else ()


def key_paths(node: Any, prefix: str, into: set[str]) -> None:
    """Every key path under ``node`` (list elements under their list's path), and the
    keyword parameters of each ``_target_`` under its node's path."""
    if isinstance(node, dict):
        if isinstance(node.get("_target_"), str):
            into.update(f"{prefix}.{name}" for name in parameters(node["_target_"]))
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            into.add(path)
            key_paths(value, path, into)
    elif isinstance(node, list):
        for value in node:
            key_paths(value, prefix, into)


@dataclass
class Composed:
    keys: set[str]
    top: set[str]  # top-level keys and config groups: what KEY=VALUE may name
    roots: frozenset[str]
    failed: list[str]  # compositions that raised (their keys are missing from ``keys``)


def compositions(sources: ConfigSources, overrides: list[str], into: Composed) -> None:
    """Add the key paths of the composition of ``overrides``; when they do not compose
    together (options of different groups that conflict: ``+experiment=optuna_search``
    overrides ``hydra/sweeper``), each half is composed on its own."""
    try:
        key_paths(OmegaConf.to_container(compose(sources, overrides)), "", into.keys)
    except ConfigError as err:
        if len(overrides) == 1:
            into.failed.append(f"{overrides[0]} ({sources.user_dir or 'conf/'}): {err}")
            return
        half = len(overrides) // 2
        compositions(sources, overrides[:half], into)
        compositions(sources, overrides[half:], into)


@functools.cache
def composed() -> Composed:
    """The key paths of every option. Composing takes a tenth of a second or more, so the
    options go in together: the i-th composition takes the i-th option of every group."""
    default = compose(ConfigSources(), [])
    chosen = set(default.hydra.runtime.choices)  # groups of the defaults list: GROUP=OPTION
    # "hydra" is Hydra's own main config (hydra/config), which every composition has
    groups = {g: o for g, o in group_options(ConfigSources()).items() if g != "hydra"}
    plus = {g: "" if g in chosen else "+" for g in groups}
    runs = [
        [f"{plus[g]}{g}={options[i]}" for g, options in groups.items() if i < len(options)]
        for i in range(max(map(len, groups.values())))
    ]
    roots = frozenset(k for k in default if OmegaConf.is_dict(default[k])) | {"hydra"}
    result = Composed(set(), {str(k) for k in default} | set(groups), roots, [])
    key_paths(OmegaConf.to_container(default), "", result.keys)
    for overrides in runs:
        compositions(ConfigSources(), overrides, result)
    for conf in sorted(TEMPLATES.glob("*/conf")):  # `trainer create` projects: conf/GROUP/X
        options = [f"{p.parent.name}={p.stem}" for p in sorted(conf.glob("*/*.yaml"))]
        compositions(ConfigSources(user_dir=conf), options, result)
    return result


# --- the test -------------------------------------------------------------------------


def exists(key: str, config: Composed) -> bool:
    if "." not in key:  # KEY=VALUE
        return key in config.top
    if key in config.keys:
        return True
    # dataset.batch: keys the config check accepts (keys.check_batch_config), not a _target_'s
    parent, _, name = key.rpartition(".")
    return parent == "dataset.batch" and not check_batch_config({name: None})


def test_every_key_a_message_names_exists():
    config = composed()
    found = hints(config.roots)
    wrong = [hint for hint in found if not exists(hint.key, config)]
    unexplained = [hint for hint in wrong if (hint.file, hint.key) not in ALLOWED]
    stale = sorted(set(ALLOWED) - {(hint.file, hint.key) for hint in wrong})
    assert len({hint.key for hint in found}) > 50, "the collection found too few keys"
    assert not unexplained, "keys named in messages that no config has:\n" + "\n".join(
        [*map(str, unexplained), *(f"(did not compose: {f})" for f in config.failed)]
    )
    assert not stale, f"ALLOWED entries that no longer match a wrong key: {stale}"


def test_the_collection_rules():
    roots = frozenset({"dataset", "hydra"})

    def overrides(text: str, before: bool, after: bool) -> list[str]:
        return [key for _, key in override_keys(text, before, after)]

    def keys(literal: str) -> list[str]:
        tree = ast.parse(f"x = {literal}")
        return [k for _, t, b, a in literals(tree) for _, k in dotted_keys(t, b, a, roots)]

    assert keys('"set dataset.transform[0]._target_ (see dataset.path)"') == [
        "dataset.transform._target_",
        "dataset.path",
    ]
    assert keys('f"dataset.{split}: no file"') == []
    assert keys('f"dataset.batch.{key}: unknown; dataset.metrics[{i}]"') == [
        "dataset.batch",
        "dataset.metrics",
    ]
    assert keys('f"dataset.fil{x} {y}dataset.path"') == []
    assert keys('"sweeptrainer.data.dataset.X states/dataset.pt dataset.items()"') == []
    assert keys('"hydra.utils.instantiate or +hydra.sweeper.n_trials=3"') == [
        "hydra.sweeper.n_trials"
    ]
    assert [t for _, t, _, _ in literals(ast.parse('def f():\n    "On dataset.x."'))] == []
    assert overrides("use experiment_id=NAME, or (rerun_on_change=rerun)", False, False) == [
        "experiment_id",
        "rerun_on_change",
    ]
    assert overrides('<a class="x"> key=value seed= ', False, False) == []
    # a value from an expression is a value shown (``got seed={seed}``) unless advised
    assert overrides("got seed=", False, True) == []
    assert overrides("; use criterion=", False, True) == ["criterion"]
    assert overrides("['seed=2', content='width=device-width']", False, False) == ["seed"]


def test_what_exists():
    config = composed()
    for key in (
        "dataset.file_column",  # dataset=Files only
        "dataset.features",  # dataset=Table only
        "dataset.transform._target_",  # a list's elements (ImageFiles)
        "dataset.batch.inputs",  # the config check's keys of dataset.batch
        "scheduler.mode",  # a parameter of ReduceLROnPlateau, the option's _target_
        "callbacks.early_stopping.patience",  # +callbacks=early_stopping
        "hydra.sweeper.n_trials",  # hydra/sweeper=search
        "hydra.launcher.partition",  # hydra/launcher=slurm
        "hydra.launcher.n_jobs",  # hydra/launcher=joblib (an installed plugin's option)
        "model.hidden",  # the custom-model template's MyModel
        "rerun_on_change",
        "experiment",  # a group: +experiment=optuna_search
    ):
        assert exists(key, config), key
    for key in (
        "dataset.feature_columns",
        "dataset.batch.sampler",
        "hydra.sweeper.trials",
        "rerun",
    ):
        assert not exists(key, config), key
