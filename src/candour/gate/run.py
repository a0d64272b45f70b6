"""Running one query through the gate: authorise, validate, snapshot, rewrite, execute with
limits, capture the cohort, protect the output, log, and hand back a receipt.

The order matters and is tested:

1. **authorise** the user under the use (register): no active use, no query;
2. **validate** the SQL against the use's grants, and for aggregate uses check that disclosure
   control can protect its shape: a refused query never reaches the engine;
3. **snapshot** the residents' choices for the use's purpose, as they stand when the query
   starts;
4. **execute** the rewritten SQL over gated views, within time, memory and row limits;
5. **capture the cohort**: exact for a single SELECT block, a superset otherwise;
6. **protect** an aggregate output (statistical disclosure control, or differential privacy
   when the use has a budget); record-level output is returned as it is, inside the environment;
7. **log**: the private record and the public ledger entry are written in one store
   transaction, the entry appended before the commit; if either fails the query fails, and
   nothing of it (record, cohort file, lookup bits) remains;
8. **receipt**: the entry's inclusion proof to the newest signed checkpoint.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import pandas as pd
from pyroaring import BitMap
from sqlglot import exp

from candour import choices, ledger, register
from candour.choices import Snapshot
from candour.config import Settings
from candour.disclosure import (
    SUPPRESSED_MARK,
    Count,
    DpResult,
    Mean,
    Measure,
    Output,
    Rules,
    SdcResult,
    Sum,
    dp_query,
    protect,
    save_output,
)
from candour.gate import cohort as cohorts
from candour.gate import shape
from candour.gate.engines import Engine, GatedTable, Limits, QuerySession, open_engine
from candour.gate.receipts import Receipt, receipt_for
from candour.gate.rewrite import cohort_sql, gated_sql
from candour.gate.tables import (
    GateError,
    LinkState,
    TableInfo,
    catalogue,
    granted_tables,
    is_fresh,
    link_state,
    save_catalogue,
)
from candour.gate.validate import QueryRefused, ValidatedQuery, validate
from candour.home import Home
from candour.register import ActiveUse
from candour.store import transaction
from candour.store.gate import GateQuery
from candour.store.models import utcnow

Method = Literal["sdc", "dp", "record-level"]


@dataclass(frozen=True)
class DpOptions:
    """What a differentially private query needs besides its SQL, chosen without looking at
    the data: this query's share of the budget, the full public key set (one column per group
    key, named as the query's output names them), clamping bounds for SUM and AVG, and how many
    rows one person may contribute."""

    epsilon: float
    keys: pd.DataFrame
    bounds: tuple[float, float] | None = None
    max_contributions: int = 1


@dataclass(frozen=True)
class QueryResult:
    """What the gate returns: the protected output, what protected it, and the receipt.

    ``table`` is the only data: for aggregate uses it is the output after disclosure control;
    for record-level uses it is the rows (which must stay inside the environment). The cohort
    itself, and its size, are never returned: a count of the people read is itself a statistic
    that has not been through disclosure control.
    """

    query_id: str
    use_id: str
    user: str
    engine: str
    method: Method
    table: pd.DataFrame
    disclosure: SdcResult | DpResult | None
    truncated: bool
    cohort_exact: bool
    receipt: Receipt
    sql_sha256: str
    choices_hash: str
    cohort_sha256: str
    output_sha256: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def disclosure_summary(self) -> dict[str, Any]:
        """What disclosure control did, in a form safe to show the analyst."""
        if isinstance(self.disclosure, SdcResult):
            return {
                "method": "sdc",
                "rules": self.disclosure.rules.as_dict(),
                **self.disclosure.summary(),
            }
        if isinstance(self.disclosure, DpResult):
            report = self.disclosure.report()
            return {
                k: report[k]
                for k in ("method", "statistic", "epsilon", "remaining_epsilon", "noise")
            }
        return {"method": "record-level", "rows": len(self.table), "truncated": self.truncated}

    def save(self, *, settings: Settings, name: str = "output") -> Output:
        """Keep this aggregate output inside the environment, ready for a release request.

        The saved file's hash is the ``output_hash`` of the query's ledger entry.
        """
        if self.disclosure is None:
            raise GateError("record-level output cannot be saved for release")
        out = save_output(
            settings, self.disclosure, use_id=self.use_id, created_by=self.user, name=name
        )
        if out.file_sha256 != self.output_sha256:
            raise GateError("the saved output does not match the logged output hash")
        return out


def output_bytes(table: pd.DataFrame) -> bytes:
    """The bytes an output's hash is taken over: the CSV the output would be saved as."""
    return table.to_csv(index=False, na_rep=SUPPRESSED_MARK, lineterminator="\n").encode()


