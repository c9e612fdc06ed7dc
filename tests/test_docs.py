"""The documentation says what the CLI does: docs/cli.md is what
``scripts/cli_reference.py`` makes of the parser now, and every command shown
in the README and docs/ parses with the current CLI, its unknown flags Beam's."""

import argparse
import contextlib
import importlib.util
import io
import os
import re
import shlex

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import cli
from tests.conftest import PROJECT_ROOT

DOCS = os.path.join(PROJECT_ROOT, "docs")
# The commands that hand the flags they do not know to Beam.
_BEAM_COMMANDS = {"run", "validate", "predict"}
_COMMAND = re.compile(r"^(python -m pipelines|tft-preprocessing) ")


def _reference():
    spec = importlib.util.spec_from_file_location(
        "cli_reference", os.path.join(PROJECT_ROOT, "scripts", "cli_reference.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_is_generated_from_the_parser():
    reference = _reference()
    with open(reference.REFERENCE, encoding="utf-8") as f:
        assert f.read() == reference.render(), (
            "docs/cli.md is stale: run python scripts/cli_reference.py")


def test_the_cli_reference_lists_every_command_and_flag():
    text = _reference().render()
    parser = cli.build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in commands.choices.items():
        assert f"\n## {name}\n" in text
        for action in command._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert f"`{flag}`" in text, (name, flag)


def _pages() -> list[str]:
    # docs/cli.md is made from the parser itself; its usage lines are synopses.
    return [os.path.join(PROJECT_ROOT, "README.md")] + sorted(
        os.path.join(DOCS, name) for name in os.listdir(DOCS)
        if name.endswith(".md") and name != "cli.md")


def _commands(path: str) -> list[tuple[int, str]]:
    """(line number, command) of every command in the page's fenced code blocks,
    continued lines joined."""
    found, fenced, pending = [], False, None
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            if not fenced:
                continue
            text = line.strip()
            if pending is not None:
                pending = (pending[0], pending[1] + " " + text.rstrip("\\"))
            elif _COMMAND.match(text):
                pending = (number, text.rstrip("\\"))
            if pending is not None and not text.endswith("\\"):
                found.append(pending)
                pending = None
    return found


_SHOWN = [(os.path.relpath(path, PROJECT_ROOT), number, command)
          for path in _pages() for number, command in _commands(path)]


def test_the_docs_show_commands():
    pages = {page for page, _, _ in _SHOWN}
    assert {"README.md", "docs/pipeline.md", "docs/serving.md", "docs/cloud.md"} <= pages
    assert len(_SHOWN) >= 30


@pytest.mark.parametrize("page, line, command", _SHOWN, ids=[f"{p}:{n}" for p, n, _ in _SHOWN])
def test_every_command_in_the_docs_parses(page, line, command):
    words = shlex.split(command)
    words = words[3:] if words[0] == "python" else words[1:]
    try:
        with contextlib.redirect_stderr(io.StringIO()) as err:
            _, extra = cli.build_parser().parse_known_args(words)
    except SystemExit:
        pytest.fail(f"{page}:{line}: {command}\n{err.getvalue()}")
    name = words[0]
    if name not in _BEAM_COMMANDS:
        assert not extra, f"{page}:{line}: {name} takes no flags {extra}"
        return
    # What the launcher leaves must be Beam's (preflight.check_beam_flags' test).
    parsers = []
    PipelineOptions(extra).get_all_options(add_extra_args_fn=parsers.append)
    _, unknown = parsers[0].parse_known_args(extra)
    assert not [a for a in unknown if a.startswith("-")], f"{page}:{line}: {unknown}"
