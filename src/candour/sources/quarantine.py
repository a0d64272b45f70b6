"""The quarantine file: every bad row of an extract, with its line and the reason.

Written to ``<home>/quarantine/<source>-<file hash, 12 hex>-<UTC time>.csv`` (mode 0600) as CSV
with the header ``line,record_id,field,column,reason,value``: one line per problem, so a row with
two bad fields appears twice. ``value`` is the offending value of an *attribute* column
(shortened to 120 characters); for identity columns it is never written, because direct
identifiers live only in the vault: the controller finds the row by its line in the file they
sent. Cells are neutralised against CSV injection.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from candour.csvsafe import SafeCsvWriter
from candour.sources.stage import BadRow

HEADER = ("line", "record_id", "field", "column", "reason", "value")
FILE_MODE = 0o600


def write_quarantine(directory: Path, source: str, sha256: str, rows: Sequence[BadRow]) -> Path:
    """Write the bad rows to a new quarantine file and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = directory / f"{source}-{sha256[:12]}-{stamp}.csv"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        writer = SafeCsvWriter(handle)
        writer.writerow(HEADER)
        for row in rows:
            writer.writerow(
                [row.line, row.record_id or "", row.field, row.column or "", row.reason,
                 row.value or ""]
            )
    return path


def summarise(rows: Sequence[BadRow], limit: int = 3) -> str:
    """The commonest problems, e.g. ``5 × attributes.visit_date (column 'visit_date'): not a
    date in the format %d/%m/%Y (first at line 7)``."""
    counts: Counter[tuple[str, str | None, str]] = Counter()
    first: dict[tuple[str, str | None, str], int] = {}
    for row in rows:
        # Duplicate reasons name their lines; group them under one heading.
        reason = row.reason.split(" (lines ")[0]
        key = (row.field, row.column, reason)
        counts[key] += 1
        first.setdefault(key, row.line)
    parts = []
    for (field, column, reason), count in counts.most_common(limit):
        where = f"{field} (column {column!r})" if column else field
        line = first[(field, column, reason)]
        parts.append(f"{count} × {where}: {reason} (first at line {line})")
    if len(counts) > limit:
        parts.append(f"and {len(counts) - limit} other kind(s)")
    return "; ".join(parts)
