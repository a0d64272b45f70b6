"""Data uses: application, lifecycle, and the authorisation the gate asks for.

Lifecycle::

    draft --submit--> submitted --approve--> approved --(starts)--> active --(ends)--> expired
                               \\--reject--> rejected        \\------revoke------> revoked

- The stored status is one of ``draft``, ``submitted``, ``approved``, ``rejected``,
  ``revoked``. ``active`` and ``expired`` are *derived*, never stored: an approved use is
  ``active`` on the days ``starts <= today <= ends`` and ``expired`` after ``ends`` (dates in
  UK local time, Europe/London). Nothing has to run at midnight for a use to expire, and the
  public log already says when it does: the ``use-approved`` entry carries ``expires``.
- ``submit``: by the applicant, from ``draft``; logged as ``use-submitted`` with the
  application's hash.
- ``approve`` / ``reject``: by a user with the ``ig`` role who is neither the applicant nor one
  of the use's analysts, from ``submitted``. Approval is logged as ``use-approved`` with the
  decision's hash and the end date.
- ``revoke``: from ``approved`` (whether or not it has started), by an ``ig`` or ``admin``
  user, or by the applicant with reason ``withdrawn``; logged as ``use-revoked``.

Each transition is one store transaction: the use row is locked first (an ``UPDATE``, which
also takes SQLite's write lock), the rules are checked, the transition is written, and the
ledger entry is appended last; if the append fails, nothing is stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, Protocol, get_args
from zoneinfo import ZoneInfo

import rfc8785
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from candour import ledger
from candour.config import Settings
from candour.errors import CandourError
from candour.register.spec import ALL_COLUMNS, UseSpec
from candour.register.users import user_in
from candour.store import transaction
from candour.store.models import utcnow
from candour.store.register import DataUse, UseTransition

UK = ZoneInfo("Europe/London")
Status = Literal["draft", "submitted", "approved", "rejected", "active", "expired", "revoked"]
STATUSES: tuple[str, ...] = get_args(Status)
RevokeReason = Literal["withdrawn", "breach", "complaint", "other"]
REVOKE_REASONS: tuple[str, ...] = get_args(RevokeReason)


class UseError(CandourError):
    """A data use is unknown, or cannot take the step asked of it (wrong state, wrong user)."""


class PurposePolicy(Protocol):
    """What the register needs to know about purposes (``candour.choices.PurposeSet``).

    The register may not import the choices package (the design's one-way imports), so the
    caller passes the configured purposes in.
    """

    def check_use(self, purpose_id: str, output: str) -> None:
        """Raise a CandourError unless a use may have this purpose and output type."""
        ...


def uk_today(at: datetime | None = None) -> date:
    """The date in the UK at ``at`` (default now); a naive ``at`` is taken as UTC."""
    moment = at or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UK).date()


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sha256_json(obj: Any) -> str:
    return hashlib.sha256(bytes(rfc8785.dumps(obj))).hexdigest()


def application_document(spec: UseSpec) -> dict[str, Any]:
    """The application as canonical JSON data (what ``application_hash`` covers)."""
    data = spec.model_dump(mode="json")
    data["grants"] = {
        source: cols if cols == ALL_COLUMNS else list(cols)
        for source, cols in sorted(spec.grants.items())
    }
    return data


def application_hash(spec: UseSpec) -> str:
    """SHA-256 of the application's RFC 8785 canonical JSON."""
    return _sha256_json(application_document(spec))


@dataclass(frozen=True)
class Transition:
    """One step in a use's lifecycle."""

    from_status: str | None
    to_status: str
    actor: str
    at: datetime
    reason: str | None
    ledger_index: int | None


@dataclass(frozen=True)
class UseView:
    """A data use as the register shows it."""

    use_id: str
    status: Status
    """Effective status on ``today`` (``active``/``expired`` derived from ``approved``)."""
    stored_status: str
    spec: UseSpec
    application_hash: str
    created_at: datetime
    submitted_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    decision_hash: str | None
    revoked_at: datetime | None
    revoke_reason: str | None
    transitions: tuple[Transition, ...] = field(default=())


def effective_status(stored: str, starts: date, ends: date, today: date) -> Status:
    """``active`` or ``expired`` for an approved use on ``today``; otherwise the stored status."""
    if stored == "approved":
        if today > ends:
            return "expired"
        if today >= starts:
            return "active"
    return stored  # type: ignore[return-value]


def _spec_of(row: DataUse) -> UseSpec:
    grants = json.loads(row.grants_json)
    return UseSpec.model_validate(
        {
            "title": row.title,
            "summary": row.summary,
            "public_benefit": row.public_benefit,
            "organisation": row.organisation,
            "team": row.team,
            "senior_responsible_owner": row.senior_responsible_owner,
            "purpose": row.purpose,
            "legal_basis": {
                "article_6": row.article_6,
                "article_9": row.article_9,
                "dpa_schedule_1": row.dpa_schedule_1,
                "common_law": row.common_law,
            },
            "applicant": row.applicant,
            "analysts": json.loads(row.analysts_json),
            "grants": grants,
            "output": row.output,
            "disclosure": {"threshold": row.threshold, "rounding": row.rounding},
            "dp_epsilon": row.dp_epsilon,
            "starts": row.starts,
            "ends": row.ends,
        }
    )


def _view(row: DataUse, today: date, transitions: list[UseTransition] | None = None) -> UseView:
    return UseView(
        use_id=row.use_id,
        status=effective_status(row.status, row.starts, row.ends, today),
        stored_status=row.status,
        spec=_spec_of(row),
        application_hash=row.application_hash,
        created_at=_as_utc(row.created_at) or utcnow(),
        submitted_at=_as_utc(row.submitted_at),
        decided_at=_as_utc(row.decided_at),
        decided_by=row.decided_by,
        decision_hash=row.decision_hash,
        revoked_at=_as_utc(row.revoked_at),
        revoke_reason=row.revoke_reason,
        transitions=tuple(
            Transition(
                t.from_status,
                t.to_status,
                t.actor,
                _as_utc(t.at) or utcnow(),
                t.reason,
                t.ledger_index,
            )
            for t in transitions or []
        ),
    )


def _check_people(session: Session, spec: UseSpec) -> None:
    user_in(session, spec.applicant)
    for name in spec.analysts:
        analyst = user_in(session, name)
        if analyst.role != "analyst":
            raise UseError(f"{name} is named as an analyst but has the role {analyst.role}")


def apply_use(
    spec: UseSpec, *, purposes: PurposePolicy, settings: Settings, today: date | None = None
) -> UseView:
    """Register a new application as a ``draft`` and return it with its new ``DU-`` id.

    Checks that the purpose exists and allows the output type, and that the applicant and
    analysts are staff users (analysts with the analyst role). Drafts are private and not logged.
    """
    purposes.check_use(spec.purpose, spec.output)
    today = today or uk_today()
    digest = application_hash(spec)
    grants = application_document(spec)["grants"]
    for attempt in range(3):
        try:
            with transaction(settings) as session:
                _check_people(session, spec)
                last = session.scalar(
                    select(func.max(DataUse.seq)).where(DataUse.year == today.year)
                )
                seq = int(last or 0) + 1
                if seq > 999_999:
                    raise UseError(f"the register is full for {today.year}")
                row = DataUse(
                    use_id=f"DU-{today.year}-{seq:03d}",
                    year=today.year,
                    seq=seq,
                    status="draft",
                    title=spec.title,
                    summary=spec.summary,
                    public_benefit=spec.public_benefit,
                    organisation=spec.organisation,
                    team=spec.team,
                    senior_responsible_owner=spec.senior_responsible_owner,
                    purpose=spec.purpose,
                    article_6=spec.legal_basis.article_6,
                    article_9=spec.legal_basis.article_9,
                    dpa_schedule_1=spec.legal_basis.dpa_schedule_1,
                    common_law=spec.legal_basis.common_law,
                    applicant=spec.applicant,
                    analysts_json=json.dumps(list(spec.analysts)),
                    grants_json=json.dumps(grants, sort_keys=True),
                    output=spec.output,
                    threshold=spec.disclosure.threshold,
                    rounding=spec.disclosure.rounding,
                    dp_epsilon=spec.dp_epsilon,
                    starts=spec.starts,
                    ends=spec.ends,
                    application_hash=digest,
                )
                session.add(row)
                session.flush()
                transition = UseTransition(
                    use_id=row.use_id, from_status=None, to_status="draft", actor=spec.applicant
                )
                session.add(transition)
                session.flush()
                return _view(row, today, [transition])
        except IntegrityError:
            # Two applications took the same number at once; the loser simply tries again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _locked(session: Session, use_id: str) -> DataUse:
    """The use row, locked for this transaction (a no-op UPDATE locks on both backends)."""
    result = session.execute(
        update(DataUse).where(DataUse.use_id == use_id).values(status=DataUse.status)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise UseError(f"no data use {use_id} in the register")
    row = session.scalar(
        select(DataUse).where(DataUse.use_id == use_id).execution_options(populate_existing=True)
    )
    assert row is not None
    return row


def _transitions(session: Session, use_id: str) -> list[UseTransition]:
    return list(
        session.scalars(
            select(UseTransition).where(UseTransition.use_id == use_id).order_by(UseTransition.id)
        )
    )


def _step(
    session: Session,
    row: DataUse,
    to_status: str,
    actor: str,
    entry: tuple[str, dict[str, Any]] | None,
    settings: Settings,
    reason: str | None = None,
) -> UseTransition:
    """Write the transition, then append its ledger entry (last, so a failure undoes all)."""
    transition = UseTransition(
        use_id=row.use_id,
        from_status=row.status,
        to_status=to_status,
        actor=actor,
        reason=reason,
        at=utcnow(),
    )
    row.status = to_status
    session.add(transition)
    session.flush()
    if entry is not None:
        transition.ledger_index = ledger.record(entry[0], entry[1], settings=settings)
        session.flush()
    return transition


def _state_error(row: DataUse, wanted: str, action: str, today: date) -> UseError:
    status = effective_status(row.status, row.starts, row.ends, today)
    return UseError(f"{row.use_id} is {status}; only a {wanted} use can be {action}")


def submit(use_id: str, user: str, *, settings: Settings, today: date | None = None) -> UseView:
    """Submit a draft for approval (the applicant only). Logged as ``use-submitted``."""
    today = today or uk_today()
    with transaction(settings) as session:
        row = _locked(session, use_id)
        actor = user_in(session, user)
        if row.status != "draft":
            raise _state_error(row, "draft", "submitted", today)
        if actor.name != row.applicant:
            raise UseError(f"only the applicant ({row.applicant}) can submit {use_id}")
        row.submitted_at = utcnow()
        _step(
            session,
            row,
            "submitted",
            actor.name,
            (
                "use-submitted",
                {
                    "use_id": use_id,
                    "purpose": row.purpose,
                    "application_hash": row.application_hash,
                },
            ),
            settings,
        )
        return _view(row, today, _transitions(session, use_id))


def _check_reviewer(session: Session, row: DataUse, user: str, action: str) -> str:
    reviewer = user_in(session, user)
    if reviewer.role != "ig":
        raise UseError(
            f"only an information-governance (ig) user can {action} a data use; "
            f"{reviewer.name} has the role {reviewer.role}"
        )
    if reviewer.name == row.applicant:
        raise UseError(f"{reviewer.name} applied for {row.use_id} and cannot also {action} it")
    if reviewer.name in json.loads(row.analysts_json):
        raise UseError(f"{reviewer.name} is an analyst on {row.use_id} and cannot {action} it")
    return reviewer.name


def approve(
    use_id: str,
    user: str,
    *,
    purposes: PurposePolicy,
    settings: Settings,
    today: date | None = None,
) -> UseView:
    """Approve a submitted use (an ``ig`` user, not the applicant or an analyst on it).

    Logged as ``use-approved`` with the decision's hash and the use's end date (``expires``).
    The purpose rules are checked again, in case the purposes changed since the application.
    """
    today = today or uk_today()
    with transaction(settings) as session:
        row = _locked(session, use_id)
        if row.status != "submitted":
            raise _state_error(row, "submitted", "approved", today)
        reviewer = _check_reviewer(session, row, user, "approve")
        purposes.check_use(row.purpose, row.output)
        if row.ends < today:
            raise UseError(f"{use_id} ended on {row.ends.isoformat()}; it cannot be approved now")
        decided = utcnow()
        decision = {
            "use_id": use_id,
            "application_hash": row.application_hash,
            "decision": "approved",
            "by": reviewer,
            "at": decided.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        row.decided_at, row.decided_by = decided, reviewer
        row.decision_hash = _sha256_json(decision)
        _step(
            session,
            row,
            "approved",
            reviewer,
            (
                "use-approved",
                {
                    "use_id": use_id,
                    "decision_hash": row.decision_hash,
                    "expires": row.ends.isoformat(),
                },
            ),
            settings,
        )
        return _view(row, today, _transitions(session, use_id))


def reject(use_id: str, user: str, *, settings: Settings, today: date | None = None) -> UseView:
    """Reject a submitted use (an ``ig`` user, not the applicant or an analyst on it).

    The rejection is public (a ``use-rejected`` entry); its reasons stay in the register.
    """
    today = today or uk_today()
    with transaction(settings) as session:
        row = _locked(session, use_id)
        if row.status != "submitted":
            raise _state_error(row, "submitted", "rejected", today)
        reviewer = _check_reviewer(session, row, user, "reject")
        decided = utcnow()
        row.decided_at, row.decided_by = decided, reviewer
        row.decision_hash = _sha256_json(
            {
                "use_id": use_id,
                "application_hash": row.application_hash,
                "decision": "rejected",
                "by": reviewer,
                "at": decided.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
        entry = ("use-rejected", {"use_id": use_id, "decision_hash": row.decision_hash})
        _step(session, row, "rejected", reviewer, entry, settings)
        return _view(row, today, _transitions(session, use_id))


def revoke(
    use_id: str,
    user: str,
    *,
    reason: str = "withdrawn",
    settings: Settings,
    today: date | None = None,
) -> UseView:
    """Revoke an approved use (started or not, not yet expired). Logged as ``use-revoked``.

    An ``ig`` or ``admin`` user may revoke for any reason; the applicant may withdraw their own.
    """
    if reason not in REVOKE_REASONS:
        raise UseError(f"reason must be one of {', '.join(REVOKE_REASONS)}, not {reason!r}")
    today = today or uk_today()
    with transaction(settings) as session:
        row = _locked(session, use_id)
        status = effective_status(row.status, row.starts, row.ends, today)
        if status not in ("approved", "active"):
            raise UseError(f"{use_id} is {status}; only an approved or active use can be revoked")
        actor = user_in(session, user)
        allowed = actor.role in ("ig", "admin") or (
            actor.name == row.applicant and reason == "withdrawn"
        )
        if not allowed:
            raise UseError(
                f"{actor.name} cannot revoke {use_id}: it takes an ig or admin user "
                "(the applicant may only withdraw it, with reason withdrawn)"
            )
        row.revoked_at, row.revoked_by, row.revoke_reason = utcnow(), actor.name, reason
        _step(
            session,
            row,
            "revoked",
            actor.name,
            ("use-revoked", {"use_id": use_id, "reason": reason}),
            settings,
            reason=reason,
        )
        return _view(row, today, _transitions(session, use_id))


def get_use(use_id: str, *, settings: Settings, today: date | None = None) -> UseView:
    """A data use with its transitions, or a :class:`UseError` if there is none."""
    today = today or uk_today()
    with transaction(settings) as session:
        row = session.scalar(select(DataUse).where(DataUse.use_id == use_id))
        if row is None:
            raise UseError(f"no data use {use_id} in the register")
        return _view(row, today, _transitions(session, use_id))


def list_uses(
    *, settings: Settings, today: date | None = None, include_drafts: bool = True
) -> list[UseView]:
    """Every data use, oldest first (without transitions)."""
    today = today or uk_today()
    with transaction(settings) as session:
        query = select(DataUse).order_by(DataUse.year, DataUse.seq)
        if not include_drafts:
            query = query.where(DataUse.status != "draft")
        return [_view(row, today) for row in session.scalars(query)]


@dataclass(frozen=True)
class ActiveUse:
    """What the gate needs about a use it may run a query under, for one user."""

    use_id: str
    user: str
    purpose: str
    grants: Mapping[str, tuple[str, ...] | Literal["*"]]
    """Source -> granted columns, or ``"*"`` for every column of the source."""
    output: Literal["aggregate", "record-level"]
    threshold: int
    rounding: int
    dp_epsilon: float | None
    """The use's total differential-privacy budget; None means SDC (no DP)."""
    starts: date
    ends: date
    application_hash: str
    decision_hash: str

    def columns(self, source: str) -> tuple[str, ...] | Literal["*"] | None:
        """The columns granted for ``source`` (``"*"`` for all), or None if not granted."""
        return self.grants.get(source)


def authorise(
    use_id: str, user: str, *, at: datetime | None = None, settings: Settings
) -> ActiveUse:
    """Check that ``user`` may query under ``use_id`` at ``at`` (default now), and say how.

    Raises :class:`UseError` (a CandourError) when the use is unknown, not approved, not yet
    started, expired, revoked or rejected, or when the user is unknown, deactivated, no longer
    an analyst, or not named on the use. One indexed read; no writes.
    """
    today = uk_today(at)
    with transaction(settings) as session:
        row = session.scalar(select(DataUse).where(DataUse.use_id == use_id))
        if row is None:
            raise UseError(f"no data use {use_id} in the register")
        status = effective_status(row.status, row.starts, row.ends, today)
        if status != "active":
            raise UseError(_why_not_active(row, status))
        person = user_in(session, user)
        analysts = json.loads(row.analysts_json)
        if person.name not in analysts:
            raise UseError(f"{person.name} is not named as an analyst on {use_id}")
        if person.role != "analyst":
            raise UseError(f"{person.name} has the role {person.role}, not analyst")
        grants_raw: dict[str, Any] = json.loads(row.grants_json)
        assert row.decision_hash is not None
        return ActiveUse(
            use_id=row.use_id,
            user=person.name,
            purpose=row.purpose,
            grants={
                s: ALL_COLUMNS if c == ALL_COLUMNS else tuple(c) for s, c in grants_raw.items()
            },
            output=row.output,  # type: ignore[arg-type]
            threshold=row.threshold,
            rounding=row.rounding,
            dp_epsilon=row.dp_epsilon,
            starts=row.starts,
            ends=row.ends,
            application_hash=row.application_hash,
            decision_hash=row.decision_hash,
        )


def _why_not_active(row: DataUse, status: str) -> str:
    if status == "approved":
        return f"{row.use_id} is approved but starts on {row.starts.isoformat()}"
    if status == "expired":
        return f"{row.use_id} expired on {row.ends.isoformat()}"
    if status == "revoked":
        return f"{row.use_id} was revoked ({row.revoke_reason})"
    if status == "rejected":
        return f"{row.use_id} was rejected"
    return f"{row.use_id} is {status}, not approved"
