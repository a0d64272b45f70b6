"""Stable person ids: record_key -> person_id, kept across runs whenever a cluster is unchanged.

The rule (docs/linkage.md): a new cluster keeps the old person id ``p`` exactly when its
previously-indexed records all belonged to ``p`` and every still-present record of ``p`` is in
this cluster. It may have gained records never seen before (a new batch) or lost records no
longer ingested. Every other cluster that holds previously-indexed records gets a fresh id,
and the change is recorded: a *merge* (several old ids -> one new id), a *split* (one old id
-> several new ids), or both. A person all of whose records are gone is *retired*.

``person_id`` is ``P-`` and 12 random base32 characters (60 bits): opaque, unguessable and
unrelated to the records. ``person_num`` is a dense unsigned 32-bit number for bitmaps; a kept
person keeps it, a new person gets the next unused one, and a number is never reused, so a
cohort bitmap saved earlier cannot silently come to mean someone else.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
PERSON_ID_LENGTH = 12
MAX_PERSON_NUM = 2**32 - 1


def new_person_id() -> str:
    """A fresh random person id, ``P-`` + 12 base32 characters."""
    return "P-" + "".join(secrets.choice(_BASE32) for _ in range(PERSON_ID_LENGTH))


@dataclass(frozen=True)
class Change:
    """A merge, split or retirement of person ids."""

    kind: str  # merge | split | merge+split | retire
    old_ids: tuple[str, ...]
    new_ids: tuple[str, ...]
    reason: str


@dataclass
class Assignment:
    """The person index a run produces, and how it differs from the previous one."""

    index: dict[str, str]  # record_key -> person_id
    numbers: dict[str, int]  # person_id -> person_num, for every current person
    issued: dict[str, int] = field(default_factory=dict)  # new person ids and their numbers
    changes: list[Change] = field(default_factory=list)
    kept: int = 0
    retired: list[str] = field(default_factory=list)

    @property
    def merges(self) -> int:
        """Changes that joined several old persons."""
        return sum(1 for c in self.changes if c.kind in ("merge", "merge+split"))

    @property
    def splits(self) -> int:
        """Changes that divided an old person."""
        return sum(1 for c in self.changes if c.kind in ("split", "merge+split"))


def assign(
    clusters: Mapping[str, str],
    previous: Mapping[str, str],
    previous_numbers: Mapping[str, int],
    *,
    next_number: int,
    reason: str,
    taken: Callable[[str], bool] = lambda _id: False,
    make_id: Callable[[], str] = new_person_id,
) -> Assignment:
    """Give every cluster a person id, keeping old ids for unchanged clusters.

    ``clusters`` maps each current record to a cluster label; ``previous`` is the last index;
    ``previous_numbers`` the numbers of the persons in it; ``next_number`` the first unused
    number; ``taken`` says whether an id was ever issued (ids are never reused).
    """
    members: dict[str, list[str]] = defaultdict(list)
    for record, label in clusters.items():
        members[label].append(record)
    # Where each old person's surviving records went.
    went: dict[str, set[str]] = defaultdict(set)
    for record, old in previous.items():
        found = clusters.get(record)
        if found is not None:
            went[old].add(found)

    index: dict[str, str] = {}
    numbers: dict[str, int] = {}
    issued: dict[str, int] = {}
    new_for_label: dict[str, str] = {}
    olds_of: dict[str, set[str]] = {}
    kept = 0
    number = next_number
    fresh_ids: set[str] = set()

    def fresh() -> str:
        while True:
            candidate = make_id()
            if candidate not in fresh_ids and candidate not in previous_numbers and not taken(
                candidate
            ):
                fresh_ids.add(candidate)
                return candidate

    for label in sorted(members):
        records = members[label]
        olds = {previous[r] for r in records if r in previous}
        olds_of[label] = olds
        if len(olds) == 1:
            (old,) = olds
            if went[old] == {label}:
                person = old
                numbers[person] = previous_numbers[old]
                kept += 1
                for r in records:
                    index[r] = person
                continue
        person = fresh()
        if number > MAX_PERSON_NUM:
            raise OverflowError("person numbers exhausted (2^32 persons)")
        numbers[person] = issued[person] = number
        number += 1
        new_for_label[label] = person
        for r in records:
            index[r] = person

    changes: list[Change] = []
    split_olds: dict[str, list[str]] = defaultdict(list)
    for label, person in sorted(new_for_label.items()):
        olds = olds_of[label]
        if not olds:
            continue  # a brand-new person: not a change to anyone
        if len(olds) > 1:
            kind = "merge+split" if any(len(went[o]) > 1 for o in olds) else "merge"
            changes.append(Change(kind, tuple(sorted(olds)), (person,), reason))
        else:
            split_olds[next(iter(olds))].append(person)
    for old, persons in sorted(split_olds.items()):
        changes.append(Change("split", (old,), tuple(sorted(persons)), reason))
    retired = sorted(set(previous.values()) - set(went))
    for old in retired:
        changes.append(Change("retire", (old,), (), "no records of this person remain"))
    return Assignment(
        index=index,
        numbers=numbers,
        issued=issued,
        changes=changes,
        kept=kept,
        retired=retired,
    )


def index_hash(index: Mapping[str, str]) -> str:
    """SHA-256 over the sorted ``record_key<TAB>person_id`` lines: the index's fingerprint."""
    digest = hashlib.sha256()
    for record in sorted(index):
        digest.update(f"{record}\t{index[record]}\n".encode())
    return digest.hexdigest()
