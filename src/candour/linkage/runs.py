"""A link run, end to end: identities -> model -> clusters -> stable person index -> record.

:func:`link` is what ``candour link`` calls. Decrypted identities exist only inside the
provider's workspace, which is removed when the run ends however it ends. The new index, the
model and its parameters, the person-id changes and the review queue are written in one store
transaction; the run's ledger entry is appended inside it, before the commit, so a run that
cannot be logged leaves nothing behind; the warehouse's ``person_index`` table is replaced in
a DuckDB transaction committed right after.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import Any

import pyarrow as pa
from filelock import FileLock, Timeout
from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from candour.config import Settings
from candour.errors import CandourError
from candour.home import Home
from candour.linkage.blocking import RuleCount, choose_rules
from candour.linkage.engines import EngineName, open_engine
from candour.linkage.fields import prepare, present_fields
from candour.linkage.inputs import IdentityProvider, vault_provider
from candour.linkage.model import (
    ModelSpec,
    build_model,
    load_overrides,
    model_hash,
)
from candour.linkage.person_index import Assignment, Change, assign, index_hash
from candour.linkage.predict import Clustering, predict_and_cluster
from candour.linkage.review import standing_decisions, sync_queue
from candour.linkage.train import TrainingSummary, make_linker, train
from candour.linkage.workspace import Workspace
from candour.progress import ProgressCallback, silent
from candour.store import transaction
from candour.store.linkage import (
    LinkModel,
    LinkParameter,
    LinkRun,
    PersonChange,
    PersonIndexEntry,
    PersonNumber,
)

STEPS = ("read identities", "choose blocking", "train", "predict and cluster", "save")
_CHUNK = 20_000
# From this many rows, a first run's index is loaded into the store without its secondary
# indexes, which are built afterwards.
BULK_LOAD_ROWS = 100_000


class LinkRunError(CandourError):
    """A link run could not be carried out."""


@dataclass
class RunResult:
    """What a link run did."""

    run_id: str
    engine: str
    records: int
    persons: int
    comparisons: int
    linked_pairs: int
    review_pending: int
    review_added: int
    kept_ids: int
    new_ids: int
    merges: int
    splits: int
    retired: int
    threshold: float
    review_low: float
    model_hash: str
    index_hash: str
    ledger_index: int | None
    blocking: list[RuleCount] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    """Every merge, split and retirement of person ids (old ids -> new ids, with a reason),
    as stored in ``person_changes``: what a caller needs to re-key anything kept by person."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["blocking"] = [b.as_dict() for b in self.blocking]
        return data


def new_run_id() -> str:
    """A run id: ``LR-`` + UTC time + 4 random hex digits (sortable, unique)."""
    return f"LR-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"


def _lock(settings: Settings) -> FileLock:
    Home(settings.home).root.mkdir(parents=True, exist_ok=True)
    return FileLock(str(settings.home / ".link.lock"), timeout=0)


