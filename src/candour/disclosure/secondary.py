"""Secondary suppression: hide enough extra cells that no suppressed cell can be worked out.

A table of group keys is a set of *lines*: for each key (dimension), the cells that share every
other key's value. Each line carries one additive relation an attacker can use:

- with an explicit total in the table (a margin cell), ``total - sum(members) = 0``;
- without one, ``sum(members) = K``, where the line total ``K`` is assumed to be known (published
  elsewhere, or derivable), which is the conservative reading of "recovered from row or column
  totals". A line with a single present cell is skipped: its total *is* that cell, so publishing it
  would be publishing the cell, which the same rules would refuse.

Two checks, applied until neither changes anything:

1. **Per line.** A relation with exactly one hidden member gives that member away by subtraction,
   so the smallest other member of the relation is hidden too (the smallest loses the least
   information; ties go to the earliest cell so the result is deterministic).
2. **Whole table.** Hidden cells can still be isolated by combining several relations (two
   suppressed blocks joined by one cell in a 2-D table are the classic case). A hidden cell is
   exposed exactly when its unit vector lies in the row space of the relations restricted to the
   hidden cells; this is decided with exact rational arithmetic. Each exposed cell gets its
   smallest visible neighbour (in any of its lines) hidden as well.

Only exact recovery is prevented. Feasibility intervals (non-negativity, the known threshold) are
not audited: see docs/disclosure.md.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Relation:
    """One additive relation among cells: ``sum(coef * value) = known constant``."""

    cells: tuple[int, ...]
    coefs: tuple[int, ...]
    total: int | None  # the index of the explicit margin cell, when the line has one


def relations(keys: Sequence[tuple[Hashable, ...]], margin: Hashable | None) -> list[Relation]:
    """The additive relations of a table whose cell ``i`` has group key ``keys[i]``.

    ``margin`` is the label that marks a total in a key column (e.g. ``"Total"``), or None when
    the table has no margin cells.
    """
    if not keys:
        return []
    width = len(keys[0])
    found: list[Relation] = []
    for dim in range(width):
        lines: dict[tuple[Hashable, ...], list[int]] = {}
        for index, key in enumerate(keys):
            rest = key[:dim] + key[dim + 1 :]
            lines.setdefault(rest, []).append(index)
        for members in lines.values():
            totals = [i for i in members if margin is not None and keys[i][dim] == margin]
            inner = [i for i in members if i not in totals]
            if len(totals) > 1:
                raise ValueError("a line has more than one total cell")
            if totals:
                if not inner:
                    continue
                cells = tuple(inner) + (totals[0],)
                coefs = (1,) * len(inner) + (-1,)
                found.append(Relation(cells, coefs, totals[0]))
            elif len(inner) >= 2:
                found.append(Relation(tuple(inner), (1,) * len(inner), None))
    return found


def _smallest(candidates: Iterable[int], size: Sequence[float], is_margin: Sequence[bool]) -> int:
    # Prefer inner cells over totals: hiding a total removes the most information.
    return min(candidates, key=lambda i: (is_margin[i], size[i], i))


def exposed(rels: Sequence[Relation], hidden: set[int]) -> set[int]:
    """Hidden cells whose exact value follows from the relations and the visible cells.

    Cell ``i`` is determined iff the unit vector ``e_i`` is in the row space of the relations
    restricted to hidden cells; in reduced row echelon form that means some row is exactly
    ``e_i``. Fractions keep the elimination exact (no tolerance to tune).
    """
    columns = sorted(hidden)
    position = {cell: j for j, cell in enumerate(columns)}
    rows: list[dict[int, Fraction]] = []
    for rel in rels:
        row = {
            position[c]: Fraction(k)
            for c, k in zip(rel.cells, rel.coefs, strict=True)
            if c in hidden
        }
        if row:
            rows.append(row)
    pivots: list[tuple[int, dict[int, Fraction]]] = []
    for row in rows:
        for col, prow in pivots:
            factor = row.get(col)
            if factor:
                for c, v in prow.items():
                    updated = row.get(c, Fraction(0)) - factor * v
                    if updated:
                        row[c] = updated
                    else:
                        row.pop(c, None)
        if not row:
            continue
        col = min(row)
        lead = row[col]
        row = {c: v / lead for c, v in row.items()}
        # Keep earlier pivot rows reduced too, so the final set is in RREF.
        for _, prow in pivots:
            factor = prow.get(col)
            if factor:
                for c, v in row.items():
                    updated = prow.get(c, Fraction(0)) - factor * v
                    if updated:
                        prow[c] = updated
                    else:
                        prow.pop(c, None)
        pivots.append((col, row))
    return {columns[col] for col, row in pivots if len(row) == 1}


def suppress(
    rels: Sequence[Relation],
    primary: set[int],
    size: Sequence[float],
    is_margin: Sequence[bool],
) -> set[int]:
    """The cells to hide besides ``primary`` so that no hidden cell is exposed.

    Iterates the per-line rule and the whole-table audit to a fixed point. Always terminates:
    every round hides at least one more cell, and once every cell is hidden the table publishes
    no value at all.
    """
    hidden = set(primary)
    by_cell: dict[int, list[Relation]] = {}
    for rel in rels:
        for cell in rel.cells:
            by_cell.setdefault(cell, []).append(rel)
    while True:
        changed = True
        while changed:
            changed = False
            for rel in rels:
                inside = [c for c in rel.cells if c in hidden]
                if len(inside) == 1:
                    visible = [c for c in rel.cells if c not in hidden]
                    hidden.add(_smallest(visible, size, is_margin))
                    changed = True
        leaks = exposed(rels, hidden)
        if not leaks:
            return hidden - primary
        added = False
        for cell in sorted(leaks):
            neighbours = {c for rel in by_cell.get(cell, []) for c in rel.cells if c not in hidden}
            if neighbours:
                hidden.add(_smallest(neighbours, size, is_margin))
                added = True
                break
        if not added:
            # Every neighbour is hidden yet the cell is still isolated by a chain of relations:
            # widen to the smallest visible cell anywhere rather than publish a leak.
            rest = [i for i in range(len(size)) if i not in hidden]
            if not rest:
                return hidden - primary
            hidden.add(_smallest(rest, size, is_margin))
