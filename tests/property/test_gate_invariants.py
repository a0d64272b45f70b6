"""Invariants of the gate, for random choices and random grouped counts (hypothesis):

- the gated counts, before disclosure control, equal the raw counts over the people who did not
  opt out (of the purpose, or of that source for the purpose);
- no opted-out person ever appears in a query's cohort bitmap.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.integration.test_gate_support import approved_use, build_home

from candour import choices, gate
from candour.choices import ChoiceRequest
from candour.config import Settings
from candour.gate import cohort as cohorts
from candour.home import Home

PEOPLE = 24
KEYS = ("diagnosis", "area")
FILTERS = (None, "cost >= 20", "diagnosis <> 'burn'", "area IN ('north', 'east')")


def _keep(row: dict, condition: str | None) -> bool:
    if condition is None:
        return True
    if condition == "cost >= 20":
        return bool(row["cost"] >= 20)
    if condition == "diagnosis <> 'burn'":
        return bool(row["diagnosis"] != "burn")
    return row["area"] in ("north", "east")


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    everywhere=st.sets(st.integers(0, PEOPLE - 1), max_size=8),
    ae_only=st.sets(st.integers(0, PEOPLE - 1), max_size=4),
    keys=st.lists(st.sampled_from(KEYS), min_size=1, max_size=2, unique=True),
    condition=st.sampled_from(FILTERS),
    distinct=st.booleans(),
)
def test_gated_counts_equal_raw_counts_over_people_who_did_not_opt_out(
    store_settings: Settings,
    everywhere: set[int],
    ae_only: set[int],
    keys: list[str],
    condition: str | None,
    distinct: bool,
) -> None:
    home = _home(store_settings)
    _set_choices(store_settings, home.people, everywhere, ae_only)
    measure = "count(DISTINCT person_id)" if distinct else "count(*)"
    where = f" WHERE {condition}" if condition else ""
    sql = (
        f"SELECT {', '.join(keys)}, {measure} AS n FROM ae_attendances{where} "
        f"GROUP BY {', '.join(keys)}"
    )
    result = gate.run(_USE[store_settings.home], "ana", sql, settings=store_settings)

    out = everywhere | ae_only
    kept = [r for r in home.ae if r["person_num"] not in out and _keep(r, condition)]
    if distinct:
        expected = Counter({k: len(v) for k, v in _people_by(kept, keys).items()})
    else:
        expected = Counter(tuple(r[k] for k in keys) for r in kept)
    assert result.disclosure is not None
    gated = {c.key: c.original["n"] for c in result.disclosure.cells if c.original["n"]}
    assert gated == dict(expected)

    cohort = cohorts.CohortStore(Home(store_settings.home)).read(result.query_id)
    assert not set(cohort) & out
    assert set(cohort) == {r["person_num"] for r in kept}


_HOMES: dict[object, object] = {}
_USE: dict[object, str] = {}


def _home(settings: Settings):  # type: ignore[no-untyped-def]
    # One home per backend for all examples: building it is the slow part.
    if settings.home not in _HOMES:
        _HOMES[settings.home] = build_home(settings, people=PEOPLE)
        _USE[settings.home] = approved_use(settings, threshold=1, rounding=1)
        gate.prepare(settings)
    return _HOMES[settings.home]


def _people_by(rows: list[dict], keys: list[str]) -> dict[tuple, set[int]]:
    groups: dict[tuple, set[int]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), set()).add(r["person_num"])
    return groups


def _set_choices(
    settings: Settings, people: list[str], everywhere: set[int], ae_only: set[int]
) -> None:
    current = choices.snapshot("research", settings=settings)
    now_everywhere = {people.index(p) for p in current.everywhere.person_ids}
    ae = current.by_source.get("ae_attendances")
    now_ae = {people.index(p) for p in ae.person_ids} if ae else set()
    requests = []
    for wanted, held, source in (
        (everywhere, now_everywhere, None),
        (ae_only, now_ae, "ae_attendances"),
    ):
        requests += [ChoiceRequest(people[n], "research", "opt-out", source) for n in wanted - held]
        requests += [ChoiceRequest(people[n], "research", "opt-in", source) for n in held - wanted]
    if requests:
        choices.record_choices(requests, channel="cli", actor="test", settings=settings)
