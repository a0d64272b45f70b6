"""The gate on Spark gives the same protected answers and the same cohorts as on DuckDB.

One Spark session serves the whole module (starting one takes most of a minute); each test
gives it its own data home through :class:`SparkEngine`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pandas as pd
import pytest
from tests.integration.test_gate_support import approved_use, build_home

from candour import choices, gate
from candour.config import Settings
from candour.gate import cohort as cohorts
from candour.gate.spark import SparkEngine, export_root, spark_session
from candour.home import Home

pytestmark = [pytest.mark.spark, pytest.mark.slow]

QUERIES = {
    "filtered": "SELECT diagnosis, count(*) AS n FROM ae_attendances WHERE cost >= 20 "
    "GROUP BY diagnosis",
    "join": "SELECT a.area, count(DISTINCT a.person_id) AS people FROM ae_attendances a "
    "JOIN fire_home_safety_visits f ON a.person_id = f.person_id "
    "WHERE f.risk_score >= 1 GROUP BY a.area ORDER BY a.area",
    "cte": "WITH risky AS (SELECT person_id FROM fire_home_safety_visits WHERE risk_score = 3) "
    "SELECT a.diagnosis, count(*) AS n FROM ae_attendances a "
    "JOIN risky r ON a.person_id = r.person_id GROUP BY a.diagnosis",
    "sums": "SELECT area, count(*) AS n, sum(cost) AS total, avg(cost) AS mean_cost "
    "FROM ae_attendances WHERE event_date >= DATE '2025-03-01' GROUP BY area",
    "whole table": "SELECT risk_score, count(*) AS n FROM fire_home_safety_visits "
    "GROUP BY risk_score",
}


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    session = spark_session(
        Settings(home=tmp_path_factory.mktemp("spark-scratch"), spark_master="local[2]")
    )
    yield session
    session.stop()


def _normalised(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_numeric_dtype(out[column]) or out[column].dtype == object:
            converted = pd.to_numeric(out[column], errors="coerce")
            if converted.notna().sum() == out[column].notna().sum():
                out[column] = converted.astype(float)
    return out.sort_values(list(out.columns[:1])).reset_index(drop=True)


def test_spark_answers_and_cohorts_equal_duckdb(sqlite_settings: Settings, spark: object):
    home = build_home(sqlite_settings, people=48)
    use_id = approved_use(sqlite_settings, threshold=1, rounding=1)
    everywhere, ae_only = {0, 3, 7, 12}, {5}
    for n in everywhere:
        choices.set_choice(
            home.people[n],
            "research",
            "opt-out",
            channel="cli",
            actor="t",
            settings=sqlite_settings,
        )
    for n in ae_only:
        choices.set_choice(
            home.people[n],
            "research",
            "opt-out",
            source="ae_attendances",
            channel="cli",
            actor="t",
            settings=sqlite_settings,
        )
    engine = SparkEngine(sqlite_settings, spark=spark)
    store = cohorts.CohortStore(Home(sqlite_settings.home))
    verifier = gate.home_verifier(sqlite_settings)
    for label, sql in QUERIES.items():
        duck = gate.run(use_id, "ana", sql, settings=sqlite_settings)
        on_spark = gate.run(use_id, "ana", sql, settings=sqlite_settings, engine=engine)
        assert (duck.engine, on_spark.engine) == ("duckdb", "spark")
        pd.testing.assert_frame_equal(
            _normalised(duck.table), _normalised(on_spark.table), obj=label
        )
        assert on_spark.cohort_exact == duck.cohort_exact, label
        cohort = store.read(on_spark.query_id)
        assert cohort == store.read(duck.query_id), label
        assert on_spark.cohort_sha256 == duck.cohort_sha256
        assert not set(cohort) & everywhere, label
        on_spark.receipt.verify(verifier)
        assert gate.get_query(on_spark.query_id, settings=sqlite_settings).engine == "spark"

    # And both equal the truth, computed here from the rows the home was built with.
    filtered = gate.run(use_id, "ana", QUERIES["filtered"], settings=sqlite_settings, engine=engine)
    out = everywhere | ae_only
    expected = Counter(
        r["diagnosis"] for r in home.ae if r["cost"] >= 20 and r["person_num"] not in out
    )
    assert dict(zip(filtered.table["diagnosis"], filtered.table["n"], strict=True)) == expected
    assert set(store.read(filtered.query_id)) == {
        r["person_num"] for r in home.ae if r["cost"] >= 20 and r["person_num"] not in out
    }
    assert filtered.cohort_exact
    # The linked tables were exported once, as Parquet, inside the data home.
    exports = [
        d
        for d in export_root(Home(sqlite_settings.home)).iterdir()
        if d.is_dir() and d.name != "scratch"
    ]
    assert len(exports) == 1
    assert sorted(p.name for p in exports[0].glob("*.parquet")) == [
        "ae_attendances.parquet",
        "fire_home_safety_visits.parquet",
    ]


def test_spark_refuses_what_duckdb_refuses_and_honours_a_time_limit(
    sqlite_settings: Settings, spark: object
):
    home = build_home(sqlite_settings, people=30)
    use_id = approved_use(sqlite_settings, output="record-level", purpose="direct-care")
    engine = SparkEngine(sqlite_settings, spark=spark)
    rows = gate.run(
        use_id,
        "ana",
        "SELECT person_id, cost FROM ae_attendances WHERE cost > 30 ORDER BY person_id, cost",
        settings=sqlite_settings,
        engine=engine,
    )
    duck = gate.run(
        use_id,
        "ana",
        "SELECT person_id, cost FROM ae_attendances WHERE cost > 30 ORDER BY person_id, cost",
        settings=sqlite_settings,
    )
    assert rows.table.astype(str).values.tolist() == duck.table.astype(str).values.tolist()
    capped = gate.run(
        use_id,
        "ana",
        "SELECT * FROM ae_attendances",
        settings=sqlite_settings,
        engine=engine,
        limits=gate.Limits(max_rows=5),
    )
    assert len(capped.table) == 5 and capped.truncated
    with pytest.raises(gate.QueryRefused) as refused:
        gate.run(
            use_id,
            "ana",
            "SELECT secret_note FROM ae_attendances",
            settings=sqlite_settings,
            engine=engine,
        )
    assert refused.value.rule == "column-not-granted"
    # Billions of rows to add up, but almost no memory: only the clock can stop it.
    bomb = (
        "SELECT sum(a.cost * b.cost + c.cost * d.cost + e.cost) AS x FROM ae_attendances a, "
        "ae_attendances b, ae_attendances c, ae_attendances d, ae_attendances e"
    )
    with pytest.raises(gate.QueryLimit) as stopped:
        gate.run(
            use_id,
            "ana",
            bomb,
            settings=sqlite_settings,
            engine=engine,
            limits=gate.Limits(seconds=3),
        )
    assert stopped.value.rule == "time-limit"
    # The session is still usable after a cancelled query.
    again = gate.run(
        use_id,
        "ana",
        "SELECT count(*) AS n FROM ae_attendances",
        settings=sqlite_settings,
        engine=engine,
    )
    assert int(again.table["n"].iloc[0]) == len(home.ae)
