"""The verb registry of ``trainer``: a verb is one module plus one line in ``VERBS``, and
the usage block of ``trainer --help``, the dispatch and the CLI reference follow it."""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import types
from collections.abc import Sequence
from pathlib import Path

import pytest

from sweeptrainer import cli

ROOT = Path(__file__).resolve().parents[2]
HELLO_USAGE = "trainer hello NAME                 greet NAME (--loud)"


def usage_block(help_: str) -> str:
    return help_.split("\n\n", 1)[0]


def load_generator(monkeypatch) -> types.ModuleType:
    """docs/gen_reference.py, loaded as tests/docs/test_docs.py loads it."""
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "docs/gen_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look it up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def hello(monkeypatch) -> types.ModuleType:
    """A verb ``hello`` registered as a new one would be: its module, its registry line."""
    module = types.ModuleType("sweeptrainer.commands.hello", "``trainer hello``: a greeting.")

    def parser() -> argparse.ArgumentParser:
        parse = argparse.ArgumentParser(
            prog="trainer hello",
            description="Greet someone.",
            epilog="examples:\n  trainer hello world\n",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parse.add_argument("name", metavar="NAME", help="whom to greet")
        parse.add_argument("--loud", action="store_true", help="in capitals")
        return parse

    def run(args: Sequence[str]) -> int:
        ns = parser().parse_args(args)
        greeting = f"hello {ns.name}"
        print(greeting.upper() if ns.loud else greeting)
        return 3

    module.VERB = "hello"
    module.USAGE = (HELLO_USAGE,)
    module.parser = parser
    module.run = run
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(cli.VERBS, "hello", "hello")
    return module


def test_a_new_verb_is_in_the_usage_block(trainer, hello):
    result = trainer("--help")
    assert result.code == 0
    lines = usage_block(result.out).splitlines()
    assert lines[-2:] == [f"       {HELLO_USAGE}", "       trainer --help | --version"]
    assert result.out.endswith(cli.ABOUT)


def test_a_new_verb_is_dispatched_with_its_exit_code(trainer, hello):
    result = trainer("hello", "world", "--loud")
    assert (result.code, result.out) == (3, "HELLO WORLD\n")
    result = trainer("hello", "--help")
    assert result.code == 0 and result.out.startswith("usage: trainer hello [-h] [--loud] NAME")
    assert result.out == cli.help_text("hello")
    assert trainer("hello").code == 2  # argparse: NAME is missing
    result = trainer("helo", "world")  # a misspelt verb is named, with the new one listed
    assert result.code == 2
    assert "unknown command 'helo' (did you mean 'hello'?)" in result.err
    assert result.err.rstrip().endswith("rm-states, postprocess, hello")


def test_a_new_verb_is_in_the_cli_reference(hello, monkeypatch):
    page = load_generator(monkeypatch).cli_page()
    assert f"\n       {HELLO_USAGE}\n" in page.split("## trainer status")[0]  # trainer --help
    section = page.split("## trainer hello\n\n```text\n", 1)[1].split("\n```\n", 1)[0]
    assert section.startswith("usage: trainer hello [-h] [--loud] NAME")
    assert "  --loud      in capitals" in section and "  trainer hello world" in section


@pytest.mark.parametrize("verb", cli.VERBS)
def test_every_verb_module_has_the_registry_attributes(verb, trainer, monkeypatch):
    module = cli.command(verb)
    assert module.__name__ == f"sweeptrainer.commands.{cli.VERBS[verb]}"
    assert verb == module.VERB
    assert isinstance(module.USAGE, tuple)
    assert all(isinstance(line, str) and line.startswith("trainer ") for line in module.USAGE)
    assert callable(module.run) and (callable(getattr(module, "parser", None)) or module.HELP)
    assert module.__doc__, f"{module.__name__} says what it is for"
    monkeypatch.setenv("COLUMNS", "100")
    result = trainer(verb, "--help")
    assert result.code == 0
    assert result.out == cli.help_text(verb)  # what the CLI reference shows


def test_the_usage_block_lists_every_verb():
    block = usage_block(cli.help_text())
    lines = block.splitlines()
    train = cli.command(None)
    assert train.VERB is None
    prefixes = ["usage: ", *["       "] * (len(train.USAGE) - 1)]
    assert lines[: len(train.USAGE)] == [a + b for a, b in zip(prefixes, train.USAGE, strict=True)]
    assert lines[-1] == "       trainer --help | --version"
    assert all(line.startswith(("usage: trainer ", "       trainer ")) for line in lines)
    for verb in cli.VERBS:
        assert re.search(rf"(?:trainer|/) {re.escape(verb)}(?: |$)", block, re.M), verb


def test_help_imports_no_verb_but_to_read_its_usage():
    """``import sweeptrainer.cli`` imports no verb module; ``trainer --help`` imports them
    for their usage lines, and none of the heavy libraries."""
    code = (
        "import sys\n"
        "from sweeptrainer import cli\n"
        "print(sorted(m for m in sys.modules if m.startswith('sweeptrainer.commands.')))\n"
        "try:\n"
        "    cli.main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('torch', 'pandas', 'hydra', 'omegaconf', 'sweeptrainer.sweep.plan')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.startswith("[]\nusage: trainer ")
    assert result.stderr == "[]\n"
