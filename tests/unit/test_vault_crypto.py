"""Sealing identities: field by field, bound to their place, tamper-evident, keyed look-ups."""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle

import pytest

from candour.vault import FIELDS, NHS_NUMBER_VALID, Sealer, VaultCryptoError
from candour.vault.crypto import NONCE_BYTES, field_plaintext, lookup_digest

VAULT_KEY = bytes(range(32))
HMAC_KEY = bytes(range(32, 64))


def _columns(rows: list[dict[str, str]], identifiers: list[str] = ()) -> list[list[object]]:
    keys = [row["key"] for row in rows]
    flags = [NHS_NUMBER_VALID if row.get("nhs_number") else 0 for row in rows]
    columns: list[list[object]] = [keys, flags]
    for name in FIELDS:
        columns.append([field_plaintext(row.get(name), row.get(f"raw_{name}")) for row in rows])
    for name in identifiers:
        columns.append([row.get(f"id_{name}") for row in rows])
        columns.append([row.get(f"id_raw_{name}") for row in rows])
    return columns


ROWS = [
    {
        "key": "gp:1",
        "given_name": "zoe",
        "raw_given_name": "Zoë",
        "family_name": "obrien",
        "raw_family_name": "O'Brien",
        "nhs_number": "9434765919",
        "raw_nhs_number": "943 476 5919",
        "id_pnc": "991234A",
        "id_raw_pnc": "99/1234A",
    },
    {"key": "gp:2", "given_name": "bob", "raw_given_name": "bob", "sex": None, "raw_sex": "?"},
]


def _seal(sealer: Sealer) -> list[tuple[str, str, int, int, bytes]]:
    sealed, _ = sealer.seal_columns(_columns(ROWS, ["pnc"]), "gp", 7)
    return sealed


def test_round_trip_keeps_standardised_and_raw_values():
    sealer = Sealer(VAULT_KEY, HMAC_KEY, ["pnc"])
    sealed = _seal(sealer)
    first = sealer.open_record(*sealed[0])
    assert (first.given_name, first.family_name, first.nhs_number) == (
        "zoe", "obrien", "9434765919"
    )
    assert first.identifiers == {"pnc": "991234A"}
    assert first.raw == {
        "given_name": "Zoë",
        "family_name": "O'Brien",
        "nhs_number": "943 476 5919",
        "identifiers.pnc": "99/1234A",
    }
    assert first.nhs_number_valid and first.batch_id == 7
    second = sealer.open_record(*sealed[1])
    # Equal raw and standardised values are stored once; a value that did not standardise
    # keeps only its raw form.
    assert second.given_name == "bob" and second.raw == {"sex": "?"}
    assert second.sex is None


def test_no_plaintext_in_the_sealed_bytes_and_fresh_nonces_each_time():
    sealer = Sealer(VAULT_KEY, HMAC_KEY, ["pnc"])
    blob = _seal(sealer)[0][4]
    for value in ("zoe", "Zoë", "obrien", "9434765919", "943 476 5919", "991234A"):
        assert value.encode() not in blob
    assert _seal(sealer)[0][4] != blob  # same input, new random nonces


def test_each_field_has_its_own_nonce():
    sealer = Sealer(VAULT_KEY, HMAC_KEY, [])
    blob = sealer.seal_columns(_columns(ROWS[:1]), "gp", 1)[0][0][4]
    nonces, offset = [], 1
    while offset < len(blob):
        length = int.from_bytes(blob[offset + 1 : offset + 5], "little")
        nonces.append(blob[offset + 5 : offset + 5 + NONCE_BYTES])
        offset += 5 + length
    assert len(nonces) == 3 and len(set(nonces)) == 3


def test_a_ciphertext_moved_to_another_record_does_not_open():
    sealer = Sealer(VAULT_KEY, HMAC_KEY, ["pnc"])
    sealed = _seal(sealer)
    key, source, batch, flags, blob = sealed[0]
    with pytest.raises(VaultCryptoError, match="does not authenticate"):
        sealer.open_record("gp:2", source, batch, flags, blob)


def test_a_ciphertext_moved_to_another_field_does_not_open():
    sealer = Sealer(VAULT_KEY, HMAC_KEY, [])
    key, source, batch, flags, blob = sealer.seal_columns(_columns(ROWS[:1]), "gp", 1)[0][0]
    # Relabel the first field (given_name, id 0) as middle_name (id 1).
    swapped = blob[:1] + bytes((1,)) + blob[2:]
    with pytest.raises(VaultCryptoError, match="does not authenticate"):
        sealer.open_record(key, source, batch, flags, swapped)


