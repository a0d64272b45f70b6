"""Each study's design, without a data home: its use.yaml is valid for its purpose, every query
it sends passes the gate's validator under exactly the grants it asks for (and, for the
aggregate study, the output-shape rules of disclosure control), and its decisions behave."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from candour import choices
from candour.gate import QueryRefused, TableInfo, validate
from candour.gate.shape import plan
from candour.gate.tables import granted_tables
from candour.studies import StudyUsers, family_needs, get_study, hmo_risk, home_safety, list_studies
from candour.studies.governance import load_study_use
from candour.studies.report import Chart, Report, render_html
from candour.synth.extracts import SOURCES

SQL_TYPES = {"text": "VARCHAR", "category": "VARCHAR", "date": "DATE", "int": "BIGINT",
             "float": "DOUBLE", "bool": "BOOLEAN"}


def _catalogue() -> dict[str, TableInfo]:
    """The linked tables the synthetic county's sources.yaml gives the gate."""
    return {
        s.spec.name: TableInfo(
            source=s.spec.name,
            columns={n: SQL_TYPES[a.type] for n, a in s.spec.attributes.items()},
            has_event_date=s.spec.event_date is not None,
            rows=0,
            persons=0,
            link_key="k",
        )
        for s in SOURCES
    }


def _granted(name: str):
    study = get_study(name)
    spec = load_study_use(study.use_file, study.users, date(2026, 1, 1))
    return spec, granted_tables(spec.grants, _catalogue())


@pytest.mark.parametrize("study", [s.name for s in list_studies()])
def test_each_shipped_use_is_valid_for_its_purpose(study: str):
    definition = get_study(study)
    spec = load_study_use(definition.use_file, definition.users, date(2026, 3, 1))
    choices.load_purposes().check_use(spec.purpose, spec.output)
    assert spec.applicant == definition.users.analyst and spec.analysts == [spec.applicant]
    assert (spec.starts, spec.ends) == (date(2026, 3, 1), date(2027, 3, 1))
    assert spec.grants and all(cols != "*" for cols in spec.grants.values())


def test_outputs_match_what_leaves():
    assert _granted("home-safety-visits")[0].output == "aggregate"
    # Clustering and ranking need one row per household or property: record-level, for
    # purposes that allow it, and never published as such.
    assert _granted("family-needs")[0].purpose == "research"
    assert _granted("family-needs")[0].output == "record-level"
    assert _granted("hmo-risk")[0].purpose == "fraud-prevention"
    assert _granted("hmo-risk")[0].output == "record-level"


@pytest.mark.parametrize("level", home_safety.LEVELS, ids=lambda lv: lv.name)
def test_the_falls_query_passes_the_gate_and_its_shape_rules(level: home_safety.Level):
    _, tables = _granted("home-safety-visits")
    query = validate(home_safety.cells_sql(level), tables, aggregate=True)
    shape = plan(query)
    assert shape.keys == ("cohort", "age_band", "visit_period", "period")
    assert [(m.column, m.kind) for m in shape.measures] == [("falls", "count")]


def test_the_record_level_queries_pass_the_gate_with_only_their_grants():
    for name, sql in (("family-needs", family_needs.features_sql()),
                      ("hmo-risk", hmo_risk.features_sql())):
        _, tables = _granted(name)
        validate(sql, tables, aggregate=False)
    # Each use is granted only what its own queries read: the other's query is refused.
    with pytest.raises(QueryRefused, match="not granted"):
        validate(family_needs.features_sql(), _granted("hmo-risk")[1], aggregate=False)
    with pytest.raises(QueryRefused, match="not granted"):
        validate(hmo_risk.features_sql(), _granted("family-needs")[1], aggregate=False)


