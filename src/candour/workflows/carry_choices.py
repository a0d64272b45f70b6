"""Carry residents' opt-outs across the person-id changes of a link run.

Choices are keyed by ``person_id`` (and ``person_num``). When a link run merges several
persons into one, or splits one into several, the old ids are retired and their opt-outs would
no longer match anyone in the person index: the resident's "no" would silently stop applying.
This workflow re-keys them:

* a **merge** (old ids -> one new id): the new id carries every opt-out of every old id;
* a **split** (one old id -> new ids): each new id carries every opt-out of the old id;
* a merge and split together: each new id carries the opt-outs of all the old ids it came from;
* a **retirement** (no records left) has nobody to carry to, and is only counted.

Each carried opt-out is a new, append-only history row (channel ``linkage``, actor
``linkage run <run id>``) with its own public ``choice-change`` ledger entry about the new id,
exactly like any other recorded choice. Opt-outs are never dropped: when merged persons
disagree, the opt-out wins, because honouring a resident's "no" matters more than the linkage
error that may lie behind the merge. The old ids' rows are left as they were (history).

It is idempotent: an opt-out already in force for the new id is skipped, so applying a run's
changes twice changes nothing. Run it inside the link run's own store transaction (``link``'s
``after_index`` hook, which is what ``candour link`` does), so the new person index and the
carried choices commit together and no query can run in between; or afterwards, in a
transaction of its own, with :func:`carry_choices` and the run id.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from candour import ledger
from candour.config import Settings
from candour.errors import CandourError
from candour.home import Home, read_secret
from candour.linkage.runs import RunResult, link
from candour.store import transaction
from candour.store.choices import ALL_SOURCES, ChoiceEvent, ChoiceOptOut, ChoiceVersion
from candour.store.linkage import LinkRun, PersonChange, PersonNumber
from candour.store.models import utcnow

CHANNEL = "linkage"
_CHUNK = 500


class CarryChoicesError(CandourError):
    """The choices of a link run's person-id changes cannot be carried over."""


@dataclass
class CarryReport:
    """What carrying a run's changes did."""

    run_id: str
    changes: int = 0
    """Merges and splits read from the run (retirements excluded)."""
    retired: int = 0
    """Old ids retired with no successor (their opt-outs have no one to apply to)."""
    carried: int = 0
    """Opt-outs newly put in force for a new id (one history row and ledger entry each)."""
    already: int = 0
    """Opt-outs the new id already had (e.g. a second application): nothing recorded."""
    persons: set[str] = field(default_factory=set)
    """New ids that received at least one opt-out."""


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _successors(session: Session, run_id: str, report: CarryReport) -> dict[str, set[str]]:
    """New id -> the old ids it came from, from the run's recorded changes."""
    came_from: dict[str, set[str]] = defaultdict(set)
    rows = session.scalars(
        select(PersonChange).where(PersonChange.run_id == run_id).order_by(PersonChange.id)
    )
    for row in rows:
        old_ids, new_ids = json.loads(row.old_ids), json.loads(row.new_ids)
        if not new_ids:
            report.retired += len(old_ids)
            continue
        report.changes += 1
        for new in new_ids:
            came_from[new].update(old_ids)
    return came_from