def refresh(settings: Settings, engine: Engine, state: LinkState) -> dict[str, TableInfo]:
    """Rebuild the linked tables for ``state`` and record their catalogue."""
    infos = engine.build(state)
    save_catalogue(settings, infos)
    return {t.source: t for t in infos}


def prepare(settings: Settings, *, engine: Engine | None = None) -> dict[str, TableInfo]:
    """Build the linked tables now if the latest link run or ingest made them stale."""
    state = link_state(settings)
    tables = catalogue(settings)
    if is_fresh(tables, state):
        return tables
    own = engine is None
    eng = engine or open_engine(settings)
    try:
        return refresh(settings, eng, state)
    finally:
        if own:
            eng.close()


def _columns(
    query: ValidatedQuery, tables: Mapping[str, TableInfo], active: ActiveUse, source: str
) -> tuple[str, ...]:
    granted = {t.name: t for t in granted_tables(active.grants, tables)}
    return tuple(granted[source].granted)


def _cohort(
    query: ValidatedQuery,
    session: QuerySession,
    engine: Engine,
    gated: list[GatedTable],
) -> tuple[BitMap, bool]:
    select = query.expression
    simple = (
        query.single_block
        and len(query.tables) == 1
        and not select.args.get("where")
        and not select.args.get("joins")
        and len(list(select.find_all(exp.Table))) == 1
    )
    if query.single_block and not simple:
        sql = cohort_sql(query, session.views, engine.dialect, distinct=False)
        return session.cohort(sql, engine.max_person() + 1), True
    # Everyone in each table read, less whom the snapshot excludes from it: exact for a whole
    # table read without filters, a superset for anything more complex.
    found = BitMap()
    for table in gated:
        people = engine.persons(table.source)
        if len(table.excluded):
            people = people - cohorts.from_nums(table.excluded)
        found |= people
    return found, simple


def _check_cohort(bitmap: BitMap, gated: list[GatedTable]) -> None:
    # Belt and braces: someone excluded from every table the query read cannot be in it.
    common: BitMap | None = None
    for table in gated:
        excluded = cohorts.from_nums(table.excluded)
        common = excluded if common is None else common & excluded
    if common and bitmap.intersection_cardinality(common):
        raise GateError("internal error: an excluded person reached a cohort; nothing returned")


def _sdc(
    query: ValidatedQuery,
    plan: shape.OutputPlan,
    session: QuerySession,
    engine: Engine,
    active: ActiveUse,
    limits: Limits,
) -> SdcResult:
    main, more = session.fetch(gated_sql(query, session.views, engine.dialect), limits.max_rows)
    if more:
        raise QueryRefused(
            "row-limit", f"the query gives more than {limits.max_rows:,} groups; group coarser"
        )
    frame = main.to_pandas()
    measures: list[Measure] = []
    for m in plan.measures:
        if m.kind == "count":
            frame[m.column] = frame[m.column].fillna(0)
            measures.append(Count(m.column))
    for j, sql in shape.evidence_sql(query, plan, session.views, engine.dialect):
        m = plan.measures[j]
        evidence, _ = session.fetch(sql, limits.max_rows + 1)
        ev = evidence.to_pandas()
        names = {f"_k{i}": k for i, k in enumerate(plan.keys)}
        ev = ev.rename(
            columns={**names, "_c": f"_c{j}", "_t": f"_t{j}", "_a": f"_a{j}", "_b": f"_b{j}"}
        )
        if plan.keys:
            frame = frame.merge(ev, on=list(plan.keys), how="left")
        else:
            for column in ev.columns:
                frame[column] = ev[column].iloc[0] if len(ev) else 0
        for column in (f"_c{j}", f"_t{j}", f"_a{j}", f"_b{j}"):
            frame[column] = pd.to_numeric(frame[column]).fillna(0)
        frame[m.column] = pd.to_numeric(frame[m.column]).fillna(0)
        if m.kind == "sum":
            frame = frame.drop(columns=[f"_t{j}"])
            measures.append(Sum(m.column, contributors=f"_c{j}", top1=f"_a{j}", top2=f"_b{j}"))
        else:
            measures.append(
                Mean(m.column, contributors=f"_c{j}", total=f"_t{j}", top1=f"_a{j}", top2=f"_b{j}")
            )
    # Measures in the order the analyst wrote them.
    position = {m.column: i for i, m in enumerate(plan.measures)}
    measures.sort(key=lambda m: position[m.column])
    result = protect(
        frame,
        keys=list(plan.keys),
        measures=measures,
        rules=Rules(threshold=active.threshold, rounding=active.rounding),
    )
    if plan.keys:
        table = result.table.sort_values(list(plan.keys), kind="stable", na_position="last")
        result = _with_table(result, table.reset_index(drop=True))
    return result


