"""Purposes: the default set matches the design, and a bad purposes file is refused clearly."""

from pathlib import Path

import pytest

from candour.choices import DEFAULT_FILE, PurposeError, load_purposes, parse_purposes
from candour.config import Settings

DESIGN = {
    # id: (DPV concept, residents may opt out)
    "direct-care": ("ServiceProvision", False),
    "service-planning": ("ImprovePublicServices", True),
    "service-evaluation": ("ImprovePublicServices", True),
    "research": ("ScientificResearch", True),
    "official-statistics": ("ProvideOfficialStatistics", True),
    "fraud-prevention": ("FraudPreventionAndDetection", False),
}


def test_the_default_purposes_are_the_designs():
    purposes = load_purposes(Settings())
    assert {p.id: (p.dpv, p.opt_out) for p in purposes.purposes} == DESIGN
    research = purposes.get("research")
    assert research.dpv_iri == "https://w3id.org/dpv#ScientificResearch"
    for purpose in purposes.purposes:
        if not purpose.opt_out:
            assert purpose.why_no_opt_out  # a resident who asks is told why not


def test_official_statistics_is_aggregate_only():
    purposes = load_purposes(Settings())
    purposes.check_use("official-statistics", "aggregate")
    with pytest.raises(PurposeError, match="record-level output is not allowed"):
        purposes.check_use("official-statistics", "record-level")
    purposes.check_use("research", "record-level")


def test_unknown_purpose_names_the_known_ones():
    with pytest.raises(PurposeError, match="unknown purpose 'marketing'; known: direct-care"):
        load_purposes(Settings()).get("marketing")


def _file(tmp_path: Path, body: str) -> Settings:
    path = tmp_path / "purposes.yaml"
    path.write_text(body)
    return Settings(purposes_file=path)


def test_a_purposes_file_replaces_the_default(tmp_path: Path):
    text = DEFAULT_FILE.read_text().replace(
        "    opt_out: true\n    opt_out_by_law: false\n    record_level: false\n",
        "    opt_out: false\n    opt_out_by_law: false\n    record_level: false\n"
        "    why_no_opt_out: A statutory duty.\n",
    )
    purposes = load_purposes(_file(tmp_path, text))
    assert purposes.get("official-statistics").opt_out is False


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "purposes:\n  - {id: marketing, title: M, dpv: Marketing, description: d,"
            " opt_out: true, opt_out_by_law: false}\n",
            "cannot be recorded in the transparency log",
        ),
        (
            "purposes:\n  - {id: research, title: R, dpv: ScientificResearch, description: d,"
            " opt_out: false, opt_out_by_law: true, why_no_opt_out: x}\n",
            "opt_out_by_law needs opt_out",
        ),
        (
            "purposes:\n  - {id: research, title: R, dpv: ScientificResearch, description: d,"
            " opt_out: false, opt_out_by_law: false}\n",
            "must say why",
        ),
        (
            "purposes:\n  - {id: research, title: R, dpv: ScientificResearch, description: d,"
            " opt_out: true, opt_out_by_law: true, colour: red}\n",
            "purposes.0.colour",
        ),
        ("purposes: [\n", "not valid YAML"),
    ],
)
def test_bad_purposes_files_are_refused(tmp_path: Path, body: str, message: str):
    with pytest.raises(PurposeError, match=message):
        load_purposes(_file(tmp_path, body))


def test_duplicate_purpose_ids_are_refused():
    one = (
        "  - {id: research, title: R, dpv: ScientificResearch, description: d,"
        " opt_out: true, opt_out_by_law: true}\n"
    )
    with pytest.raises(PurposeError, match="repeated: research"):
        parse_purposes("purposes:\n" + one + one, "p.yaml")


def test_a_missing_purposes_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(PurposeError, match="cannot read the purposes file"):
        load_purposes(Settings(purposes_file=tmp_path / "nope.yaml"))
