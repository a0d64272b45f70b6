"""Statistical disclosure control for aggregate tables: threshold, dominance, secondary
suppression and rounding, with a record of exactly what was done to every cell.

The gate hands over one row per group: the group keys, the measures to publish, and for each sum
or mean the evidence the dominance rule needs (how many people contributed, and the largest and
second-largest single contributions). Evidence columns are checked and then dropped; they are
never published. See docs/disclosure.md for the rules and how to read the report.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from candour.disclosure import secondary
from candour.errors import CandourError

#: Column names that mean a row is about one person (or carries a direct identifier). A table
#: with any of them is refused outright: no amount of suppression makes it aggregate.
PERSON_LEVEL_COLUMNS = frozenset(
    {
        "person_id",
        "person_num",
        "record_key",
        "record_id",
        "nhs_number",
        "name",
        "forename",
        "forenames",
        "given_name",
        "surname",
        "family_name",
        "full_name",
        "date_of_birth",
        "dob",
        "birth_date",
        "postcode",
        "address",
        "address_line_1",
        "email",
        "phone",
        "telephone",
    }
)

#: Marker for a suppressed value in files, after the ONS/GSS convention ("[c]" = confidential).
SUPPRESSED_MARK = "[c]"

Suppression = Literal["primary", "dominance", "secondary"]


class DisclosureRefused(CandourError):
    """An output cannot be made safe by disclosure control, so it is not produced at all."""


@dataclass(frozen=True)
class Rules:
    """The disclosure rules of one data use.

    ``threshold``: counts (and sums and means over fewer contributors) below it are suppressed.
    ``rounding``: published counts are rounded to the nearest multiple (1 means no rounding).
    ``dominance``: ``(n, k)`` pairs; a sum is suppressed when its ``n`` largest contributions
    make up at least ``k`` of it (the NK rule; ``>=`` as in SACRO/acro).
    ``p_ratio``: optional p% rule as in acro: suppressed when the contributions other than the two
    largest are less than ``p_ratio`` times the largest.
    """

    threshold: int = 10
    rounding: int = 5
    dominance: tuple[tuple[int, float], ...] = ((1, 0.5), (2, 0.8))
    p_ratio: float | None = None

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise DisclosureRefused(f"threshold must be at least 1, not {self.threshold}")
        if self.rounding < 1:
            raise DisclosureRefused(f"rounding must be at least 1, not {self.rounding}")
        for n, k in self.dominance:
            if n not in (1, 2) or not 0.0 < k <= 1.0:
                raise DisclosureRefused(f"dominance rule ({n}, {k}) needs n in (1, 2), 0 < k <= 1")
        if self.p_ratio is not None and not 0.0 < self.p_ratio < 1.0:
            raise DisclosureRefused(f"p_ratio must be between 0 and 1, not {self.p_ratio}")

    def as_dict(self) -> dict[str, Any]:
        """The rules as plain JSON-ready values (for the report)."""
        return {
            "threshold": self.threshold,
            "rounding": self.rounding,
            "dominance": [[n, k] for n, k in self.dominance],
            "p_ratio": self.p_ratio,
        }


@dataclass(frozen=True)
class Count:
    """A count of people (or events) in each group: thresholded and rounded."""

    column: str

    def evidence(self) -> tuple[str, ...]:
        """Columns that are checked but not published."""
        return ()


@dataclass(frozen=True)
class Sum:
    """A sum of non-negative contributions in each group: thresholded on contributors, checked for
    dominance, published unrounded.

    The gate computes, per group, after summing each person's own contributions first:
    ``contributors`` (number of people with a contribution), ``top1`` (the largest person's
    contribution) and ``top2`` (the second largest; 0 when there is one contributor).
    """

    column: str
    contributors: str
    top1: str
    top2: str

    def evidence(self) -> tuple[str, ...]:
        """Columns that are checked but not published."""
        return (self.contributors, self.top1, self.top2)


@dataclass(frozen=True)
class Mean:
    """A mean of non-negative contributions: like :class:`Sum`, with the sum itself (``total``)
    supplied as evidence so that dominance can be checked without publishing it."""

    column: str
    contributors: str
    total: str
    top1: str
    top2: str

    def evidence(self) -> tuple[str, ...]:
        """Columns that are checked but not published."""
        return (self.contributors, self.total, self.top1, self.top2)


Measure = Count | Sum | Mean


@dataclass(frozen=True)
class CellOutcome:
    """What disclosure control did to one group (one row of the table)."""

    key: tuple[Any, ...]
    suppressed: Suppression | None
    reasons: tuple[str, ...]
    original: dict[str, Any]
    published: dict[str, Any]
    margin: bool = False

    @property
    def rounded(self) -> dict[str, tuple[Any, Any]]:
        """Published counts that differ from the original: column -> (original, published)."""
        return {
            c: (self.original[c], v)
            for c, v in self.published.items()
            if v is not None and v != self.original[c]
        }

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the stored report."""
        return {
            "key": [_jsonable(k) for k in self.key],
            "suppressed": self.suppressed,
            "reasons": list(self.reasons),
            "original": {c: _jsonable(v) for c, v in self.original.items()},
            "published": {c: _jsonable(v) for c, v in self.published.items()},
            "margin": self.margin,
        }


