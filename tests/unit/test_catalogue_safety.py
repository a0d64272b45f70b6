"""The publish check and the file writers, on small tables: what is refused, what passes,
how cells are typed, and that CSV cells cannot run as spreadsheet formulas."""

from __future__ import annotations

import pandas as pd
import pytest

from candour.catalogue import PublishRefused, check_publishable
from candour.catalogue.files import csv_bytes, describe, infer_datatype, json_bytes, typed
from candour.catalogue.safety import is_nhs_number, normalise_column


def table(**columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns, dtype=str)


SENSORS = table(
    sensor_id=["WGR-01-01", "WGR-01-02"],
    route=["A21 Primary", "B2067 Secondary"],
    timestamp=["2024-11-01T00:00:00Z", "2024-11-01T01:00:00Z"],
    district=["TN1", "ME15"],  # a postcode district is not an address
    road_surface_temp_c=["-1.5", "0.3"],
)


def test_non_personal_data_passes():
    check_publishable(SENSORS)


@pytest.mark.parametrize(
    "column", ["person_id", "Person ID", "record_key", "NHS Number", "date_of_birth", "postcode",
               "email", "UPRN", "household_id", "case_ref"],
)  # fmt: skip
def test_person_level_and_identifying_columns_are_refused(column: str):
    with pytest.raises(PublishRefused, match="identifying column"):
        check_publishable(SENSORS.assign(**{column: ["a", "b"]}))


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ("P-ABCDEFGHJKMN", "a person id"),
        ("council_tax:CT-0001", "a record key"),
        ("9434765919", "an NHS number"),
        ("943 476 5919", "an NHS number"),
        ("SW1A 1AA", "a full postcode"),
        ("me15 6xy", "a full postcode"),
        ("a.person@example.gov.uk", "an e-mail address"),
    ],
)
def test_identifying_values_are_refused_in_any_column(value: str, what: str):
    with pytest.raises(PublishRefused, match=what):
        check_publishable(SENSORS.assign(route=["A21 Primary", value]))


def test_nhs_numbers_need_a_valid_check_digit():
    assert is_nhs_number("9434765919") and not is_nhs_number("9434765918")
    assert not is_nhs_number("943476591") and not is_nhs_number("94347659190")
    check_publishable(SENSORS.assign(route=["A21", "9434765918"]))  # not a valid NHS number


def test_counts_below_the_threshold_zero_or_not_whole_are_refused():
    good = table(area=["North", "South", "East"], n=["[c]", "15", "10"])
    check_publishable(good, count_columns=["n"], threshold=10, key_columns=["area"])
    for bad, message in [
        (["9", "15", "10"], "below the threshold of 10"),
        (["0", "15", "10"], "below the threshold of 10"),
        (["12.5", "15", "10"], "not a whole number"),
        (["many", "15", "10"], "not a whole number"),
    ]:
        with pytest.raises(PublishRefused, match=message):
            check_publishable(good.assign(n=bad), count_columns=["n"], threshold=10)


def test_a_repeated_group_or_an_empty_file_is_refused():
    repeated = table(area=["North", "North"], n=["15", "20"])
    with pytest.raises(PublishRefused, match="appears more than once"):
        check_publishable(repeated, count_columns=["n"], threshold=10, key_columns=["area"])
    with pytest.raises(PublishRefused, match="no rows"):
        check_publishable(table(area=[], n=[]))


def test_every_problem_is_reported_at_once():
    bad = table(person_id=["P-ABCDEFGHJKMN"], n=["3"])
    with pytest.raises(PublishRefused) as refused:
        check_publishable(bad, count_columns=["n"], threshold=10)
    assert len(refused.value.problems) == 3


def test_column_names_are_normalised_before_comparison():
    assert normalise_column("  Person-ID ") == "person_id"
    assert normalise_column("Date of Birth") == "date_of_birth"


@pytest.mark.parametrize(
    ("values", "datatype"),
    [
        (["1", "-2", "[c]"], "integer"),
        (["1.5", "2", "-3e2"], "number"),
        (["2024-11-01", "2025-03-31"], "date"),
        (["2024-11-01T00:00:00Z", "2024-11-01 01:00"], "datetime"),
        (["true", "False"], "boolean"),
        (["2024-13-45", "2024-01-01"], "string"),
        (["A21", "1"], "string"),
        (["[c]", ""], "string"),
    ],
)
def test_datatypes_are_the_narrowest_that_fits(values: list[str], datatype: str):
    assert infer_datatype(pd.Series(values, dtype=str)) == datatype


def test_csv_cells_are_neutralised_and_numbers_left_alone():
    data = table(label=["=1+2", "+cmd", "@SUM(A1)", "-x", "\tTAB", "plain"],
                 value=["-1.5", "+3", "-1e3", "2", "0", "7"])
    lines = csv_bytes(data).decode().splitlines()
    assert lines[1:] == ["'=1+2,-1.5", "'+cmd,+3", "'@SUM(A1),-1e3", "'-x,2", "'\tTAB,0",
                         "plain,7"]  # fmt: skip


def test_json_has_typed_values_and_null_for_suppressed_cells():
    data = table(area=["North", "South"], n=["[c]", "15"], day=["2025-01-02", "2025-01-03"])
    columns = describe(data, count_columns=["n"])
    assert [c.datatype for c in columns] == ["string", "integer", "date"]
    assert columns[1].measure == "count" and columns[0].title == "Area"
    assert json_bytes(typed(data, columns), columns).decode().strip() == (
        '[{"area": "North", "n": null, "day": "2025-01-02"}, '
        '{"area": "South", "n": 15, "day": "2025-01-03"}]'
    )
