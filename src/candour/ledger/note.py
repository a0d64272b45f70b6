"""C2SP signed-note v1.0.0 with Ed25519 (type 0x01), and tlog-cosignature v1.0.1 (type 0x04).

Keys use the formats of golang.org/x/mod/sumdb/note, so that standard tools read them:

- verifier key: ``<name>+<key id hex>+<base64(type || 32-byte public key)>``
- private key:  ``PRIVATE+KEY+<name>+<key id hex>+<base64(type || 32-byte seed)>``

where key id = ``SHA-256(name || 0x0A || type || public key)[:4]``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
SIG_PREFIX = "\u2014 "  # em dash and a space open every signature line
MAX_SIGNATURES = 100  # the spec asks verifiers to accept at least 16


class NoteError(ValueError):
    """A key or note is malformed, or a signature does not verify."""


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise NoteError(f"{what} is not valid base64") from exc


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"key name {name!r} is empty or contains a space or '+'")


def key_id(name: str, key_type: int, public: bytes) -> int:
    """The key id: first 4 bytes (big-endian) of SHA-256(name || 0x0A || type || key)."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + public).digest()
    return int.from_bytes(digest[:4], "big")


def _public_bytes(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    """A public key that can check note signatures of one name, id and type."""

    name: str
    key_type: int
    public: bytes

    @property
    def id(self) -> int:
        """The key id."""
        return key_id(self.name, self.key_type, self.public)

    def vkey(self) -> str:
        """The standard verifier-key string."""
        encoded = base64.b64encode(bytes([self.key_type]) + self.public).decode()
        return f"{self.name}+{self.id:08x}+{encoded}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        """True when ``signature`` (without the key id) is valid for the note ``text``."""
        key = Ed25519PublicKey.from_public_bytes(self.public)
        if self.key_type == ED25519:
            message, sig = text, signature
        else:
            if len(signature) != 8 + 64:
                return False
            stamp = int.from_bytes(signature[:8], "big")
            if stamp > (1 << 63) - 1:
                return False
            message = cosigned_message(text, stamp)
            sig = signature[8:]
        try:
            key.verify(sig, message)
        except InvalidSignature:
            return False
        return True


def cosigned_message(text: bytes, timestamp: int) -> bytes:
    """The message an Ed25519 cosignature v1 signs over a checkpoint body."""
    return b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + text


@dataclass(frozen=True)
class Signer:
    """A private key that signs notes under one name (Ed25519 or Ed25519 cosignature v1)."""

    name: str
    key_type: int
    seed: bytes

    @property
    def verifier(self) -> Verifier:
        """The matching verifier."""
        public = _public_bytes(Ed25519PrivateKey.from_private_bytes(self.seed).public_key())
        return Verifier(self.name, self.key_type, public)

    def skey(self) -> str:
        """The private-key string (keep it secret)."""
        encoded = base64.b64encode(bytes([self.key_type]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.id:08x}+{encoded}"

    def sign(self, text: bytes, timestamp: int | None = None) -> str:
        """A signature line (with its newline) over note ``text``.

        For a cosignature key the signature is timestamped, with ``timestamp`` or the current
        time in seconds.
        """
        key = Ed25519PrivateKey.from_private_bytes(self.seed)
        if self.key_type == ED25519:
            sig = key.sign(text)
        else:
            stamp = int(time.time()) if timestamp is None else timestamp
            sig = stamp.to_bytes(8, "big") + key.sign(cosigned_message(text, stamp))
        blob = self.verifier.id.to_bytes(4, "big") + sig
        return f"{SIG_PREFIX}{self.name} {base64.b64encode(blob).decode()}\n"


def generate(name: str, key_type: int = ED25519) -> Signer:
    """A fresh random key for ``name``."""
    _check_name(name)
    if key_type not in (ED25519, COSIGNATURE_V1):
        raise NoteError(f"unsupported key type {key_type:#04x}")
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    return Signer(name, key_type, seed)


_HEX8 = re.compile(r"^[0-9a-f]{8}$")


def parse_vkey(text: str, key_types: Iterable[int] = (ED25519, COSIGNATURE_V1)) -> Verifier:
    """Parse ``name+id+base64`` strictly: the id must match, the key must be 32 bytes."""
    parts = text.strip().split("+", 2)  # base64 may itself contain '+'
    if len(parts) != 3:
        raise NoteError("verifier key must be name+keyid+base64")
    name, hexid, b64 = parts
    _check_name(name)
    if not _HEX8.match(hexid):
        raise NoteError("verifier key id must be 8 lowercase hex digits")
    raw = _b64decode(b64, "verifier key")
    if len(raw) != 33 or raw[0] not in tuple(key_types):
        raise NoteError("verifier key is not a supported type with a 32-byte Ed25519 key")
    verifier = Verifier(name, raw[0], raw[1:])
    if verifier.id != int(hexid, 16):
        raise NoteError("verifier key id does not match the key")
    return verifier


def parse_skey(text: str, key_types: Iterable[int] = (ED25519, COSIGNATURE_V1)) -> Signer:
    """Parse ``PRIVATE+KEY+name+id+base64`` strictly; the id must match the derived public key."""
    parts = text.strip().split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise NoteError("private key must be PRIVATE+KEY+name+keyid+base64")
    name, hexid, b64 = parts[2:]
    _check_name(name)
    if not _HEX8.match(hexid):
        raise NoteError("private key id must be 8 lowercase hex digits")
    raw = _b64decode(b64, "private key")
    if len(raw) != 33 or raw[0] not in tuple(key_types):
        raise NoteError("private key is not a supported type with a 32-byte Ed25519 seed")
    signer = Signer(name, raw[0], raw[1:])
    if signer.verifier.id != int(hexid, 16):
        raise NoteError("private key id does not match the key")
    return signer


@dataclass(frozen=True)
class Signature:
    """One signature line of a note."""

    name: str
    id: int
    signature: bytes  # without the 4-byte key id

    def line(self) -> str:
        """The signature line, with its newline."""
        blob = self.id.to_bytes(4, "big") + self.signature
        return f"{SIG_PREFIX}{self.name} {base64.b64encode(blob).decode()}\n"


@dataclass(frozen=True)
class Note:
    """A parsed note: its text and every signature line, verified or not."""

    text: bytes
    signatures: tuple[Signature, ...]
    verified: tuple[Signature, ...] = ()

    def render(self) -> bytes:
        """The note as bytes: text, blank line, signature lines."""
        return self.text + b"\n" + "".join(s.line() for s in self.signatures).encode()


def parse(data: bytes) -> Note:
    """Split a signed note into text and signatures, checking the format but no signatures."""
    try:
        message = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError("note is not valid UTF-8") from exc
    if any(ord(c) < 0x20 and c != "\n" for c in message):
        raise NoteError("note contains a control character")
    split = message.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, sigs = message[: split + 1], message[split + 2 :]
    if not sigs.endswith("\n"):
        raise NoteError("note does not end with a newline")
    signatures: list[Signature] = []
    for line in sigs[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise NoteError("signature line does not start with an em dash and a space")
        fields = line[len(SIG_PREFIX) :].split(" ")
        if len(fields) != 2:
            raise NoteError("signature line is not '— name signature'")
        name, b64 = fields
        _check_name(name)
        blob = _b64decode(b64, "signature")
        if len(blob) < 5:
            raise NoteError("signature is too short")
        signatures.append(Signature(name, int.from_bytes(blob[:4], "big"), blob[4:]))
        if len(signatures) > MAX_SIGNATURES:
            raise NoteError("note has too many signatures")
    if not signatures:
        raise NoteError("note has no signatures")
    return Note(text.encode("utf-8"), tuple(signatures))


def open_note(data: bytes, verifiers: Sequence[Verifier]) -> Note:
    """Parse a note and verify it against trusted keys.

    Signatures from unknown keys are ignored; a known key whose signature fails rejects the
    whole note; at least one known key must have signed.
    """
    note = parse(data)
    known = {(v.name, v.id): v for v in verifiers}
    good: list[Signature] = []
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.id))
        if verifier is None:
            continue
        if not verifier.verify(note.text, sig.signature):
            raise NoteError(f"signature by {sig.name} does not verify")
        good.append(sig)
    if not good:
        raise NoteError("note is not signed by any trusted key")
    return Note(note.text, note.signatures, tuple(good))


def sign(text: bytes, signers: Sequence[Signer]) -> bytes:
    """A signed note over ``text`` (which must end in a newline)."""
    if not text.endswith(b"\n"):
        raise NoteError("note text must end with a newline")
    parse(text + b"\n" + SIG_PREFIX.encode() + b"x AAAAAAAA\n")  # format checks on the text
    return text + b"\n" + "".join(s.sign(text) for s in signers).encode()
