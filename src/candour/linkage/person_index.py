"""Stable person ids: record_key -> person_id, kept across runs whenever a cluster is unchanged.

The rule (docs/linkage.md): a cluster whose previously-indexed records all belonged to one old
person ``p``, and that holds every surviving record of ``p``, keeps ``p`` (it may have gained
records never seen before, or lost records no longer ingested). When clusters change, the
larger part survives: a merge keeps the id of the old person contributing most records, a
split leaves the id with the part holding most of the person's records. Every merge (old ids
-> the surviving id) and split (old id -> the ids of its parts) is recorded, and an old id that
survives nowhere is retired: ids never change silently, and never change needlessly.

``person_id`` is ``P-`` and 12 random base32 characters (60 bits): opaque, unguessable and
unrelated to the records. ``person_num`` is a dense unsigned 32-bit number for bitmaps; a kept
person keeps it, a new person gets the next unused one, and a number is never reused, so a
cohort bitmap saved earlier cannot silently come to mean someone else.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

PERSON_ID_LENGTH = 12
MAX_PERSON_NUM = 2**32 - 1


_BASE32 = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", np.uint8)  # RFC 4648
# Where each of an id's 12 characters sits in a random 64-bit word, most significant first.
_SHIFTS = np.arange(59, -1, -5, dtype=np.uint64)
_ID_BLOCK = 4096


def new_person_id() -> str:
    """A fresh random person id, ``P-`` + 12 base32 characters (60 random bits)."""
    # The first 12 characters of the base32 form of 8 random bytes are 60 uniformly random
    # bits; one system call per id rather than twelve.
    return "P-" + base64.b32encode(secrets.token_bytes(8)).decode()[:PERSON_ID_LENGTH]


def new_person_ids(count: int) -> list[str]:
    """``count`` fresh random person ids at once: the same as ``count`` calls of
    :func:`new_person_id` (the first 12 base32 characters of 8 random bytes each), from one
    system call and a few array steps rather than a base32 encoding per id (a first link run
    of a million records issues hundreds of thousands)."""
    words = np.frombuffer(secrets.token_bytes(8 * count), dtype=">u8")
    digits = ((words[:, None] >> _SHIFTS) & np.uint64(31)).astype(np.uint8)
    text = _BASE32[digits].tobytes().decode("ascii")
    return ["P-" + text[i : i + PERSON_ID_LENGTH] for i in range(0, len(text), PERSON_ID_LENGTH)]


def _id_blocks() -> Callable[[], str]:
    """A source of fresh ids that draws them :data:`_ID_BLOCK` at a time."""
    ready: list[str] = []

    def make() -> str:
        if not ready:
            ready.extend(new_person_ids(_ID_BLOCK))
        return ready.pop()

    return make


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
    """Old ids with no records left."""
    ended: list[str] = field(default_factory=list)
    """Every old id no longer in use: retired, or merged into another person."""

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
    make_id: Callable[[], str] | None = None,
) -> Assignment:
    """Give every cluster a person id, keeping old ids wherever a person survives.

    ``clusters`` maps each current record to a cluster label; ``previous`` is the last index;
    ``previous_numbers`` the numbers of the persons in it; ``next_number`` the first unused
    number; ``taken`` says whether an id was ever issued (ids are never reused); ``make_id``
    gives a fresh random id (by default drawn in blocks, see :func:`new_person_ids`).

    Survivorship (docs/linkage.md): an old person's *home* is the cluster holding most of its
    surviving records. A cluster keeps, among the old persons whose home it is, the one with
    the most records in it (ties: the older person, by number). So an unchanged cluster keeps
    its id; a merge keeps the id of the larger part and retires the others; a split leaves the
    id with the larger part and gives the other parts new ids. Each merge and split is
    recorded as a :class:`Change`; nothing changes silently.
    """
    # How many of each old person's surviving records each cluster holds. Plain dicts and one
    # pass each: this runs over every record of a county (a million and more).
    held: Counter[tuple[str, str]] = Counter(
        (old, clusters[record]) for record, old in previous.items() if record in clusters
    )
    best: dict[str, tuple[int, str]] = {}
    spread: dict[str, list[str]] = defaultdict(list)
    olds_of: dict[str, dict[str, int]] = defaultdict(dict)
    for (old, label), n in held.items():
        spread[old].append(label)
        olds_of[label][old] = n
        top = best.get(old)
        if top is None or n > top[0] or (n == top[0] and label < top[1]):
            best[old] = (n, label)
    home = {old: label for old, (_n, label) in best.items()}

    numbers: dict[str, int] = {}
    issued: dict[str, int] = {}
    id_of: dict[str, str] = {}
    kept = 0
    number = next_number
    fresh_ids: set[str] = set()
    draw = make_id or _id_blocks()

    def fresh() -> str:
        while True:
            candidate = draw()
            if candidate not in fresh_ids and candidate not in previous_numbers and not taken(
                candidate
            ):
                fresh_ids.add(candidate)
                return candidate

    for label in sorted(set(clusters.values())):
        olds = olds_of.get(label)
        homed = [old for old in olds if home[old] == label] if olds else []
        if homed:
            assert olds is not None
            person = min(homed, key=lambda old: (-olds[old], previous_numbers[old], old))
            numbers[person] = previous_numbers[person]
            kept += 1
        else:
            person = fresh()
            if number > MAX_PERSON_NUM:
                raise OverflowError("person numbers exhausted (2^32 persons)")
            numbers[person] = issued[person] = number
            number += 1
        id_of[label] = person
    index = {record: id_of[label] for record, label in clusters.items()}

    changes: list[Change] = []
    split = {old for old, counts in spread.items() if len(counts) > 1}
    for label in sorted(olds_of):
        joined = set(olds_of[label])
        if len(joined) > 1:
            kind = "merge+split" if joined & split else "merge"
            changes.append(Change(kind, tuple(sorted(joined)), (id_of[label],), reason))
    for old in sorted(split):
        into = tuple(sorted(id_of[label] for label in spread[old]))
        changes.append(Change("split", (old,), into, reason))
    retired = sorted(set(previous.values()) - set(spread))
    for old in retired:
        changes.append(Change("retire", (old,), (), "no records of this person remain"))
    return Assignment(
        index=index,
        numbers=numbers,
        issued=issued,
        changes=changes,
        kept=kept,
        retired=retired,
        ended=sorted(set(previous.values()) - set(numbers)),
    )


def index_hash(
    index: Mapping[str, str],
    ordered: Sequence[str] | None = None,
    persons: Sequence[str] | None = None,
) -> str:
    """SHA-256 over the sorted ``record_key<TAB>person_id`` lines: the index's fingerprint.

    ``ordered`` is ``sorted(index)`` and ``persons`` their person ids, when the caller has
    them already (a million keys take a second to sort).
    """
    keys = sorted(index) if ordered is None else ordered
    people = list(map(index.__getitem__, keys)) if persons is None else persons
    digest = hashlib.sha256()
    for start in range(0, len(keys), 100_000):
        chunk = keys[start : start + 100_000]
        # Interleaved into one list and joined once: four times faster than an f-string a line.
        lines: list[str] = [""] * (4 * len(chunk))
        lines[0::4] = chunk
        lines[1::4] = ["\t"] * len(chunk)
        lines[2::4] = people[start : start + 100_000]
        lines[3::4] = ["\n"] * len(chunk)
        digest.update("".join(lines).encode())
    return digest.hexdigest()
