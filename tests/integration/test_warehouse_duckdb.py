"""The DuckDB warehouse behind the Warehouse protocol."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
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


_OPEN_IN_ANOTHER_PROCESS = (
    "import sys, time; from pathlib import Path; "
    "from candour.warehouse import DuckDBWarehouse, WarehouseError\n"
    "started = time.monotonic()\n"
    "try:\n"
    "    with DuckDBWarehouse(Path(sys.argv[1]), read_only=sys.argv[2] == 'r',"
    " wait_seconds=float(sys.argv[3])):\n"
    "        print('opened after', round(time.monotonic() - started, 2))\n"
    "except WarehouseError as e:\n    print(e)"
)


def _open_elsewhere(path: Path, mode: str, wait: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _OPEN_IN_ANOTHER_PROCESS, str(path), mode, str(wait)],
        stdout=subprocess.PIPE, text=True,
    )


def test_a_second_process_waits_its_turn_then_is_told_the_warehouse_is_busy(tmp_path: Path):
    path = tmp_path / "w.duckdb"
    with DuckDBWarehouse(path) as writer:
        writer.ensure_table("gp", {"visits": "int"}, event_date=False)
        out, _ = _open_elsewhere(path, "r", 0.5).communicate(timeout=120)
    assert "in use by another Candour process (waited 0.5 s)" in out
    # A reader waiting while a writer works gets in as soon as the writer closes.
    writer = DuckDBWarehouse(path)
    waiting = _open_elsewhere(path, "r", 60)
    time.sleep(3)
    writer.close()
    out, _ = waiting.communicate(timeout=120)
    assert out.startswith("opened after"), out
    assert float(out.split()[-1]) >= 1.0  # it really waited for the writer


def test_readers_share_the_warehouse(tmp_path: Path):
    path = tmp_path / "w.duckdb"
    DuckDBWarehouse(path).close()
    with DuckDBWarehouse(path, read_only=True), DuckDBWarehouse(path, read_only=True):
        out, _ = _open_elsewhere(path, "r", 0).communicate(timeout=120)
        assert out.startswith("opened after"), out
        out, _ = _open_elsewhere(path, "w", 0.2).communicate(timeout=120)
        assert "in use by another Candour process" in out


def test_open_warehouse_follows_the_settings(tmp_path: Path):
    home = tmp_path / "home"
    with pytest.raises(WarehouseError, match="candour init"):
        open_warehouse(Settings(home=home))
    home.mkdir()
    with open_warehouse(Settings(home=home)) as wh:
        assert wh.engine == "duckdb" and wh.tables() == []
    # Spark computes over the same stored tables: ingest under CANDOUR_ENGINE=spark still
    # writes the DuckDB warehouse that the Spark engines export from.
    with open_warehouse(Settings(home=home, engine="spark")) as wh:
        assert wh.engine == "duckdb" and wh.tables() == []
