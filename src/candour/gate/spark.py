"""The gate on Apache Spark: the same linked tables, the same rewritten SQL, the same answers.

**Linked tables.** The warehouse is a DuckDB file; Spark reads Parquet. When the linked tables
are (re)built for a link run, the DuckDB engine builds them as usual and this engine exports
each one to ``<home>/gate/spark/<export>/<source>.parquet`` (``person_id``, ``person_num``, the
attributes, ``event_date``), with everyone in it as a roaring bitmap beside it. An export is
written to a fresh folder and made current by replacing ``current.json`` atomically, so a query
never reads half an export; the one before it is kept for queries still reading it. On a
cluster (``CANDOUR_SPARK_MASTER``) the data home must be on storage every executor can read.

**How rows are hidden.** Parquet files are immutable, so the DuckDB engine's per-purpose mask
column (updated in place when choices change) has no Spark counterpart. Instead each gated view
is the linked table *anti-joined* to the query's own snapshot of excluded people, broadcast to
every executor (75,000 numbers for 5% of a county: a few hundred kilobytes). The view is
therefore "the linked table minus this snapshot's excluded set" by construction, with no stamp
to check.

**SQL.** The validated query is rewritten exactly as for DuckDB and sqlglot transpiles it (and
the cohort and disclosure-evidence SQL) to Spark SQL; tests check that the protected outputs and
the cohorts equal DuckDB's.

**Limits.** Time: every query runs in its own Spark job group, cancelled when the time is up.
Rows: as on DuckDB. Memory: Spark's memory is fixed per session (driver and executor memory),
not per query, so ``Limits.memory`` is not applied; an out-of-memory failure is still reported
as ``memory-limit``.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pyroaring import BitMap

from candour.config import Settings
from candour.gate import cohort
from candour.gate.engines import (
    SCHEMA,
    DuckDBEngine,
    GatedTable,
    Limits,
    QueryLimit,
    _Deadline,
    _q,
    linked_name,
)
from candour.gate.tables import (
    EVENT_DATE,
    PERSON_NUM,
    GateError,
    LinkState,
    TableInfo,
    catalogue,
    is_fresh,
)
from candour.gate.validate import PERSON_ID, QueryRefused
from candour.home import Home

CURRENT = "current.json"


def export_root(home: Home) -> Path:
    """Where the Spark engine's Parquet exports of the linked tables live."""
    return cohort.gate_dir(home) / "spark"


