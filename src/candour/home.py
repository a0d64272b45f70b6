"""The data home: where everything Candour holds lives, and the keys that protect it.

The layout is fixed by the design::

    candour.db        operational store (when no CANDOUR_DATABASE_URL is set)
    vault.db          identity vault (encrypted fields)
    warehouse.duckdb  pseudonymised integrated data
    ledger/           the public log, as C2SP static files
    keys/             signing, witness, vault and HMAC keys (mode 0600)
    releases/         released outputs and their metadata
    reports/          linkage and study reports
    quarantine/       rejected input rows, with line numbers and reasons
    synth/            the demo's synthetic county
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from candour.errors import CandourError

KEY_MODE = 0o600
DIR_MODE = 0o700


class HomeError(CandourError):
    """A problem with the data home that the operator must fix (shown without a traceback)."""


@dataclass(frozen=True)
class Home:
    """Paths inside one data home. Creating this object touches nothing on disk."""

    root: Path

    @property
    def store_db(self) -> Path:
        return self.root / "candour.db"

    @property
    def vault_db(self) -> Path:
        return self.root / "vault.db"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def synth(self) -> Path:
        return self.root / "synth"

    # Keys. The names are part of the on-disk contract (backups, operations guide).
    @property
    def log_signing_key(self) -> Path:
        return self.keys / "log-signing.key"

    @property
    def log_verifier_key(self) -> Path:
        return self.keys / "log-signing.vkey"

    @property
    def witness_key(self) -> Path:
        return self.keys / "witness.key"

    @property
    def witness_verifier_key(self) -> Path:
        return self.keys / "witness.vkey"

    @property
    def vault_key(self) -> Path:
        return self.keys / "vault.key"

    @property
    def hmac_key(self) -> Path:
        return self.keys / "hmac.key"

    @property
    def retired_keys(self) -> Path:
        """Old keys still needed to read what they made (residents' commitments in the log)."""
        return self.keys / "retired"

    def retired_hmac_keys(self) -> list[Path]:
        """Retired HMAC keys, oldest name first (``candour keys rotate --key hmac`` keeps them)."""
        return sorted(self.retired_keys.glob("hmac-*.key"))

    def directories(self) -> list[Path]:
        """Every directory the layout needs, parents first."""
        return [
            self.root,
            self.ledger,
            self.keys,
            self.releases,
            self.reports,
            self.quarantine,
        ]

    def create_directories(self) -> None:
        """Create the layout's directories; existing ones are left as they are."""
        for directory in self.directories():
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except FileExistsError as exc:
                raise HomeError(f"{directory} exists and is not a directory") from exc
            except PermissionError as exc:
                raise HomeError(f"cannot create {directory}: permission denied") from exc
        self.keys.chmod(DIR_MODE)

    def is_initialised(self) -> bool:
        """True when ``candour init`` has run here (the keys exist)."""
        return self.vault_key.exists() and self.hmac_key.exists()

    def require_initialised(self) -> None:
        """Raise a helpful error if ``candour init`` has not been run for this home."""
        if not self.is_initialised():
            raise HomeError(
                f"{self.root} is not a Candour data home; run `candour init --home {self.root}`"
            )


def write_secret_once(path: Path, make: Callable[[], bytes]) -> bool:
    """Write a secret to ``path`` with mode 0600, unless the file already exists.

    Returns True when a new secret was written. An existing key is never overwritten: losing the
    vault key would lose every identity, and replacing the signing key would fork the log. The
    file is created with O_EXCL and its final mode from the start, so there is no moment at which
    another user could read it, and it is written fully before it appears under its name.
    """
    if path.exists():
        return False
    content = make()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, KEY_MODE)  # umask may have narrowed it further; make it exact
        try:
            # link() fails if another process created the key meanwhile: first writer wins.
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_directory(path.parent)
    return True


def read_secret(path: Path) -> bytes:
    """Read a key file, refusing one that other users can read."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError as exc:
        raise HomeError(f"missing key {path}; run `candour init`") from exc
    if mode & 0o077:
        raise HomeError(f"key {path} has mode {mode:o}; it must be 600 (chmod 600 {path})")
    return path.read_bytes()


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
