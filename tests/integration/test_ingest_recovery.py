"""Crash safety: an ingest killed at any point is rolled back or forward, never left half-done."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from tests.integration.test_ingest_fixtures import (
    footprint,
    initialised,
    run_ingest,
    write_extract,
)

from candour.config import Settings
from candour.sources import ingest as ingest_module
from candour.sources.ingest import recover
from candour.vault import dispose_vault
from candour.warehouse import open_warehouse


@pytest.fixture
def settings(store_settings: Settings) -> Settings:
    return initialised(store_settings)


def _crash_at(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    """Make ``target`` fail like a power cut: no clean-up runs after it."""

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(ingest_module, target, boom)
    monkeypatch.setattr(ingest_module, "_settle_failed", lambda *a, **k: None)
    monkeypatch.setattr(ingest_module, "_discard_pending", lambda *a, **k: None)


def test_a_crash_before_the_ledger_entry_is_rolled_back(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    spec = write_extract(tmp_path / "x")
    monkeypatch.setattr(ingest_module.ledger, "record", _raise)
    monkeypatch.setattr(ingest_module, "_settle_failed", lambda *a, **k: None)
    with pytest.raises(KeyboardInterrupt):
        run_ingest(spec, settings)
    left = footprint(settings)
    assert (left.batches, left.done_batches) == (1, 0)
    assert left.vault_records == 5 and left.warehouse_rows == 5 and left.ingest_entries == 0
    monkeypatch.undo()

    with open_warehouse(settings) as warehouse:
        actions = recover(settings, warehouse)
    assert [(a.source, a.action) for a in actions] == [("gp", "rolled back")]
    assert footprint(settings).empty()
    # And the file can be ingested again from scratch.
    assert run_ingest(spec, settings).results[0].status == "ingested"
    assert footprint(settings).done_batches == 1


def _raise(*args: object, **kwargs: object) -> int:
    raise KeyboardInterrupt("simulated crash before the ledger entry")


def test_a_crash_after_the_ledger_entry_is_rolled_forward(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    spec = write_extract(tmp_path / "x")
    _crash_at(monkeypatch, "_mark_done")
    with pytest.raises(KeyboardInterrupt):
        run_ingest(spec, settings)
    left = footprint(settings)
    assert (left.done_batches, left.ingest_entries, left.vault_records) == (0, 1, 5)
    monkeypatch.undo()

    # The next ingest recovers first: the entry exists, so the batch is complete.
    report = run_ingest(spec, settings)
    assert [(a.source, a.action) for a in report.recovered] == [("gp", "rolled forward")]
    assert report.results[0].status == "already ingested"
    after = footprint(settings)
    assert (after.done_batches, after.ingest_entries, after.vault_records) == (1, 1, 5)


def test_a_failure_part_way_is_undone_at_once(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    spec = write_extract(tmp_path / "x")

    def vault_fails(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(ingest_module, "_finish_vault", vault_fails)
    with pytest.raises(OSError, match="disk full"):
        run_ingest(spec, settings)
    assert footprint(settings).empty()


def test_orphan_rows_of_unknown_batches_are_removed(settings: Settings, tmp_path: Path):
    spec = write_extract(tmp_path / "x")
    run_ingest(spec, settings)
    from candour.vault import open_vault

    vault = open_vault(settings)
    sealer = vault.sealer(["pnc"])
    columns: list[list[object]] = [["gp:ghost"], [0], *[[None]] * 8, [None], [None]]
    with vault.writer() as writer:
        writer.insert(*sealer.seal_columns(columns, "gp", 999))
    with open_warehouse(settings) as warehouse:
        actions = recover(settings, warehouse)
    dispose_vault(settings)
    assert [(a.batch_id, a.action) for a in actions] == [(999, "orphan rows removed")]
    assert footprint(settings).vault_records == 5


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from candour.config import Settings
    from candour.sources.ingest import ingest
    from candour.warehouse import open_warehouse

    settings = Settings(home=Path(sys.argv[1]), database_url=sys.argv[3] or None)
    with open_warehouse(settings) as warehouse:
        print("started", flush=True)
        ingest(Path(sys.argv[2]), settings, warehouse)
    print("finished", flush=True)
    """
)


