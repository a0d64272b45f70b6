"""Statistical disclosure control on known tables: threshold, rounding, secondary suppression,
dominance, margins, refusals, and the report."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from candour.disclosure import (
    Count,
    DisclosureRefused,
    Mean,
    Rules,
    Sum,
    protect,
    round_count,
    secondary,
)


def grid(rows: dict[str, list[int]], cols: list[str]) -> pd.DataFrame:
    """A long table from a dict of row label -> counts per column."""
    return pd.DataFrame(
        [
            {"area": area, "age": col, "n": value}
            for area, values in rows.items()
            for col, value in zip(cols, values, strict=True)
        ]
    )


def published(result, column: str = "n") -> dict[tuple, object]:
    table = result.table
    keys = list(result.keys)
    return {
        tuple(r[k] for k in keys): (None if pd.isna(r[column]) else r[column])
        for _, r in table.iterrows()
    }


# -- rounding and threshold ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "base", "expected"),
    [(0, 5, 0), (2, 5, 0), (3, 5, 5), (7, 5, 5), (8, 5, 10), (12, 5, 10), (13, 5, 15),
     (15, 10, 20), (25, 10, 30), (24, 10, 20), (17, 1, 17), (1234, 100, 1200)],
)  # fmt: skip
def test_round_count_is_nearest_multiple_with_halves_up(value: int, base: int, expected: int):
    assert round_count(value, base) == expected


def test_one_dimensional_threshold_rounding_and_secondary():
    table = pd.DataFrame({"area": ["A", "B", "C", "D"], "n": [3, 12, 27, 41]})
    result = protect(table, keys=["area"], measures=[Count("n")])
    out = published(result)
    # A is below 10; with the county total known A = total - B - C - D, so the smallest other
    # cell (B) must go too.
    assert out == {("A",): None, ("B",): None, ("C",): 25, ("D",): 40}
    kinds = {c.key: c.suppressed for c in result.cells}
    assert kinds == {("A",): "primary", ("B",): "secondary", ("C",): None, ("D",): None}
    assert result.summary() == {
        "cells": 4, "primary": 1, "dominance": 0, "secondary": 1, "rounded": 2,
    }  # fmt: skip
    d = next(c for c in result.cells if c.key == ("D",))
    assert d.rounded == {"n": (41, 40)}


def test_rounding_one_means_no_rounding_and_threshold_is_per_use():
    table = pd.DataFrame({"area": ["A", "B", "C"], "n": [6, 13, 27]})
    result = protect(table, keys=["area"], measures=[Count("n")], rules=Rules(5, 1))
    assert published(result) == {("A",): 6, ("B",): 13, ("C",): 27}
    assert result.summary()["rounded"] == 0


def test_a_count_that_would_round_below_the_threshold_is_suppressed():
    # threshold 7, base 5: 7 rounds to 5, which would publish a value the rules forbid.
    table = pd.DataFrame({"area": ["A", "B", "C"], "n": [7, 30, 40]})
    result = protect(table, keys=["area"], measures=[Count("n")], rules=Rules(7, 5))
    a = next(c for c in result.cells if c.key == ("A",))
    assert a.suppressed == "primary"
    assert "would round to 5" in a.reasons[0]


def test_zero_is_suppressed_like_any_small_count():
    table = pd.DataFrame({"area": ["A", "B", "C"], "n": [0, 30, 40]})
    result = protect(table, keys=["area"], measures=[Count("n")])
    assert result.cells[0].suppressed == "primary"


# -- the leak that a single threshold leaves -------------------------------------------------

LEAKY = {"North": [4, 25, 31], "South": [22, 18, 40], "East": [35, 27, 19]}
AGES = ["0-17", "18-64", "65+"]


def recover_by_subtraction(
    values: dict[tuple, int | None], totals_rows: dict[str, int], totals_cols: dict[str, int]
) -> dict[tuple, int]:
    """What an attacker learns: any line with one hidden cell gives it away, repeatedly."""
    known = {k: v for k, v in values.items() if v is not None}
    hidden = {k for k, v in values.items() if v is None}
    learned: dict[tuple, int] = {}
    progress = True
    while progress:
        progress = False
        lines = [({k for k in values if k[0] == r}, t) for r, t in totals_rows.items()] + [
            ({k for k in values if k[1] == c}, t) for c, t in totals_cols.items()
        ]
        for cells, total in lines:
            unknown = [k for k in cells if k in hidden and k not in learned]
            if len(unknown) == 1:
                rest = sum(known.get(k, learned.get(k, 0)) for k in cells if k != unknown[0])
                learned[unknown[0]] = total - rest
                progress = True
    return learned


def test_threshold_alone_leaks_a_cell_and_secondary_suppression_stops_it():
    table = grid(LEAKY, AGES)
    row_totals = {area: sum(v) for area, v in LEAKY.items()}
    col_totals = {age: sum(LEAKY[a][i] for a in LEAKY) for i, age in enumerate(AGES)}
    exact = {(r["area"], r["age"]): int(r["n"]) for _, r in table.iterrows()}

    # Threshold only (what a naive checker does): North/0-17 = 4 is hidden...
    naive = {k: (None if v < 10 else v) for k, v in exact.items()}
    assert naive[("North", "0-17")] is None
    # ...and comes straight back from the North row total.
    leaked = recover_by_subtraction(naive, row_totals, col_totals)
    assert leaked[("North", "0-17")] == 4

    result = protect(table, keys=["area", "age"], measures=[Count("n")], rules=Rules(10, 1))
    safe = published(result)
    assert safe[("North", "0-17")] is None
    assert recover_by_subtraction(safe, row_totals, col_totals) == {}
    # Not by any linear combination either (independent check with numpy ranks).
    assert numpy_exposed(list(safe), {k for k, v in safe.items() if v is None}) == set()
    # The complements are the smallest cells of the row and column.
    kinds = {c.key: c.suppressed for c in result.cells}
    assert kinds[("South", "0-17")] == "secondary"  # 22 < 35 in column 0-17
    assert kinds[("North", "18-64")] == "secondary"  # 25 < 31 in row North
    assert sum(1 for k in kinds.values() if k == "secondary") == 3


def numpy_exposed(keys: list[tuple], hidden: set[tuple]) -> set[tuple]:
    """Cells whose unit vector is in the row space of the row and column relations."""
    order = sorted(hidden)
    if not order:
        return set()
    rows = []
    for dim in range(len(keys[0])):
        lines: dict[tuple, list[tuple]] = {}
        for k in keys:
            lines.setdefault(k[:dim] + k[dim + 1 :], []).append(k)
        for cells in lines.values():
            if len(cells) >= 2:
                rows.append([1.0 if c in cells else 0.0 for c in order])
    a = np.array(rows) if rows else np.zeros((0, len(order)))
    rank = np.linalg.matrix_rank(a) if len(rows) else 0
    out = set()
    for i, cell in enumerate(order):
        unit = np.zeros(len(order))
        unit[i] = 1.0
        if np.linalg.matrix_rank(np.vstack([a, unit])) == rank:
            out.add(cell)
    return out


def test_two_blocks_joined_by_one_cell_are_caught_by_the_whole_table_audit():
    # Every row and column holds two or more hidden cells, yet (r2, c3) is the difference of the
    # r1+r2 row totals and the c1+c2 column totals: the per-line rule alone would miss it.
    keys = [(f"r{i}", f"c{j}") for i in range(1, 6) for j in range(1, 6)]
    hidden_keys = {("r1", "c1"), ("r1", "c2"), ("r2", "c1"), ("r2", "c2"), ("r2", "c3"),
                   ("r3", "c3"), ("r3", "c4"), ("r4", "c3"), ("r4", "c4")}  # fmt: skip
    index = {k: i for i, k in enumerate(keys)}
    rels = secondary.relations(keys, None)
    hidden = {index[k] for k in hidden_keys}
    assert secondary.exposed(rels, hidden) == {index[("r2", "c3")]}
    assert numpy_exposed(keys, hidden_keys) == {("r2", "c3")}

    extra = secondary.suppress(rels, hidden, [10.0] * len(keys), [False] * len(keys))
    assert extra
    final = hidden | extra
    assert secondary.exposed(rels, final) == set()
    assert numpy_exposed(keys, {keys[i] for i in final}) == set()


def test_exposed_uses_exact_arithmetic():
    # Three cells in one line with a known total, plus a 2-cell line: rank questions that float
    # tolerances could get wrong are answered exactly.
    rels = [
        secondary.Relation((0, 1, 2), (1, 1, 1), None),
        secondary.Relation((0, 1), (1, 1), None),
    ]
    assert secondary.exposed(rels, {0, 1, 2}) == {2}
    assert Fraction(1, 3) * 3 == 1  # the module relies on Fraction, not floats


def test_margins_in_the_table_are_protected_too():
    table = pd.DataFrame(
        {"area": ["A", "B", "C", "Total"], "n": [4, 30, 25, 59]},
    )
    result = protect(table, keys=["area"], measures=[Count("n")], margin="Total")
    out = published(result)
    # With the explicit total published, hiding A alone would leak it: hide C (smallest inner).
    assert out[("A",)] is None and out[("C",)] is None
    assert out[("B",)] == 30 and out[("Total",)] == 60
    assert [c.margin for c in result.cells] == [False, False, False, True]


def test_two_dimensional_rollup_with_margins():
    rows = {"A": [3, 20, 30], "B": [15, 25, 40]}
    cols = ["x", "y", "z"]
    records = grid(rows, cols).to_dict("records")
    for area, values in rows.items():
        records.append({"area": area, "age": "Total", "n": sum(values)})
    for i, col in enumerate(cols):
        records.append({"area": "Total", "age": col, "n": sum(rows[a][i] for a in rows)})
    records.append({"area": "Total", "age": "Total", "n": sum(map(sum, rows.values()))})
    table = pd.DataFrame(records)
    result = protect(
        table, keys=["area", "age"], measures=[Count("n")], rules=Rules(10, 1), margin="Total"
    )
    out = published(result)
    hidden = {k for k, v in out.items() if v is None}
    assert ("A", "x") in hidden
    # Every line (including the Total row/column and their totals) hides 0 or >= 2 cells.
    for dim in (0, 1):
        lines: dict[str, list[tuple]] = {}
        for k in out:
            lines.setdefault(k[1 - dim], []).append(k)
        for cells in lines.values():
            assert sum(1 for c in cells if c in hidden) != 1
    # And an attacker using the published margins cannot solve for anything.
    exact = {(r["area"], r["age"]): r["n"] for r in records}
    solved = solve_with_margins(out, exact)
    assert solved == {}


def solve_with_margins(out: dict[tuple, object], exact: dict[tuple, int]) -> dict[tuple, int]:
    known = {k: v for k, v in out.items() if v is not None}
    learned: dict[tuple, int] = {}
    changed = True
    while changed:
        changed = False
        for dim in (0, 1):
            lines: dict[str, list[tuple]] = {}
            for k in out:
                lines.setdefault(k[1 - dim], []).append(k)
            for cells in lines.values():
                total = [c for c in cells if c[dim] == "Total"]
                inner = [c for c in cells if c[dim] != "Total"]
                members = inner + total
                unknown = [c for c in members if c not in known and c not in learned]
                if len(unknown) == 1 and total:
                    u = unknown[0]
                    value = {**known, **learned}
                    if u in total:
                        learned[u] = sum(value[c] for c in inner)  # type: ignore[misc]
                    else:
                        learned[u] = value[total[0]] - sum(  # type: ignore[operator]
                            value[c] for c in inner if c != u
                        )
                    assert learned[u] == exact[u]
                    changed = True
    return learned


# -- dominance -------------------------------------------------------------------------------


def sums_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "area": ["A", "B", "C", "D", "E"],
            "cost": [1000.0, 1000.0, 1000.0, 1000.0, 1000.0],
            "people": [30, 30, 30, 30, 5],
            "top1": [600.0, 450.0, 450.0, 100.0, 100.0],
            "top2": [100.0, 400.0, 300.0, 100.0, 100.0],
        }
    )


def test_nk_dominance_suppresses_sums_dominated_by_one_or_two_contributors():
    result = protect(
        sums_table(),
        keys=["area"],
        measures=[Sum("cost", contributors="people", top1="top1", top2="top2")],
        rules=Rules(10, 5),
    )
    kinds = {c.key[0]: c.suppressed for c in result.cells}
    assert kinds["A"] == "dominance"  # top 1 = 60% >= 50%
    assert kinds["B"] == "dominance"  # top 2 = 85% >= 80%
    assert kinds["E"] == "primary"  # only 5 contributors
    # C (top 2 = 75%) and D pass; three hidden cells already protect each other.
    assert kinds["C"] is None and kinds["D"] is None
    # Evidence columns are checked, never published; sums are not rounded.
    assert list(result.table.columns) == ["area", "cost"]
    assert result.table["cost"].dropna().tolist() == [1000.0, 1000.0]
    reasons = next(c for c in result.cells if c.key == ("A",)).reasons
    assert any("top 1" in r for r in reasons)


def test_dominance_boundaries_follow_acro_ge_semantics():
    table = pd.DataFrame(
        {"g": ["a", "b"], "s": [100.0, 100.0], "n": [20, 20], "t1": [50.0, 49.9], "t2": [0.0, 0.0]}
    )
    result = protect(
        table,
        keys=["g"],
        measures=[Sum("s", contributors="n", top1="t1", top2="t2")],
        rules=Rules(10, 5, dominance=((1, 0.5),)),
    )
    assert result.cells[0].suppressed == "dominance"
    # b is secondary only because a is hidden in a 2-cell line; its own check passed.
    assert result.cells[1].reasons == (
        "secondary: protects another suppressed cell in the same row/column",
    )


def test_p_percent_rule_is_optional():
    table = pd.DataFrame(
        {"g": ["a", "b", "c"], "s": [100.0, 100.0, 100.0], "n": [20, 20, 20],
         "t1": [45.0, 20.0, 20.0], "t2": [40.0, 20.0, 20.0]}
    )  # fmt: skip
    measures = [Sum("s", contributors="n", top1="t1", top2="t2")]
    plain = protect(table, keys=["g"], measures=measures, rules=Rules(dominance=((1, 0.9),)))
    assert plain.cells[0].suppressed is None
    strict = protect(
        table, keys=["g"], measures=measures, rules=Rules(dominance=((1, 0.9),), p_ratio=0.5)
    )
    assert strict.cells[0].suppressed == "dominance"  # 15 left < 50% of 45


def test_means_share_the_suppression_pattern_of_their_evidence():
    table = pd.DataFrame(
        {
            "area": ["A", "B", "C"],
            "visits": [40, 8, 50],
            "mean_cost": [25.0, 30.0, 20.0],
            "people": [40, 8, 50],
            "total": [1000.0, 240.0, 1000.0],
            "top1": [100.0, 50.0, 700.0],
            "top2": [90.0, 40.0, 100.0],
        }
    )
    result = protect(
        table,
        keys=["area"],
        measures=[
            Count("visits"),
            Mean("mean_cost", contributors="people", total="total", top1="top1", top2="top2"),
        ],
    )
    kinds = {c.key[0]: c.suppressed for c in result.cells}
    # B has too few contributors, C is dominated; two hidden cells protect each other.
    assert kinds == {"A": None, "B": "primary", "C": "dominance"}
    assert result.table["mean_cost"].isna().tolist() == [False, True, True]
    assert result.table["visits"].tolist()[0] == 40
    assert result.table["visits"].isna().tolist() == [False, True, True]


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "keys", "measures", "message"),
    [
        (pd.DataFrame({"person_id": ["P-1", "P-2"], "n": [1, 1]}), ["person_id"],
         [Count("n")], "person-level"),
        (pd.DataFrame({"area": ["A"], "n": [20], "postcode": ["ME1 1AA"]}), ["area"],
         [Count("n")], "person-level"),
        (pd.DataFrame({"area": ["A"], "n": [20], "max_age": [90]}), ["area"], [Count("n")],
         "undeclared"),
        (pd.DataFrame({"area": ["A", "A"], "n": [20, 30]}), ["area"], [Count("n")],
         "more than once"),
        (pd.DataFrame({"area": ["A"], "n": [-3]}), ["area"], [Count("n")], "negative"),
        (pd.DataFrame({"area": ["A"], "n": [12.5]}), ["area"], [Count("n")], "whole numbers"),
        (pd.DataFrame({"area": ["A"], "n": [float("nan")]}), ["area"], [Count("n")],
         "missing values"),
        (pd.DataFrame({"area": ["A"], "n": ["12"]}), ["area"], [Count("n")], "numeric"),
        (pd.DataFrame({"area": ["A"], "s": [10.0]}), ["area"],
         [Sum("s", contributors="p", top1="t1", top2="t2")], "missing from the table"),
        (pd.DataFrame({"area": ["A"], "s": [-10.0], "p": [20], "t1": [1.0], "t2": [1.0]}),
         ["area"], [Sum("s", contributors="p", top1="t1", top2="t2")], "non-negative"),
        (pd.DataFrame({"area": ["A"], "s": [10.0], "p": [20], "t1": [1.0], "t2": [2.0]}),
         ["area"], [Sum("s", contributors="p", top1="t1", top2="t2")], "exceeds"),
        (pd.DataFrame({"area": ["A"], "s": [10.0], "p": [20], "t1": [8.0], "t2": [7.0]}),
         ["area"], [Sum("s", contributors="p", top1="t1", top2="t2")], "exceed the total"),
        (pd.DataFrame({"area": ["A"]}), ["area"], [], "no count"),
    ],
)  # fmt: skip
def test_unsafe_tables_are_refused(table, keys, measures, message):
    with pytest.raises(DisclosureRefused, match=message):
        protect(table, keys=keys, measures=measures)


def test_bad_rules_are_refused():
    for bad in (lambda: Rules(0, 5), lambda: Rules(10, 0), lambda: Rules(dominance=((3, 0.5),))):
        with pytest.raises(DisclosureRefused):
            bad()


def test_a_table_without_keys_is_one_cell():
    result = protect(pd.DataFrame({"n": [8]}), keys=[], measures=[Count("n")])
    assert result.cells[0].suppressed == "primary"
    assert result.table["n"].isna().all()
    ok = protect(pd.DataFrame({"n": [123]}), keys=[], measures=[Count("n")])
    assert ok.table["n"].tolist() == [125]


def test_missing_keys_form_one_group():
    table = pd.DataFrame({"area": ["A", None, "B"], "n": [30, 12, 40]})
    result = protect(table, keys=["area"], measures=[Count("n")])
    assert [c.key for c in result.cells] == [("A",), (None,), ("B",)]


def test_report_is_json_and_records_original_and_published_values():
    table = pd.DataFrame({"area": ["A", "B", "C", "D"], "n": [3, 12, 27, 41]})
    report = protect(table, keys=["area"], measures=[Count("n")]).report()
    again = json.loads(json.dumps(report))
    assert again["rules"] == {"threshold": 10, "rounding": 5, "dominance": [[1, 0.5], [2, 0.8]],
                              "p_ratio": None}  # fmt: skip
    cells = {tuple(c["key"]): c for c in again["cells"]}
    assert cells[("A",)]["original"] == {"n": 3}
    assert cells[("A",)]["published"] == {"n": None}
    assert cells[("A",)]["suppressed"] == "primary"
    assert cells[("C",)]["published"] == {"n": 25}
    assert again["summary"]["secondary"] == 1


def test_empty_groups_of_a_two_way_table_are_filled_in_and_suppressed():
    # Column z has a single present cell; its total would be the cell itself, and it follows from
    # the grand total minus columns x and y. Filling in the empty groups closes that door.
    table = pd.DataFrame(
        {"area": ["A", "A", "B", "B", "B"], "age": ["x", "y", "x", "y", "z"],
         "n": [30, 40, 25, 35, 4]}
    )  # fmt: skip
    result = protect(table, keys=["area", "age"], measures=[Count("n")], rules=Rules(10, 1))
    added = next(c for c in result.cells if c.key == ("A", "z"))
    assert added.suppressed == "primary"
    assert added.original == {"n": 0} and added.published == {"n": None}
    assert "empty group" in added.reasons[0]
    assert len(result.table) == 6
    hidden = {c.key for c in result.cells if c.suppressed}
    assert numpy_exposed([c.key for c in result.cells], hidden) == set()
