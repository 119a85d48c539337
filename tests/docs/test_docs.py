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

The built site (``mkdocs build --strict``, as ``make docs``) is checked too: every page renders
as its Markdown means (Python-Markdown, which MkDocs uses, is stricter than GitHub: a list or
table needs a blank line before it, a nested list 4 spaces, and a fenced block cannot sit in
a list item), and every link of every page is a file of the site (browsable from disk). Each
verb's ``--help`` describes every argument it takes, with examples, as the CLI reference shows.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import markdown
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


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, list[str]]:
    """The generated pages, written into a temp folder: (folder, their relative paths)."""
    folder = tmp_path_factory.mktemp("generated")
    return folder, load_generator().generate(folder)


def test_reference_lists_every_option_key_and_verb(generated):
    tmp_path, pages = generated
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


# ---------------------------------------------------------------- the built site


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site as ``make docs`` builds it (``--strict``: any warning fails), in a temp folder."""
    out = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-5000:]}"
    return out


def site_pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


MARKDOWN_CONFIG = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
LIST_ITEM = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+\S")
TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
BLOCKS = {"p", "li", "td", "th", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "pre"}


class _Blocks(HTMLParser):
    """The text of every block element of a page: outside code, and each inline code span."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[str, list[str], list[str]]] = []  # (tag, text, code spans)
        self.blocks: list[tuple[str, str, list[str]]] = []
        self.code = self.hidden = 0

    def handle_starttag(self, tag, attrs):
        self.hidden += tag in ("script", "style")
        if tag in BLOCKS:
            self.open.append((tag, [], []))
        elif tag == "code" and self.open:
            self.code += 1
            self.open[-1][2].append("")

    def handle_endtag(self, tag):
        self.hidden -= tag in ("script", "style")
        if tag == "code" and self.code:
            self.code -= 1
        elif tag in BLOCKS and any(block[0] == tag for block in self.open):
            while True:  # also closes what the page left open inside it
                name, text, codes = self.open.pop()
                self.blocks.append((name, "".join(text), codes))
                if name == tag:
                    break

    def handle_data(self, data):
        if self.open and not self.hidden:
            _, text, codes = self.open[-1]
            if self.code and codes:
                codes[-1] += data
            else:
                text.append(data)


def rendering_problems(html: str) -> list[str]:
    """Markdown that Python-Markdown did not render as meant, judged from the HTML: a list
    or table left as text, a fenced block turned into inline code, a literal fence."""
    parser = _Blocks()
    parser.feed(html)
    parser.close()
    problems = []
    for tag, text, codes in parser.blocks:
        everything = text + "".join(codes)
        if tag == "pre":
            if "```" in everything:  # a fence inside a code block: fences nested or unclosed
                problems.append(f"a fence inside a code block: {everything[:80]!r}")
            continue
        for line in text.splitlines():
            if LIST_ITEM.match(line):
                problems.append(f"<{tag}> has a list item as text: {line.strip()[:80]!r}")
            elif TABLE_ROW.match(line):
                problems.append(f"<{tag}> has a table row as text: {line.strip()[:80]!r}")
            elif re.match(r"^\s*#{1,6}\s", line):
                problems.append(f"<{tag}> has a heading as text: {line.strip()[:80]!r}")
        if "```" in everything or "~~~" in everything:
            problems.append(f"<{tag}> has a literal fence: {everything.strip()[:80]!r}")
        if "<!--" in text:
            problems.append(f"<{tag}> has an HTML comment as text: {text.strip()[:80]!r}")
        for span in codes:  # a fenced block in a list item becomes `lang\ncode` inline code
            if re.match(r"^[\w+-]*\n", span) or span.count("\n") >= 2:
                problems.append(f"<{tag}> has a code block as inline code: {span[:80]!r}")
    return problems


def markdown_problems(text: str) -> list[str]:
    """Markdown that Python-Markdown renders other than GitHub does, judged from the source
    (some of it leaves no trace in the HTML: a nested list indented by 2 is flattened)."""
    problems, fence, previous = [], None, ""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if fence:
            fence = None if stripped.startswith(fence) and not stripped.strip("`~") else fence
            previous = ""
            continue
        if stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
            if line[0].isspace():
                problems.append(f"line {number}: an indented fenced block (in a list item?) is "
                                "not a code block: put it after the list, unindented")  # fmt: skip
            previous = ""
            continue
        item = LIST_ITEM.match(line)
        if item and 0 < len(item[1]) < 4:
            problems.append(f"line {number}: a nested list needs an indent of 4 spaces")
        after_text = previous.strip() and not previous[0].isspace()
        after_text = after_text and not LIST_ITEM.match(previous) and not previous.startswith("<")
        if after_text and item:
            problems.append(f"line {number}: a list needs a blank line before it")
        if after_text and TABLE_ROW.match(line) and not TABLE_ROW.match(previous):
            problems.append(f"line {number}: a table needs a blank line before it")
        previous = line
    return problems


