"""A dataset's files: read a source CSV, describe it (CSVW), write CSV, JSON and Parquet.

Every cell is first read as text, exactly as the source has it, so that the publish check sees
what a reader would, then each column gets one CSVW datatype for the JSON and Parquet copies.
Suppressed cells (``[c]``) stay ``[c]`` in the CSV, as GSS guidance has it, and are ``null`` in
JSON and Parquet, where a marker string would break the column's type. The CSV is written
through the formula-injection guard every Candour CSV uses.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from candour.catalogue.model import CatalogueError, Column, Dataset
from candour.csvsafe import SafeCsvWriter
from candour.disclosure import SUPPRESSED_MARK

CSVW_CONTEXT = "http://www.w3.org/ns/csvw"
NULLS = ("", SUPPRESSED_MARK)
MAX_SOURCE_BYTES = 512 * 1024 * 1024

_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?"
)
_BOOLEAN = frozenset({"true", "false"})

#: What each format is called in CKAN and DCAT, its media type and file suffix.
FORMATS: tuple[tuple[str, str, str], ...] = (
    ("CSV", "text/csv", "csv"),
    ("JSON", "application/json", "json"),
    ("Parquet", "application/vnd.apache.parquet", "parquet"),
)
CSVW_MEDIA_TYPE = "application/csvm+json"


def read_source(path: Path) -> pd.DataFrame:
    """A CSV file with every cell as text (no type guessing, nothing turned into NaN)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CatalogueError(f"{path} does not exist") from None
    if size > MAX_SOURCE_BYTES:
        raise CatalogueError(f"{path} is larger than {MAX_SOURCE_BYTES >> 20} MiB")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), None)
        table = pd.read_csv(
            path, dtype=str, keep_default_na=False, encoding="utf-8-sig", on_bad_lines="error"
        )
    except (csv.Error, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CatalogueError(f"{path} is not a readable UTF-8 CSV file: {exc}") from None
    if not header:
        raise CatalogueError(f"{path} has no header row")
    if any(not name.strip() for name in header):
        raise CatalogueError(f"{path} has a column without a name")
    if len(set(header)) != len(header):
        raise CatalogueError(f"{path} has two columns with the same name")
    return table


def infer_datatype(values: pd.Series) -> str:
    """The narrowest CSVW datatype every non-null cell of a text column fits."""
    present = values[~values.isin(NULLS)]
    if present.empty:
        return "string"
    for datatype, matches in (
        ("integer", lambda s: s.str.fullmatch(_INTEGER)),
        ("number", lambda s: s.str.fullmatch(_NUMBER)),
        ("date", lambda s: s.str.fullmatch(_DATE)),
        ("datetime", lambda s: s.str.fullmatch(_DATETIME)),
        ("boolean", lambda s: s.str.lower().isin(_BOOLEAN)),
    ):
        if bool(matches(present).all()):
            if datatype in ("date", "datetime") and not _parses_as_time(present):
                continue
            return datatype
    return "string"


def _parses_as_time(values: pd.Series) -> bool:
    try:
        pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, OverflowError):
        return False
    return True


def describe(
    table: pd.DataFrame,
    *,
    count_columns: Sequence[str] = (),
    titles: Mapping[str, str] | None = None,
    descriptions: Mapping[str, str] | None = None,
) -> list[Column]:
    """The CSVW table schema of a text table: a name, title and datatype for each column."""
    titles = titles or {}
    descriptions = descriptions or {}
    columns = []
    for name in (str(c) for c in table.columns):
        is_count = name in count_columns
        columns.append(
            Column(
                name=name,
                title=titles.get(name) or _title(name),
                datatype="integer" if is_count else infer_datatype(table[name]),
                description=descriptions.get(name),
                measure="count" if is_count else None,
            )
        )
    return columns


def _title(name: str) -> str:
    words = re.sub(r"[_\s]+", " ", name).strip()
    return words[:1].upper() + words[1:]


