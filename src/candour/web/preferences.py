"""Residents' service preferences (online or on paper) and the services' API to read them.

A resident tells each service how they want to be dealt with: ``online`` or on ``paper``.
Every change is a new row (the history is kept and shown); the latest row per service is in
force. Services read the preferences through ``/api/v1/services/{source}/preferences`` with a
bearer token issued to that one service by an administrator: a token for the police can read
only what residents told the police, and only about records the police sent (a service asks by
its own record id, and never learns Candour's person ids).

Tokens look like ``cst_<token id>_<secret>``. Only their SHA-256 is stored; the token is shown
once, when it is issued.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from sqlalchemy import func, select, update

from candour.config import Settings
from candour.errors import CandourError
from candour.store import IngestBatch, transaction
from candour.store.linkage import PersonIndexEntry
from candour.store.models import utcnow
from candour.store.web import ServicePreference, ServiceToken

Preference = Literal["online", "paper"]
PREFERENCES: tuple[str, ...] = get_args(Preference)
Channel = Literal["portal", "api", "staff"]
_SOURCE = re.compile(r"^[a-z0-9_]{1,64}$")
_TOKEN = re.compile(r"^cst_([a-z0-9]{12})_([A-Za-z0-9_-]{20,100})$")


class PreferenceError(CandourError):
    """A preference or token request cannot be carried out as asked."""


@dataclass(frozen=True)
class PreferenceRecord:
    """One change of preference."""

    source: str
    preference: str
    channel: str
    recorded_at: datetime


@dataclass(frozen=True)
class TokenInfo:
    """An issued token, without its secret."""

    token_id: str
    source: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def known_sources(settings: Settings) -> list[str]:
    """Sources with at least one completed ingest, by name."""
    with transaction(settings) as session:
        return sorted(
            session.scalars(
                select(IngestBatch.source).where(IngestBatch.status == "done").distinct()
            )
        )


def current(person_id: str, *, settings: Settings) -> dict[str, PreferenceRecord]:
    """The preference in force for each service the person has told us about."""
    return {r.source: r for r in history(person_id, settings=settings)}


def history(person_id: str, *, settings: Settings) -> list[PreferenceRecord]:
    """Every change the person made, oldest first."""
    with transaction(settings) as session:
        rows = session.scalars(
            select(ServicePreference)
            .where(ServicePreference.person_id == person_id)
            .order_by(ServicePreference.id)
        ).all()
        return [
            PreferenceRecord(r.source, r.preference, r.channel, _utc(r.recorded_at)) for r in rows
        ]


def set_preferences(
    person_id: str, wanted: dict[str, str], *, channel: Channel, settings: Settings
) -> list[PreferenceRecord]:
    """Record the preferences in ``wanted`` (source -> online|paper) that differ from now.

    All or nothing: an unknown source or preference stores nothing. Returns the changes made
    (re-stating a preference already in force is not a change).
    """
    for source, preference in wanted.items():
        if preference not in PREFERENCES:
            raise PreferenceError(f"a preference is online or paper, not {preference!r}")
        if not _SOURCE.match(source):
            raise PreferenceError(f"{source!r} is not a service")
    sources = set(known_sources(settings))
    unknown = sorted(set(wanted) - sources)
    if unknown:
        raise PreferenceError(f"no service called {unknown[0]!r}")
    stamp = utcnow()
    with transaction(settings) as session:
        # Read what is in force in the same transaction as the write (locking those rows on
        # PostgreSQL), so a double-submitted form rarely records one change twice; if it does,
        # the history shows the same preference twice, which misleads nobody.
        latest: dict[str, str] = {}
        for row in session.scalars(
            select(ServicePreference)
            .where(ServicePreference.person_id == person_id)
            .order_by(ServicePreference.id)
            .with_for_update()
        ):
            latest[row.source] = row.preference
        changes = {s: p for s, p in sorted(wanted.items()) if latest.get(s) != p}
        session.add_all(
            ServicePreference(
                person_id=person_id, source=s, preference=p, channel=channel, recorded_at=stamp
            )
            for s, p in changes.items()
        )
    return [PreferenceRecord(s, p, channel, stamp) for s, p in changes.items()]


# -- tokens ----------------------------------------------------------------------------------


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def issue_token(source: str, *, created_by: str, settings: Settings) -> str:
    """A new token for ``source``; the only time the token itself exists outside the caller."""
    if source not in known_sources(settings):
        raise PreferenceError(f"no service called {source!r}")
    token_id = secrets.token_hex(6)
    token = f"cst_{token_id}_{secrets.token_urlsafe(32)}"
    with transaction(settings) as session:
        session.add(
            ServiceToken(
                token_id=token_id,
                source=source,
                token_sha256=_sha256(token),
                created_by=created_by,
            )
        )
    return token


def revoke_token(token_id: str, *, settings: Settings) -> None:
    """Stop a token working, at once."""
    with transaction(settings) as session:
        done = session.execute(
            update(ServiceToken)
            .where(ServiceToken.token_id == token_id, ServiceToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        if not done.rowcount:  # type: ignore[attr-defined]
            raise PreferenceError(f"no active token {token_id!r}")


def list_tokens(*, settings: Settings) -> list[TokenInfo]:
    """Every token issued, newest first (never the secrets)."""
    with transaction(settings) as session:
        rows = session.scalars(select(ServiceToken).order_by(ServiceToken.id.desc())).all()
        return [
            TokenInfo(
                r.token_id,
                r.source,
                r.created_by,
                _utc(r.created_at),
                _utc(r.revoked_at) if r.revoked_at else None,
            )
            for r in rows
        ]


def authenticate(token: str, *, settings: Settings) -> str | None:
    """The source an active token was issued to, or None."""
    found = _TOKEN.match(token)
    if not found:
        return None
    with transaction(settings) as session:
        row = session.scalar(select(ServiceToken).where(ServiceToken.token_id == found.group(1)))
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.token_sha256, _sha256(token)):
            return None
        return row.source


@dataclass(frozen=True)
class RecordPreference:
    """A service's view of one of its records: the resident's preference for that service."""

    record_id: str
    preference: str | None
    updated_at: datetime | None


def for_record(source: str, record_id: str, *, settings: Settings) -> RecordPreference | None:
    """The preference of the person a service's record belongs to, or None if not linked."""
    with transaction(settings) as session:
        person = session.scalar(
            select(PersonIndexEntry.person_id).where(
                PersonIndexEntry.record_key == f"{source}:{record_id}"
            )
        )
        if person is None:
            return None
        row = session.scalar(
            select(ServicePreference)
            .where(ServicePreference.person_id == person, ServicePreference.source == source)
            .order_by(ServicePreference.id.desc())
            .limit(1)
        )
    if row is None:
        return RecordPreference(record_id, None, None)
    return RecordPreference(record_id, row.preference, _utc(row.recorded_at))


