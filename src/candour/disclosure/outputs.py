"""Checked outputs kept inside the environment until a release is approved.

An output is a CSV file (suppressed values written as ``[c]``) plus the disclosure report that
produced it, under ``<home>/outputs/<output_id>/``, never under ``<home>/releases/``: only
:mod:`candour.disclosure.releases` copies a file there, after a second person's check.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from candour.config import Settings
from candour.disclosure.dp import DpResult
from candour.disclosure.sdc import SUPPRESSED_MARK, DisclosureRefused, SdcResult
from candour.errors import CandourError
from candour.home import Home
from candour.store import transaction
from candour.store.disclosure import DisclosureOutput

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
USE_ID = re.compile(r"^DU-[0-9]{4}-[0-9]{3,6}$")


class OutputError(CandourError):
    """An output is missing, unreadable or not what the store says it is."""


@dataclass(frozen=True)
class Output:
    """A protected output as the store records it."""

    output_id: str
    use_id: str
    method: str
    file_name: str
    file_sha256: str
    report: dict[str, Any]
    report_sha256: str
    rows: int
    created_by: str
    created_at: datetime
    path: Path


def outputs_dir(home: Home) -> Path:
    """Where outputs wait inside the environment (not ``home.releases``)."""
    return home.root / "outputs"


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def canonical_json(obj: Any) -> bytes:
    """Stable JSON bytes (sorted keys, no spaces) for hashing a report."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def save_output(
    settings: Settings,
    result: SdcResult | DpResult,
    *,
    use_id: str,
    created_by: str,
    name: str = "output",
) -> Output:
    """Write a protected table and its report inside the environment and record it.

    The file appears under its final name only once the store row is written, and is removed
    again if the transaction fails, so a failure leaves neither a stray file nor a stray row.
    """
    if not USE_ID.match(use_id):
        raise DisclosureRefused(f"{use_id!r} is not a data use id (DU-YYYY-NNN)")
    if not NAME.match(name):
        raise DisclosureRefused(f"output name {name!r} must be lowercase letters, digits, - or _")
    if not created_by:
        raise DisclosureRefused("an output must name who created it")
    report = result.report()
    report_bytes = canonical_json(report)
    output_id = "OUT-" + secrets.token_hex(5)
    root = outputs_dir(Home(settings.home))
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".staging-{output_id}"
    final = root / output_id
    file_name = f"{name}.csv"
    staging.mkdir()
    placed = False
    try:
        data = result.table.to_csv(index=False, na_rep=SUPPRESSED_MARK, lineterminator="\n")
        _write(staging / file_name, data.encode())
        _write(staging / "report.json", report_bytes + b"\n")
        file_hash = sha256_file(staging / file_name)
        with transaction(settings) as session:
            row = DisclosureOutput(
                output_id=output_id,
                use_id=use_id,
                method=result.method,
                file_name=file_name,
                file_sha256=file_hash,
                report_json=report_bytes.decode(),
                report_sha256=hashlib.sha256(report_bytes).hexdigest(),
                rows=len(result.table),
                created_by=created_by,
            )
            session.add(row)
            session.flush()
            staging.rename(final)
            placed = True
        return _to_output(row, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if placed:
            shutil.rmtree(final, ignore_errors=True)
        raise


def get_output(settings: Settings, output_id: str) -> Output:
    """The output with this id, or an :class:`OutputError`."""
    with transaction(settings) as session:
        row = session.execute(
            select(DisclosureOutput).where(DisclosureOutput.output_id == output_id)
        ).scalar_one_or_none()
        if row is None:
            raise OutputError(f"no output {output_id!r}")
        return _to_output(row, outputs_dir(Home(settings.home)) / output_id)


def _to_output(row: DisclosureOutput, folder: Path) -> Output:
    return Output(
        output_id=row.output_id,
        use_id=row.use_id,
        method=row.method,
        file_name=row.file_name,
        file_sha256=row.file_sha256,
        report=json.loads(row.report_json),
        report_sha256=row.report_sha256,
        rows=row.rows,
        created_by=row.created_by,
        created_at=row.created_at,
        path=folder / row.file_name,
    )


def _write(path: Path, data: bytes) -> None:
    with path.open("xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