def test_kill_9_mid_ingest_then_recover(sqlite_settings: Settings, tmp_path: Path):
    settings = initialised(sqlite_settings)
    rows = [
        f"K{i:06d},Name{i},Surname{i},01/01/1990,F,TN1 1AA,{i} Road,Town,,,2023-01-01,G1,{i},N"
        for i in range(55_000)
    ]
    spec = write_extract(tmp_path / "x", rows)
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(settings.home), str(spec), ""],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"started"
    # Mid-way, most likely while the sealing workers write the vault; any moment must do.
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # Sealing workers die with their parent (PR_SET_PDEATHSIG); give the kernel a moment.
    time.sleep(0.2)

    with open_warehouse(settings) as warehouse:
        recover(settings, warehouse)
    state = footprint(settings)
    # Whatever moment the kill hit, the home holds the whole batch or none of it.
    if state.done_batches:
        assert (state.vault_records, state.warehouse_rows, state.ingest_entries) == (
            55_000, 55_000, 1,
        )
    else:
        assert state.empty(), state
    assert not list(settings.home.glob(".ingest-*"))
    # A re-run completes it either way.
    run_ingest(spec, settings)
    final = footprint(settings)
    assert (final.done_batches, final.vault_records, final.warehouse_rows) == (1, 55_000, 55_000)
    assert final.ingest_entries == 1


def _use_workers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Send even a five-row file to two sealing workers, two rows per hand-over row group.

    Returns a list that gets the batch id of every hand-over to the workers.
    """
    from candour.vault.parallel import SealPool

    monkeypatch.setattr(ingest_module, "PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(ingest_module, "PARALLEL_CHUNK", 2)
    monkeypatch.setattr(ingest_module, "SEAL_WORKERS", 2)
    handed: list[int] = []
    start = SealPool.start

    def spy(self: SealPool, *args: Any) -> Any:
        handed.append(args[-1])
        return start(self, *args)

    monkeypatch.setattr(SealPool, "start", spy)
    return handed


def test_workers_seal_while_the_warehouse_is_written(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    spec = write_extract(tmp_path / "x")
    handed = _use_workers(monkeypatch)
    report = run_ingest(spec, settings)
    assert report.results[0].rows_accepted == 5
    assert handed == [report.results[0].batch_id]
    after = footprint(settings)
    assert (after.done_batches, after.vault_records, after.warehouse_rows) == (1, 5, 5)


def test_a_warehouse_failure_while_workers_seal_leaves_nothing(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    spec = write_extract(tmp_path / "x")
    handed = _use_workers(monkeypatch)
    from candour.warehouse.duckdb import DuckDBWarehouse

    def append_fails(*args: object, **kwargs: object) -> int:
        raise OSError("warehouse disk full")

    monkeypatch.setattr(DuckDBWarehouse, "append", append_fails)
    with pytest.raises(OSError, match="warehouse disk full"):
        run_ingest(spec, settings)
    assert len(handed) == 1
    # The workers' rows were written, then removed after they had all finished.
    assert footprint(settings).empty()


def test_a_second_file_of_a_source_waits_for_the_first_even_when_staging_runs_ahead(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Two files of one source in one run, both sealed by the workers (each exported for them
    # while staging, ahead of its turn): the second must still be staged only after the first
    # is committed, or it could not see that P001 was ingested in the first.
    from tests.integration.test_ingest_fixtures import ROWS

    spec = write_extract(tmp_path / "x", files="gp*.csv")
    fresh = [
        f"N{i:04d},Name{i},Surname,01/01/1990,F,TN1 1AA,1 Road,Town,,,2023-01-01,G1,1,N"
        for i in range(200)
    ]
    write_extract(tmp_path / "x", [ROWS[0], *fresh], name="gp2.csv", files="gp*.csv")
    handed = _use_workers(monkeypatch)
    exported: list[int] = []
    prepare = ingest_module._prepare

    def spy(*args: Any, **kwargs: Any) -> Any:
        prepared = prepare(*args, **kwargs)
        if prepared.rows_file is not None and prepared.rows_file.exists():
            exported.append(prepared.batch_id)
        return prepared

    monkeypatch.setattr(ingest_module, "_prepare", spy)
    report = run_ingest(spec, settings)
    first, second = report.results
    assert (first.file, first.rows_accepted) == ("gp.csv", 5)
    assert (second.file, second.rows_accepted, second.rows_quarantined) == ("gp2.csv", 200, 1)
    assert exported == handed == [first.batch_id, second.batch_id]
    after = footprint(settings)
    assert (after.done_batches, after.vault_records, after.warehouse_rows) == (2, 205, 205)
    assert not list(settings.home.glob(".ingest-*"))
