"""Disclosure control: what may leave the environment, and how.

- :func:`protect` applies statistical disclosure control to an aggregate table (threshold,
  dominance, secondary suppression, rounding) and records what it did to every cell.
- :func:`dp_query` answers counts, sums and means by group with differential privacy (OpenDP),
  charged against the data use's epsilon budget.
- :func:`save_output` keeps a protected table and its report inside the environment;
  :func:`request_release`, :func:`approve_release` and :func:`reject_release` are output
  checking under the two-person rule, ending in a copy under ``releases/`` and a ledger entry.

See docs/disclosure.md.
"""

from candour.disclosure.dp import (
    BudgetExhausted,
    DpResult,
    Noise,
    dp_query,
    remaining_budget,
)
from candour.disclosure.outputs import Output, OutputError, get_output, save_output
from candour.disclosure.releases import (
    Release,
    ReleaseError,
    approve_release,
    get_release,
    list_releases,
    reject_release,
    request_release,
)
from candour.disclosure.sdc import (
    SUPPRESSED_MARK,
    CellOutcome,
    Count,
    DisclosureRefused,
    Mean,
    Measure,
    Rules,
    SdcResult,
    Sum,
    protect,
    round_count,
)

__all__ = [
    "SUPPRESSED_MARK",
    "BudgetExhausted",
    "CellOutcome",
    "Count",
    "DisclosureRefused",
    "DpResult",
    "Mean",
    "Measure",
    "Noise",
    "Output",
    "OutputError",
    "Release",
    "ReleaseError",
    "Rules",
    "SdcResult",
    "Sum",
    "approve_release",
    "dp_query",
    "get_output",
    "get_release",
    "list_releases",
    "protect",
    "reject_release",
    "remaining_budget",
    "request_release",
    "round_count",
    "save_output",
]
