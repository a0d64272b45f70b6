"""The CLI's shared behaviour: help everywhere, one-line user errors (exit 2), docs in sync."""

import importlib.util
from pathlib import Path

from typer.testing import CliRunner

from candour.cli.main import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _reference_module():
    spec = importlib.util.spec_from_file_location(
        "cli_reference", REPO / "scripts/cli_reference.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("candour ")


def test_cli_reference_is_up_to_date():
    generated = _reference_module().reference()
    assert "## `candour init`" in generated
    committed = (REPO / "docs" / "cli.md").read_text()
    assert committed == generated, "docs/cli.md is stale: run `make docs`"


def test_every_command_has_help_text():
    text = _reference_module().reference()
    sections = text.split("## `")[1:]
    assert len(sections) >= 5
    for section in sections:
        name = section.split("`", 1)[0]
        body = section.split("```text", 1)[1]
        assert "Usage:" in body, name
        described = [line for line in body.splitlines()[2:6] if line.strip()]
        assert described, f"{name} has no description"


def test_user_error_is_one_line_and_exit_code_2(tmp_path: Path):
    (tmp_path / "file").write_text("in the way")
    result = runner.invoke(app, ["init", "--home", str(tmp_path / "file")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "not a directory" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_usage_errors_exit_2():
    result = runner.invoke(app, ["init", "--no-such-option"])
    assert result.exit_code == 2


def test_init_command(tmp_path: Path):
    result = runner.invoke(app, ["init", "--home", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    assert "created key vault.key" in result.output
    again = runner.invoke(app, ["init", "--home", str(tmp_path / "h")])
    assert again.exit_code == 0
    assert "none changed" in again.output
