"""Output checking and release: nothing leaves without a second person's approval and a log entry.

Workflow: an analyst *requests* release of an output; a checker who is neither the requester nor
the output's creator *approves* or *rejects* it (with a reason). Approval copies the file to
``<home>/releases/<release_id>/`` with a ``release.json`` of its metadata, and writes a
``release`` entry (with the file hash) to the public ledger. The release is done only when all
of that has happened; any failure removes the copied file and leaves the request pending.

Roles come from the register's staff users (``staff_users``): the checker must be an active user
with the ``checker`` role.

If the store's commit fails after the ledger entry was written, the log shows a release that
the store does not: the error is on the side of over-reporting, never of an unlogged release,
and approving again completes it (with a second entry for the same release id).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from candour import ledger
from candour.config import Settings
from candour.disclosure.outputs import (
    OutputError,
    canonical_json,
    get_output,
    outputs_dir,
    sha256_file,
)
from candour.errors import CandourError
from candour.home import Home
from candour.store import transaction
from candour.store.disclosure import DisclosureOutput, ReleaseRequest
from candour.store.models import utcnow
from candour.store.register import StaffUser

STATUSES = ("pending", "rejected", "released")
CHECKER_ROLE = "checker"


class ReleaseError(CandourError):
    """A release request cannot be made, approved or rejected as asked."""


@dataclass(frozen=True)
class Release:
    """A release request and its outcome."""

    release_id: str
    output_id: str
    use_id: str
    status: str
    output_sha256: str
    requested_by: str
    requested_at: datetime
    checked_by: str | None
    checked_at: datetime | None
    reason: str | None
    ledger_index: int | None
    release_path: str | None


def request_release(settings: Settings, output_id: str, *, user: str) -> Release:
    """Ask for an output to be released. The output's file must still match its recorded hash."""
    output = get_output(settings, output_id)
    _check_file(output.path, output.file_sha256)
    with transaction(settings) as session:
        _staff(session, user)
        existing = session.execute(
            select(ReleaseRequest).where(
                ReleaseRequest.output_id == output_id,
                ReleaseRequest.status.in_(("pending", "released")),
            )
        ).scalar_one_or_none()
        if existing is not None:
            raise ReleaseError(
                f"{output_id} already has release request {existing.release_id} ({existing.status})"
            )
        row = ReleaseRequest(
            release_id="REL-" + secrets.token_hex(5),
            output_id=output_id,
            use_id=output.use_id,
            status="pending",
            output_sha256=output.file_sha256,
            requested_by=user,
        )
        session.add(row)
        session.flush()
        return _to_release(row)


def approve_release(settings: Settings, release_id: str, *, checker: str) -> Release:
    """Approve a pending request: copy the file out, log it, and mark it released.

    Raises :class:`ReleaseError` (and releases nothing) if the checker may not check it, the
    file changed since it was checked, or copying or logging fails.
    """
    releases = Home(settings.home).releases
    staging = releases / f".staging-{release_id}-{secrets.token_hex(4)}"
    final = releases / release_id
    placed = False
    try:
        with transaction(settings) as session:
            row = _pending(session, release_id)
            output = _two_person_check(session, row, checker)
            _claim(session, release_id, checker)
            source = outputs_dir(Home(settings.home)) / row.output_id / output.file_name
            _check_file(source, row.output_sha256)
            if final.exists():
                raise ReleaseError(f"{final} already exists; refusing to overwrite a release")
            releases.mkdir(parents=True, exist_ok=True)
            staging.mkdir()
            copied = staging / output.file_name
            shutil.copyfile(source, copied)
            _fsync(copied)
            if sha256_file(copied) != row.output_sha256:
                raise ReleaseError(f"the copy of {output.file_name} does not match its hash")
            checked_at = utcnow()
            try:
                index = ledger.record(
                    "release",
                    {
                        "release_id": release_id,
                        "use_id": row.use_id,
                        "output_hash": row.output_sha256,
                        "method": output.method,
                    },
                    settings=settings,
                )
            except Exception as exc:
                raise ReleaseError(
                    f"the release could not be logged, so nothing was released: {exc}"
                ) from exc
            metadata = {
                "release_id": release_id,
                "output_id": row.output_id,
                "use_id": row.use_id,
                "file": output.file_name,
                "file_sha256": row.output_sha256,
                "report_sha256": output.report_sha256,
                "method": output.method,
                "requested_by": row.requested_by,
                "requested_at": _iso(row.requested_at),
                "checked_by": checker,
                "checked_at": _iso(checked_at),
                "ledger_index": index,
            }
            (staging / "release.json").write_bytes(canonical_json(metadata) + b"\n")
            _fsync(staging / "release.json")
            staging.rename(final)
            placed = True
            row.status = "released"
            row.checked_by = checker
            row.checked_at = checked_at
            row.ledger_index = index
            row.release_path = str(final / output.file_name)
            session.flush()
            result = _to_release(row)
        return result
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if placed:
            shutil.rmtree(final, ignore_errors=True)
        raise


