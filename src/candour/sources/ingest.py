"""``candour ingest``: load service extracts into the identity vault and the warehouse.

Each file of a source is one **batch**, ingested all-or-nothing. The protocol, which survives a
crash (``kill -9``, power cut) at any point:

1. **Check** every file named by the run before writing anything: the ``sources.yaml``, each
   file's encoding and header, and its SHA-256. A file whose hash this source already ingested
   is skipped ("already ingested").
2. **Pending.** Insert the batch in the store (``ingest_batches``) with ``status='pending'`` and
   the ledger's current size; commit. The batch id tags everything written below.
3. **Stage** the file in an in-memory DuckDB (spilling only to a private directory under the
   home, removed afterwards): parse, validate, standardise. Bad rows go to the quarantine file;
   if their share is over ``ingest_max_bad_share`` (default 1%) the batch is undone and the
   ingest stops with a summary. The row counts are saved on the pending batch.
4. **Warehouse** and **vault**: the good rows' attributes are appended to the source's
   warehouse table in one transaction, and their identities sealed (AES-256-GCM, field by
   field) and inserted into the vault; both carry the batch id. A large batch is sealed by
   worker processes while this process appends the warehouse; both writes are complete (the
   workers answered, and one synchronous vault commit made theirs durable) before step 5.
5. **Ledger**: one ``ingest`` entry (source, file hash, rows, rejected) is appended to the
   public log. This is the commit point: once the entry exists the batch is complete.
6. **Done**: the batch is marked ``done`` with its ledger index.

A failure before (5) undoes the batch: its vault and warehouse rows are deleted by batch id and
the pending row is removed, so nothing is left behind. A crash leaves the row ``pending``;
:func:`recover` (run at the start of every ingest, under the same lock) then looks for the
batch's entry in the ledger (after the size recorded in step 2): if it is there, the data were
complete before it was written, so the batch is marked done (rolled forward); if not, the
batch's rows are deleted and the pending row removed (rolled back). Recovery also deletes vault
and warehouse rows of batches the store does not know, and the private staging directories of
crashed runs (which may hold a decoded copy of an extract).

One ingest runs at a time per home (a file lock), which also keeps the DuckDB warehouse file's
single writer safe.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
from filelock import FileLock, Timeout
from sqlalchemy import delete, select

from candour import ledger
from candour.config import Settings
from candour.errors import CandourError
from candour.home import Home
from candour.progress import ProgressCallback, silent
from candour.sources.quarantine import summarise, write_quarantine
from candour.sources.reader import (
    ExtractError,
    ExtractFile,
    check_csv,
    file_kind,
    hash_file,
    parquet_columns,
    resolve_files,
)
from candour.sources.spec import Source, load_sources
from candour.sources.stage import Staging, check_formats
from candour.store import IngestBatch, transaction
from candour.store.models import utcnow
from candour.vault import Vault, open_vault
from candour.vault.parallel import PendingSeal, SealPool

VAULT_CHUNK = 20_000
# Rows per record batch handed to a sealing worker: small enough that the workers finish
# a batch together and that writing one group overlaps sealing the next.
PARALLEL_CHUNK = 25_000
# Batches at least this big are sealed by worker processes (one per core), started as soon as
# the checks see a file that long, so that they load while DuckDB works.
PARALLEL_MIN_ROWS = 50_000
SEAL_WORKERS = max(1, min(4, os.cpu_count() or 1))
# Files staged ahead of the one being written: two, so that a large file after a small one is
# staged while the workers still seal the file before (otherwise they idle while it stages).
STAGE_AHEAD = 2
STAGING_PREFIX = ".ingest-"
LOCK_FILE = ".ingest.lock"


class AttributeSink(Protocol):
    """What ingest needs from the warehouse (``candour.warehouse.Warehouse`` provides it).

    Ingest may not import the warehouse package (the design's one-way imports), so the caller
    passes the warehouse in.
    """

    def ensure_table(self, table: str, attributes: Mapping[str, Any], *, event_date: bool) -> None:
        """Create or widen a source's table."""
        ...

    def append(self, table: str, data: pa.Table) -> int:
        """Insert rows atomically."""
        ...

    def delete_batch(self, table: str, batch_id: int) -> int:
        """Delete a batch's rows."""
        ...

    def record_keys(self, table: str) -> pa.Table:
        """Every record key in a table."""
        ...

    def batch_ids(self, table: str) -> set[int]:
        """Batches with rows in a table."""
        ...

    def tables(self) -> list[str]:
        """Every table."""
        ...


class IngestError(CandourError):
    """An ingest stopped; ``results`` lists the files completed before it (each a whole batch)."""

    def __init__(self, message: str, results: list[FileResult] | None = None) -> None:
        super().__init__(message)
        self.results = results or []


@dataclass
class FileResult:
    """What happened to one file."""

    source: str
    file: str
    status: str  # "ingested" or "already ingested"
    batch_id: int | None
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    ledger_index: int | None = None
    quarantine_file: Path | None = None
    seconds: float = 0.0
    # Seconds per step (stage, warehouse, vault, ledger), for benchmarks and tuning.
    phases: dict[str, float] = field(default_factory=dict)


@dataclass
class Recovered:
    """A batch found pending (a crashed ingest) and what recovery did with it."""

    batch_id: int
    source: str
    action: str  # "rolled back", "rolled forward", "orphan rows removed"


@dataclass
class IngestReport:
    """The outcome of :func:`ingest`."""

    results: list[FileResult] = field(default_factory=list)
    recovered: list[Recovered] = field(default_factory=list)


def _select_sources(spec_sources: list[Source], name: str | None, path: Path) -> list[Source]:
    if name is None:
        return spec_sources
    for source in spec_sources:
        if source.name == name:
            return [source]
    known = ", ".join(s.name for s in spec_sources)
    raise CandourError(f"{path}: no source called {name!r} (known: {known})")


def ingest(
    sources_yaml: Path,
    settings: Settings,
    warehouse: AttributeSink,
    *,
    source: str | None = None,
    progress: ProgressCallback = silent,
) -> IngestReport:
    """Ingest every file of every source in ``sources_yaml`` (or of the one named ``source``).

    Raises :class:`IngestError` (a :class:`CandourError`) when a file cannot be ingested; the
    files before it are complete batches and stay (a re-run skips them by content hash).
    """
    spec = load_sources(sources_yaml)
    chosen = _select_sources(spec.sources, source, sources_yaml)
    home = Home(settings.home)
    home.require_initialised()
    for index, item in enumerate(spec.sources):
        if item in chosen:
            check_formats(item, index)
    base = sources_yaml.resolve().parent
    plan = [(item, resolve_files(item, base)) for item in chosen]

    lock = FileLock(str(home.root / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise CandourError(
            f"another ingest is running in {home.root}; wait for it to finish"
        ) from None
    report = IngestReport()
    staging_root: Path | None = None
    pool: SealPool | None = None
    try:
        vault = open_vault(settings)
        report.recovered = recover(settings, warehouse, vault=vault)
        staging_root = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=home.root))

        def start_pool() -> None:
            # Started by the checks as soon as they meet a file that long, so that the
            # workers load (most of a CPU-second each) beside the single-threaded hashing.
            nonlocal pool
            if pool is None and SEAL_WORKERS > 1:
                pool = SealPool(SEAL_WORKERS)

        checked = _check_all(plan, settings, staging_root, progress, start_pool)
        _run_batches(
            checked, settings, vault, warehouse, staging_root, progress, pool, report
        )
        return report
    finally:
        if pool is not None:
            pool.close()
        if staging_root is not None:
            shutil.rmtree(staging_root, ignore_errors=True)
        lock.release()


def _run_batches(
    checked: list[tuple[Source, ExtractFile, FileResult | None]],
    settings: Settings,
    vault: Vault,
    warehouse: AttributeSink,
    staging_root: Path,
    progress: ProgressCallback,
    pool: SealPool | None,
    report: IngestReport,
) -> None:
    """Ingest the checked files in order, staging the next ones while this one is written.

    The look-ahead is only for files of other sources: a second file of the same source must
    see the first one's record ids when it checks for repeats.
    """
    todo = [(item, extract) for item, extract, done in checked if done is None]
    # Files staged (or being staged) but not yet committed, oldest first.
    ahead: deque[tuple[str, Future[_Prepared]]] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="candour-stage") as helper:
        following = 0  # the next file of ``todo`` to stage

        def top_up(committing: str | None) -> None:
            """Queue files for staging, up to ``STAGE_AHEAD`` beyond the one being committed.

            A file waits while an earlier file of its source is uncommitted: it must see that
            file's record ids when it checks for repeats.
            """
            nonlocal following
            while following < len(todo) and len(ahead) < STAGE_AHEAD:
                item, extract = todo[following]
                if item.name == committing or any(name == item.name for name, _ in ahead):
                    return
                keys = warehouse.record_keys(item.name)
                ahead.append(
                    (
                        item.name,
                        helper.submit(
                            _prepare, item, extract, settings, keys, staging_root, progress,
                            pool is not None,
                        ),
                    )
                )
                following += 1

        try:
            for item, _extract, done in checked:
                if done is not None:
                    report.results.append(done)
                    continue
                top_up(None)
                _, current = ahead.popleft()
                prepared = current.result()
                # Stage the following files while this one is written (DuckDB works on its
                # own threads, so a large file staged now is ready when its turn comes).
                top_up(item.name)
                report.results.append(
                    _commit(prepared, settings, vault, warehouse, progress, pool)
                )
        except CandourError as exc:
            raise IngestError(str(exc), report.results) from exc
        finally:
            for _, staged in ahead:
                try:
                    _discard(staged.result(), settings)
                except BaseException:  # noqa: BLE001 - its own failure cleaned up after itself
                    pass


