"""The public transparency log: every use of data, as an entry in an RFC 6962 Merkle log.

Other packages append with :func:`record` (or :func:`record_many`), which validates the entry
against its kind's schema, appends it durably and returns its index. Readers (the CLI, the
portal) get entries and proofs with :func:`entry`, :func:`inclusion_proof` and
:func:`consistency_proof`. The published files live in ``<home>/ledger/public/`` (see
:mod:`candour.ledger.log`) and speak C2SP tlog-tiles, tlog-checkpoint and signed-note, so any
standard tool can check them.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from candour.config import Settings
from candour.errors import CandourError
from candour.home import Home, read_secret, write_secret_once
from candour.ledger import entries, note, tree
from candour.ledger.entries import KINDS, EntryError, is_about, person_fields, person_key
from candour.ledger.log import (
    Log,
    LogError,
    TileReader,
    close_log,
    open_log,
    public_dir,
    state_dir,
)
from candour.ledger.tree import ProofError

__all__ = [
    "KINDS",
    "ConsistencyProof",
    "EntryError",
    "InclusionProof",
    "Log",
    "close_log",
    "LogError",
    "ProofError",
    "consistency_proof",
    "ensure_keys",
    "entry",
    "inclusion_proof",
    "is_about",
    "person_fields",
    "person_key",
    "person_key_for",
    "person_keys_for",
    "public_dir",
    "record",
    "record_many",
    "state_dir",
    "verifier_key",
]


def record(kind: str, payload: dict[str, Any], *, settings: Settings | None = None) -> int:
    """Validate ``payload`` as a ``kind`` entry, append it durably, and return its index.

    When this returns, the entry is on disk and covered by a signed, published checkpoint.
    ``settings`` defaults to ``Settings()`` from the environment.
    """
    data = entries.encode(kind, payload)
    return open_log(settings).append([data])


def record_many(
    items: Sequence[tuple[str, dict[str, Any]]], *, settings: Settings | None = None
) -> list[int]:
    """Append several ``(kind, payload)`` entries as one batch; return their indices."""
    if not items:
        return []
    encoded = [entries.encode(kind, payload) for kind, payload in items]
    first = open_log(settings).append(encoded)
    return list(range(first, first + len(encoded)))


def person_key_for(person_id: str, *, settings: Settings | None = None) -> bytes:
    """The per-person commitment key for ``person_id``, from the home's HMAC key."""
    home = Home((settings or Settings()).home)
    return person_key(read_secret(home.hmac_key), person_id)


def person_keys_for(person_id: str, *, settings: Settings | None = None) -> list[bytes]:
    """Every commitment key ``person_id`` has had: the current one first, then those made under
    HMAC keys that have since been rotated, so entries from before a rotation are still theirs.
    """
    home = Home((settings or Settings()).home)
    secrets_ = [read_secret(home.hmac_key), *(read_secret(p) for p in home.retired_hmac_keys())]
    return [person_key(secret, person_id) for secret in secrets_]


def _write_public_once(path: Path, content: bytes) -> bool:
    if path.exists():
        return False
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _ensure_pair(skey_path: Path, vkey_path: Path, name: str, key_type: int) -> list[Path]:
    written: list[Path] = []
    if write_secret_once(skey_path, lambda: (note.generate(name, key_type).skey() + "\n").encode()):
        written.append(skey_path)
    try:
        signer = note.parse_skey(read_secret(skey_path).decode(), (key_type,))
    except note.NoteError as exc:
        raise CandourError(f"{skey_path}: {exc}") from exc
    if signer.name != name:
        raise CandourError(
            f"{skey_path} is a key for {signer.name!r}, not {name!r}; an existing key's name "
            "cannot change (move the key away only if you mean to start a new log or witness)"
        )
    vkey = signer.verifier.vkey()
    if _write_public_once(vkey_path, (vkey + "\n").encode()):
        written.append(vkey_path)
    elif vkey_path.read_text().strip() != vkey:
        raise CandourError(f"{vkey_path} does not match {skey_path}")
    return written


