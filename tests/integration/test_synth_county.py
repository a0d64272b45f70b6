"""The synthetic county end to end: files, truth, error rates measured on the output, CLI."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from candour.cli.main import app
from candour.sources.spec import Source, load_sources
from candour.synth import county as county_module
from candour.synth.config import DuplicateRates, SynthConfig
from candour.synth.names import NICKNAMES
from candour.synth.population import is_valid_nhs_number

# Rates high enough that each error occurs hundreds of times in a few thousand people, so a
# +-20% check is statistically stable; the defaults are checked separately below.
STRESS = SynthConfig(
    typo_rate=0.05,
    nickname_rate=0.3,
    dob_swap_rate=0.1,
    missing_field_rate=0.06,
    old_address_rate=0.4,
    duplicates=DuplicateRates(
        gp_registrations=0.06,
        ae_attendances=0.05,
        social_care_contacts=0.08,
        fire_home_safety_visits=0.1,
        police_incidents=0.08,
        council_tax_housing=0.05,
    ),
    ae_nhs_number_missing_rate=0.1,
)


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("county")
    county_module.write_county(out, 4000, 11, STRESS, workers=1)
    return out


def read_source(out: Path, source: Source) -> tuple[list[str], list[dict[str, str]]]:
    path = out / source.files[0]
    with path.open(encoding=source.csv.encoding, newline="") as handle:
        reader = csv.DictReader(handle, delimiter=source.csv.delimiter)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_sources_yaml_validates_and_names_real_columns(county: Path):
    spec = load_sources(county / "sources.yaml")
    assert [s.name for s in spec.sources] == [
        "gp_registrations",
        "ae_attendances",
        "social_care_contacts",
        "fire_home_safety_visits",
        "police_incidents",
        "council_tax_housing",
    ]
    for source in spec.sources:
        assert source.retention
        header, rows = read_source(county, source)
        named = [source.record_id, *source.identity.columns()]
        named += [a.column for a in source.attributes.values()]
        missing = [c for c in named if c not in header]
        assert not missing, (source.name, missing)
        assert rows, source.name
        # Every date attribute parses with its declared format.
        for attribute in source.attributes.values():
            if attribute.type == "date":
                for row in rows[:300]:
                    if row[attribute.column]:
                        datetime.strptime(row[attribute.column], attribute.format or "%Y-%m-%d")
        dob = source.identity.date_of_birth
        assert dob is not None
        for row in rows[:300]:
            if row[dob.column]:
                datetime.strptime(row[dob.column], dob.format)
    fire = spec.source("fire_home_safety_visits")
    assert fire.attributes["visit_date"].column == "visit_date"
    assert (county / "fire_home_safety_visits.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert "nhs_number" not in {
        f
        for s in spec.sources
        for f in s.identity.fields()
        if s.name in ("police_incidents", "fire_home_safety_visits", "council_tax_housing")
    }


def test_record_ids_unique_and_truth_covers_every_record_once(county: Path):
    spec = load_sources(county / "sources.yaml")
    truth = read_csv(county / "truth" / "records.csv")
    pairs = Counter((r["source"], r["record_id"]) for r in truth)
    assert max(pairs.values()) == 1
    written: set[tuple[str, str]] = set()
    for source in spec.sources:
        assert source.record_id
        _, rows = read_source(county, source)
        ids = [r[source.record_id] for r in rows]
        assert len(ids) == len(set(ids)), source.name
        written |= {(source.name, i) for i in ids}
    assert written == set(pairs)
    people = {r["person_key"] for r in read_csv(county / "truth" / "people.csv")}
    assert {r["person_key"] for r in truth} <= people


def test_every_nhs_number_passes_the_check_digit(county: Path):
    spec = load_sources(county / "sources.yaml")
    seen = 0
    for source in spec.sources:
        column = source.identity.nhs_number
        if column is None:
            continue
        _, rows = read_source(county, source)
        for row in rows:
            if row[column]:
                assert is_valid_nhs_number(row[column]), (source.name, row[column])
                seen += 1
    assert seen > 5000
    numbers = [r["nhs_number"] for r in read_csv(county / "truth" / "people.csv")]
    assert len(numbers) == len(set(numbers))
    assert all(is_valid_nhs_number(n) for n in numbers)


def _norm(text: str) -> str:
    return text.strip().casefold()


def test_error_rates_measured_on_the_output(county: Path):
    """Compare each record with the true identity: clean records must match it exactly, each
    flagged error must really be there, and each rate must be within 20% of its setting."""
    spec = load_sources(county / "sources.yaml")
    people = {r["person_key"]: r for r in read_csv(county / "truth" / "people.csv")}
    owner = {
        (r["source"], r["record_id"]): r["person_key"]
        for r in read_csv(county / "truth" / "records.csv")
    }
    flagged: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in read_csv(county / "truth" / "record_errors.csv"):
        flagged[(r["source"], r["record_id"])].add(r["error"])

    hits: Counter[str] = Counter()
    eligible: Counter[str] = Counter()
    for source in spec.sources:
        _, rows = read_source(county, source)
        ident = source.identity
        assert ident.given_name and ident.family_name and ident.date_of_birth
        assert source.record_id
        for row in rows:
            key = (source.name, row[source.record_id])
            errors = flagged[key]
            person = people[owner[key]]
            given = row[ident.given_name]
            true_given = person["given_name"]
            # Given name: nickname, typo or exact.
            eligible["typo"] += 1
            if true_given in NICKNAMES:
                eligible["nickname"] += 1
            if "typo_given_name" in errors:
                hits["typo"] += 1
                assert _norm(given) != _norm(true_given) or "nickname" in errors
            elif "nickname" in errors:
                assert given in NICKNAMES[true_given]
            else:
                assert _norm(given) == _norm(true_given), (key, given, true_given)
            hits["nickname"] += "nickname" in errors
            # Family name: the current or the previous one, or a typo of either.
            family = _norm(row[ident.family_name])
            names = {_norm(person["family_name"]), _norm(person["previous_family_name"])}
            eligible["typo"] += 1
            if "typo_family_name" in errors:
                hits["typo"] += 1
                assert family not in names
            else:
                assert family in names, (key, family, names)
            # Date of birth: blank, swapped or exact.
            text = row[ident.date_of_birth.column]
            true_dob = datetime.strptime(person["date_of_birth"], "%Y-%m-%d").date()
            if "missing_date_of_birth" in errors:
                assert text == ""
                hits["missing"] += 1
            else:
                dob = datetime.strptime(text, ident.date_of_birth.format).date()
                if true_dob.day <= 12 and true_dob.day != true_dob.month:
                    eligible["swap"] += 1
                if "dob_day_month_swap" in errors:
                    hits["swap"] += 1
                    assert (dob.day, dob.month, dob.year) == (
                        true_dob.month,
                        true_dob.day,
                        true_dob.year,
                    )
                else:
                    assert dob == true_dob, (key, dob, true_dob)
            eligible["missing"] += 1
            for field in ("postcode", "sex"):
                column = getattr(ident, field)
                if f"missing_{field}" in errors:
                    assert column and row[column] in ("", "U", "Unknown")
                    hits["missing"] += 1
                elif column:
                    assert row[column] not in ("", "U", "Unknown")
            if ident.nhs_number:
                number = row[ident.nhs_number].replace(" ", "")
                assert number in ("", person["nhs_number"])
                if source.name == "ae_attendances":
                    eligible["nhs_missing"] += 1
                    hits["nhs_missing"] += number == ""
                    assert (number == "") == ("nhs_number_missing" in errors)
                if source.name == "gp_registrations":
                    assert number == person["nhs_number"]
    rates = {
        "typo": STRESS.typo_rate,
        "nickname": STRESS.nickname_rate,
        "swap": STRESS.dob_swap_rate,
        "missing": STRESS.missing_field_rate,
        "nhs_missing": STRESS.ae_nhs_number_missing_rate,
    }
    for name, configured in rates.items():
        measured = hits[name] / eligible[name]
        assert hits[name] >= 150, (name, hits[name])
        assert abs(measured - configured) <= 0.2 * configured, (name, measured, configured)


def test_duplicates_and_old_addresses_measured_on_the_output(county: Path):
    spec = load_sources(county / "sources.yaml")
    owner = {
        (r["source"], r["record_id"]): r["person_key"]
        for r in read_csv(county / "truth" / "records.csv")
    }
    flagged = Counter(
        (r["source"], r["error"]) for r in read_csv(county / "truth" / "record_errors.csv")
    )
    # GP: one registration per person, so extra rows per person are exactly the duplicates.
    _, gp_rows = read_source(county, spec.source("gp_registrations"))
    per_person = Counter(owner[("gp_registrations", r["PATIENT_REG_ID"])] for r in gp_rows)
    extra = sum(c - 1 for c in per_person.values())
    assert extra == flagged[("gp_registrations", "duplicate")]
    measured = extra / len(per_person)
    assert abs(measured - STRESS.duplicates.gp_registrations) <= 0.2 * 0.06
    # Every source: duplicates per original record.
    total_dups = sum(flagged[(s.name, "duplicate")] for s in spec.sources)
    total_rows = sum(len(read_source(county, s)[1]) for s in spec.sources)
    assert total_dups > 300
    rates = {s.name: getattr(STRESS.duplicates, s.name) for s in spec.sources}
    expected = sum(
        rates[s.name] * (len(read_source(county, s)[1]) - flagged[(s.name, "duplicate")])
        for s in spec.sources
    )
    assert abs(total_dups - expected) <= 0.2 * expected, (total_dups, expected, total_rows)

    # GP addresses: movers alive after their move have the new property unless flagged.
    people = {r["person_key"]: r for r in read_csv(county / "truth" / "people.csv")}
    errors = {
        (r["source"], r["record_id"]): r["error"]
        for r in read_csv(county / "truth" / "record_errors.csv")
        if r["error"] == "old_address"
    }
    movers = old = 0
    for row in gp_rows:
        rid = row["PATIENT_REG_ID"]
        person = people[owner[("gp_registrations", rid)]]
        if not person["moved_on"] or (
            person["died_on"] and person["died_on"] <= person["moved_on"]
        ):
            assert row["PROPERTY_REF"] == person["property_id"]
            continue
        movers += 1
        if ("gp_registrations", rid) in errors:
            old += 1
            assert row["PROPERTY_REF"] == person["property_id"]
        else:
            assert row["PROPERTY_REF"] == person["new_property_id"]
    assert movers > 300
    assert abs(old / movers - STRESS.old_address_rate) <= 0.2 * STRESS.old_address_rate


def test_truth_json_and_effect_files(county: Path):
    effects = json.loads((county / "truth" / "effects.json").read_text())
    assert effects["home_safety_visit_falls_effect"] == STRESS.home_safety_visit_falls_effect
    assert effects["family_need_clusters"] == 4
    assert effects["unlicensed_hmo_share"] == STRESS.unlicensed_hmo_share
    clusters = read_csv(county / "truth" / "family_clusters.csv")
    assert {r["cluster"] for r in clusters} == {"0", "1", "2", "3"}
    hmos = read_csv(county / "truth" / "hmos.csv")
    assert {r["is_unlicensed_hmo"] for r in hmos} == {"0", "1"}
    households = {r["household_id"] for r in read_csv(county / "truth" / "people.csv")}
    assert {r["household_id"] for r in clusters} <= households
    rates = json.loads((county / "truth" / "error_rates.json").read_text())
    assert rates["gp_registrations"]["old_address"]["eligible"] > 0
    feed = read_csv(county / "open" / "road_surface_temperatures.csv")
    assert set(feed[0]) == {"sensor_id", "route", "timestamp", "road_surface_temp_c", "air_temp_c"}
    assert -25 < min(float(r["road_surface_temp_c"]) for r in feed) < 5


def _tree(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_whatever_the_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(county_module, "CHUNK_PEOPLE", 400)
    county_module.write_county(tmp_path / "a", 1000, 5, workers=1)
    county_module.write_county(tmp_path / "b", 1000, 5, workers=2)
    county_module.write_county(tmp_path / "c", 1000, 6, workers=1)
    a, b, c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert len(a) == 15
    assert a == b
    assert a["gp_registrations.csv"] != c["gp_registrations.csv"]


def test_default_rates_on_a_default_county(tmp_path: Path):
    summary = county_module.write_county(tmp_path, 6000, 2, workers=1)
    assert summary.people == 6000 and summary.records > 15_000
    rates = json.loads((tmp_path / "truth" / "error_rates.json").read_text())
    for source, per in rates.items():
        for error, figures in per.items():
            if figures["applied"] >= 150:  # enough events for a stable +-20% check
                assert (
                    abs(figures["measured"] - figures["configured"]) <= 0.2 * figures["configured"]
                ), (source, error, figures)


runner = CliRunner()


def test_cli_writes_a_county(tmp_path: Path):
    out = tmp_path / "county"
    result = runner.invoke(app, ["synth", "--people", "500", "--seed", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "all sources" in result.output
    assert (out / "sources.yaml").is_file()
    assert (out / "truth" / "records.csv").is_file()


@pytest.mark.parametrize("case", ["zero", "file", "config"])
def test_cli_bad_input_exits_2_with_one_line(tmp_path: Path, case: str):
    out = tmp_path / "county"
    args = ["synth", "--people", "500", "--seed", "1", "--out", str(out)]
    if case == "zero":
        args[2] = "0"
    elif case == "file":
        out.write_text("not a directory")
    else:
        bad = tmp_path / "bad.yaml"
        bad.write_text("no_such_rate: 1\n")
        args += ["--config", str(bad)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert "Traceback" not in result.output