def _check_all(
    plan: list[tuple[Source, list[tuple[Path, str]]]],
    settings: Settings,
    staging_root: Path,
    progress: ProgressCallback,
    on_large: Callable[[], None] = lambda: None,
) -> list[tuple[Source, ExtractFile, FileResult | None]]:
    """Hash and check every file before any is written (a bad 5th file stops the 1st too).

    ``on_large`` is called when a file to ingest has at least ``PARALLEL_MIN_ROWS`` lines.
    """
    import duckdb

    checked: list[tuple[Source, ExtractFile, FileResult | None]] = []
    total = sum(len(files) for _, files in plan)
    con = duckdb.connect(":memory:")
    try:
        for item, files in plan:
            for path, display in files:
                progress("checking files", len(checked), total)
                sha, size = hash_file(path)
                extract = ExtractFile(path, display, file_kind(path), sha, size)
                previous = _done_batch(settings, item.name, sha)
                if previous is not None:
                    checked.append((item, extract, previous))
                    continue
                if extract.kind == "csv":
                    check_csv(extract, item, staging_root)
                else:
                    parquet_columns(extract, con)
                    from candour.sources.reader import check_columns

                    check_columns(display, extract.columns, item)
                checked.append((item, extract, None))
                if extract.lines >= PARALLEL_MIN_ROWS:
                    on_large()
    finally:
        con.close()
    progress("checking files", total, total)
    return checked


