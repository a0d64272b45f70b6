"""Snapshots: the opted-out set of one purpose at one moment, with a content hash.

The gate takes a snapshot when a query starts, drops the rows of every person in it, and records
the snapshot's hash in the query's ledger entry. A snapshot of the present is read from the
materialised ``choice_optouts`` table (one indexed scan) and cached in this process until the
purpose's version counter moves, so repeated queries pay only one small read. A snapshot of a
past moment (``at=``) replays the history instead: for each ``(person, source)`` the latest
change recorded at or before ``at`` wins.

The content hash is SHA-256 over this UTF-8 text (documented in docs/trust-model.md)::

    candour/choices-snapshot/v1\\n
    purpose <purpose id>\\n
    <scope>\\t<person_id>\\n      one line per opt-out, sorted by (scope, person_id)

where ``scope`` is ``*`` for an opt-out of every source and the source's name otherwise. It
depends only on the set, never on the order changes were made or rows were read.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from threading import Lock
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from candour.choices.decisions import as_utc
from candour.choices.purposes import load_purposes
from candour.config import Settings
from candour.store import transaction
from candour.store.choices import ALL_SOURCES, ChoiceEvent, ChoiceOptOut, ChoiceVersion

HASH_HEADER = "candour/choices-snapshot/v1\n"
EVERY_SOURCE_SCOPE = "*"
_EMPTY_NUMS = np.zeros(0, dtype=np.uint32)


@dataclass(frozen=True, eq=False)
class ExcludedSet:
    """People excluded in one scope: sorted unique ``person_num`` (uint32) and ``person_id``."""

    person_nums: np.ndarray[Any, np.dtype[np.uint32]]
    person_ids: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.person_ids)

    def __contains__(self, person: object) -> bool:
        if isinstance(person, str):
            return person in self._ids
        if isinstance(person, int | np.integer):
            index = int(np.searchsorted(self.person_nums, person))
            return index < len(self.person_nums) and int(self.person_nums[index]) == int(person)
        return False

    @property
    def _ids(self) -> frozenset[str]:
        cached = self.__dict__.get("_id_set")
        if cached is None:
            cached = frozenset(self.person_ids)
            object.__setattr__(self, "_id_set", cached)
        return cached

    @classmethod
    def build(cls, pairs: Iterable[tuple[int, str]]) -> ExcludedSet:
        """From ``(person_num, person_id)`` pairs, in any order, with repeats."""
        unique = dict(pairs)
        if not unique:
            return cls(_EMPTY_NUMS, ())
        nums = np.fromiter(unique.keys(), dtype=np.uint32, count=len(unique))
        nums.sort()
        ids = tuple(sorted(unique.values()))
        nums.setflags(write=False)
        return cls(nums, ids)


@dataclass(frozen=True, eq=False)
class Snapshot:
    """The opted-out set of one purpose, as of one moment, and its content hash."""

    purpose: str
    version: int
    """How many changes to this purpose's choices the snapshot includes."""
    as_of: datetime | None
    """When the last included change was recorded (None when there has been none)."""
    content_hash: str
    everywhere: ExcludedSet
    """People opted out of the purpose for every source."""
    by_source: Mapping[str, ExcludedSet]
    """Per source: people opted out of the purpose for that source only."""
    opt_outs_apply: bool = True
    """False for a purpose residents cannot opt out of: the sets are then empty by rule."""
    _union: dict[str, ExcludedSet] = field(default_factory=dict, repr=False)

    def excluded(self, source: str) -> ExcludedSet:
        """Everyone whose rows of ``source`` must be dropped: everywhere plus that source's."""
        cached = self._union.get(source)
        if cached is not None:
            return cached
        narrow = self.by_source.get(source)
        result = self.everywhere if not narrow else _merge(self.everywhere, narrow)
        self._union[source] = result
        return result

    @property
    def person_count(self) -> int:
        """How many distinct people are excluded in at least one scope."""
        ids = set(self.everywhere.person_ids)
        for narrow in self.by_source.values():
            ids.update(narrow.person_ids)
        return len(ids)


def _merge(a: ExcludedSet, b: ExcludedSet) -> ExcludedSet:
    nums = np.union1d(a.person_nums, b.person_nums).astype(np.uint32)
    nums.setflags(write=False)
    ids = tuple(sorted(set(a.person_ids) | set(b.person_ids)))
    return ExcludedSet(nums, ids)


def content_hash(purpose: str, rows: Iterable[tuple[str, str]]) -> str:
    """The snapshot hash of ``(source or "", person_id)`` opt-outs (see the module docstring)."""
    lines = sorted(
        f"{source or EVERY_SOURCE_SCOPE}\t{person_id}\n" for source, person_id in set(rows)
    )
    digest = hashlib.sha256()
    digest.update(HASH_HEADER.encode())
    digest.update(f"purpose {purpose}\n".encode())
    digest.update("".join(lines).encode())
    return digest.hexdigest()


