"""The docs: the generated reference is complete, and the code and commands they show work.

Conventions in the hand-written pages (docs/*.md):

- every line of a fenced ``bash`` block that starts with ``trainer`` is run (slow test), page
  by page, in order, in one temp folder per page; ``cd`` and other shell lines are ignored;
- a command ends with ``# exit N`` when it fails on purpose (default: exit code 0);
- lines with ``<`` or ``...`` are placeholders and are skipped, and so is a command naming a
  path (``data/train.csv``, ``results/default``) that the page has not created by then;
- ``<!-- file: PATH -->`` on the line before a fenced block says the block is the file PATH:
  such files are written into the page's folder before its first command;
- ``<!-- skip: REASON -->`` on the line before a bash block: its commands are not run (they
  need a cluster, or run until stopped);
- ``<!-- run: NAME -->`` on the line before a python block: the block is a cell of the notebook
  NAME: the page's cells of one notebook run in order, in one namespace, in a temp folder
  (with the page's ``file:`` blocks written there first); other python blocks only compile,
  and run when they only define things.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from sweeptrainer.cli import VERBS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CONF = ROOT / "conf"
PAGES = sorted(DOCS.glob("*.md"))  # hand-written; generated pages live in subfolders
MARK = re.compile(r"^<!-- (file|skip|run): (.+?) -->$")
EXIT_MARK = re.compile(r"#\s*exit\s+(\d+)\s*$")
DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence
    lang: str
    source: str
    mark: tuple[str, str] | None  # ("file", PATH) or ("skip", REASON) from a comment above

    @property
    def file(self) -> str | None:
        return self.mark[1] if self.mark and self.mark[0] == "file" else None

    @property
    def name(self) -> str:
        return f"{self.page.name}:{self.line}"


def fenced_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a page, dedented (blocks may sit in list items)."""
    blocks, lines, opened, indent = [], page.read_text(encoding="utf-8").splitlines(), None, 0
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if opened is None and stripped.startswith("```"):
            before = lines[number - 2].strip() if number > 1 else ""
            mark = MARK.match(before)
            indent = len(line) - len(line.lstrip())
            opened = Block(page, number, stripped[3:].strip(), "", mark.groups() if mark else None)
        elif opened is not None and stripped == "```":
            blocks.append(opened)
            opened = None
        elif opened is not None:
            opened.source += line[indent:] + "\n"
    return blocks


# ---------------------------------------------------------------- generated reference


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_reference_lists_every_option_key_and_verb(tmp_path):
    pages = load_generator().generate(tmp_path)
    options = (tmp_path / "reference" / "options.md").read_text(encoding="utf-8")
    for path in sorted(p for p in CONF.rglob("*.yaml") if p.parent != CONF):
        assert f"`{path.relative_to(ROOT).as_posix()}`" in options, path
        assert f"={path.stem}`" in options, path  # its heading: `group=name`
    main = yaml.safe_load((CONF / "config.yaml").read_text(encoding="utf-8"))
    for key in main:
        assert f"`{key}`" in options, key
    cli = (tmp_path / "reference" / "cli.md").read_text(encoding="utf-8")
    for verb in VERBS:
        assert f"## trainer {verb}\n\n```text\nusage: trainer {verb}" in cli, verb
    templates = ROOT / "src" / "sweeptrainer" / "templates"
    for readme in sorted(templates.glob("*/README.md")):
        assert f"templates/{readme.parent.name}.md" in pages


# ---------------------------------------------------------------- python blocks

PYTHON_BLOCKS = [b for page in PAGES for b in fenced_blocks(page) if b.lang == "python"]


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.name)
def test_python_block(block):
    """Every python block compiles; one that only defines things also runs."""
    code = compile(block.source, block.name, "exec")
    body = ast.parse(block.source).body
    if all(isinstance(node, DEFINITIONS) or is_docstring(node) for node in body):
        exec(code, {"__name__": f"docs_{block.page.stem}_{block.line}"})


def is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


def write_files(page: Path, folder: Path) -> None:
    """The page's ``<!-- file: PATH -->`` blocks, written into ``folder``."""
    for block in fenced_blocks(page):
        if block.file:
            (folder / block.file).parent.mkdir(parents=True, exist_ok=True)
            (folder / block.file).write_text(block.source, encoding="utf-8")


