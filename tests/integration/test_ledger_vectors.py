"""The ledger against test vectors written outside this project (../shared/vectors)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from candour.ledger import note, tree

VECTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors"


def _cases(kind: str) -> list[Path]:
    folder = VECTORS / "merkle" / kind
    if not folder.is_dir():  # fail loudly: a missing vector folder must never pass quietly
        raise FileNotFoundError(f"test vectors missing: {folder}")
    found = sorted(folder.rglob("*.json"))
    assert found, f"no vectors under {folder}"
    return found


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


INCLUSION = _cases("inclusion")
CONSISTENCY = _cases("consistency")


def test_vector_sets_are_complete() -> None:
    assert len(INCLUSION) > 60
    assert len(CONSISTENCY) > 60
    assert any(_load(p)["wantErr"] for p in INCLUSION)
    assert any(not _load(p)["wantErr"] for p in CONSISTENCY)


@pytest.mark.parametrize("path", INCLUSION, ids=lambda p: "/".join(p.parts[-2:]))
def test_inclusion_vector(path: Path) -> None:
    case = _load(path)
    args = (
        case["leafIdx"],
        case["treeSize"],
        _b64(case["leafHash"]),
        [_b64(p) for p in case["proof"] or []],
        _b64(case["root"]),
    )
    if case["wantErr"]:
        with pytest.raises(tree.ProofError):
            tree.verify_inclusion(*args)
    else:
        tree.verify_inclusion(*args)


@pytest.mark.parametrize("path", CONSISTENCY, ids=lambda p: "/".join(p.parts[-2:]))
def test_consistency_vector(path: Path) -> None:
    case = _load(path)
    args = (
        case["size1"],
        case["size2"],
        [_b64(p) for p in case["proof"] or []],
        _b64(case["root1"]),
        _b64(case["root2"]),
    )
    if case["wantErr"]:
        with pytest.raises(tree.ProofError):
            tree.verify_consistency(*args)
    else:
        tree.verify_consistency(*args)


def test_happy_path_proofs_are_the_ones_we_generate() -> None:
    # The README's eight leaves: the vectors' happy paths come from this tree.
    leaves = [
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
    mem = tree.MemoryTree([tree.leaf_hash(x) for x in leaves])
    checked = 0
    for path in INCLUSION:
        case = _load(path)
        if case["wantErr"] or case["treeSize"] > 8 or not case["proof"]:
            continue
        want = [_b64(p) for p in case["proof"]]
        assert tree.inclusion_proof(case["leafIdx"], case["treeSize"], mem.node) == want
        checked += 1
    for path in CONSISTENCY:
        case = _load(path)
        if case["wantErr"] or case["size2"] > 8 or not case["proof"]:
            continue
        want = [_b64(p) for p in case["proof"]]
        assert tree.consistency_proof(case["size1"], case["size2"], mem.node) == want
        checked += 1
    assert checked >= 5


NOTE = VECTORS / "note" / "vectors.json"


def _note() -> dict[str, Any]:
    if not NOTE.is_file():
        raise FileNotFoundError(f"test vectors missing: {NOTE}")
    return _load(NOTE)


def test_go_fixed_key_signature_is_byte_for_byte() -> None:
    case = _note()["go_sign"]
    signer = note.parse_skey(case["skey"])
    assert signer.verifier.vkey() == case["vkey"]
    assert signer.skey() == case["skey"]
    signed = note.sign(case["text"].encode(), [signer])
    assert signed == case["want"].encode()
    opened = note.open_note(signed, [note.parse_vkey(case["vkey"])])
    assert opened.text == case["text"].encode()


def test_c2sp_example_verifies_and_tampering_fails() -> None:
    case = _note()["c2sp_example"]
    verifier = note.parse_vkey(case["vkey"])
    message = case["note"].encode()
    assert note.open_note(message, [verifier]).text == b"This is an example message.\n"
    with pytest.raises(note.NoteError):
        note.open_note(message.replace(b"example", b"exemple", 1), [verifier])


@pytest.mark.parametrize("index", range(2))
def test_malformed_verifier_keys_are_rejected(index: int) -> None:
    bad = _note()["bad_vkeys"][index]
    with pytest.raises(note.NoteError):
        note.parse_vkey(bad)