def _parameters(model: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for comparison in model.get("comparisons", []):
        for level, spec in enumerate(comparison["comparison_levels"]):
            m, u = spec.get("m_probability"), spec.get("u_probability")
            weight = math.log2(m / u) if m and u else None
            yield {
                "comparison": comparison["output_column_name"],
                "level": level,
                "label": str(spec.get("label_for_charts") or spec.get("sql_condition"))[:256],
                "m_probability": m,
                "u_probability": u,
                "match_weight": weight,
            }


def _previous(session: Session) -> tuple[dict[str, str], dict[str, int], set[str], int]:
    previous = {
        k: p
        for k, p in session.execute(select(PersonIndexEntry.record_key, PersonIndexEntry.person_id))
    }
    numbers: dict[str, int] = {}
    issued: set[str] = set()
    for person, number, retired in session.execute(
        select(PersonNumber.person_id, PersonNumber.person_num, PersonNumber.retired_run)
    ):
        issued.add(person)
        if retired is None:
            numbers[person] = number
    top = session.scalar(select(func.max(PersonNumber.person_num)))
    return previous, numbers, issued, (int(top) + 1 if top is not None else 0)


def _insert_rows(
    session: Session, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """Bulk insert plain tuples with the driver's own ``executemany``.

    A first run inserts a row per record (a million and more); SQLAlchemy's per-row
    parameter handling made that the slowest step of a run, the driver does it in seconds.
    """
    if not rows:
        return
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    for start in range(0, len(rows), _CHUNK * 5):
        connection.exec_driver_sql(sql, rows[start : start + _CHUNK * 5])


@dataclass(frozen=True)
class _SortedIndex:
    """The new index in record-key order, as parallel lists (built once, read by every
    writer: the store, the warehouse and the fingerprint)."""

    keys: list[str]
    persons: list[str]
    numbers: list[int]

    @classmethod
    def of(cls, result: Assignment) -> _SortedIndex:
        keys = sorted(result.index)
        persons = list(map(result.index.__getitem__, keys))
        return cls(keys, persons, list(map(result.numbers.__getitem__, persons)))

    def arrow(self) -> pa.Table:
        return pa.table(
            {
                "record_key": pa.array(self.keys, pa.string()),
                "person_id": pa.array(self.persons, pa.string()),
                "person_num": pa.array(self.numbers, pa.uint32()),
            }
        )


def _write_index(
    session: Session,
    run_id: str,
    previous: dict[str, str],
    result: Assignment,
    ordered: _SortedIndex,
) -> None:
    gone = [k for k in previous if k not in result.index]
    for start in range(0, len(gone), _CHUNK):
        chunk = gone[start : start + _CHUNK]
        session.execute(delete(PersonIndexEntry).where(PersonIndexEntry.record_key.in_(chunk)))
    # In key order: each insert then lands at the end of the primary-key index rather than
    # at a random page of it, which makes a first run's million inserts several times faster.
    rows = zip(ordered.keys, ordered.persons, ordered.numbers, repeat(run_id), strict=False)
    added = list(rows) if not previous else [row for row in rows if row[0] not in previous]
    # A first run fills an empty table: building its secondary indexes once, after the rows,
    # is several times faster than updating them a row at a time (1,000,000 rows in SQLite:
    # 8 s against 30 s). DDL is transactional in SQLite and PostgreSQL, so a run that fails
    # leaves the indexes as they were.
    bulk = not previous and len(added) >= BULK_LOAD_ROWS
    table = PersonIndexEntry.__table__
    assert isinstance(table, Table)
    indexes = sorted(table.indexes, key=lambda i: str(i.name)) if bulk else []
    for index in indexes:
        index.drop(session.connection())
    _insert_rows(session, "person_index", ("record_key", "person_id", "person_num", "run_id"),
                 added)
    for index in indexes:
        index.create(session.connection())
    changed = [
        {"record_key": k, "person_id": p, "person_num": result.numbers[p], "run_id": run_id}
        for k, p in result.index.items()
        if k in previous and previous[k] != p
    ]
    for start in range(0, len(changed), _CHUNK):
        session.execute(update(PersonIndexEntry), changed[start : start + _CHUNK])
    issued = [(n, p, run_id) for p, n in result.issued.items()]
    _insert_rows(session, "person_numbers", ("person_num", "person_id", "created_run"), issued)
    ended = sorted(result.ended)
    for start in range(0, len(ended), _CHUNK):
        chunk = ended[start : start + _CHUNK]
        session.execute(
            update(PersonNumber)
            .where(PersonNumber.person_id.in_(chunk))
            .values(retired_run=run_id)
        )
    for change in result.changes:
        session.add(
            PersonChange(
                run_id=run_id,
                kind=change.kind,
                old_ids=json.dumps(list(change.old_ids)),
                new_ids=json.dumps(list(change.new_ids)),
                reason=change.reason[:256],
            )
        )


def _prior_model(session: Session, settings_hash: str | None) -> tuple[str, dict[str, Any]] | None:
    row = session.execute(
        select(LinkRun.engine, LinkRun.settings_hash, LinkModel.model_json)
        .join(LinkModel, LinkModel.run_id == LinkRun.run_id)
        .order_by(LinkRun.id.desc())
        .limit(1)
    ).first()
    if row is None or row[1] != settings_hash:
        return None
    return str(row[0]), json.loads(row[2])


def _shape(comparisons: list[dict[str, Any]]) -> list[Any]:
    """What a model compares and how, without its trained parameters."""
    return [
        (
            c["output_column_name"],
            [
                (lv.get("sql_condition"), lv.get("tf_adjustment_column"), lv.get("is_null_level"))
                for lv in c["comparison_levels"]
            ],
        )
        for c in comparisons
    ]


def _reusable_model(
    prior: tuple[str, dict[str, Any]] | None, spec: ModelSpec, engine_name: str
) -> dict[str, Any] | None:
    # A model is reused only when it compares exactly what this run's model would: the same
    # comparisons with the same levels (SQL and term-frequency columns), on the same engine.
    # Anything else (a new field, a changed level after an upgrade) means training afresh.
    if prior is None or prior[0] != engine_name:
        return None
    model = prior[1]
    wanted = spec.settings([]).create_settings_dict(engine_name)["comparisons"]
    if _shape(model.get("comparisons", [])) != _shape(wanted):
        return None
    return model


def linker_from_model(
    identities: Any, model: dict[str, Any], rules: list[Any], engine_name: str
) -> Any:
    """A linker with a saved, trained model and this run's blocking rules."""
    import logging

    from splink import Linker

    settings = dict(model)
    settings["linker_uid"] = None
    settings["blocking_rules_to_generate_predictions"] = [
        rule if isinstance(rule, str | dict) else rule.create_blocking_rule_dict(engine_name)
        for rule in rules
    ]
    return Linker(identities, settings, log_level=logging.WARNING)


def _open_warehouse_for_index(settings: Settings) -> Any:
    from candour.warehouse import DuckDBWarehouse

    # The person index always lives in the home's DuckDB warehouse file, whichever engine
    # linked it, so the query gate finds it in one place.
    return DuckDBWarehouse(
        Home(settings.home).warehouse, wait_seconds=settings.warehouse_wait_seconds
    )


def _stats(
    clustering: Clustering,
    result: Assignment,
    timings: dict[str, float],
    prior: float,
    training: list[str],
) -> dict[str, Any]:
    sizes = Counter(Counter(result.index.values()).values())
    return {
        "timings": timings,
        "histogram": clustering.histogram,
        "cluster_sizes": sorted(sizes.items()),
        "examples": clustering.examples,
        "predicted_pairs": clustering.predicted_pairs,
        "linked_pairs": clustering.linked_pairs,
        "guarded_pairs": clustering.guarded_pairs,
        "conflicts_resolved": clustering.conflicts_resolved,
        "prior": prior,
        "training_rules": training,
    }


def link(
    settings: Settings,
    *,
    engine: EngineName | None = None,
    settings_file: Path | None = None,
    provider: IdentityProvider | None = None,
    retrain: bool = False,
    progress: ProgressCallback = silent,
    after_index: Callable[[Session, str], object] | None = None,
) -> RunResult:
    """Link every ingested record to a person and save the new person index.

    The previous run's trained model is reused when the records hold the same fields, the
    engine and settings file are the same, and ``retrain`` is False: existing pairs then score
    exactly as before, so person ids change only where new records bring new evidence.

    ``after_index(session, run_id)`` is called inside the run's store transaction once the new
    index and its ``person_changes`` are written (and the run logged): whatever it writes
    commits with the run or not at all. Orchestration uses it to carry residents' choices
    across merges and splits (linkage itself may not import choices).
    """
    engine_name: EngineName = engine or settings.engine
    overrides = load_overrides(settings_file)
    settings_hash = (
        hashlib.sha256(settings_file.read_bytes()).hexdigest() if settings_file else None
    )
    provider = provider or vault_provider(settings)
    run_id = new_run_id()
    timings: dict[str, float] = {}
    total = len(STEPS)
    try:
        lock = _lock(settings)
        lock.acquire()
    except Timeout as exc:
        raise LinkRunError("another link run is in progress in this home; try later") from exc
    try:
        started = time.perf_counter()
        with transaction(settings) as session:
            previous, numbers, issued, next_number = _previous(session)
            decisions = standing_decisions(session)
            prior_model = _prior_model(session, settings_hash)
        timings["previous index"] = time.perf_counter() - started
        progress("link", 0, total)
        with provider(f"link run {run_id}: build the person index") as (root, identities):
            timings["decrypt"] = time.perf_counter() - started - timings["previous index"]
            space = Workspace(root)
            prepared = prepare(identities)
            del identities
            spec = build_model(present_fields(prepared), overrides)
            records = prepared.num_rows
            timings["read"] = time.perf_counter() - started
            progress("link", 1, total)
            with open_engine(engine_name, space, settings, prepared) as opened:
                # The engine holds its own copy now (DuckDB's tables, Spark's Parquet).
                del prepared
                mark = time.perf_counter()
                rules, counts = choose_rules(opened.identities, spec, records)
                if not rules:
                    raise LinkRunError("no blocking rule is usable on these records")
                timings["blocking"] = time.perf_counter() - mark
                progress("link", 2, total)
                mark = time.perf_counter()
                reusable = None if retrain else _reusable_model(prior_model, spec, engine_name)
                if reusable is not None:
                    linker = linker_from_model(opened.identities, reusable, rules, engine_name)
                    summary = TrainingSummary(
                        prior=float(reusable["probability_two_random_records_match"]),
                        em_sessions=["reused the previous run's model"],
                    )
                else:
                    linker = make_linker(opened.identities, spec, rules)
                    summary = train(linker, spec, records)
                model = linker.misc.save_model_to_json()
                timings["train"] = time.perf_counter() - mark
                progress("link", 3, total)
                mark = time.perf_counter()
                clustering = predict_and_cluster(
                    opened,
                    linker,
                    model,
                    threshold=spec.threshold,
                    review_low=spec.review_low,
                    decisions=decisions,
                )
                timings["predict"] = time.perf_counter() - mark
                timings.update(
                    {f"predict: {k}": v for k, v in clustering.stats["timings"].items()}
                )
        progress("link", 4, total)
        mark = time.perf_counter()
        result = assign(
            clustering.clusters,
            previous,
            numbers,
            next_number=next_number,
            reason=f"link run {run_id}",
            taken=issued.__contains__,
        )
        timings["save: assign ids"] = time.perf_counter() - mark
        ordered = _SortedIndex.of(result)
        fingerprint = index_hash(result.index, ordered.keys, ordered.persons)
        hashed_model = model_hash(model)
        comparisons = max([c.cumulative for c in counts if not c.note.startswith("dropped")] or [0])
        persons = len(result.numbers)
        warehouse = _open_warehouse_for_index(settings)
        try:
            con = warehouse.connection
            con.execute("BEGIN TRANSACTION")
            index_arrow = ordered.arrow()
            con.register("candour_new_person_index", index_arrow)
            con.execute(
                "CREATE OR REPLACE TABLE person_index AS "
                "SELECT record_key, person_id, person_num FROM candour_new_person_index"
            )
            con.unregister("candour_new_person_index")
            with transaction(settings) as session:
                run = LinkRun(
                    run_id=run_id,
                    engine=engine_name,
                    records=records,
                    persons=persons,
                    comparisons=comparisons,
                    linked_pairs=clustering.linked_pairs,
                    kept_ids=result.kept,
                    new_ids=len(result.issued),
                    merges=result.merges,
                    splits=result.splits,
                    retired=len(result.retired),
                    threshold=spec.threshold,
                    review_low=spec.review_low,
                    model_hash=hashed_model,
                    index_hash=fingerprint,
                    settings_hash=settings_hash,
                    blocking_json=json.dumps([c.as_dict() for c in counts]),
                    stats_json="{}",
                )
                session.add(run)
                session.flush()
                session.add(
                    LinkModel(
                        run_id=run_id,
                        model_hash=hashed_model,
                        model_json=json.dumps(model, sort_keys=True, default=str),
                    )
                )
                session.execute(
                    insert(LinkParameter), [dict(run_id=run_id, **p) for p in _parameters(model)]
                )
                store_mark = time.perf_counter()
                _write_index(session, run_id, previous, result, ordered)
                timings["save: store index"] = time.perf_counter() - store_mark
                pending, added = sync_queue(session, run_id, clustering.review)
                run.review_pairs = pending
                timings["save"] = time.perf_counter() - mark
                timings["total"] = time.perf_counter() - started
                run.stats_json = json.dumps(
                    _stats(clustering, result, timings, summary.prior, summary.em_sessions),
                    default=str,
                )
                run.finished_at = datetime.now(UTC)
                ledger_index = _record(settings, run_id, hashed_model, fingerprint, records,
                                       persons, result)
                run.ledger_index = ledger_index
                session.flush()
                if after_index is not None:
                    after_index(session, run_id)
            con.execute("COMMIT")
        except BaseException:
            try:
                warehouse.connection.execute("ROLLBACK")
            except Exception:  # the transaction may already be gone; the error below matters
                pass
            raise
        finally:
            warehouse.close()
        progress("link", 5, total)
    finally:
        lock.release()
    return RunResult(
        run_id=run_id,
        engine=engine_name,
        records=records,
        persons=persons,
        comparisons=comparisons,
        linked_pairs=clustering.linked_pairs,
        review_pending=pending,
        review_added=added,
        kept_ids=result.kept,
        new_ids=len(result.issued),
        merges=result.merges,
        splits=result.splits,
        retired=len(result.retired),
        threshold=spec.threshold,
        review_low=spec.review_low,
        model_hash=hashed_model,
        index_hash=fingerprint,
        ledger_index=ledger_index,
        blocking=counts,
        timings=timings,
        changes=list(result.changes),
    )


def _record(
    settings: Settings,
    run_id: str,
    hashed_model: str,
    fingerprint: str,
    records: int,
    persons: int,
    result: Assignment,
) -> int:
    from candour import ledger

    return ledger.record(
        "link-run",
        {
            "run_id": run_id,
            "model_hash": hashed_model,
            "index_hash": fingerprint,
            "records": records,
            "persons": persons,
            "merges": result.merges,
            "splits": result.splits,
        },
        settings=settings,
    )