def reject_release(settings: Settings, release_id: str, *, checker: str, reason: str) -> Release:
    """Reject a pending request with a reason the requester will see."""
    reason = reason.strip()
    if not reason:
        raise ReleaseError("a rejection needs a reason")
    with transaction(settings) as session:
        row = _pending(session, release_id)
        _two_person_check(session, row, checker)
        _claim(session, release_id, checker)
        row.status = "rejected"
        row.checked_by = checker
        row.checked_at = utcnow()
        row.reason = reason
        session.flush()
        return _to_release(row)


def get_release(settings: Settings, release_id: str) -> Release:
    """The release request with this id."""
    with transaction(settings) as session:
        return _to_release(_find(session, release_id))


def list_releases(settings: Settings, status: str | None = None) -> list[Release]:
    """Release requests, newest first, optionally only those with ``status``."""
    if status is not None and status not in STATUSES:
        raise ReleaseError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
    with transaction(settings) as session:
        query = select(ReleaseRequest).order_by(ReleaseRequest.id.desc())
        if status is not None:
            query = query.where(ReleaseRequest.status == status)
        return [_to_release(r) for r in session.execute(query).scalars()]


# -- helpers ---------------------------------------------------------------------------------


def _find(session: Session, release_id: str) -> ReleaseRequest:
    row = session.execute(
        select(ReleaseRequest).where(ReleaseRequest.release_id == release_id)
    ).scalar_one_or_none()
    if row is None:
        raise ReleaseError(f"no release request {release_id!r}")
    return row


def _pending(session: Session, release_id: str) -> ReleaseRequest:
    row = _find(session, release_id)
    if row.status != "pending":
        raise ReleaseError(f"{release_id} is {row.status}, not pending")
    return row


def _staff(session: Session, name: str) -> StaffUser:
    user = session.execute(select(StaffUser).where(StaffUser.name == name)).scalar_one_or_none()
    if user is None or not user.active:
        raise ReleaseError(f"{name!r} is not an active staff user (see `candour users add`)")
    return user


def _two_person_check(session: Session, row: ReleaseRequest, checker: str) -> DisclosureOutput:
    user = _staff(session, checker)
    output = session.execute(
        select(DisclosureOutput).where(DisclosureOutput.output_id == row.output_id)
    ).scalar_one()
    if checker in (row.requested_by, output.created_by):
        raise ReleaseError(
            f"{checker} requested or created this output; a different person must check it "
            "(two-person rule)"
        )
    if user.role != CHECKER_ROLE:
        raise ReleaseError(f"{checker} has role {user.role}; only a {CHECKER_ROLE} may decide")
    return output


def _claim(session: Session, release_id: str, checker: str) -> None:
    # A conditional UPDATE takes the row (PostgreSQL) or database (SQLite) write lock, so two
    # checkers deciding at once cannot both succeed.
    claimed = session.execute(
        update(ReleaseRequest)
        .where(ReleaseRequest.release_id == release_id, ReleaseRequest.status == "pending")
        .values(checked_by=checker)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise ReleaseError(f"{release_id} was decided by someone else meanwhile")


def _check_file(path: Path, expected: str) -> None:
    try:
        actual = sha256_file(path)
    except FileNotFoundError:
        raise OutputError(f"the output file {path} is missing") from None
    if actual != expected:
        raise OutputError(
            f"{path} has changed since it was checked (sha256 {actual[:12]}…, expected "
            f"{expected[:12]}…); it cannot be released"
        )


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _to_release(row: ReleaseRequest) -> Release:
    return Release(
        release_id=row.release_id,
        output_id=row.output_id,
        use_id=row.use_id,
        status=row.status,
        output_sha256=row.output_sha256,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        checked_by=row.checked_by,
        checked_at=row.checked_at,
        reason=row.reason,
        ledger_index=row.ledger_index,
        release_path=row.release_path,
    )


def metadata_of(path: Path) -> dict[str, object]:
    """The ``release.json`` beside a released file."""
    data: dict[str, object] = json.loads((path.parent / "release.json").read_text())
    return data
