"""Study 2, ``family-needs``: group households by their patterns of need.

Design (docs/studies.md):

- **Household.** A person's household is the property their GP registration gives
  (``property_ref``, the same reference council tax uses); everyone registered at one property
  is one household. Child and adult events are told apart by age at the A&E attendance and by
  the social care service (Children's or Adults').
- **Indicators.** For each household, how many distinct days its members had each kind of
  contact with children's and adults' social care (by reason), the police (by incident type)
  and A&E (by diagnosis group, child or adult), over the three years of the extracts.
- **Clustering.** k-means (scikit-learn) on ``log(1 + count)`` of the indicators, over the
  households with at least one indicator event; a household with none is in the group whose
  centre is nearest to "no contact at all". The number of groups is chosen by the silhouette
  score over 3 to 7 groups (on a fixed random sample of households, for speed).

Clustering needs one row per household, so this study's use is a record-level use for research
(Art 9(2)(j)); the rows stay in this process. Only each group's size and average indicators
leave, through disclosure control (threshold, dominance, rounding) and a checker's release.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from candour.studies.governance import StudyError, StudyRun, protect_profile

NAME = "family-needs"
USE_FILE = "family-needs.yaml"
SEED = 20230101
K_RANGE = range(3, 8)
SILHOUETTE_SAMPLE = 4000

# (indicator, source, category, child/adult or None for either)
INDICATORS: tuple[tuple[str, str, str, str | None], ...] = (
    ("sc_early_help", "social_care_contacts", "early_help", "child"),
    ("sc_child_neglect", "social_care_contacts", "child_neglect", "child"),
    ("sc_child_disability", "social_care_contacts", "child_disability", "child"),
    ("sc_adult_mental_health", "social_care_contacts", "adult_mental_health", "adult"),
    ("sc_carer_support", "social_care_contacts", "carer_support", "adult"),
    ("sc_domestic_abuse_support", "social_care_contacts", "domestic_abuse_support", "adult"),
    ("sc_learning_disability", "social_care_contacts", "learning_disability", "adult"),
    ("police_domestic_abuse", "police_incidents", "domestic_abuse", None),
    ("police_drugs", "police_incidents", "drugs", None),
    ("police_missing_person", "police_incidents", "missing_person", None),
    ("police_violence", "police_incidents", "violence", None),
    ("police_concern_for_welfare", "police_incidents", "concern_for_welfare", None),
    ("ae_injury_child", "ae_attendances", "injury", "child"),
    ("ae_respiratory_child", "ae_attendances", "respiratory", "child"),
    ("ae_self_harm_adult", "ae_attendances", "self_harm", "adult"),
    ("ae_mental_health_adult", "ae_attendances", "mental_health", "adult"),
    ("ae_alcohol_drugs_adult", "ae_attendances", "alcohol_drugs", "adult"),
)

TITLES = {
    "sc_early_help": "Children's social care: early help",
    "sc_child_neglect": "Children's social care: neglect",
    "sc_child_disability": "Children's social care: disability",
    "sc_adult_mental_health": "Adult social care: mental health",
    "sc_carer_support": "Adult social care: carer support",
    "sc_domestic_abuse_support": "Adult social care: domestic abuse support",
    "sc_learning_disability": "Adult social care: learning disability",
    "police_domestic_abuse": "Police: domestic abuse",
    "police_drugs": "Police: drugs",
    "police_missing_person": "Police: missing person",
    "police_violence": "Police: violence",
    "police_concern_for_welfare": "Police: concern for welfare",
    "ae_injury_child": "A&E: child injury",
    "ae_respiratory_child": "A&E: child respiratory",
    "ae_self_harm_adult": "A&E: adult self-harm",
    "ae_mental_health_adult": "A&E: adult mental health",
    "ae_alcohol_drugs_adult": "A&E: adult alcohol or drugs",
}


def _event_select(source: str) -> str:
    if source == "social_care_contacts":
        return (
            "SELECT person_id, event_date, contact_reason AS category, "
            "CASE WHEN service = 'Children' THEN 'child' ELSE 'adult' END AS role "
            "FROM social_care_contacts"
        )
    if source == "police_incidents":
        return (
            "SELECT person_id, event_date, incident_type AS category, 'any' AS role "
            "FROM police_incidents"
        )
    return (
        "SELECT person_id, event_date, diagnosis_category AS category, "
        "CASE WHEN age_at_arrival < 18 THEN 'child' ELSE 'adult' END AS role "
        "FROM ae_attendances"
    )


def features_sql() -> str:
    """One row per household (property) with its count of each indicator.

    Each person's events of one kind are counted on distinct days, so a contact keyed twice
    counts once.
    """
    sources = sorted({source for _, source, _, _ in INDICATORS})
    events = "\n    UNION ALL\n    ".join(_event_select(s) for s in sources)
    columns = []
    for name, _, category, role in INDICATORS:
        condition = f"e.category = '{category}'"
        if role is not None:
            condition += f" AND e.role = '{role}'"
        columns.append(f"count(DISTINCT CASE WHEN {condition} THEN e.day_key END) AS {name}")
    select = ",\n       ".join(columns)
    wanted = " OR ".join(
        f"(category = '{category}'" + (f" AND role = '{role}')" if role else ")")
        for _, _, category, role in INDICATORS
    )
    return f"""
