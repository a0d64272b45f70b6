"""RFC 6962 / RFC 9162 Merkle tree maths: hashing, roots, and inclusion and consistency proofs.

Pure functions, no storage and no signing. Proof *generation* takes a ``node`` callback that
returns the hash of a perfect subtree, ``node(level, index)`` covering the leaves
``[index * 2**level, (index + 1) * 2**level)``, so the same code serves an in-memory tree, the
C2SP tiles on disk, or tiles fetched over HTTP. Proof *verification* follows RFC 9162 sections
2.1.3.2 and 2.1.4.2 step by step, and treats every size and index as an unsigned 64-bit integer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
MAX_U64 = (1 << 64) - 1
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeFn = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof, or the arguments it was checked against, is invalid."""


def leaf_hash(entry: bytes) -> bytes:
    """RFC 6962 leaf hash: ``SHA-256(0x00 || entry)``."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _check_u64(name: str, value: int) -> None:
    if not 0 <= value <= MAX_U64:
        raise ProofError(f"{name} {value} is not an unsigned 64-bit integer")


def _split(n: int) -> int:
    """The largest power of two strictly less than ``n`` (``n`` >= 2), as RFC 9162 splits."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_hashes(hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of a sequence of already-hashed leaves (``MTH`` of RFC 9162).

    Works bottom-up, pairing neighbours and carrying an odd last hash upwards, which gives the
    same tree as RFC 9162's recursive split on the largest power of two.
    """
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    sha = hashlib.sha256
    while len(level) > 1:
        nxt = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def root_of_entries(entries: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of raw entries."""
    return root_from_hashes([leaf_hash(e) for e in entries])


def range_hash(lo: int, hi: int, node: NodeFn) -> bytes:
    """``MTH(D[lo:hi])`` for a range that RFC 9162's recursion produces.

    Such a range starts at a multiple of the next power of two above its length, so it is the
    right fold of the perfect subtrees given by the binary digits of its length.
    """
    n = hi - lo
    if n <= 0:
        return EMPTY_ROOT
    parts: list[bytes] = []
    pos = lo
    for level in range(n.bit_length() - 1, -1, -1):
        if n >> level & 1:
            parts.append(node(level, pos >> level))
            pos += 1 << level
    acc = parts[-1]
    for h in reversed(parts[:-1]):
        acc = node_hash(h, acc)
    return acc


def root(size: int, node: NodeFn) -> bytes:
    """The root of the tree of ``size`` leaves."""
    return range_hash(0, size, node)


def inclusion_proof(index: int, size: int, node: NodeFn) -> list[bytes]:
    """The RFC 9162 inclusion proof (audit path) for leaf ``index`` in a tree of ``size``."""
    _check_u64("index", index)
    _check_u64("size", size)
    if index >= size:
        raise ProofError(f"index {index} is not below tree size {size}")
    proof: list[bytes] = []
    lo, hi, m = 0, size, index
    # PATH(m, D[lo:hi]) of RFC 9162 2.1.3.1, unrolled; siblings are collected root-first.
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            proof.append(range_hash(lo + k, hi, node))
            hi = lo + k
        else:
            proof.append(range_hash(lo, lo + k, node))
            lo, m = lo + k, m - k
    proof.reverse()
    return proof


def consistency_proof(old_size: int, new_size: int, node: NodeFn) -> list[bytes]:
    """The RFC 9162 consistency proof between tree sizes ``old_size`` and ``new_size``."""
    _check_u64("old size", old_size)
    _check_u64("new size", new_size)
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is above new size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    proof: list[bytes] = []
    lo, hi, m, complete = 0, new_size, old_size, True
    # SUBPROOF(m, D[lo:hi], b) of RFC 9162 2.1.4.1, unrolled.
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                proof.append(range_hash(lo, hi, node))
            break
        k = _split(n)
        if m <= k:
            proof.append(range_hash(lo + k, hi, node))
            hi = lo + k
        else:
            proof.append(range_hash(lo, lo + k, node))
            lo, m, complete = lo + k, m - k, False
    proof.reverse()
    return proof


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{name} is {len(value)} bytes, not {HASH_SIZE}")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 2.1.3.2 steps 1 to 5)."""
    _check_u64("index", index)
    _check_u64("size", size)
    _check_hash("leaf hash", leaf)
    if index >= size:
        raise ProofError(f"index {index} is not below tree size {size}")
    fn, sn = index, size - 1
    r = leaf
    for i, p in enumerate(proof):
        _check_hash(f"proof hash {i}", p)
        if sn == 0:
            raise ProofError("proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is shorter than the path to the root")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes
) -> None:
    """Check an inclusion proof; raise :class:`ProofError` unless it proves ``leaf``."""
    if root_from_inclusion_proof(index, size, leaf, proof) != root_hash:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    old_size: int,
    new_size: int,
    proof: Sequence[bytes],
    old_root: bytes,
    new_root: bytes,
) -> None:
    """Check a consistency proof (RFC 9162 2.1.4.2); raise :class:`ProofError` if it fails."""
    _check_u64("old size", old_size)
    _check_u64("new size", new_size)
    if new_size < old_size:
        raise ProofError(f"new size {new_size} is below old size {old_size}")
    if old_size == 0:
        # Every tree extends the empty tree, so such a proof proves nothing; refuse it.
        raise ProofError("a consistency proof from the empty tree is meaningless")
    if old_size == new_size:
        if proof:
            raise ProofError("sizes are equal but the proof is not empty")
        if old_root != new_root:
            raise ProofError("sizes are equal but the roots differ")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    for i, p in enumerate(proof):
        _check_hash(f"proof hash {i}", p)
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("proof is longer than needed")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is shorter than needed")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")


class MemoryTree:
    """A whole tree held in memory: for tests, small tools and reference checks."""

    def __init__(self, leaf_hashes: Sequence[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [list(leaf_hashes)]
        self._rebuild()

    def _rebuild(self) -> None:
        levels = [self._levels[0]]
        while len(levels[-1]) > 1:
            below = levels[-1]
            levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
        self._levels = levels

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash."""
        self._levels[0].append(leaf)
        self._rebuild()

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def node(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree at ``level`` and ``index``."""
        return self._levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        """Root at ``size`` (default: the whole tree)."""
        return root(self.size if size is None else size, self.node)