@dataclass(frozen=True)
class SdcResult:
    """A protected table and the record of what was done to each of its cells."""

    table: pd.DataFrame
    keys: tuple[str, ...]
    measures: tuple[Measure, ...]
    rules: Rules
    cells: tuple[CellOutcome, ...]
    margin: str | None = None
    method: Literal["sdc"] = field(default="sdc")

    def count(self, kind: Suppression) -> int:
        """How many cells were suppressed for this reason."""
        return sum(1 for c in self.cells if c.suppressed == kind)

    @property
    def rounded_cells(self) -> int:
        """How many published cells had at least one count changed by rounding."""
        return sum(1 for c in self.cells if c.suppressed is None and c.rounded)

    def summary(self) -> dict[str, int]:
        """Counts of cells by what happened to them."""
        return {
            "cells": len(self.cells),
            "primary": self.count("primary"),
            "dominance": self.count("dominance"),
            "secondary": self.count("secondary"),
            "rounded": self.rounded_cells,
        }

    def report(self) -> dict[str, Any]:
        """The full disclosure report, JSON-ready. It holds the original values and says which
        cells were primary suppressions, so it stays inside the environment: only the protected
        table is ever released."""
        return {
            "method": "sdc",
            "rules": self.rules.as_dict(),
            "keys": list(self.keys),
            "measures": [_measure_dict(m) for m in self.measures],
            "margin": self.margin,
            "summary": self.summary(),
            "cells": [c.as_dict() for c in self.cells],
        }


def protect(
    table: pd.DataFrame,
    *,
    keys: Sequence[str],
    measures: Sequence[Measure],
    rules: Rules | None = None,
    margin: str | None = None,
) -> SdcResult:
    """Apply disclosure control to an aggregate table and return what may be published.

    ``table`` has one row per group: the ``keys`` columns, each measure's column, and each
    measure's evidence columns; nothing else. ``margin`` is the label the table uses in a key
    column for a total (e.g. ``"Total"`` from a ROLLUP), when it has margin cells.

    Raises :class:`DisclosureRefused` when the table cannot be made safe: it has a person-level
    or undeclared column, a group appears twice, or a value is missing, negative or inconsistent.
    """
    rules = rules or Rules()
    keys = tuple(keys)
    measures = tuple(measures)
    _validate(table, keys, measures)
    table, added = _complete(table, keys, measures, margin)
    rows = len(table)
    key_tuples = [tuple(_key_value(v) for v in row) for row in table[list(keys)].itertuples(False)]
    if not keys:
        key_tuples = [() for _ in range(rows)]
    is_margin = [margin is not None and margin in key for key in key_tuples]

    reasons: list[list[str]] = [[] for _ in range(rows)]
    kind: list[Suppression | None] = [None] * rows
    for i in added:
        reasons[i].append("primary: an empty group (absent from the query's result)")
        kind[i] = "primary"
    for m in measures:
        _primary(table, m, rules, reasons, kind)

    size = _sizes(table, measures)
    rels = secondary.relations(key_tuples, margin)
    first = {i for i in range(rows) if kind[i] is not None}
    try:
        extra = secondary.suppress(rels, first, size, is_margin)
    except ValueError as exc:  # two totals in one line: the margins are not what they claim
        raise DisclosureRefused(f"the table's margins are inconsistent: {exc}") from None
    if secondary.exposed(rels, first | extra):
        raise DisclosureRefused("the table cannot be made safe: its totals imply a hidden cell")
    for i in extra:
        kind[i] = "secondary"
        reasons[i].append("secondary: protects another suppressed cell in the same row/column")

    published = _publish(table, keys, measures, rules, kind)
    cells = tuple(
        CellOutcome(
            key=key_tuples[i],
            suppressed=kind[i],
            reasons=tuple(reasons[i]),
            original={m.column: _scalar(table[m.column].iloc[i]) for m in measures},
            published={m.column: _scalar(published[m.column].iloc[i]) for m in measures},
            margin=is_margin[i],
        )
        for i in range(rows)
    )
    return SdcResult(published, keys, measures, rules, cells, margin)


#: The most cells a multi-way table may have once its empty groups are filled in.
MAX_CELLS = 200_000