WITH homes AS (
    SELECT person_id, min(property_ref) AS property_ref
    FROM gp_registrations
    WHERE property_ref IS NOT NULL
    GROUP BY person_id
),
events AS (
    {events}
),
wanted AS (
    SELECT person_id, category, role, person_id || '|' || CAST(event_date AS VARCHAR) AS day_key
    FROM events
    WHERE event_date IS NOT NULL AND ({wanted})
)
SELECT h.property_ref,
       {select}
FROM wanted e
JOIN homes h ON h.person_id = e.person_id
GROUP BY h.property_ref
"""


def _choose_k(x: np.ndarray) -> tuple[int, dict[int, float]]:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(SEED)
    sample = x if len(x) <= SILHOUETTE_SAMPLE else x[rng.choice(len(x), SILHOUETTE_SAMPLE, False)]
    scores: dict[int, float] = {}
    for k in K_RANGE:
        if k >= len(sample):
            break
        labels = KMeans(n_clusters=k, n_init=10, random_state=SEED).fit_predict(sample)
        if len(set(labels)) < 2:
            continue
        scores[k] = float(silhouette_score(sample, labels, random_state=SEED))
    if not scores:
        raise StudyError("too few households with recorded needs to form groups")
    return max(scores, key=lambda k: scores[k]), scores


def cluster(features: pd.DataFrame) -> tuple[pd.Series, np.ndarray, int, dict[int, float], int]:
    """Cluster households; return each one's group, the centres (log scale), the number of
    groups, the silhouette scores tried, and the group of a household with no events.

    Groups are numbered by need, lowest first, so that group 0 is always "low need".
    Households are put in property order first: k-means++ seeding and the silhouette sample pick
    rows by position, and engines return a query's rows in no set order (Spark's differs from
    DuckDB's, and DuckDB's from run to run), so without it the same data could group differently.
    """
    from sklearn.cluster import KMeans

    features = features.sort_index(kind="stable")
    names = [name for name, *_ in INDICATORS]
    x = np.log1p(features[names].to_numpy(dtype=float))
    k, scores = _choose_k(x)
    model = KMeans(n_clusters=k, n_init=10, random_state=SEED).fit(x)
    # Order groups by the total of their centre, so labels are stable and 0 is the lowest need.
    order = np.argsort(model.cluster_centers_.sum(axis=1), kind="stable")
    relabel = np.empty(k, dtype=int)
    relabel[order] = np.arange(k)
    labels = pd.Series(relabel[model.labels_], index=features.index, name="group")
    centres = model.cluster_centers_[order]
    no_events = int(relabel[int(model.predict(np.zeros((1, len(names))))[0])])
    return labels, centres, k, scores, no_events


def profiles(features: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """Each group's size and average indicators, with the evidence disclosure control needs
    (contributors, total and the largest two households' counts for each mean)."""
    names = [name for name, *_ in INDICATORS]
    rows = []
    for group, members in features.groupby(labels):
        row: dict[str, Any] = {"group": f"Group {int(group) + 1}", "households": len(members)}
        for name in names:
            values = members[name].to_numpy(dtype=float)
            top = np.sort(values)[::-1]
            row[name] = float(values.mean())
            row[f"_{name}_n"] = len(values)
            row[f"_{name}_t"] = float(values.sum())
            row[f"_{name}_a"] = float(top[0]) if len(top) else 0.0
            row[f"_{name}_b"] = float(top[1]) if len(top) > 1 else 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def run(study: StudyRun) -> tuple[dict[str, float], dict[str, Any]]:
    """Query household indicators (record-level, inside), cluster, release the profiles."""
    features = study.query(features_sql())
    if features.empty:
        raise StudyError("no household has any recorded need indicator")
    features = features.set_index("property_ref")
    labels, centres, k, scores, no_events = cluster(features)
    table = profiles(features, labels)
    names = [name for name, *_ in INDICATORS]
    protected = protect_profile(
        table,
        keys=["group"],
        counts=["households"],
        means=[(n, f"_{n}_n", f"_{n}_t", f"_{n}_a", f"_{n}_b") for n in names],
        threshold=study.use.spec.disclosure.threshold,
        rounding=study.use.spec.disclosure.rounding,
    )
    study.release(
        protected,
        name="family-need-groups",
        title="Families grouped by patterns of need: group sizes and average contacts",
        description=(
            f"Households in Wealdshire grouped into {k} patterns of need by k-means clustering of "
            "their contacts with social care, the police and A&E over 2023 to 2025: for each "
            "group, the number of households and the average number of days with each kind of "
            "contact per household. Groups are numbered from lowest to highest need. Small "
            "groups and averages dominated by one or two households are suppressed."
        ),
        keywords=["families", "social care", "police", "emergency department", "clustering"],
        temporal=(date(2023, 1, 1), date(2025, 12, 31)),
        column_titles={"group": "Group", "households": "Households", **TITLES},
        column_descriptions={
            name: f"Average days per household with a contact of this kind ({TITLES[name]})"
            for name in names
        },
    )
    published = protected.table
    figures: dict[str, float] = {"groups": float(k)}
    details: dict[str, Any] = {
        "groups": k,
        "silhouette": {str(key): value for key, value in scores.items()},
        "households_clustered_count": int(len(features)),
        "no_event_group": no_events,
        "indicators": names,
        "centres": centres.tolist(),
        "profile": published.astype(object).where(published.notna(), None).to_dict("records"),
        "tables": [
            {
                "title": "Group sizes and average contacts per household (as published)",
                "columns": ["Group", "Households", *[TITLES[n] for n in names]],
                "rows": published[["group", "households", *names]]
                .astype(object)
                .where(published[["group", "households", *names]].notna(), None)
                .values.tolist(),
            }
        ],
        # Inside the environment only, for scoring against a synthetic truth: never written to
        # the report or anywhere else (evaluate() returns only the summary score).
        "_labels": labels,
    }
    return figures, details


def _household_properties(truth: Path) -> dict[str, str]:
    """Each planted household's property as the GP extract gives it (the one it lives at at
    the end of the window: the new property for households that moved)."""
    votes: dict[str, Counter[str]] = {}
    with (truth / "people.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            home = row.get("new_property_id") or row["property_id"]
            votes.setdefault(row["household_id"], Counter())[home] += 1
    return {h: c.most_common(1)[0][0] for h, c in votes.items()}


def evaluate(truth: Path, details: dict[str, Any]) -> dict[str, Any]:
    """Score the grouping against the planted family clusters (synthetic county only): the
    adjusted Rand index over every planted family household."""
    from sklearn.metrics import adjusted_rand_score

    path = truth / "family_clusters.csv"
    if not path.is_file() or not (truth / "people.csv").is_file():
        return {}
    labels: pd.Series = details.pop("_labels")
    homes = _household_properties(truth)
    planted: list[int] = []
    found: list[int] = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            home = homes.get(row["household_id"])
            planted.append(int(row["cluster"]))
            found.append(int(labels.get(home, details["no_event_group"])))
    if not planted:
        return {}
    return {
        "adjusted_rand": float(adjusted_rand_score(planted, found)),
        "planted_households": len(planted),
        "planted_groups": len(set(planted)),
    }


def describe(figures: dict[str, float], details: dict[str, Any]) -> dict[str, list[str]]:
    """The report's words."""
    findings = [
        f"{details['groups']} groups of households by pattern of need (chosen by silhouette "
        f"score among {min(K_RANGE)} to {max(K_RANGE)}).",
    ]
    if "adjusted_rand" in figures:
        findings.append(
            f"Against the synthetic county's planted family clusters the adjusted Rand index is "
            f"{figures['adjusted_rand']:.3f} (1 is perfect agreement, 0 is chance)."
        )
    return {
        "findings": findings,
        "method": [
            "A household is everyone registered with a GP at one property (property_ref).",
            "Indicators: distinct days with each kind of social care contact, police incident "
            "and A&E attendance (child or adult), 2023 to 2025.",
            "k-means on log(1 + count); households with no indicator event join the group "
            "nearest to no contact.",
        ],
        "leaves": [
            "Only each group's number of households and average indicators, after disclosure "
            "control (threshold 10, rounding to 5, dominance) and a checker's release.",
            "Household-level indicators and group membership stay inside the environment.",
        ],
    }


def top_indicators(centres: Sequence[Sequence[float]], names: Sequence[str]) -> list[str]:
    """For each group, its most distinctive indicators (for chart labels)."""
    out = []
    for centre in centres:
        order = np.argsort(np.asarray(centre))[::-1][:3]
        out.append(", ".join(TITLES[names[i]] for i in order if centre[i] > 0.05) or "low need")
    return out
