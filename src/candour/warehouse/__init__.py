"""The warehouse: pseudonymised attributes keyed by ``record_key``, behind one small protocol.

``open_warehouse(settings)`` gives the engine named by ``settings.engine``; only DuckDB exists
so far (Spark will implement the same :class:`Warehouse` protocol).
"""

from __future__ import annotations

from candour.config import Settings
from candour.home import Home
from candour.warehouse.base import (
    EVENT_DATE,
    KEY_COLUMNS,
    ColumnType,
    Warehouse,
    WarehouseError,
    arrow_type,
)
from candour.warehouse.duckdb import DuckDBWarehouse

__all__ = [
    "EVENT_DATE",
    "KEY_COLUMNS",
    "ColumnType",
    "DuckDBWarehouse",
    "Warehouse",
    "WarehouseError",
    "arrow_type",
    "open_warehouse",
]


def open_warehouse(settings: Settings, *, read_only: bool = False) -> Warehouse:
    """The warehouse of the data home named by ``settings``, with its configured engine."""
    if settings.engine == "spark":
        raise WarehouseError("the Spark warehouse engine is not available yet; use duckdb")
    home = Home(settings.home)
    if not home.root.is_dir():
        raise WarehouseError(f"{home.root} does not exist; run `candour init --home {home.root}`")
    return DuckDBWarehouse(home.warehouse, read_only=read_only)