def _complete(
    table: pd.DataFrame, keys: tuple[str, ...], measures: tuple[Measure, ...], margin: str | None
) -> tuple[pd.DataFrame, list[int]]:
    """Fill in the empty groups of a table with two or more keys, as zero cells.

    A query's result leaves out empty groups, and then a row or column can hold a single cell
    whose total *is* that cell, implied by the other totals. Completing the grid (as a crosstab
    does) gives every line its full set of cells, and the empty ones, being below any threshold,
    are suppressed rather than revealed as zero.
    """
    table = table.reset_index(drop=True)
    if len(keys) < 2:
        return table, []
    values = [[v for v in pd.unique(table[k]) if margin is None or v != margin] for k in keys]
    size = 1
    for v in values:
        size *= max(len(v), 1)
    if size > MAX_CELLS:
        raise DisclosureRefused(
            f"the table would have {size} cells once empty groups are filled in; "
            f"at most {MAX_CELLS} can be checked"
        )
    full = pd.MultiIndex.from_product(values, names=list(keys)).to_frame(index=False)
    present = table[list(keys)].drop_duplicates()
    missing = full.merge(present, on=list(keys), how="left", indicator=True)
    missing = missing[missing["_merge"] == "left_only"].drop(columns="_merge")
    if missing.empty:
        return table, []
    for m in measures:
        for column in (m.column, *m.evidence()):
            missing[column] = 0
    start = len(table)
    combined = pd.concat([table, missing[list(table.columns)]], ignore_index=True)
    for column in table.columns:
        if column not in keys:
            combined[column] = combined[column].astype(table[column].dtype)
    return combined, list(range(start, len(combined)))