def _done_batch(settings: Settings, source: str, sha: str) -> FileResult | None:
    with transaction(settings) as session:
        batch = session.scalars(
            select(IngestBatch).where(
                IngestBatch.source == source, IngestBatch.content_sha256 == sha
            )
        ).first()
        if batch is None or batch.status != "done":
            return None
        return FileResult(
            source=source,
            file=batch.file_name,
            status="already ingested",
            batch_id=batch.id,
            rows_read=batch.rows_read,
            rows_accepted=batch.rows_accepted,
            rows_quarantined=batch.rows_quarantined,
            ledger_index=batch.ledger_index,
        )


def _ledger_size(settings: Settings) -> int:
    current = ledger.open_log(settings).read_checkpoint()
    return current[0].size if current else 0


def _find_entry(settings: Settings, start: int, source: str, sha: str) -> int | None:
    """The index of this batch's ``ingest`` entry in the ledger, searching from ``start``."""
    size = _ledger_size(settings)
    for index in range(max(start, 0), size):
        entry = json.loads(ledger.entry(index, settings=settings))
        if (
            entry.get("kind") == "ingest"
            and entry.get("source") == source
            and entry.get("file_hash") == sha
        ):
            return index
    return None


@dataclass
class _Prepared:
    """A file staged and validated, its batch pending, nothing yet written."""

    source: Source
    extract: ExtractFile
    batch_id: int
    ledger_start: int
    staging: Staging
    staging_dir: Path
    accepted: int
    result: FileResult
    started: float
    # The identities exported for the sealing workers (a large batch, with a pool), or None.
    rows_file: Path | None = None


