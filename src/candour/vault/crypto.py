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
import operator
import os
import struct
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any, cast

import numpy as np
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


_FORMAT_HEAD = bytes((FORMAT_V1,))
_OVERHEAD = NONCE_BYTES + 16  # nonce and GCM tag around each field's ciphertext
# A nonce as one 12-byte void item: numpy's ``tolist`` turns each into ``bytes`` in C, and,
# unlike a fixed-width bytes dtype, keeps trailing zero bytes.
_NONCE_DTYPE = np.dtype((np.void, NONCE_BYTES))
_PREFIX_BYTES = _HEADER.size + NONCE_BYTES
_PREFIX_DTYPE = np.dtype((np.void, _PREFIX_BYTES))

_SHA256_BLOCK = 64


def _hmac_sha256_many(key: bytes, messages: Iterable[bytes]) -> list[bytes]:
    """``HMAC-SHA256(key, m)`` for each message (RFC 2104), equal to ``hmac.digest``.

    The key's inner and outer pads are hashed once and their states copied per message:
    half the cost of ``hmac.digest``, which sets the key up again for every call.
    """
    if len(key) > _SHA256_BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_SHA256_BLOCK, b"\x00")
    inner_start = hashlib.sha256(bytes(b ^ 0x36 for b in key)).copy
    outer_start = hashlib.sha256(bytes(b ^ 0x5C for b in key)).copy
    digests: list[bytes] = []
    append = digests.append
    for message in messages:
        inner = inner_start()
        inner.update(message)
        outer = outer_start()
        outer.update(inner.digest())
        append(outer.digest())
    return digests


def _aad_base(record_key: str) -> bytes:
    return AAD_PREFIX + record_key.encode() + b"\x00"


