"""Bad input: each case gives a clear error naming the place, and writes nothing at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.integration.test_ingest_fixtures import (
    HEADER,
    ROWS,
    footprint,
    initialised,
    run_ingest,
    write_extract,
)
from typer.testing import CliRunner

from candour.cli.main import app
from candour.config import Settings
from candour.errors import CandourError


@pytest.fixture
def settings(store_settings: Settings) -> Settings:
    return initialised(store_settings)


def _fails(spec: Path, settings: Settings, *fragments: str) -> str:
    with pytest.raises(CandourError) as caught:
        run_ingest(spec, settings)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    assert footprint(settings).empty(), footprint(settings)
    return message


def test_wrong_encoding_names_file_and_line(settings: Settings, tmp_path: Path):
    # Written in cp1252, declared UTF-8: the first non-ASCII byte is on line 2 (Zoë).
    spec = write_extract(tmp_path / "x", encoding="cp1252", declared_encoding="utf-8")
    _fails(spec, settings, "gp.csv: line 2: not valid utf-8 (byte 0xeb)", "csv.encoding")


def test_utf8_declared_as_cp1252_is_refused(settings: Settings, tmp_path: Path):
    spec = write_extract(tmp_path / "x", encoding="utf-8", declared_encoding="cp1252")
    _fails(spec, settings, "gp.csv: the file is declared cp1252 but is UTF-8")


def test_missing_column_names_the_column_and_yaml_field(settings: Settings, tmp_path: Path):
    header = HEADER.replace("surname", "last_name")
    spec = write_extract(tmp_path / "x", header=header)
    _fails(
        spec, settings,
        "gp.csv: line 1: column 'surname' (sources.yaml gp.identity.family_name) is missing",
    )


def test_wrong_delimiter_is_explained(settings: Settings, tmp_path: Path):
    spec = write_extract(tmp_path / "x", delimiter=";")
    spec.write_text(spec.read_text().replace('delimiter: ";"', 'delimiter: ","'))
    _fails(spec, settings, "line 1: the header has one column", "contains ';'")


def test_duplicate_record_ids_are_reported_with_their_lines(settings: Settings, tmp_path: Path):
    rows = [*ROWS, ROWS[1].replace("Bob", "Robert")]
    spec = write_extract(tmp_path / "x", rows)
    message = _fails(
        spec, settings,
        "gp.csv: 2 of 6 rows (33.3%) are bad, over the 1% limit; nothing was ingested",
        "record_id (column 'patient_id'): the record id appears more than once (first at line 3)",
    )
    assert "quarantine" in message


def test_malformed_dates_name_file_line_and_field(settings: Settings, tmp_path: Path):
    rows = [r.replace("2021-03-04", "04/03/2021") for r in ROWS]
    spec = write_extract(tmp_path / "x", rows)
    _fails(
        spec, settings,
        "1 of 5 rows (20.0%) are bad",
        "attributes.registered_on (column 'registered'): not a date in the format %Y-%m-%d "
        "(first at line 3)",
    )


def test_an_empty_file(settings: Settings, tmp_path: Path):
    spec = write_extract(tmp_path / "x")
    (tmp_path / "x" / "gp.csv").write_bytes(b"")
    _fails(spec, settings, "gp.csv: the file is empty")


def test_a_header_only_file(settings: Settings, tmp_path: Path):
    spec = write_extract(tmp_path / "x", rows=[])
    _fails(spec, settings, "gp.csv: the file has a header but no data rows")


def test_a_10_mb_field(settings: Settings, tmp_path: Path):
    huge = "x" * (10 * 1024 * 1024)
    rows = [*ROWS[:2], ROWS[2].replace("Rue X", huge), *ROWS[3:]]
    spec = write_extract(tmp_path / "x", rows)
    _fails(
        spec, settings,
        "1 of 5 rows (20.0%) are bad",
        "the line is 10.5 MB, over the limit of 1,048,576 bytes",
        "first at line 4",
    )


def test_an_unclosed_quote_stops_the_file(settings: Settings, tmp_path: Path):
    rows = [*ROWS[:2], ROWS[2].replace("Rue X", '"Rue X'), *ROWS[3:]]
    spec = write_extract(tmp_path / "x", rows)
    _fails(spec, settings, "gp.csv: line 4: a quoted value is never closed")


def test_an_unknown_yaml_key_names_the_line_and_path(settings: Settings, tmp_path: Path):
    spec = write_extract(tmp_path / "x")
    spec.write_text(spec.read_text().replace("    record_id:", "    shoe_size: 9\n    record_id:"))
    _fails(spec, settings, "sources.yaml: line 8: sources[0].shoe_size: unknown key")


def test_a_bad_file_among_good_ones_stops_before_anything_is_written(
    settings: Settings, tmp_path: Path
):
    spec = write_extract(tmp_path / "x")
    write_extract(tmp_path / "x", rows=[], name="gp2.csv", files="gp*.csv")
    (tmp_path / "x" / "gp2.csv").write_bytes(b"patient_id\nP9\n")
    _fails(spec, settings, "gp2.csv: line 1: column 'forename'")


def test_the_cli_prints_one_line_and_exits_2(sqlite_settings: Settings, tmp_path: Path):
    settings = initialised(sqlite_settings)
    spec = write_extract(tmp_path / "x", rows=[])
    result = CliRunner().invoke(app, ["ingest", str(spec), "--home", str(settings.home)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "the file has a header but no data rows" in result.output