def spark_session(settings: Settings, *, app: str = "candour-gate") -> Any:
    """A Spark session configured for the gate, at ``settings.spark_master``.

    Small shuffles (the gate's answers are aggregates), UTC session time, Arrow transfers, no UI.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - pyspark is a pinned dependency
        raise GateError("the Spark engine needs pyspark; reinstall Candour") from exc
    from splink.backends.spark import similarity_jar_location

    scratch = export_root(Home(settings.home)) / "scratch"
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    builder = (
        SparkSession.builder.appName(app)
        .master(settings.spark_master)
        # One JVM serves every Spark session in a process, and its class path is fixed by the
        # first: load Splink's similarity functions here too, so linkage can run after a query.
        .config("spark.jars", similarity_jar_location())
        .config("spark.ui.enabled", "false")
        # Spark's console progress bars would write over the command's own output.
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.default.parallelism", "8")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "2g")
        .config("spark.local.dir", str(scratch))
        .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
    )
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # Java missing or a bad master URL: the operator can fix it
        raise GateError(f"cannot start Spark at {settings.spark_master}: {exc}") from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _engine_error(exc: Exception, deadline: _Deadline) -> QueryRefused:
    limits = deadline.limits
    if time.monotonic() - deadline.started >= limits.seconds:
        return QueryLimit(
            "time-limit", f"the query ran past its {limits.seconds:g} s limit and was stopped"
        )
    text = str(exc)
    if type(exc).__name__ == "Py4JNetworkError":
        return QueryRefused("engine", "Spark stopped responding while running the query")
    if "OutOfMemoryError" in text or "SparkOutOfMemoryError" in text:
        return QueryLimit("memory-limit", "the query needed more memory than Spark has")
    try:
        from pyspark.errors import AnalysisException, ParseException
    except ImportError:  # pragma: no cover
        AnalysisException = ParseException = ()  # type: ignore[assignment,misc]
    if isinstance(exc, AnalysisException | ParseException):
        # Analysis and parse errors describe the SQL, never the data, so they are safe to show.
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        return QueryRefused("engine", first)
    # Runtime errors (casts, overflows) can quote a value from the data.
    return QueryRefused(
        "engine",
        f"the engine could not run the query ({type(exc).__name__}); check casts and "
        "arithmetic on the values it reads",
    )


class SparkQuerySession:
    """A query's gated views on Spark, and ways to read through them (a ``QuerySession``)."""

    def __init__(self, spark: Any, views: dict[str, str], deadline: _Deadline, group: str):
        self.spark = spark
        self.views = views
        self.deadline = deadline
        self.group = group

    @contextmanager
    def _watch(self) -> Iterator[None]:
        self.deadline.left()
        try:
            yield
        except QueryRefused:
            raise
        except Exception as exc:
            if _is_spark_error(exc):
                raise _engine_error(exc, self.deadline) from None
            raise

    def fetch(self, sql: str, max_rows: int) -> tuple[pa.Table, bool]:
        """Run ``sql``; return at most ``max_rows`` rows and whether there were more."""
        with self._watch():
            table = self.spark.sql(sql).limit(max_rows + 1).toArrow()
        if table.num_rows > max_rows:
            return table.slice(0, max_rows), True
        return table, False

    def person_mask(self, sql: str, size: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Who appears in ``sql``'s single ``person_num`` column, as a boolean mask."""
        bitmap = self.cohort(sql, size)
        top = max(size, (bitmap.max() + 1) if len(bitmap) else 0)
        mask = np.zeros(top, dtype=np.bool_)
        mask[cohort.to_array(bitmap)] = True
        return mask

    def cohort(self, sql: str, size: int) -> BitMap:
        """The people in ``sql``'s single ``person_num`` column, as a bitmap.

        Spark packs them into 64-bit words per block of 64 people before anything reaches the
        driver: a county's cohort arrives as ~23,000 words, not millions of numbers.
        """
        words = (
            f"SELECT CAST({PERSON_NUM} DIV 64 AS BIGINT) AS w, "
            f"BIT_OR(SHIFTLEFT(CAST(1 AS BIGINT), CAST({PERSON_NUM} % 64 AS INT))) AS b "
            f"FROM ({sql}) AS _c WHERE {PERSON_NUM} IS NOT NULL GROUP BY 1"
        )
        with self._watch():
            table = self.spark.sql(words).toArrow()
        return cohort.from_words(
            table.column("w").to_numpy(zero_copy_only=False),
            table.column("b").to_numpy(zero_copy_only=False).view(np.uint64),
        )


def _is_spark_error(exc: Exception) -> bool:
    module = type(exc).__module__
    return module.startswith(("pyspark", "py4j"))


class SparkEngine:
    """The gate on Spark, over Parquet exports of the linked tables."""

    name = "spark"
    dialect = "spark"

    def __init__(self, settings: Settings, *, spark: Any = None) -> None:
        """Over ``settings``' data home; ``spark`` is a session to use (and not stop), or one is
        started at ``settings.spark_master`` when first needed and stopped by :meth:`close`."""
        self._settings = settings
        self._home = Home(settings.home)
        self._spark = spark
        self._own = spark is None
        self._persons: dict[tuple[str, str], BitMap] = {}
        self._lock = threading.Lock()

    @property
    def spark(self) -> Any:
        """The Spark session (started on first use when none was given)."""
        if self._spark is None:
            self._spark = spark_session(self._settings)
        return self._spark

    def close(self) -> None:
        """Stop the Spark session if this engine started it."""
        if self._own and self._spark is not None:
            self._spark.stop()
        self._spark = None

    # -- linked tables

    def _current(self) -> dict[str, Any] | None:
        path = export_root(self._home) / CURRENT
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        return data

    def linked_key(self) -> str | None:
        """The link key of the current export (None: never exported)."""
        current = self._current()
        return None if current is None else str(current["link_key"])

    def build(self, state: LinkState) -> list[TableInfo]:
        """Build the linked tables (DuckDB, if they are stale there) and export them for Spark."""
        duck = DuckDBEngine.open(self._settings)
        try:
            tables = catalogue(self._settings)
            if duck.linked_key() == state.key and is_fresh(tables, state):
                infos = list(tables.values())
            else:
                infos = duck.build(state)
            self._export(duck, infos, state)
        finally:
            duck.close()
        with self._lock:
            self._persons.clear()
        return infos

    def _export(self, duck: DuckDBEngine, infos: Sequence[TableInfo], state: LinkState) -> None:
        root = export_root(self._home)
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = hashlib.sha256(state.key.encode()).hexdigest()[:16] + "-" + secrets.token_hex(4)
        folder = root / name
        folder.mkdir(mode=0o700)
        con = duck.connection.cursor()
        try:
            sources: dict[str, dict[str, str]] = {}
            for info in infos:
                columns = [PERSON_ID, PERSON_NUM, *info.columns]
                if info.has_event_date:
                    columns.append(EVENT_DATE)
                target = folder / f"{info.source}.parquet"
                path = str(target).replace("'", "''")
                con.execute(
                    f"COPY (SELECT {', '.join(_q(c) for c in columns)} "
                    f"FROM {SCHEMA}.{_q(linked_name(info.source))}) "
                    f"TO '{path}' (FORMAT PARQUET)"
                )
                persons = folder / f"{info.source}.persons.roaring"
                persons.write_bytes(cohort.serialize(duck.persons(info.source)))
                sources[info.source] = {"table": target.name, "persons": persons.name}
            row = con.execute(f"SELECT max({PERSON_NUM}) FROM main.person_index").fetchall()
        finally:
            con.close()
        current = {
            "link_key": state.key,
            "folder": name,
            "max_person": int(row[0][0] or 0),
            "sources": sources,
        }
        tmp = root / f".{CURRENT}.{secrets.token_hex(4)}"
        tmp.write_text(json.dumps(current, indent=2))
        os.replace(tmp, root / CURRENT)
        # Keep the export before this one for queries that started on it; drop older ones.
        exports = sorted(
            (p for p in root.iterdir() if p.is_dir() and p.name not in ("scratch", name)),
            key=lambda p: p.stat().st_mtime,
        )
        for old in exports[:-1]:
            shutil.rmtree(old, ignore_errors=True)

    def _source(self, current: dict[str, Any], source: str) -> dict[str, str]:
        try:
            entry: dict[str, str] = current["sources"][source]
        except KeyError:
            raise GateError(f"no linked table for {source}") from None
        return entry

    def persons(self, source: str) -> BitMap:
        """Everyone in ``source``'s linked table (cached per export)."""
        current = self._current()
        if current is None:
            raise GateError("the linked tables have not been exported for Spark yet")
        key = (str(current["folder"]), source)
        with self._lock:
            cached = self._persons.get(key)
        if cached is not None:
            return cached
        entry = self._source(current, source)
        path = export_root(self._home) / str(current["folder"]) / entry["persons"]
        bitmap = BitMap.deserialize(path.read_bytes())
        with self._lock:
            self._persons[key] = bitmap
        return bitmap

    def max_person(self) -> int:
        """The largest person number in the person index the export was made from."""
        current = self._current()
        return 0 if current is None else int(current["max_person"])

    # -- queries

    @contextmanager
    def session(
        self, tables: Sequence[GatedTable], limits: Limits, key: str
    ) -> Iterator[SparkQuerySession]:
        """Gated views for one query: each linked table anti-joined to its excluded people."""
        from pyspark.sql import functions as F

        current = self._current()
        if current is None or current["link_key"] != key:
            raise GateError("the linked tables changed under the query; run it again")
        spark = self.spark
        deadline = _Deadline(limits)
        token = secrets.token_hex(6)
        group = f"candour-gate-{token}"
        folder = export_root(self._home) / str(current["folder"])
        views: dict[str, str] = {}
        context = spark.sparkContext
        context.setJobGroup(group, "candour gated query", interruptOnCancel=True)
        timer = threading.Timer(deadline.left(), context.cancelJobGroup, args=(group,))
        timer.daemon = True
        timer.start()
        try:
            for table in tables:
                entry = self._source(current, table.source)
                frame = spark.read.parquet(str(folder / entry["table"])).select(
                    *[F.col(f"`{c}`") for c in (*table.columns, PERSON_NUM)]
                )
                if len(table.excluded):
                    excluded = spark.createDataFrame(
                        pa.table(
                            {PERSON_NUM: pa.array(np.asarray(table.excluded, dtype=np.int64))}
                        ).to_pandas()
                    )
                    frame = frame.join(F.broadcast(excluded), on=PERSON_NUM, how="left_anti")
                view = f"_gq_{token}_{table.source}"
                frame.createOrReplaceTempView(view)
                views[table.source] = view
            yield SparkQuerySession(spark, views, deadline, group)
        finally:
            timer.cancel()
            for view in views.values():
                spark.catalog.dropTempView(view)
            context.setLocalProperty("spark.jobGroup.id", None)
