"""Signed notes, keys and checkpoints."""

from __future__ import annotations

import pytest

from candour.ledger import checkpoint as cpmod
from candour.ledger import note


def test_generated_keys_round_trip_and_key_ids() -> None:
    signer = note.generate("example.test/log")
    assert note.parse_skey(signer.skey()) == signer
    verifier = note.parse_vkey(signer.verifier.vkey())
    assert verifier == signer.verifier
    cosigner = note.generate("w.test/w", note.COSIGNATURE_V1)
    assert (
        cosigner.verifier.vkey()
        != note.Verifier("w.test/w", note.ED25519, cosigner.verifier.public).vkey()
    )
    with pytest.raises(note.NoteError):
        note.generate("has space")
    with pytest.raises(note.NoteError):
        note.generate("has+plus")


def test_note_rules() -> None:
    signer = note.generate("example.test/log")
    signed = note.sign(b"hello\n\nworld\n", [signer])
    assert note.open_note(signed, [signer.verifier]).text == b"hello\n\nworld\n"
    other = note.generate("example.test/log")
    with pytest.raises(note.NoteError):
        note.open_note(signed, [other.verifier])  # same name, other id: unknown, so unsigned
    with pytest.raises(note.NoteError):
        note.sign(b"no newline", [signer])
    with pytest.raises(note.NoteError):
        note.parse(signed.replace(b"hello", b"he\tlo"))
    with pytest.raises(note.NoteError):
        note.parse(b"text\n\n- x AAAAAAAA\n")


def test_cosignature_is_timestamped_and_bound_to_the_body() -> None:
    cosigner = note.generate("w.test/w", note.COSIGNATURE_V1)
    body = b"example.test/log\n3\n" + b"A" * 43 + b"=\n"
    line = cosigner.sign(body, timestamp=12345)
    opened = note.open_note(body + b"\n" + line.encode(), [cosigner.verifier])
    sig = opened.verified[0].signature
    assert int.from_bytes(sig[:8], "big") == 12345 and len(sig) == 72
    assert not cosigner.verifier.verify(body.replace(b"3", b"4"), sig)
    forged = (99999).to_bytes(8, "big") + sig[8:]
    assert not cosigner.verifier.verify(body, forged)


def test_checkpoint_format_is_strict() -> None:
    cp = cpmod.Checkpoint("example.test/log", 10, bytes(range(32)))
    assert cpmod.parse_text(cp.text()) == cp
    for bad in (
        b"o\n010\n" + cp.text().split(b"\n")[2] + b"\n",
        b"o\n10\nAAAA\n",
        b"o\n10\n",
        b"\n1\n" + cp.text().split(b"\n")[2] + b"\n",
        cp.text()[:-1],
    ):
        with pytest.raises(cpmod.CheckpointError):
            cpmod.parse_text(bad)
    signer = note.generate("example.test/log")
    parsed, _ = cpmod.open_checkpoint(
        cpmod.sign(cp, [signer]), [signer.verifier], "example.test/log"
    )
    assert parsed.size == 10
    with pytest.raises(cpmod.CheckpointError):
        cpmod.open_checkpoint(cpmod.sign(cp, [signer]), [signer.verifier], "other/log")
