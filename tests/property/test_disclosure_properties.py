"""Properties of statistical disclosure control on random tables (hypothesis).

After :func:`protect`: no suppressed cell can be recovered from the table's published cells and
its row and column totals, by repeated subtraction or by any linear combination; every published
count is at least the threshold and a multiple of the rounding base.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from candour.disclosure import Count, Rules, protect

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def tables(draw: st.DrawFn) -> tuple[pd.DataFrame, list[str]]:
    """1-D or 2-D count tables, with small cells common and some combinations absent."""
    dims = draw(st.sampled_from([1, 2]))
    rows = draw(st.integers(1, 6))
    cols = draw(st.integers(1, 5)) if dims == 2 else 1
    count = st.one_of(st.integers(0, 12), st.integers(0, 60))
    records = []
    for r in range(rows):
        for c in range(cols):
            if dims == 2 and draw(st.integers(0, 9)) == 0:
                continue  # an absent (empty) group
            record = {"a": f"a{r}", "n": draw(count)}
            if dims == 2:
                record["b"] = f"b{c}"
            records.append(record)
    if not records:
        records = [{"a": "a0", "n": 5} | ({"b": "b0"} if dims == 2 else {})]
    keys = ["a", "b"] if dims == 2 else ["a"]
    return pd.DataFrame(records)[keys + ["n"]], keys


rules_strategy = st.builds(
    Rules,
    threshold=st.sampled_from([3, 5, 7, 10]),
    rounding=st.sampled_from([1, 2, 3, 5, 10]),
)


def lines(keys: list[tuple]) -> list[list[tuple]]:
    """Rows and columns (and the single line of a 1-D table) with two or more cells."""
    found = []
    for dim in range(len(keys[0])):
        groups: dict[tuple, list[tuple]] = {}
        for k in keys:
            groups.setdefault(k[:dim] + k[dim + 1 :], []).append(k)
        found.extend(g for g in groups.values() if len(g) >= 2)
    return found


def attack(exact: dict[tuple, int], hidden: set[tuple]) -> dict[tuple, int]:
    """Recover hidden cells by subtraction from exact line totals, repeatedly."""
    learned: dict[tuple, int] = {}
    all_lines = lines(list(exact))
    progress = True
    while progress:
        progress = False
        for line in all_lines:
            unknown = [k for k in line if k in hidden and k not in learned]
            if len(unknown) == 1:
                total = sum(exact[k] for k in line)
                rest = sum(
                    exact[k] if k not in hidden else learned[k] for k in line if k != unknown[0]
                )
                learned[unknown[0]] = total - rest
                progress = True
    return learned


def linear_exposed(keys: list[tuple], hidden: set[tuple]) -> set[tuple]:
    order = sorted(hidden)
    if not order:
        return set()
    a = np.array([[1.0 if c in line else 0.0 for c in order] for line in lines(keys)])
    a = a[a.any(axis=1)] if a.size else np.zeros((0, len(order)))
    base = np.linalg.matrix_rank(a) if len(a) else 0
    exposed = set()
    for i, cell in enumerate(order):
        unit = np.zeros((1, len(order)))
        unit[0, i] = 1.0
        if np.linalg.matrix_rank(np.vstack([a, unit]) if len(a) else unit) == base:
            exposed.add(cell)
    return exposed


@SETTINGS
@given(tables(), rules_strategy)
def test_no_suppressed_cell_is_recoverable_from_totals(table_keys, rules):
    table, keys = table_keys
    result = protect(table, keys=keys, measures=[Count("n")], rules=rules)
    # Empty groups are filled in as suppressed zero cells; the attacker knows the full grid.
    cells = [c.key for c in result.cells]
    exact = {c.key: int(c.original["n"]) for c in result.cells}
    assert set(exact) >= {tuple(r) for r in table[keys].itertuples(index=False)}
    hidden = {c.key for c in result.cells if c.suppressed is not None}
    assert attack(exact, hidden) == {}
    assert linear_exposed(cells, hidden) == set()
    # Every primary cell really is hidden, and every small count is primary.
    for cell in result.cells:
        if cell.original["n"] < rules.threshold:
            assert cell.suppressed == "primary"


@SETTINGS
@given(tables(), rules_strategy)
def test_published_counts_are_at_least_the_threshold_and_multiples_of_the_base(table_keys, rules):
    table, keys = table_keys
    result = protect(table, keys=keys, measures=[Count("n")], rules=rules)
    for value, cell in zip(result.table["n"], result.cells, strict=True):
        if pd.isna(value):
            assert cell.suppressed is not None
            continue
        assert value >= rules.threshold
        assert value % rules.rounding == 0
        assert abs(value - cell.original["n"]) <= rules.rounding / 2
        assert cell.suppressed is None


@SETTINGS
@given(tables(), rules_strategy)
def test_protect_is_deterministic_and_only_hides_what_it_reports(table_keys, rules):
    table, keys = table_keys
    first = protect(table, keys=keys, measures=[Count("n")], rules=rules)
    second = protect(table.copy(), keys=keys, measures=[Count("n")], rules=rules)
    assert first.report() == second.report()
    hidden_in_table = set(np.flatnonzero(first.table["n"].isna().to_numpy()))
    reported = {i for i, c in enumerate(first.cells) if c.suppressed is not None}
    assert hidden_in_table == reported
