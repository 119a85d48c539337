"""Import layers: every module imports only from its own layer and the layers below it.

The layers, lowest first (a name is a module or package under ``sweeptrainer``, standing
for every module in it)::

    base      errors, logs, usercode, version
    io        io                         narrower: errors and io only
    config    config, and the Hydra plugin that puts the user's config folder in the search path
    parts     callbacks, components, data
    training  training
    records   what reads and writes run folders and projects apart from training
              (snapshot, fingerprint, monitor, maintenance, postprocess, inference, create,
              study ...)
    run       run                        one run: plan, lifecycle, outcome, job
    sweep     sweep and the Hydra plugin  a command: args, plan, launch, outcomes
    top       the verbs (cli, commands), the Python API and the package itself

So the config check knows nothing of what is built from a config, and the files a run
writes (io) know nothing of configs. Imports are read with ``ast`` from the source, at
module level and inside functions alike; those under ``if TYPE_CHECKING:`` are left out
(they only name types for the type checker and never run).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "sweeptrainer"
PLUGIN = "hydra_plugins.sweeptrainer_plugins"
SEARCH_PATH = PLUGIN + ".searchpath"  # the config layer's plugin: where composition looks

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("errors", "logs", "usercode", "version")),
    ("io", ("io",)),
    ("config", ("config", SEARCH_PATH)),
    ("parts", ("callbacks", "components", "data")),
    ("training", ("training",)),
    (
        "records",
        (
            "catalog",
            "create",
            "example_data",
            "fingerprint",
            "inference",
            "maintenance",
            "monitor",
            "postprocess",
            "snapshot",
            "study",
            "templates",
        ),
    ),
    ("run", ("run",)),
    ("sweep", ("sweep", PLUGIN)),
    ("top", ("__init__", "__main__", "api", "cli", "commands")),
)
# a layer that may import less than every layer below it: the names it may import
NARROWER: dict[str, tuple[str, ...]] = {"io": ("errors", "io")}

LAYER_OF = {name: layer for layer, names in LAYERS for name in names}
RANK = {layer: rank for rank, (layer, _) in enumerate(LAYERS)}


def module_files() -> dict[str, Path]:
    """Every module of the package and of the plugin, by dotted name."""
    files = [*(SRC / PACKAGE).rglob("*.py"), *(SRC / PLUGIN.replace(".", "/")).rglob("*.py")]
    modules = {}
    for path in sorted(files):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = module_files()


def name_of(module: str) -> str | None:
    """The name in LAYERS a module falls under: its package under sweeptrainer, or the
    plugin; None for a module outside both (a third-party one)."""
    if module == SEARCH_PATH:
        return SEARCH_PATH
    if module == PLUGIN or module.startswith(PLUGIN + "."):
        return PLUGIN
    if module == PACKAGE:
        return "__init__"
    if module.startswith(PACKAGE + "."):
        return module.split(".")[1]
    return None


@dataclass(frozen=True)
class Import:
    target: str  # the module imported (for ``from m import name``: m.name if a module, else m)
    line: int


class _Imports(ast.NodeVisitor):
    """The imports of one module, wherever they are, except under ``if TYPE_CHECKING:``."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.found: list[Import] = []

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            for child in node.orelse:  # the else branch runs
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found += [Import(alias.name, node.lineno) for alias in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:  # relative: from the module's own package up
            base = self.package.split(".")
            base = base[: len(base) - (node.level - 1)]
            source = ".".join([*base, node.module] if node.module else base)
        else:
            source = node.module or ""
        for alias in node.names:
            candidate = f"{source}.{alias.name}"
            self.found.append(Import(candidate if candidate in MODULES else source, node.lineno))


def imports_of(module: str, source: str, is_package: bool = False) -> list[Import]:
    """The sweeptrainer and plugin modules ``source`` (the text of ``module``) imports."""
    visitor = _Imports(module, is_package)
    visitor.visit(ast.parse(source))
    return [i for i in visitor.found if name_of(i.target) is not None]


def rule(name: str) -> str:
    """What a module under ``name`` may import, in words."""
    layer = LAYER_OF[name]
    if layer in NARROWER:
        return f"layer {layer!r} ({name}) imports only {', '.join(NARROWER[layer])}"
    below = [lay for lay, _ in LAYERS[: RANK[layer] + 1]]
    return f"layer {layer!r} ({name}) imports only from layers {', '.join(below)}"


def breaches(module: str, source: str, is_package: bool = False) -> list[str]:
    """One message per import of ``source`` (the text of ``module``) that breaks a layer."""
    importer = name_of(module)
    assert importer is not None and importer in LAYER_OF, f"{module}: not in LAYERS"
    layer = LAYER_OF[importer]
    found = []
    for imp in imports_of(module, source, is_package):
        imported = name_of(imp.target)
        assert imported is not None
        if imported not in LAYER_OF:
            found.append(f"{module}:{imp.line} imports {imp.target}, which is not in LAYERS")
            continue
        if layer in NARROWER:
            allowed = imported in NARROWER[layer]
        else:
            allowed = RANK[LAYER_OF[imported]] <= RANK[layer]
        if not allowed:
            found.append(
                f"{module}:{imp.line} imports {imp.target} (layer {LAYER_OF[imported]!r}): "
                f"{rule(importer)}"
            )
    return found


def test_every_module_has_a_layer():
    missing = sorted(m for m in MODULES if name_of(m) not in LAYER_OF)
    assert not missing, (
        f"modules in no layer: {missing}; add their package or module name to LAYERS "
        "at the top of tests/unit/test_layers.py"
    )


def test_new_modules_land_where_they_belong():
    assert LAYER_OF[name_of("sweeptrainer.commands.train")] == "top"
    assert LAYER_OF[name_of("sweeptrainer.io.lease")] == "io"
    assert LAYER_OF[name_of(PLUGIN + ".launchers")] == "sweep"
    assert LAYER_OF[name_of("sweeptrainer.run.lifecycle")] == "run"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layers(module):
    path = MODULES[module]
    found = breaches(module, path.read_text(encoding="utf-8"), path.name == "__init__.py")
    assert not found, "import layers broken:\n  " + "\n  ".join(found)


def test_a_breach_is_caught_at_module_level_and_in_functions():
    source = (
        "from typing import TYPE_CHECKING\n"
        "import torch\n"
        "from sweeptrainer.errors import ConfigError\n"
        "from sweeptrainer.config.instantiate import locate\n"
        "if TYPE_CHECKING:\n"
        "    from sweeptrainer.training.trainer import ModularTaskTrainer\n"
        "import sweeptrainer.training\n"
        "def check():\n"
        "    from sweeptrainer.components.metrics import from_spec\n"
        "    from sweeptrainer import run\n"
    )
    found = breaches("sweeptrainer.config.schema", source)
    assert len(found) == 3, found
    assert found[0].startswith("sweeptrainer.config.schema:7 imports sweeptrainer.training ")
    assert "layer 'config' (config) imports only from layers base, io, config" in found[0]
    assert found[1].startswith("sweeptrainer.config.schema:9 imports sweeptrainer.components.")
    assert found[2].startswith("sweeptrainer.config.schema:10 imports sweeptrainer.run ")


def test_io_imports_errors_alone():
    source = "from sweeptrainer.errors import StorageError\nfrom sweeptrainer.logs import log\n"
    (found,) = breaches("sweeptrainer.io.lease", source)
    assert "sweeptrainer.logs" in found and "imports only errors, io" in found


def test_relative_imports_are_resolved():
    source = "from ..training import batch\nfrom . import keys\n"
    (found,) = breaches("sweeptrainer.config.schema", source)
    assert "imports sweeptrainer.training.batch" in found


def test_the_config_layer_knows_every_packaged_metric():
    """The config check's list of the packaged metrics' names is the components' own."""
    from sweeptrainer.components.metrics import METRICS
    from sweeptrainer.config.metric_specs import PACKAGED_METRICS

    assert tuple(METRICS) == PACKAGED_METRICS
