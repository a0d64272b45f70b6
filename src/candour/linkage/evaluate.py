"""Linkage quality against a truth file: pairwise precision, recall and F1, and B-cubed.

Both are computed from the contingency table of (predicted cluster, true person) counts, so a
million records evaluate in about a second without enumerating pairs.

* Pairwise: a pair of records is a true positive when it is in one predicted cluster and has
  one true person. Precision = TP / predicted pairs; recall = TP / true pairs.
* B-cubed (Bagga and Baldwin, 1998): for each record, the share of its predicted cluster
  that is truly its person (precision) and the share of its person that is in its predicted
  cluster (recall), averaged over records.

Records present in only one of the two inputs are reported and left out of the scores.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from candour.errors import CandourError

TRUTH_COLUMNS = ("source", "record_id", "person_key")


class TruthFileError(CandourError):
    """The truth file cannot be read."""


@dataclass(frozen=True)
class Quality:
    """Linkage quality figures."""

    records: int
    predicted_persons: int
    true_persons: int
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    true_positive_pairs: int
    predicted_pairs: int
    true_pairs: int
    missing_from_index: int = 0
    missing_from_truth: int = 0

    def as_dict(self) -> dict[str, float | int]:
        """A JSON-ready dict."""
        return asdict(self)


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def _ratio(a: float, b: float) -> float:
    # With nothing to find (no pairs), nothing was missed and nothing was wrong.
    return a / b if b else 1.0


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def score(predicted: Mapping[str, str], truth: Mapping[str, str]) -> Quality:
    """Quality of ``predicted`` (record -> person id) against ``truth`` (record -> person)."""
    common = predicted.keys() & truth.keys()
    cells: Counter[tuple[str, str]] = Counter((predicted[r], truth[r]) for r in common)
    clusters: Counter[str] = Counter(predicted[r] for r in common)
    persons: Counter[str] = Counter(truth[r] for r in common)
    tp = sum(_pairs(n) for n in cells.values())
    predicted_pairs = sum(_pairs(n) for n in clusters.values())
    true_pairs = sum(_pairs(n) for n in persons.values())
    precision = _ratio(tp, predicted_pairs)
    recall = _ratio(tp, true_pairs)
    n = len(common)
    # Each record in a cell of size k contributes k/|cluster| and k/|person|; the cell has k
    # such records, so the cell contributes k^2/|cluster| in total.
    b_precision = sum(k * k / clusters[c] for (c, _t), k in cells.items()) / n if n else 1.0
    b_recall = sum(k * k / persons[t] for (_c, t), k in cells.items()) / n if n else 1.0
    return Quality(
        records=n,
        predicted_persons=len(clusters),
        true_persons=len(persons),
        pairwise_precision=precision,
        pairwise_recall=recall,
        pairwise_f1=_f1(precision, recall),
        bcubed_precision=b_precision,
        bcubed_recall=b_recall,
        bcubed_f1=_f1(b_precision, b_recall),
        true_positive_pairs=tp,
        predicted_pairs=predicted_pairs,
        true_pairs=true_pairs,
        missing_from_index=len(truth.keys() - predicted.keys()),
        missing_from_truth=len(predicted.keys() - truth.keys()),
    )


def read_truth(path: Path) -> dict[str, str]:
    """Read a truth CSV (``source,record_id,person_key``) as record_key -> person_key."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise TruthFileError(f"{path}: no such file") from exc
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in TRUTH_COLUMNS if c not in header]
        if missing:
            raise TruthFileError(
                f"{path}: missing column(s) {', '.join(missing)}; expected "
                f"{','.join(TRUTH_COLUMNS)}"
            )
        truth: dict[str, str] = {}
        for line, row in enumerate(reader, start=2):
            key = f"{row['source']}:{row['record_id']}"
            if key in truth:
                raise TruthFileError(f"{path}: line {line}: record {key} appears twice")
            if not row["person_key"]:
                raise TruthFileError(f"{path}: line {line}: empty person_key")
            truth[key] = row["person_key"]
    if not truth:
        raise TruthFileError(f"{path}: no records")
    return truth
