"""Differential privacy: counts, sums and means by group over public keys, within a budget.

OpenDP (the Polars context API) does the privacy-critical work: clamping, noise calibrated to the
contribution bound, and the privacy accounting of one query. Candour adds what OpenDP cannot
know: every query of a data use is charged against that use's budget, kept in the store, and a
query that would overspend it is refused before its answer is seen.

Order of events in :func:`dp_query`: check the budget (fail fast); compute the noisy answer;
charge the budget with one conditional ``UPDATE`` (so two concurrent queries cannot both spend
the last of it); only then return. If the charge fails, the answer is discarded unseen.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Literal

import pandas as pd
from sqlalchemy import select, update

from candour.config import Settings
from candour.disclosure.sdc import DisclosureRefused
from candour.errors import CandourError
from candour.store import transaction
from candour.store.disclosure import MICRO, DpBudget, DpCharge
from candour.store.models import utcnow

Statistic = Literal["count", "sum", "mean"]
USE_ID = re.compile(r"^DU-[0-9]{4}-[0-9]{3,6}$")

#: The default public bound on rows per group. It only needs to be an upper bound that does not
#: depend on the data (OpenDP uses it to bound floating-point error in sums); a county is 1.5M.
DEFAULT_MAX_GROUP_SIZE = 2_000_000

#: Accuracy is reported at this level: the true value lies within ``accuracy`` of the answer with
#: probability 1 - ALPHA.
ALPHA = 0.05


class BudgetExhausted(CandourError):
    """A differentially private query would spend more than the data use's remaining budget."""


@dataclass(frozen=True)
class Noise:
    """The noise added to one aggregate, as OpenDP reports it."""

    aggregate: str
    distribution: str
    scale: float
    accuracy: float  # half-width of the (1 - ALPHA) interval


@dataclass(frozen=True)
class DpResult:
    """A differentially private answer, with what it cost and how noisy it is."""

    table: pd.DataFrame
    keys: tuple[str, ...]
    statistic: Statistic
    column: str | None
    bounds: tuple[float, float] | None
    epsilon: float
    remaining: float
    charge_id: str
    noise: tuple[Noise, ...]
    max_contributions: int
    method: Literal["dp"] = "dp"

    def report(self) -> dict[str, Any]:
        """The disclosure report for this answer, JSON-ready."""
        return {
            "method": "dp",
            "statistic": self.statistic,
            "column": self.column,
            "bounds": list(self.bounds) if self.bounds else None,
            "keys": list(self.keys),
            "groups": len(self.table),
            "epsilon": self.epsilon,
            "remaining_epsilon": self.remaining,
            "charge_id": self.charge_id,
            "max_contributions": self.max_contributions,
            "alpha": ALPHA,
            "noise": [n.__dict__ for n in self.noise],
        }


def to_micro(epsilon: float, *, up: bool) -> int:
    """Epsilon in whole micro-units: charges round up, budgets round down (never overspend).

    Goes through the decimal string so that 0.1 is exactly 100000, not 100000.00000000001.
    """
    scaled = Decimal(repr(float(epsilon))) * MICRO
    return int(scaled.to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR))


def remaining_budget(settings: Settings, use_id: str) -> float | None:
    """The epsilon a use has left, or None when it has never run a DP query."""
    with transaction(settings) as session:
        budget = session.get(DpBudget, use_id)
        if budget is None:
            return None
        return (budget.total_micro - budget.spent_micro) / MICRO


