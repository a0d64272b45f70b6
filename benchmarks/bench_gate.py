"""Gate benchmark: a gated aggregate against the same SQL on raw DuckDB, and the resident's
"which queries included me" lookup.

Data is generated directly in DuckDB: 10,000,000 event rows over 1,500,000 people, 5% of them
opted out of the use's purpose (quick mode: 200,000 rows, 30,000 people). The reference is the
same SQL over a plain table with ``person_id`` in the same file, measured in the same run.

- gated aggregate: the query over the gated view (opt-out mask applied), including the
  per-query view set-up and the snapshot check; ratio over raw;
- with cohort capture: the above plus capturing the exact cohort bitmap; ratio over raw;
- end to end: ``gate.run`` (authorise, validate, snapshot, execute, cohort, disclosure control,
  store record, ledger entry with fsync, receipt), reported for information;
- lookup: ``queries_including`` with 10,000 logged queries (1,000 in quick mode), p95 in ms.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from benchmarks.common import Result, stopwatch
from candour import choices, gate, register
from candour.config import Settings
from candour.gate import cohort as cohorts
from candour.gate.engines import DuckDBEngine, GatedTable, Limits
from candour.gate.rewrite import cohort_sql, gated_sql
from candour.home import Home
from candour.initialise import initialise_home
from candour.store import IngestBatch, transaction
from candour.store.choices import ChoiceOptOut, ChoiceVersion
from candour.store.gate import GateQuery
from candour.store.linkage import LinkRun, PersonNumber
from candour.warehouse import DuckDBWarehouse

SOURCE = "ae_attendances"
QUERIES = {
    "filtered": (
        "SELECT area, count(*) AS n FROM {t} WHERE event_date >= DATE '2022-01-01' GROUP BY area"
    ),
    "whole table": "SELECT area, diagnosis, count(*) AS n FROM {t} GROUP BY area, diagnosis",
}
USE = """\
title: Gate benchmark
summary: Benchmark
public_benefit: Speed
organisation: Bench Council
team: Bench
senior_responsible_owner: Bench lead
purpose: research
legal_basis:
  article_6: "6(1)(e) public task"
  common_law: "de-identified data"
applicant: ana
analysts: [ana]
grants:
  ae_attendances: "*"
output: aggregate
disclosure: {threshold: 10, rounding: 5}
dp_epsilon: null
starts: 2026-01-01
ends: 2027-12-31
"""


def _pid(n: int) -> str:
    return f"P-{n:012d}"


def _setup(settings: Settings, rows: int, people: int) -> tuple[str, np.ndarray]:
    initialise_home(settings)
    home = Home(settings.home)
    rng = np.random.default_rng(7)
    excluded = np.sort(rng.choice(people, people // 20, replace=False)).astype(np.uint32)
    with DuckDBWarehouse(home.warehouse) as warehouse:
        con = warehouse.connection
        con.execute(
            f"""CREATE TABLE raw_events AS SELECT
                'P-' || lpad(CAST(hash(i) % {people} AS VARCHAR), 12, '0') AS person_id,
                CAST(hash(i) % {people} AS UINTEGER) AS person_num,
                'ae_attendances:' || CAST(i AS VARCHAR) AS record_key,
                ['north', 'south', 'east', 'west', 'central'][1 + CAST(i % 5 AS INTEGER)] AS area,
                ['fall', 'burn', 'fracture', 'other'][1 + CAST(hash(i * 3) % 4 AS INTEGER)]
                    AS diagnosis,
                DATE '2020-01-01' + CAST(hash(i * 7) % 1800 AS INTEGER) AS event_date,
                CAST(hash(i * 11) % 100 AS BIGINT) AS cost
            FROM range({rows}) t(i)"""
        )
        con.execute(
            f"CREATE TABLE {SOURCE} AS SELECT record_key, CAST(1 AS BIGINT) AS batch_id, "
            "event_date, area, diagnosis, cost FROM raw_events"
        )
        con.execute(
            "CREATE TABLE person_index AS SELECT record_key, person_id, person_num FROM raw_events"
        )
        con.execute("ALTER TABLE raw_events DROP COLUMN person_num")
        con.execute("ALTER TABLE raw_events DROP COLUMN record_key")
        index_hash = DuckDBEngine(con)._index_hash(con)
    with transaction(settings) as session:
        for start in range(0, people, 50_000):
            session.execute(
                insert(PersonNumber),
                [
                    {"person_num": n, "person_id": _pid(n), "created_run": "R-1"}
                    for n in range(start, min(people, start + 50_000))
                ],
            )
        session.add(
            IngestBatch(
                id=1, source=SOURCE, file_name="x.csv", content_sha256="0" * 64, status="done"
            )
        )
        session.add(
            LinkRun(
                run_id="R-1",
                engine="duckdb",
                threshold=0.9,
                review_low=0.5,
                model_hash="0" * 64,
                index_hash=index_hash,
                finished_at=datetime.now(UTC),
            )
        )
        # 5% opted out, written straight into the materialised opt-out table: recording 75,000
        # choices one by one (each with its ledger entry) is the choices benchmark's business.
        for start in range(0, len(excluded), 50_000):
            session.execute(
                insert(ChoiceOptOut),
                [
                    {
                        "purpose": "research",
                        "source": "",
                        "person_num": int(n),
                        "person_id": _pid(int(n)),
                        "event_id": 0,
                    }
                    for n in excluded[start : start + 50_000]
                ],
            )
        session.add(ChoiceVersion(purpose="research", version=1, changed_at=datetime.now(UTC)))
    register.add_user("ana", "analyst", settings=settings)
    register.add_user("ian", "ig", settings=settings)
    purposes = choices.load_purposes(settings)
    view = register.apply_use(register.parse_use(USE), purposes=purposes, settings=settings)
    register.submit(view.use_id, "ana", settings=settings)
    register.approve(view.use_id, "ian", purposes=purposes, settings=settings)
    choices.clear_cache()
    return view.use_id, excluded


def _best(fn: object, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def _interleaved(fns: list[Callable[[], None]], repeats: int) -> list[tuple[float, float]]:
    """Best and median seconds of each function, run in turn ``repeats`` times: the reference
    and the gated queries then share whatever else the machine is doing, rather than one of
    them meeting a busy spell the others missed."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, spent in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [(min(t), statistics.median(t)) for t in times]


