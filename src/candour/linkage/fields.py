"""The identity table linkage works on, and how it is prepared for comparison.

Ingest already standardises identities, but linkage does not rely on it: extracts come from
many systems, and a model that only works on one generator's spellings is useless. So every
field is normalised again here, cheaply and vectorised (pyarrow), in a way that is idempotent
on already-clean values. Anything that does not parse is kept as cleaned text, so foreign
formats still link on exact or fuzzy matches.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

import pyarrow as pa
import pyarrow.compute as pc

from candour.errors import CandourError

# The standard identity columns, in the order the vault and sources.yaml know them.
NAME_FIELDS = ("given_name", "middle_name", "family_name")
IDENTITY_FIELDS = (
    "given_name",
    "middle_name",
    "family_name",
    "date_of_birth",
    "sex",
    "postcode",
    "address",
    "nhs_number",
)
KEY_COLUMNS = ("record_key", "source")
IDENTIFIER_PREFIX = "id_"

# Derived columns added by :func:`prepare` (blocking keys and nickname groups).
GIVEN_GROUPS = "given_name_groups"
GIVEN_INITIAL = "given_initial"
FAMILY_INITIAL = "family_initial"
BIRTH_YEAR = "birth_year"

_UK_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_SEX_CODES = {
    "f": "f",
    "female": "f",
    "w": "f",
    "woman": "f",
    "2": "f",
    "m": "m",
    "male": "m",
    "man": "m",
    "1": "m",
}
# Codes that mean "not recorded" in common UK schemes (NHS data dictionary: 0 and 9).
_SEX_UNKNOWN = {"u", "unknown", "not known", "not specified", "0", "9", "x", "i", "n/k"}


class IdentityTableError(CandourError):
    """The identities handed to linkage are not in the expected shape."""


def identifier_column(name: str) -> str:
    """The linkage column for an extra exact identifier called ``name`` in sources.yaml."""
    slug = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    if not slug:
        raise IdentityTableError(f"identifier name {name!r} has no letters or digits")
    return IDENTIFIER_PREFIX + slug


def identifier_columns(table: pa.Table) -> list[str]:
    """The extra exact-identifier columns present in ``table``."""
    return [name for name in table.column_names if name.startswith(IDENTIFIER_PREFIX)]


def check_identity_table(table: pa.Table) -> None:
    """Raise :class:`IdentityTableError` unless ``table`` has the linkage input shape."""
    missing = [c for c in KEY_COLUMNS if c not in table.column_names]
    if missing:
        raise IdentityTableError(f"identity table lacks column(s): {', '.join(missing)}")
    if table.num_rows == 0:
        raise IdentityTableError("there are no ingested records to link; run `candour ingest`")
    keys = table["record_key"]
    if keys.null_count:
        raise IdentityTableError("identity table has records without a record_key")
    if pc.count_distinct(keys).as_py() != table.num_rows:
        raise IdentityTableError("identity table has duplicate record_key values")
    unknown = [
        c
        for c in table.column_names
        if c not in KEY_COLUMNS and c not in IDENTITY_FIELDS and not c.startswith(IDENTIFIER_PREFIX)
    ]
    if unknown:
        raise IdentityTableError(f"identity table has unexpected column(s): {', '.join(unknown)}")


@lru_cache(maxsize=1)
def nickname_table() -> dict[str, tuple[str, ...]]:
    """Nickname -> the formal names it can stand for, from the shipped ``nicknames.csv``."""
    text = resources.files("candour.linkage").joinpath("nicknames.csv").read_text("utf-8")
    table: dict[str, list[str]] = {}
    for row in csv.DictReader(text.splitlines()):
        table.setdefault(row["nickname"].strip().lower(), []).append(row["name"].strip().lower())
    return {nick: tuple(sorted(set(names))) for nick, names in table.items()}


def name_groups(name: str) -> list[str]:
    """The formal names a given name may stand for, itself included (sorted, unique).

    Two given names are nickname-compatible when their groups intersect: Bill and William
    share "william"; Bill and Will do too; Chris and Christine share "christine".
    """
    groups = {name}
    groups.update(nickname_table().get(name, ()))
    return sorted(groups)


def _clean_text(array: pa.ChunkedArray, *, upper: bool = False) -> pa.ChunkedArray:
    """Case-fold, strip accents' common forms and punctuation, collapse spaces; '' -> null."""
    text = pc.cast(array, pa.string())
    text = pc.utf8_upper(text) if upper else pc.utf8_lower(text)
    text = pc.utf8_normalize(text, "NFKD")
    # Drop combining marks left by NFKD, then anything that is not a letter, digit or space.
    text = pc.replace_substring_regex(text, r"\p{Mn}+", "")
    text = pc.replace_substring_regex(text, r"[^\p{L}\p{N} ]+", " ")
    text = pc.replace_substring_regex(text, r"\s+", " ")
    text = pc.utf8_trim_whitespace(text)
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _clean_name(array: pa.ChunkedArray) -> pa.ChunkedArray:
    # Hyphens and apostrophes vary between systems (O'Brien, OBrien, Smith-Jones); a space
    # would split the name and hurt Jaro-Winkler, so they are removed rather than spaced.
    text = pc.cast(array, pa.string())
    text = pc.replace_substring_regex(text, r"['’`\-]", "")
    return _clean_text(text)


