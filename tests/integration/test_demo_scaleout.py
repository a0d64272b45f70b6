"""`candour demo` beyond one machine: the store on PostgreSQL and the engine Spark give the same
linkage quality and the same study results as the embedded default (issue 8).

The same county (MIN_PEOPLE, seed 1, the dense effects test_demo uses so every study runs) is
built twice through the CLI: once on SQLite + DuckDB, once on PostgreSQL + Spark. Quality is
measured again from each home's person index against the county's truth, not read from the
report. Also: the demo refuses a PostgreSQL store it did not create, and changes nothing in it.
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select
from tests.integration.test_demo import Built, run_demo_cli
from typer.testing import CliRunner

from candour.cli.main import app
from candour.config import Settings
from candour.demo import MIN_PEOPLE, STUDY_NAMES, QueryFact
from candour.home import Home
from candour.linkage.evaluate import Quality
from candour.linkage.outputs import evaluate_index
from candour.store import dispose, transaction
from candour.store.gate import GateQuery
from candour.store.linkage import LinkRun

runner = CliRunner()

# Linkage: both engines run the same Splink model, blocking rules and EM training from the same
# seeded inputs, but Spark sums each EM step over partitions in another order than DuckDB, so
# the trained m and u probabilities may differ in their last bits, and a pair whose match
# weight sits exactly at the threshold could fall the other way. At this county's size (2,178
# records, 3,810 true pairs) one pair moves pairwise recall or precision by about 0.0003; 0.002
# allows about seven such pairs, and nothing like a real difference between the engines.
QUALITY_TOLERANCE = 0.002
# Studies: their figures are computed in Python from the gate's released, disclosure-controlled
# tables, which must be identical when the linkage is (the same people, the same rounding).
# What remains are sums of floats whose order Spark's shuffle may change: 1e-9 absorbs that
# and no real difference.
STUDY_TOLERANCE = 1e-9
STUDY_FIGURES = {
    "home-safety-visits": ("estimate", "ci_low", "ci_high"),
    "family-needs": ("adjusted_rand",),
    "hmo-risk": ("precision_at_100",),
}


def _quality(built: Built, settings: Settings) -> Quality:
    return evaluate_index(settings, Home(built.home).synth / "truth" / "records.csv")


def _query_shapes(queries: list[QueryFact]) -> list[tuple[str, int, int, int, int]]:
    """What each gated query returned and what disclosure control did, without ids."""
    return [(q.question, q.rows, q.cells, q.suppressed, q.rounded) for q in queries]


def _verify_ledger(home: Path, env: dict[str, str] | None = None) -> int:
    """Verify the home's log in full, as an outside auditor would; return its size."""
    result = runner.invoke(app, ["ledger", "verify", "--full", "--home", str(home)], env=env)
    assert result.exit_code == 0, result.output
    match = re.match(r"OK \S+ size (\d+) ", result.output)
    assert match, result.output
    return int(match.group(1))


