"""Key rotation's pure parts: key ids, re-sealing records exactly, and spotting a half rotation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from candour.config import Settings
from candour.home import Home
from candour.ledger import note
from candour.maintenance import keys
from candour.maintenance.keys import KeyRotationError, key_id, key_path, pending_rotations
from candour.vault import NHS_NUMBER_VALID, Sealer
from candour.vault.crypto import field_plaintext, key_check
from candour.vault.records import FIELDS

VAULT_A, VAULT_B, HMAC_A = os.urandom(32), os.urandom(32), os.urandom(32)


def test_key_ids_identify_without_revealing() -> None:
    assert key_id("vault", VAULT_A) == key_check(VAULT_A)[:16] == key_id("vault", VAULT_A)
    assert key_id("vault", VAULT_A) != key_id("vault", VAULT_B)
    assert VAULT_A.hex()[:16] not in key_id("vault", VAULT_A)
    signer = note.generate("log.example/x")
    assert key_id("log", signer.skey().encode()) == f"{signer.verifier.id:08x}"
    session = os.urandom(32).hex().encode()
    assert len(key_id("web-session", session)) == 16
    assert key_id("web-session", session) not in session.decode()


def test_unknown_key_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyRotationError, match="unknown key 'disk'"):
        key_path(Home(tmp_path), "disk")


def test_a_new_log_key_keeps_the_origin() -> None:
    old = note.generate("log.example/x")
    settings = Settings(log_origin="log.example/x")
    new = note.parse_skey(keys._generate("log", old.skey().encode(), settings).decode().strip())
    assert new.name == old.name and new.verifier.id != old.verifier.id
    with pytest.raises(KeyRotationError, match="log origin"):
        keys._generate("log", old.skey().encode(), Settings(log_origin="other.example/y"))


def _columns(values: list[dict[str, object]], names: list[str]) -> list[list[object]]:
    columns: list[list[object]] = [[v["key"] for v in values], [v["flags"] for v in values]]
    for name in FIELDS:
        columns.append([field_plaintext(*v.get(name, (None, None))) for v in values])  # type: ignore[misc]
    for name in names:
        columns.append([v.get(f"id.{name}", (None, None))[0] for v in values])  # type: ignore[index]
        columns.append([v.get(f"id.{name}", (None, None))[1] for v in values])  # type: ignore[index]
    return columns


def test_resealing_keeps_every_value_and_the_index() -> None:
    names = ["pnc", "uprn"]
    values: list[dict[str, object]] = [
        {
            "key": "gp:1",
            "flags": NHS_NUMBER_VALID,
            "given_name": ("ANN", "Ann"),
            "family_name": ("SMITH", "SMITH"),
            "nhs_number": ("9434765919", "943 476 5919"),
            "id.pnc": ("12AB", "12ab"),
            "id.uprn": ("100", "100"),
        },
        {"key": "gp:2", "flags": 0, "postcode": (None, "n/a"), "id.pnc": (None, "??")},
        {"key": "gp:3", "flags": 0},
    ]
    first = Sealer(VAULT_A, HMAC_A, names)
    sealed, index = first.seal_columns(_columns(values, names), "gp", 7)
    opened = [first.open_record(k, s, b, f, blob) for k, s, b, f, blob in sealed]
    assert opened[0].raw["given_name"] == "Ann" and "family_name" not in opened[0].raw
    assert opened[1].raw["postcode"] == "n/a" and opened[1].postcode is None

    # Back into columns, sealed under a new vault key: the same records, the same index.
    second = Sealer(VAULT_B, HMAC_A, names)
    again, index_again = second.seal_columns(
        keys._columns(opened, [r[3] for r in sealed], names), "gp", 7
    )
    reopened = [second.open_record(k, s, b, f, blob) for k, s, b, f, blob in again]
    assert reopened == opened
    assert sorted(index_again) == sorted(index) and len(index) == 3  # nhs, pnc, uprn of gp:1
    # Fresh ciphertexts wherever there is a value (gp:3 holds none: a format byte only).
    assert [a[4] != b[4] for a, b in zip(sealed, again, strict=True)] == [True, True, False]


def test_pending_rotations_are_seen(tmp_path: Path) -> None:
    home = Home(tmp_path)
    home.keys.mkdir()
    assert pending_rotations(home) == []
    (home.keys / "hmac.key.next").write_bytes(b"x")
    (home.keys / "log-signing.key.rotation").write_text("{}")
    assert pending_rotations(home) == ["hmac", "log"]
