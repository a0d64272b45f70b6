"""The gate on the real pipeline: synth -> ingest -> link -> register a use -> residents opt out
-> gated queries. The counts leave out exactly the people who said no, their rows are in no
cohort, and every receipt verifies.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.integration.test_gate_support import use_text
from typer.testing import CliRunner

from candour import choices, gate, register
from candour.cli.main import app
from candour.config import Settings
from candour.gate import cohort as cohorts
from candour.home import Home
from candour.store import dispose
from candour.vault import dispose_vault
from candour.warehouse import DuckDBWarehouse

pytestmark = pytest.mark.slow
runner = CliRunner()


def _cli(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output


def _truth(settings: Settings, where: str) -> dict[str, tuple[int, int]]:
    """Per person id: their number and how many A&E rows pass ``where`` (from the warehouse)."""
    with DuckDBWarehouse(Home(settings.home).warehouse, read_only=True) as warehouse:
        rows = warehouse.query(
            "SELECT p.person_id, p.person_num, count(*) AS n FROM ae_attendances t "
            f"JOIN person_index p ON p.record_key = t.record_key WHERE {where} "
            "GROUP BY ALL"
        ).to_pylist()
    return {r["person_id"]: (int(r["person_num"]), int(r["n"])) for r in rows}


def test_a_county_linked_for_real_honours_opt_outs_through_the_gate(tmp_path: Path):
    home = tmp_path / "home"
    _cli("init", "--home", str(home))
    _cli("synth", "--people", "300", "--seed", "5", "--out", str(home / "synth"))
    _cli("ingest", str(home / "synth" / "sources.yaml"), "--home", str(home))
    _cli("link", "--home", str(home))
    settings = Settings(home=home)
    try:
        for name, role in (("ana", "analyst"), ("ian", "ig")):
            register.add_user(name, role, settings=settings)
        purposes = choices.load_purposes(settings)
        spec = register.parse_use(
            use_text(threshold=1, rounding=1, grants='  ae_attendances: "*"\n')
        )
        use_id = register.apply_use(spec, purposes=purposes, settings=settings).use_id
        register.submit(use_id, "ana", settings=settings)
        register.approve(use_id, "ian", purposes=purposes, settings=settings)

        everyone = _truth(settings, "true")
        assert len(everyone) > 100
        people = sorted(everyone)
        out = set(people[::7])  # about one in seven says no to research
        for person in out:
            choices.set_choice(
                person, "research", "opt-out", channel="portal", actor=person, settings=settings
            )
        # A "no" to another purpose does not take anyone out of a research query.
        planning_only = people[1]
        choices.set_choice(
            planning_only,
            "service-planning",
            "opt-out",
            channel="portal",
            actor="r",
            settings=settings,
        )
        assert planning_only not in out

        store = cohorts.CohortStore(Home(settings.home))
        seen: list[set[int]] = []
        verifier = gate.home_verifier(settings)
        for where, sql in (
            (
                "true",
                "SELECT count(*) AS n, count(DISTINCT person_id) AS people FROM ae_attendances",
            ),
            (
                "t.event_date >= DATE '2024-01-01'",
                "SELECT count(*) AS n, count(DISTINCT person_id) AS people "
                "FROM ae_attendances WHERE event_date >= DATE '2024-01-01'",
            ),
        ):
            truth = _truth(settings, where)
            kept = {p: v for p, v in truth.items() if p not in out}
            result = gate.run(use_id, "ana", sql, settings=settings)
            assert result.cohort_exact
            assert int(result.table["n"].iloc[0]) == sum(n for _, n in kept.values())
            assert int(result.table["people"].iloc[0]) == len(kept)
            cohort = set(store.read(result.query_id))
            seen.append(cohort)
            assert cohort == {num for num, _ in kept.values()}
            assert not cohort & {truth[p][0] for p in out if p in truth}
            result.receipt.verify(verifier)
            assert result.receipt.fields["choices_hash"] == result.choices_hash

        # The resident's view agrees: opted-out people were in no query, others in both.
        assert gate.queries_including(sorted(out)[0], settings=settings) == []
        including = sum(everyone[planning_only][0] in cohort for cohort in seen)
        assert including >= 1
        assert gate.count_queries_including(planning_only, settings=settings) == including
    finally:
        dispose(settings)
        dispose_vault(settings)
