"""`candour demo` builds a fresh home end to end, and never deletes data it did not create."""

from pathlib import Path

from typer.testing import CliRunner

from candour.cli.main import app
from candour.demo import DEMO_MARKER
from candour.home import Home

runner = CliRunner()


def test_demo_builds_a_home_with_a_county(tmp_path: Path):
    home = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--people", "300", "--home", str(home), "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "300 people, seed 1" in result.output
    layout = Home(home)
    assert layout.is_initialised()
    assert (home / DEMO_MARKER).exists()
    assert (layout.synth / "sources.yaml").exists()
    truth = (layout.synth / "truth" / "records.csv").read_text().splitlines()
    assert truth[0] == "source,record_id,person_key"
    assert len(truth) > 300


def test_demo_replaces_its_own_previous_home(tmp_path: Path):
    home = tmp_path / "demo"
    args = ["demo", "--people", "50", "--home", str(home), "--no-serve"]
    assert runner.invoke(app, args).exit_code == 0
    (home / "leftover").write_text("from the last demo")
    assert runner.invoke(app, [*args[:2], "60", *args[3:]]).exit_code == 0
    assert not (home / "leftover").exists()
    assert "60 people" in runner.invoke(app, [*args[:2], "60", *args[3:]]).output


def test_demo_refuses_a_directory_holding_other_data(tmp_path: Path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "report.docx").write_text("do not lose me")
    result = runner.invoke(app, ["demo", "--people", "50", "--home", str(precious), "--no-serve"])
    assert result.exit_code == 2
    assert "did not create" in result.output
    assert (precious / "report.docx").read_text() == "do not lose me"