@dataclass(frozen=True)
class PreferenceChange:
    """A change a service should apply: for these records of theirs, this preference now."""

    change_id: int
    record_ids: list[str]
    preference: str
    recorded_at: datetime


def changes_since(
    source: str, after: int, limit: int, *, settings: Settings
) -> list[PreferenceChange]:
    """Changes of preference for ``source`` after change id ``after``, oldest first."""
    with transaction(settings) as session:
        rows = session.scalars(
            select(ServicePreference)
            .where(ServicePreference.source == source, ServicePreference.id > after)
            .order_by(ServicePreference.id)
            .limit(limit)
        ).all()
        persons = sorted({r.person_id for r in rows})
        records: dict[str, list[str]] = {}
        if persons:
            prefix = f"{source}:"
            for key, person in session.execute(
                select(PersonIndexEntry.record_key, PersonIndexEntry.person_id).where(
                    PersonIndexEntry.person_id.in_(persons),
                    func.substr(PersonIndexEntry.record_key, 1, len(prefix)) == prefix,
                )
            ):
                records.setdefault(person, []).append(key[len(prefix) :])
        return [
            PreferenceChange(
                r.id, sorted(records.get(r.person_id, [])), r.preference, _utc(r.recorded_at)
            )
            for r in rows
        ]
