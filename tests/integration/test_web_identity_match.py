"""Identity matching on a real synthetic town: exactly one person, with high confidence."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from candour.config import Settings
from candour.home import Home
from candour.store import transaction
from candour.store.ingest import VaultAccess
from candour.store.linkage import PersonIndexEntry
from candour.vault import open_vault
from candour.web.identity import IdentityClaims
from candour.workflows.identity_match import Score, VaultMatcher
from e2e.support import town


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = town(tmp_path_factory.mktemp("match"))
    truth = Home(settings.home).synth / "truth"
    records: dict[str, list[str]] = defaultdict(list)
    with (truth / "records.csv").open() as handle:
        for row in csv.DictReader(handle):
            records[row["person_key"]].append(f"{row['source']}:{row['record_id']}")
    with (truth / "people.csv").open() as handle:
        people = list(csv.DictReader(handle))
    with open_vault(settings).open_workspace(reason="test: read the town's identities",
                                             actor="tests") as workspace:
        held = {r.record_key: r for r in workspace.identities()}
    with transaction(settings) as session:
        index = dict(session.execute(
            select(PersonIndexEntry.record_key, PersonIndexEntry.person_id)).all())
    return {"settings": settings, "records": records, "people": people, "held": held,
            "index": index, "matcher": VaultMatcher(settings)}


def claims_of(person: dict[str, str], postcode: str | None, **changes: str) -> IdentityClaims:
    return IdentityClaims(
        given_names=changes.get("given", person["given_name"]),
        family_name=changes.get("family", person["family_name"]),
        birth_date=date.fromisoformat(changes.get("born", person["date_of_birth"])),
        postcode=postcode,
    )


def usual_postcode(world: dict[str, Any], person: dict[str, str]) -> str | None:
    keys = [k for k in world["records"][person["person_key"]] if k in world["held"]]
    found = Counter(world["held"][k].postcode for k in keys if world["held"][k].postcode)
    return found.most_common(1)[0][0] if found else None


def test_people_match_themselves_and_never_anyone_else(world: dict[str, Any]) -> None:
    matcher: VaultMatcher = world["matcher"]
    right = none = 0
    for person in world["people"][:80]:
        postcode = usual_postcode(world, person)
        if postcode is None:
            continue
        got = matcher.match(claims_of(person, postcode))
        theirs = {world["index"].get(k) for k in world["records"][person["person_key"]]}
        if got is None:
            none += 1
            continue
        assert got in theirs, f"{person['person_key']} was matched to someone else"
        right += 1
    assert right >= 0.85 * (right + none), (right, none)


def test_wrong_or_missing_details_confirm_nobody(world: dict[str, Any]) -> None:
    matcher: VaultMatcher = world["matcher"]
    person = next(p for p in world["people"] if usual_postcode(world, p))
    postcode = usual_postcode(world, person)
    assert matcher.match(claims_of(person, postcode)) is not None
    born = date.fromisoformat(person["date_of_birth"])
    other_day = born.replace(day=28 if born.day != 28 else 27).isoformat()
    assert matcher.match(claims_of(person, postcode, born=other_day)) is None
    assert matcher.match(claims_of(person, None)) is None
    assert matcher.match(claims_of(person, "ZZ99 9ZZ")) is None
    assert matcher.match(claims_of(person, postcode, family="Zzyzx")) is None
    assert matcher.match(claims_of(person, postcode, given="Quentavious")) is None


def test_two_plausible_people_are_ambiguous(world: dict[str, Any]) -> None:
    matcher: VaultMatcher = world["matcher"]
    sure = [Score("a:1", 20.0, 0.999999, True), Score("b:1", 18.0, 0.99999, True)]
    index = world["index"]
    first, second = list(dict.fromkeys(index.values()))[:2]
    keys = {p: k for k, p in index.items()}
    scores = [Score(keys[first], 20.0, 0.999999, True), Score(keys[second], 3.0, 0.9, False)]
    assert matcher.decide(scores[:1]) == first
    assert matcher.decide(scores) is None  # someone else is plausible too
    assert matcher.decide([Score(keys[first], 20.0, 0.999999, False)]) is None  # no postcode
    assert matcher.decide([scores[0], Score("unlinked:9", 5.0, 0.97, True)]) is None
    assert matcher.decide(sure) is None  # neither record is in the person index


def test_reads_are_audited_and_failures_are_safe(world: dict[str, Any], tmp_path) -> None:
    settings: Settings = world["settings"]
    person = next(p for p in world["people"] if usual_postcode(world, p))
    with transaction(settings) as session:
        before = session.scalar(select(func.count()).select_from(VaultAccess)
                                .where(VaultAccess.actor == "resident-sign-in"))
    world["matcher"].match(claims_of(person, usual_postcode(world, person)))
    with transaction(settings) as session:
        reasons = session.scalars(select(VaultAccess.reason)
                                  .where(VaultAccess.actor == "resident-sign-in")
                                  .order_by(VaultAccess.id)).all()
    assert len(reasons) > (before or 0)
    assert "compare a verified identity" in reasons[-1]
    # A home with no link run (or no vault at all) confirms nobody rather than failing.
    broken = VaultMatcher(Settings(home=tmp_path / "nowhere"))
    assert broken.match(claims_of(person, usual_postcode(world, person))) is None
