"""Finding a source's files and checking them before a row is read: hash, encoding, header.

Every check here names the file, the line and, where there is one, the column, and raises
:class:`ExtractError` (a :class:`CandourError`): the person running the ingest can fix it.
Nothing in this module writes anywhere but the private staging directory it is given.
"""

from __future__ import annotations

import codecs
import csv
import glob
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb

from candour.errors import CandourError
from candour.sources.spec import Source

CHUNK = 8 << 20
DELIMITER_HINTS = (",", ";", "\t", "|")


class ExtractError(CandourError):
    """An extract file cannot be ingested as described; the message says where and why."""


@dataclass
class ExtractFile:
    """One file of a source, checked and ready for DuckDB to read."""

    path: Path
    display: str  # as named relative to sources.yaml, for messages
    kind: Literal["csv", "parquet"]
    sha256: str
    size: int
    columns: list[str] = field(default_factory=list)
    # Line breaks in the file (CSV) or rows (Parquet): an estimate of its size in records.
    lines: int = 0
    # What DuckDB reads: the file itself, or a UTF-8 copy in the private staging directory.
    readable: Path | None = None


def resolve_files(source: Source, base: Path) -> list[tuple[Path, str]]:
    """The files a source names, globs expanded, sorted: ``(path, name for messages)``."""
    found: dict[Path, str] = {}
    for pattern in source.files:
        full = base / pattern
        if glob.has_magic(pattern):
            matches = sorted(Path(p) for p in glob.glob(str(full), recursive=True))
            if not matches:
                raise ExtractError(f"source {source.name!r}: no file matches {pattern!r}")
        elif full.is_file():
            matches = [full]
        else:
            raise ExtractError(f"source {source.name!r}: {pattern}: no such file")
        for path in matches:
            if path.is_file():
                found.setdefault(path.resolve(), _display(path, base))
    return sorted(found.items(), key=lambda item: item[1])


