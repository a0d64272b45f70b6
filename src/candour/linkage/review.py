"""Clerical review: uncertain pairs wait in a queue; a reviewer's decision overrides the model.

A run puts every pair in the review band (and every pair the twins guard held back) that is
not already decided into ``review_pairs``. A decision is appended to ``review_decisions``
(never updated: the history is the audit trail) with the reviewer and time; the latest decision
about a pair applies in every later run, whatever the model then says.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from candour.config import Settings
from candour.errors import CandourError
from candour.linkage.predict import GUARD_REASONS, Decision, pair
from candour.store import transaction
from candour.store.linkage import LinkModel, LinkRun, ReviewDecision, ReviewPair

DecisionText = Literal["match", "non-match"]
DECISIONS: tuple[str, ...] = ("match", "non-match")


class ReviewError(CandourError):
    """A review command cannot be carried out."""


@dataclass(frozen=True)
class WaterfallStep:
    """One bar of a match-weight waterfall: a comparison, the level it fell in, its weight."""

    comparison: str
    level: str
    weight: float
    tf_weight: float = 0.0


@dataclass(frozen=True)
class PairView:
    """A pair for a reviewer: its scores, its waterfall, and its latest decision."""

    pair_id: int
    record_key_l: str
    record_key_r: str
    match_weight: float
    match_probability: float
    reason: str
    status: str
    prior_weight: float
    waterfall: list[WaterfallStep]
    decision: str | None
    decided_by: str | None


def level_labels(model: dict[str, Any]) -> dict[str, dict[int, str]]:
    """Comparison -> gamma value -> level label, from a Splink model's JSON."""
    labels: dict[str, dict[int, str]] = {}
    for comparison in model.get("comparisons", []):
        levels = comparison["comparison_levels"]
        non_null = [lv for lv in levels if not lv.get("is_null_level")]
        mapping = {-1: "no value to compare"}
        for i, level in enumerate(non_null):
            mapping[len(non_null) - 1 - i] = str(
                level.get("label_for_charts") or level.get("sql_condition")
            )
        labels[comparison["output_column_name"]] = mapping
    return labels