def _in_chunks(items: Iterable[str]) -> Iterable[list[str]]:
    ordered = sorted(set(items))
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def carry_in_session(session: Session, settings: Settings, run_id: str) -> CarryReport:
    """Carry the opt-outs of ``run_id``'s merges and splits, inside ``session``'s transaction.

    The caller commits (or rolls back): used as ``link(..., after_index=...)`` so the person
    index and the carried choices are one transaction. See the module docstring.
    """
    report = CarryReport(run_id=run_id)
    if session.scalar(select(LinkRun.id).where(LinkRun.run_id == run_id)) is None:
        raise CarryChoicesError(f"no link run {run_id}; see `candour link history`")
    came_from = _successors(session, run_id, report)
    if not came_from:
        return report
    olds = {old for group in came_from.values() for old in group}
    held: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for chunk in _in_chunks(olds):
        for person_id, purpose, source in session.execute(
            select(ChoiceOptOut.person_id, ChoiceOptOut.purpose, ChoiceOptOut.source).where(
                ChoiceOptOut.person_id.in_(chunk)
            )
        ):
            held[person_id].add((purpose, source))
    wanted: dict[str, set[tuple[str, str]]] = {}
    for new, group in came_from.items():
        outs = set().union(*(held.get(old, set()) for old in group))
        if outs:
            wanted[new] = outs
    if not wanted:
        return report

    numbers: dict[str, int] = {}
    for chunk in _in_chunks(wanted):
        for person_id, number, retired in session.execute(
            select(PersonNumber.person_id, PersonNumber.person_num, PersonNumber.retired_run)
            .where(PersonNumber.person_id.in_(chunk))
        ):
            if retired is None:
                numbers[person_id] = int(number)
    missing = sorted(set(wanted) - set(numbers))
    if missing:
        raise CarryChoicesError(
            f"run {run_id} names {len(missing)} new person id(s) that are not current "
            f"(e.g. {missing[0]}); has a later run replaced them?"
        )

    purposes = sorted({purpose for outs in wanted.values() for purpose, _source in outs})
    # Lock the purposes' version rows first, as every choice change does, so changes to one
    # purpose are serialised and the in-force check below sees every earlier commit.
    session.execute(
        update(ChoiceVersion)
        .where(ChoiceVersion.purpose.in_(purposes))
        .values(version=ChoiceVersion.version + 0)
    )
    versions = {
        v.purpose: v
        for v in session.scalars(select(ChoiceVersion).where(ChoiceVersion.purpose.in_(purposes)))
    }
    for purpose in purposes:
        if purpose not in versions:
            versions[purpose] = ChoiceVersion(purpose=purpose, version=0, changed_at=None)
            session.add(versions[purpose])
    in_force: set[tuple[str, str, int]] = set()
    for chunk in _in_chunks(wanted):
        nums = [numbers[p] for p in chunk]
        in_force.update(
            (purpose, source, int(num))
            for purpose, source, num in session.execute(
                select(ChoiceOptOut.purpose, ChoiceOptOut.source, ChoiceOptOut.person_num).where(
                    ChoiceOptOut.person_num.in_(nums)
                )
            )
        )

    now = utcnow()
    stamp = {
        purpose: max(now, _as_utc(v.changed_at)) if v.changed_at is not None else now
        for purpose, v in versions.items()
    }
    hmac_key = read_secret(Home(settings.home).hmac_key)
    actor = f"linkage run {run_id}"
    rows: list[ChoiceEvent] = []
    entries: list[tuple[str, dict[str, str]]] = []
    for new in sorted(wanted):
        secret = ledger.person_key(hmac_key, new)
        for purpose, source in sorted(wanted[new]):
            if (purpose, source, numbers[new]) in in_force:
                report.already += 1
                continue
            fields = ledger.person_fields(secret)
            payload = {"purpose": purpose, "choice": "opt-out", **fields}
            if source != ALL_SOURCES:
                # As for any narrowed choice, the log names the source it is narrowed to.
                payload["source"] = source
            entries.append(("choice-change", payload))
            rows.append(
                ChoiceEvent(
                    person_id=new,
                    person_num=numbers[new],
                    purpose=purpose,
                    source=source,
                    decision="opt-out",
                    channel=CHANNEL,
                    actor=actor,
                    recorded_at=stamp[purpose],
                    ledger_nonce=fields["nonce"],
                )
            )
            report.persons.add(new)
    if not rows:
        return report
    session.add_all(rows)
    session.flush()
    session.execute(
        insert(ChoiceOptOut),
        [
            {
                "purpose": r.purpose,
                "source": r.source,
                "person_num": r.person_num,
                "person_id": r.person_id,
                "event_id": r.id,
            }
            for r in rows
        ],
    )
    for purpose in purposes:
        count = sum(1 for r in rows if r.purpose == purpose)
        if count:
            versions[purpose].version += count
            versions[purpose].changed_at = stamp[purpose]
    session.flush()
    # The ledger append is the last fallible step: if it fails, the caller's transaction rolls
    # back, and no carried opt-out exists without its public entry.
    indices = ledger.record_many(entries, settings=settings)
    session.execute(
        update(ChoiceEvent),
        [{"id": r.id, "ledger_index": i} for r, i in zip(rows, indices, strict=True)],
    )
    report.carried = len(rows)
    return report


def carry_choices(settings: Settings, run_id: str) -> CarryReport:
    """Carry the opt-outs across ``run_id``'s merges and splits, in a transaction of its own.

    For a run whose changes were not carried inside the run itself (e.g. linked by an older
    version, or through the API without the hook). Safe to repeat.
    """
    with transaction(settings) as session:
        return carry_in_session(session, settings, run_id)


def link_carrying_choices(
    settings: Settings, **options: Any
) -> tuple[RunResult, CarryReport | None]:
    """Run :func:`candour.linkage.runs.link` so residents' choices follow merges and splits.

    The carry-over runs inside the link run's own transaction, so the new person index and the
    carried opt-outs commit together and no query sees one without the other. ``options`` are
    passed to ``link`` (engine, settings_file, retrain, progress, ...).
    """
    carried: list[CarryReport] = []

    def carry(session: Session, run_id: str) -> None:
        carried.append(carry_in_session(session, settings, run_id))

    result = link(settings, after_index=carry, **options)
    return result, (carried[0] if carried else None)
