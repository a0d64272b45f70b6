"""Study 3, ``hmo-risk``: rank properties by how likely they are to be unlicensed HMOs.

Design (docs/studies.md):

- **Signals per property**, from council tax and housing (one row per adult occupant) and the
  police: adults who moved in during the window (turnover), a single person discount claimed
  while two or more adults live there, housing complaints in the last 12 months, police noise
  and anti-social behaviour incidents involving anyone who lived there, whether any current
  occupant is the liable party (tenants of an HMO are not: the landlord is), and whether the
  property has an HMO licence number.
- **Score**, fixed in advance and explainable to the people it is used on: ``log(1 + new
  occupants) + log(1 + complaints) + log(1 + ASB incidents) + [single person discount with 2+
  adults] - [a current occupant is liable] - 2 x [licensed]``. Each term is a reason an officer
  can check on a visit; no weight was fitted to the planted truth.

The ranking is property-level, so it runs under the enforcement team's record-level use (for
fraud prevention: the single person discount and licensing); the ranked list is kept inside
the environment, readable only by the environment's own account, for that team. What is
published is a disclosure-controlled count of properties by risk band and signal.
"""

from __future__ import annotations

import csv
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from candour.home import Home
from candour.studies.governance import StudyError, StudyRun, protect_profile
from candour.studies.stats import precision_at

NAME = "hmo-risk"
USE_FILE = "hmo-risk.yaml"
WINDOW_START = date(2023, 1, 1)
TOP = 100
BANDS = (("Highest risk (top 100)", 0, TOP), ("High (101-500)", TOP, 500))
REST_BAND = "Other properties"


def features_sql() -> str:
    """One row per property with the signals the score uses."""
    return f"""
WITH occupants AS (
    SELECT DISTINCT property_ref, person_id
    FROM council_tax_housing
    WHERE property_ref IS NOT NULL
),
asb AS (
    SELECT o.property_ref, count(DISTINCT p.person_id || '|' || CAST(p.event_date AS VARCHAR))
           AS asb_incidents
    FROM police_incidents p
    JOIN occupants o ON o.person_id = p.person_id
    WHERE p.incident_type = 'asb_noise'
    GROUP BY o.property_ref
),
homes AS (
    SELECT property_ref,
           count(DISTINCT person_id) AS adults_ever,
           count(DISTINCT CASE WHEN occupancy_end IS NULL THEN person_id END) AS adults_now,
           count(DISTINCT CASE WHEN occupancy_start >= DATE '{WINDOW_START.isoformat()}'
                 THEN person_id END) AS new_occupants,
           max(CASE WHEN single_person_discount = 'Y' THEN 1 ELSE 0 END) AS spd,
           max(CASE WHEN hmo_licence_no IS NOT NULL AND trim(hmo_licence_no) <> ''
               THEN 1 ELSE 0 END) AS licensed,
           max(coalesce(complaints_12m, 0)) AS complaints,
           max(CASE WHEN liable_party = 'Y' AND occupancy_end IS NULL THEN 1 ELSE 0 END)
               AS liable_now
    FROM council_tax_housing
    WHERE property_ref IS NOT NULL
    GROUP BY property_ref
)
SELECT h.*, coalesce(a.asb_incidents, 0) AS asb_incidents
FROM homes h
LEFT JOIN asb a ON a.property_ref = h.property_ref
"""


def score(features: pd.DataFrame) -> pd.Series:
    """The fixed risk score (higher is riskier)."""
    f = features.astype({c: float for c in features.columns if c != "property_ref"})
    crowded_discount = ((f["spd"] > 0) & (f["adults_now"] >= 2)).astype(float)
    return (
        np.log1p(f["new_occupants"])
        + np.log1p(f["complaints"])
        + np.log1p(f["asb_incidents"])
        + crowded_discount
        - f["liable_now"]
        - 2.0 * f["licensed"]
    )


def rank(features: pd.DataFrame) -> pd.DataFrame:
    """Properties with their score, riskiest first (ties broken by property reference, so the
    ranking is reproducible)."""
    ranked = features.copy()
    ranked["score"] = score(features)
    ranked = ranked.sort_values(["score", "property_ref"], ascending=[False, True], kind="stable")
    ranked["rank"] = np.arange(1, len(ranked) + 1)
    return ranked.reset_index(drop=True)


def band_of(rank_: int) -> str:
    """The published risk band of a property at position ``rank_`` (1-based)."""
    for label, low, high in BANDS:
        if low < rank_ <= high:
            return label
    return REST_BAND


def _keep_for_enforcement(home: Home, ranked: pd.DataFrame, use_id: str) -> Path:
    """Write the ranked list inside the environment for the enforcement team's use only:
    a private folder and file (modes 0700/0600), never under reports, outputs or releases."""
    folder = home.root / "restricted" / NAME
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(home.root / "restricted", 0o700)
    os.chmod(folder, 0o700)
    path = folder / f"ranking-{use_id}.csv"
    tmp = folder / f".{path.name}.tmp"
    columns = ["rank", "property_ref", "score", "new_occupants", "adults_now", "spd",
               "complaints", "asb_incidents", "liable_now", "licensed"]
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", newline="") as handle:
        handle.write(f"# {use_id}: for private sector housing enforcement only; "
                     f"written {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}\n")
        ranked[columns].to_csv(handle, index=False, lineterminator="\n")
    os.replace(tmp, path)
    return path