def _prepare(
    source: Source,
    extract: ExtractFile,
    settings: Settings,
    known_keys: pa.Table,
    staging_root: Path,
    progress: ProgressCallback,
    parallel: bool = False,
) -> _Prepared:
    """Steps 2-3: the pending batch, then staging and validation. Writes no data.

    With ``parallel`` (a sealing pool is running), a large batch's identities are also
    exported for the workers here, ahead of its turn, so that the workers can start on it as
    soon as the batch before is complete.

    Runs on a helper thread while the previous file is being written (DuckDB releases the
    interpreter lock); on failure it removes its pending batch and raises.
    """
    started = time.perf_counter()
    label = f"{source.name}: {extract.display}"
    with transaction(settings) as session:
        batch = IngestBatch(
            source=source.name,
            file_name=extract.display[-512:],
            content_sha256=extract.sha256,
            file_bytes=extract.size,
            rows_read=0,
            rows_accepted=0,
            rows_quarantined=0,
            status="pending",
            ledger_size_before=_ledger_size(settings),
        )
        session.add(batch)
        session.flush()
        batch_id = batch.id
        ledger_start = batch.ledger_size_before or 0
    result = FileResult(source.name, extract.display, "ingested", batch_id)
    staging_dir = staging_root / f"batch-{batch_id}"
    staging: Staging | None = None
    try:
        staging_dir.mkdir(mode=0o700)
        staging = Staging(source, batch_id, staging_dir, settings.ingest_max_field_bytes)
        progress(f"{label}: reading", 0, None)
        mark = time.perf_counter()
        staging.load(extract)
        if staging.records() == 0:
            raise ExtractError(f"{extract.display}: the file has a header but no data rows")
        counts = staging.standardise(known_keys)
        result.rows_read = counts.read
        result.rows_accepted = counts.accepted
        result.rows_quarantined = counts.bad
        progress(f"{label}: reading", counts.read, counts.read)
        _lap(result, "stage", mark)
        if counts.bad:
            bad_rows = staging.bad_rows()
            result.quarantine_file = write_quarantine(
                Home(settings.home).quarantine, source.name, extract.sha256, bad_rows
            )
            share = counts.bad / counts.read
            if share > settings.ingest_max_bad_share or counts.accepted == 0:
                raise ExtractError(
                    f"{extract.display}: {counts.bad:,} of {counts.read:,} rows "
                    f"({share:.1%}) are bad, over the {settings.ingest_max_bad_share:.0%} "
                    f"limit; nothing was ingested. {summarise(bad_rows)}. Every bad row is "
                    f"listed in {result.quarantine_file}"
                )
        with transaction(settings) as session:
            pending = session.get(IngestBatch, batch_id)
            assert pending is not None
            pending.rows_read = counts.read
            pending.rows_accepted = counts.accepted
            pending.rows_quarantined = counts.bad
        rows_file: Path | None = None
        if parallel and counts.accepted >= PARALLEL_MIN_ROWS:
            mark = time.perf_counter()
            rows_file = staging_dir / "identities.arrow"
            staging.export_vault_rows(rows_file, _group_rows(counts.accepted))
            _lap(result, "vault export", mark)
    except BaseException:
        if staging is not None:
            staging.close()
        shutil.rmtree(staging_dir, ignore_errors=True)
        _discard_pending(settings, batch_id)
        raise
    return _Prepared(
        source, extract, batch_id, ledger_start, staging, staging_dir, counts.accepted, result,
        started, rows_file,
    )


