"""Recording residents' choices: validated, append-only, logged, all-or-nothing.

A change is one ``(person, purpose, source or every source, opt-out | opt-in)``. Recording a
batch of changes (one for ``candour choices set``; thousands for a bulk import) is one store
transaction that:

1. takes the purposes' version rows first (an ``UPDATE``), which serialises changes to the same
   purpose on PostgreSQL and takes SQLite's write lock at once rather than failing on upgrade;
2. reads the current opt-outs and drops the changes already in force (re-stating a choice is not
   a change, and is neither stored nor logged);
3. appends the history rows and updates ``choice_optouts`` to match;
4. appends one ``choice-change`` entry per change to the public log, each carrying a fresh
   per-person commitment (``HMAC(person_key, nonce)``) so only the person can recognise it;
5. stores each entry's index and nonce on its history row, and commits.

If the log append fails, the transaction is rolled back: no change exists without its entry.
The one window left is a failed *commit* after a successful append (the database vanished at
that instant); the log then holds entries for changes that were not stored. They over-report,
never under-report, and the history rows' ``ledger_index`` lets an audit reconcile the two.

A change takes effect for every query that starts after its transaction commits: the gate reads
the committed ``choice_optouts`` when a query starts (see :mod:`candour.choices.snapshot`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal, get_args

from sqlalchemy import delete, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from candour import ledger
from candour.choices.purposes import PurposeError, PurposeSet, load_purposes
from candour.config import Settings
from candour.errors import CandourError
from candour.home import Home, read_secret
from candour.store import IngestBatch, transaction
from candour.store.choices import ALL_SOURCES, ChoiceEvent, ChoiceOptOut, ChoiceVersion
from candour.store.linkage import PersonNumber
from candour.store.models import utcnow

Decision = Literal["opt-out", "opt-in"]
Channel = Literal["cli", "portal", "bulk-import", "api", "staff", "linkage"]
DECISIONS: tuple[str, ...] = get_args(Decision)
CHANNELS: tuple[str, ...] = get_args(Channel)

_PERSON_ID = re.compile(r"^P-[A-Z2-7]{12}$")
_SOURCE = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
_CHUNK = 500


class ChoiceError(CandourError):
    """A choice cannot be recorded as asked (unknown person or source, conflicting changes)."""


@dataclass(frozen=True)
class ChoiceRequest:
    """One change a resident (or a list on their behalf) asks for."""

    person_id: str
    purpose: str
    decision: Decision
    source: str | None = None
    """``None``: every source. Otherwise the choice applies to that source's records only."""


@dataclass(frozen=True)
class ChoiceRecord:
    """One row of a person's choice history."""

    id: int
    person_id: str
    purpose: str
    source: str | None
    decision: Decision
    channel: str
    actor: str
    recorded_at: datetime
    ledger_index: int | None


@dataclass(frozen=True)
class ChangeResult:
    """What recording a batch did: the changes stored, and those already in force."""

    recorded: list[ChoiceRecord]
    unchanged: list[ChoiceRequest]


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive value is taken to be UTC already (SQLite returns those)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_record(row: ChoiceEvent) -> ChoiceRecord:
    """The public form of a history row."""
    return ChoiceRecord(
        id=row.id,
        person_id=row.person_id,
        purpose=row.purpose,
        source=row.source or None,
        decision=row.decision,  # type: ignore[arg-type]
        channel=row.channel,
        actor=row.actor,
        recorded_at=as_utc(row.recorded_at),
        ledger_index=row.ledger_index,
    )


def _validate_requests(
    requests: Sequence[ChoiceRequest], purposes: PurposeSet
) -> list[ChoiceRequest]:
    """Check every request's shape and purpose rules; return them without exact repeats."""
    unique: dict[tuple[str, str, str], ChoiceRequest] = {}
    for request in requests:
        if not _PERSON_ID.match(request.person_id):
            raise ChoiceError(
                f"{request.person_id!r} is not a person id (P- and 12 base32 characters)"
            )
        if request.decision not in DECISIONS:
            raise ChoiceError(f"decision must be opt-out or opt-in, not {request.decision!r}")
        if request.source is not None and not _SOURCE.match(request.source):
            raise ChoiceError(f"{request.source!r} is not a source name")
        purpose = purposes.get(request.purpose)
        if request.decision == "opt-out" and not purpose.opt_out:
            raise PurposeError(
                f"residents cannot opt out of {purpose.id} ({purpose.title}): "
                f"{purpose.why_no_opt_out}"
            )
        key = (request.person_id, request.purpose, request.source or ALL_SOURCES)
        seen = unique.get(key)
        if seen is not None and seen.decision != request.decision:
            raise ChoiceError(
                f"conflicting choices for {request.person_id} about {request.purpose}"
                f"{' / ' + request.source if request.source else ''} in one batch"
            )
        unique[key] = request
    return list(unique.values())


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def person_numbers(session: Session, person_ids: Iterable[str]) -> dict[str, int]:
    """``person_id -> person_num`` for the current (not retired) persons among ``person_ids``."""
    wanted = sorted(set(person_ids))
    found: dict[str, int] = {}
    for chunk in _chunks(wanted):
        rows = session.execute(
            select(PersonNumber.person_id, PersonNumber.person_num)
            .where(PersonNumber.person_id.in_(chunk))
            .where(PersonNumber.retired_run.is_(None))
        )
        found.update({pid: int(num) for pid, num in rows})
    return found