def _display(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def file_kind(path: Path) -> Literal["csv", "parquet"]:
    """CSV or Parquet, by the file's name (``.parquet``/``.pq`` are Parquet)."""
    return "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"


def hash_file(path: Path) -> tuple[str, int]:
    """The SHA-256 (hex) and size of a file, read in large chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _codec(encoding: str) -> str:
    return codecs.lookup(encoding).name


def check_csv(extract: ExtractFile, source: Source, staging: Path) -> None:
    """Check a CSV's encoding and header; fills ``columns`` and ``readable``.

    DuckDB reads UTF-8 only, so a file in another encoding is decoded here and written, as
    UTF-8, into ``staging`` (a private directory removed after the ingest). A file whose bytes
    are not valid in the declared encoding is refused with the line of the first bad byte.
    """
    if extract.size == 0:
        raise ExtractError(f"{extract.display}: the file is empty (no header, no rows)")
    codec = _codec(source.csv.encoding)
    utf8 = codec in ("utf-8", "utf-8-sig")
    target = None if utf8 else staging / f"{extract.sha256[:16]}.utf8.csv"
    extract.lines = _check_encoding(extract, codec, target)
    extract.readable = target or extract.path
    extract.columns = _header(extract, source)


def _check_encoding(extract: ExtractFile, codec: str, target: Path | None) -> int:
    """Check (and, into ``target``, transcode) the file; return its number of line breaks."""
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    # For an 8-bit encoding, also watch whether the bytes are UTF-8 with non-ASCII text: then
    # the declared encoding is almost certainly wrong and would silently garble every name.
    watch_utf8 = target is not None and codec not in ("utf-16", "utf-32")
    utf8_decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    looks_utf8, non_ascii = watch_utf8, False
    lines = 0
    out = target.open("wb") if target is not None else None
    try:
        with extract.path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                try:
                    text = decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    line = lines + chunk[: max(exc.start, 0)].count(b"\n") + 1
                    bad = chunk[exc.start : exc.start + 1].hex() if exc.start >= 0 else "?"
                    raise ExtractError(
                        f"{extract.display}: line {line}: not valid {codec} (byte 0x{bad}); "
                        "set csv.encoding for this source in sources.yaml (e.g. cp1252)"
                    ) from None
                if looks_utf8:
                    try:
                        utf8_decoder.decode(chunk)
                        non_ascii = non_ascii or not chunk.isascii()
                    except UnicodeDecodeError:
                        looks_utf8 = False
                if out is not None:
                    out.write(text.encode("utf-8"))
                lines += chunk.count(b"\n")
            if out is not None:
                out.write(decoder.decode(b"", final=True).encode("utf-8"))
            else:
                decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ExtractError(
            f"{extract.display}: the file ends part-way through a character; it is not valid "
            f"{codec}"
        ) from None
    finally:
        if out is not None:
            out.close()
    if looks_utf8 and non_ascii:
        raise ExtractError(
            f"{extract.display}: the file is declared {codec} but is UTF-8 (its accented "
            "letters would be garbled); set csv.encoding: utf-8 for this source in sources.yaml"
        )
    return lines


def _header(extract: ExtractFile, source: Source) -> list[str]:
    assert extract.readable is not None
    with extract.readable.open("rb") as handle:
        first = handle.readline(1 << 20)
    text = first.decode("utf-8").lstrip("\ufeff").rstrip("\r\n")
    if not text.strip():
        raise ExtractError(f"{extract.display}: line 1: the header line is blank")
    delimiter = source.csv.delimiter
    names = next(csv.reader([text], delimiter=delimiter))
    if len(names) == 1:
        others = [d for d in DELIMITER_HINTS if d != delimiter and d in text]
        if others:
            shown = {"\t": "a tab"}.get(others[0], repr(others[0]))
            raise ExtractError(
                f"{extract.display}: line 1: the header has one column with delimiter "
                f"{delimiter!r}, but contains {shown}; set csv.delimiter in sources.yaml"
            )
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if not name.strip():
            raise ExtractError(f"{extract.display}: line 1: header column {position} is blank")
        if name in seen:
            raise ExtractError(
                f"{extract.display}: line 1: column {name!r} appears twice in the header"
            )
        seen.add(name)
    check_columns(extract.display, names, source)
    return names


def parquet_columns(extract: ExtractFile, connection: duckdb.DuckDBPyConnection) -> None:
    """Read a Parquet file's schema into ``columns`` (and check it is Parquet at all)."""
    try:
        path = str(extract.path).replace("'", "''")
        rows = connection.execute(
            f"SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet('{path}'))"
        ).fetchall()
    except duckdb.Error:
        raise ExtractError(f"{extract.display}: not a readable Parquet file") from None
    extract.columns = [row[0] for row in rows]
    extract.readable = extract.path
    counted = connection.execute(
        f"SELECT count(*) FROM read_parquet('{path}')"
    ).fetchall()
    extract.lines = int(counted[0][0]) if counted else 0


def required_columns(source: Source) -> dict[str, str]:
    """Every column the source's description names, and the YAML field that names it."""
    needed: dict[str, str] = {}
    if source.record_id:
        needed[source.record_id] = "record_id"
    identity = source.identity
    for name in ("given_name", "middle_name", "family_name", "sex", "postcode", "nhs_number"):
        column = getattr(identity, name)
        if column:
            needed.setdefault(column, f"identity.{name}")
    if identity.date_of_birth:
        needed.setdefault(identity.date_of_birth.column, "identity.date_of_birth")
    if isinstance(identity.address, str):
        needed.setdefault(identity.address, "identity.address")
    elif identity.address:
        for column in identity.address:
            needed.setdefault(column, "identity.address")
    for key, column in identity.identifiers.items():
        needed.setdefault(column, f"identity.identifiers.{key}")
    for key, attribute in source.attributes.items():
        needed.setdefault(attribute.column, f"attributes.{key}")
    return needed


def check_columns(display: str, header: list[str], source: Source) -> None:
    """Refuse a file that lacks a column the source's description names."""
    present = set(header)
    folded = {name.casefold(): name for name in header}
    for column, where in required_columns(source).items():
        if column in present:
            continue
        hint = ""
        if column.casefold() in folded:
            hint = f" (the header has {folded[column.casefold()]!r}; names are case-sensitive)"
        raise ExtractError(
            f"{display}: line 1: column {column!r} (sources.yaml {source.name}.{where}) is "
            f"missing from the header{hint}"
        )
