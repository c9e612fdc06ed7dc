"""Writes docs/cli.md, the CLI reference, from the CLI's own argparse parser.

    python scripts/cli_reference.py          # rewrite docs/cli.md
    python scripts/cli_reference.py --check  # exit 1 if docs/cli.md is stale

The reference is made from ``pipelines.cli.build_parser``: every command, its
description, its usage and each flag with its default and help, so it cannot
say what the CLI does not. ``tests/test_docs.py`` fails when it is stale.
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(ROOT, "docs", "cli.md")


def render() -> str:
    """The text of docs/cli.md for the CLI as it is."""
    sys.path.insert(0, ROOT)
    from pipelines import cli

    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in commands._choices_actions}
    lines = [
        "# CLI reference",
        "",
        "Generated from the CLI's argparse parser by `python scripts/cli_reference.py`; do not",
        "edit by hand (`tests/test_docs.py` fails when this page is stale). Every command is",
        f"`{cli.PROG} COMMAND` or, installed with `pip install .`, `tft-preprocessing COMMAND`.",
        "Flags the commands that build a Beam pipeline (`run`, `validate`, `predict`) do not",
        "know go to Beam's `PipelineOptions` (`--runner`, `--project`, ...); any other",
        "unknown flag is an error.",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    lines += [f"| [`{name}`](#{name}) | {_cell(helps[name])} |" for name in commands.choices]
    for name, command in commands.choices.items():
        usage = " ".join(command.format_usage().split())  # argparse wraps it
        lines += ["", f"## {name}", "", f"{helps[name][0].upper()}{helps[name][1:]}.", "",
                  "```", usage.removeprefix("usage: "), "```", "",
                  "| flag | value | default | |", "|---|---|---|---|"]
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flag = ", ".join(f"`{o}`" for o in action.option_strings)
            lines.append(f"| {flag} | {_value(action)} | {_default(action)} | "
                         f"{_cell(action.help or '')} |")
    return "\n".join(lines) + "\n"


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "(none)"
    if action.choices:
        return " or ".join(f"`{c}`" for c in action.choices)
    metavar = action.metavar or action.dest.upper()
    return f"`[{metavar}]`" if action.nargs == "?" else f"`{metavar}`"


def _default(action: argparse.Action) -> str:
    if action.required:
        return "required"
    if action.default in (None, False, ()) or action.default == argparse.SUPPRESS:
        return ""
    return f"`{action.default}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main() -> int:
    check = sys.argv[1:] == ["--check"]
    text = render()
    if check:
        with open(REFERENCE, encoding="utf-8") as f:
            if f.read() != text:
                print(f"{REFERENCE} is stale: run python scripts/cli_reference.py",
                      file=sys.stderr)
                return 1
        return 0
    with open(REFERENCE, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
