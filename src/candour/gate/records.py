"""The private record of queries, and "which queries included person X?".

:func:`queries_including` answers a resident's question from the cohort lookup index (see
:mod:`candour.gate.cohort`): one 8-byte read per 64 logged queries gives the slots of the
queries found, and the slots' records come from a per-process cache, read from the store (one
plain column select, no ORM objects) only for slots not seen before. A query's record never
changes once committed (``gate_queries`` is append-only), so a cached record is never stale;
a slot with no committed record (a query still logging, or one that failed) is not cached and
is looked up again next time. The cache is keyed by the store and by the lookup index's own
random id, so a data home rebuilt at the same path never reuses another home's records.

A resident with thousands of queries gets them a page at a time (``limit``/``offset``), and
:func:`count_queries_including` says how many there are.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, fields
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


_FIELDS = tuple(f.name for f in fields(QueryRecord))
_COLUMNS = tuple(getattr(GateQuery, name) for name in _FIELDS)
# Records held per process, over every home: 200,000 is ~150 MB at most, and a county's
# queries for years; past it the cache starts again rather than grow without bound.
_CACHE_MAX = 200_000
_cache: dict[tuple[str, str], dict[int, QueryRecord]] = {}
_cached = 0
_cache_lock = threading.Lock()


def _record(row: GateQuery) -> QueryRecord:
    return QueryRecord(**{name: getattr(row, name) for name in _FIELDS})


def _records(settings: Settings, store: CohortStore, slots: Sequence[int]) -> list[QueryRecord]:
    """The committed queries of ``slots`` (slots with no committed query are left out)."""
    global _cached
    key = (settings.store_url, store.index_id())
    with _cache_lock:
        known = _cache.setdefault(key, {})
        missing = [s for s in slots if s not in known]
    if missing:
        fetched: dict[int, QueryRecord] = {}
        with transaction(settings) as session:
            for start in range(0, len(missing), _CHUNK):
                chunk = missing[start : start + _CHUNK]
                rows = session.execute(
                    select(GateQuery.cohort_slot, *_COLUMNS).where(GateQuery.cohort_slot.in_(chunk))
                )
                for slot, *values in rows:
                    fetched[int(slot)] = QueryRecord(*values)
        with _cache_lock:
            if _cached + len(fetched) > _CACHE_MAX:
                _cache.clear()
                _cached = 0
            known = _cache.setdefault(key, {})
            known.update(fetched)
            _cached += len(fetched)
        found = {**known, **fetched}
    else:
        found = known
    return [found[s] for s in slots if s in found]


def person_num_of(person_id: str, *, settings: Settings) -> int:
    """The person number issued with ``person_id`` (retired ids keep theirs)."""
    with transaction(settings) as session:
        num = session.scalar(
            select(PersonNumber.person_num).where(PersonNumber.person_id == person_id)
        )
    if num is None:
        raise GateError(f"no person {person_id}")
    return int(num)


def _including(person: str | int, settings: Settings) -> list[QueryRecord]:
    num = person if isinstance(person, int) else person_num_of(person, settings=settings)
    store = CohortStore(Home(settings.home))
    slots = store.slots_of(num)
    if not slots:
        return []
    found = _records(settings, store, slots)
    found.sort(key=lambda r: (r.started_at, r.query_id))
    return found


def queries_including(
    person: str | int,
    *,
    settings: Settings,
    limit: int | None = None,
    offset: int = 0,
    newest_first: bool = False,
) -> list[QueryRecord]:
    """Logged queries whose cohort includes ``person`` (a person id or number), oldest first
    (or newest first), skipping ``offset`` and returning at most ``limit`` (all when None).

    Queries are matched by the person number in force when they ran. A superset cohort (a query
    of more than one SELECT block) counts everyone in the tables it read, so it may list a query
    that did not in fact use the person's rows; it never misses one.
    """
    if offset < 0 or (limit is not None and limit < 0):
        raise ValueError("limit and offset must not be negative")
    found = _including(person, settings)
    if newest_first:
        found.reverse()
    end = None if limit is None else offset + limit
    return found[offset:end]


def count_queries_including(person: str | int, *, settings: Settings) -> int:
    """How many logged queries :func:`queries_including` would list for ``person`` (to page)."""
    return len(_including(person, settings))


def get_query(query_id: str, *, settings: Settings) -> QueryRecord:
    """One query's private record."""
    with transaction(settings) as session:
        row = session.scalar(select(GateQuery).where(GateQuery.query_id == query_id))
        if row is None:
            raise GateError(f"no query {query_id}")
        return _record(row)