def run(study: StudyRun) -> tuple[dict[str, float], dict[str, Any]]:
    """Score and rank every property (record-level, inside); publish counts by risk band."""
    features = study.query(features_sql())
    if features.empty:
        raise StudyError("no council tax properties to rank")
    ranked = rank(features)
    kept = _keep_for_enforcement(Home(study.settings.home), ranked, study.use.use_id)
    ranked["band"] = [band_of(int(r)) for r in ranked["rank"]]
    ranked["complaint"] = np.where(ranked["complaints"] > 0, "Complaint in last 12 months",
                                   "No complaint")
    summary = (
        ranked.groupby(["band", "complaint"], sort=True)
        .size()
        .rename("properties")
        .reset_index()
    )
    protected = protect_profile(
        summary,
        keys=["band", "complaint"],
        counts=["properties"],
        threshold=study.use.spec.disclosure.threshold,
        rounding=study.use.spec.disclosure.rounding,
    )
    study.release(
        protected,
        name="hmo-risk-bands",
        title="Likely unlicensed HMOs: properties by risk band and housing complaints",
        description=(
            "Council tax properties in Wealdshire by their risk of being an unlicensed house in "
            "multiple occupation (top 100, next 400, the rest), from a fixed score of occupant "
            "turnover, single person discounts with several adults, housing complaints, police "
            "noise and anti-social behaviour incidents, the liable party and licence numbers; "
            "and whether each had a housing complaint in the last 12 months. Which properties "
            "are in each band is not published."
        ),
        keywords=["housing", "HMO", "licensing", "council tax", "enforcement"],
        temporal=(date(2023, 1, 1), date(2025, 12, 31)),
        column_titles={
            "band": "Risk band",
            "complaint": "Housing complaint",
            "properties": "Properties",
        },
    )
    top = ranked.head(TOP)
    figures: dict[str, float] = {"properties_ranked": float(len(ranked))}
    published = protected.table
    details: dict[str, Any] = {
        "properties_ranked": int(len(ranked)),
        "restricted_file": str(kept),
        "top_signals": {
            "new_occupants_median": float(top["new_occupants"].median()),
            "with_complaint_share": float((top["complaints"] > 0).mean()),
        },
        "score_quantiles": [float(q) for q in np.quantile(ranked["score"], [0.5, 0.9, 0.99])]
        if len(ranked)
        else [],
        "bands": published.astype(object).where(published.notna(), None).to_dict("records"),
        "tables": [
            {
                "title": "Properties by risk band and housing complaints (as published)",
                "columns": ["Risk band", "Housing complaint", "Properties"],
                "rows": published.astype(object).where(published.notna(), None).values.tolist(),
            }
        ],
        "_ranked": ranked[["property_ref", "rank", "score"]],
    }
    return figures, details


def evaluate(truth: Path, details: dict[str, Any]) -> dict[str, Any]:
    """Precision at 100 against the planted unlicensed HMOs (synthetic county only)."""
    path = truth / "hmos.csv"
    if not path.is_file():
        return {}
    ranked: pd.DataFrame = details.pop("_ranked")
    with path.open(newline="") as handle:
        unlicensed = {r["property_id"] for r in csv.DictReader(handle)
                      if r["is_unlicensed_hmo"] == "1"}
    hits = [str(p) in unlicensed for p in ranked["property_ref"]]
    return {
        "precision_at_100": precision_at(hits, TOP),
        "planted_unlicensed": len(unlicensed),
        "precision_at_planted": precision_at(hits, max(1, len(unlicensed))),
    }


def describe(figures: dict[str, float], details: dict[str, Any]) -> dict[str, list[str]]:
    """The report's words."""
    findings = [f"{details['properties_ranked']:,} council tax properties scored and ranked."]
    if "precision_at_100" in figures:
        findings.append(
            f"Of the 100 highest-ranked properties, {figures['precision_at_100']:.0%} are "
            "planted unlicensed HMOs in the synthetic county (precision at 100)."
        )
    signals = details["top_signals"]
    findings.append(
        f"The top 100 had a median of {signals['new_occupants_median']:.0f} adults moving in "
        f"since January 2023; {signals['with_complaint_share']:.0%} had a housing complaint."
    )
    return {
        "findings": findings,
        "method": [
            "Signals per property from council tax (occupants, turnover, discount, liable party, "
            "licence number, complaints) and police noise/ASB incidents of its occupants.",
            "A fixed additive score, set in advance; properties ranked by it.",
        ],
        "leaves": [
            "Only counts of properties by risk band, after disclosure control and a checker's "
            "release.",
            "The ranked list of properties stays inside the environment for the housing "
            "enforcement team's record-level use.",
        ],
    }