def _column_array(values: Sequence[Any]) -> np.ndarray:
    """A 1-D object array of ``values`` (bytes stay whole; never split into characters)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _identifier_plaintexts(
    names: Sequence[str],
    std_columns: Sequence[Sequence[str | None]],
    raw_columns: Sequence[Sequence[str | None]],
    n: int,
) -> list[bytes | None]:
    """Each record's ``identifiers`` plaintext: JSON ``{name: [std] or [std, raw]}``."""
    plains: list[bytes | None] = []
    for row in range(n):
        pairs: dict[str, list[str | None]] = {}
        for k, name in enumerate(names):
            std, raw = std_columns[k][row], raw_columns[k][row]
            if std is None and raw is None:
                continue
            pairs[name] = [std] if raw == std else [std, raw]
        plains.append(
            json.dumps(pairs, separators=(",", ":"), sort_keys=True).encode() if pairs else None
        )
    return plains


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
        # Ingest's hot path, a million records a minute: every per-value step below is a
        # ``map`` over a built-in (the loop runs in C), so the interpreter does little but
        # call the cipher once per field. A list comprehension costs twice as much.
        keys: Sequence[str] = columns[0]
        flags: Sequence[int] = columns[1]
        n = len(keys)
        bases = list(map(_aad_base, keys))
        pieces: list[list[bytes]] = []
        for index, field_name in enumerate(_FIELD_NAMES):
            sealed_field = self._seal_field(columns[2 + index], bases, index, field_name)
            if sealed_field is not None:
                pieces.append(sealed_field)
        names = self.identifier_names
        lookups: list[tuple[str, bytes, str, int]] = []
        if names:
            first = 2 + len(FIELDS)
            std_columns = [columns[first + 2 * k] for k in range(len(names))]
            raw_columns = [columns[first + 2 * k + 1] for k in range(len(names))]
            sealed_field = self._seal_field(
                _identifier_plaintexts(names, std_columns, raw_columns, n),
                bases,
                IDENTIFIERS_ID,
                b"identifiers",
            )
            if sealed_field is not None:
                pieces.append(sealed_field)
            for k, name in enumerate(names):
                lookups += self._lookup_rows(
                    f"{IDENTIFIERS}.{name}",
                    [std.encode() if std is not None else None for std in std_columns[k]],
                    keys,
                    batch_id,
                )
        if n:
            valid = np.fromiter(flags, dtype=np.int64, count=n) & NHS_NUMBER_VALID
            if valid.any():
                nhs = _column_array(columns[2 + _NHS_INDEX])
                nhs[valid == 0] = None
                # The standardised value is the plaintext up to its first NUL (see
                # field_plaintext).
                std_nhs = [
                    p if p is None else p.partition(b"\x00")[0] for p in nhs.tolist()
                ]
                lookups += self._lookup_rows("nhs_number", std_nhs, keys, batch_id)
        lookups.sort(key=itemgetter(1))
        blobs = list(map(b"".join, zip(repeat(_FORMAT_HEAD), *pieces))) if pieces else [
            _FORMAT_HEAD
        ] * n
        sealed = list(zip(keys, repeat(source, n), repeat(batch_id, n), flags, blobs, strict=True))
        return sealed, lookups

    def _seal_field(
        self,
        plains: Sequence[bytes | None],
        bases: list[bytes],
        field_id: int,
        field_name: bytes,
    ) -> list[bytes] | None:
        """One field of every record: ``id | length | nonce | ciphertext+tag``, or ``b""``
        where the record has no value; None when no record has one."""
        n = len(plains)
        present: np.ndarray | None = None
        values: Sequence[Any] = plains
        aad_bases: Sequence[bytes] = bases
        if None in plains:
            array = _column_array(plains)
            mask = array != None  # noqa: E711 - element-wise comparison, not an identity test
            if not mask.any():
                return None
            present = np.flatnonzero(mask)
            values = array[present].tolist()
            aad_bases = _column_array(bases)[present].tolist()
        count = len(values)
        # Each field's prefix, ``id | length | nonce``, is built for the whole column at once in
        # one array; the nonces come from one call to the system's CSPRNG (a fresh random
        # 96-bit nonce per field, without a call and a slice per value).
        prefix = np.empty((count, _PREFIX_BYTES), dtype=np.uint8)
        prefix[:, 0] = field_id
        lengths = (np.fromiter(map(len, values), dtype=np.uint32, count=count) + _OVERHEAD).astype(
            "<u4"
        )
        prefix[:, 1:5] = lengths.view(np.uint8).reshape(count, 4)
        prefix[:, 5:] = np.frombuffer(os.urandom(NONCE_BYTES * count), dtype=np.uint8).reshape(
            count, NONCE_BYTES
        )
        nonces = cast(
            list[bytes], np.ascontiguousarray(prefix[:, 5:]).view(_NONCE_DTYPE).ravel().tolist()
        )
        headers = cast(list[bytes], prefix.view(_PREFIX_DTYPE).ravel().tolist())
        ciphertexts = map(
            self.aead.encrypt, nonces, values, map(operator.add, aad_bases, repeat(field_name))
        )
        sealed = list(map(operator.add, headers, ciphertexts))
        if present is None:
            return sealed
        out = np.full(n, b"", dtype=object)
        out[present] = _column_array(sealed)
        result: list[bytes] = out.tolist()
        return result

    def _lookup_rows(
        self, kind: str, values: Sequence[bytes | None], keys: Sequence[str], batch_id: int
    ) -> list[tuple[str, bytes, str, int]]:
        """Index rows ``(kind, digest, record_key, batch_id)`` for the values present."""
        label = LOOKUP_LABEL + kind.encode() + b"\x00"
        if None in values:
            array = _column_array(values)
            present = np.flatnonzero(array != None)  # noqa: E711 - element-wise
            values = array[present].tolist()
            keys = _column_array(keys)[present].tolist()
        count = len(values)
        digests = _hmac_sha256_many(self.hmac_key, map(operator.add, repeat(label, count), values))
        return list(zip(repeat(kind, count), digests, keys, repeat(batch_id, count), strict=True))

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
