"""Study 1, ``home-safety-visits``: did fire-service Safe and Well visits reduce later A&E
attendances for falls?

Design (docs/studies.md has the argument):

- **Cohorts.** *Visited*: people with a Safe and Well visit in the visit year (so that the 12
  months before and after it are inside the extracts). *Comparison*: people aged 65 or over at
  the window start with no Safe and Well visit, still registered with a GP at the anchor date.
- **Matching.** Exact stratification on age band (65-74, 75-84, 85+) and on when the visit
  happened (quarter of the visit year): each comparison person is placed at the middle of each
  quarter (a pseudo-visit date), so both cohorts are compared over the same calendar months.
- **Outcome.** A&E attendances for falls (one per person per day, so a record keyed twice
  counts once) in the 365 days before and the 365 days after the (pseudo-)visit.
- **Estimate.** Difference in differences on the ratio scale, by conditional Poisson: within
  each person the split of falls between before and after is binomial and does not depend on
  their frailty, which is what confounds a naive comparison. Aggregated over people, that is a
  grouped logistic regression on the counts in each cohort x stratum x period cell, which the
  aggregate use returns after disclosure control (:func:`candour.studies.stats.conditional_did`).

One aggregate query gives every cell. If disclosure control suppresses a cell, the strata are
coarsened (quarter -> half year -> none, then age band -> none) and the query run again,
so that no estimate rests on a partly hidden table; only the table the estimate uses is
released.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from candour.studies.governance import StudyError, StudyRun
from candour.studies.stats import RatioEstimate, conditional_did

NAME = "home-safety-visits"
USE_FILE = "home-safety-visits.yaml"
WINDOW_START = date(2023, 1, 1)
VISITS_FROM = date(2024, 1, 1)
VISITS_TO = date(2024, 12, 31)
PERIOD_DAYS = 365


@dataclass(frozen=True)
class Level:
    """One way of stratifying: by age band or not, and how the visit year is split."""

    name: str
    by_age: bool
    periods: tuple[tuple[str, date, date, date], ...]
    """(label, first day, last day, anchor for the comparison cohort) for each visit period."""


QUARTERS = (
    ("Q1", date(2024, 1, 1), date(2024, 3, 31), date(2024, 2, 15)),
    ("Q2", date(2024, 4, 1), date(2024, 6, 30), date(2024, 5, 16)),
    ("Q3", date(2024, 7, 1), date(2024, 9, 30), date(2024, 8, 15)),
    ("Q4", date(2024, 10, 1), date(2024, 12, 31), date(2024, 11, 15)),
)
HALVES = (
    ("H1", date(2024, 1, 1), date(2024, 6, 30), date(2024, 4, 1)),
    ("H2", date(2024, 7, 1), date(2024, 12, 31), date(2024, 10, 1)),
)
YEAR = (("2024", VISITS_FROM, VISITS_TO, date(2024, 7, 1)),)
LEVELS = (
    Level("age band x visit quarter", True, QUARTERS),
    Level("age band x visit half-year", True, HALVES),
    Level("age band", True, YEAR),
    Level("visit quarter", False, QUARTERS),
    Level("none", False, YEAR),
)


def _d(value: date) -> str:
    return f"DATE '{value.isoformat()}'"


def cells_sql(level: Level) -> str:
    """The one aggregate query: falls by cohort x age band x visit period x before/after."""
    period_case = " ".join(
        f"WHEN v.visit_date BETWEEN {_d(first)} AND {_d(last)} THEN '{label}'"
        for label, first, last, _ in level.periods
    )
    anchors = " UNION ALL ".join(
        f"SELECT '{label}' AS visit_period, {_d(anchor)} AS anchor"
        for label, _, _, anchor in level.periods
    )
    age_band = (
        "CASE WHEN a.age_start < 75 THEN '65-74' WHEN a.age_start < 85 THEN '75-84' "
        "ELSE '85+' END"
        if level.by_age
        else "'65+'"
    )
    return f"""