def _build(
    purpose: str,
    version: int,
    as_of: datetime | None,
    rows: list[tuple[str, int, str]],
    opt_outs_apply: bool,
) -> Snapshot:
    if not opt_outs_apply:
        # Opt-outs recorded while the purposes file still allowed them do not bind a purpose
        # that no longer does (e.g. a legal duty): the set is empty, and its hash says so.
        rows = []
    everywhere: list[tuple[int, str]] = []
    narrow: dict[str, list[tuple[int, str]]] = {}
    for source, num, pid in rows:
        if source == ALL_SOURCES:
            everywhere.append((int(num), pid))
        else:
            narrow.setdefault(source, []).append((int(num), pid))
    return Snapshot(
        purpose=purpose,
        version=version,
        as_of=as_utc(as_of) if as_of is not None else None,
        content_hash=content_hash(purpose, ((s, p) for s, _, p in rows)),
        everywhere=ExcludedSet.build(everywhere),
        by_source={s: ExcludedSet.build(v) for s, v in sorted(narrow.items())},
        opt_outs_apply=opt_outs_apply,
    )


_CACHE: OrderedDict[tuple[str, str, int], Snapshot] = OrderedDict()
_CACHE_LOCK = Lock()
_CACHE_SIZE = 16


def _version(session: Session, purpose: str) -> tuple[int, datetime | None]:
    row = session.get(ChoiceVersion, purpose, populate_existing=True)
    return (int(row.version), row.changed_at) if row is not None else (0, None)


def snapshot(purpose: str, at: datetime | None = None, *, settings: Settings) -> Snapshot:
    """The opted-out set of ``purpose`` now (``at=None``) or as it stood at ``at``.

    "Now" means every change committed before this call: a query that takes its snapshot when
    it starts honours every change recorded before it started. Raises a ``PurposeError`` for an
    unknown purpose. A naive ``at`` is taken as UTC.
    """
    policy = load_purposes(settings).get(purpose)
    if at is not None:
        return _replay(purpose, as_utc(at), policy.opt_out, settings)
    url = settings.store_url
    for _ in range(5):
        with transaction(settings) as session:
            version, changed_at = _version(session, purpose)
            key = (url, purpose, version)
            with _CACHE_LOCK:
                cached = _CACHE.get(key)
                if cached is not None:
                    _CACHE.move_to_end(key)
                    return cached
            # Core, not ORM, execution: this is the gate's hot path and rows need no objects.
            rows = [
                (s, int(n), p)
                for s, n, p in session.connection().execute(
                    select(
                        ChoiceOptOut.source, ChoiceOptOut.person_num, ChoiceOptOut.person_id
                    ).where(ChoiceOptOut.purpose == purpose)
                )
            ]
            # PostgreSQL reads each statement at its own moment (READ COMMITTED): if a change
            # committed between the two reads, the rows and version disagree, so read again.
            again, _ = _version(session, purpose)
        if again == version:
            built = _build(purpose, version, changed_at, rows, policy.opt_out)
            with _CACHE_LOCK:
                _CACHE[key] = built
                while len(_CACHE) > _CACHE_SIZE:
                    _CACHE.popitem(last=False)
            return built
    raise RuntimeError(f"choices for {purpose} kept changing while a snapshot was read")


def _replay(purpose: str, at: datetime, opt_outs_apply: bool, settings: Settings) -> Snapshot:
    last = (
        select(func.max(ChoiceEvent.id).label("id"))
        .where(ChoiceEvent.purpose == purpose)
        .where(ChoiceEvent.recorded_at <= at)
        .group_by(ChoiceEvent.person_num, ChoiceEvent.source)
        .subquery()
    )
    with transaction(settings) as session:
        rows = [
            (s, int(n), p)
            for s, n, p in session.execute(
                select(ChoiceEvent.source, ChoiceEvent.person_num, ChoiceEvent.person_id)
                .join(last, ChoiceEvent.id == last.c.id)
                .where(ChoiceEvent.decision == "opt-out")
            )
        ]
        version, as_of = session.execute(
            select(func.count(ChoiceEvent.id), func.max(ChoiceEvent.recorded_at))
            .where(ChoiceEvent.purpose == purpose)
            .where(ChoiceEvent.recorded_at <= at)
        ).one()
    return _build(purpose, int(version or 0), as_of, rows, opt_outs_apply)


def opted_out(
    purpose: str,
    person_id: str,
    *,
    source: str | None = None,
    at: datetime | None = None,
    settings: Settings,
) -> bool:
    """Whether ``person_id``'s rows are excluded from ``purpose`` (for ``source``, if given).

    Without ``source``: opted out for every source. With it: opted out for every source or for
    that one. ``at=None`` means now; otherwise the choices in force at ``at``.
    """
    load_purposes(settings).get(purpose)
    scopes = [ALL_SOURCES] if source is None else [ALL_SOURCES, source]
    with transaction(settings) as session:
        if at is None:
            found = session.scalar(
                select(func.count())
                .select_from(ChoiceOptOut)
                .where(ChoiceOptOut.purpose == purpose)
                .where(ChoiceOptOut.person_id == person_id)
                .where(ChoiceOptOut.source.in_(scopes))
            )
            return bool(found)
        moment = as_utc(at)
        for scope in scopes:
            decision = session.scalar(
                select(ChoiceEvent.decision)
                .where(ChoiceEvent.purpose == purpose)
                .where(ChoiceEvent.person_id == person_id)
                .where(ChoiceEvent.source == scope)
                .where(ChoiceEvent.recorded_at <= moment)
                .order_by(ChoiceEvent.id.desc())
                .limit(1)
            )
            if decision == "opt-out":
                return True
        return False


def clear_cache() -> None:
    """Forget cached snapshots (tests; after restoring a store from backup)."""
    with _CACHE_LOCK:
        _CACHE.clear()
