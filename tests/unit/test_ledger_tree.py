"""Tree maths: hashing, known roots, proof edge cases and 64-bit bounds."""

from __future__ import annotations

import hashlib

import pytest

from candour.ledger import tree

LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_hash_domain_separation() -> None:
    assert tree.leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert tree.node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()
    assert tree.EMPTY_ROOT == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("size", range(9))
def test_known_roots(size: int) -> None:
    assert tree.root_of_entries(LEAVES[:size]).hex() == ROOTS[size]
    mem = tree.MemoryTree([tree.leaf_hash(x) for x in LEAVES])
    assert mem.root(size).hex() == ROOTS[size]


def test_proof_generation_rejects_bad_arguments() -> None:
    mem = tree.MemoryTree([tree.leaf_hash(x) for x in LEAVES])
    with pytest.raises(tree.ProofError):
        tree.inclusion_proof(8, 8, mem.node)
    with pytest.raises(tree.ProofError):
        tree.consistency_proof(5, 4, mem.node)
    with pytest.raises(tree.ProofError):
        tree.inclusion_proof(-1, 8, mem.node)
    assert tree.consistency_proof(0, 8, mem.node) == []
    assert tree.consistency_proof(8, 8, mem.node) == []


def test_verification_bounds_are_unsigned_64_bit() -> None:
    leaf = tree.leaf_hash(b"")
    with pytest.raises(tree.ProofError):
        tree.verify_inclusion(2**64 - 1, 2**64, leaf, [], leaf)  # size above u64
    with pytest.raises(tree.ProofError):
        tree.verify_inclusion(2**64 - 1, 1, leaf, [], leaf)
    with pytest.raises(tree.ProofError):
        tree.verify_inclusion(0, 1, leaf[:31], [], leaf[:31])  # leaf hash must be 32 bytes


def test_single_leaf_tree_proofs() -> None:
    leaf = tree.leaf_hash(b"only")
    tree.verify_inclusion(0, 1, leaf, [], leaf)
    with pytest.raises(tree.ProofError):
        tree.verify_inclusion(0, 1, leaf, [leaf], leaf)
    with pytest.raises(tree.ProofError):
        tree.verify_consistency(0, 1, [], tree.EMPTY_ROOT, leaf)