WITH visits AS (
    SELECT person_id, min(visit_date) AS visit_date
    FROM fire_home_safety_visits
    WHERE visit_type = 'Safe and Well'
    GROUP BY person_id
),
ages AS (
    SELECT person_id,
           min(age_at_arrival - CAST(floor(date_diff('day', {_d(WINDOW_START)}, arrival_date)
               / 365.2425) AS INTEGER)) AS age_start
    FROM ae_attendances
    WHERE age_at_arrival IS NOT NULL AND arrival_date IS NOT NULL
    GROUP BY person_id
),
gone AS (
    SELECT person_id, min(deregistration_date) AS left_on
    FROM gp_registrations
    WHERE deregistration_date IS NOT NULL
    GROUP BY person_id
),
anchors AS ({anchors}),
cohort AS (
    SELECT v.person_id, 'visited' AS cohort, CASE {period_case} END AS visit_period,
           v.visit_date AS anchor
    FROM visits v
    WHERE v.visit_date BETWEEN {_d(VISITS_FROM)} AND {_d(VISITS_TO)}
    UNION ALL
    SELECT a.person_id, 'comparison' AS cohort, n.visit_period, n.anchor
    FROM ages a
    CROSS JOIN anchors n
    LEFT JOIN visits v ON v.person_id = a.person_id
    LEFT JOIN gone g ON g.person_id = a.person_id
    WHERE v.person_id IS NULL AND a.age_start >= 65
      AND (g.left_on IS NULL OR g.left_on > n.anchor)
),
falls AS (
    SELECT DISTINCT person_id, arrival_date
    FROM ae_attendances
    WHERE diagnosis_category = 'fall' AND arrival_date IS NOT NULL
),
cells AS (
    SELECT c.cohort,
           {age_band} AS age_band,
           c.visit_period,
           CASE WHEN f.arrival_date < c.anchor THEN 'before' ELSE 'after' END AS period
    FROM cohort c
    JOIN ages a ON a.person_id = c.person_id
    JOIN falls f ON f.person_id = c.person_id
    WHERE a.age_start >= 65
      AND date_diff('day', c.anchor, f.arrival_date) >= -{PERIOD_DAYS}
      AND date_diff('day', c.anchor, f.arrival_date) < {PERIOD_DAYS}
)
SELECT cohort, age_band, visit_period, period, count(*) AS falls
FROM cells
GROUP BY cohort, age_band, visit_period, period
ORDER BY cohort, age_band, visit_period, period
"""


def _wide(table: pd.DataFrame) -> pd.DataFrame:
    """One row per cohort x stratum with its falls before and after."""
    wide = table.pivot_table(
        index=["cohort", "age_band", "visit_period"],
        columns="period",
        values="falls",
        aggfunc="first",
        dropna=False,
    )
    return wide.reset_index()


@dataclass(frozen=True)
class Analysis:
    """What the study found, from the released table alone."""

    level: Level
    table: pd.DataFrame
    wide: pd.DataFrame
    estimate: RatioEstimate
    per_stratum: list[dict[str, Any]]


def _complete(table: pd.DataFrame, level: Level) -> bool:
    if table.empty or table["falls"].isna().any():
        return False
    wide = _wide(table)
    if {"before", "after"} - set(wide.columns):
        return False
    if wide[["before", "after"]].isna().any().any():
        return False
    return set(wide["cohort"]) == {"visited", "comparison"} and len(wide) == 2 * len(
        set(zip(wide["age_band"], wide["visit_period"], strict=True))
    )


def analyse(table: pd.DataFrame, level: Level) -> Analysis:
    """Estimate the effect from one protected cells table."""
    wide = _wide(table)
    wide["stratum"] = wide["age_band"].astype(str) + " / " + wide["visit_period"].astype(str)
    wide["before"] = pd.to_numeric(wide["before"]).astype(float)
    wide["after"] = pd.to_numeric(wide["after"]).astype(float)
    estimate = conditional_did(
        list(wide["stratum"]),
        [c == "visited" for c in wide["cohort"]],
        list(wide["before"]),
        list(wide["after"]),
    )
    per_stratum: list[dict[str, Any]] = []
    for stratum, rows in wide.groupby("stratum", sort=True):
        try:
            one = conditional_did(
                list(rows["stratum"]),
                [c == "visited" for c in rows["cohort"]],
                list(rows["before"]),
                list(rows["after"]),
            )
        except ValueError:
            continue
        per_stratum.append(
            {
                "stratum": str(stratum),
                "estimate": one.estimate,
                "ci_low": one.ci_low,
                "ci_high": one.ci_high,
            }
        )
    return Analysis(level, table, wide, estimate, per_stratum)


def run(study: StudyRun) -> tuple[dict[str, float], dict[str, Any]]:
    """Run the study under its (aggregate) use; return the headline figures and details."""
    chosen: tuple[Level, pd.DataFrame, int] | None = None
    tried: list[str] = []
    for level in LEVELS:
        table = study.query(cells_sql(level))
        tried.append(level.name)
        if _complete(table, level):
            chosen = (level, table, len(study.queries) - 1)
            break
    if chosen is None:
        raise StudyError(
            "too few falls for any stratification to survive disclosure control "
            f"(tried: {', '.join(tried)}); the study needs a larger population"
        )
    level, table, position = chosen
    analysis = analyse(table, level)
    est = analysis.estimate
    study.release_gated(
        position,
        name="falls-before-after-visits",
        title="Home safety visits and falls: A&E attendances before and after a visit",
        description=(
            "A&E attendances for falls in the 12 months before and the 12 months after a fire "
            "service Safe and Well visit in 2024, for visited people and for a comparison group "
            "of people aged 65 and over without a visit (placed at the middle of each period), "
            f"by age band and visit period ({level.name}). Counts below the threshold are "
            "suppressed and others rounded; see the study's report for the estimate."
        ),
        keywords=["falls", "fire and rescue", "home safety", "emergency department", "evaluation"],
        temporal=(date(2023, 1, 1), date(2025, 12, 31)),
        column_titles={
            "cohort": "Cohort",
            "age_band": "Age band at 1 January 2023",
            "visit_period": "Visit period",
            "period": "Before or after the visit",
            "falls": "A&E attendances for falls",
        },
        column_descriptions={
            "falls": "A&E attendances for falls (one per person per day) in the 365 days "
            "before or after the visit or pseudo-visit date",
        },
    )
    figures = {"estimate": est.estimate, "ci_low": est.ci_low, "ci_high": est.ci_high}
    totals = analysis.wide.groupby("cohort")[["before", "after"]].sum()
    details: dict[str, Any] = {
        "method": "conditional Poisson difference-in-differences (grouped logistic regression "
        "on cohort x stratum cells), stratified on age band and visit period",
        "stratification": level.name,
        "levels_tried": tried,
        "strata": est.strata,
        "dispersion": est.dispersion,
        "log_ratio": est.log_ratio,
        "se": est.se,
        "per_stratum": analysis.per_stratum,
        "pooled": figures,
        "tables": [
            {
                "title": "Falls by cohort, age band, visit period and before/after (as published)",
                "columns": ["Cohort", "Age band", "Visit period", "Before or after", "Falls"],
                "rows": analysis.table[["cohort", "age_band", "visit_period", "period", "falls"]]
                .astype(object)
                .where(analysis.table.notna(), None)
                .values.tolist(),
            }
        ],
        "totals": {
            str(cohort): {"before": float(row["before"]), "after": float(row["after"])}
            for cohort, row in totals.iterrows()
        },
        "cells": analysis.table.astype(object).where(analysis.table.notna(), None).to_dict(
            "records"
        ),
    }
    return figures, details


def describe(figures: dict[str, float], details: dict[str, Any]) -> dict[str, list[str]]:
    """The report's words."""
    totals = details["totals"]
    visited, comparison = totals.get("visited", {}), totals.get("comparison", {})
    direction = "fell" if figures["estimate"] < 0 else "rose"
    findings = [
        f"Relative to the comparison group, A&E attendances for falls {direction} by "
        f"{abs(figures['estimate']):.0%} in the year after a visit (95% confidence interval "
        f"{figures['ci_low']:+.0%} to {figures['ci_high']:+.0%}).",
        f"Visited people: {visited.get('before', 0):,.0f} falls in the year before their visit, "
        f"{visited.get('after', 0):,.0f} in the year after (published, rounded counts).",
        f"Comparison group: {comparison.get('before', 0):,.0f} before and "
        f"{comparison.get('after', 0):,.0f} after their pseudo-visit dates.",
    ]
    if figures["ci_low"] > 0 or figures["ci_high"] < 0:
        findings.append("The interval excludes no change.")
    else:
        findings.append("The interval includes no change: the data cannot rule it out.")
    return {
        "findings": findings,
        "method": [
            "Visited: a Safe and Well visit in 2024 (the first, if several). Comparison: people "
            "aged 65 or over at 1 January 2023 without one, still registered with a GP.",
            f"Matched by exact stratification on {details['stratification']}; each comparison "
            "person is placed at the middle of each visit period.",
            "Falls: A&E attendances with diagnosis group 'fall', one per person per day, in "
            "the 365 days before and after the (pseudo-)visit.",
            "Estimate: conditional Poisson difference-in-differences (person fixed effects), "
            "fitted as a grouped logistic regression on the published cells; the standard "
            f"error is scaled by the Pearson dispersion ({details['dispersion']:.2f}).",
        ],
        "leaves": [
            "One table of falls counts by cohort, age band, visit period and before/after, "
            "after disclosure control (threshold 10, rounding to 5) and a checker's release.",
            "The estimate is computed from that published table alone, so anyone can "
            "reproduce it from the open data.",
        ],
    }
