"""The DuckDB warehouse: one file, ``<home>/warehouse.duckdb``, the embedded default engine."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import duckdb
import pyarrow as pa

from candour.warehouse.base import (
    EVENT_DATE,
    ColumnType,
    WarehouseError,
    check_column_name,
    check_table_name,
)

SQL_TYPES: dict[str, str] = {
    "date": "DATE",
    "int": "BIGINT",
    "float": "DOUBLE",
    "category": "VARCHAR",
    "text": "VARCHAR",
    "bool": "BOOLEAN",
}
FILE_MODE = 0o600
DEFAULT_WAIT_SECONDS = 60.0


class _FileLocks:
    """Readers share the warehouse, a writer has it alone, across processes, and they wait.

    DuckDB refuses at once to open a file that another process holds for writing (and a writer
    while readers hold it), so without this the portal's reads fail whenever an ingest or a
    query is running. An ``flock`` on a side file makes them take turns instead. Within one
    process DuckDB shares one database between connections, so a process that already holds the
    lock nests (counted) rather than waiting on itself.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held: dict[str, list[int]] = {}  # path -> [fd, count]
        os.register_at_fork(after_in_child=self._forget_after_fork)

    def acquire(self, path: Path, *, exclusive: bool, wait: float) -> None:
        key = str(path)
        with self._mutex:
            held = self._held.get(key)
            if held is not None:
                held[1] += 1
                return
            fd = os.open(key, os.O_RDWR | os.O_CREAT, FILE_MODE)
            mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, mode)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        os.close(fd)
                        raise WarehouseError(
                            f"the warehouse {path.with_suffix('')} is in use by another Candour "
                            f"process (waited {wait:g} s); try again when it has finished"
                        ) from None
                    time.sleep(0.05)
            self._held[key] = [fd, 1]

    def release(self, path: Path) -> None:
        key = str(path)
        with self._mutex:
            held = self._held.get(key)
            if held is None:
                return
            held[1] -= 1
            if held[1] == 0:
                del self._held[key]
                fcntl.flock(held[0], fcntl.LOCK_UN)
                os.close(held[0])

    def _forget_after_fork(self) -> None:
        # A forked child shares the parent's lock; closing its copy (not unlocking) leaves the
        # parent's hold intact, and the child takes its own when it opens the warehouse.
        for fd, _count in self._held.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._held = {}
        self._mutex = threading.Lock()


_LOCKS = _FileLocks()