def render(text: str) -> str:
    """``text`` as MkDocs renders a page's Markdown (the extensions of mkdocs.yml)."""
    extensions, configs = [], {}
    for entry in MARKDOWN_CONFIG["markdown_extensions"]:
        name, config = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
        extensions.append(name)
        configs[name] = config or {}
    return markdown.markdown(text, extensions=extensions, extension_configs=configs)


# The quickstart's "Your own config folder" as it was: GitHub shows a list with a YAML block
# in its first item; Python-Markdown made that a one-item list, the YAML an inline code span
# and the other two items "- " text in a paragraph.
OLD_QUICKSTART = """\
A `conf/` folder in the directory you run `trainer` in (or `--config-dir DIR`) is searched too:

- `conf/<group>/<name>.yaml` adds an option to a group, e.g. `conf/model/Wide.yaml`:

  ```yaml
  id: Wide
  _target_: sweeptrainer.components.models.FFNN
  hidden_sizes: [512, 512]
  ```

  and `trainer model=Wide` uses it. A file named like a packaged option (`conf/model/FFNN.yaml`)
  replaces that option.
- `conf/config.yaml` replaces the packaged main config. Start from a copy of the packaged one
  (`python -c "import sweeptrainer.config.compose as c; print(c.packaged_conf_dir())"` shows
  where it is) and change what you need.
- `_target_` can name your own classes: modules in the current folder are importable
  (`_target_: my_models.Net`), as with `python -m`.
"""
BROKEN = {  # name: (Markdown, whether the HTML shows it, whether the source check finds it)
    "old quickstart": (OLD_QUICKSTART, True, True),
    "list after a text line": ("The groups:\n- model\n- dataset\n", True, True),
    "numbered list after a text line": ("Then:\n1. install\n2. run\n", True, True),
    "table after a text line": ("Files:\n| file | what |\n| --- | --- |\n| a | b |\n", True, True),
    "fence in a list item": ("- a file:\n\n    ```yaml\n    x: 1\n    ```\n", True, True),
    "nested list indented by 2": ("- a\n  - b\n", False, True),
}


@pytest.mark.parametrize("name", BROKEN)
def test_rendering_checks_catch_broken_markdown(name):
    """The checks below can fail: they catch each kind of breakage they are for."""
    text, in_html, in_source = BROKEN[name]
    assert bool(rendering_problems(render(text))) == in_html, render(text)
    assert bool(markdown_problems(text)) == in_source
    fixed = text.replace(":\n-", ":\n\n-").replace(":\n1.", ":\n\n1.").replace(":\n|", ":\n\n|")
    if name.endswith("after a text line"):  # a blank line before it is all it takes
        assert rendering_problems(render(fixed)) == markdown_problems(fixed) == []


def test_markdown_sources_render_as_meant(generated):
    """No construct that Python-Markdown breaks in the pages' sources, generated ones too."""
    folder, pages = generated
    sources = [*PAGES, *sorted((ROOT / "src" / "sweeptrainer" / "templates").glob("*/README.md"))]
    sources += [folder / page for page in pages]
    problems = [
        f"{source.relative_to(folder if source.is_relative_to(folder) else ROOT)} {problem}"
        for source in sources
        for problem in markdown_problems(source.read_text(encoding="utf-8"))
    ]
    assert not problems, "\n".join(problems)


def test_every_page_renders_as_meant(site):
    """No page of the built site shows Markdown as text: lists, tables, fences, code blocks."""
    problems = [
        f"{page.relative_to(site)}: {problem}"
        for page in site_pages(site)
        for problem in rendering_problems(page.read_text(encoding="utf-8"))
    ]
    assert len(site_pages(site)) > len(PAGES), "the site has fewer pages than docs/"
    assert not problems, "\n".join(problems)