def _with_table(result: SdcResult, table: pd.DataFrame) -> SdcResult:
    return SdcResult(table, result.keys, result.measures, result.rules, result.cells, result.margin)


def _dp(
    settings: Settings,
    query: ValidatedQuery,
    plan: shape.OutputPlan,
    session: QuerySession,
    engine: Engine,
    active: ActiveUse,
    options: DpOptions,
    limits: Limits,
    query_id: str,
) -> DpResult:
    rows, more = session.fetch(
        shape.rows_sql(query, plan, session.views, engine.dialect), limits.max_rows * 100
    )
    if more:
        raise QueryRefused("row-limit", "the query reads too many rows for differential privacy")
    frame = rows.to_pandas().rename(columns={f"_k{i}": k for i, k in enumerate(plan.keys)})
    measure = plan.measures[0]
    statistic: Literal["count", "sum", "mean"] = measure.kind
    assert active.dp_epsilon is not None
    return dp_query(
        frame,
        settings=settings,
        use_id=active.use_id,
        budget=active.dp_epsilon,
        epsilon=options.epsilon,
        by=list(plan.keys),
        keys=options.keys,
        statistic=statistic,
        column="_value" if measure.kind != "count" else None,
        bounds=options.bounds,
        person="_person",
        max_contributions=options.max_contributions,
        actor=active.user,
        query_ref=query_id,
    )


def run(
    use_id: str,
    user: str,
    sql: str,
    *,
    settings: Settings,
    engine: Engine | None = None,
    limits: Limits | None = None,
    dp: DpOptions | None = None,
) -> QueryResult:
    """Run ``sql`` as ``user`` under data use ``use_id`` and return the protected result.

    Raises ``UseError`` when the user may not query under the use, :class:`QueryRefused` (with
    a rule and a place) when the SQL or its output shape is not allowed or a limit is hit,
    ``DisclosureRefused``/``BudgetExhausted`` when the output cannot be made safe, and any
    ledger or store error as it is: a query that cannot be logged returns nothing.
    ``engine`` defaults to ``settings.engine`` over the home's warehouse, and ``limits`` to
    the ``CANDOUR_GATE_*`` settings.
    """
    started = utcnow()
    active = register.authorise(use_id, user, settings=settings)
    limits = limits or Limits.from_settings(settings)
    state = link_state(settings)
    tables = catalogue(settings)
    own = engine is None
    eng = engine
    try:
        if not is_fresh(tables, state):
            # The gate's own upkeep after a link run; the analyst's SQL is not involved.
            eng = eng or open_engine(settings)
            tables = refresh(settings, eng, state)
        aggregate = active.output == "aggregate"
        query, plan = _check(sql, active, tables, aggregate)
        if active.dp_epsilon is not None and dp is None:
            raise QueryRefused(
                "dp-options",
                f"{use_id} answers with differential privacy: give this query's epsilon and the "
                "public key set (and bounds for SUM or AVG)",
            )
        snap = choices.snapshot(active.purpose, settings=settings)
        eng = eng or open_engine(settings)
        if eng.linked_key() != state.key:
            tables = refresh(settings, eng, state)
            query, plan = _check(sql, active, tables, aggregate)
        return _execute(
            settings, eng, active, query, plan, snap, state, tables, limits, dp, started
        )
    finally:
        if own and eng is not None:
            eng.close()


