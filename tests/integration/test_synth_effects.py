"""The planted effects are really in the extracts: checked with the true linkage, at small scale."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from candour.synth import write_county


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("effects")
    write_county(out, 30_000, 3, workers=2)
    return out


def rows(path: Path, delimiter: str = ",", encoding: str = "utf-8") -> list[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def owners(county: Path) -> dict[tuple[str, str], str]:
    return {
        (r["source"], r["record_id"]): r["person_key"]
        for r in rows(county / "truth" / "records.csv")
    }


def test_falls_drop_after_a_visit_more_than_in_comparable_people(county: Path):
    owner = owners(county)
    visits: dict[str, date] = {}
    fire = rows(county / "fire_home_safety_visits.csv", encoding="utf-8-sig")
    for r in fire:
        if r["Visit Type"] == "Safe and Well":
            key = owner[("fire_home_safety_visits", r["VisitRef"])]
            visits.setdefault(key, datetime.strptime(r["visit_date"], "%d/%m/%Y").date())
    falls: dict[str, list[date]] = defaultdict(list)
    for r in rows(county / "ae_attendances.csv"):
        if r["diagnosis_category"] == "fall":
            falls[owner[("ae_attendances", r["attendance_id"])]].append(
                date.fromisoformat(r["arrival_date"])
            )
    year = timedelta(days=365)
    pre = sum(sum(v - year <= d < v for d in falls[k]) for k, v in visits.items())
    post = sum(sum(v <= d < v + year for d in falls[k]) for k, v in visits.items())
    # Visits target frailty: visited people fell more often before their visit than others did.
    truth = json.loads((county / "truth" / "effects.json").read_text())
    hsv = truth["home_safety_visits"]
    assert hsv["visited"] == len(visits) > 300
    unvisited_years = 3 * max(1, hsv["people_65_plus"] - len(visits))
    assert pre / len(visits) > 1.2 * hsv["falls_unvisited"] / unvisited_years
    # And fell less in the year after (planted effect -0.3).
    assert post < 0.85 * pre, (pre, post)


def test_unlicensed_hmos_stand_out_but_not_perfectly(county: Path):
    props: dict[str, dict[str, object]] = defaultdict(lambda: {"names": set(), "new": 0})
    start = date(2023, 1, 1)
    for r in rows(county / "council_tax_housing.csv"):
        p = props[r["property_ref"]]
        p["names"].add(r["last_name"].lower())  # type: ignore[attr-defined]
        p["new"] = int(p["new"]) + (
            datetime.strptime(r["occupancy_start"], "%d-%m-%Y").date() >= start
        )
        p["spd"] = r["single_person_discount"] == "Y"
        p["licensed"] = bool(r["hmo_licence_no"])
        p["complaints"] = int(r["complaints_12m"])
    truth = {
        r["property_id"]: r["is_unlicensed_hmo"] == "1" for r in rows(county / "truth" / "hmos.csv")
    }

    def score(p: dict[str, object]) -> float:
        names = len(p["names"])  # type: ignore[arg-type]
        return (
            np.log1p(names)
            + np.log1p(int(p["new"]))
            + (names > 1 and bool(p["spd"]))
            + 0.3 * int(p["complaints"])
            - 10 * bool(p["licensed"])
        )

    ranked = sorted(props, key=lambda k: -score(props[k]))
    hmos = sum(truth.values())
    assert hmos > 40
    top = ranked[:30]
    precision = sum(truth[k] for k in top) / len(top)
    assert precision >= 0.8
    # Licensed HMOs and sharers look alike on occupancy alone: crowding is not enough.
    crowded = [k for k, p in props.items() if len(p["names"]) >= 4]  # type: ignore[arg-type]
    assert sum(truth[k] for k in crowded) < len(crowded)


def test_family_clusters_have_distinct_profiles(county: Path):
    owner = owners(county)
    household = {r["person_key"]: r["household_id"] for r in rows(county / "truth" / "people.csv")}
    cluster = {
        r["household_id"]: int(r["cluster"]) for r in rows(county / "truth" / "family_clusters.csv")
    }
    counts: Counter[tuple[int, str]] = Counter()
    for r in rows(county / "police_incidents.csv"):
        h = household[owner[("police_incidents", r["PERSON_INCIDENT_ID"])]]
        if h in cluster:
            counts[(cluster[h], r["INCIDENT_TYPE"])] += 1
    for r in rows(county / "social_care_contacts.csv", delimiter=";"):
        h = household[owner[("social_care_contacts", r["ContactID"])]]
        if h in cluster:
            counts[(cluster[h], r["ContactReason"])] += 1
    sizes = Counter(cluster.values())

    def rate(c: int, kind: str) -> float:
        return counts[(c, kind)] / sizes[c]

    # Each cluster's signature is several times more common in it than in any other cluster.
    for c, kind in [(1, "domestic_abuse"), (2, "child_neglect"), (3, "child_disability")]:
        others = max(rate(o, kind) for o in range(4) if o != c)
        assert rate(c, kind) > 4 * others, (c, kind)