def weights_of(row: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The per-comparison gamma and weights of a prediction row (no identity values)."""
    found: dict[str, dict[str, float]] = {}
    for column, value in row.items():
        if column.startswith("gamma_"):
            found.setdefault(column.removeprefix("gamma_"), {})["gamma"] = float(value or 0)
        elif column.startswith("mw_tf_adj_"):
            found.setdefault(column.removeprefix("mw_tf_adj_"), {})["tf"] = float(value or 0)
        elif column.startswith("mw_"):
            found.setdefault(column.removeprefix("mw_"), {})["mw"] = float(value or 0)
    return found


def sync_queue(
    session: Session, run_id: str, candidates: Iterable[dict[str, Any]]
) -> tuple[int, int]:
    """Put this run's uncertain pairs in the queue; return (pending now, newly added).

    Pending pairs this run no longer finds uncertain become ``stale``: the evidence changed,
    e.g. a new record now links them firmly one way or the other.
    """
    existing = {
        (p.record_key_l, p.record_key_r): p for p in session.scalars(select(ReviewPair)).all()
    }
    seen: set[tuple[str, str]] = set()
    added = 0
    for row in candidates:
        key = pair(row["record_key_l"], row["record_key_r"])
        seen.add(key)
        weights = json.dumps(weights_of(row), sort_keys=True)
        reason = GUARD_REASONS.get(int(row.get("guarded") or 0), "band")
        found = existing.get(key)
        if found is None:
            session.add(
                ReviewPair(
                    record_key_l=key[0],
                    record_key_r=key[1],
                    match_weight=float(row["match_weight"]),
                    match_probability=float(row["match_probability"]),
                    weights_json=weights,
                    reason=reason,
                    status="pending",
                    first_run_id=run_id,
                    last_run_id=run_id,
                )
            )
            added += 1
        else:
            found.match_weight = float(row["match_weight"])
            found.match_probability = float(row["match_probability"])
            found.weights_json = weights
            found.reason = reason
            found.last_run_id = run_id
            if found.status == "stale":
                found.status = "pending"
    for key, found in existing.items():
        if found.status == "pending" and key not in seen:
            found.status = "stale"
    session.flush()
    pending = session.scalar(
        select(func.count()).select_from(ReviewPair).where(ReviewPair.status == "pending")
    )
    return int(pending or 0), added


def standing_decisions(session: Session) -> list[Decision]:
    """The latest decision about every decided pair."""
    latest = (
        select(ReviewDecision.pair_id, func.max(ReviewDecision.id).label("last"))
        .group_by(ReviewDecision.pair_id)
        .subquery()
    )
    rows = session.execute(
        select(ReviewDecision).join(latest, ReviewDecision.id == latest.c.last)
    ).scalars()
    return [
        Decision(*pair(d.record_key_l, d.record_key_r), match=d.decision == "match") for d in rows
    ]


def decide(settings: Settings, pair_id: int, decision: str, reviewer: str) -> Decision:
    """Record a reviewer's decision about a pair; it applies from the next link run on."""
    if decision not in DECISIONS:
        raise ReviewError(f"decision must be match or non-match, not {decision!r}")
    reviewer = reviewer.strip()
    if not reviewer or len(reviewer) > 128:
        raise ReviewError("say who is deciding with --as NAME (1 to 128 characters)")
    with transaction(settings) as session:
        found = session.get(ReviewPair, pair_id)
        if found is None:
            raise ReviewError(f"no review pair {pair_id}; see `candour link review --list`")
        session.add(
            ReviewDecision(
                pair_id=found.id,
                record_key_l=found.record_key_l,
                record_key_r=found.record_key_r,
                decision=decision,
                reviewer=reviewer,
            )
        )
        found.status = "decided"
    return Decision(found.record_key_l, found.record_key_r, match=decision == "match")


def _latest_model(session: Session) -> dict[str, Any]:
    row = session.execute(
        select(LinkModel.model_json)
        .join(LinkRun, LinkRun.run_id == LinkModel.run_id)
        .order_by(LinkRun.id.desc())
        .limit(1)
    ).scalar()
    return json.loads(row) if row else {}


def _view(p: ReviewPair, model: dict[str, Any], latest: ReviewDecision | None) -> PairView:
    labels = level_labels(model)
    weights = json.loads(p.weights_json)
    steps = []
    for name, values in weights.items():
        gamma = int(values.get("gamma", -1))
        steps.append(
            WaterfallStep(
                comparison=name,
                level=labels.get(name, {}).get(gamma, f"level {gamma}"),
                weight=float(values.get("mw", 0.0)),
                tf_weight=float(values.get("tf", 0.0)),
            )
        )
    prior = float(model.get("probability_two_random_records_match", 0.0) or 0.0)
    prior_weight = math.log2(prior / (1 - prior)) if 0 < prior < 1 else 0.0
    return PairView(
        pair_id=p.id,
        record_key_l=p.record_key_l,
        record_key_r=p.record_key_r,
        match_weight=p.match_weight,
        match_probability=p.match_probability,
        reason=p.reason,
        status=p.status,
        prior_weight=prior_weight,
        waterfall=steps,
        decision=latest.decision if latest else None,
        decided_by=latest.reviewer if latest else None,
    )


def list_pairs(settings: Settings, *, status: str = "pending", limit: int = 50) -> list[PairView]:
    """Pairs in the queue with this status, least certain first."""
    with transaction(settings) as session:
        model = _latest_model(session)
        query = select(ReviewPair)
        if status != "all":
            query = query.where(ReviewPair.status == status)
        query = query.order_by(func.abs(ReviewPair.match_weight), ReviewPair.id).limit(limit)
        pairs = session.scalars(query).all()
        return [_view(p, model, _latest_decision(session, p.id)) for p in pairs]


def _latest_decision(session: Session, pair_id: int) -> ReviewDecision | None:
    return session.scalars(
        select(ReviewDecision)
        .where(ReviewDecision.pair_id == pair_id)
        .order_by(ReviewDecision.id.desc())
        .limit(1)
    ).first()


def get_pair(settings: Settings, pair_id: int) -> PairView:
    """One pair, with its waterfall and latest decision."""
    with transaction(settings) as session:
        found = session.get(ReviewPair, pair_id)
        if found is None:
            raise ReviewError(f"no review pair {pair_id}; see `candour link review --list`")
        return _view(found, _latest_model(session), _latest_decision(session, pair_id))


def decision_history(settings: Settings, pair_id: int) -> list[tuple[str, str, str]]:
    """Every decision about a pair, oldest first: (decision, reviewer, ISO time)."""
    with transaction(settings) as session:
        rows = session.scalars(
            select(ReviewDecision)
            .where(ReviewDecision.pair_id == pair_id)
            .order_by(ReviewDecision.id)
        ).all()
        return [(r.decision, r.reviewer, r.decided_at.isoformat()) for r in rows]