def known_sources(session: Session) -> set[str]:
    """Sources with at least one completed ingest: those a choice may be narrowed to."""
    return set(
        session.scalars(select(IngestBatch.source).where(IngestBatch.status == "done").distinct())
    )


def _ensure_version_rows(settings: Settings, purposes: Iterable[str]) -> None:
    """Create missing per-purpose version rows, tolerating a concurrent creator."""
    for purpose in sorted(set(purposes)):
        try:
            with transaction(settings) as session:
                if session.get(ChoiceVersion, purpose) is None:
                    session.add(ChoiceVersion(purpose=purpose, version=0, changed_at=None))
        except IntegrityError:
            pass  # another process created it first: exactly what we wanted


def record_choices(
    requests: Sequence[ChoiceRequest],
    *,
    channel: Channel,
    actor: str,
    settings: Settings,
) -> ChangeResult:
    """Record a batch of choice changes all-or-nothing, each logged; see the module docstring.

    Raises :class:`PurposeError` for an unknown purpose or an opt-out the purpose does not
    allow (saying why), and :class:`ChoiceError` for an unknown or retired person, an unknown
    source, or two conflicting changes in one batch. Nothing is stored when anything is wrong.
    """
    if channel not in CHANNELS:
        raise ChoiceError(f"channel must be one of {', '.join(CHANNELS)}, not {channel!r}")
    if not actor or len(actor) > 128:
        raise ChoiceError("the actor recording a choice must be named (at most 128 characters)")
    purposes = load_purposes(settings)
    wanted = _validate_requests(requests, purposes)
    if not wanted:
        return ChangeResult([], [])
    home = Home(settings.home)
    home.require_initialised()
    hmac_key = read_secret(home.hmac_key)
    _ensure_version_rows(settings, (r.purpose for r in wanted))

    with transaction(settings) as session:
        numbers = person_numbers(session, (r.person_id for r in wanted))
        missing = sorted({r.person_id for r in wanted} - set(numbers))
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise ChoiceError(
                f"no current person {', '.join(missing[:3])}{more} in the person index"
            )
        narrowed = sorted({r.source for r in wanted if r.source is not None})
        if narrowed:
            sources = known_sources(session)
            unknown = [s for s in narrowed if s not in sources]
            if unknown:
                raise ChoiceError(
                    f"no source called {unknown[0]!r} has been ingested; a choice can be "
                    f"narrowed to: {', '.join(sorted(sources)) or '(no sources yet)'}"
                )

        # Lock first, read after: the no-op check below must see every earlier commit.
        involved = sorted({r.purpose for r in wanted})
        session.execute(
            update(ChoiceVersion)
            .where(ChoiceVersion.purpose.in_(involved))
            .values(version=ChoiceVersion.version + 0)
        )
        versions = {
            v.purpose: v
            for v in session.scalars(
                select(ChoiceVersion).where(ChoiceVersion.purpose.in_(involved))
            )
        }
        current = _current_optouts(session, wanted, numbers)
        effective: list[ChoiceRequest] = []
        unchanged: list[ChoiceRequest] = []
        for request in wanted:
            key = (request.purpose, request.source or ALL_SOURCES, numbers[request.person_id])
            is_out = key in current
            if (request.decision == "opt-out") == is_out:
                unchanged.append(request)
            else:
                effective.append(request)
        if not effective:
            return ChangeResult([], unchanged)

        # History timestamps never go backwards within a purpose, whatever the clock does, so
        # a replay "as at" a time agrees with the order changes were committed in.
        now = utcnow()
        stamp: dict[str, datetime] = {}
        for purpose in involved:
            last = versions[purpose].changed_at
            stamp[purpose] = max(now, as_utc(last)) if last is not None else now

        people_keys: dict[str, bytes] = {}
        entries: list[tuple[str, dict[str, str]]] = []
        rows: list[ChoiceEvent] = []
        for request in effective:
            secret = people_keys.get(request.person_id)
            if secret is None:
                secret = people_keys[request.person_id] = ledger.person_key(
                    hmac_key, request.person_id
                )
            fields = ledger.person_fields(secret)
            payload = {"purpose": request.purpose, "choice": request.decision, **fields}
            if request.source:
                payload["source"] = request.source
            entries.append(("choice-change", payload))
            rows.append(
                ChoiceEvent(
                    person_id=request.person_id,
                    person_num=numbers[request.person_id],
                    purpose=request.purpose,
                    source=request.source or ALL_SOURCES,
                    decision=request.decision,
                    channel=channel,
                    actor=actor,
                    recorded_at=stamp[request.purpose],
                    ledger_nonce=fields["nonce"],
                )
            )
        session.add_all(rows)
        session.flush()
        _apply_to_current(session, rows)
        for purpose in involved:
            count = sum(1 for r in rows if r.purpose == purpose)
            versions[purpose].version += count
            versions[purpose].changed_at = stamp[purpose]
        session.flush()

        # The log append is the last fallible step before commit: if it fails, the
        # transaction rolls back and no change exists without its public entry.
        indices = ledger.record_many(entries, settings=settings)
        session.execute(
            update(ChoiceEvent),
            [
                {"id": row.id, "ledger_index": index}
                for row, index in zip(rows, indices, strict=True)
            ],
        )
        recorded = [
            replace(to_record(row), ledger_index=index)
            for row, index in zip(rows, indices, strict=True)
        ]
    return ChangeResult(recorded, unchanged)


