from pathlib import Path

import pytest

from candour.sources.spec import SourcesFileError, load_sources, parse_sources

GOOD = """\
version: 1
sources:
  - name: gp_registrations
    title: GP registrations
    controller: Kent and Medway ICB
    files: [gp/*.csv]
    csv: {delimiter: ";", encoding: utf-8-sig}
    record_id: patient_ref
    identity:
      given_name: forename
      family_name: surname
      date_of_birth: {column: dob, format: "%d/%m/%Y"}
      sex: gender
      postcode: post_code
      address: [addr1, addr2]
      nhs_number: nhs_no
      identifiers: {practice_patient_id: local_id}
    attributes:
      registered_on: {column: reg_date, type: date, format: "%Y%m%d"}
      practice: {column: practice_code, type: category}
    event_date: registered_on
"""


def test_a_full_source_parses():
    sources = parse_sources(GOOD)
    gp = sources.source("gp_registrations")
    assert gp.csv.delimiter == ";"
    assert gp.identity.date_of_birth is not None
    assert gp.identity.date_of_birth.format == "%d/%m/%Y"
    assert gp.identity.columns() == [
        "forename",
        "surname",
        "dob",
        "gender",
        "post_code",
        "addr1",
        "addr2",
        "nhs_no",
        "local_id",
    ]
    assert "identifiers.practice_patient_id" in gp.identity.fields()
    assert gp.attributes["registered_on"].type == "date"


def test_unknown_key_is_rejected_with_its_yaml_path_and_line():
    text = GOOD.replace("      sex: gender\n", "      sex: gender\n      shoe_size: shoes\n")
    with pytest.raises(SourcesFileError) as error:
        parse_sources(text, "x/sources.yaml")
    message = str(error.value)
    assert message.startswith("x/sources.yaml: line 14: sources[0].identity.shoe_size:")
    assert "unknown key" in message


def test_wrong_type_is_rejected_with_its_path():
    text = GOOD.replace("type: category", "type: colour")
    with pytest.raises(
        SourcesFileError, match=r"line 20: sources\[0\]\.attributes\.practice\.type"
    ):
        parse_sources(text)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("name: gp_registrations", "name: GP-Registrations"), "lower-case letters"),
        (("version: 1", "version: 2"), "version"),
        (("event_date: registered_on", "event_date: practice"), "date attributes"),
        (("encoding: utf-8-sig", "encoding: klingon"), "unknown encoding"),
        (("column: practice_code", "column: surname"), "direct identifiers"),
        (("files: [gp/*.csv]", "files: []"), "files"),
    ],
)
def test_invalid_values_are_explained(change: tuple[str, str], expected: str):
    with pytest.raises(SourcesFileError, match=expected):
        parse_sources(GOOD.replace(*change))


def test_duplicate_source_names_are_rejected():
    body = GOOD.split("sources:\n", 1)[1]
    with pytest.raises(SourcesFileError, match="more than once"):
        parse_sources(GOOD + body)


def test_not_yaml_is_a_clear_error():
    with pytest.raises(SourcesFileError, match="line 3: not valid YAML"):
        parse_sources("version: 1\nsources: [\n  - {")


def test_missing_file_and_bad_encoding(tmp_path: Path):
    with pytest.raises(SourcesFileError, match="no such file"):
        load_sources(tmp_path / "nope.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("title: caf\xe9".encode("latin-1"))
    with pytest.raises(SourcesFileError, match="not UTF-8"):
        load_sources(bad)