def ensure_keys(home: Home, origin: str, witness_name: str) -> list[Path]:
    """Create the log signing key and the witness key where missing; never overwrite.

    Writes ``home.log_signing_key`` (signed-note Ed25519, named ``origin``) with its verifier key
    ``home.log_verifier_key``, and ``home.witness_key`` (tlog-cosignature Ed25519, named
    ``witness_name``) with ``home.witness_verifier_key``. Returns the paths newly written.
    """
    home.keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = _ensure_pair(home.log_signing_key, home.log_verifier_key, origin, note.ED25519)
    written += _ensure_pair(
        home.witness_key, home.witness_verifier_key, witness_name, note.COSIGNATURE_V1
    )
    return written


def verifier_key(home: Home) -> note.Verifier:
    """The log's verifier key from the home."""
    try:
        return note.parse_vkey(home.log_verifier_key.read_text(), (note.ED25519,))
    except FileNotFoundError as exc:
        raise CandourError(f"missing {home.log_verifier_key}; run `candour init`") from exc
    except note.NoteError as exc:
        raise CandourError(f"{home.log_verifier_key}: {exc}") from exc


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


@dataclass(frozen=True)
class InclusionProof:
    """An entry's inclusion proof in a tree of ``tree_size`` with ``root``."""

    index: int
    tree_size: int
    leaf_hash: bytes
    hashes: tuple[bytes, ...]
    root: bytes

    def to_json(self) -> dict[str, Any]:
        """The JSON form, hashes in base64."""
        return {
            "index": self.index,
            "tree_size": self.tree_size,
            "leaf_hash": _b64(self.leaf_hash),
            "hashes": [_b64(h) for h in self.hashes],
            "root": _b64(self.root),
        }

    def verify(self) -> None:
        """Raise :class:`ProofError` unless the proof holds."""
        tree.verify_inclusion(self.index, self.tree_size, self.leaf_hash, self.hashes, self.root)


@dataclass(frozen=True)
class ConsistencyProof:
    """A proof that the tree of ``old_size`` is a prefix of the tree of ``new_size``."""

    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    hashes: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        """The JSON form, hashes in base64."""
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "old_root": _b64(self.old_root),
            "new_root": _b64(self.new_root),
            "hashes": [_b64(h) for h in self.hashes],
        }

    def verify(self) -> None:
        """Raise :class:`ProofError` unless the proof holds."""
        tree.verify_consistency(
            self.old_size, self.new_size, self.hashes, self.old_root, self.new_root
        )


def _snapshot(settings: Settings | None) -> tuple[int, bytes, TileReader]:
    """The published size and root, and a tile reader for them (one checkpoint read)."""
    log = open_log(settings)
    current = log.read_checkpoint()
    if current is None:
        return 0, tree.EMPTY_ROOT, TileReader(log.storage.read, 0)
    return current[0].size, current[0].root, TileReader(log.storage.read, current[0].size)


def entry(index: int, *, settings: Settings | None = None) -> bytes:
    """The exact bytes of entry ``index`` (the leaf's input)."""
    size, _, reader = _snapshot(settings)
    if not 0 <= index < size:
        raise LogError(f"entry {index} is not in the log (size {size})")
    return reader.entry(index)


def inclusion_proof(
    index: int, size: int | None = None, *, settings: Settings | None = None
) -> InclusionProof:
    """The inclusion proof of entry ``index`` in the tree of ``size`` (default: published)."""
    top, top_root, reader = _snapshot(settings)
    size = top if size is None else size
    if not 0 <= index < size <= top:
        raise LogError(f"need 0 <= index < size <= {top}; got index {index}, size {size}")
    hashes = tree.inclusion_proof(index, size, reader.node)
    root = top_root if size == top else tree.root(size, reader.node)
    return InclusionProof(index, size, reader.node(0, index), tuple(hashes), root)


def consistency_proof(
    old_size: int, new_size: int, *, settings: Settings | None = None
) -> ConsistencyProof:
    """The consistency proof between two tree sizes of the published log."""
    top, top_root, reader = _snapshot(settings)
    if not 0 < old_size <= new_size <= top:
        raise LogError(f"need 0 < old <= new <= {top}; got old {old_size}, new {new_size}")
    hashes = tree.consistency_proof(old_size, new_size, reader.node)
    new_root = top_root if new_size == top else tree.root(new_size, reader.node)
    return ConsistencyProof(
        old_size, new_size, tree.root(old_size, reader.node), new_root, tuple(hashes)
    )
