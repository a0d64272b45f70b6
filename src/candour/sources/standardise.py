"""Standardisation rules for identity fields, as DuckDB SQL macros (one definition, used twice).

Ingest runs these macros over whole files at once (vectorised, on every core); the Python
helpers here run the very same macros on a few values, so a later exact look-up (an NHS number
from a national opt-out list, say) is standardised exactly as the vault's values were.

The rules (documented for users in docs/sources.md):

- **names**: lower case; accents removed (Zoë → zoe) and ligatures spelled out (ß → ss,
  æ → ae, ø → o, ł → l); apostrophes and full stops dropped (O'Brien → obrien); any other run of
  punctuation or spaces becomes one space (Smith-Jones → smith jones). Letters of every script
  are kept, so a name written in Cyrillic or Arabic still matches itself.
- **dates of birth**: parsed with the source's strptime format and written ``YYYY-MM-DD``; with
  a two-digit year (``%y``) a date in the future is taken to be a century earlier. A date that
  does not parse is kept as folded text (``date_of_birth_valid`` false).
- **postcodes**: upper case, spaces and punctuation removed, a letter O or I typed where the
  inward code's digit belongs is read as 0 or 1, and a valid UK postcode is written with one
  space before its last three characters (``sw1a1aa`` → ``SW1A 1AA``). Anything else is kept as
  upper-case text (foreign postal codes still match themselves).
- **NHS numbers**: ten digits (spaces or hyphens allowed as 3-3-4) whose modulus-11 check digit
  is right, and not all one digit (placeholders such as 1111111111 pass the check); written as
  ten digits. Anything else is kept as upper-case letters and digits, flagged invalid.
- **sex**: F or M from the usual codes (F/Female/W/2, M/Male/1, as in the NHS data
  dictionary); "unknown", "not known", 0 and 9 become empty; anything else is kept, upper case.
- **addresses**: the columns joined in order, folded like names, with common abbreviations
  spelled out (Rd → road, Ave → avenue, Gdns → gardens ...).
- **other identifiers**: upper case, letters and digits only (``ab-12/3`` → ``AB123``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import duckdb

from candour.errors import CandourError

# Address words spelled out. "st" is left alone: it is "street" at the end but "saint" in
# "St Mary's Road", and guessing would make two spellings of one address differ.
ADDRESS_ABBREVIATIONS: dict[str, str] = {
    "rd": "road",
    "ave": "avenue",
    "av": "avenue",
    "ln": "lane",
    "cl": "close",
    "ct": "court",
    "cres": "crescent",
    "cresc": "crescent",
    "dr": "drive",
    "gdns": "gardens",
    "gr": "grove",
    "gro": "grove",
    "pl": "place",
    "sq": "square",
    "tce": "terrace",
    "terr": "terrace",
    "pk": "park",
    "hse": "house",
    "cotts": "cottages",
    "flt": "flat",
    "apt": "apartment",
    "bldgs": "buildings",
    "wy": "way",
    "nth": "north",
    "sth": "south",
    "upr": "upper",
    "lwr": "lower",
}

SEX_FEMALE = ("f", "female", "w", "woman", "girl", "2")
SEX_MALE = ("m", "male", "man", "boy", "1")
SEX_UNKNOWN = (
    "u",
    "unknown",
    "not known",
    "nk",
    "not specified",
    "unspecified",
    "prefer not to say",
    "0",
    "9",
)
# A full UK postcode, compact (no space): outward code, then the inward digit and two letters
# (never C, I, K, M, O or V), plus the Girobank oddity GIR 0AA.
UK_POSTCODE = (
    "(GIR0AA|([A-Z][0-9]{1,2}|[A-Z][A-HJ-Y][0-9]{1,2}|[A-Z][0-9][A-Z]|[A-Z][A-HJ-Y][0-9][A-Z])"
    "[0-9][ABD-HJLNP-UW-Z]{2})"
)
EARLIEST_BIRTH = "1890-01-01"


def _sql_list(values: Iterable[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _abbreviation_case() -> str:
    cases = " ".join(
        f"WHEN '{short}' THEN '{long}'" for short, long in ADDRESS_ABBREVIATIONS.items()
    )
    return f"CASE w {cases} ELSE w END"


# The checksum weights 10..2 over the first nine digits, as a sum of fixed terms: far faster
# in DuckDB than a list lambda, and it runs over every row of every source.
_NHS_SUM = " + ".join(f"(ascii(substr(d, {i + 1}, 1)) - 48) * {10 - i}" for i in range(9))

_ABBREVIATIONS_RE = r"\b(" + "|".join(ADDRESS_ABBREVIATIONS) + r")\b"
_PLACEHOLDER = "(" + "|".join(f"{d}+" for d in "0123456789") + ")"

# Building blocks take values computed once by the caller (ingest computes each in its own
# SELECT level, because a macro argument is pasted in wherever the parameter appears, and
# re-running a regular expression ten times per row made ingest five times slower). The
# single-argument compositions at the end (cd_postcode, cd_nhs_number, ...) are what the Python
# helpers call; they are built from the very same blocks.
MACROS: tuple[str, ...] = (
    # Case, accents, ligatures and punctuation folded; letters of any script kept. Most values
    # are ASCII (strlen counts bytes, length characters): they skip the accent work.
    r"""CREATE OR REPLACE MACRO cd_fold(s) AS nullif(trim(regexp_replace(CASE
        WHEN strlen(s) = length(s) THEN replace(replace(replace(lower(s), '''', ''), '.', ''),
            '`', '')
        ELSE regexp_replace(translate(replace(replace(replace(replace(replace(
            strip_accents(lower(s)), 'ß', 'ss'), 'æ', 'ae'), 'œ', 'oe'), 'þ', 'th'), 'ĳ', 'ij'),
            'łøđðı', 'loddi'), '[''’‘`´.]', '', 'g')
        END, '[^\p{L}\p{N}]+', ' ', 'g')), '')""",
    "CREATE OR REPLACE MACRO cd_name(s) AS cd_fold(s)",
    # Only addresses that have an abbreviation pay for splitting into words.
    f"""CREATE OR REPLACE MACRO cd_address_from_folded(f) AS CASE
        WHEN regexp_matches(f, '{_ABBREVIATIONS_RE}') THEN array_to_string(list_transform(
            string_split(f, ' '), lambda w: {_abbreviation_case()}), ' ')
        ELSE f END""",
    r"""CREATE OR REPLACE MACRO cd_upper_alnum(s) AS
        nullif(upper(regexp_replace(strip_accents(s), '[^\p{L}\p{N}]+', '', 'g')), '')""",
    r"""CREATE OR REPLACE MACRO cd_upper_words(s) AS
        nullif(trim(regexp_replace(upper(strip_accents(s)), '[^\p{L}\p{N}]+', ' ', 'g')), '')""",
    # Postcodes: compact; an O or I where the inward code's digit belongs becomes 0 or 1.
    "CREATE OR REPLACE MACRO cd_pc_compact(s) AS regexp_replace(upper(s), '[^A-Z0-9]', '', 'g')",
    """CREATE OR REPLACE MACRO cd_pc_fixed(c) AS CASE
        WHEN length(c) BETWEEN 5 AND 7 AND substr(c, length(c) - 2, 1) IN ('O', 'I')
        THEN substr(c, 1, length(c) - 3) || translate(substr(c, length(c) - 2, 1), 'OI', '01')
             || right(c, 2)
        ELSE c END""",
    f"""CREATE OR REPLACE MACRO cd_pc_key_valid(k) AS
        coalesce(regexp_full_match(k, '{UK_POSTCODE}'), false)""",
    r"""CREATE OR REPLACE MACRO cd_pc_from(s, k, v) AS CASE
        WHEN v THEN regexp_replace(k, '^(.*)(.{3})$', '\1 \2') ELSE cd_upper_words(s) END""",
    # NHS numbers: shape, not a placeholder, and the modulus-11 check digit.
    "CREATE OR REPLACE MACRO cd_nhs_digits(s) AS regexp_replace(s, '[^0-9]', '', 'g')",
    f"""CREATE OR REPLACE MACRO cd_nhs_check_ok(d) AS
        ((11 - (({_NHS_SUM}) % 11)) % 11) = (ascii(substr(d, 10, 1)) - 48)""",
    f"""CREATE OR REPLACE MACRO cd_nhs_valid_from(s, d) AS coalesce(
        regexp_full_match(trim(s), '[0-9]{{3}}[ -]?[0-9]{{3}}[ -]?[0-9]{{4}}')
        AND NOT regexp_full_match(d, '{_PLACEHOLDER}') AND cd_nhs_check_ok(d), false)""",
    "CREATE OR REPLACE MACRO cd_nhs_from(s, d, v) AS CASE WHEN v THEN d ELSE cd_upper_alnum(s) END",
    f"""CREATE OR REPLACE MACRO cd_sex_from_folded(f) AS CASE
        WHEN f IN ({_sql_list(SEX_FEMALE)}) THEN 'F'
        WHEN f IN ({_sql_list(SEX_MALE)}) THEN 'M'
        WHEN f IN ({_sql_list(SEX_UNKNOWN)}) THEN NULL
        ELSE upper(f) END""",
    "CREATE OR REPLACE MACRO cd_identifier(s) AS cd_upper_alnum(s)",
    # Dates of birth: parsed; a century earlier if a two-digit year put it in the future.
    "CREATE OR REPLACE MACRO cd_dob_parse(s, fmt) AS try_strptime(trim(s), fmt)::DATE",
    """CREATE OR REPLACE MACRO cd_dob_century(d, fmt) AS CASE
        WHEN contains(fmt, '%y') AND d > current_date THEN (d - INTERVAL 100 YEAR)::DATE
        ELSE d END""",
    f"""CREATE OR REPLACE MACRO cd_dob_valid_from(d) AS
        coalesce(d BETWEEN DATE '{EARLIEST_BIRTH}' AND current_date, false)""",
    """CREATE OR REPLACE MACRO cd_dob_from(s, d) AS CASE
        WHEN d IS NOT NULL THEN strftime(d, '%Y-%m-%d') ELSE cd_fold(s) END""",
    # One-value compositions of the blocks above.
    "CREATE OR REPLACE MACRO cd_address(s) AS cd_address_from_folded(cd_fold(s))",
    "CREATE OR REPLACE MACRO cd_sex(s) AS cd_sex_from_folded(cd_fold(s))",
    "CREATE OR REPLACE MACRO cd_pc_key(s) AS cd_pc_fixed(cd_pc_compact(s))",
    "CREATE OR REPLACE MACRO cd_postcode_valid(s) AS cd_pc_key_valid(cd_pc_key(s))",
    """CREATE OR REPLACE MACRO cd_postcode(s) AS
        cd_pc_from(s, cd_pc_key(s), cd_pc_key_valid(cd_pc_key(s)))""",
    "CREATE OR REPLACE MACRO cd_nhs_valid(s) AS cd_nhs_valid_from(s, cd_nhs_digits(s))",
    """CREATE OR REPLACE MACRO cd_nhs_number(s) AS
        cd_nhs_from(s, cd_nhs_digits(s), cd_nhs_valid(s))""",
    """CREATE OR REPLACE MACRO cd_dob_date(s, fmt) AS
        cd_dob_century(cd_dob_parse(s, fmt), fmt)""",
    "CREATE OR REPLACE MACRO cd_dob_valid(s, fmt) AS cd_dob_valid_from(cd_dob_date(s, fmt))",
    "CREATE OR REPLACE MACRO cd_dob(s, fmt) AS cd_dob_from(s, cd_dob_date(s, fmt))",
)

# field -> (standardising macro, validity macro or None); dates take a format argument.
FIELD_MACROS: dict[str, tuple[str, str | None]] = {
    "given_name": ("cd_name", None),
    "middle_name": ("cd_name", None),
    "family_name": ("cd_name", None),
    "date_of_birth": ("cd_dob", "cd_dob_valid"),
    "sex": ("cd_sex", None),
    "postcode": ("cd_postcode", "cd_postcode_valid"),
    "address": ("cd_address", None),
    "nhs_number": ("cd_nhs_number", "cd_nhs_valid"),
    "identifier": ("cd_identifier", None),
}


def install_macros(connection: duckdb.DuckDBPyConnection) -> None:
    """Define the ``cd_*`` standardisation macros on a DuckDB connection."""
    for statement in MACROS:
        connection.execute(statement).fetchall()


_local = threading.local()


def _connection() -> duckdb.DuckDBPyConnection:
    connection: duckdb.DuckDBPyConnection | None = getattr(_local, "connection", None)
    if connection is None:
        connection = duckdb.connect(":memory:")
        install_macros(connection)
        _local.connection = connection
    return connection


def _field(field: str) -> tuple[str, str | None]:
    key = "identifier" if field.startswith("identifiers.") else field
    try:
        return FIELD_MACROS[key]
    except KeyError:
        known = ", ".join([*FIELD_MACROS, "identifiers.<name>"])
        raise CandourError(f"no standardisation for field {field!r}; known: {known}") from None


def standardise_values(
    field: str, values: Sequence[str | None], date_format: str = "%Y-%m-%d"
) -> list[tuple[str | None, bool | None]]:
    """Standardise values of one identity field: ``(standardised, valid)`` for each.

    ``field`` is a standard identity field (``nhs_number``, ``postcode``, ``given_name``...) or
    ``identifiers.<name>``; ``valid`` is None for fields that have no notion of validity.
    ``date_format`` applies to ``date_of_birth``. Uses exactly the SQL ingest uses.
    """
    macro, check = _field(field)
    if not values:
        return []
    args = "v, ?" if field == "date_of_birth" else "v"
    validity = f"{check}({args})" if check else "NULL::BOOLEAN"
    con = _connection()
    params: list[Any] = [list(values)]
    if field == "date_of_birth":
        params = [date_format, date_format, list(values)]
    rows = con.execute(
        f"SELECT {macro}({args}), {validity} FROM (SELECT unnest(?::VARCHAR[]) AS v)",
        params,
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


def standardise_value(field: str, value: str | None, date_format: str = "%Y-%m-%d") -> str | None:
    """The standardised form of one value (see :func:`standardise_values`)."""
    return standardise_values(field, [value], date_format)[0][0]


def nhs_number_is_valid(value: str) -> bool:
    """Pure-Python NHS number check: ten digits (3-3-4 spacing allowed), modulus 11, no placeholder.

    An independent implementation of the SQL rule, used to cross-check it in tests.
    """
    # DuckDB's trim() removes spaces only, so this does too.
    text = value.strip(" ")
    if not _NHS_SHAPE.fullmatch(text):
        return False
    digits = [int(c) for c in text if c.isdigit()]
    if len(set(digits)) == 1:
        return False
    total = sum(d * (10 - i) for i, d in enumerate(digits[:9]))
    return (11 - total % 11) % 11 == digits[9]


_NHS_SHAPE = re.compile(r"[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4}", re.ASCII)
