"""Output checking and release: the two-person rule, the ledger entry with the file hash, and
nothing released when any step fails (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from candour import ledger
from candour.cli.main import app
from candour.config import Settings
from candour.disclosure import (
    Count,
    OutputError,
    ReleaseError,
    approve_release,
    get_release,
    list_releases,
    protect,
    reject_release,
    request_release,
    save_output,
)
from candour.home import Home
from candour.store import migrate, transaction
from candour.store.register import StaffUser

USE = "DU-2026-007"


def make_home(settings: Settings) -> Settings:
    home = Home(settings.home)
    home.create_directories()
    ledger.ensure_keys(home, settings.log_origin, settings.witness_name)
    migrate(settings)
    with transaction(settings) as session:
        for name, role in [("ana", "analyst"), ("bo", "analyst"), ("cat", "checker"),
                           ("dev", "checker"), ("ig", "ig")]:  # fmt: skip
            session.add(StaffUser(name=name, role=role))
        session.add(StaffUser(name="old", role="checker", active=False))
    return settings


@pytest.fixture
def home(store_settings: Settings) -> Settings:
    return make_home(store_settings)


@pytest.fixture
def sqlite_home(sqlite_settings: Settings) -> Settings:
    return make_home(sqlite_settings)


def an_output(settings: Settings, created_by: str = "ana"):
    table = pd.DataFrame({"area": ["A", "B", "C", "D"], "n": [3, 12, 27, 41]})
    result = protect(table, keys=["area"], measures=[Count("n")])
    return save_output(settings, result, use_id=USE, created_by=created_by, name="falls")


def log_size(settings: Settings) -> int:
    checkpoint = ledger.open_log(settings).read_checkpoint()
    return checkpoint.size if checkpoint is not None else 0


def released_files(settings: Settings) -> list[Path]:
    return sorted(p for p in Home(settings.home).releases.rglob("*") if p.is_file())


def test_an_output_stays_inside_until_a_second_person_approves(home: Settings):
    output = an_output(home)
    assert output.path.is_file() and Home(home.home).releases not in output.path.parents
    assert output.path.read_text().splitlines() == [
        "area,n", "A,[c]", "B,[c]", "C,25", "D,40",
    ]  # fmt: skip
    assert released_files(home) == []

    request = request_release(home, output.output_id, user="ana")
    assert request.status == "pending" and released_files(home) == []

    with pytest.raises(ReleaseError, match="two-person rule"):
        approve_release(home, request.release_id, checker="ana")
    with pytest.raises(ReleaseError, match="only a checker"):
        approve_release(home, request.release_id, checker="bo")
    with pytest.raises(ReleaseError, match="not an active staff user"):
        approve_release(home, request.release_id, checker="old")
    with pytest.raises(ReleaseError, match="not an active staff user"):
        approve_release(home, request.release_id, checker="nobody")
    assert released_files(home) == [] and get_release(home, request.release_id).status == "pending"

    size_before = log_size(home)
    done = approve_release(home, request.release_id, checker="cat")
    assert done.status == "released" and done.checked_by == "cat"

    # The file is in releases/ byte for byte, with its metadata.
    copy = Path(done.release_path or "")
    assert copy.parent == Home(home.home).releases / request.release_id
    assert copy.read_bytes() == output.path.read_bytes()
    digest = hashlib.sha256(copy.read_bytes()).hexdigest()
    meta = json.loads((copy.parent / "release.json").read_text())
    assert meta["file_sha256"] == digest == output.file_sha256
    assert meta["use_id"] == USE
    assert (meta["requested_by"], meta["checked_by"]) == ("ana", "cat")
    assert meta["report_sha256"] == output.report_sha256
    assert meta["ledger_index"] == done.ledger_index == size_before
    # The disclosure report (original values, which cells were primary) never leaves.
    assert sorted(p.name for p in copy.parent.iterdir()) == ["falls.csv", "release.json"]

    # The public log carries the release with the file hash.
    entry = json.loads(ledger.entry(done.ledger_index, settings=home))
    assert entry["kind"] == "release"
    assert entry["release_id"] == request.release_id
    assert entry["output_hash"] == digest
    assert (entry["use_id"], entry["method"]) == (USE, "sdc")

    with pytest.raises(ReleaseError, match="released, not pending"):
        approve_release(home, request.release_id, checker="dev")
    with pytest.raises(ReleaseError, match="already has release request"):
        request_release(home, output.output_id, user="bo")


def test_the_creator_cannot_check_an_output_someone_else_requested(sqlite_home: Settings):
    output = an_output(sqlite_home, created_by="cat")
    request = request_release(sqlite_home, output.output_id, user="bo")
    with pytest.raises(ReleaseError, match="two-person rule"):
        approve_release(sqlite_home, request.release_id, checker="cat")
    assert approve_release(sqlite_home, request.release_id, checker="dev").status == "released"


def test_a_rejection_records_its_reason_and_releases_nothing(home: Settings):
    output = an_output(home)
    request = request_release(home, output.output_id, user="ana")
    with pytest.raises(ReleaseError, match="needs a reason"):
        reject_release(home, request.release_id, checker="cat", reason="  ")
    size_before = log_size(home)
    rejected = reject_release(
        home, request.release_id, checker="cat", reason="Area D is a single care home"
    )
    assert rejected.status == "rejected"
    assert get_release(home, request.release_id).reason == "Area D is a single care home"
    assert released_files(home) == []
    assert log_size(home) == size_before
    assert [r.release_id for r in list_releases(home, "rejected")] == [request.release_id]
    assert list_releases(home, "pending") == []
    # A rejected output may be asked for again (say, with a better justification).
    again = request_release(home, output.output_id, user="ana")
    assert again.status == "pending"


def test_a_failure_to_log_fails_the_release(sqlite_home: Settings, monkeypatch):
    output = an_output(sqlite_home)
    request = request_release(sqlite_home, output.output_id, user="ana")

    def refuse(*args, **kwargs):
        raise ledger.LogError("log is read-only")

    monkeypatch.setattr(ledger, "record", refuse)
    with pytest.raises(ReleaseError, match="could not be logged, so nothing was released"):
        approve_release(sqlite_home, request.release_id, checker="cat")
    assert released_files(sqlite_home) == []
    assert list(Home(sqlite_home.home).releases.iterdir()) == []  # no staging left behind
    after = get_release(sqlite_home, request.release_id)
    assert (after.status, after.checked_by, after.ledger_index) == ("pending", None, None)

    monkeypatch.undo()
    assert approve_release(sqlite_home, request.release_id, checker="cat").status == "released"


def test_a_failure_after_logging_removes_the_copied_file(sqlite_home: Settings, monkeypatch):
    output = an_output(sqlite_home)
    request = request_release(sqlite_home, output.output_id, user="ana")
    import candour.disclosure.releases as releases

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(releases, "_to_release", broken)
    with pytest.raises(OSError):
        approve_release(sqlite_home, request.release_id, checker="cat")
    assert released_files(sqlite_home) == []
    monkeypatch.undo()
    assert get_release(sqlite_home, request.release_id).status == "pending"


def test_a_file_changed_after_it_was_checked_is_not_released(sqlite_home: Settings):
    output = an_output(sqlite_home)
    request = request_release(sqlite_home, output.output_id, user="ana")
    output.path.write_text("area,n\nA,3\n")  # someone edits the output by hand
    with pytest.raises(OutputError, match="has changed since it was checked"):
        approve_release(sqlite_home, request.release_id, checker="cat")
    assert released_files(sqlite_home) == []
    with pytest.raises(OutputError, match="has changed"):
        request_release(sqlite_home, output.output_id, user="bo")


def test_the_cli_walks_through_request_show_and_approve(sqlite_home: Settings):
    output = an_output(sqlite_home)
    runner = CliRunner()
    home = ["--home", str(sqlite_home.home)]
    env = {"CANDOUR_LOG_ORIGIN": sqlite_home.log_origin, "COLUMNS": "200"}

    done = runner.invoke(
        app, ["release", "request", output.output_id, "--as", "ana", *home], env=env
    )
    assert done.exit_code == 0, done.output
    release_id = done.output.split()[0]
    assert release_id.startswith("REL-")

    shown = runner.invoke(app, ["release", "show", release_id, *home], env=env)
    assert shown.exit_code == 0, shown.output
    assert "primary" in shown.output and "secondary" in shown.output
    assert "rounded" in shown.output and "n=41" in shown.output and "n=40" in shown.output

    own = runner.invoke(app, ["release", "approve", release_id, "--as", "ana", *home], env=env)
    assert own.exit_code == 2 and "two-person rule" in own.output

    listed = runner.invoke(app, ["release", "list", "--status", "pending", *home], env=env)
    assert release_id in listed.output

    ok = runner.invoke(app, ["release", "approve", release_id, "--as", "cat", *home], env=env)
    assert ok.exit_code == 0, ok.output
    assert "released to" in ok.output
    assert len(released_files(sqlite_home)) == 2