def dp_query(
    data: pd.DataFrame,
    *,
    settings: Settings,
    use_id: str,
    budget: float,
    epsilon: float,
    by: Sequence[str],
    keys: pd.DataFrame,
    statistic: Statistic,
    column: str | None = None,
    bounds: tuple[float, float] | None = None,
    person: str | None = None,
    max_contributions: int = 1,
    max_group_size: int = DEFAULT_MAX_GROUP_SIZE,
    actor: str | None = None,
    query_ref: str | None = None,
) -> DpResult:
    """Answer one grouped query with differential privacy and charge it to the use's budget.

    ``data`` holds the rows the query reads (never published), ``by`` the grouping columns, and
    ``keys`` the full public key set: every combination to answer for, so that an empty group
    gets a noisy answer too and the answer's shape reveals nothing. ``statistic`` is ``count``
    (rows per group), ``sum`` or ``mean`` of ``column`` clamped to ``bounds`` (missing values
    count as the lower bound). Each person may contribute at most ``max_contributions`` rows;
    when ``person`` names the identifier column this is checked, and the column is dropped
    before OpenDP sees the data.

    ``budget`` is the use's total epsilon (from the register); ``epsilon`` this query's share.
    Raises :class:`BudgetExhausted` when the query would overspend, and
    :class:`DisclosureRefused` for a malformed query.
    """
    if not USE_ID.match(use_id):
        raise DisclosureRefused(f"{use_id!r} is not a data use id (DU-YYYY-NNN)")
    by = tuple(by)
    frame = _prepare(data, by, keys, statistic, column, bounds, person, max_contributions)
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise DisclosureRefused(f"epsilon must be a positive number, not {epsilon}")
    if not (math.isfinite(budget) and budget > 0):
        raise DisclosureRefused(f"the use's DP budget must be a positive number, not {budget}")
    if len(frame) > max_group_size:
        raise DisclosureRefused(
            f"the query reads more rows than the public bound max_group_size={max_group_size}"
        )
    cost = to_micro(epsilon, up=True)
    total = to_micro(budget, up=False)
    _check_budget(settings, use_id, total, cost)

    table, noise = _release(
        frame, by, keys, statistic, column, bounds, epsilon, max_contributions, max_group_size
    )
    digest = _hash_table(table)
    charge_id = "DP-" + secrets.token_hex(8)
    with transaction(settings) as session:
        _ensure_budget(session, use_id, total)
        # One conditional UPDATE: atomic on SQLite and PostgreSQL alike, so two queries racing
        # for the last of the budget cannot both succeed.
        spent = session.execute(
            update(DpBudget)
            .where(DpBudget.use_id == use_id, DpBudget.spent_micro + cost <= DpBudget.total_micro)
            .values(spent_micro=DpBudget.spent_micro + cost, updated_at=utcnow())
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
            raise _exhausted(session, use_id, epsilon)
        session.add(
            DpCharge(
                charge_id=charge_id,
                use_id=use_id,
                epsilon_micro=cost,
                statistic=statistic,
                groups=len(table),
                result_sha256=digest,
                actor=actor,
                query_ref=query_ref,
            )
        )
        session.flush()
        row = session.get(DpBudget, use_id)
        assert row is not None
        session.refresh(row)
        left = (row.total_micro - row.spent_micro) / MICRO
    return DpResult(
        table=table,
        keys=by,
        statistic=statistic,
        column=column,
        bounds=bounds,
        epsilon=cost / MICRO,
        remaining=left,
        charge_id=charge_id,
        noise=noise,
        max_contributions=max_contributions,
    )


# -- budget ----------------------------------------------------------------------------------


def _ensure_budget(session: Any, use_id: str, total: int) -> DpBudget:
    budget: DpBudget | None = session.get(DpBudget, use_id)
    if budget is None:
        budget = DpBudget(use_id=use_id, total_micro=total, spent_micro=0)
        session.add(budget)
        session.flush()
    elif budget.total_micro != total:
        # A budget is fixed when first used; a different figure means the caller is confused
        # about which use this is, and guessing would risk overspending.
        raise DisclosureRefused(
            f"{use_id}'s DP budget is {budget.total_micro / MICRO}, not {total / MICRO}"
        )
    return budget


def _check_budget(settings: Settings, use_id: str, total: int, cost: int) -> None:
    with transaction(settings) as session:
        budget = session.get(DpBudget, use_id)
        if budget is not None and budget.total_micro != total:
            raise DisclosureRefused(
                f"{use_id}'s DP budget is {budget.total_micro / MICRO}, not {total / MICRO}"
            )
        spent = budget.spent_micro if budget is not None else 0
        if spent + cost > total:
            raise _exhausted(session, use_id, cost / MICRO, spent=spent, total=total)


def _exhausted(
    session: Any,
    use_id: str,
    epsilon: float,
    *,
    spent: int | None = None,
    total: int | None = None,
) -> BudgetExhausted:
    if spent is None or total is None:
        row = session.execute(select(DpBudget).where(DpBudget.use_id == use_id)).scalar_one()
        spent, total = row.spent_micro, row.total_micro
    return BudgetExhausted(
        f"{use_id} has {(total - spent) / MICRO:g} of its epsilon {total / MICRO:g} left; this "
        f"query needs {epsilon:g}. The query was not run. Ask the IG lead to review the use."
    )


# -- the query -------------------------------------------------------------------------------


def _prepare(
    data: pd.DataFrame,
    by: tuple[str, ...],
    keys: pd.DataFrame,
    statistic: str,
    column: str | None,
    bounds: tuple[float, float] | None,
    person: str | None,
    max_contributions: int,
) -> pd.DataFrame:
    if statistic not in ("count", "sum", "mean"):
        raise DisclosureRefused(f"unknown DP statistic {statistic!r}; use count, sum or mean")
    if not by:
        raise DisclosureRefused("a DP query needs at least one grouping column")
    if max_contributions < 1:
        raise DisclosureRefused("max_contributions must be at least 1")
    missing = [c for c in by if c not in data.columns]
    if missing:
        raise DisclosureRefused(f"grouping column(s) missing from the data: {', '.join(missing)}")
    if list(keys.columns) != list(by):
        raise DisclosureRefused(f"the public key set must have exactly the columns {list(by)}")
    if keys.empty:
        raise DisclosureRefused("the public key set is empty")
    if keys.duplicated().any():
        raise DisclosureRefused("the public key set lists a group twice")
    if statistic == "count":
        if column is not None or bounds is not None:
            raise DisclosureRefused("a DP count takes no column or bounds")
    else:
        if column is None or column not in data.columns or column in by:
            raise DisclosureRefused(f"a DP {statistic} needs a value column in the data")
        if bounds is None:
            raise DisclosureRefused(
                f"a DP {statistic} needs clamping bounds (lower, upper) chosen without looking "
                "at the data"
            )
        lo, hi = bounds
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise DisclosureRefused(f"bounds must be finite with lower < upper, not {bounds}")
        if not pd.api.types.is_numeric_dtype(data[column]):
            raise DisclosureRefused(f"column {column} must be numeric for a DP {statistic}")
    if person is not None:
        if person not in data.columns:
            raise DisclosureRefused(f"identifier column {person} is not in the data")
        most = int(data[person].value_counts().max()) if len(data) else 0
        if most > max_contributions:
            # Truncating silently would change the answer in ways the analyst cannot see.
            raise DisclosureRefused(
                f"a person contributes more than max_contributions={max_contributions} rows; "
                "aggregate per person first or raise the bound"
            )
    wanted = list(by) + ([column] if column is not None else [])
    return data[wanted].reset_index(drop=True)


def _release(
    frame: pd.DataFrame,
    by: tuple[str, ...],
    keys: pd.DataFrame,
    statistic: str,
    column: str | None,
    bounds: tuple[float, float] | None,
    epsilon: float,
    max_contributions: int,
    max_group_size: int,
) -> tuple[pd.DataFrame, tuple[Noise, ...]]:
    import opendp.prelude as dp
    import polars as pl

    dp.enable_features("contrib")
    lf = pl.from_pandas(frame).lazy()
    key_frame = pl.from_pandas(keys.reset_index(drop=True))
    try:
        schema = lf.collect_schema()
        key_frame = key_frame.select(list(by)).cast({c: schema[c] for c in by})
    except Exception as exc:  # polars raises several types for incompatible casts
        raise DisclosureRefused(
            f"the public keys do not match the data's key types: {exc}"
        ) from None

    aggs: list[Any] = []
    if statistic in ("count", "mean"):
        aggs.append(dp.len(signed=True).alias("_n"))
    if statistic in ("sum", "mean"):
        assert column is not None and bounds is not None
        if _integral(frame[column], bounds):
            # Integer sums are exact, so OpenDP needs no allowance for floating-point error
            # (which, with a county-sized max_group_size, adds about a third to the noise).
            ilo, ihi = int(bounds[0]), int(bounds[1])
            value = pl.col(column).cast(pl.Int64).fill_null(min(max(0, ilo), ihi))
            aggs.append(value.dp.sum((ilo, ihi)).alias("_s"))  # type: ignore[attr-defined]
        else:
            lo, hi = float(bounds[0]), float(bounds[1])
            fill = min(max(0.0, lo), hi)
            value = pl.col(column).cast(pl.Float64).fill_nan(fill).fill_null(fill)
            aggs.append(value.dp.sum((lo, hi)).alias("_s"))  # type: ignore[attr-defined]
    context = dp.Context.compositor(
        data=lf,
        privacy_unit=dp.unit_of(contributions=max_contributions),
        privacy_loss=dp.loss_of(epsilon=float(epsilon)),
        split_evenly_over=1,
        margins=[dp.polars.Margin(by=list(by), max_length=max_group_size)],
    )
    query: Any = context.query()
    query = query.group_by(list(by)).agg(*aggs).with_keys(key_frame, on=list(by))
    with warnings.catch_warnings():
        # OpenDP warns about key-set size and defaults; the report says what was done instead.
        warnings.simplefilter("ignore")
        summary = query.summarize(alpha=ALPHA)
        released = query.release().collect()
    noise = tuple(
        Noise(
            aggregate={"_n": "count", "_s": "sum"}.get(str(row["column"]), str(row["column"])),
            distribution=str(row["distribution"]),
            scale=float(row["scale"]),
            accuracy=float(row["accuracy"]),
        )
        for row in summary.iter_rows(named=True)
    )
    out = released.to_pandas()
    # Keep the caller's key order: the answer's row order must not depend on the data.
    out = keys.reset_index(drop=True).merge(out, on=list(by), how="left", validate="one_to_one")
    return _post_process(out, by, statistic, column, bounds), noise


def _integral(values: pd.Series, bounds: tuple[float, float]) -> bool:
    return (
        pd.api.types.is_integer_dtype(values)
        and float(bounds[0]).is_integer()
        and float(bounds[1]).is_integer()
    )


def _post_process(
    out: pd.DataFrame,
    by: tuple[str, ...],
    statistic: str,
    column: str | None,
    bounds: tuple[float, float] | None,
) -> pd.DataFrame:
    # Post-processing never costs privacy: clamp counts at zero and means into their bounds, so
    # nobody has to explain a negative head-count.
    result = out[list(by)].copy()
    if statistic == "count":
        result["count"] = out["_n"].clip(lower=0).astype("int64")
    elif statistic == "sum":
        assert column is not None
        result[column] = out["_s"].astype("float64")
    else:
        assert column is not None and bounds is not None
        n = out["_n"].astype("float64")
        mean = (out["_s"].astype("float64") / n.where(n > 0)).clip(bounds[0], bounds[1])
        result[column] = mean.astype("Float64")
    return result


def _hash_table(table: pd.DataFrame) -> str:
    rows = json.loads(table.to_json(orient="split", index=False, double_precision=15))
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()