def _row(slot: int, size: int) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "query_id": f"Q-bench{slot:08d}",
        "use_id": "DU-2026-001",
        "purpose": "research",
        "user": "ana",
        "engine": "duckdb",
        "method": "sdc",
        "started_at": now,
        "finished_at": now,
        "sql_sha256": "0" * 64,
        "choices_hash": "0" * 64,
        "choices_version": 1,
        "link_key": "R-1",
        "cohort_sha256": "0" * 64,
        "cohort_exact": True,
        "cohort_size": size,
        "cohort_slot": slot,
        "cohort_file": "x",
        "output_sha256": "0" * 64,
        "rows": 1,
        "ledger_index": slot,
    }


def _lookup(settings: Settings, people: int, queries: int) -> dict[str, float]:
    """Timings (ms) of queries_including over ``queries`` logged cohorts: p95 and median of the
    full list, p95 of a page (count + newest 20), and the first (cold) lookup."""
    store = cohorts.CohortStore(Home(settings.home))
    rng = np.random.default_rng(11)
    rows = []
    # Cohorts of 0.1%, 5%, 30% and 90% of people in turn. The first segment goes through
    # CohortStore.mark as the gate does; the rest are written a segment (64 queries) at a time,
    # which gives the same files far faster than 10,000 separate marks.
    for segment_start in range(0, queries, cohorts.SEGMENT_BITS):
        slots = [
            store.allocate() for _ in range(min(cohorts.SEGMENT_BITS, queries - segment_start))
        ]
        words = np.zeros(people, dtype="<u8")
        for slot in slots:
            share = (0.001, 0.05, 0.3, 0.9)[slot % 4]
            mask = rng.random(people) < share
            if segment_start == 0:
                store.mark(slot, cohorts.from_mask(mask))
            else:
                words[mask] |= np.uint64(1 << (slot % cohorts.SEGMENT_BITS))
            rows.append(_row(slot, int(mask.sum())))
        if segment_start:
            segment = slots[0] // cohorts.SEGMENT_BITS
            words.tofile(store.lookup / f"seg-{segment:08d}.u64")
    with transaction(settings) as session:
        for start in range(0, len(rows), 1000):
            session.execute(insert(GateQuery), rows[start : start + 1000])
    chosen = [_pid(int(n)) for n in rng.choice(people, 201, replace=False)]
    # The first lookup in a process reads the records of the slots it finds from the store;
    # later ones read only slots not seen before (the web server is a long-lived process).
    start = time.perf_counter()
    found = len(gate.queries_including(chosen[0], settings=settings))
    cold = (time.perf_counter() - start) * 1000
    times, pages = [], []
    for person in chosen[1:]:
        start = time.perf_counter()
        gate.queries_including(person, settings=settings)
        times.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        gate.count_queries_including(person, settings=settings)
        gate.queries_including(person, settings=settings, limit=20, newest_first=True)
        pages.append((time.perf_counter() - start) * 1000)
    times.sort()
    pages.sort()
    return {
        "p95": times[int(len(times) * 0.95) - 1],
        "median": statistics.median(times),
        "page_p95": pages[int(len(pages) * 0.95) - 1],
        "cold": cold,
        "found": found,
    }