def _clean_postcode(array: pa.ChunkedArray) -> pa.ChunkedArray:
    text = pc.utf8_upper(pc.cast(array, pa.string()))
    text = pc.replace_substring_regex(text, r"[^A-Z0-9]+", "")
    # UK postcodes get their canonical single space so sector/district levels can work;
    # anything else (a foreign postal code) is kept as compacted text.
    spaced = pc.replace_substring_regex(text, _UK_POSTCODE.pattern, r"\1 \2")
    return pc.if_else(pc.equal(spaced, ""), pa.scalar(None, pa.string()), spaced)


def _clean_code(array: pa.ChunkedArray) -> pa.ChunkedArray:
    text = pc.utf8_upper(pc.cast(array, pa.string()))
    text = pc.replace_substring_regex(text, r"[\s\-/.]+", "")
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _clean_date(array: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_date(array.type) or pa.types.is_timestamp(array.type):
        return pc.strftime(array, "%Y-%m-%d")
    text = pc.utf8_trim_whitespace(pc.cast(array, pa.string()))
    # An ISO date is the contract with the vault; a timestamp is cut to its date; any other
    # text is kept (as "cleaned text") so exact and edit-distance levels still apply.
    text = pc.replace_substring_regex(text, r"^([0-9]{4}-[0-9]{2}-[0-9]{2})[T ].*$", r"\1")
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _sex_code(value: str) -> str | None:
    if value == "" or value in _SEX_UNKNOWN:
        return None
    return _SEX_CODES.get(value, value)


def _clean_sex(array: pa.ChunkedArray) -> pa.ChunkedArray:
    text = pc.utf8_trim_whitespace(pc.utf8_lower(pc.cast(array, pa.string())))
    # A handful of distinct codes over a million records: map each distinct value once.
    return _map_unique(text, _sex_code, pa.string())


def _map_unique(array: pa.ChunkedArray, fn: object, value_type: pa.DataType) -> pa.ChunkedArray:
    """Apply a Python function once per distinct value (names repeat a lot)."""
    assert callable(fn)
    distinct = pc.unique(array.combine_chunks())
    mapped = pa.array([None if v is None else fn(v) for v in distinct.to_pylist()], value_type)
    return pa.chunked_array([pc.take(mapped, pc.index_in(array.combine_chunks(), distinct))])


def prepare(table: pa.Table) -> pa.Table:
    """Normalise every identity field and add the derived columns comparisons use.

    Columns absent from ``table`` are added as all-null, so the same model and the same SQL
    work whichever fields a home's sources provide.
    """
    check_identity_table(table)
    n = table.num_rows
    out: dict[str, pa.ChunkedArray] = {
        "record_key": pc.cast(table["record_key"], pa.string()),
        "source": pc.cast(table["source"], pa.string()),
    }

    def column(name: str) -> pa.ChunkedArray:
        if name in table.column_names:
            return table[name]
        return pa.chunked_array([pa.nulls(n, pa.string())])

    for name in NAME_FIELDS:
        out[name] = _clean_name(column(name))
    out["date_of_birth"] = _clean_date(column("date_of_birth"))
    out["sex"] = _clean_sex(column("sex"))
    out["postcode"] = _clean_postcode(column("postcode"))
    out["address"] = _clean_text(column("address"))
    out["nhs_number"] = _clean_code(column("nhs_number"))
    for name in identifier_columns(table):
        out[name] = _clean_code(table[name])

    out[GIVEN_GROUPS] = _map_unique(out["given_name"], name_groups, pa.list_(pa.string()))
    out[GIVEN_INITIAL] = pc.utf8_slice_codeunits(out["given_name"], 0, 1)
    out[FAMILY_INITIAL] = pc.utf8_slice_codeunits(out["family_name"], 0, 1)
    iso = pc.match_substring_regex(out["date_of_birth"], _ISO_DATE)
    year = pc.utf8_slice_codeunits(out["date_of_birth"], 0, 4)
    out[BIRTH_YEAR] = pc.if_else(iso, year, pa.scalar(None, pa.string()))
    return pa.table(out)


def present_fields(table: pa.Table, *, min_share: float = 0.005, min_count: int = 2) -> list[str]:
    """The identity fields (and identifiers) that enough records actually hold.

    A field only a handful of records carry cannot be trained and only adds noise, so a field
    must be non-null in at least ``min_share`` of records (and ``min_count`` of them).
    """
    threshold = max(min_count, int(min_share * table.num_rows))
    candidates: Iterable[str] = (*IDENTITY_FIELDS, *identifier_columns(table))
    return [
        name
        for name in candidates
        if name in table.column_names
        and table.num_rows - table[name].null_count >= threshold
    ]
