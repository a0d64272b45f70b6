"""The warehouse: pseudonymised attributes keyed by ``record_key``, behind one small protocol.

The warehouse's storage (the system of record that ingest writes) is always DuckDB files in the
data home. ``settings.engine`` picks the *compute* engine for linkage, the gate and studies: with
``spark``, those read Parquet exports of the warehouse's tables on a Spark cluster (see
:mod:`candour.gate.spark` and :mod:`candour.linkage.engines`), so the same data home serves both.
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
    """The warehouse of the data home named by ``settings`` (its DuckDB storage, whatever engine
    computes over it)."""
    home = Home(settings.home)
    if not home.root.is_dir():
        raise WarehouseError(f"{home.root} does not exist; run `candour init --home {home.root}`")
    return DuckDBWarehouse(
        home.warehouse, read_only=read_only, wait_seconds=settings.warehouse_wait_seconds
    )
