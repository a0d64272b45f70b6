"""``candour backup`` and ``candour restore``: the whole data home as one encrypted file.

The archive holds the store, the vault, the warehouse, the ledger and the keys, so it is
encrypted with a key derived from a passphrase (scrypt) that is kept apart from the backup.

File format (version 1)::

    b"CANDOUR-BACKUP/1\\n"
    header: one line of JSON (KDF parameters, salt, chunk size, nonce prefix), then "\\n"
    chunks: [4-byte big-endian length][AES-256-GCM ciphertext and tag] ...

Each chunk is sealed with the nonce ``prefix || counter`` and associated data binding it to the
header, its position and whether it is the last, so chunks cannot be reordered, dropped,
truncated or moved between backups without the restore noticing. The plaintext is a tar stream.

Databases are copied consistently: SQLite through its online backup API, DuckDB after a
checkpoint under a read-only connection, and the ledger while holding its append lock.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import struct
import tarfile
import tempfile
from base64 import b64decode, b64encode
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from filelock import FileLock

from candour import ledger
from candour.config import Settings
from candour.errors import CandourError
from candour.home import Home

MAGIC = b"CANDOUR-BACKUP/1\n"
CHUNK = 1 << 20
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
MIN_PASSPHRASE = 12
# Never in a backup: scratch space that is rebuilt, and decrypted identities (workspaces).
SKIP_DIRS = {"staging", "workspaces", "synth"}


class BackupError(CandourError):
    """The backup or restore cannot go ahead; the message says why and what to do."""


def _key(passphrase: str, salt: bytes) -> bytes:
    if len(passphrase) < MIN_PASSPHRASE:
        raise BackupError(f"the passphrase must be at least {MIN_PASSPHRASE} characters")
    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(
        passphrase.encode()
    )


def _aad(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">QB", index, 1 if last else 0)


class _EncryptingWriter(io.RawIOBase):
    """A write-only stream that seals what it is given, chunk by chunk, into ``out``."""

    def __init__(self, out: IO[bytes], key: bytes, header: bytes, prefix: bytes) -> None:
        self.out, self.aead, self.header, self.prefix = out, AESGCM(key), header, prefix
        self.buffer = bytearray()
        self.index = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.buffer.extend(data)
        while len(self.buffer) > CHUNK:
            self._seal(bytes(self.buffer[:CHUNK]), last=False)
            del self.buffer[:CHUNK]
        return len(data)

    def _seal(self, plain: bytes, last: bool) -> None:
        nonce = self.prefix + struct.pack(">I", self.index)
        sealed = self.aead.encrypt(nonce, plain, _aad(self.header, self.index, last))
        self.out.write(struct.pack(">I", len(sealed)) + sealed)
        self.index += 1

    def finish(self) -> None:
        """Seal the last chunk (possibly empty), marked as last."""
        self._seal(bytes(self.buffer), last=True)
        self.buffer.clear()


def _decrypted_chunks(source: IO[bytes], passphrase: str, name: str) -> Iterator[bytes]:
    if source.read(len(MAGIC)) != MAGIC:
        raise BackupError(f"{name} is not a Candour backup")
    header = source.readline().rstrip(b"\n")
    try:
        meta = json.loads(header)
        salt, prefix = b64decode(meta["salt"]), b64decode(meta["nonce_prefix"])
    except (ValueError, KeyError) as exc:
        raise BackupError(f"{name}: the backup header is damaged") from exc
    aead = AESGCM(_key(passphrase, salt))
    index = 0
    pending: bytes | None = source.read(4)
    while True:
        if not pending or len(pending) < 4:
            raise BackupError(f"{name} is truncated (no final chunk)")
        (length,) = struct.unpack(">I", pending)
        sealed = source.read(length)
        if len(sealed) != length:
            raise BackupError(f"{name} is truncated in chunk {index}")
        pending = source.read(4)
        last = not pending
        nonce = prefix + struct.pack(">I", index)
        try:
            yield aead.decrypt(nonce, sealed, _aad(header, index, last))
        except InvalidTag:
            if index == 0:
                raise BackupError(f"{name}: wrong passphrase, or the backup is damaged") from None
            raise BackupError(f"{name} is damaged or was altered (chunk {index})") from None
        if last:
            return
        index += 1


class _ChunkReader(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks, self.buffer = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray) -> int:  # type: ignore[override]
        while not self.buffer:
            try:
                self.buffer = next(self.chunks)
            except StopIteration:
                return 0
        n = min(len(target), len(self.buffer))
        target[:n] = self.buffer[:n]
        self.buffer = self.buffer[n:]
        return n


def _snapshot(settings: Settings, home: Home, into: Path) -> None:
    """Copy the home into ``into`` consistently, databases through their own APIs."""
    for item in sorted(home.root.iterdir()):
        if item.name in SKIP_DIRS or item.name.startswith(".candour-staging"):
            continue
        target = into / item.name
        if item == home.ledger:
            with FileLock(str(ledger.state_dir(home) / "append.lock")):
                shutil.copytree(item, target, symlinks=False, ignore=_no_locks)
        elif item.suffix == ".db" or item.name.endswith((".db-wal", ".db-shm")):
            if item.suffix == ".db":
                _sqlite_copy(item, target)
        elif item.suffix == ".duckdb" or item.name.endswith(".duckdb.wal"):
            if item.suffix == ".duckdb":
                _duckdb_copy(item, target)
        elif item.is_dir():
            shutil.copytree(item, target, symlinks=False)
        elif item.is_file():
            shutil.copy2(item, target)


def _no_locks(_directory: str, names: list[str]) -> list[str]:
    return [n for n in names if n.endswith(".lock") or n.endswith(".tmp")]


def _sqlite_copy(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _duckdb_copy(source: Path, target: Path) -> None:
    import duckdb

    connection = duckdb.connect()
    try:
        try:
            connection.execute(f"ATTACH '{_quoted(source)}' AS original (READ_ONLY)")
        except duckdb.IOException as exc:
            raise BackupError(
                f"{source.name} is in use by another Candour process; stop it and retry"
            ) from exc
        connection.execute(f"ATTACH '{_quoted(target)}' AS copy")
        connection.execute("COPY FROM DATABASE original TO copy")
    finally:
        connection.close()


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def backup(settings: Settings, out: Path, passphrase: str) -> int:
    """Write an encrypted archive of the whole data home to ``out``; return its size in bytes."""
    home = Home(settings.home)
    home.require_initialised()
    if settings.database_url is not None:
        raise BackupError(
            "the store is on PostgreSQL: back it up with pg_dump (docs/operations.md) and the "
            "rest of the home with `candour backup --home` on an embedded-store copy"
        )
    if out.exists():
        raise BackupError(f"{out} exists; choose a new file name (backups are never overwritten)")
    salt, prefix = os.urandom(16), os.urandom(8)
    header = json.dumps(
        {
            "kdf": "scrypt",
            "n": SCRYPT_N,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "salt": b64encode(salt).decode(),
            "cipher": "AES-256-GCM",
            "chunk": CHUNK,
            "nonce_prefix": b64encode(prefix).decode(),
        },
        sort_keys=True,
    ).encode()
    key = _key(passphrase, salt)
    partial = out.with_name(f".{out.name}.partial")
    with tempfile.TemporaryDirectory(prefix="candour-backup-", dir=home.root.parent) as tmp:
        snapshot = Path(tmp) / "home"
        snapshot.mkdir(mode=0o700)
        _snapshot(settings, home, snapshot)
        try:
            with partial.open("xb") as handle:
                handle.write(MAGIC + header + b"\n")
                writer = _EncryptingWriter(handle, key, header, prefix)
                with tarfile.open(fileobj=writer, mode="w|") as archive:
                    archive.add(snapshot, arcname="home")
                writer.finish()
                handle.flush()
                os.fsync(handle.fileno())
            partial.chmod(0o600)
            partial.rename(out)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return out.stat().st_size


def restore(backup_file: Path, home_dir: Path, passphrase: str) -> Path:
    """Restore ``backup_file`` into ``home_dir`` (new or empty); return the home's path.

    Nothing appears at ``home_dir`` unless the whole archive decrypts and unpacks.
    """
    if home_dir.exists() and (not home_dir.is_dir() or any(home_dir.iterdir())):
        raise BackupError(f"{home_dir} is not empty; restore into a new directory")
    if not backup_file.is_file():
        raise BackupError(f"{backup_file}: no such file")
    home_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".candour-restore-", dir=home_dir.parent) as tmp:
        with backup_file.open("rb") as source:
            reader = io.BufferedReader(  # type: ignore[type-var]
                _ChunkReader(_decrypted_chunks(source, passphrase, backup_file.name))
            )
            try:
                with tarfile.open(fileobj=reader, mode="r|") as archive:
                    # The "data" filter refuses absolute paths, links out of the tree and devices.
                    archive.extractall(tmp, filter="data")
            except tarfile.TarError as exc:
                raise BackupError(
                    f"{backup_file.name}: the archive inside is damaged: {exc}"
                ) from None
        restored = Path(tmp) / "home"
        if not (restored / "keys").is_dir():
            raise BackupError(f"{backup_file.name} does not hold a Candour data home")
        for key in (restored / "keys").iterdir():
            if key.suffix == ".key":
                key.chmod(0o600)
        if home_dir.exists():
            home_dir.rmdir()
        restored.rename(home_dir)
    return home_dir
