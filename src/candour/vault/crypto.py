"""Field-by-field AES-256-GCM sealing of identity records, and the keyed look-up index.

A sealed record is one byte string: a format byte, then for each field present
``field id (1 byte) | length (4 bytes, little-endian) | nonce (12 bytes) | ciphertext+tag``.
Every field is encrypted on its own, with a fresh random 96-bit nonce and associated data
``"candour/vault/v1" NUL record_key NUL field_name``, so a ciphertext cannot be moved to another
record or field (or swapped between two) without failing authentication.

A field's plaintext holds the standardised value and, when it differs, the value as received:
``std`` (the same), ``std NUL raw`` (different) or ``NUL raw`` (nothing standardised). A
standardised value never contains NUL (standardisation removes control characters), so the
first NUL separates the two.

The look-up index never stores a plain hash (a ten-digit NHS number is trivially brute-forced
from SHA-256): it stores ``HMAC-SHA256(hmac_key, "candour/vault/lookup/v1" NUL kind NUL value)``
under the home's HMAC key, so exact matches work but the index reveals nothing without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from candour.errors import CandourError
from candour.vault.records import (
    DOB_VALID,
    FIELDS,
    IDENTIFIERS,
    INDEXED_FIELDS,
    NHS_NUMBER_VALID,
    POSTCODE_VALID,
    IdentityRecord,
)

FORMAT_V1 = 1
NONCE_BYTES = 12
KEY_BYTES = 32
IDENTIFIERS_ID = 255
AAD_PREFIX = b"candour/vault/v1\x00"
LOOKUP_LABEL = b"candour/vault/lookup/v1\x00"
KEY_CHECK_LABEL = b"candour/vault/key-check/v1"
_HEADER = struct.Struct("<BI")
_FIELD_NAMES = [name.encode() for name in FIELDS]
_NHS_INDEX = FIELDS.index("nhs_number")
_VALID_FLAG = {
    "date_of_birth": DOB_VALID,
    "postcode": POSTCODE_VALID,
    "nhs_number": NHS_NUMBER_VALID,
}


class VaultCryptoError(CandourError):
    """A sealed record does not open: wrong key, or the vault was tampered with."""


def key_check(key: bytes) -> str:
    """A value that identifies a key without revealing it (stored to catch a replaced key)."""
    return hmac.new(key, KEY_CHECK_LABEL, hashlib.sha256).hexdigest()


def lookup_digest(hmac_key: bytes, kind: str, value: str) -> bytes:
    """The index digest of one standardised ``value`` of ``kind`` (e.g. ``nhs_number``)."""
    return hmac.digest(hmac_key, LOOKUP_LABEL + kind.encode() + b"\x00" + value.encode(), "sha256")


def field_plaintext(std: str | None, raw: str | None) -> bytes | None:
    """A field's plaintext: ``std``, ``std NUL raw`` or ``NUL raw`` (None when both are absent).

    Ingest builds the same bytes in SQL; this is the reference definition.
    """
    if std is None and raw is None:
        return None
    if std is None:
        return b"\x00" + (raw or "").encode()
    if raw is None or raw == std:
        return std.encode()
    return std.encode() + b"\x00" + raw.encode()


def _split(plain: bytes) -> tuple[str | None, str | None]:
    """(standardised, raw-if-different) from a field's plaintext."""
    std, separator, raw = plain.partition(b"\x00")
    if not separator:
        return std.decode(), None
    return (std.decode() or None), raw.decode()


COLUMN_LAYOUT = (
    "record_key, flags, one plaintext per field of FIELDS in order (see field_plaintext; None "
    "where absent), then for each identifier name in order its standardised and raw values"
)