def test_tampering_and_the_wrong_key_are_detected():
    sealer = Sealer(VAULT_KEY, HMAC_KEY, [])
    key, source, batch, flags, blob = sealer.seal_columns(_columns(ROWS[:1]), "gp", 1)[0][0]
    flipped = blob[:-1] + bytes((blob[-1] ^ 1,))
    with pytest.raises(VaultCryptoError):
        sealer.open_record(key, source, batch, flags, flipped)
    other = Sealer(os.urandom(32), HMAC_KEY, [])
    with pytest.raises(VaultCryptoError):
        other.open_record(key, source, batch, flags, blob)


def test_lookup_digests_are_keyed_and_kind_separated():
    sealer = Sealer(VAULT_KEY, HMAC_KEY, ["pnc"])
    _, lookups = sealer.seal_columns(_columns(ROWS, ["pnc"]), "gp", 7)
    kinds = {(kind, key) for kind, _, key, _ in lookups}
    assert kinds == {("nhs_number", "gp:1"), ("identifiers.pnc", "gp:1")}
    digest = next(d for kind, d, _, _ in lookups if kind == "nhs_number")
    assert digest == lookup_digest(HMAC_KEY, "nhs_number", "9434765919")
    # Not a plain hash, and another key or kind gives another digest.
    assert digest != hashlib.sha256(b"9434765919").digest()
    assert digest != lookup_digest(os.urandom(32), "nhs_number", "9434765919")
    assert digest != lookup_digest(HMAC_KEY, "identifiers.nhs", "9434765919")
    assert lookups == sorted(lookups, key=lambda row: row[1])


def test_only_indexed_fields_can_be_looked_up():
    with pytest.raises(Exception, match="not indexed"):
        Sealer(VAULT_KEY, HMAC_KEY, []).digest("family_name", "smith")


def test_a_sealer_travels_to_workers_without_its_cipher_state():
    sealer = Sealer(VAULT_KEY, HMAC_KEY, ["pnc"])
    sealed = _seal(sealer)
    copy = pickle.loads(pickle.dumps(sealer))
    assert copy.open_record(*sealed[0]).given_name == "zoe"


def test_plaintext_encoding():
    assert field_plaintext(None, None) is None
    assert field_plaintext("abc", "abc") == b"abc"
    assert field_plaintext("abc", None) == b"abc"
    assert field_plaintext("abc", "ABC") == b"abc\x00ABC"
    assert field_plaintext(None, "?") == b"\x00?"


def test_keys_of_the_wrong_size_are_refused():
    with pytest.raises(VaultCryptoError):
        Sealer(b"short", HMAC_KEY, [])


def test_bulk_digests_equal_the_standard_hmac_for_every_key_length():
    from candour.vault.crypto import _hmac_sha256_many

    messages = [b"", b"candour/vault/lookup/v1\x00nhs_number\x009434765919", os.urandom(200)]
    for key in (HMAC_KEY, os.urandom(64), os.urandom(100)):
        expected = [hmac.digest(key, message, "sha256") for message in messages]
        assert _hmac_sha256_many(key, messages) == expected


def test_columns_with_gaps_seal_only_the_values_present():
    sealer = Sealer(VAULT_KEY, HMAC_KEY, [])
    rows = [{"key": f"gp:{i}", "given_name": f"n{i}"} for i in range(6)]
    for i in (1, 4):
        rows[i]["family_name"] = f"f{i}"
    rows[5]["nhs_number"] = "9434765919"
    sealed, lookups = sealer.seal_columns(_columns(rows), "gp", 3)
    opened = [sealer.open_record(*row) for row in sealed]
    assert [r.given_name for r in opened] == [f"n{i}" for i in range(6)]
    assert [r.family_name for r in opened] == [None, "f1", None, None, "f4", None]
    assert [key for _, _, key, _ in lookups] == ["gp:5"]
    # Every field present has its own fresh nonce, across records as well as within one.
    nonces = []
    for row in sealed:
        blob, offset = row[4], 1
        while offset < len(blob):
            length = int.from_bytes(blob[offset + 1 : offset + 5], "little")
            nonces.append(blob[offset + 5 : offset + 5 + NONCE_BYTES])
            offset += 5 + length
    assert len(nonces) == 6 + 2 + 1 and len(set(nonces)) == len(nonces)


def test_an_empty_chunk_seals_to_nothing():
    sealer = Sealer(VAULT_KEY, HMAC_KEY, ["pnc"])
    assert sealer.seal_columns(_columns([], ["pnc"]), "gp", 1) == ([], [])