def _group_rows(rows: int) -> int:
    """Rows per hand-over group: about ``PARALLEL_CHUNK``, in a multiple of the workers' count.

    Each worker gets every n-th group, so an even split keeps one worker from sealing a last
    group alone while the other waits.
    """
    groups = -(-rows // PARALLEL_CHUNK)
    groups = -(-groups // SEAL_WORKERS) * SEAL_WORKERS
    return max(1, -(-rows // groups))


def _discard(prepared: _Prepared, settings: Settings) -> None:
    """Drop a prepared file that will not be committed (nothing of it was written)."""
    prepared.staging.close()
    shutil.rmtree(prepared.staging_dir, ignore_errors=True)
    _discard_pending(settings, prepared.batch_id)


def _discard_pending(settings: Settings, batch_id: int) -> None:
    try:
        with transaction(settings) as session:
            session.execute(
                delete(IngestBatch).where(
                    IngestBatch.id == batch_id, IngestBatch.status == "pending"
                )
            )
    except Exception:  # noqa: BLE001 - left pending, recover() removes it on the next run
        pass


def _commit(
    prepared: _Prepared,
    settings: Settings,
    vault: Vault,
    warehouse: AttributeSink,
    progress: ProgressCallback,
    pool: SealPool | None,
) -> FileResult:
    """Steps 4-6: warehouse, vault, ledger entry, done; undone (or rolled forward) on failure."""
    source, extract, batch_id = prepared.source, prepared.extract, prepared.batch_id
    result, staging = prepared.result, prepared.staging
    label = f"{source.name}: {extract.display}"
    logged: int | None = None
    mark = time.perf_counter()
    try:
        try:
            # A large batch's identities go to the sealing workers first, so that they encrypt
            # while this process appends the warehouse: the two writes are independent (both
            # carry the batch id, and both are complete before the ledger entry below).
            sealing = _start_vault(
                staging, vault, source.name, batch_id, prepared.accepted, prepared.staging_dir,
                pool, prepared.rows_file,
            )
            mark = _lap(result, "vault export", mark)
            try:
                warehouse.ensure_table(
                    source.name,
                    {name: attribute.type for name, attribute in source.attributes.items()},
                    event_date=source.event_date is not None,
                )
                warehouse.append(source.name, staging.warehouse_rows())
            except BaseException:
                if sealing is not None:
                    # No worker may still be writing this batch when the rollback deletes it.
                    with contextlib.suppress(Exception):
                        sealing.wait()
                raise
            progress(f"{label}: warehouse", prepared.accepted, prepared.accepted)
            mark = _lap(result, "warehouse", mark)
            _finish_vault(
                sealing, staging, vault, source.name, batch_id,
                lambda done: progress(f"{label}: vault", done, prepared.accepted),
            )
            mark = _lap(result, "vault", mark)
        finally:
            staging.close()
            shutil.rmtree(prepared.staging_dir, ignore_errors=True)

        # The commit point: once the entry is in the public log, the batch is complete.
        logged = ledger.record(
            "ingest",
            {
                "source": source.name,
                "file_hash": extract.sha256,
                "rows": result.rows_accepted,
                "rejected": result.rows_quarantined,
            },
            settings=settings,
        )
        result.ledger_index = logged
        _mark_done(settings, batch_id, logged)
        _lap(result, "ledger", mark)
    except BaseException:
        _settle_failed(
            settings, vault, warehouse, batch_id, source.name, extract.sha256,
            prepared.ledger_start, logged,
        )
        raise
    result.seconds = time.perf_counter() - prepared.started
    return result


def _lap(result: FileResult, phase: str, since: float) -> float:
    now = time.perf_counter()
    result.phases[phase] = result.phases.get(phase, 0.0) + now - since
    return now


def _start_vault(
    staging: Staging,
    vault: Vault,
    source: str,
    batch_id: int,
    rows: int,
    staging_dir: Path,
    pool: SealPool | None,
    rows_file: Path | None = None,
) -> PendingSeal | None:
    """Hand a large batch's identities to the sealing workers; None for a small batch.

    Encryption is the one step in Python, so a large batch is sealed by the worker pool, which
    writes in several transactions; the batch id lets a failure or a crash remove them all.
    The hand-over file is in the private staging directory, which the caller removes after
    :func:`_finish_vault` (or, on failure, after waiting for the workers). ``rows_file`` is
    that file when staging already wrote it (see :func:`_prepare`).
    """
    if pool is None or rows < PARALLEL_MIN_ROWS:
        return None
    if rows_file is None:
        rows_file = staging_dir / "identities.arrow"
        staging.export_vault_rows(rows_file, _group_rows(rows))
    return pool.start(
        vault.sealer(staging.identifier_names), rows_file, vault.settings.vault_store_url, source,
        batch_id,
    )


def _finish_vault(
    sealing: PendingSeal | None,
    staging: Staging,
    vault: Vault,
    source: str,
    batch_id: int,
    report: Callable[[int], None],
) -> None:
    """Wait for the workers (large batch) or seal here in one transaction (small batch)."""
    if sealing is not None:
        report(sealing.wait())
        # The workers committed without waiting for the disk; this waits once for all of them.
        vault.sync()
        return
    sealer = vault.sealer(staging.identifier_names)
    written = 0
    with vault.writer() as writer:
        for columns in staging.vault_columns(VAULT_CHUNK):
            writer.insert(*sealer.seal_columns(columns, source, batch_id))
            written += len(columns[0])
            report(written)


def _mark_done(settings: Settings, batch_id: int, ledger_index: int) -> None:
    with transaction(settings) as session:
        batch = session.get(IngestBatch, batch_id)
        assert batch is not None
        batch.status = "done"
        batch.ledger_index = ledger_index
        batch.finished_at = utcnow()


def _settle_failed(
    settings: Settings,
    vault: Vault,
    warehouse: AttributeSink,
    batch_id: int,
    source: str,
    sha: str,
    ledger_start: int,
    logged: int | None,
) -> None:
    """After a failure: roll forward if the ledger entry exists, else roll back. Never raises.

    Anything that cannot be settled now stays ``pending`` for :func:`recover`.
    """
    try:
        if logged is None:
            logged = _find_entry(settings, ledger_start, source, sha)
        if logged is not None:
            _mark_done(settings, batch_id, logged)
        else:
            _roll_back(settings, vault, warehouse, batch_id, source)
    except Exception:  # noqa: BLE001 - the original error matters more; recover() finishes
        pass


def _roll_back(
    settings: Settings, vault: Vault, warehouse: AttributeSink, batch_id: int, source: str
) -> None:
    # Data first, the pending row last: if this is interrupted, the row still says "pending"
    # and the next recover() finishes the job.
    vault.delete_batch(batch_id)
    warehouse.delete_batch(source, batch_id)
    with transaction(settings) as session:
        session.execute(delete(IngestBatch).where(IngestBatch.id == batch_id))


def recover(
    settings: Settings, warehouse: AttributeSink, *, vault: Vault | None = None
) -> list[Recovered]:
    """Settle batches left ``pending`` by a crashed ingest, and remove orphaned rows.

    Safe to call at any time no ingest is running (``ingest`` calls it under its lock).
    """
    vault = vault or open_vault(settings)
    home = Home(settings.home)
    for stale in home.root.glob(f"{STAGING_PREFIX}*"):
        # Only crashed runs leave these (a live run holds the ingest lock, as our caller does).
        shutil.rmtree(stale, ignore_errors=True)
    actions: list[Recovered] = []
    with transaction(settings) as session:
        pending = [
            (b.id, b.source, b.content_sha256, b.ledger_size_before or 0)
            for b in session.scalars(select(IngestBatch).where(IngestBatch.status == "pending"))
        ]
        known = set(session.scalars(select(IngestBatch.id)))
        sources = set(session.scalars(select(IngestBatch.source).distinct()))
    for batch_id, source, sha, start in pending:
        index = _find_entry(settings, start, source, sha)
        if index is not None:
            _mark_done(settings, batch_id, index)
            actions.append(Recovered(batch_id, source, "rolled forward"))
        else:
            _roll_back(settings, vault, warehouse, batch_id, source)
            known.discard(batch_id)
            actions.append(Recovered(batch_id, source, "rolled back"))
    for batch_id in sorted(vault.batch_ids() - known):
        vault.delete_batch(batch_id)
        actions.append(Recovered(batch_id, "(vault)", "orphan rows removed"))
    # Only source tables: other packages keep their own tables in the warehouse.
    for table in sorted(sources & set(warehouse.tables())):
        for batch_id in sorted(warehouse.batch_ids(table) - known):
            warehouse.delete_batch(table, batch_id)
            actions.append(Recovered(batch_id, table, "orphan rows removed"))
    return actions
