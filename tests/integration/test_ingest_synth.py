"""The synthetic county's six extracts ingest cleanly, and linkage can read them back."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
from tests.integration.test_ingest_fixtures import footprint, initialised
from typer.testing import CliRunner

from candour.cli.main import app
from candour.config import Settings
from candour.synth import write_county
from candour.vault import IDENTITY_SCHEMA, dispose_vault, open_vault


def test_the_synthetic_county_ingests_end_to_end(sqlite_settings: Settings, tmp_path: Path):
    settings = initialised(sqlite_settings)
    county = tmp_path / "county"
    write_county(county, people=1500, seed=7, workers=1)
    result = CliRunner().invoke(
        app, ["ingest", str(county / "sources.yaml"), "--home", str(settings.home)]
    )
    assert result.exit_code == 0, result.output
    assert "gp_registrations" in result.output and "ingested" in result.output

    truth = {}
    with (county / "truth" / "records.csv").open() as handle:
        for row in csv.DictReader(handle):
            truth[f"{row['source']}:{row['record_id']}"] = row["person_key"]
    shape = footprint(settings)
    assert shape.done_batches == 6 and shape.ingest_entries == 6
    assert len(shape.warehouse_tables) == 6
    # The extracts carry deliberate errors, but fewer than the 1% that would stop a file.
    assert shape.vault_records == shape.warehouse_rows >= 0.99 * len(truth)

    vault = open_vault(settings)
    with vault.open_workspace(reason="test: linkage reads the county", actor="pytest") as ws:
        table = pa.Table.from_batches(list(ws.identity_batches()), schema=IDENTITY_SCHEMA)
    dispose_vault(settings)
    keys = set(table.column("record_key").to_pylist())
    assert keys <= set(truth)
    valid_dob = sum(table.column("date_of_birth_valid").to_pylist())
    assert valid_dob >= 0.9 * table.num_rows

    again = CliRunner().invoke(
        app, ["ingest", str(county / "sources.yaml"), "--home", str(settings.home)]
    )
    assert again.exit_code == 0
    flat = " ".join(again.output.split())  # the console wraps long lines
    assert flat.count("already ingested (same content hash)") == 6