def _current_optouts(
    session: Session, wanted: Sequence[ChoiceRequest], numbers: dict[str, int]
) -> set[tuple[str, str, int]]:
    keys = sorted({(r.purpose, r.source or ALL_SOURCES, numbers[r.person_id]) for r in wanted})
    found: set[tuple[str, str, int]] = set()
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        rows = session.execute(
            select(ChoiceOptOut.purpose, ChoiceOptOut.source, ChoiceOptOut.person_num).where(
                tuple_(ChoiceOptOut.purpose, ChoiceOptOut.source, ChoiceOptOut.person_num).in_(
                    chunk
                )
            )
        )
        found.update((p, s, int(n)) for p, s, n in rows)
    return found


def _apply_to_current(session: Session, rows: Sequence[ChoiceEvent]) -> None:
    """Make ``choice_optouts`` reflect the new history rows (inserted opt-outs, removed opt-ins)."""
    outs = [
        {
            "purpose": r.purpose,
            "source": r.source,
            "person_num": r.person_num,
            "person_id": r.person_id,
            "event_id": r.id,
        }
        for r in rows
        if r.decision == "opt-out"
    ]
    if outs:
        session.execute(insert(ChoiceOptOut), outs)
    ins = [(r.purpose, r.source, r.person_num) for r in rows if r.decision == "opt-in"]
    for start in range(0, len(ins), _CHUNK):
        chunk = ins[start : start + _CHUNK]
        session.execute(
            delete(ChoiceOptOut).where(
                tuple_(ChoiceOptOut.purpose, ChoiceOptOut.source, ChoiceOptOut.person_num).in_(
                    chunk
                )
            )
        )


def set_choice(
    person_id: str,
    purpose: str,
    decision: Decision,
    *,
    source: str | None = None,
    channel: Channel = "cli",
    actor: str,
    settings: Settings,
) -> ChoiceRecord | None:
    """Record one resident's choice; return the history row, or None if already in force."""
    result = record_choices(
        [ChoiceRequest(person_id, purpose, decision, source)],
        channel=channel,
        actor=actor,
        settings=settings,
    )
    return result.recorded[0] if result.recorded else None


def history(person_id: str, *, settings: Settings) -> list[ChoiceRecord]:
    """Every choice change recorded for a person, oldest first."""
    with transaction(settings) as session:
        rows = session.scalars(
            select(ChoiceEvent).where(ChoiceEvent.person_id == person_id).order_by(ChoiceEvent.id)
        ).all()
        return [to_record(row) for row in rows]


@dataclass(frozen=True)
class PersonChoices:
    """A person's choices in force: per purpose, opted out everywhere and/or of some sources."""

    person_id: str
    everywhere: frozenset[str]
    """Purposes the person has opted out of for every source."""
    by_source: dict[str, frozenset[str]]
    """Purpose -> sources the person has opted out of (besides any opt-out everywhere)."""


def current(person_id: str, *, settings: Settings) -> PersonChoices:
    """The choices in force for a person now. Raises :class:`ChoiceError` for an unknown person."""
    with transaction(settings) as session:
        if not person_numbers(session, [person_id]):
            raise ChoiceError(f"no current person {person_id} in the person index")
        rows = session.execute(
            select(ChoiceOptOut.purpose, ChoiceOptOut.source).where(
                ChoiceOptOut.person_id == person_id
            )
        ).all()
    everywhere = frozenset(p for p, s in rows if s == ALL_SOURCES)
    by_source: dict[str, set[str]] = {}
    for purpose, source in rows:
        if source != ALL_SOURCES:
            by_source.setdefault(purpose, set()).add(source)
    return PersonChoices(
        person_id, everywhere, {p: frozenset(s) for p, s in sorted(by_source.items())}
    )