def _check(
    sql: str, active: ActiveUse, tables: Mapping[str, TableInfo], aggregate: bool
) -> tuple[ValidatedQuery, shape.OutputPlan | None]:
    query = validate(sql, granted_tables(active.grants, tables), aggregate=aggregate)
    plan = shape.plan(query, dp=active.dp_epsilon is not None) if aggregate else None
    return query, plan


def _execute(
    settings: Settings,
    engine: Engine,
    active: ActiveUse,
    query: ValidatedQuery,
    plan: shape.OutputPlan | None,
    snap: Snapshot,
    state: LinkState,
    tables: Mapping[str, TableInfo],
    limits: Limits,
    dp: DpOptions | None,
    started: datetime,
) -> QueryResult:
    query_id = "Q-" + secrets.token_hex(8)
    gated = [
        GatedTable(
            source=source,
            columns=_columns(query, tables, active, source),
            purpose=active.purpose,
            excluded=snap.excluded(source).person_nums,
            stamp=snap.content_hash,
        )
        for source in query.tables
    ]
    disclosure: SdcResult | DpResult | None = None
    truncated = False
    with engine.session(gated, limits, state.key) as session:
        if plan is None:
            rows, truncated = session.fetch(
                gated_sql(query, session.views, engine.dialect), limits.max_rows
            )
            table = rows.to_pandas()
            method: Method = "record-level"
        elif dp is not None:
            disclosure = _dp(settings, query, plan, session, engine, active, dp, limits, query_id)
            table = disclosure.table
            method = "dp"
        else:
            disclosure = _sdc(query, plan, session, engine, active, limits)
            table = disclosure.table
            method = "sdc"
        bitmap, exact = _cohort(query, session, engine, gated)
    _check_cohort(bitmap, gated)
    output_hash = _sha256(output_bytes(table))
    index = _log(
        settings,
        query_id,
        active,
        query,
        snap,
        state,
        engine,
        method,
        bitmap,
        exact,
        output_hash,
        len(table),
        started,
    )
    notes = (
        ()
        if exact
        else (
            "cohort recorded as a superset (everyone in the tables read): the query has more than "
            "one SELECT block",
        )
    )
    return QueryResult(
        query_id=query_id,
        use_id=active.use_id,
        user=active.user,
        engine=engine.name,
        method=method,
        table=table,
        disclosure=disclosure,
        truncated=truncated,
        cohort_exact=exact,
        receipt=receipt_for(query_id, index, settings),
        sql_sha256=query.sql_sha256,
        choices_hash=snap.content_hash,
        cohort_sha256=cohorts.sha256(bitmap),
        output_sha256=output_hash,
        notes=notes,
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _log(
    settings: Settings,
    query_id: str,
    active: ActiveUse,
    query: ValidatedQuery,
    snap: Snapshot,
    state: LinkState,
    engine: Engine,
    method: Method,
    bitmap: BitMap,
    exact: bool,
    output_hash: str,
    rows: int,
    started: datetime,
) -> int:
    """Record the query privately and publicly, all or nothing; return its ledger index."""
    store = cohorts.CohortStore(Home(settings.home))
    tmp, cohort_hash = store.write(query_id, bitmap)
    slot = store.allocate()
    placed = False
    try:
        store.mark(slot, bitmap)
        with transaction(settings) as session:
            row = GateQuery(
                query_id=query_id,
                use_id=active.use_id,
                purpose=active.purpose,
                user=active.user,
                engine=engine.name,
                method=method,
                started_at=started,
                sql_sha256=query.sql_sha256,
                choices_hash=snap.content_hash,
                choices_version=snap.version,
                link_key=state.key,
                cohort_sha256=cohort_hash,
                cohort_exact=exact,
                cohort_size=len(bitmap),
                cohort_slot=slot,
                cohort_file=str(store.path(query_id).relative_to(settings.home)),
                output_sha256=output_hash,
                rows=rows,
            )
            session.add(row)
            session.flush()
            index = ledger.record(
                "query",
                {
                    "use_id": active.use_id,
                    "sql_hash": query.sql_sha256,
                    "choices_hash": snap.content_hash,
                    "cohort_hash": cohort_hash,
                    "output_hash": output_hash,
                },
                settings=settings,
            )
            row.ledger_index = index
            store.place(tmp, query_id)
            placed = True
        return index
    except BaseException:
        store.unmark(slot, bitmap)
        tmp.unlink(missing_ok=True)
        if placed:
            store.path(query_id).unlink(missing_ok=True)
        raise
