"""The warehouse protocol: what every analytic engine (DuckDB now, Spark later) provides.

The warehouse holds pseudonymised data only: one table per source, keyed by ``record_key``
(``<source>:<record_id>``), with the source's typed attributes, its ``event_date`` when it has
one, and the ``batch_id`` that brought each row in. No direct identifier is ever written here;
ingest sends only attribute columns, and a test scans the warehouse file for identity values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, Self

import pyarrow as pa

from candour.errors import CandourError

ColumnType = Literal["date", "int", "float", "category", "text", "bool"]

# Columns every source table has, before its attributes.
KEY_COLUMNS = ("record_key", "batch_id")
EVENT_DATE = "event_date"
TABLE_NAME = re.compile(r"^[a-z0-9_]+$")
COLUMN_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class WarehouseError(CandourError):
    """The warehouse cannot do what was asked (in use, schema conflict, unknown table)."""


def arrow_type(kind: ColumnType) -> pa.DataType:
    """The Arrow type an attribute of this kind travels as."""
    return {
        "date": pa.date32(),
        "int": pa.int64(),
        "float": pa.float64(),
        "category": pa.string(),
        "text": pa.string(),
        "bool": pa.bool_(),
    }[kind]


def check_table_name(name: str) -> str:
    """Refuse a table name that is not a source name (they are quoted, but keep them plain)."""
    if not TABLE_NAME.match(name):
        raise WarehouseError(f"invalid table name {name!r}: must match [a-z0-9_]+")
    return name


def check_column_name(name: str) -> str:
    """Refuse a column name that is not a plain attribute name."""
    if not COLUMN_NAME.match(name):
        raise WarehouseError(f"invalid column name {name!r}: must match [a-z][a-z0-9_]*")
    return name


class Warehouse(Protocol):
    """One analytic engine's view of the warehouse. Implementations: ``DuckDBWarehouse``."""

    engine: str

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def close(self) -> None:
        """Release the engine (connections, locks)."""
        ...

    def tables(self) -> list[str]:
        """The source tables, sorted."""
        ...

    def columns(self, table: str) -> dict[str, str]:
        """A table's columns and their engine types, in order."""
        ...

    def ensure_table(
        self, table: str, attributes: Mapping[str, ColumnType], *, event_date: bool
    ) -> None:
        """Create the table, or add attribute columns it lacks; refuse a changed type."""
        ...

    def append(self, table: str, data: pa.Table | pa.RecordBatchReader) -> int:
        """Insert rows (columns by name; absent attributes are null) atomically; return count."""
        ...

    def delete_batch(self, table: str, batch_id: int) -> int:
        """Remove a batch's rows (ingest's rollback); return how many were removed."""
        ...

    def batch_ids(self, table: str) -> set[int]:
        """The batches that have rows in ``table``."""
        ...

    def record_keys(self, table: str) -> pa.Table:
        """Every ``record_key`` in ``table`` (one string column)."""
        ...

    def count(self, table: str) -> int:
        """How many rows ``table`` has (0 if it does not exist)."""
        ...

    def query(self, sql: str, parameters: Sequence[Any] | None = None) -> pa.Table:
        """Run SQL and return the result as Arrow."""
        ...
