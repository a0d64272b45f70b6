"""Engines the gate runs on: DuckDB (the embedded default) and Spark, behind one protocol.

An engine does four things for the gate, and nothing else touches the warehouse:

- :meth:`Engine.linked_key` / :meth:`Engine.build`: build the linked tables once per link run
  (in the warehouse's ``gate`` schema, out of the analyst's reach) and say what they were built
  from;
- :meth:`Engine.persons`: everyone in a linked table, as a bitmap (for superset cohorts);
- :meth:`Engine.session`: per query, gated views over the linked tables that hide the rows of
  everyone the query's choices snapshot excludes, inside one read transaction, with limits.

**How rows are hidden (DuckDB).** An anti-join against the opted-out set on every query costs
more than the query itself (a hash probe per row), and so does a per-row mask test over the
whole table (on 10M rows a boolean mask column made a filtered count 1.3x slower than no mask).
Instead each linked table is kept in two parts: ``linked_<source>__clear`` holds the rows of
everyone who has never been excluded from any purpose for that source (most people), with no
mask at all; ``linked_<source>__marked`` holds the rows of everyone else, with one boolean mask
column per purpose that has opt-outs (``_optout_<bit>``, added when first needed), kept equal to
one snapshot's excluded set and stamped with that snapshot's content hash. A query's view is
the clear part as it is, plus the marked rows whose mask for its purpose is false: the scan of
the large part does no more work than the raw table, and only the small part pays for a test.
A person's rows move from the clear part to the marked part (together, in the transaction
that sets their mask) the first time they are excluded, and stay there: a later opt-in sets
the mask false. DuckDB leaves deleted rows in place and skips them on every scan, so once the
rows moved out pass :data:`COMPACT_SHARE` of the clear part, the move rewrites it instead.
``linked_<source>`` is a view of both parts, for whatever reads every row (the Spark export,
counts).

A query whose snapshot matches the stamp reads at once; one whose snapshot differs first
updates the mask for just the people whose choice changed, in its own transaction, then checks
the stamp again inside its read transaction. The view a query reads is therefore exactly "the
linked table minus everyone excluded by *this* query's snapshot", and the check proves it.

The Spark engine (:mod:`candour.gate.spark`) implements the same protocol over Parquet exports
of these linked tables; :func:`open_engine` picks one by name.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
from pyroaring import BitMap

from candour.config import MEMORY_SIZE_PATTERN, Settings
from candour.gate import cohort
from candour.gate.tables import (
    EVENT_DATE,
    HIDDEN,
    PERSON_NUM,
    RESERVED,
    GateError,
    LinkState,
    TableInfo,
)
from candour.gate.validate import PERSON_ID, QueryRefused
from candour.home import Home

SCHEMA = "gate"
MASK = "_optout"
"""Prefix of the per-purpose mask columns (source columns start with a letter, so no clash)."""
STAMPS = "mask_stamps"
"""Which snapshot each (source, purpose) mask column equals. (Warehouses built before the
per-purpose columns kept stamps for a shared bit column in ``gate.masks``; that table is no
longer read, so their masks are rebuilt as columns on first use.)"""
MAX_PURPOSE_BITS = 32


def mask_column(bit: int) -> str:
    """The linked-table column that marks the people excluded for the purpose with ``bit``."""
    return f"{MASK}_{bit}"


_FIELDS = Settings.model_fields
# The engine's SET statement takes the size as text, so only a plain size is ever accepted.
_MEMORY = re.compile(MEMORY_SIZE_PATTERN)


@dataclass(frozen=True)
class Limits:
    """What one query may use: wall-clock seconds, engine memory, rows returned.

    The defaults are the defaults of the ``CANDOUR_GATE_*`` settings; :meth:`from_settings`
    gives the limits an operator configured, which is what :func:`candour.gate.run` uses when
    no limits are passed.
    """

    seconds: float = _FIELDS["gate_timeout_seconds"].default
    memory: str = _FIELDS["gate_memory_limit"].default
    max_rows: int = _FIELDS["gate_max_rows"].default

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError("a query's time limit must be positive")
        if not _MEMORY.match(self.memory):
            raise ValueError(f"memory limit {self.memory!r} is not a size such as 4GB or 512MB")
        if self.max_rows < 1:
            raise ValueError("a query's row limit must be at least 1")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> Limits:
        """The limits configured by ``settings`` (``CANDOUR_GATE_*``), with ``overrides``."""
        values: dict[str, Any] = {
            "seconds": settings.gate_timeout_seconds,
            "memory": settings.gate_memory_limit,
            "max_rows": settings.gate_max_rows,
        }
        values.update(overrides)
        return cls(**values)


class QueryLimit(QueryRefused):
    """A query ran past one of its limits and was stopped; nothing was returned or logged."""


@dataclass(frozen=True)
class GatedTable:
    """One table a query reads, and whom its snapshot excludes from it."""

    source: str
    columns: tuple[str, ...]
    """The analyst-visible columns the view exposes (``person_num`` is added internally)."""
    purpose: str
    excluded: np.ndarray[Any, np.dtype[np.uint32]]
    """Sorted unique person numbers whose rows must not be read."""
    stamp: str
    """Identifies ``excluded``: the snapshot's content hash (same hash, same set)."""