class _Links(HTMLParser):
    """Every ``href`` and ``src`` of a page, and its ``id``s."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.links.append(value)
            elif name == "id" and value:
                self.ids.add(value)


def parse_links(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    return parser


def link_problem(site: Path, page: Path, link: str, ids: dict[Path, set[str]]) -> str | None:
    """Why ``link`` on ``page`` does not work when the site is opened from disk, or None
    (``site``: resolved; ``ids``: the ids of the pages parsed so far, filled in)."""
    parts = urlsplit(link)
    if parts.scheme or parts.netloc:
        return "points outside the site"
    path = unquote(parts.path)
    if path.startswith("/") and page.name != "404.html":  # a server serves 404.html anywhere
        return "an absolute path (from disk, a link needs a relative one)"
    target = (site / path.lstrip("/") if path.startswith("/") else page.parent / path).resolve()
    target = target if path else page  # "#anchor": this page
    if not target.is_relative_to(site):
        return "points out of the site folder"
    if not target.is_file():
        return "no such file" + (" (a folder: use_directory_urls?)" if target.is_dir() else "")
    if parts.fragment and target.suffix == ".html":
        if target not in ids:
            ids[target] = parse_links(target).ids
        if unquote(parts.fragment) not in ids[target]:
            return f"no id {parts.fragment!r} in {target.relative_to(site)}"
    return None


def test_site_is_browsable_from_disk(site):
    """Pages are page.html files, and every link of every page is a file of the site."""
    assert MARKDOWN_CONFIG["use_directory_urls"] is False
    for page in PAGES:
        assert (site / page.with_suffix(".html").name).is_file(), page.name
    site = site.resolve()
    ids: dict[Path, set[str]] = {}
    problems, count = [], 0
    for page in site_pages(site):
        parsed = parse_links(page)
        ids[page] = parsed.ids
        for link in parsed.links:
            count += 1
            problem = link_problem(site, page, link, ids)
            if problem:
                problems.append(f"{page.relative_to(site)}: {link}: {problem}")
    assert count > 100, count
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- verbs' help

# what validate and preprocess take (HydraArgs, not argparse): what their help must describe
HYDRA_VERB_ARGUMENTS = [
    ("OVERRIDES",),
    ("-h", "--help"),
    ("-m", "--multirun"),
    ("--config-dir", "-cd"),
    ("--config-name", "-cn"),
]


def described(help_: str) -> dict[str, str]:
    """``{name: description}`` of the arguments a help text lists (``-m, --multirun  ...``)."""
    out, lines = {}, help_.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^  ([-\w\[\].]\S*(?:,? \S+)*?)(?:\s{2,}(\S.*))?$", line)
        if not match or line.lstrip().startswith("trainer "):
            continue
        following = lines[i + 1] if i + 1 < len(lines) else ""
        text = match[2] or (following.strip() if following.startswith(" " * 4) else "")
        for name in re.split(r"[, ]+", match[1]):
            out.setdefault(name, text)
    return out


@pytest.mark.parametrize("verb", VERBS)
def test_verb_help_describes_every_argument(verb, trainer, monkeypatch, generated):
    """``trainer VERB --help`` describes every argument the verb takes, gives examples, and
    is what the CLI reference shows."""
    parsers = []
    parse_args = argparse.ArgumentParser.parse_args

    def recording(self, *args, **kwargs):
        parsers.append(self)
        return parse_args(self, *args, **kwargs)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", recording)
    monkeypatch.setenv("COLUMNS", "100")  # as docs/gen_reference.py runs it
    result = trainer(verb, "--help")
    assert result.code == 0, result.err
    help_ = result.out
    assert help_.startswith(f"usage: trainer {verb} "), help_
    if parsers:  # an argparse verb: what its parser accepts
        arguments = []
        for action in parsers[0]._actions:
            assert action.help and action.help != argparse.SUPPRESS, (verb, action.dest)
            arguments.append(tuple(action.option_strings) or (action.metavar or action.dest,))
    else:  # validate, preprocess: the command line of training
        arguments = HYDRA_VERB_ARGUMENTS
    usage, listed = help_.split("\n\n", 1)[0], described(help_)
    for names in arguments:
        assert any(name in usage for name in names), f"{names} not in the usage:\n{help_}"
        for name in names:
            assert listed.get(name), f"`trainer {verb} --help` does not describe {name}:\n{help_}"
    examples = help_.partition("\nexamples")[2]
    assert re.search(rf"^  trainer {verb}\b", examples, re.M), f"no examples:\n{help_}"
    folder, _ = generated
    cli = (folder / "reference" / "cli.md").read_text(encoding="utf-8")
    assert f"## trainer {verb}\n\n```text\n{help_.rstrip()}\n```\n" in cli


def test_described_reads_the_argument_lists():
    """The parser of help texts that the test above relies on (it can fail)."""
    help_ = "usage: x\n\noptions:\n  -h, --help  show\n  --watch [SECONDS]\n        refresh\n"
    assert described(help_) == {"-h": "show", "--help": "show", "--watch": "refresh",
                                "[SECONDS]": "refresh"}  # fmt: skip
    assert described("usage: x\n\noptions:\n  --quiet\n\nmore text\n")["--quiet"] == ""


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
