"""Choosing blocking rules: one count when every candidate fits, tightening when one does not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
from benchmarks.bench_linkage import make_records
from splink import DuckDBAPI, block_on

from candour.linkage.blocking import choose_rules
from candour.linkage.fields import prepare, present_fields
from candour.linkage.model import build_model, describe_rule


@pytest.fixture(scope="module")
def frame() -> Iterator[tuple[Any, int, list[str]]]:
    table = make_records(400, seed=5).table.drop_columns(["person", "batch"])
    prepared = prepare(table)
    con = duckdb.connect()
    frame = DuckDBAPI(connection=con).register(prepared, table_name="ids")
    yield frame, prepared.num_rows, present_fields(prepared)
    con.close()


def test_every_candidate_fitting_is_counted_once_in_order(frame):
    identities, records, fields = frame
    spec = build_model(fields)
    rules, counts = choose_rules(identities, spec, records)
    assert [c.rule for c in counts] == [c.name for c in spec.candidate_rules]
    assert [describe_rule(r) for r in rules] == [
        describe_rule(block_on(*c.columns)) for c in spec.candidate_rules
    ]
    # Cumulative counts add the marginal ones, in order, and nothing was tightened.
    running = 0
    for count in counts:
        running += count.marginal
        assert count.cumulative == running
        assert count.note == "" and not count.estimated
    assert counts[-1].cumulative > 0


def test_a_rule_over_budget_is_tightened_or_dropped(frame):
    identities, records, fields = frame
    spec = build_model(fields)
    _, generous = choose_rules(identities, spec, records)
    loosest = max(c.marginal for c in generous)
    # A budget just under the loosest rule's count forces the rule-by-rule path.
    spec.max_comparisons_per_record = (loosest - 1) / records
    rules, counts = choose_rules(identities, spec, records)
    changed = [c for c in counts if c.note]
    assert changed, "the loosest rule must be tightened or dropped"
    assert all(c.note.startswith(("tightened", "dropped")) for c in changed)
    kept = [c for c in counts if not c.note.startswith("dropped")]
    assert len(rules) == len(kept)
    assert all(c.marginal <= loosest - 1 for c in kept)
