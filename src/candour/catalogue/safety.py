"""The check every publish runs: nothing about a person, and no small count, leaves.

Released outputs have been through disclosure control and a second person's check already; this
is the catalogue's own, independent last line. It refuses a table that

- has a column whose name means a row is about one person or carries a direct identifier
  (disclosure control's list, plus row-level references such as a UPRN or a case reference);
- has a cell that looks like a person id, a record key, an NHS number (with a valid check
  digit), a full postcode or an e-mail address, whatever its column is called;
- has a count below the threshold of the data use it came from (suppressed cells, ``[c]``,
  are fine: that is what suppression is for), or a count that is not a whole number;
- has the same group twice (one row per group is what an aggregate is; repeats suggest rows
  about people).

All problems are collected, so the refusal says everything that is wrong at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

from candour.catalogue.model import PublishRefused
from candour.disclosure import SUPPRESSED_MARK
from candour.disclosure.sdc import PERSON_LEVEL_COLUMNS

#: Row-level references the catalogue refuses besides disclosure control's person-level list:
#: each identifies one household, property, case or person in some source system.
ROW_LEVEL_COLUMNS = frozenset(
    {
        "person",
        "patient_id",
        "client_id",
        "contact_id",
        "case_ref",
        "case_id",
        "crime_ref",
        "pupil_id",
        "upn",
        "uprn",
        "property_id",
        "property_ref",
        "household_id",
        "nino",
        "national_insurance_number",
        "address_line_2",
        "mobile",
        "ip_address",
    }
)
IDENTIFYING_COLUMNS = PERSON_LEVEL_COLUMNS | ROW_LEVEL_COLUMNS

_VALUE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a person id", re.compile(r"P-[A-Z2-7]{12}")),
    ("a record key", re.compile(r"[a-z][a-z0-9_]*:[A-Za-z0-9][A-Za-z0-9_.-]*")),
    (
        "a full postcode",
        re.compile(r"(GIR ?0AA|[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][ABD-HJLNP-UW-Z]{2})", re.I),
    ),
    ("an e-mail address", re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")),
)
_NHS_NUMBER = re.compile(r"[0-9]{3} ?[0-9]{3} ?[0-9]{4}")
MAX_PROBLEMS = 12


def normalise_column(name: str) -> str:
    """A column name as compared with the identifier lists (``Person ID`` -> ``person_id``)."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def is_nhs_number(text: str) -> bool:
    """True when ``text`` is ten digits (spaced 3-3-4 or not) with a valid modulus 11 check."""
    if not _NHS_NUMBER.fullmatch(text):
        return False
    digits = [int(c) for c in text if c.isdigit()]
    check = 11 - sum(d * (10 - i) for i, d in enumerate(digits[:9])) % 11
    check = 0 if check == 11 else check
    return check != 10 and check == digits[9]


def check_publishable(
    table: pd.DataFrame,
    *,
    count_columns: Sequence[str] = (),
    threshold: int | None = None,
    key_columns: Sequence[str] = (),
) -> None:
    """Raise :class:`PublishRefused` unless ``table`` (every cell as text) is safe to publish.

    ``count_columns`` are checked against ``threshold`` (when given); ``key_columns``, when
    given, must identify each row once.
    """
    problems: list[str] = []
    if table.empty:
        problems.append("the file has no rows; there is nothing to publish")
    columns = [str(c) for c in table.columns]
    identifying = [c for c in columns if normalise_column(c) in IDENTIFYING_COLUMNS]
    if identifying:
        problems.append(
            f"person-level or identifying column(s) {', '.join(identifying)}: only aggregate, "
            "non-identifying data can be published"
        )
    for column in columns:
        values = table[column].astype(str).str.strip()
        for what, pattern in _VALUE_PATTERNS:
            hits = values[values.str.fullmatch(pattern)]
            if not hits.empty:
                problems.append(
                    f"column {column} holds what looks like {what} (row {_row(hits)})"
                )
        nhs = values[values.map(is_nhs_number)]
        if not nhs.empty:
            problems.append(
                f"column {column} holds what looks like an NHS number (row {_row(nhs)})"
            )
    for column in count_columns:
        if column not in table.columns:
            problems.append(f"count column {column} is missing from the file")
            continue
        problems.extend(_check_counts(table[column], column, threshold))
    keys = [k for k in key_columns if k in table.columns]
    if keys and table.duplicated(keys).any():
        problems.append(
            f"a group ({', '.join(keys)}) appears more than once; an aggregate has one row per "
            "group"
        )
    if problems:
        raise PublishRefused(problems[:MAX_PROBLEMS])


def _check_counts(series: pd.Series, column: str, threshold: int | None) -> list[str]:
    text = series.astype(str).str.strip()
    shown = text[~text.isin([SUPPRESSED_MARK, ""])]
    numbers = pd.to_numeric(shown, errors="coerce")
    problems: list[str] = []
    bad = numbers.isna() | (numbers != numbers.round()) | (numbers < 0)
    if bad.any():
        problems.append(f"count column {column} has a value that is not a whole number "
                        f"(row {_row(shown[bad])})")
    if threshold is not None:
        small = numbers[~bad & (numbers < threshold)]
        if not small.empty:
            problems.append(
                f"count column {column} has {len(small)} count(s) below the threshold of "
                f"{threshold} (first at row {_row(small)}); such cells must be suppressed"
            )
    return problems


def _row(hits: pd.Series) -> int:
    # Row numbers as a spreadsheet shows them: the header is row 1.
    return int(hits.index[0]) + 2
