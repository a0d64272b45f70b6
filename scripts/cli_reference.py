"""Print the CLI reference (docs/cli.md), generated from every command's --help.

Run `make docs` after changing a command; a test fails when docs/cli.md is out of date.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.testing import CliRunner

from candour.cli.main import app


def _commands(group: Any, path: list[str]) -> list[list[str]]:
    found = [path]
    if hasattr(group, "list_commands"):  # a group (typer vendors its own click)
        context = typer.Context(group)
        for name in sorted(group.list_commands(context)):
            sub = group.get_command(context, name)
            if sub is not None and not sub.hidden:
                found.extend(_commands(sub, [*path, name]))
    return found


def reference() -> str:
    """The Markdown reference for every command, in a stable order and width."""
    os.environ["COLUMNS"] = "100"
    os.environ["NO_COLOR"] = "1"
    os.environ["TERM"] = "dumb"
    root = typer.main.get_command(app)
    runner = CliRunner()
    lines = [
        "# CLI reference",
        "",
        "Generated from `--help` by `make docs` (scripts/cli_reference.py); a test checks it is",
        "up to date. Every command takes `--home` or `CANDOUR_HOME`; user errors exit with code 2.",
        "",
    ]
    for path in _commands(root, []):
        result = runner.invoke(app, [*path, "--help"], prog_name="candour")
        if result.exit_code != 0:
            raise SystemExit(f"`candour {' '.join(path)} --help` failed: {result.output}")
        title = " ".join(["candour", *path])
        lines += [f"## `{title}`", "", "```text", result.output.rstrip(), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(reference())
