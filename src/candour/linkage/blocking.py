"""Choosing blocking rules that keep the number of comparisons bounded, and counting them.

Each candidate rule from the model is counted with Splink's blocking analysis (the marginal
comparisons it adds after the rules before it). A rule adding more than the budget
(``max_comparisons_per_record`` x records) is tightened with another column; if two
tightenings are not enough it is dropped. The final counts are kept with the run and shown in
the report, so the work a run did is never a surprise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from splink import block_on
from splink.blocking_analysis import count_comparisons_from_blocking_rules

from candour.linkage.model import CandidateRule, ModelSpec, tighteners

# Counting exactly is cheap below this many records; above it Splink samples each side.
EXACT_COUNT_LIMIT = 50_000
MAX_TIGHTENINGS = 2


@dataclass(frozen=True)
class RuleCount:
    """One prediction blocking rule and the comparisons it generates."""

    rule: str
    marginal: int
    cumulative: int
    estimated: bool
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _sample_proportion(records: int) -> float:
    if records <= EXACT_COUNT_LIMIT:
        return 1.0
    # About 50,000 records on each side keeps the estimate within a few per cent.
    return max(0.01, min(1.0, EXACT_COUNT_LIMIT / records))


def _count(identities: Any, rules: list[Any], proportion: float) -> list[dict[str, Any]]:
    records = count_comparisons_from_blocking_rules(
        identities,
        blocking_rules=rules,
        link_type="dedupe_only",
        unique_id_column_name="record_key",
        record_sample_proportion=proportion,
    )
    return [dict(r) for r in records]


def _rule(columns: tuple[str, ...]) -> Any:
    return block_on(*columns)


def choose_rules(
    identities: Any, spec: ModelSpec, records: int
) -> tuple[list[Any], list[RuleCount]]:
    """The prediction blocking rules for this run, with their comparison counts."""
    proportion = _sample_proportion(records)
    estimated = proportion < 1.0
    if spec.fixed_blocking_rules is not None:
        rules = list(spec.fixed_blocking_rules)
        counted = _count(identities, rules, proportion)
        return rules, [
            RuleCount(
                rule=str(r["blocking_rule"]),
                marginal=int(r["marginal_comparison_count"]),
                cumulative=int(r["cumulative_comparison_count"]),
                estimated=estimated,
                note="from the settings file",
            )
            for r in counted
        ]
    budget = spec.max_comparisons_per_record * records
    present = set(spec.fields)
    # Usually every candidate fits the budget as it is: one count of them all, in order,
    # gives each one's marginal count after those before it, which is what the loop below
    # would find one rule at a time (recounting every earlier rule each time).
    untightened = [_rule(c.columns) for c in spec.candidate_rules]
    if untightened:
        counted = _count(identities, untightened, proportion)
        if all(int(r["marginal_comparison_count"]) <= budget for r in counted):
            return untightened, [
                RuleCount(
                    rule=candidate.name,
                    marginal=int(r["marginal_comparison_count"]),
                    cumulative=int(r["cumulative_comparison_count"]),
                    estimated=estimated,
                )
                for candidate, r in zip(spec.candidate_rules, counted, strict=True)
            ]
    chosen: list[Any] = []
    counts: list[RuleCount] = []
    cumulative = 0
    for candidate in spec.candidate_rules:
        columns = candidate.columns
        options = tighteners(candidate, present)
        note = ""
        for attempt in range(MAX_TIGHTENINGS + 1):
            rule = _rule(columns)
            counted = _count(identities, [*chosen, rule], proportion)
            marginal = int(counted[-1]["marginal_comparison_count"])
            if marginal <= budget:
                chosen.append(rule)
                cumulative = int(counted[-1]["cumulative_comparison_count"])
                counts.append(
                    RuleCount(
                        rule=CandidateRule(columns).name,
                        marginal=marginal,
                        cumulative=cumulative,
                        estimated=estimated,
                        note=note,
                    )
                )
                break
            if attempt == MAX_TIGHTENINGS or not options:
                counts.append(
                    RuleCount(
                        rule=CandidateRule(columns).name,
                        marginal=marginal,
                        cumulative=cumulative,
                        estimated=estimated,
                        note=f"dropped: {marginal:,} comparisons exceed {budget:,.0f}",
                    )
                )
                break
            extra = options.pop(0)
            note = f"tightened from {candidate.name} (too many comparisons)"
            columns = (*columns, extra)
    return chosen, [c for c in counts if not c.note.startswith("dropped")] + [
        c for c in counts if c.note.startswith("dropped")
    ]
