"""Differential privacy: noise really applied at the expected scale, public keys answered, and a
use's epsilon budget charged and enforced in the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from candour.config import Settings
from candour.disclosure import BudgetExhausted, DisclosureRefused, dp_query, remaining_budget
from candour.disclosure.dp import to_micro
from candour.store import migrate, transaction
from candour.store.disclosure import DpBudget, DpCharge

USE = "DU-2026-001"


@pytest.fixture
def store(store_settings: Settings) -> Settings:
    store_settings.home.mkdir(parents=True, exist_ok=True)
    migrate(store_settings)
    return store_settings


@pytest.fixture
def sqlite_store(sqlite_settings: Settings) -> Settings:
    sqlite_settings.home.mkdir(parents=True, exist_ok=True)
    migrate(sqlite_settings)
    return sqlite_settings


def people(groups: int, per_group: int) -> pd.DataFrame:
    areas = [f"area-{g:03d}" for g in range(groups)]
    return pd.DataFrame(
        {
            "area": np.repeat(areas, per_group),
            "cost": np.tile(np.linspace(0.0, 50.0, per_group), groups),
            "person": np.arange(groups * per_group),
        }
    )


def test_epsilon_is_counted_in_exact_micro_units():
    assert to_micro(0.1, up=True) == 100_000
    assert to_micro(0.1, up=False) == 100_000
    assert to_micro(1e-7, up=True) == 1
    assert to_micro(1e-7, up=False) == 0
    assert sum(to_micro(0.1, up=True) for _ in range(10)) == to_micro(1.0, up=False)


def test_count_noise_is_applied_at_the_expected_scale(sqlite_store: Settings):
    data = people(groups=300, per_group=20)
    keys = pd.DataFrame({"area": sorted(data["area"].unique())})
    result = dp_query(
        data, settings=sqlite_store, use_id=USE, budget=5.0, epsilon=1.0, by=["area"],
        keys=keys, statistic="count", person="person",
    )  # fmt: skip
    errors = result.table["count"].to_numpy() - 20
    # Noise is there: not every answer is exact...
    assert np.count_nonzero(errors) > 100
    # ...with the discrete Laplace scale OpenDP reports for sensitivity 1 and epsilon 1,
    (noise,) = result.noise
    assert noise.aggregate == "count"
    assert noise.scale == pytest.approx(1.0)
    # and the spread matches that scale (mean |error| of discrete Laplace(1) is about 0.85).
    assert 0.5 < np.abs(errors).mean() < 1.3
    assert np.abs(errors).max() < 15
    assert result.epsilon == 1.0 and result.remaining == pytest.approx(4.0)


def test_sum_noise_scales_with_the_clamping_bounds(sqlite_store: Settings):
    data = people(groups=200, per_group=10)
    data["cost"] = 1000.0  # clamped to 50 each: the true clamped sum is 500 per group
    keys = pd.DataFrame({"area": sorted(data["area"].unique())})
    result = dp_query(
        data, settings=sqlite_store, use_id=USE, budget=10.0, epsilon=1.0, by=["area"],
        keys=keys, statistic="sum", column="cost", bounds=(0.0, 50.0),
    )  # fmt: skip
    (noise,) = result.noise
    # Sensitivity 50 / epsilon 1, plus OpenDP's allowance for floating-point error in the sum.
    assert noise.distribution == "Float Laplace"
    assert 50.0 <= noise.scale < 75.0
    errors = result.table["cost"].to_numpy() - 500.0
    assert 0.6 * noise.scale < np.abs(errors).mean() < 1.4 * noise.scale


def test_integer_sums_need_no_float_allowance(sqlite_store: Settings):
    data = people(groups=200, per_group=10)
    data["cost"] = 1000  # integers, clamped to 50 each
    keys = pd.DataFrame({"area": sorted(data["area"].unique())})
    result = dp_query(
        data, settings=sqlite_store, use_id=USE, budget=10.0, epsilon=1.0, by=["area"],
        keys=keys, statistic="sum", column="cost", bounds=(0, 50),
    )  # fmt: skip
    (noise,) = result.noise
    assert noise.distribution == "Integer Laplace"
    assert noise.scale == pytest.approx(50.0)
    errors = result.table["cost"].to_numpy() - 500.0
    assert np.count_nonzero(errors) > 150
    assert 30.0 < np.abs(errors).mean() < 70.0


def test_absent_public_keys_get_noisy_answers_in_the_callers_order(sqlite_store: Settings):
    data = people(groups=3, per_group=30)
    keys = pd.DataFrame({"area": ["area-999", "area-002", "area-000", "area-001", "area-500"]})
    result = dp_query(
        data, settings=sqlite_store, use_id=USE, budget=3.0, epsilon=1.0, by=["area"],
        keys=keys, statistic="mean", column="cost", bounds=(0.0, 50.0),
    )  # fmt: skip
    assert result.table["area"].tolist() == keys["area"].tolist()
    means = result.table["cost"]
    # Means are post-processed into the bounds; an empty group may have no meaningful mean.
    assert ((means.dropna() >= 0.0) & (means.dropna() <= 50.0)).all()
    assert {n.aggregate for n in result.noise} == {"count", "sum"}
    assert result.report()["groups"] == 5


def test_budget_is_charged_and_a_query_that_would_overspend_is_refused(store: Settings):
    data = people(groups=4, per_group=15)
    keys = pd.DataFrame({"area": sorted(data["area"].unique())})
    ask = dict(settings=store, use_id=USE, budget=1.0, by=["area"], keys=keys, statistic="count")
    for _ in range(3):
        dp_query(data, epsilon=0.3, **ask)
    assert remaining_budget(store, USE) == pytest.approx(0.1)
    with pytest.raises(BudgetExhausted, match="0.1 of its epsilon 1 left; this query needs 0.3"):
        dp_query(data, epsilon=0.3, **ask)
    dp_query(data, epsilon=0.1, **ask)  # exactly the rest is allowed
    with pytest.raises(BudgetExhausted):
        dp_query(data, epsilon=1e-6, **ask)
    with transaction(store) as session:
        budget = session.get(DpBudget, USE)
        assert budget is not None and budget.spent_micro == budget.total_micro == 1_000_000
        charges = session.query(DpCharge).filter_by(use_id=USE).all()
        assert [c.epsilon_micro for c in charges] == [300_000] * 3 + [100_000]
        assert all(len(c.result_sha256) == 64 for c in charges)


def test_a_failed_charge_returns_nothing_and_spends_nothing(
    store: Settings, monkeypatch: pytest.MonkeyPatch
):
    data = people(groups=2, per_group=15)
    keys = pd.DataFrame({"area": sorted(data["area"].unique())})
    ask = dict(settings=store, use_id=USE, budget=1.0, by=["area"], keys=keys, statistic="count")
    dp_query(data, epsilon=0.5, **ask)

    import candour.disclosure.dp as dp_module

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(dp_module, "DpCharge", broken)
    with pytest.raises(RuntimeError):
        dp_query(data, epsilon=0.25, **ask)
    assert remaining_budget(store, USE) == pytest.approx(0.5)


def test_the_budget_cannot_change_once_set(sqlite_store: Settings):
    data = people(groups=2, per_group=15)
    keys = pd.DataFrame({"area": sorted(data["area"].unique())})
    ask = dict(settings=sqlite_store, use_id=USE, by=["area"], keys=keys, statistic="count")
    dp_query(data, budget=1.0, epsilon=0.5, **ask)
    with pytest.raises(DisclosureRefused, match="budget is 1.0, not 5.0"):
        dp_query(data, budget=5.0, epsilon=0.5, **ask)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"statistic": "median"}, "unknown DP statistic"),
        ({"statistic": "sum", "column": "cost"}, "clamping bounds"),
        ({"statistic": "sum", "column": "cost", "bounds": (5.0, 1.0)}, "lower < upper"),
        ({"statistic": "count", "column": "cost"}, "no column"),
        ({"epsilon": 0.0}, "positive"),
        ({"epsilon": float("nan")}, "positive"),
        ({"use_id": "use-1"}, "data use id"),
        ({"by": []}, "at least one grouping"),
        ({"keys": pd.DataFrame({"area": ["a", "a"]})}, "twice"),
        ({"keys": pd.DataFrame({"zone": ["a"]})}, "exactly the columns"),
        ({"max_contributions": 0}, "at least 1"),
        ({"max_group_size": 10}, "public bound"),
    ],
)
def test_malformed_queries_are_refused_before_anything_is_spent(
    sqlite_store: Settings, change: dict, message: str
):
    data = people(groups=2, per_group=15)
    ask = dict(
        settings=sqlite_store, use_id=USE, budget=1.0, epsilon=0.5, by=["area"],
        keys=pd.DataFrame({"area": ["area-000", "area-001"]}), statistic="count",
    )  # fmt: skip
    ask.update(change)
    with pytest.raises(DisclosureRefused, match=message):
        dp_query(data, **ask)
    assert remaining_budget(sqlite_store, USE) is None


def test_people_over_their_contribution_bound_are_refused(sqlite_store: Settings):
    data = people(groups=2, per_group=15)
    data.loc[3, "person"] = data.loc[4, "person"]
    ask = dict(
        settings=sqlite_store, use_id=USE, budget=1.0, epsilon=0.5, by=["area"],
        keys=pd.DataFrame({"area": ["area-000", "area-001"]}), statistic="count",
        person="person",
    )  # fmt: skip
    with pytest.raises(DisclosureRefused, match="max_contributions=1"):
        dp_query(data, **ask)
    result = dp_query(data, max_contributions=2, **ask)
    assert result.max_contributions == 2
    assert result.noise[0].scale == pytest.approx(4.0)  # sensitivity 2 / epsilon 0.5