def run(quick: bool) -> list[Result]:
    """Run the gate benchmark (10M rows, 1.5M people; quick: 200k rows, 30k people)."""
    rows, people = (200_000, 30_000) if quick else (10_000_000, 1_500_000)
    lookups = 1_000 if quick else 10_000
    repeats = 5 if quick else 15
    workdir = Path(tempfile.mkdtemp(prefix="bench-gate-"))
    settings = Settings(home=workdir / "home")
    results: list[Result] = []
    try:
        use_id, excluded = _setup(settings, rows, people)
        engine = DuckDBEngine.open(settings)
        try:
            engine.connection.execute("SET threads = 2")
            with stopwatch() as built:
                gate.prepare(settings, engine=engine)
            snap = choices.snapshot("research", settings=settings)
            active = register.authorise(use_id, "ana", settings=settings)
            tables = gate.catalogue(settings)
            granted = gate.tables.granted_tables(active.grants, tables)
            gated = [
                GatedTable(
                    SOURCE,
                    tuple(granted[0].granted),
                    "research",
                    snap.excluded(SOURCE).person_nums,
                    snap.content_hash,
                )
            ]
            key = gate.link_state(settings).key
            limits = Limits(seconds=600, memory="8GB")
            with stopwatch() as first_mask, engine.session(gated, limits, key):
                pass
            raw = engine.connection
            for label, template in QUERIES.items():
                sql = template.format(t=SOURCE)
                query = gate.validate(sql, granted, aggregate=True)

                def raw_query(sql: str = template.format(t="raw_events")) -> None:
                    raw.sql(sql).to_arrow_table()

                def gated_query(query: gate.ValidatedQuery = query) -> None:
                    with engine.session(gated, limits, key) as session:
                        session.fetch(gated_sql(query, session.views), 1_000)

                def with_cohort(query: gate.ValidatedQuery = query) -> None:
                    with engine.session(gated, limits, key) as session:
                        session.fetch(gated_sql(query, session.views), 1_000)
                        from candour.gate.run import _cohort

                        _cohort(query, session, engine, gated)

                def end_to_end(sql: str = sql) -> None:
                    gate.run(use_id, "ana", sql, settings=settings, engine=engine, limits=limits)

                raw_query(), gated_query(), with_cohort()  # warm caches
                (raw_s, raw_med), (gated_s, gated_med), (cohort_s, cohort_med) = _interleaved(
                    [raw_query, gated_query, with_cohort], repeats
                )
                e2e_s, e2e_med = _best(end_to_end, max(3, repeats // 3))
                # Honest check of what was measured: the cohort holds no excluded person.
                with engine.session(gated, limits, key) as session:
                    mask = session.person_mask(
                        cohort_sql(query, session.views, distinct=False), people
                    )
                assert not mask[excluded].any()
                judge = None if quick else True
                results.append(
                    Result(
                        benchmark=f"gated aggregate, {label} ({rows:,} rows, 5% opted out)",
                        figure=gated_s * 1000,
                        unit="ms",
                        target="<= 1.3x the same SQL on raw DuckDB",
                        met=None if judge is None else gated_s <= 1.3 * raw_s,
                        reference="same SQL on a plain DuckDB table",
                        reference_figure=raw_s * 1000,
                        ratio=gated_s / raw_s,
                        notes=f"best of {repeats}, interleaved with the reference; medians "
                        f"{gated_med * 1000:.0f} vs {raw_med * 1000:.0f} ms",
                    )
                )
                results.append(
                    Result(
                        benchmark=f"gated aggregate + cohort capture, {label}",
                        figure=cohort_s * 1000,
                        unit="ms",
                        target="<= 2x the same SQL on raw DuckDB",
                        met=None if judge is None else cohort_s <= 2 * raw_s,
                        reference="same SQL on a plain DuckDB table",
                        reference_figure=raw_s * 1000,
                        ratio=cohort_s / raw_s,
                        notes=f"best of {repeats}, interleaved; median {cohort_med * 1000:.0f} ms "
                        f"(reference median {raw_med * 1000:.0f} ms); "
                        f"gate.run end to end {e2e_s * 1000:.0f} ms (median {e2e_med * 1000:.0f})",
                        extra={"end_to_end_ms": e2e_s * 1000},
                    )
                )
        finally:
            engine.close()
        lookup = _lookup(settings, people, lookups)
        results.append(
            Result(
                benchmark=f"queries_including, {lookups:,} queries, {people:,} people",
                figure=lookup["p95"],
                unit="ms",
                target="p95 <= 150 ms (portal page)",
                met=None if quick else lookup["p95"] <= 150,
                notes=f"every query of the person; median {lookup['median']:.1f} ms; 200 random "
                f"people; a page (count + newest 20) p95 {lookup['page_p95']:.1f} ms; first "
                f"lookup in the process {lookup['cold']:.0f} ms ({lookup['found']:.0f} queries); "
                f"linked-table build {built():.1f} s, first opt-out mask {first_mask():.1f} s",
                extra={"page_p95_ms": lookup["page_p95"], "cold_ms": lookup["cold"]},
            )
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results
