"""Every hostile query is refused before anything reaches the engine (a spy proves it)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.test_gate_support import approved_use, build_home

from candour import gate
from candour.config import Settings
from corpora.hostile_queries import CORPUS

# The corpus is written against these grants (see tests/corpora/hostile_queries.py).
GRANTS = "  ae_attendances: [diagnosis]\n  fire_home_safety_visits: [visit_date]\n"


class SpyEngine:
    """An engine that records every use of itself and can do nothing."""

    name = "spy"
    dialect = "duckdb"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, attribute: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(attribute)
            raise AssertionError(f"the engine was called: {attribute}")

        return record


def test_the_hostile_corpus_never_reaches_the_engine(store_settings: Settings):
    build_home(store_settings, people=12)
    use_id = approved_use(store_settings, grants=GRANTS)
    gate.prepare(store_settings)  # the linked tables exist, so the gate has no upkeep to do
    spy = SpyEngine()
    rules: set[str] = set()
    for category, sql in CORPUS:
        with pytest.raises(gate.QueryRefused) as refused:
            gate.run(use_id, "ana", sql, settings=store_settings, engine=spy)  # type: ignore[arg-type]
        rules.add(refused.value.rule)
        assert spy.calls == [], (category, sql)
    assert len(CORPUS) >= 100
    assert {"function", "table-not-granted", "read-only", "person-id-in-output"} <= rules
    assert gate.queries_including(0, settings=store_settings) == []


def test_a_good_query_does_reach_the_spy(store_settings: Settings):
    # The control: without it, a spy that is never consulted would prove nothing.
    build_home(store_settings, people=12)
    use_id = approved_use(store_settings, grants=GRANTS)
    gate.prepare(store_settings)
    spy = SpyEngine()
    with pytest.raises(AssertionError, match="the engine was called"):
        gate.run(
            use_id,
            "ana",
            "SELECT diagnosis, count(*) AS n FROM ae_attendances GROUP BY diagnosis",
            settings=store_settings,
            engine=spy,  # type: ignore[arg-type]
        )
    assert spy.calls
