"""The DuckDB warehouse behind the Warehouse protocol."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from candour.config import Settings
from candour.warehouse import DuckDBWarehouse, Warehouse, WarehouseError, open_warehouse


def _rows(keys: list[str], batch: int) -> pa.Table:
    return pa.table(
        {
            "record_key": keys,
            "batch_id": [batch] * len(keys),
            "event_date": [dt.date(2024, 1, 1)] * len(keys),
            "visits": list(range(len(keys))),
        }
    )


def test_tables_batches_and_rollback(tmp_path: Path):
    with DuckDBWarehouse(tmp_path / "w.duckdb") as warehouse:
        wh: Warehouse = warehouse
        wh.ensure_table("gp", {"visits": "int", "practice": "category"}, event_date=True)
        assert wh.columns("gp") == {
            "record_key": "VARCHAR",
            "batch_id": "BIGINT",
            "event_date": "DATE",
            "visits": "BIGINT",
            "practice": "VARCHAR",
        }
        assert wh.append("gp", _rows(["gp:1", "gp:2"], 1)) == 2
        assert wh.append("gp", _rows(["gp:3"], 2)) == 1
        assert wh.batch_ids("gp") == {1, 2} and wh.count("gp") == 3
        assert sorted(wh.record_keys("gp").column("record_key").to_pylist()) == [
            "gp:1", "gp:2", "gp:3"
        ]
        # Absent attribute columns are null.
        assert wh.query("SELECT count(practice) AS n FROM gp").column("n").to_pylist() == [0]
        assert wh.delete_batch("gp", 1) == 2
        assert wh.batch_ids("gp") == {2}
        assert wh.delete_batch("nope", 1) == 0 and wh.count("nope") == 0
    assert os.stat(tmp_path / "w.duckdb").st_mode & 0o777 == 0o600


def test_new_attributes_widen_the_table_and_changed_types_are_refused(tmp_path: Path):
    with DuckDBWarehouse(tmp_path / "w.duckdb") as wh:
        wh.ensure_table("gp", {"visits": "int"}, event_date=False)
        wh.ensure_table("gp", {"visits": "int", "band": "category"}, event_date=False)
        assert list(wh.columns("gp")) == ["record_key", "batch_id", "visits", "band"]
        with pytest.raises(WarehouseError, match="'visits' as BIGINT.*now declares it as DATE"):
            wh.ensure_table("gp", {"visits": "date"}, event_date=False)


def test_names_are_checked(tmp_path: Path):
    with DuckDBWarehouse(tmp_path / "w.duckdb") as wh:
        with pytest.raises(WarehouseError, match="invalid table name"):
            wh.ensure_table('gp"; DROP TABLE x; --', {}, event_date=False)
        with pytest.raises(WarehouseError, match="invalid column name"):
            wh.ensure_table("gp", {"Bad Name": "int"}, event_date=False)


def test_a_failed_append_leaves_nothing(tmp_path: Path):
    with DuckDBWarehouse(tmp_path / "w.duckdb") as wh:
        wh.ensure_table("gp", {"visits": "int"}, event_date=False)
        bad = pa.table({"record_key": ["gp:1"], "batch_id": [1], "nope": [1]})
        with pytest.raises(Exception):  # noqa: B017 - DuckDB's binder error
            wh.append("gp", bad)
        assert wh.count("gp") == 0


def test_a_second_process_is_told_the_warehouse_is_busy(tmp_path: Path):
    path = tmp_path / "w.duckdb"
    with DuckDBWarehouse(path):
        code = (
            "import sys; from pathlib import Path; "
            "from candour.warehouse import DuckDBWarehouse, WarehouseError\n"
            "try:\n    DuckDBWarehouse(Path(sys.argv[1]))\n"
            "except WarehouseError as e:\n    print(e)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
        )
    assert "in use by another Candour process" in out.stdout


def test_open_warehouse_follows_the_settings(tmp_path: Path):
    home = tmp_path / "home"
    with pytest.raises(WarehouseError, match="candour init"):
        open_warehouse(Settings(home=home))
    home.mkdir()
    with pytest.raises(WarehouseError, match="Spark"):
        open_warehouse(Settings(home=home, engine="spark"))
    with open_warehouse(Settings(home=home)) as wh:
        assert wh.engine == "duckdb" and wh.tables() == []
