"""``candour users`` and ``candour uses`` end to end through the CLI."""

import json
from pathlib import Path

from tests.unit.test_register_spec import EXAMPLE
from typer.testing import CliRunner

from candour.config import Settings
from candour.initialise import initialise_home

runner = CliRunner()


def _run(settings: Settings, *args: str):
    return runner.invoke(app_(), [*args, "--home", str(settings.home)])


def app_():
    from candour.cli.main import app

    return app


def test_apply_submit_approve_list_show_export(sqlite_settings: Settings, tmp_path: Path):
    initialise_home(sqlite_settings)
    for name, role in (("ana", "analyst"), ("ian", "ig")):
        result = _run(sqlite_settings, "users", "add", name, "--role", role)
        assert result.exit_code == 0, result.output
    listed = _run(sqlite_settings, "users", "list")
    assert "ana" in listed.output and "ig" in listed.output

    use_file = tmp_path / "use.yaml"
    use_file.write_text(EXAMPLE.replace("ends: 2027-12-31", "ends: 2099-12-31"))
    applied = _run(sqlite_settings, "uses", "apply", "--file", str(use_file))
    assert applied.exit_code == 0, applied.output
    use_id = applied.output.strip()
    assert use_id.startswith("DU-") and len(use_id.splitlines()) == 1

    assert _run(sqlite_settings, "uses", "submit", use_id, "--as", "ana").exit_code == 0
    refused = _run(sqlite_settings, "uses", "approve", use_id, "--as", "ana")
    assert refused.exit_code == 2
    assert "only an information-governance (ig) user can approve" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    approved = _run(sqlite_settings, "uses", "approve", use_id, "--as", "ian")
    assert approved.exit_code == 0 and f"{use_id} is now active" in approved.output

    listing = _run(sqlite_settings, "uses", "list")
    assert use_id in listing.output and "active" in listing.output
    shown = _run(sqlite_settings, "uses", "show", use_id)
    assert "6(1)(e) public task" in shown.output and "approved" in shown.output

    out = tmp_path / "register.json"
    exported = _run(sqlite_settings, "uses", "export", "--format", "json", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    document = json.loads(out.read_text())
    assert [u["use_id"] for u in document["uses"]] == [use_id]
    csv_text = _run(sqlite_settings, "uses", "export", "--format", "csv").output
    assert csv_text.splitlines()[0].startswith("use_id,title,summary")
    assert _run(sqlite_settings, "uses", "export", "--format", "xml").exit_code == 2

    revoked = _run(sqlite_settings, "uses", "revoke", use_id, "--as", "ian", "--reason", "breach")
    assert revoked.exit_code == 0 and "revoked" in revoked.output


def test_a_bad_use_yaml_is_one_line_with_its_line_number(sqlite_settings: Settings, tmp_path: Path):
    initialise_home(sqlite_settings)
    use_file = tmp_path / "use.yaml"
    use_file.write_text(EXAMPLE + "colour: blue\n")
    result = _run(sqlite_settings, "uses", "apply", "--file", str(use_file))
    assert result.exit_code == 2
    assert f"{use_file}: line 23: colour: unknown key" in result.output.replace("\n", "")