def typed(table: pd.DataFrame, columns: Sequence[Column]) -> pd.DataFrame:
    """The table with each column converted to its datatype; suppressed or empty cells null."""
    out: dict[str, Any] = {}
    for column in columns:
        text = table[column.name]
        nulls = text.isin(NULLS)
        if column.datatype == "integer":
            out[column.name] = pd.to_numeric(text.mask(nulls), errors="raise").astype("Int64")
        elif column.datatype == "number":
            out[column.name] = pd.to_numeric(text.mask(nulls), errors="raise").astype("Float64")
        elif column.datatype == "boolean":
            out[column.name] = text.str.lower().map({"true": True, "false": False}).astype(
                "boolean"
            ).mask(nulls)
        elif column.datatype == "datetime":
            out[column.name] = pd.to_datetime(text.mask(nulls), utc=True, format="ISO8601")
        elif column.datatype == "date":
            out[column.name] = pd.to_datetime(text.mask(nulls), format="ISO8601").dt.date
        else:
            out[column.name] = text.mask(text == "", None)
    return pd.DataFrame(out, index=table.index)


def csv_bytes(table: pd.DataFrame) -> bytes:
    """The text table as CSV, every cell guarded against formula injection."""
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer)
    writer.writerow([str(c) for c in table.columns])
    writer.writerows(table.itertuples(index=False, name=None))
    return buffer.getvalue().encode("utf-8")


def json_bytes(frame: pd.DataFrame, columns: Sequence[Column]) -> bytes:
    """The typed table as a JSON array of row objects (dates and times as ISO 8601)."""
    records: list[dict[str, Any]] = []
    kinds = {c.name: c.datatype for c in columns}
    for row in frame.itertuples(index=False, name=None):
        record: dict[str, Any] = {}
        for (name, kind), value in zip(kinds.items(), row, strict=True):
            record[name] = _json_value(value, kind)
        records.append(record)
    return (json.dumps(records, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def _json_value(value: Any, kind: str) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if kind == "integer":
        return int(value)
    if kind == "number":
        return float(value)
    if kind == "boolean":
        return bool(value)
    if kind == "datetime":
        return pd.Timestamp(value).tz_convert(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "date":
        return value.isoformat()
    return str(value)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """The typed table as Parquet (zstd-compressed, no pandas index)."""
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer, compression="zstd")
    return buffer.getvalue()


def csvw_name(name: str) -> str:
    """A column name made a valid CSVW ``name`` (a URI template variable)."""
    return quote(name, safe="")


def csvw_metadata(dataset: Dataset, csv_url: str) -> dict[str, Any]:
    """The CSVW metadata document for a dataset's CSV file (W3C *Metadata Vocabulary for
    Tabular Data*), with the dataset's Dublin Core and DCAT properties."""
    columns: list[dict[str, Any]] = []
    for column in dataset.columns:
        item: dict[str, Any] = {
            "name": csvw_name(column.name),
            "titles": column.title,
            "datatype": column.datatype,
            "required": False,
        }
        if column.measure == "count":
            item["null"] = list(NULLS)
            item["dc:description"] = column.description or (
                f"A count. {SUPPRESSED_MARK} marks a suppressed cell (a count below "
                f"{dataset.threshold} or one that would reveal it)."
                if dataset.threshold
                else "A count."
            )
        elif column.description:
            item["dc:description"] = column.description
        columns.append(item)
    document: dict[str, Any] = {
        "@context": [CSVW_CONTEXT, {"@language": "en"}],
        "url": csv_url,
        "dc:title": dataset.title,
        "dc:description": dataset.description,
        "dc:publisher": dataset.publisher.title,
        "dc:license": {"@id": dataset.licence.url},
        "dcat:keyword": list(dataset.keywords),
        "dialect": {"header": True, "encoding": "utf-8", "delimiter": ","},
        "tableSchema": {"columns": columns},
    }
    return document


def sha256_bytes(data: bytes) -> str:
    """SHA-256 of some bytes, hex."""
    return hashlib.sha256(data).hexdigest()


def write_file(path: Path, data: bytes) -> None:
    """Write a new file durably (it must not exist yet)."""
    with path.open("xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