def round_count(value: int, base: int) -> int:
    """``value`` rounded to the nearest multiple of ``base``; halves go up (ties are only
    possible for an even base), so the result never depends on banker's rounding."""
    return ((2 * value + base) // (2 * base)) * base


# -- validation ------------------------------------------------------------------------------


def _validate(table: pd.DataFrame, keys: tuple[str, ...], measures: tuple[Measure, ...]) -> None:
    if not isinstance(table, pd.DataFrame):
        raise DisclosureRefused("disclosure control needs a table (a pandas DataFrame)")
    if not measures:
        raise DisclosureRefused("the table declares no count, sum or mean to publish")
    columns = [str(c) for c in table.columns]
    if len(set(columns)) != len(columns):
        raise DisclosureRefused("the table has two columns with the same name")
    person = sorted(c for c in columns if c.strip().lower() in PERSON_LEVEL_COLUMNS)
    if person:
        raise DisclosureRefused(
            f"the table has person-level column(s) {', '.join(person)}; only aggregates of at "
            "least the threshold can leave the environment"
        )
    declared: list[str] = list(keys)
    for m in measures:
        declared.append(m.column)
        declared.extend(m.evidence())
    published = list(keys) + [m.column for m in measures]
    if len(set(published)) != len(published):
        raise DisclosureRefused("a column is declared twice as a key or measure")
    missing = [c for c in dict.fromkeys(declared) if c not in columns]
    if missing:
        raise DisclosureRefused(f"declared column(s) missing from the table: {', '.join(missing)}")
    undeclared = [c for c in columns if c not in declared]
    if undeclared:
        raise DisclosureRefused(
            f"undeclared column(s) {', '.join(undeclared)}: every column must be a group key, a "
            "count, a sum or a mean (with its evidence) so that it can be checked"
        )
    if keys and table.duplicated(list(keys)).any():
        raise DisclosureRefused(
            "a group appears more than once; disclosure control needs one row per group "
            "(duplicate rows suggest person-level data)"
        )
    if not keys and len(table) > 1:
        raise DisclosureRefused("a table without group keys must have exactly one row")
    for m in measures:
        if isinstance(m, Count):
            _check_counts(table, m.column, what="count")
        else:
            _check_contributions(table, m)


def _numeric(table: pd.DataFrame, column: str) -> pd.Series:
    series = table[column]
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        raise DisclosureRefused(f"column {column} must be numeric")
    if series.isna().any():
        raise DisclosureRefused(f"column {column} has missing values; the gate must fill them")
    values = series.astype("float64")
    if not values.map(math.isfinite).all():
        raise DisclosureRefused(f"column {column} has infinite values")
    return values


def _check_counts(table: pd.DataFrame, column: str, *, what: str) -> None:
    values = _numeric(table, column)
    if (values < 0).any():
        raise DisclosureRefused(f"{what} column {column} has negative values")
    if (values != values.round()).any():
        raise DisclosureRefused(f"{what} column {column} must hold whole numbers")


def _check_contributions(table: pd.DataFrame, m: Sum | Mean) -> None:
    _check_counts(table, m.contributors, what="contributor")
    top1 = _numeric(table, m.top1)
    top2 = _numeric(table, m.top2)
    total = _numeric(table, m.total if isinstance(m, Mean) else m.column)
    if isinstance(m, Mean):
        _numeric(table, m.column)
    if (top1 < 0).any() or (top2 < 0).any() or (total < 0).any():
        # As in acro: dominance is undefined with negative contributions, so refuse, don't guess.
        raise DisclosureRefused(
            f"{m.column}: dominance needs non-negative contributions; negative values found"
        )
    if (top2 > top1).any():
        raise DisclosureRefused(f"{m.column}: {m.top2} exceeds {m.top1} in some group")
    slack = 1e-9 * total.abs().clip(lower=1.0)
    if (top1 + top2 > total + slack).any():
        raise DisclosureRefused(
            f"{m.column}: the two largest contributions exceed the total in some group"
        )


# -- rules -----------------------------------------------------------------------------------


def _primary(
    table: pd.DataFrame,
    m: Measure,
    rules: Rules,
    reasons: list[list[str]],
    kind: list[Suppression | None],
) -> None:
    t = rules.threshold
    if isinstance(m, Count):
        values = table[m.column].astype("int64")
        for i, v in enumerate(values):
            if v < t:
                reasons[i].append(f"primary: {m.column} is below the threshold of {t}")
                kind[i] = "primary"
            elif rules.rounding > 1 and round_count(int(v), rules.rounding) < t:
                reasons[i].append(
                    f"primary: {m.column} would round to "
                    f"{round_count(int(v), rules.rounding)}, below the threshold of {t}"
                )
                kind[i] = "primary"
        return
    contributors = table[m.contributors].astype("int64")
    total = table[m.total if isinstance(m, Mean) else m.column].astype("float64")
    top1 = table[m.top1].astype("float64")
    top2 = table[m.top2].astype("float64")
    for i in range(len(table)):
        if contributors.iloc[i] < t:
            reasons[i].append(f"primary: {m.column} has fewer than {t} contributors")
            kind[i] = "primary"
        if total.iloc[i] <= 0:
            continue  # nothing to dominate
        for n, k in rules.dominance:
            top = top1.iloc[i] + (top2.iloc[i] if n == 2 else 0.0)
            if top / total.iloc[i] >= k:
                reasons[i].append(
                    f"dominance: the top {n} contributor(s) make up at least {k:.0%} of {m.column}"
                )
                if kind[i] is None:
                    kind[i] = "dominance"
        if rules.p_ratio is not None and top1.iloc[i] > 0:
            rest = total.iloc[i] - top1.iloc[i] - top2.iloc[i]
            if rest / top1.iloc[i] < rules.p_ratio:
                reasons[i].append(
                    f"dominance: the other contributions to {m.column} are under "
                    f"{rules.p_ratio:.0%} of the largest (p% rule)"
                )
                if kind[i] is None:
                    kind[i] = "dominance"


def _sizes(table: pd.DataFrame, measures: tuple[Measure, ...]) -> list[float]:
    # The complementary cell to hide is the smallest by the first count (or contributors).
    for m in measures:
        if isinstance(m, Count):
            return [float(v) for v in table[m.column]]
    first = measures[0]
    assert not isinstance(first, Count)
    return [float(v) for v in table[first.contributors]]


def _publish(
    table: pd.DataFrame,
    keys: tuple[str, ...],
    measures: tuple[Measure, ...],
    rules: Rules,
    kind: list[Suppression | None],
) -> pd.DataFrame:
    out = table[list(keys)].copy().reset_index(drop=True)
    hidden = pd.Series([k is not None for k in kind])
    for m in measures:
        if isinstance(m, Count):
            values = table[m.column].astype("int64").reset_index(drop=True)
            rounded = values.map(lambda v: round_count(int(v), rules.rounding))
            out[m.column] = rounded.astype("Int64").mask(hidden)
        else:
            values = table[m.column].astype("float64").reset_index(drop=True)
            out[m.column] = values.astype("Float64").mask(hidden)
    return out


# -- helpers ---------------------------------------------------------------------------------


def _key_value(value: Any) -> Hashable:
    # NaN != NaN would split a "missing" group into many; treat all missing keys as one group.
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    scalar: Hashable = _scalar(value)
    return scalar


def _scalar(value: Any) -> Any:
    if value is pd.NA or value is None:
        return None
    if hasattr(value, "item"):  # numpy scalars -> Python
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _jsonable(value: Any) -> Any:
    value = _scalar(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _measure_dict(m: Measure) -> dict[str, Any]:
    if isinstance(m, Count):
        return {"kind": "count", "column": m.column}
    if isinstance(m, Sum):
        return {
            "kind": "sum",
            "column": m.column,
            "contributors": m.contributors,
            "top1": m.top1,
            "top2": m.top2,
        }
    return {
        "kind": "mean",
        "column": m.column,
        "contributors": m.contributors,
        "total": m.total,
        "top1": m.top1,
        "top2": m.top2,
    }