NOTEBOOKS = sorted(
    {(b.page, b.mark[1]) for b in PYTHON_BLOCKS if b.mark and b.mark[0] == "run"},
)


@pytest.mark.parametrize(
    ("page", "notebook"), [pytest.param(p, n, id=f"{p.name}:{n}") for p, n in NOTEBOOKS]
)
def test_notebook(page, notebook, tmp_path, monkeypatch, capsys):
    """Run a page's notebook cells in order, as a user would in Jupyter."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    write_files(page, tmp_path)
    cells = [b for b in fenced_blocks(page) if b.lang == "python" and b.mark == ("run", notebook)]
    namespace = {"__name__": f"docs_{page.stem}_{notebook}"}
    for cell in cells:
        exec(compile(cell.source, cell.name, "exec"), namespace)
    with capsys.disabled():
        print(f"\n{page.name}: ran the {len(cells)} cells of notebook {notebook!r}")


# ---------------------------------------------------------------- trainer commands


@dataclass
class Command:
    line: int
    text: str
    args: list[str]
    exit_code: int


def shell_lines(block: Block) -> list[tuple[int, str]]:
    """``(line number, text)`` for each line of a block, continued lines (``\\``) joined."""
    lines, pending = [], None
    for number, line in enumerate(block.source.splitlines(), block.line + 1):
        start, text = pending or (number, "")
        text = f"{text} {line.strip()}".strip()
        pending = (start, text[:-1]) if text.endswith("\\") else None
        if pending is None:
            lines.append((start, text))
    return lines


def trainer_lines(page: Path) -> tuple[list[Command], list[str]]:
    """The ``trainer`` commands of a page's bash blocks, and the placeholder lines skipped."""
    commands, skipped = [], []
    for block in fenced_blocks(page):
        for number, text in shell_lines(block) if block.lang == "bash" else []:
            if text != "trainer" and not text.startswith("trainer "):
                continue  # cd, mkdir, make, ...: all commands of a page run in one folder
            if block.mark and block.mark[0] == "skip":
                skipped.append(f"{page.name}:{number} `{text}`: {block.mark[1]}")
                continue
            if "<" in text or "..." in text:
                skipped.append(f"{page.name}:{number} `{text}`: placeholder")
                continue
            mark = EXIT_MARK.search(text)
            args = shlex.split(text, comments=True)[1:]
            commands.append(Command(number, text, args, int(mark[1]) if mark else 0))
    return commands, skipped


def missing_path(args: list[str], folder: Path) -> str | None:
    """A relative path named in the arguments (``data/train.csv``) that ``folder`` lacks."""
    for arg in args:
        value = arg.partition("=")[2] if "=" in arg else arg
        is_path = "/" in value and not value.startswith("-") and "$" not in value
        if is_path and "://" not in value and not (folder / value).exists():
            return value
    return None


COMMAND_PAGES = [page for page in PAGES if trainer_lines(page) != ([], [])]


@pytest.mark.slow
@pytest.mark.parametrize("page", COMMAND_PAGES, ids=lambda p: p.name)
def test_trainer_commands(page, tmp_path, capsys, trainer):
    """Run the page's trainer commands in order; print their times and the skipped lines.

    In-process, like the integration tests (the `trainer` fixture): the process start-up
    of every command would double the test's time; tests/e2e covers real processes.
    """
    write_files(page, tmp_path)
    commands, skipped = trainer_lines(page)
    ran = []
    for command in commands:
        where = f"{page.name}:{command.line}"
        missing = missing_path(command.args, tmp_path)
        if missing:
            skipped.append(
                f"{where} `{command.text}`: needs {missing}, which the page does not create"
            )
            continue
        start = time.perf_counter()
        result = trainer(*command.args)
        ran.append(f"{where} {time.perf_counter() - start:5.1f} s  `{command.text}`")
        assert result.code == command.exit_code, (
            f"{where}: `{command.text}` exited with {result.code}, expected "
            f"{command.exit_code}\n--- stdout\n{result.out[-3000:]}\n--- stderr\n"
            f"{result.err[-3000:]}"
        )
    with capsys.disabled():
        print(f"\n{page.name}: ran {len(ran)} trainer command(s), skipped {len(skipped)}")
        for line in ran + [f"skipped {s}" for s in skipped]:
            print(f"  {line}")
