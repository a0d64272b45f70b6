"""The vault's audited access: reasons required, every read recorded, workspaces removed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import select
from tests.integration.test_ingest_fixtures import initialised, run_ingest, write_extract

from candour.config import Settings
from candour.errors import CandourError
from candour.home import Home
from candour.store import transaction
from candour.store.ingest import VaultAccess
from candour.vault import (
    IDENTITY_SCHEMA,
    VaultError,
    dispose_vault,
    open_vault,
    remove_stale_workspaces,
    workspaces_root,
)


@pytest.fixture
def settings(store_settings: Settings, tmp_path: Path) -> Settings:
    settings = initialised(store_settings)
    run_ingest(write_extract(tmp_path / "x"), settings)
    yield settings
    dispose_vault(settings)


def _accesses(settings: Settings) -> list[VaultAccess]:
    with transaction(settings) as session:
        return list(session.scalars(select(VaultAccess).order_by(VaultAccess.id)))


def test_reading_needs_a_reason_and_an_actor(settings: Settings):
    vault = open_vault(settings)
    with pytest.raises(CandourError, match="stated reason"):
        with vault.open_workspace(reason="  ", actor="someone"):
            pass
    with pytest.raises(CandourError, match="actor"):
        vault.lookup("nhs_number", ["9434765919"], reason="a proper reason", actor="")
    assert _accesses(settings) == []


@pytest.mark.parametrize("workers", [1, 2], ids=["here", "worker processes"])
def test_every_read_is_recorded_with_scope_and_count(settings: Settings, workers: int):
    vault = open_vault(settings)
    with vault.open_workspace(reason="link run L-1 for the index", actor="linkage") as ws:
        batches = list(ws.identity_batches(source="gp", chunk_size=2, workers=workers))
        some = ws.records(["gp:P002", "gp:P001", "gp:missing"])
    table = pa.Table.from_batches(batches, schema=IDENTITY_SCHEMA)
    assert table.num_rows == 5 and [b.num_rows for b in batches] == [2, 2, 1]
    assert table.column("record_key").to_pylist() == [f"gp:P00{i}" for i in range(1, 6)]
    assert [r.record_key for r in some] == ["gp:P002", "gp:P001"]
    rows = _accesses(settings)
    assert [(a.operation, a.scope, a.records, a.actor) for a in rows] == [
        ("identities", "source=gp", 5, "linkage"),
        ("records", "record_keys=3", 2, "linkage"),
    ]
    assert all(a.finished_at is not None and a.workspace == rows[0].workspace for a in rows)


def test_a_read_stopped_early_stays_recorded_as_unfinished(settings: Settings):
    vault = open_vault(settings)
    with vault.open_workspace(reason="peek at one record only", actor="pytest") as ws:
        stream = ws.identities()
        next(stream)
        stream.close()
    [access] = _accesses(settings)
    assert access.finished_at is None and access.records is None


def test_the_workspace_is_private_and_removed_even_on_failure(settings: Settings):
    vault = open_vault(settings)
    seen: list[Path] = []
    with pytest.raises(RuntimeError):
        with vault.open_workspace(reason="linkage that crashes", actor="pytest") as ws:
            seen.append(ws.path)
            assert os.stat(ws.path).st_mode & 0o777 == 0o700
            (ws.path / "identities.duckdb").write_bytes(b"decrypted things")
            raise RuntimeError("boom")
    assert not seen[0].exists()


def test_workspaces_of_dead_processes_are_removed(settings: Settings):
    root = workspaces_root(settings)
    root.mkdir(parents=True, exist_ok=True)
    stale = root / "ws-dead"
    stale.mkdir()
    (stale / ".owner").write_text(f"{os.uname().nodename} 999999999\n")
    live = root / "ws-live"
    live.mkdir()
    (live / ".owner").write_text(f"{os.uname().nodename} {os.getpid()}\n")
    assert remove_stale_workspaces(settings) == 1
    assert not stale.exists() and live.exists()


def test_a_workspace_being_created_is_not_taken_for_abandoned(settings: Settings):
    root = workspaces_root(settings)
    root.mkdir(parents=True, exist_ok=True)
    # Another process has made its directory but not yet written its owner file.
    creating = root / "ws-creating"
    creating.mkdir()
    abandoned = root / "ws-abandoned"
    abandoned.mkdir()
    old = time.time() - 3600
    os.utime(abandoned, (old, old))
    assert remove_stale_workspaces(settings) == 1
    assert creating.exists() and not abandoned.exists()


def test_lookup_finds_records_by_exact_identifier(settings: Settings):
    vault = open_vault(settings)
    found = vault.lookup(
        "identifiers.pnc", ["991234A", "NOPE"], reason="police match check", actor="pytest"
    )
    assert found == {"991234A": ["gp:P001"]}
    assert _accesses(settings)[-1].records == 1


def test_a_replaced_key_is_refused_before_anything_is_written(settings: Settings):
    dispose_vault(settings)
    key = Home(settings.home).vault_key
    key.chmod(0o600)
    key.write_bytes(os.urandom(32))
    with pytest.raises(VaultError, match="vault key in keys/ is not the one"):
        open_vault(settings)


def test_the_vault_file_is_private(settings: Settings):
    assert os.stat(Home(settings.home).vault_db).st_mode & 0o777 == 0o600


def test_the_vault_can_live_in_postgresql(
    sqlite_settings: Settings, postgres_url: str, tmp_path: Path
):
    settings = initialised(sqlite_settings.model_copy(update={"vault_url": postgres_url}))
    report = run_ingest(write_extract(tmp_path / "pg"), settings)
    assert report.results[0].rows_accepted == 5
    vault = open_vault(settings)
    with vault.open_workspace(reason="test: vault on postgresql", actor="pytest") as ws:
        names = sorted(r.given_name or "" for r in ws.identities())
        # Worker processes read their runs of keys from PostgreSQL themselves.
        here, workers = (
            pa.Table.from_batches(ws.identity_batches(chunk_size=2, workers=n)) for n in (1, 2)
        )
    assert names == ["ana", "bob", "mary ann", "siobhan", "zoe"]
    assert here.num_rows == 5 and here.equals(workers)
    assert vault.lookup("nhs_number", ["9434765919"], reason="opt-out check", actor="t") == {
        "9434765919": ["gp:P001"]
    }
    assert not Home(settings.home).vault_db.exists()
    dispose_vault(settings)


def test_a_sealed_batch_leaves_no_write_ahead_log_behind(
    sqlite_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from candour.sources import ingest as ingest_module

    # Through the sealing workers, as a large file goes (they commit without waiting).
    monkeypatch.setattr(ingest_module, "PARALLEL_MIN_ROWS", 1)
    settings = initialised(sqlite_settings)
    wal = Path(f"{Home(settings.home).root / 'vault.db'}-wal")
    try:
        run_ingest(write_extract(tmp_path / "x"), settings)
        # Folded back into the vault once the batch was in: an empty log, the records kept.
        assert not wal.exists() or wal.stat().st_size == 0
        assert open_vault(settings).count() > 0
        # A reader holding the log open postpones the fold; the ingest still succeeds.
        vault = open_vault(settings)
        with vault.engine.connect() as reader:
            reader.exec_driver_sql("BEGIN")
            reader.exec_driver_sql("SELECT count(*) FROM identities").fetchall()
            started = time.monotonic()
            run_ingest(write_extract(tmp_path / "y", name="gp2.csv"), settings)
            assert time.monotonic() - started < 60
            reader.exec_driver_sql("ROLLBACK")
    finally:
        dispose_vault(settings)
