"""Cohorts: the people whose rows a query read, kept privately as roaring bitmaps.

Each cohort is a :class:`pyroaring.BitMap` of ``person_num``. It is written once, to
``<home>/gate/cohorts/<query_id>.roaring`` (the portable roaring format, mode 0600), and its
SHA-256 goes into the query's public ledger entry. The bitmap itself is never published.

Finding every query that included one person must be fast (a resident's portal page), and
scanning every bitmap is not: 10,000 queries over a county are ~2 GB of bitmaps. So the gate
also keeps a transposed *lookup index*: queries are numbered by *slot*, 64 slots to a segment,
and segment ``s`` is one file of little-endian ``uint64`` words indexed by ``person_num``, bit
``j`` of person ``p``'s word set when the query in slot ``64*s + j`` included ``p``. A lookup
reads one 8-byte word per segment (157 reads for 10,000 queries), then the store rows of the
slots found. Writing a cohort sets its bits with one vectorised OR (tens of ms for a million
people) under a file lock.

Slots are allocated (durably) before their bits are written and never reused, so a query that
fails after allocating leaves bits under a slot that no stored query owns; lookups ignore such
slots. A crash can therefore waste a slot, never attribute one query's cohort to another.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock
from pyroaring import BitMap

from candour.home import Home

SEGMENT_BITS = 64
_NO_RUN_COOKIE = 12346
_ARRAY_MAX = 4096
_CHUNK = 1 << 16
_WORDS = _CHUNK // 64  # 64-bit words per roaring container
_DIR_MODE = 0o700
_FILE_MODE = 0o600

U32 = np.ndarray[Any, np.dtype[np.uint32]]


# -- building bitmaps fast -------------------------------------------------------------------


def from_mask(mask: np.ndarray[Any, np.dtype[np.bool_]]) -> BitMap:
    """The bitmap of the positions set in a boolean array (fast for millions of people)."""
    size = len(mask)
    padded = np.zeros(-(-size // _CHUNK) * _CHUNK, dtype=np.bool_)
    padded[:size] = mask
    words = np.packbits(padded, bitorder="little").view("<u8")
    return _from_dense_words(words)


def from_words(
    index: np.ndarray[Any, np.dtype[Any]], words: np.ndarray[Any, np.dtype[np.uint64]]
) -> BitMap:
    """The bitmap whose 64-bit word ``index[i]`` is ``words[i]`` (bit ``j`` of word ``w`` is
    person ``64*w + j``); each index at most once. This is how engines hand over a cohort:
    packed into words where the data is, so a county's cohort travels as ~23,000 numbers."""
    index = np.asarray(index, dtype=np.int64)
    if index.size == 0:
        return BitMap()
    if index.min() < 0 or index.max() >= (1 << 32) // SEGMENT_BITS:
        raise ValueError("person numbers must be unsigned 32-bit integers")
    size = -(-(int(index.max()) + 1) // _WORDS) * _WORDS
    dense = np.zeros(size, dtype="<u8")
    dense[index] = np.asarray(words, dtype=np.uint64)
    return _from_dense_words(dense)


def _from_dense_words(words: np.ndarray[Any, np.dtype[np.uint64]]) -> BitMap:
    """Builds the portable serialisation directly (bitset containers above 4,096 values, arrays
    below, as CRoaring does) and deserialises it: constructing a BitMap from a Python iterable
    costs ~100 ms per million values, this a few ms."""
    blocks = words.reshape(-1, _WORDS)
    counts = np.bitwise_count(blocks).sum(axis=1, dtype=np.int64)
    headers: list[tuple[int, int]] = []
    bodies: list[bytes] = []
    for key in np.flatnonzero(counts):
        cardinality = int(counts[key])
        block = blocks[key]
        if cardinality > _ARRAY_MAX:
            bodies.append(block.astype("<u8", copy=False).tobytes())
        else:
            bits = np.unpackbits(block.astype("<u8", copy=False).view(np.uint8), bitorder="little")
            bodies.append(np.flatnonzero(bits).astype("<u2").tobytes())
        headers.append((int(key), cardinality - 1))
    count = len(headers)
    head = struct.pack("<II", _NO_RUN_COOKIE, count)
    head += b"".join(struct.pack("<HH", k, c) for k, c in headers)
    offset = len(head) + 4 * count
    offsets = []
    for body in bodies:
        offsets.append(offset)
        offset += len(body)
    data = head + b"".join(struct.pack("<I", o) for o in offsets) + b"".join(bodies)
    return BitMap.deserialize(data)


def from_nums(nums: Iterable[int] | np.ndarray[Any, Any], size: int | None = None) -> BitMap:
    """The bitmap of some person numbers (any order, repeats allowed)."""
    array = np.asarray(nums if isinstance(nums, np.ndarray) else list(nums), dtype=np.int64)
    if array.size == 0:
        return BitMap()
    if array.min() < 0 or array.max() > 0xFFFFFFFF:
        raise ValueError("person numbers must be unsigned 32-bit integers")
    top = int(array.max()) + 1
    mask = np.zeros(max(top, size or 0), dtype=np.bool_)
    mask[array] = True
    return from_mask(mask)


def to_array(bitmap: BitMap) -> U32:
    """The bitmap's values as a sorted uint32 array."""
    return np.asarray(bitmap.to_array(), dtype=np.uint32)


def serialize(bitmap: BitMap) -> bytes:
    """The canonical portable serialisation, which the cohort hash is taken over.

    Run-optimised first: the same set can be serialised with different container choices
    depending on how it was built, and anyone re-deriving the hash must get the same bytes.
    """
    canonical = BitMap(bitmap)
    canonical.run_optimize()
    return bytes(canonical.serialize())


def sha256(bitmap: BitMap) -> str:
    """The hash that goes into the ledger: SHA-256 of the canonical serialisation."""
    return hashlib.sha256(serialize(bitmap)).hexdigest()


# -- storage -------------------------------------------------------------------------------


def gate_dir(home: Home) -> Path:
    """The gate's private folder in the data home."""
    return home.root / "gate"


class CohortStore:
    """Cohort files and the per-person lookup index of one data home."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.root = gate_dir(home)
        self.cohorts = self.root / "cohorts"
        self.lookup = self.root / "lookup"
        for folder in (self.root, self.cohorts, self.lookup):
            folder.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        self._lock = FileLock(str(self.lookup / ".lock"))

    # cohort files

    def write(self, query_id: str, bitmap: BitMap) -> tuple[Path, str]:
        """Write a cohort under a temporary name; return it and its hash. See :meth:`place`."""
        data = serialize(bitmap)
        tmp = self.cohorts / f".{query_id}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return tmp, hashlib.sha256(data).hexdigest()

    def place(self, tmp: Path, query_id: str) -> Path:
        """Give a written cohort its final name (when its query is committed)."""
        final = self.cohorts / f"{query_id}.roaring"
        tmp.replace(final)
        return final

    def path(self, query_id: str) -> Path:
        """Where a committed query's cohort is."""
        return self.cohorts / f"{query_id}.roaring"

    def read(self, query_id: str) -> BitMap:
        """A stored cohort."""
        return BitMap.deserialize(self.path(query_id).read_bytes())

    # the lookup index

    def _segment(self, segment: int) -> Path:
        return self.lookup / f"seg-{segment:08d}.u64"

    def _counter(self) -> Path:
        return self.lookup / "next-slot"

    def index_id(self) -> str:
        """A random id made with this lookup index: it names the index, not the path, so
        caches of what its slots mean are never carried over to a home rebuilt in place."""
        path = self.lookup / "index-id"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
        with self._lock:
            if not path.exists():
                tmp = self.lookup / ".index-id.tmp"
                tmp.write_text(secrets.token_hex(16))
                tmp.replace(path)
            return path.read_text().strip()

    def allocate(self) -> int:
        """A new slot, durably: a slot is never handed out twice, even after a crash."""
        with self._lock:
            return self._allocate()

    def _allocate(self) -> int:
        counter = self._counter()
        slot = int(counter.read_text()) if counter.exists() else 0
        tmp = counter.with_name(".next-slot.tmp")
        with open(tmp, "w") as handle:
            handle.write(str(slot + 1))
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(counter)
        return slot

    def mark(self, slot: int, bitmap: BitMap) -> None:
        """Set ``slot``'s bit for every person in ``bitmap``."""
        if len(bitmap) == 0:
            return
        segment, bit = divmod(slot, SEGMENT_BITS)
        nums = to_array(bitmap)
        words = int(nums[-1]) + 1
        with self._lock:
            path = self._segment(segment)
            if not path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, _FILE_MODE))
            if path.stat().st_size < words * 8:
                # Grow in whole 64Ki-person steps so that a growing county rarely regrows.
                with open(path, "r+b") as handle:
                    handle.truncate(-(-words // _CHUNK) * _CHUNK * 8)
            table = np.memmap(path, dtype="<u8", mode="r+")
            table[nums] |= np.uint64(1 << bit)
            table.flush()
            del table

    def unmark(self, slot: int, bitmap: BitMap) -> None:
        """Clear ``slot``'s bits again (when its query failed before it was committed)."""
        if len(bitmap) == 0:
            return
        segment, bit = divmod(slot, SEGMENT_BITS)
        path = self._segment(segment)
        with self._lock:
            if not path.exists():
                return
            table = np.memmap(path, dtype="<u8", mode="r+")
            nums = to_array(bitmap)
            nums = nums[nums < len(table)]
            table[nums] &= ~np.uint64(1 << bit)
            table.flush()
            del table

    def slots_of(self, person_num: int) -> list[int]:
        """Every slot whose cohort holds ``person_num`` (one 8-byte read per segment)."""
        slots: list[int] = []
        offset = person_num * 8
        for entry in sorted(os.scandir(self.lookup), key=lambda e: e.name):
            if not entry.name.startswith("seg-"):
                continue
            segment = int(entry.name[4:12])
            fd = os.open(entry.path, os.O_RDONLY)
            try:
                raw = os.pread(fd, 8, offset)
            finally:
                os.close(fd)
            if len(raw) < 8:
                continue
            word = int.from_bytes(raw, "little")
            while word:
                low = word & -word
                slots.append(segment * SEGMENT_BITS + low.bit_length() - 1)
                word ^= low
        return slots
