"""`candour demo` builds a fresh home end to end, and never deletes data it did not create."""

from pathlib import Path

from typer.testing import CliRunner

from candour.cli.main import app
from candour.demo import DEMO_MARKER
from candour.home import Home

runner = CliRunner()


def test_demo_builds_a_home_with_a_county(tmp_path: Path):
    home = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--people", "500", "--home", str(home), "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "500 people, seed 1" in result.output
    layout = Home(home)
    assert layout.is_initialised()
    assert (home / DEMO_MARKER).exists()
    assert (layout.synth / "sources.yaml").exists()
    truth = (layout.synth / "truth" / "records.csv").read_text().splitlines()
    assert truth[0] == "source,record_id,person_key"
    assert len(truth) > 500


def test_demo_replaces_its_own_previous_home(tmp_path: Path):
    home = tmp_path / "demo"
    first = runner.invoke(app, ["demo", "--people", "500", "--home", str(home), "--no-serve"])
    assert first.exit_code == 0, first.output
    (home / "leftover").write_text("from the last demo")
    again = runner.invoke(app, ["demo", "--people", "600", "--home", str(home), "--no-serve"])
    assert again.exit_code == 0, again.output
    assert "600 people" in again.output
    assert not (home / "leftover").exists()


def test_demo_refuses_a_directory_holding_other_data(tmp_path: Path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "report.docx").write_text("do not lose me")
    result = runner.invoke(app, ["demo", "--people", "500", "--home", str(precious), "--no-serve"])
    assert result.exit_code == 2
    assert "did not create" in result.output
    assert (precious / "report.docx").read_text() == "do not lose me"
