"""Ingest end to end on a hand-written extract: where each value goes, batches, re-ingest."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import select
from tests.integration.test_ingest_fixtures import (
    ROWS,
    footprint,
    initialised,
    run_ingest,
    write_extract,
)

from candour import ledger
from candour.config import Settings
from candour.sources.standardise import standardise_value
from candour.store import IngestBatch, transaction
from candour.store.ingest import VaultAccess
from candour.vault import dispose_vault, open_vault


@pytest.fixture
def settings(store_settings: Settings) -> Settings:
    return initialised(store_settings)


def test_ingest_splits_identity_to_vault_and_attributes_to_warehouse(
    settings: Settings, tmp_path: Path
):
    spec = write_extract(tmp_path / "extract")
    report = run_ingest(spec, settings)

    [result] = report.results
    assert (result.status, result.rows_read, result.rows_accepted) == ("ingested", 5, 5)
    assert result.rows_quarantined == 0 and result.quarantine_file is None
    assert result.ledger_index is not None

    # The warehouse: typed attributes and event_date, keyed by record_key, no identity.
    con = duckdb.connect(str(settings.home / "warehouse.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT record_key, batch_id, event_date::VARCHAR, registered_on::VARCHAR, practice, "
        "visits, housebound FROM gp ORDER BY record_key"
    ).fetchall()
    columns = [r[0] for r in con.execute("DESCRIBE gp").fetchall()]
    con.close()
    assert columns == [
        "record_key", "batch_id", "event_date", "registered_on", "practice", "visits",
        "housebound",
    ]
    assert rows[0] == ("gp:P001", result.batch_id, "2020-01-05", "2020-01-05", "G81001", 3, True)
    assert rows[1][5:] == (None, False)  # blank int stays null; "N" is false
    assert [r[0] for r in rows] == [f"gp:P00{i}" for i in range(1, 6)]

    # The vault: standardised identity, raw values kept, flags set.
    vault = open_vault(settings)
    with vault.open_workspace(reason="test: read back the ingested gp", actor="pytest") as ws:
        records = {r.record_key: r for r in ws.identities()}
    zoe = records["gp:P001"]
    assert (zoe.given_name, zoe.family_name, zoe.sex) == ("zoe", "obrien", "F")
    assert (zoe.date_of_birth, zoe.postcode, zoe.nhs_number) == (
        "1980-02-03", "SW1A 1AA", "9434765919"
    )
    assert zoe.address == "12 acacia avenue london"
    assert zoe.identifiers == {"pnc": "991234A"}
    assert zoe.raw["given_name"] == "Zoë" and zoe.raw["nhs_number"] == "943 476 5919"
    assert zoe.date_of_birth_valid and zoe.postcode_valid and zoe.nhs_number_valid
    ana = records["gp:P003"]
    # A date in another format and a foreign postcode are kept as cleaned text, flagged.
    assert (ana.date_of_birth, ana.date_of_birth_valid) == ("1975 12 31", False)
    assert (ana.postcode, ana.postcode_valid) == ("75001", False)
    assert ana.nhs_number is None and not ana.nhs_number_valid
    assert records["gp:P005"].address == "4 the gardens ashford"
    assert records["gp:P005"].given_name == "mary ann"

    # Exact look-up by NHS number through the keyed index.
    found = vault.lookup(
        "nhs_number", [standardise_value("nhs_number", "401 023 2137")],
        reason="test: national opt-out match", actor="pytest",
    )
    assert found == {"4010232137": ["gp:P002"]}
    dispose_vault(settings)

    # The ledger entry: source, file hash, counts; the batch is done and points at it.
    entry = json.loads(ledger.entry(result.ledger_index, settings=settings))
    assert entry["kind"] == "ingest" and entry["source"] == "gp"
    assert entry["rows"] == 5 and entry["rejected"] == 0
    with transaction(settings) as session:
        batch = session.get(IngestBatch, result.batch_id)
        assert batch is not None
        assert (batch.status, batch.ledger_index) == ("done", result.ledger_index)
        assert entry["file_hash"] == batch.content_sha256
        # Both reads were recorded before anything was decrypted, with their reasons.
        accesses = session.scalars(select(VaultAccess).order_by(VaultAccess.id)).all()
        assert [(a.operation, a.records) for a in accesses] == [("identities", 5), ("lookup", 1)]
        assert accesses[0].reason == "test: read back the ingested gp"


def test_reingesting_the_same_file_does_nothing_and_says_so(settings: Settings, tmp_path: Path):
    spec = write_extract(tmp_path / "extract")
    first = run_ingest(spec, settings).results[0]
    before = footprint(settings)
    again = run_ingest(spec, settings).results[0]
    assert again.status == "already ingested"
    assert again.batch_id == first.batch_id
    assert footprint(settings) == before


def test_a_new_file_for_a_source_is_a_new_batch(settings: Settings, tmp_path: Path):
    spec = write_extract(tmp_path / "extract")
    first = run_ingest(spec, settings).results[0]
    more = [
        "P006,Carl,Jung,26/07/1975,M,TN2 3AB,1 Lake Rd,Kent,4505577104,,2023-01-01,G81001,1,N"
    ]
    write_extract(tmp_path / "extract", more, name="gp2.csv", files="gp*.csv")
    report = run_ingest(spec, settings)
    statuses = sorted((r.file, r.status) for r in report.results)
    assert statuses == [("gp.csv", "already ingested"), ("gp2.csv", "ingested")]
    second = next(r for r in report.results if r.file == "gp2.csv")
    assert second.batch_id != first.batch_id
    shape = footprint(settings)
    assert (shape.done_batches, shape.vault_records, shape.warehouse_rows) == (2, 6, 6)
    assert shape.ingest_entries == 2


def test_a_record_id_seen_in_an_earlier_batch_is_quarantined(settings: Settings, tmp_path: Path):
    spec = write_extract(tmp_path / "extract")
    run_ingest(spec, settings)
    # A second file re-sending P001 among 200 new rows: that one row is quarantined.
    fresh = [
        f"N{i:04d},Name{i},Surname,01/01/1990,F,TN1 1AA,1 Road,Town,,,2023-01-01,G1,1,N"
        for i in range(200)
    ]
    write_extract(tmp_path / "extract", [ROWS[0], *fresh], name="gp2.csv", files="gp*.csv")
    report = run_ingest(spec, settings)
    second = next(r for r in report.results if r.file == "gp2.csv")
    assert (second.rows_accepted, second.rows_quarantined) == (200, 1)
    assert second.quarantine_file is not None
    text = second.quarantine_file.read_text()
    assert "line,record_id,field,column,reason,value" in text
    assert "2,P001,record_id,patient_id,the record id was ingested in an earlier batch" in text


def test_quarantine_below_the_threshold_keeps_good_rows_and_never_writes_identities(
    settings: Settings, tmp_path: Path
):
    good = [
        f"G{i:04d},Name{i},Surname,01/01/1990,F,TN1 1AA,1 Road,Town,,,2023-01-01,G1,1,N"
        for i in range(199)
    ]
    bad = "B0001,Secret,Person,01/01/1990,F,TN1 1AA,1 Road,Town,,,2023-13-45,G1,=1+2,N"
    spec = write_extract(tmp_path / "extract", [*good[:100], bad, *good[100:]])
    result = run_ingest(spec, settings).results[0]
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (200, 199, 1)
    assert result.quarantine_file is not None
    assert result.quarantine_file.stat().st_mode & 0o777 == 0o600
    text = result.quarantine_file.read_text()
    lines = text.strip().splitlines()
    # Two problems on line 102 (header is line 1): the date and the number.
    assert lines[1:] == [
        "102,B0001,attributes.registered_on,registered,not a date in the format %Y-%m-%d,"
        "2023-13-45",
        "102,B0001,attributes.visits,visits,not a whole number,'=1+2",
    ]
    assert "Secret" not in text and "Person" not in text


def test_a_semicolon_cp1252_extract_is_read_as_declared(settings: Settings, tmp_path: Path):
    spec = write_extract(tmp_path / "extract", encoding="cp1252", delimiter=";")
    result = run_ingest(spec, settings).results[0]
    assert result.rows_accepted == 5
    vault = open_vault(settings)
    with vault.open_workspace(reason="test: check cp1252 decoding", actor="pytest") as ws:
        names = {r.record_key: r.raw.get("given_name") for r in ws.identities()}
    dispose_vault(settings)
    assert names["gp:P001"] == "Zoë" and names["gp:P004"] == "Siobhán"


def test_only_the_named_source_is_ingested(settings: Settings, tmp_path: Path):
    spec = write_extract(tmp_path / "extract")
    with pytest.raises(Exception, match="no source called 'nope'"):
        run_ingest(spec, settings, source="nope")
    assert run_ingest(spec, settings, source="gp").results[0].rows_accepted == 5


def test_a_parquet_extract_with_typed_dates(settings: Settings, tmp_path: Path):
    directory = tmp_path / "pq"
    spec = write_extract(directory)
    con = duckdb.connect()
    # Dates as real DATE columns: the declared format is used to render them for parsing.
    con.execute(
        f"""COPY (SELECT * REPLACE (strptime(dob, '%d/%m/%Y')::DATE AS dob,
                                     registered::DATE AS registered)
                  FROM read_csv('{directory / "gp.csv"}', all_varchar = true)
                  WHERE patient_id <> 'P003')
            TO '{directory / "gp.parquet"}' (FORMAT parquet)"""
    )
    con.close()
    spec.write_text(spec.read_text().replace("files: [gp.csv]", "files: [gp.parquet]"))
    result = run_ingest(spec, settings).results[0]
    assert (result.rows_read, result.rows_accepted) == (4, 4)
    vault = open_vault(settings)
    with vault.open_workspace(reason="test: parquet read back", actor="pytest") as ws:
        zoe = ws.records(["gp:P001"])[0]
    dispose_vault(settings)
    assert zoe.date_of_birth == "1980-02-03" and zoe.date_of_birth_valid
    con = duckdb.connect(str(settings.home / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT event_date::VARCHAR, visits FROM gp WHERE record_key = 'gp:P001'"
                       ).fetchall() == [("2020-01-05", 3)]
    con.close()