class QuerySession(Protocol):
    """One query's view of the engine: its gated views, and ways to read through them."""

    views: dict[str, str]

    def fetch(self, sql: str, max_rows: int) -> tuple[pa.Table, bool]:
        """Run ``sql``; return at most ``max_rows`` rows and whether there were more."""
        ...

    def person_mask(self, sql: str, size: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Run ``sql`` (one ``person_num`` column, repeats allowed): who appeared, as a mask."""
        ...

    def cohort(self, sql: str, size: int) -> BitMap:
        """Run ``sql`` (one ``person_num`` column, repeats allowed): who appeared, as a bitmap
        (``size`` is a hint: one more than the largest person number expected)."""
        ...


class Engine(Protocol):
    """An analytic engine the gate can run on."""

    name: str
    dialect: str

    def close(self) -> None:
        """Release the engine."""
        ...

    def linked_key(self) -> str | None:
        """The link key the engine's linked tables were built from (None: never built)."""
        ...

    def build(self, state: LinkState) -> list[TableInfo]:
        """(Re)build every linked table from the warehouse for ``state``."""
        ...

    def persons(self, source: str) -> BitMap:
        """Everyone with a row in a linked table."""
        ...

    def max_person(self) -> int:
        """The largest person number in any linked table (sizes cohort masks)."""
        ...

    def session(
        self, tables: Sequence[GatedTable], limits: Limits, key: str
    ) -> Any:  # a context manager yielding a QuerySession
        """Gated views for one query, in one consistent read of the warehouse."""
        ...


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def linked_name(source: str) -> str:
    """The linked table of ``source`` (inside the ``gate`` schema): a view of both parts."""
    return f"linked_{source}"


def clear_part(source: str) -> str:
    """The part of ``source``'s linked table holding people never excluded (no masks)."""
    return f"linked_{source}__clear"


def marked_part(source: str) -> str:
    """The part of ``source``'s linked table holding people ever excluded (with masks)."""
    return f"linked_{source}__marked"


COMPACT_SHARE = 0.001
"""How many of the clear part's rows may be deleted (moved out) before it is rewritten.

DuckDB keeps deleted rows in place and skips them as it scans, which is not free: with 5% of
10M rows moved out, a filtered count read the clear part 1.3x slower than the same rows
rewritten, and 0.1% cost about 8% (docs/benchmarks.md, gate). Rewriting 10M rows takes a few
seconds, so small moves delete and a move that takes the total past this share rewrites."""

LAYOUT = "clear-marked-1"
"""The linked tables' layout; a warehouse built with another is rebuilt on its next query."""


def _built_key(stored: str | None) -> str | None:
    """The link key the linked tables were built from, if they have the current layout (the
    state holds ``layout:key``; anything else reads as never built, so it is rebuilt)."""
    if stored is None or not stored.startswith(f"{LAYOUT}:"):
        return None
    return stored.removeprefix(f"{LAYOUT}:")


# -- DuckDB ----------------------------------------------------------------------------------


def _base_columns(con: Any, source: str) -> list[str]:
    """The columns of ``source``'s clear part: the linked columns, without any mask."""
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
        "ORDER BY column_index",
        [SCHEMA, clear_part(source)],
    ).fetchall()
    return [str(r[0]) for r in rows]


