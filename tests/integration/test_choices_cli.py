"""``candour choices set`` and ``show`` through the CLI."""

from tests.integration.test_choices_store import make_home
from typer.testing import CliRunner

from candour.cli.main import app
from candour.config import Settings

runner = CliRunner()


def test_set_and_show(sqlite_settings: Settings):
    people = make_home(sqlite_settings)
    home = ["--home", str(sqlite_settings.home)]
    args = ["choices", "set", "--person", people[0], "--purpose", "research"]
    result = runner.invoke(
        app, [*args, "--decision", "opt-out", "--source", "police_incidents", *home]
    )
    assert result.exit_code == 0, result.output
    assert "Recorded" in result.output and "police_incidents records" in result.output
    again = runner.invoke(
        app, [*args, "--decision", "opt-out", "--source", "police_incidents", *home]
    )
    assert "No change" in again.output

    shown = runner.invoke(app, ["choices", "show", "--person", people[0], *home])
    assert shown.exit_code == 0, shown.output
    flat = " ".join(shown.output.split())  # rich wraps cells in a narrow terminal
    assert "opted out of:" in flat and "police_incidents" in flat
    assert "bulk-import" not in shown.output and "cli" in shown.output

    refused = runner.invoke(
        app,
        [
            "choices",
            "set",
            "--person",
            people[0],
            "--purpose",
            "direct-care",
            "--decision",
            "opt-out",
            *home,
        ],
    )
    assert refused.exit_code == 2
    assert "residents cannot opt out of direct-care" in " ".join(refused.output.split())
    bad = runner.invoke(app, [*args, "--decision", "maybe", *home])
    assert bad.exit_code == 2 and "--decision must be opt-out or opt-in" in bad.output