def lock_path(path: Path) -> Path:
    """The side file whose ``flock`` orders the processes using the warehouse ``path``."""
    return path.with_name(path.name + ".lock")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DuckDBWarehouse:
    """The warehouse in one DuckDB file. One process at a time may open it for writing."""

    engine = "duckdb"

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool = False,
        threads: int | None = None,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
    ):
        self.path = path
        new = not path.exists()
        config: dict[str, Any] = {}
        if threads:
            config["threads"] = threads
        self._lock = lock_path(path)
        _LOCKS.acquire(self._lock, exclusive=not read_only, wait=wait_seconds)
        try:
            self._con = duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.IOException as exc:
            _LOCKS.release(self._lock)
            if "lock" in str(exc).lower():
                # A process that does not take our lock (an old Candour, or DuckDB's own CLI).
                raise WarehouseError(
                    f"the warehouse {path} is in use by another process; try again "
                    "when it has finished"
                ) from exc
            raise WarehouseError(f"cannot open the warehouse {path}: {exc}") from exc
        except BaseException:
            _LOCKS.release(self._lock)
            raise
        self._closed = False
        if new and not read_only:
            os.chmod(path, FILE_MODE)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Checkpoint and close the file, then let the next process in."""
        if self._closed:
            return
        self._closed = True
        try:
            self._con.close()
        finally:
            _LOCKS.release(self._lock)

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection (for the engine-specific code of linkage and the gate)."""
        return self._con

    def tables(self) -> list[str]:
        """The source tables, sorted."""
        rows = self._con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY table_name"
        ).fetchall()
        return [row[0] for row in rows]

    def columns(self, table: str) -> dict[str, str]:
        """A table's columns and their DuckDB types, in order ({} if it does not exist)."""
        rows = self._con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
            [check_table_name(table)],
        ).fetchall()
        return {name: kind for name, kind in rows}

    def ensure_table(
        self, table: str, attributes: Mapping[str, ColumnType], *, event_date: bool
    ) -> None:
        """Create the table, or add the attribute columns it lacks; refuse a changed type."""
        check_table_name(table)
        wanted: dict[str, str] = {"record_key": "VARCHAR", "batch_id": "BIGINT"}
        if event_date:
            wanted[EVENT_DATE] = "DATE"
        for name, attribute_type in attributes.items():
            wanted[check_column_name(name)] = SQL_TYPES[attribute_type]
        existing = self.columns(table)
        if not existing:
            body = ", ".join(f"{_quote(name)} {kind}" for name, kind in wanted.items())
            # No PRIMARY KEY: ingest guarantees unique record keys (it quarantines repeats and
            # ids seen in earlier batches), and the index would cost more than the insert.
            self._con.execute(f"CREATE TABLE {_quote(table)} ({body})").fetchall()
            return
        for name, kind in wanted.items():
            held = existing.get(name)
            if held is None:
                self._con.execute(
                    f"ALTER TABLE {_quote(table)} ADD COLUMN {_quote(name)} {kind}"
                ).fetchall()
            elif held != kind:
                raise WarehouseError(
                    f"warehouse table {table!r} has column {name!r} as {held}, but the source now "
                    f"declares it as {kind}; rename the attribute or migrate the table"
                )

    def append(self, table: str, data: pa.Table | pa.RecordBatchReader) -> int:
        """Insert rows by column name, in one transaction; return how many were inserted."""
        check_table_name(table)
        name = "_candour_incoming"
        self._con.register(name, data)
        try:
            self._con.execute("BEGIN TRANSACTION").fetchall()
            try:
                row = self._con.execute(
                    f"INSERT INTO {_quote(table)} BY NAME SELECT * FROM {name}"
                ).fetchall()
                self._con.execute("COMMIT").fetchall()
            except BaseException:
                self._con.execute("ROLLBACK").fetchall()
                raise
        finally:
            self._con.unregister(name)
        return int(row[0][0]) if row else 0

    def delete_batch(self, table: str, batch_id: int) -> int:
        """Remove one batch's rows; returns how many were removed (0 if no such table)."""
        if "batch_id" not in self.columns(table):
            return 0
        row = self._con.execute(
            f"DELETE FROM {_quote(table)} WHERE batch_id = ?", [batch_id]
        ).fetchall()
        return int(row[0][0]) if row else 0

    def batch_ids(self, table: str) -> set[int]:
        """The batches with rows in ``table``."""
        if "batch_id" not in self.columns(table):
            return set()
        rows = self._con.execute(f"SELECT DISTINCT batch_id FROM {_quote(table)}").fetchall()
        return {int(row[0]) for row in rows}

    def record_keys(self, table: str) -> pa.Table:
        """Every record key in ``table``, as a one-column Arrow table."""
        if table not in self.tables():
            return pa.table({"record_key": pa.array([], pa.string())})
        return self._con.sql(f"SELECT record_key FROM {_quote(table)}").to_arrow_table()

    def count(self, table: str) -> int:
        """Rows in ``table`` (0 if it does not exist)."""
        if table not in self.tables():
            return 0
        row = self._con.execute(f"SELECT count(*) FROM {_quote(table)}").fetchall()
        return int(row[0][0]) if row else 0

    def query(self, sql: str, parameters: Sequence[Any] | None = None) -> pa.Table:
        """Run SQL and return the result as an Arrow table."""
        return self._con.sql(sql, params=list(parameters) if parameters else None).to_arrow_table()

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the file (so a backup of the file is complete)."""
        self._con.execute("CHECKPOINT").fetchall()
