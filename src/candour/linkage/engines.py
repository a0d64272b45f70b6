"""The engines linkage runs on, behind one small interface: DuckDB (embedded) and Spark.

Both open a Splink database API whose spill and checkpoint files live in the workspace, and
register the prepared identity table under the same name, so the rest of linkage does not
know which engine it is talking to. DuckDB, in this process, takes the Arrow table as it is;
Spark reads it from a Parquet file in the workspace.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

from candour.config import Settings
from candour.errors import CandourError
from candour.linkage.workspace import Workspace

EngineName = Literal["duckdb", "spark"]
INPUT_TABLE = "candour_identities"


class EngineError(CandourError):
    """The requested engine cannot be started."""


@dataclass
class Engine:
    """An open engine: Splink's database API and the registered identity table."""

    name: EngineName
    db_api: Any
    identities: Any  # Splink SplinkDataFrame
    _registered: int = 0

    def next_id(self) -> int:
        """A number unique within this engine, for naming registered tables."""
        self._registered += 1
        return self._registered

    def register_arrow(self, table: Any, name: str) -> Any:
        """Register a small pyarrow table (e.g. review decisions) and return its Splink frame."""
        name = f"{name}_{self.next_id()}"
        if self.name == "duckdb":
            return self.db_api.register(table, table_name=name)
        spark = self.db_api.spark
        frame = spark.createDataFrame(table.to_pylist(), schema=_spark_schema(table))
        frame.createOrReplaceTempView(name)
        return self.db_api.register(name, table_name=f"{name}_registered")


def _spark_schema(table: Any) -> str:
    kinds = {"string": "string", "double": "double", "int64": "bigint", "int32": "int"}
    return ", ".join(f"{f.name} {kinds.get(str(f.type), 'string')}" for f in table.schema)


def _duckdb_memory_limit() -> str:
    # Leave headroom for Python and pyarrow on the same machine: three quarters of RAM, at
    # most 7 GB. A run holds little outside DuckDB while it scores (the prepared table lives
    # in DuckDB alone), so this keeps a whole run inside the 8 GB the issue allows, while a
    # million records score without spilling to the workspace disk.
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return "4GB"
    gigabytes = max(1, min(7, int(total * 0.75 / 2**30)))
    return f"{gigabytes}GB"


@contextmanager
def _duckdb(space: Workspace, table: pa.Table) -> Iterator[Engine]:
    import duckdb
    from splink import DuckDBAPI

    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET temp_directory = '{space.engine_dir}'")
        con.execute(f"SET memory_limit = '{_duckdb_memory_limit()}'")
        con.execute("SET preserve_insertion_order = false")
        # Straight from Arrow (no Parquet round trip through the workspace): the table is
        # copied into DuckDB's own storage, which every blocking and scoring pass scans.
        con.register("candour_identities_arrow", table)
        con.execute(f"CREATE TABLE {INPUT_TABLE} AS SELECT * FROM candour_identities_arrow")
        con.unregister("candour_identities_arrow")
        db_api = DuckDBAPI(connection=con)
        identities = db_api.register(INPUT_TABLE, table_name="identities")
        yield Engine("duckdb", db_api, identities)
    finally:
        con.close()


def _quiet_codegen_fallback(spark: Any) -> None:
    # Splink's scoring SQL can make a whole-stage-generated Java method larger than the JVM's
    # 64 KB limit. Spark then runs that stage interpreted, with the same results
    # (spark.sql.codegen.fallback), but first logs the compiler's stack trace, some 300 lines,
    # over the command's output. Only that logger is silenced: a stage that really fails still
    # raises, and every other error is still logged.
    log4j = spark.sparkContext._jvm.org.apache.logging.log4j
    log4j.core.config.Configurator.setLevel(
        "org.apache.spark.sql.catalyst.expressions.codegen.CodeGenerator", log4j.Level.OFF
    )


@contextmanager
def _spark(space: Workspace, table: pa.Table, master: str) -> Iterator[Engine]:
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - pyspark is a pinned dependency
        raise EngineError("the Spark engine needs pyspark; reinstall Candour") from exc
    from splink import SparkAPI
    from splink.backends.spark import similarity_jar_location

    checkpoints = space.engine_dir / "checkpoints"
    builder = (
        SparkSession.builder.appName("candour-link")
        .master(master)
        .config("spark.jars", similarity_jar_location())
        .config("spark.local.dir", str(space.engine_dir))
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.default.parallelism", "8")
        .config("spark.ui.enabled", "false")
        # Spark's console progress bars would write over the command's own progress bars.
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "2g")
        .config("spark.sql.warehouse.dir", str(space.engine_dir / "warehouse"))
    )
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # Java missing or a bad master URL: the operator can fix it
        raise EngineError(f"cannot start Spark at {master}: {exc}") from exc
    try:
        spark.sparkContext.setCheckpointDir(str(checkpoints))
        spark.sparkContext.setLogLevel("ERROR")
        _quiet_codegen_fallback(spark)
        space.write_identities(table)
        spark.read.parquet(str(space.identities)).createOrReplaceTempView(INPUT_TABLE)
        db_api = SparkAPI(spark_session=spark, break_lineage_method="parquet")
        identities = db_api.register(INPUT_TABLE, table_name="identities")
        yield Engine("spark", db_api, identities)
    finally:
        # A session per run: its local and checkpoint directories are in this workspace,
        # which is about to be removed.
        spark.stop()


@contextmanager
def open_engine(
    name: EngineName, space: Workspace, settings: Settings, identities: pa.Table
) -> Iterator[Engine]:
    """Open ``name`` over the prepared ``identities``, with its working files in ``space``."""
    if name == "duckdb":
        with _duckdb(space, identities) as engine:
            yield engine
    elif name == "spark":
        with _spark(space, identities, settings.spark_master) as engine:
            yield engine
    else:
        raise EngineError(f"unknown engine {name!r}; use duckdb or spark")
