"""`candour check`, `candour backup` and `candour restore` on a real, small data home."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from candour import ledger
from candour.cli.main import app
from candour.config import Settings
from candour.home import Home
from candour.initialise import initialise_home
from candour.maintenance.backup import BackupError, backup, restore
from candour.maintenance.check import check_home
from candour.sources.ingest import ingest
from candour.store import IngestBatch, dispose, transaction
from candour.synth import write_county
from candour.warehouse import open_warehouse

PASSPHRASE = "correct horse battery staple"
runner = CliRunner()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A home with a small synthetic county ingested (built once; tests copy or read it)."""
    settings = Settings(home=tmp_path_factory.mktemp("built") / "home")
    initialise_home(settings)
    county = settings.home / "synth"
    write_county(county, people=150, seed=3)
    with open_warehouse(settings) as warehouse:
        ingest(county / "sources.yaml", settings, warehouse)
    return settings


def _batches(settings: Settings) -> int:
    with transaction(settings) as session:
        return int(session.scalar(select(func.count()).select_from(IngestBatch)) or 0)


def test_a_healthy_home_checks_out(built: Settings):
    report = check_home(built)
    assert report.ok, [f for f in report.findings if not f.ok]
    parts = {f.part for f in report.findings}
    assert parts == {"keys", "store", "vault", "warehouse", "ledger"}


def test_backup_and_restore_round_trip(built: Settings, tmp_path: Path):
    archive = tmp_path / "home.backup"
    size = backup(built, archive, PASSPHRASE)
    assert size == archive.stat().st_size > 0
    assert archive.stat().st_mode & 0o077 == 0
    raw = archive.read_bytes()
    # Encrypted: nothing from the store, the ledger or the keys is visible in the file.
    assert b"ingest_batches" not in raw and b"PRIVATE+KEY" not in raw
    target = tmp_path / "restored"
    restore(archive, target, PASSPHRASE)
    restored = Settings(home=target)
    try:
        assert check_home(restored).ok
        assert _batches(restored) == _batches(built) > 0
        assert Home(target).vault_key.read_bytes() == Home(built.home).vault_key.read_bytes()
        size_before = ledger.open_log(built).read_checkpoint()
        size_after = ledger.open_log(restored).read_checkpoint()
        assert size_before is not None and size_after is not None
        assert size_after[0].root == size_before[0].root
        assert not (target / "synth").exists()  # regenerable input is not backed up
    finally:
        dispose(restored)


def test_backups_are_never_overwritten(built: Settings, tmp_path: Path):
    archive = tmp_path / "b"
    archive.write_text("someone's file")
    with pytest.raises(BackupError, match="never overwritten"):
        backup(built, archive, PASSPHRASE)
    assert archive.read_text() == "someone's file"


@pytest.fixture(scope="module")
def archive(built: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("archive") / "home.backup"
    backup(built, path, PASSPHRASE)
    return path


def test_wrong_passphrase_and_damage_are_refused_leaving_nothing(archive: Path, tmp_path: Path):
    target = tmp_path / "restored"
    with pytest.raises(BackupError, match="wrong passphrase"):
        restore(archive, target, "not the passphrase at all")
    assert not target.exists()
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    damaged = tmp_path / "damaged.backup"
    damaged.write_bytes(bytes(data))
    with pytest.raises(BackupError, match="damaged or was altered"):
        restore(damaged, target, PASSPHRASE)
    truncated = tmp_path / "truncated.backup"
    truncated.write_bytes(archive.read_bytes()[: len(data) - 100])
    with pytest.raises(BackupError, match="truncated|damaged"):
        restore(truncated, target, PASSPHRASE)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".candour-restore")] == []


def test_restore_refuses_a_directory_with_data(archive: Path, tmp_path: Path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(BackupError, match="not empty"):
        restore(archive, tmp_path / "busy", PASSPHRASE)
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_check_names_what_is_wrong(archive: Path, tmp_path: Path):
    target = tmp_path / "home"
    restore(archive, target, PASSPHRASE)
    settings = Settings(home=target)
    home = Home(target)
    try:
        home.hmac_key.chmod(0o644)
        tile = next((ledger.public_dir(home) / "tile" / "entries").rglob("*"))
        while tile.is_dir():
            tile = next(tile.iterdir())
        data = bytearray(tile.read_bytes())
        data[-1] ^= 0xFF
        tile.write_bytes(bytes(data))
        report = check_home(settings)
        problems = {(f.part, f.check): f.detail for f in report.findings if not f.ok}
        assert not report.ok
        assert "chmod 600" in problems[("keys", "present, private")]
        assert "tile/entries" in problems[("ledger", "verify --full")]
    finally:
        dispose(settings)


def test_an_interrupted_ingest_is_found_and_repaired(archive: Path, tmp_path: Path):
    target = tmp_path / "home"
    restore(archive, target, PASSPHRASE)
    settings = Settings(home=target)
    try:
        with transaction(settings) as session:
            session.add(
                IngestBatch(
                    source="gp_registrations",
                    file_name="late.csv",
                    content_sha256="f" * 64,
                    status="pending",
                )
            )
        report = check_home(settings)
        pending = [f for f in report.findings if f.check == "ingests settled"]
        assert not pending[0].ok and "interrupted" in pending[0].detail
        repaired = check_home(settings, repair=True)
        assert repaired.ok
        assert any("rolled back" in line for line in repaired.repaired)
    finally:
        dispose(settings)


def test_cli_needs_a_passphrase_without_a_terminal(built: Settings, tmp_path: Path):
    result = runner.invoke(
        app, ["backup", "--out", str(tmp_path / "x"), "--home", str(built.home)], input=""
    )
    assert result.exit_code == 2
    assert "CANDOUR_BACKUP_PASSPHRASE" in result.output
    assert not (tmp_path / "x").exists()


def test_cli_backup_restore_and_check(built: Settings, tmp_path: Path):
    secret = tmp_path / "pass"
    secret.write_text(PASSPHRASE + "\n")
    out = tmp_path / "cli.backup"
    made = runner.invoke(
        app,
        ["backup", "--out", str(out), "--passphrase-file", str(secret), "--home", str(built.home)],
    )
    assert made.exit_code == 0, made.output
    done = runner.invoke(
        app, ["restore", str(out), "--home", str(tmp_path / "r"), "--passphrase-file", str(secret)]
    )
    assert done.exit_code == 0, done.output
    assert "problem" not in done.output
    dispose(Settings(home=tmp_path / "r"))
    checked = runner.invoke(app, ["check", "--home", str(built.home)])
    assert checked.exit_code == 0, checked.output


def test_postgresql_store_backups_are_refused_with_directions(built: Settings, tmp_path: Path):
    settings = built.model_copy(update={"database_url": "postgresql+psycopg://x@127.0.0.1/y"})
    with pytest.raises(BackupError, match="pg_dump"):
        backup(settings, tmp_path / "b", PASSPHRASE)
