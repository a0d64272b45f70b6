"""The studies' statistics: the conditional difference-in-differences recovers a planted effect
despite confounding by a time-constant risk, with honest confidence intervals."""

from __future__ import annotations

import numpy as np
import pytest

from candour.studies.stats import conditional_did, precision_at


def _simulate(rng: np.random.Generator, effect: float, people: int = 4000) -> dict[str, list]:
    """Falls before and after a visit for two cohorts in three age strata, where frailer people
    are more likely to be visited (the confounding the design must remove)."""
    strata, treated, before, after, sizes = [], [], [], [], []
    for band, age_rate in (("65-74", 0.08), ("75-84", 0.14), ("85+", 0.25)):
        frailty = rng.gamma(2.0, 0.5, people)
        visited = rng.random(people) < np.minimum(0.95, 0.15 * frailty)
        rate = age_rate * frailty
        pre = rng.poisson(rate)
        post = rng.poisson(rate * np.where(visited, 1 + effect, 1.0))
        for flag in (True, False):
            mask = visited == flag
            strata.append(band)
            treated.append(flag)
            before.append(float(pre[mask].sum()))
            after.append(float(post[mask].sum()))
            sizes.append(int(mask.sum()))
    return {"strata": strata, "treated": treated, "before": before, "after": after,
            "sizes": sizes}


def test_recovers_the_planted_effect_and_covers_it_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    covered, estimates = 0, []
    for _ in range(200):
        data = _simulate(rng, -0.3)
        est = conditional_did(data["strata"], data["treated"], data["before"], data["after"])
        estimates.append(est.estimate)
        covered += est.ci_low <= -0.3 <= est.ci_high
    assert abs(np.mean(estimates) + 0.3) < 0.03
    assert 0.88 <= covered / 200 <= 0.99


def test_the_naive_comparison_is_confounded_but_the_did_is_not():
    rng = np.random.default_rng(3)
    data = _simulate(rng, 0.0, people=20000)
    # Visited people fall more often after their visit than the unvisited do (they are
    # frailer), so a naive comparison of the after period suggests visits cause falls.
    rows = list(zip(data["after"], data["treated"], data["sizes"], strict=True))
    rate_v = sum(a for a, t, _ in rows if t) / sum(n for _, t, n in rows if t)
    rate_c = sum(a for a, t, _ in rows if not t) / sum(n for _, t, n in rows if not t)
    assert rate_v / rate_c > 1.3
    est = conditional_did(data["strata"], data["treated"], data["before"], data["after"])
    assert est.ci_low <= 0.0 <= est.ci_high
    assert abs(est.estimate) < 0.1


def test_a_real_effect_is_distinguished_from_none():
    rng = np.random.default_rng(11)
    data = _simulate(rng, -0.4, people=20000)
    est = conditional_did(data["strata"], data["treated"], data["before"], data["after"])
    assert est.ci_high < 0
    assert est.strata == 3 and est.dispersion >= 1.0


def test_overdispersed_cells_widen_the_interval():
    strata = ["a", "a", "b", "b", "c", "c"]
    treated = [True, False] * 3
    before = [50.0, 500.0, 50.0, 500.0, 50.0, 500.0]
    steady = conditional_did(strata, treated, before, [35.0, 500.0, 35.0, 500.0, 35.0, 500.0])
    noisy = conditional_did(strata, treated, before, [15.0, 500.0, 60.0, 500.0, 30.0, 500.0])
    assert steady.dispersion == 1.0
    assert noisy.dispersion > 1.0 and noisy.se > steady.se


def test_it_needs_both_cohorts_and_some_events():
    with pytest.raises(ValueError, match="both cohorts"):
        conditional_did(["a", "b"], [True, True], [5.0, 5.0], [4.0, 4.0])
    with pytest.raises(ValueError, match="at least one event"):
        conditional_did(["a", "a"], [True, False], [0.0, 5.0], [0.0, 4.0])
    with pytest.raises(ValueError, match="no strata"):
        conditional_did([], [], [], [])


def test_precision_at_k():
    assert precision_at([True, False, True, True], 2) == 0.5
    assert precision_at([True, True], 100) == 1.0
    assert precision_at([], 5) == 0.0