@pytest.mark.slow
@pytest.mark.spark
@pytest.mark.postgres
def test_postgres_and_spark_give_the_embedded_demos_linkage_and_studies(
    tmp_path: Path, postgres_url: str
):
    (tmp_path / "embedded").mkdir()
    (tmp_path / "scaleout").mkdir()
    embedded = run_demo_cli(tmp_path / "embedded")
    env = {"CANDOUR_DATABASE_URL": postgres_url, "CANDOUR_ENGINE": "spark"}
    scaled = run_demo_cli(tmp_path / "scaleout", env=env)
    embedded_settings = Settings(home=embedded.home)
    scaled_settings = Settings(home=scaled.home, database_url=postgres_url, engine="spark")
    try:
        # The second run really used PostgreSQL and Spark: no SQLite store in its home, a
        # Spark link run, and every gated query (the demo's and the studies') run on Spark.
        assert not (scaled.home / "candour.db").exists()
        assert (embedded.home / "candour.db").exists()
        with transaction(scaled_settings) as session:
            link_engines = set(session.scalars(select(LinkRun.engine)))
            query_engines = list(session.scalars(select(GateQuery.engine)))
        assert link_engines == {"spark"}
        assert query_engines and set(query_engines) == {"spark"}
        assert "spark at local[2]" in scaled.output
        assert "SQLite in the home" in embedded.output and "duckdb" in embedded.output

        # Linkage quality, measured again from each home's person index.
        ours, theirs = _quality(scaled, scaled_settings), _quality(embedded, embedded_settings)
        assert ours.records == theirs.records > MIN_PEOPLE
        assert ours.missing_from_index == theirs.missing_from_index == 0
        for figure in ("pairwise_precision", "pairwise_recall", "pairwise_f1"):
            assert getattr(ours, figure) == pytest.approx(
                getattr(theirs, figure), abs=QUALITY_TOLERANCE
            ), figure
        assert ours.pairwise_f1 > 0.95
        assert scaled.report.facts["quality"] == ours

        # Every study ran on both, with the same headline figures.
        for built in (embedded, scaled):
            assert built.report.facts["studies_not_run"] == {}
            assert sorted(built.report.facts["studies"]) == sorted(STUDY_NAMES)
        for name, keys in STUDY_FIGURES.items():
            mine = scaled.report.facts["studies"][name].figures
            reference = embedded.report.facts["studies"][name].figures
            for key in keys:
                assert mine[key] is not None and reference[key] is not None, (name, key)
                assert mine[key] == pytest.approx(reference[key], abs=STUDY_TOLERANCE), (name, key)
        families = [b.report.facts["studies"]["family-needs"] for b in (embedded, scaled)]
        assert families[0].details["groups"] == families[1].details["groups"]

        # The demo's own gated queries: the same protected outputs, the same suppression.
        assert _query_shapes(scaled.report.facts["queries"]) == _query_shapes(
            embedded.report.facts["queries"]
        )
        optouts = [b.report.facts["optouts"] for b in (embedded, scaled)]
        assert optouts[0].opted_out == optouts[1].opted_out > 0

        # Both logs verify in full, and record the same number of events: the same ingests,
        # link run, choices, uses, queries and releases, whichever backend ran them.
        assert _verify_ledger(scaled.home, env) == _verify_ledger(embedded.home) > 0
    finally:
        dispose(scaled_settings)
        dispose(embedded_settings)


@pytest.mark.postgres
def test_demo_refuses_a_postgres_store_that_holds_data_and_leaves_it_alone(
    tmp_path: Path, postgres_url: str
):
    conninfo = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True) as con:
        con.execute("CREATE TABLE payroll (name text, salary int)")
        con.execute("INSERT INTO payroll VALUES ('a', 1)")
    # A previous demo home: the demo would normally replace it, but not while the store is
    # refused, so nothing at all changes.
    home = tmp_path / "home"
    home.mkdir()
    (home / ".candour-demo").write_text("from an earlier demo\n")
    (home / "kept").write_text("still here")
    env = {"CANDOUR_DATABASE_URL": postgres_url}
    result = runner.invoke(
        app, ["demo", "--people", str(MIN_PEOPLE), "--home", str(home), "--no-serve"], env=env
    )
    assert result.exit_code == 2, result.output
    assert "already holds 1 table (payroll)" in result.output
    assert "CANDOUR_DATABASE_URL" in result.output and "empty" in result.output
    assert "Traceback" not in result.output
    with psycopg.connect(conninfo) as con:
        assert con.execute("SELECT name, salary FROM payroll").fetchall() == [("a", 1)]
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    assert tables == [("payroll",)]
    assert (home / "kept").read_text() == "still here"


@pytest.mark.postgres
def test_demo_names_a_store_it_cannot_reach(tmp_path: Path, postgres_url: str):
    missing = postgres_url.rsplit("/", 1)[0] + "/candour_no_such_database"
    result = runner.invoke(
        app,
        ["demo", "--people", str(MIN_PEOPLE), "--home", str(tmp_path / "home"), "--no-serve"],
        env={"CANDOUR_DATABASE_URL": missing},
    )
    assert result.exit_code == 2, result.output
    assert "cannot reach the database" in result.output
    assert "candour_no_such_database" in result.output
    assert not (tmp_path / "home").exists()
