"""The private record of queries, and "which queries included person X?".

:func:`queries_including` answers a resident's question from the cohort lookup index (see
:mod:`candour.gate.cohort`): one 8-byte read per 64 logged queries, then one indexed read of
the store for the queries found. It never opens a cohort bitmap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from candour.config import Settings
from candour.gate.cohort import CohortStore
from candour.gate.tables import GateError
from candour.home import Home
from candour.store import transaction
from candour.store.gate import GateQuery
from candour.store.linkage import PersonNumber

_CHUNK = 900


@dataclass(frozen=True)
class QueryRecord:
    """One answered query, as the private record holds it."""

    query_id: str
    use_id: str
    purpose: str
    user: str
    engine: str
    method: str
    started_at: datetime
    finished_at: datetime
    sql_sha256: str
    choices_hash: str
    cohort_sha256: str
    cohort_exact: bool
    output_sha256: str
    rows: int
    ledger_index: int | None


def _record(row: GateQuery) -> QueryRecord:
    return QueryRecord(
        query_id=row.query_id,
        use_id=row.use_id,
        purpose=row.purpose,
        user=row.user,
        engine=row.engine,
        method=row.method,
        started_at=row.started_at,
        finished_at=row.finished_at,
        sql_sha256=row.sql_sha256,
        choices_hash=row.choices_hash,
        cohort_sha256=row.cohort_sha256,
        cohort_exact=row.cohort_exact,
        output_sha256=row.output_sha256,
        rows=row.rows,
        ledger_index=row.ledger_index,
    )


def person_num_of(person_id: str, *, settings: Settings) -> int:
    """The person number issued with ``person_id`` (retired ids keep theirs)."""
    with transaction(settings) as session:
        num = session.scalar(
            select(PersonNumber.person_num).where(PersonNumber.person_id == person_id)
        )
    if num is None:
        raise GateError(f"no person {person_id}")
    return int(num)


def queries_including(person: str | int, *, settings: Settings) -> list[QueryRecord]:
    """Every logged query whose cohort includes ``person`` (a person id or number), oldest first.

    Queries are matched by the person number in force when they ran. A superset cohort (a query
    of more than one SELECT block) counts everyone in the tables it read, so it may list a query
    that did not in fact use the person's rows; it never misses one.
    """
    num = person if isinstance(person, int) else person_num_of(person, settings=settings)
    store = CohortStore(Home(settings.home))
    slots = store.slots_of(num)
    if not slots:
        return []
    found: list[QueryRecord] = []
    with transaction(settings) as session:
        for start in range(0, len(slots), _CHUNK):
            chunk = slots[start : start + _CHUNK]
            rows = session.scalars(select(GateQuery).where(GateQuery.cohort_slot.in_(chunk)))
            found.extend(_record(r) for r in rows)
    found.sort(key=lambda r: (r.started_at, r.query_id))
    return found


def get_query(query_id: str, *, settings: Settings) -> QueryRecord:
    """One query's private record."""
    with transaction(settings) as session:
        row = session.scalar(select(GateQuery).where(GateQuery.query_id == query_id))
        if row is None:
            raise GateError(f"no query {query_id}")
        return _record(row)
