"""Recording every read of the vault in the store's ``vault_access`` table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import select

from candour.config import Settings
from candour.errors import CandourError
from candour.store import transaction
from candour.store.ingest import VaultAccess
from candour.store.models import utcnow

MIN_REASON_CHARS = 8


@dataclass
class AccessLog:
    """The access being recorded; set ``records`` to how many records were returned."""

    access_id: int
    records: int = 0


def check_reason(reason: str, actor: str) -> tuple[str, str]:
    """Refuse an access without a stated reason and actor; return them trimmed."""
    reason, actor = reason.strip(), actor.strip()
    if len(reason) < MIN_REASON_CHARS:
        raise CandourError(
            "reading the identity vault needs a stated reason (at least "
            f"{MIN_REASON_CHARS} characters), e.g. 'link run 2026-11 for the person index'"
        )
    if not actor:
        raise CandourError("reading the identity vault needs an actor (who or what is reading)")
    return reason[:500], actor[:128]


@contextmanager
def audited(
    settings: Settings,
    operation: str,
    scope: str,
    reason: str,
    actor: str,
    workspace: str | None = None,
) -> Iterator[AccessLog]:
    """Record an access before it happens, and its outcome when it completes.

    The row is committed before the block runs, so an access that cannot be recorded never
    starts. ``records`` and ``finished_at`` are written only when the block completes; an access
    that failed part way keeps them empty, which is itself the record of what happened.
    """
    reason, actor = check_reason(reason, actor)
    with transaction(settings) as session:
        row = VaultAccess(
            actor=actor,
            reason=reason,
            operation=operation,
            scope=scope[:256],
            workspace=workspace,
        )
        session.add(row)
        session.flush()
        log = AccessLog(access_id=row.id)
    yield log
    with transaction(settings) as session:
        done = session.scalars(select(VaultAccess).where(VaultAccess.id == log.access_id)).one()
        done.records = log.records
        done.finished_at = utcnow()
