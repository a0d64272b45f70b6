"""Invariant 1: no identity value from the vault appears anywhere in the warehouse."""

from __future__ import annotations

from pathlib import Path

import duckdb
from tests.integration.test_ingest_fixtures import initialised, run_ingest, write_extract

from candour.config import Settings
from candour.vault import dispose_vault, open_vault

# Sex codes ("F", "M") and other very short values occur in any binary file by chance; they
# are still checked against every cell of every table.
MIN_BYTES_SCANNED = 4


def _identity_values(settings: Settings) -> set[str]:
    vault = open_vault(settings)
    values: set[str] = set()
    with vault.open_workspace(reason="test: invariant scan of warehouse", actor="pytest") as ws:
        for record in ws.identities():
            values.update(v for v in record.values().values() if v)
            values.update(v for v in record.raw.values() if v)
    dispose_vault(settings)
    return values


def test_no_identity_value_reaches_the_warehouse(store_settings: Settings, tmp_path: Path):
    settings = initialised(store_settings)
    rows = [
        f"R{i:04d},Forename{i:04d}ä,Surname{i:04d},{1 + i % 28:02d}/0{1 + i % 9}/19{50 + i % 49},"
        f"{'F' if i % 2 else 'M'},TN{i % 9 + 1} {i % 9}AB,{i} Acacia Avenue{i},Townville{i % 7},"
        f"943 476 5919,PNC{i:05d}X,2023-01-{1 + i % 28:02d},PRACTICE-CODE-{i % 5},{i % 13},Y"
        for i in range(300)
    ]
    spec = write_extract(tmp_path / "x", rows)
    report = run_ingest(spec, settings)
    assert report.results[0].rows_accepted == 300

    values = _identity_values(settings)
    # The scan means something only if it covers every kind of identity value.
    assert {"forename0001a", "Forename0001ä", "9434765919", "943 476 5919", "TN2 1AB"} <= values
    assert any(v.startswith("PNC") for v in values)

    path = settings.home / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CHECKPOINT")
    cells: set[str] = set()
    for (table,) in con.execute("SHOW TABLES").fetchall():
        columns = [r[0] for r in con.execute(f'DESCRIBE "{table}"').fetchall()]
        for column in columns:
            cells.update(
                str(r[0])
                for r in con.execute(f'SELECT DISTINCT "{column}"::VARCHAR FROM "{table}"')
                .fetchall()
                if r[0] is not None
            )
    con.close()
    assert "gp:R0001" in cells and "PRACTICE-CODE-1" in cells  # the scan sees the data

    leaked_cells = {c for c in cells if c in values}
    assert leaked_cells == set()
    contained = {v for v in values if len(v) >= MIN_BYTES_SCANNED for c in cells if v in c}
    assert contained == set()

    raw = b"".join(p.read_bytes() for p in path.parent.glob("warehouse.duckdb*"))
    # Positive control: attribute values and keys are visible to a byte scan of this file.
    assert b"PRACTICE-CODE-1" in raw and b"gp:R0001" in raw
    leaked_bytes = {
        v for v in values if len(v.encode()) >= MIN_BYTES_SCANNED and v.encode() in raw
    }
    assert leaked_bytes == set()