def _cells(suppress: tuple[str, str, str, str] | None = None) -> pd.DataFrame:
    rows = []
    for cohort, base in (("visited", 40), ("comparison", 600)):
        for band in ("65-74", "75-84", "85+"):
            for q in ("Q1", "Q2", "Q3", "Q4"):
                for period, factor in (("before", 1.0), ("after", 0.7 if cohort == "visited"
                                                                   else 1.0)):
                    falls = float(round(base * factor))
                    if suppress == (cohort, band, q, period):
                        falls = float("nan")
                    rows.append((cohort, band, q, period, falls))
    return pd.DataFrame(rows, columns=["cohort", "age_band", "visit_period", "period", "falls"])


def test_a_complete_table_gives_the_ratio_and_a_suppressed_cell_forces_coarser_strata():
    level = home_safety.LEVELS[0]
    table = _cells()
    assert home_safety._complete(table, level)
    result = home_safety.analyse(table, level)
    assert result.estimate.estimate == pytest.approx(-0.3, abs=0.01)
    assert result.estimate.strata == 12 and len(result.per_stratum) == 12
    assert not home_safety._complete(_cells(("visited", "85+", "Q3", "after")), level)


def test_the_hmo_score_ranks_crowded_unlicensed_turnover_first():
    features = pd.DataFrame(
        {
            "property_ref": ["a", "b", "c", "d"],
            "adults_ever": [1, 20, 18, 3],
            "adults_now": [1, 5, 5, 3],
            "new_occupants": [0, 15, 14, 1],
            "spd": [1, 1, 0, 0],
            "licensed": [0, 0, 1, 0],
            "complaints": [0, 2, 2, 0],
            "liable_now": [1, 0, 0, 1],
            "asb_incidents": [0, 3, 1, 0],
        }
    )
    ranked = hmo_risk.rank(features)
    assert list(ranked["property_ref"]) == ["b", "c", "d", "a"]
    assert list(ranked["rank"]) == [1, 2, 3, 4]
    assert hmo_risk.band_of(1) == hmo_risk.band_of(100) != hmo_risk.band_of(101)
    assert hmo_risk.band_of(501) == hmo_risk.REST_BAND


def test_the_report_page_escapes_and_links():
    report = Report(
        name="x", title="<script>", question="q?", use_id="DU-2026-001", use_title="t",
        engine="duckdb", run_at="now", figures={"estimate": -0.3, "missing": None},
        findings=["a & b"], method=[], leaves=[], charts=[Chart("c.png", "c", "alt")],
        tables=[{"title": "T", "columns": ["n"], "rows": [[None], [15]]}],
        datasets=[{"name": "d", "title": "D"}], ledger_entries={"queries": [4, 5]},
    )
    page = render_html(report)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert 'href="/register/DU-2026-001"' in page and 'href="/transparency/entries/5"' in page
    assert "[c]" in page and "a &amp; b" in page


def test_study_users_are_three_people():
    users = StudyUsers()
    assert len(set(users.roles())) == 3
    assert set(users.roles().values()) == {"analyst", "ig", "checker"}


def test_family_groups_do_not_depend_on_the_order_rows_arrive_in():
    # Engines return a query's rows in no set order; k-means++ seeding and the silhouette
    # sample pick by position, so the study sorts households before clustering.
    rng = np.random.default_rng(7)
    names = [name for name, *_ in family_needs.INDICATORS]
    centres = rng.integers(0, 6, size=(4, len(names)))
    rows = np.vstack([rng.poisson(centres[i % 4]) for i in range(400)])
    features = pd.DataFrame(rows, columns=names, index=[f"P{i:04d}" for i in range(400)])
    features.index.name = "property_ref"
    first = family_needs.cluster(features)
    for seed in (1, 2, 3):
        shuffled = features.sample(frac=1.0, random_state=seed)
        again = family_needs.cluster(shuffled)
        assert again[2] == first[2]
        pd.testing.assert_series_equal(again[0].sort_index(), first[0].sort_index())
        np.testing.assert_allclose(again[1], first[1])
