"""Roots and proofs against a naive, literal transcription of RFC 9162's recursive definitions."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from candour.ledger import tiles, tree
from candour.ledger.log import Edge, TileReader


def ref_mth(d: list[bytes]) -> bytes:
    """MTH(D[n]) exactly as RFC 9162 2.1.1 writes it."""
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1 << ((n - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 2.1.3.1."""
    n = len(d)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 2.1.4.1."""
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def data(n: int) -> list[bytes]:
    return [i.to_bytes(4, "big") for i in range(n)]


DATA = data(300)
MEM = tree.MemoryTree([tree.leaf_hash(x) for x in DATA])
REF_ROOTS = [ref_mth(DATA[:n]) for n in range(301)]


def test_roots_for_every_size_up_to_300() -> None:
    for n in range(301):
        assert tree.root_of_entries(DATA[:n]) == REF_ROOTS[n]
        assert MEM.root(n) == REF_ROOTS[n]
    assert len(set(REF_ROOTS)) == 301


def test_inclusion_and_consistency_for_every_size_up_to_300() -> None:
    # Every size; every index for small trees and a spread of indices for the others.
    for n in range(1, 301):
        indices = range(n) if n <= 70 else sorted({0, 1, n // 3, n // 2, n - 2, n - 1})
        for m in indices:
            proof = tree.inclusion_proof(m, n, MEM.node)
            assert proof == ref_path(m, DATA[:n])
            tree.verify_inclusion(m, n, tree.leaf_hash(DATA[m]), proof, REF_ROOTS[n])
        for old in indices:
            if old == 0:
                continue
            proof = tree.consistency_proof(old, n, MEM.node)
            want = ref_subproof(old, DATA[:n], True) if old < n else []
            assert proof == want
            tree.verify_consistency(old, n, proof, REF_ROOTS[old], REF_ROOTS[n])


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_random_larger_trees(draw: st.DataObject) -> None:
    n = draw.draw(st.integers(301, 2000), label="size")
    d = data(n)
    mem = tree.MemoryTree([tree.leaf_hash(x) for x in d])
    want_root = ref_mth(d)
    assert mem.root() == want_root
    m = draw.draw(st.integers(0, n - 1), label="index")
    proof = tree.inclusion_proof(m, n, mem.node)
    assert proof == ref_path(m, d)
    tree.verify_inclusion(m, n, tree.leaf_hash(d[m]), proof, want_root)
    old = draw.draw(st.integers(1, n), label="old")
    cproof = tree.consistency_proof(old, n, mem.node)
    assert cproof == (ref_subproof(old, d, True) if old < n else [])
    tree.verify_consistency(old, n, cproof, ref_mth(d[:old]), want_root)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 600),
    m=st.integers(0, 599),
    flip=st.integers(0, 31),
    which=st.integers(0, 40),
)
def test_any_altered_inclusion_proof_fails(n: int, m: int, flip: int, which: int) -> None:
    m %= n
    proof = tree.inclusion_proof(m, n, MEM_600.node)
    leaf = tree.leaf_hash(DATA_600[m])
    root = MEM_600.root(n)
    if proof:
        i = which % len(proof)
        bad = bytearray(proof[i])
        bad[flip] ^= 1
        altered = [*proof[:i], bytes(bad), *proof[i + 1 :]]
        try:
            tree.verify_inclusion(m, n, leaf, altered, root)
        except tree.ProofError:
            pass
        else:
            raise AssertionError("altered proof verified")
    for wrong in ({m + 1, m - 1} - {m}) & set(range(n)):
        try:
            tree.verify_inclusion(wrong, n, leaf, proof, root)
        except tree.ProofError:
            continue
        raise AssertionError("proof verified at the wrong index")


DATA_600 = data(600)
MEM_600 = tree.MemoryTree([tree.leaf_hash(x) for x in DATA_600])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=6))
def test_tiled_edge_matches_reference(batches: list[int]) -> None:
    """Appending in any batch pattern gives tiles whose root and proofs match the reference."""
    files: dict[str, bytes] = {}
    edge = Edge()
    entries: list[bytes] = []
    for count in batches:
        batch = data(len(entries) + count)[len(entries) :]
        edge, written = edge.extend(batch)
        files.update(written)
        entries += batch
        assert edge.root() == ref_mth(entries)
    n = len(entries)
    reader = TileReader(files.get, n)
    assert tree.root(n, reader.node) == ref_mth(entries)
    for m in {0, n // 2, n - 1}:
        assert tree.inclusion_proof(m, n, reader.node) == ref_path(m, entries)
        assert reader.entry(m) == entries[m]
    # The layout matches tlog-tiles: exactly the full tiles and one partial per level.
    for level in range(tiles.levels_for(n)):
        for ref in tiles.tiles_for(n, level):
            assert ref.path in files
    loaded = Edge.load(files.get, n)
    assert loaded.root() == edge.root()