@dataclass
class _Deadline:
    limits: Limits
    started: float = field(default_factory=time.monotonic)

    def left(self) -> float:
        left = self.limits.seconds - (time.monotonic() - self.started)
        if left <= 0:
            raise QueryLimit("time-limit", f"the query ran past its {self.limits.seconds:g} s")
        return left


def _engine_error(exc: Exception, limits: Limits) -> QueryRefused:
    import duckdb

    if isinstance(exc, duckdb.InterruptException):
        return QueryLimit(
            "time-limit", f"the query ran past its {limits.seconds:g} s limit and was stopped"
        )
    if isinstance(exc, duckdb.OutOfMemoryException):
        return QueryLimit(
            "memory-limit", f"the query needed more than its {limits.memory} memory limit"
        )
    if isinstance(exc, duckdb.BinderException | duckdb.ParserException):
        # Binder and parser messages describe the SQL, never the data, so they are safe to show.
        return QueryRefused("engine", str(exc).splitlines()[0])
    # Other engine errors (conversions, overflows) can quote a value from the data.
    return QueryRefused(
        "engine",
        f"the engine could not run the query ({type(exc).__name__}); check casts and "
        "arithmetic on the values it reads",
    )


class DuckDBSession:
    """A query's gated views on one DuckDB connection, inside one read transaction."""

    def __init__(self, con: Any, views: dict[str, str], deadline: _Deadline) -> None:
        self.con = con
        self.views = views
        self.deadline = deadline

    @contextmanager
    def watchdog(self) -> Iterator[None]:
        """Interrupt the engine when the query's time is up (one timer for the whole query)."""
        timer = threading.Timer(self.deadline.left(), self.con.interrupt)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    @contextmanager
    def _watch(self) -> Iterator[None]:
        self.deadline.left()
        try:
            yield
        except Exception as exc:
            import duckdb

            if isinstance(exc, duckdb.Error):
                raise _engine_error(exc, self.deadline.limits) from None
            raise

    def fetch(self, sql: str, max_rows: int) -> tuple[pa.Table, bool]:
        """Run ``sql`` and stream at most ``max_rows`` rows back (and whether there were more)."""
        batches: list[pa.RecordBatch] = []
        rows = 0
        with self._watch():
            reader = self.con.sql(sql).to_arrow_reader(65_536)
            schema = reader.schema
            for batch in reader:
                batches.append(batch)
                rows += batch.num_rows
                if rows > max_rows:
                    break
        table = pa.Table.from_batches(batches, schema=schema)
        if table.num_rows > max_rows:
            return table.slice(0, max_rows), True
        return table, False

    def person_mask(self, sql: str, size: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Who appears in ``sql``'s single ``person_num`` column, as a boolean mask."""
        mask = np.zeros(size, dtype=np.bool_)
        with self._watch():
            # Every row's number crosses into Python here, so :meth:`cohort` prefers to set
            # the bits inside the engine; this is its fallback when a number is beyond the
            # range it was given (the mask grows to fit).
            reader = self.con.sql(sql).to_arrow_reader(1 << 21)
            for batch in reader:
                column = batch.column(0)
                if column.null_count:
                    column = column.drop_null()
                nums = column.to_numpy(zero_copy_only=False)
                if not len(nums):
                    continue
                top = int(nums.max())
                if top >= len(mask):
                    grown = np.zeros(top + 1, dtype=np.bool_)
                    grown[: len(mask)] = mask
                    mask = grown
                mask[nums] = True
        return mask

    def cohort(self, sql: str, size: int) -> BitMap:
        """The people in ``sql``'s single ``person_num`` column, as a bitmap.

        The numbers are streamed out in Arrow batches and set in a numpy mask. DuckDB's own
        ``bitstring_agg`` keeps the rows inside the engine, but it allocates a bit string the
        size of the whole population per thread and group, which measured 2-8x slower for
        filtered queries (docs/benchmarks.md, gate), so it is not used.
        """
        return cohort.from_mask(self.person_mask(sql, size))


class DuckDBEngine:
    """The gate on the warehouse's own DuckDB file."""

    name = "duckdb"
    dialect = "duckdb"

    def __init__(self, connection: Any, *, owner: Any = None) -> None:
        self._con = connection
        self._owner = owner
        self._persons: dict[tuple[str, str], BitMap] = {}
        self._max: dict[str, int] = {}
        self._bits: dict[str, int] = {}
        self._memory: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings) -> DuckDBEngine:
        """The engine over the home's warehouse file (opened for writing: masks are updated)."""
        from candour.warehouse import DuckDBWarehouse

        warehouse = DuckDBWarehouse(
            Home(settings.home).warehouse, wait_seconds=settings.warehouse_wait_seconds
        )
        return cls(warehouse.connection, owner=warehouse)

    @property
    def connection(self) -> Any:
        """The underlying DuckDB connection (benchmarks; the Spark engine's export)."""
        return self._con

    def close(self) -> None:
        """Close the warehouse if this engine opened it."""
        if self._owner is not None:
            self._owner.close()
            self._owner = None

    # -- linked tables

    def _ensure_schema(self, con: Any) -> None:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.state (name VARCHAR PRIMARY KEY, value VARCHAR)"
        )
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.purpose_bits "
            "(purpose VARCHAR PRIMARY KEY, bit INTEGER NOT NULL)"
        )
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{STAMPS} (source VARCHAR, purpose VARCHAR, "
            "stamp VARCHAR, excluded BLOB, PRIMARY KEY (source, purpose))"
        )
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.persons (source VARCHAR PRIMARY KEY, bitmap BLOB)"
        )

    def _state(self, con: Any, name: str) -> str | None:
        import duckdb

        try:
            found = con.execute(f"SELECT value FROM {SCHEMA}.state WHERE name = ?", [name])
            rows = found.fetchall()
        except duckdb.CatalogException:
            return None  # never built
        return str(rows[0][0]) if rows else None

    def _checks(self, con: Any) -> tuple[str | None, dict[tuple[str, str], str]]:
        """The link key the linked tables were built from, and the stamp of every mask, in one
        statement (a query pays for this on every run)."""
        rows = con.execute(
            f"SELECT NULL, NULL, value FROM {SCHEMA}.state WHERE name = 'link_key' "
            f"UNION ALL SELECT source, purpose, stamp FROM {SCHEMA}.{STAMPS}"
        ).fetchall()
        key = _built_key(next((str(r[2]) for r in rows if r[0] is None), None))
        return key, {(r[0], r[1]): str(r[2]) for r in rows if r[0] is not None}

    def linked_key(self) -> str | None:
        """The link key the linked tables were built from, or None."""
        return _built_key(self._state(self._con.cursor(), "link_key"))

    def _index_hash(self, con: Any) -> str:
        import hashlib

        digest = hashlib.sha256()
        reader = con.sql(
            "SELECT record_key, person_id FROM main.person_index ORDER BY record_key"
        ).to_arrow_reader(200_000)
        for batch in reader:
            keys = batch.column(0).to_pylist()
            people = batch.column(1).to_pylist()
            digest.update(
                "".join(f"{k}\t{p}\n" for k, p in zip(keys, people, strict=True)).encode()
            )
        return digest.hexdigest()

    def build(self, state: LinkState) -> list[TableInfo]:
        """Rebuild every linked table for ``state`` in one transaction; return the catalogue."""
        con = self._con.cursor()
        try:
            tables = {
                r[0]
                for r in con.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'main' AND table_type = 'BASE TABLE'"
                ).fetchall()
            }
            if "person_index" not in tables:
                raise GateError("the warehouse has no person index; run `candour link` first")
            if self._index_hash(con) != state.index_hash:
                raise GateError(
                    f"the warehouse's person index is not the one link run {state.run_id} "
                    "recorded; run `candour link` again before querying"
                )
            con.execute("BEGIN TRANSACTION")
            try:
                self._ensure_schema(con)
                # Everything linked is rebuilt, so every old part goes first (views before the
                # tables they read; an older layout kept each linked table as one table).
                for kind in ("VIEW", "BASE TABLE"):
                    for (old,) in con.execute(
                        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
                        "AND table_type = ? AND table_name LIKE 'linked\\_%' ESCAPE '\\'",
                        [SCHEMA, kind],
                    ).fetchall():
                        con.execute(f"DROP {kind.removeprefix('BASE ')} {SCHEMA}.{_q(old)}")
                infos = [
                    self._build_one(con, source, state.key)
                    for source in state.sources
                    if source in tables
                ]
                con.execute(f"DELETE FROM {SCHEMA}.{STAMPS}")
                con.execute(
                    f"DELETE FROM {SCHEMA}.state WHERE starts_with(name, 'deleted_rows:')"
                )
                con.execute(
                    f"INSERT OR REPLACE INTO {SCHEMA}.state VALUES ('link_key', ?)",
                    [f"{LAYOUT}:{state.key}"],
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        finally:
            con.close()
        with self._lock:
            self._persons.clear()
            self._max.clear()
        return infos

    def _build_one(self, con: Any, source: str, key: str) -> TableInfo:
        columns = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
            [source],
        ).fetchall()
        attributes = {
            name: kind for name, kind in columns if name not in HIDDEN and name not in RESERVED
        }
        has_event = any(name == EVENT_DATE for name, _ in columns)
        select = [f"p.{PERSON_ID}", f"CAST(p.{PERSON_NUM} AS UINTEGER) AS {PERSON_NUM}"]
        select += [f"t.{_q(a)}" for a in attributes]
        if has_event:
            select.append(f"t.{EVENT_DATE}")
        target = f"{SCHEMA}.{_q(linked_name(source))}"
        clear = f"{SCHEMA}.{_q(clear_part(source))}"
        marked = f"{SCHEMA}.{_q(marked_part(source))}"
        # In the source table's own order (a join scrambles it): extracts arrive in file order,
        # often by date, and that order is what lets the engine skip blocks by their min/max
        # and compress each column as well as the source table's own.
        con.execute(
            f"CREATE TABLE {clear} AS SELECT {', '.join(select)} "
            f"FROM main.{_q(source)} t JOIN main.person_index p ON p.record_key = t.record_key "
            "ORDER BY t.rowid"
        )
        con.execute(f"CREATE TABLE {marked} AS SELECT * FROM {clear} LIMIT 0")
        names = ", ".join(_q(c) for c in _base_columns(con, source))
        con.execute(
            f"CREATE VIEW {target} AS SELECT {names} FROM {clear} "
            f"UNION ALL SELECT {names} FROM {marked}"
        )
        nums = con.execute(f"SELECT DISTINCT {PERSON_NUM} FROM {clear}").fetchnumpy()[PERSON_NUM]
        persons = cohort.from_nums(np.asarray(nums, dtype=np.int64))
        con.execute(
            f"INSERT OR REPLACE INTO {SCHEMA}.persons VALUES (?, ?)",
            [source, cohort.serialize(persons)],
        )
        rows = con.execute(f"SELECT count(*) FROM {clear}").fetchall()[0][0]
        return TableInfo(
            source=source,
            columns=attributes,
            has_event_date=has_event,
            rows=int(rows),
            persons=len(persons),
            link_key=key,
        )

    def persons(self, source: str) -> BitMap:
        """Everyone in ``source``'s linked table (cached per link key)."""
        con = self._con.cursor()
        try:
            key = self._state(con, "link_key") or ""
            with self._lock:
                cached = self._persons.get((key, source))
            if cached is not None:
                return cached
            row = con.execute(
                f"SELECT bitmap FROM {SCHEMA}.persons WHERE source = ?", [source]
            ).fetchall()
        finally:
            con.close()
        if not row:
            raise GateError(f"no linked table for {source}")
        bitmap = BitMap.deserialize(bytes(row[0][0]))
        with self._lock:
            self._persons[(key, source)] = bitmap
        return bitmap

    def max_person(self) -> int:
        """The largest person number in the person index (cached per link key: it is a scan)."""
        con = self._con.cursor()
        try:
            key = self._state(con, "link_key") or ""
            with self._lock:
                cached = self._max.get(key)
            if cached is not None:
                return cached
            row = con.execute(f"SELECT max({PERSON_NUM}) FROM main.person_index").fetchall()
        finally:
            con.close()
        top = int(row[0][0] or 0)
        with self._lock:
            self._max[key] = top
        return top

    # -- masks

    def _bit(self, con: Any, purpose: str) -> int:
        cached = self._bits.get(purpose)
        if cached is not None:
            return cached
        row = con.execute(
            f"SELECT bit FROM {SCHEMA}.purpose_bits WHERE purpose = ?", [purpose]
        ).fetchall()
        if row:
            self._bits[purpose] = int(row[0][0])
            return self._bits[purpose]
        used = con.execute(f"SELECT coalesce(max(bit) + 1, 0) FROM {SCHEMA}.purpose_bits")
        bit = int(used.fetchall()[0][0])
        if bit >= MAX_PURPOSE_BITS:
            raise GateError(f"more than {MAX_PURPOSE_BITS} purposes have opt-outs")
        con.execute(f"INSERT INTO {SCHEMA}.purpose_bits VALUES (?, ?)", [purpose, bit])
        return bit

    def _update_mask(self, con: Any, table: GatedTable) -> None:
        """Make the marked part's mask column for this purpose equal ``table.excluded``, in one
        transaction: people excluded for the first time move (all their rows) from the clear
        part to the marked part first; the column is added the first time it is needed."""
        con.execute("BEGIN TRANSACTION")
        try:
            column = mask_column(self._bit(con, table.purpose))
            clear = f"{SCHEMA}.{_q(clear_part(table.source))}"
            marked = f"{SCHEMA}.{_q(marked_part(table.source))}"
            exists = con.execute(
                "SELECT count(*) FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
                "AND column_name = ?",
                [SCHEMA, marked_part(table.source), column],
            ).fetchall()[0][0]
            row = con.execute(
                f"SELECT excluded FROM {SCHEMA}.{STAMPS} WHERE source = ? AND purpose = ?",
                [table.source, table.purpose],
            ).fetchall()
            if not exists:
                con.execute(f"ALTER TABLE {marked} ADD COLUMN {column} BOOLEAN DEFAULT false")
            elif not row:
                # A column no stamp vouches for: start it again from nobody excluded.
                con.execute(f"UPDATE {marked} SET {column} = false WHERE {column}")
            current = (
                cohort.to_array(BitMap.deserialize(bytes(row[0][0])))
                if row and exists
                else np.zeros(0, dtype=np.uint32)
            )
            wanted = np.asarray(table.excluded, dtype=np.uint32)
            add = np.setdiff1d(wanted, current, assume_unique=True)
            remove = np.setdiff1d(current, wanted, assume_unique=True)
            base = ", ".join(_q(c) for c in _base_columns(con, table.source))
            for nums, value in ((add, "true"), (remove, "false")):
                if len(nums) == 0:
                    continue
                con.register("_gate_delta", pa.table({PERSON_NUM: pa.array(nums, pa.uint32())}))
                try:
                    delta = f"(SELECT {PERSON_NUM} FROM _gate_delta)"
                    if value == "true":
                        # Whoever is still in the clear part moves, every row together.
                        moved = con.execute(
                            f"INSERT INTO {marked} ({base}) SELECT {base} FROM {clear} "
                            f"WHERE {PERSON_NUM} IN {delta}"
                        ).fetchall()[0][0]
                        self._take_out_of_clear(con, table.source, delta, int(moved))
                    con.execute(
                        f"UPDATE {marked} SET {column} = {value} WHERE {PERSON_NUM} IN {delta}"
                    )
                finally:
                    con.unregister("_gate_delta")
            con.execute(
                f"INSERT OR REPLACE INTO {SCHEMA}.{STAMPS} VALUES (?, ?, ?, ?)",
                [
                    table.source,
                    table.purpose,
                    table.stamp,
                    cohort.serialize(cohort.from_nums(wanted)),
                ],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _take_out_of_clear(self, con: Any, source: str, delta: str, moved: int) -> None:
        """Remove the rows of the people in ``delta`` (``moved`` rows) from the clear part:
        delete them, or rewrite the part without them once deleted rows pass
        :data:`COMPACT_SHARE` of it (in the caller's transaction)."""
        part = clear_part(source)
        clear = f"{SCHEMA}.{_q(part)}"
        counter = f"deleted_rows:{part}"
        deleted = int(self._state(con, counter) or 0) + moved
        rows = con.execute(f"SELECT count(*) FROM {clear}").fetchall()[0][0]
        if deleted > COMPACT_SHARE * rows:
            # A filter keeps the part's order (extracts' order, which its min/max and
            # compression rely on); the union view reads the part by name, so it follows.
            fresh = f"{SCHEMA}.{_q(part + '__new')}"
            con.execute(
                f"CREATE TABLE {fresh} AS SELECT * FROM {clear} WHERE {PERSON_NUM} NOT IN {delta}"
            )
            con.execute(f"DROP TABLE {clear}")
            con.execute(f"ALTER TABLE {fresh} RENAME TO {_q(part)}")
            deleted = 0
        else:
            con.execute(f"DELETE FROM {clear} WHERE {PERSON_NUM} IN {delta}")
        con.execute(f"INSERT OR REPLACE INTO {SCHEMA}.state VALUES (?, ?)", [counter, str(deleted)])

    @contextmanager
    def session(
        self, tables: Sequence[GatedTable], limits: Limits, key: str
    ) -> Iterator[DuckDBSession]:
        """Gated views for one query over a consistent read of the warehouse."""
        import duckdb

        con = self._con.cursor()
        deadline = _Deadline(limits)
        token = f"{threading.get_ident():x}{time.monotonic_ns():x}"
        try:
            if self._memory != limits.memory:
                con.execute(f"SET memory_limit = '{limits.memory}'")
                self._memory = limits.memory
            for _attempt in range(6):
                # Checked inside the read transaction, so what is read is what was checked. The
                # usual case (masks already match) costs no statement beyond this check.
                con.execute("BEGIN TRANSACTION")
                try:
                    built, stamps = self._checks(con)
                except duckdb.CatalogException:
                    # Never built, or built before the mask stamps had their own table.
                    con.execute("ROLLBACK")
                    built, stamps = _built_key(self._state(con, "link_key")), {}
                    if built == key:
                        self._ensure_schema(con)
                        continue
                if built != key:
                    con.execute("ROLLBACK")
                    raise GateError("the linked tables changed under the query; run it again")
                stale = [
                    t
                    for t in tables
                    if len(t.excluded) and stamps.get((t.source, t.purpose)) != t.stamp
                ]
                if not stale:
                    break
                con.execute("ROLLBACK")
                for table in stale:
                    try:
                        self._update_mask(con, table)
                    except duckdb.TransactionException:
                        pass  # another query updated it at the same moment: check again
            else:
                raise GateError("residents' choices kept changing while the query started")
            try:
                views: dict[str, str] = {}
                for table in tables:
                    view = f"_gq_{token}_{table.source}"
                    columns = ", ".join(_q(c) for c in (*table.columns, PERSON_NUM))
                    if len(table.excluded):
                        # The clear part as it is; of the marked part, the rows this purpose
                        # may read (a comparison with a constant, applied inside the scan).
                        column = mask_column(self._bit(con, table.purpose))
                        body = (
                            f"SELECT {columns} FROM {SCHEMA}.{_q(clear_part(table.source))} "
                            f"UNION ALL SELECT {columns} FROM "
                            f"{SCHEMA}.{_q(marked_part(table.source))} WHERE {column} = false"
                        )
                    else:
                        body = f"SELECT {columns} FROM {SCHEMA}.{_q(linked_name(table.source))}"
                    con.execute(f"CREATE TEMP VIEW {_q(view)} AS {body}")
                    views[table.source] = view
                session = DuckDBSession(con, views, deadline)
                with session.watchdog():
                    yield session
            finally:
                try:
                    con.execute("ROLLBACK")
                except duckdb.Error:
                    pass
        finally:
            con.close()


def open_engine(settings: Settings, name: str | None = None) -> Engine:
    """The engine named by ``name`` (default ``settings.engine``) over the home's warehouse."""
    chosen = name or settings.engine
    if chosen == "duckdb":
        return DuckDBEngine.open(settings)
    if chosen == "spark":
        from candour.gate.spark import SparkEngine

        return SparkEngine(settings)
    raise GateError(f"unknown engine {chosen!r}; use duckdb or spark")
