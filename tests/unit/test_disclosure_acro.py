"""Our primary rules agree with SACRO's acro on the same data.

The gate gives :func:`protect` per-group evidence (counts, contributors, largest contributions);
acro computes its checks from the microdata. For random microdata both must flag the same cells
under acro's default risk appetite (threshold 10, NK n=2 k=90%, p-ratio 10%).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from candour.disclosure import Count, Rules, Sum, protect

acro_checks = pytest.importorskip("acro.sdcchecks")
# Importing acro configures the root logger at INFO; keep test output as it was.
logging.getLogger().handlers.clear()
logging.getLogger().setLevel(logging.WARNING)


class _TableModel:
    model_type = "table"


APPETITE = {
    "safe_threshold": 10,
    "safe_nk_n": 2,
    "safe_nk_k": 0.9,
    "safe_pratio_p": 0.1,
    "check_missing_values": False,
    "zeros_are_disclosive": True,
}
RULES = Rules(threshold=10, rounding=1, dominance=((2, 0.9),), p_ratio=0.1)


def microdata(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(60, 300))
    groups = rng.choice(
        [f"g{i}" for i in range(8)], n, p=[0.3, 0.2, 0.15, 0.1, 0.1, 0.07, 0.05, 0.03]
    )
    values = rng.exponential(20, n)
    # Plant a few dominant contributors.
    values[rng.choice(n, 3, replace=False)] *= 200
    return pd.DataFrame({"g": groups, "v": values})


def gate_style(df: pd.DataFrame) -> pd.DataFrame:
    """What the gate hands over: one row per group with the dominance evidence."""
    grouped = df.groupby("g")["v"]
    out = pd.DataFrame(
        {
            "n": grouped.size(),
            "v": grouped.sum(),
            "t1": grouped.apply(lambda s: s.nlargest(1).sum()),
            "t2": grouped.apply(lambda s: s.nlargest(2).sum() - s.nlargest(1).sum()),
        }
    )
    return out.reset_index()


def acro_masks(df: pd.DataFrame) -> pd.Series:
    grouped = df.groupby("g")["v"]
    evidence = acro_checks.SDCEvidence()
    evidence.interim_tables = {
        "count_table": grouped.size().to_frame(),
        "sum": grouped.sum().to_frame(),
        "max": grouped.max().to_frame(),
        "top_2_sum": grouped.apply(lambda s: s.nlargest(2).sum()).to_frame(),
        "top_n_sum": grouped.apply(lambda s: s.nlargest(2).sum()).to_frame(),
        "num_negative": grouped.apply(lambda s: int((s < 0).sum())).to_frame(),
    }
    checks = acro_checks.SDCChecks(APPETITE)
    model = _TableModel()
    masks = [
        checks.check_min_threshold("sum", evidence, model)[2],
        checks.check_nk_dominance("sum", evidence, model)[2],
        checks.check_ppercent_dominance("sum", evidence, model)[2],
    ]
    flagged = masks[0].iloc[:, 0] | masks[1].iloc[:, 0] | masks[2].iloc[:, 0]
    return flagged.astype(bool)


@pytest.mark.parametrize("seed", range(12))
def test_primary_and_dominance_flags_match_acro(seed: int):
    df = microdata(seed)
    table = gate_style(df)
    result = protect(
        table,
        keys=["g"],
        measures=[Count("n"), Sum("v", contributors="n", top1="t1", top2="t2")],
        rules=RULES,
    )
    ours = {c.key[0]: c.suppressed in ("primary", "dominance") for c in result.cells}
    theirs = acro_masks(df).to_dict()
    assert ours == theirs
    assert any(ours.values())  # the planted contributors make each case non-trivial
