"""Small, dependency-light statistics the studies compute from what the gate returns.

Nothing here touches data directly: each function takes the (already protected or in-environment)
numbers a study has, and returns an estimate with its uncertainty.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054


@dataclass(frozen=True)
class RatioEstimate:
    """A ratio-scale effect: ``estimate`` is the relative change (ratio - 1), with a 95% CI."""

    estimate: float
    ci_low: float
    ci_high: float
    log_ratio: float
    se: float
    dispersion: float
    strata: int


def conditional_did(
    strata: Sequence[str],
    treated: Sequence[bool],
    before: Sequence[float],
    after: Sequence[float],
    *,
    max_iter: int = 50,
) -> RatioEstimate:
    """Difference-in-differences on the ratio scale from event counts before and after.

    Each row is one cohort in one stratum with its events in the equal-length periods before
    and after the (pseudo-)visit. Conditioning on each person's total events removes their
    time-constant risk (the Poisson model with a fixed effect per person), which leaves the
    share of events falling *after* as binomial. So the model is a grouped logistic regression

        after ~ Binomial(before + after, expit(alpha_stratum + beta * treated))

    and ``exp(beta)`` is the ratio by which the treated cohort's rate changed relative to the
    comparison cohort's change in the same stratum. The standard error is inflated by the
    Pearson dispersion when the cells show more variation than binomial (rounded counts, people
    who died part way through), never deflated.
    """
    labels = sorted(set(strata))
    if not labels:
        raise ValueError("no strata to estimate from")
    n_rows = len(strata)
    index = {label: i for i, label in enumerate(labels)}
    x = np.zeros((n_rows, len(labels) + 1))
    for row, (label, t) in enumerate(zip(strata, treated, strict=True)):
        x[row, index[label]] = 1.0
        x[row, -1] = 1.0 if t else 0.0
    y = np.asarray(after, dtype=float)
    n = y + np.asarray(before, dtype=float)
    if (n <= 0).any():
        raise ValueError("every cell needs at least one event before or after")
    if not any(treated) or all(treated):
        raise ValueError("both cohorts must be present")
    theta = np.zeros(x.shape[1])
    # Start each stratum at its pooled log-odds, which makes Newton's method converge in a few
    # steps even for strata with lopsided counts.
    for label, i in index.items():
        rows = [r for r, s in enumerate(strata) if s == label]
        share = (y[rows].sum() + 0.5) / (n[rows].sum() + 1.0)
        theta[i] = math.log(share / (1 - share))
    info = np.eye(x.shape[1])
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(x @ theta)))
        w = n * p * (1 - p)
        gradient = x.T @ (y - n * p)
        info = x.T @ (x * w[:, None])
        step = np.linalg.solve(info, gradient)
        theta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    p = 1.0 / (1.0 + np.exp(-(x @ theta)))
    covariance = np.linalg.inv(info)
    df = n_rows - x.shape[1]
    dispersion = 1.0
    if df > 0:
        pearson = float((((y - n * p) ** 2) / (n * p * (1 - p))).sum())
        dispersion = max(1.0, pearson / df)
    beta = float(theta[-1])
    se = math.sqrt(float(covariance[-1, -1]) * dispersion)
    return RatioEstimate(
        estimate=math.exp(beta) - 1.0,
        ci_low=math.exp(beta - Z95 * se) - 1.0,
        ci_high=math.exp(beta + Z95 * se) - 1.0,
        log_ratio=beta,
        se=se,
        dispersion=dispersion,
        strata=len(labels),
    )


def precision_at(ranked: Sequence[bool], k: int) -> float:
    """The share of true positives among the first ``k`` of a ranking (fewer if it is shorter)."""
    top = list(ranked)[:k]
    if not top:
        return 0.0
    return sum(1 for hit in top if hit) / len(top)