class Sealer:
    """Seals chunks of one source's batch; picklable, so worker processes can share the work."""

    def __init__(self, vault_key: bytes, hmac_key: bytes, identifier_names: Sequence[str]):
        if len(vault_key) != KEY_BYTES or len(hmac_key) < KEY_BYTES:
            raise VaultCryptoError("the vault key must be 32 bytes and the HMAC key at least 32")
        self.vault_key = vault_key
        self.hmac_key = hmac_key
        self.identifier_names = tuple(identifier_names)
        self._aead: AESGCM | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {
            "vault_key": self.vault_key,
            "hmac_key": self.hmac_key,
            "identifier_names": self.identifier_names,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.vault_key = state["vault_key"]
        self.hmac_key = state["hmac_key"]
        self.identifier_names = state["identifier_names"]
        self._aead = None

    @property
    def aead(self) -> AESGCM:
        """The AES-256-GCM cipher under the vault key."""
        if self._aead is None:
            self._aead = AESGCM(self.vault_key)
        return self._aead

    def seal_columns(
        self, columns: Sequence[Sequence[Any]], source: str, batch_id: int
    ) -> tuple[list[tuple[str, str, int, int, bytes]], list[tuple[str, bytes, str, int]]]:
        """Seal a chunk given as columns: ``(vault rows, look-up rows)`` for bulk insertion.

        ``columns`` follows :data:`COLUMN_LAYOUT`: record keys, flags, the eight fields'
        plaintexts, then each identifier's standardised and raw values. Vault rows are
        ``(record_key, source, batch_id, flags, sealed)``; look-up rows are
        ``(kind, digest, record_key, batch_id)``, sorted by digest (sorted inserts keep the
        index cheap to build).
        """
        # Ingest's hot path: one list comprehension per field, so the interpreter does little
        # but call the cipher (about twice as fast as a loop over rows).
        encrypt = self.aead.encrypt
        keys: Sequence[str] = columns[0]
        flags: Sequence[int] = columns[1]
        n = len(keys)
        pack = _HEADER.pack
        overhead = NONCE_BYTES + 16
        bases = [AAD_PREFIX + key.encode() + b"\x00" for key in keys]
        pieces: list[list[bytes]] = []
        for index, field_name in enumerate(_FIELD_NAMES):
            plain_column = columns[2 + index]
            if all(p is None for p in plain_column):
                continue
            random = os.urandom(NONCE_BYTES * n)
            nonces = [random[i : i + NONCE_BYTES] for i in range(0, NONCE_BYTES * n, NONCE_BYTES)]
            pieces.append(
                [
                    pack(index, len(p) + overhead) + nonce + encrypt(nonce, p, base + field_name)
                    if p is not None
                    else b""
                    for p, nonce, base in zip(plain_column, nonces, bases, strict=True)
                ]
            )
        names = self.identifier_names
        lookups: list[tuple[str, bytes, str, int]] = []
        hkey = self.hmac_key
        if names:
            first = 2 + len(FIELDS)
            std_columns = [columns[first + 2 * k] for k in range(len(names))]
            raw_columns = [columns[first + 2 * k + 1] for k in range(len(names))]
            plains: list[bytes | None] = []
            for row in range(n):
                pairs: dict[str, list[str | None]] = {}
                for k, name in enumerate(names):
                    std, raw = std_columns[k][row], raw_columns[k][row]
                    if std is None and raw is None:
                        continue
                    pairs[name] = [std] if raw == std else [std, raw]
                plains.append(
                    json.dumps(pairs, separators=(",", ":"), sort_keys=True).encode()
                    if pairs
                    else None
                )
            random = os.urandom(NONCE_BYTES * n)
            nonces = [random[i : i + NONCE_BYTES] for i in range(0, NONCE_BYTES * n, NONCE_BYTES)]
            pieces.append(
                [
                    pack(IDENTIFIERS_ID, len(p) + overhead)
                    + nonce
                    + encrypt(nonce, p, base + b"identifiers")
                    if p is not None
                    else b""
                    for p, nonce, base in zip(plains, nonces, bases, strict=True)
                ]
            )
            for k, name in enumerate(names):
                kind = f"{IDENTIFIERS}.{name}"
                label = LOOKUP_LABEL + kind.encode() + b"\x00"
                lookups.extend(
                    (kind, hmac.digest(hkey, label + std.encode(), "sha256"), key, batch_id)
                    for std, key in zip(std_columns[k], keys, strict=True)
                    if std is not None
                )
        nhs_label = LOOKUP_LABEL + b"nhs_number\x00"
        lookups.extend(
            (
                "nhs_number",
                hmac.digest(hkey, nhs_label + plain.partition(b"\x00")[0], "sha256"),
                key,
                batch_id,
            )
            for key, flag, plain in zip(keys, flags, columns[2 + _NHS_INDEX], strict=True)
            if flag & NHS_NUMBER_VALID
        )
        lookups.sort(key=lambda row: row[1])
        head = bytes((FORMAT_V1,))
        blobs = [head + b"".join(parts) for parts in zip(*pieces, strict=True)] if pieces else [
            head
        ] * n
        sealed = [
            (key, source, batch_id, flag, blob)
            for key, flag, blob in zip(keys, flags, blobs, strict=True)
        ]
        return sealed, lookups

    def open_record(
        self, record_key: str, source: str, batch_id: int, flags: int, sealed: bytes
    ) -> IdentityRecord:
        """Decrypt one sealed record."""
        view = memoryview(sealed)
        if not sealed or sealed[0] != FORMAT_V1:
            raise VaultCryptoError(f"{record_key}: unknown vault record format")
        aad = AAD_PREFIX + record_key.encode() + b"\x00"
        decrypt = self.aead.decrypt
        values: dict[str, Any] = {}
        raw: dict[str, str] = {}
        identifiers: dict[str, str] = {}
        offset = 1
        try:
            while offset < len(sealed):
                field_id, length = _HEADER.unpack_from(sealed, offset)
                offset += _HEADER.size
                nonce = bytes(view[offset : offset + NONCE_BYTES])
                body = bytes(view[offset + NONCE_BYTES : offset + length])
                offset += length
                if field_id == IDENTIFIERS_ID:
                    plain = decrypt(nonce, body, aad + b"identifiers")
                    for name, pair in json.loads(plain).items():
                        if pair[0] is not None:
                            identifiers[name] = pair[0]
                        if len(pair) > 1 and pair[1] is not None:
                            raw[f"{IDENTIFIERS}.{name}"] = pair[1]
                    continue
                name = FIELDS[field_id]
                std, original = _split(decrypt(nonce, body, aad + _FIELD_NAMES[field_id]))
                if std is not None:
                    values[name] = std
                if original is not None:
                    raw[name] = original
        except InvalidTag:
            raise VaultCryptoError(
                f"{record_key}: a sealed field does not authenticate (wrong vault key, or the "
                "vault was altered)"
            ) from None
        except (IndexError, struct.error, ValueError) as exc:
            raise VaultCryptoError(f"{record_key}: a sealed record is malformed ({exc})") from None
        return IdentityRecord(
            record_key=record_key,
            source=source,
            batch_id=batch_id,
            identifiers=identifiers,
            date_of_birth_valid=bool(flags & DOB_VALID),
            postcode_valid=bool(flags & POSTCODE_VALID),
            nhs_number_valid=bool(flags & NHS_NUMBER_VALID),
            raw=raw,
            **values,
        )

    def digest(self, kind: str, value: str) -> bytes:
        """The look-up digest for ``value`` of ``kind`` under this sealer's HMAC key."""
        if kind not in INDEXED_FIELDS and not kind.startswith(f"{IDENTIFIERS}."):
            raise CandourError(
                f"{kind!r} is not indexed for exact look-up; use one of "
                f"{', '.join(INDEXED_FIELDS)} or identifiers.<name>"
            )
        return lookup_digest(self.hmac_key, kind, value)


def valid_flag(field_name: str) -> int:
    """The quality flag bit for a field, or 0 if it has none."""
    return _VALID_FLAG.get(field_name, 0)
