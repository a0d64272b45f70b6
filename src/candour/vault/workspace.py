"""Workspaces: the only place decrypted identities exist, and only for as long as they are used.

A workspace is a private directory (mode 0700) under ``<home>/workspaces/``; the linkage engine
puts its working files there (e.g. its DuckDB database of decrypted, standardised identities).
It is removed when the ``with`` block ends, whether it succeeded or failed. A process killed
with ``kill -9`` cannot clean up after itself, so every new workspace, and
:func:`remove_stale_workspaces`, first removes workspaces whose owning process is gone.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from candour.config import Settings
from candour.vault.audit import audited, check_reason
from candour.vault.records import FIELDS, IdentityRecord

if TYPE_CHECKING:
    from candour.vault.core import Vault

DEFAULT_CHUNK = 50_000
OWNER_FILE = ".owner"
# How long a workspace may lack its owner file before it counts as abandoned mid-creation.
UNOWNED_GRACE_SECONDS = 60.0

IDENTITY_SCHEMA = pa.schema(
    [
        pa.field("record_key", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("batch_id", pa.int64(), nullable=False),
        *(pa.field(name, pa.string()) for name in FIELDS),
        pa.field("identifiers", pa.map_(pa.string(), pa.string())),
        pa.field("date_of_birth_valid", pa.bool_(), nullable=False),
        pa.field("postcode_valid", pa.bool_(), nullable=False),
        pa.field("nhs_number_valid", pa.bool_(), nullable=False),
    ]
)


def workspaces_root(settings: Settings) -> Path:
    """Where workspaces are made: ``<home>/workspaces``."""
    return settings.home / "workspaces"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_abandoned(directory: Path) -> bool:
    """True when the workspace ``directory`` belongs to a process that no longer runs here.

    One without a readable owner file may be mid-creation by another process (between its
    ``mkdir`` and writing the owner), so it counts as abandoned only once it has stayed so for
    :data:`UNOWNED_GRACE_SECONDS`. One owned by another host is never judged from here.
    """
    try:
        owner_host, pid_text = (directory / OWNER_FILE).read_text().split()
        return owner_host == socket.gethostname() and not _alive(int(pid_text))
    except (OSError, ValueError):
        try:
            age = time.time() - directory.stat().st_mtime
        except OSError:
            return False  # removed meanwhile by its owner
        return age > UNOWNED_GRACE_SECONDS


def remove_stale_workspaces(settings: Settings) -> int:
    """Remove workspaces left behind by processes that no longer run; return how many."""
    root = workspaces_root(settings)
    if not root.is_dir():
        return 0
    removed = 0
    for directory in root.iterdir():
        if directory.is_dir() and is_abandoned(directory):
            shutil.rmtree(directory, ignore_errors=True)
            removed += 1
    return removed


class Workspace:
    """Decrypted identities for one stated purpose. Get one from ``Vault.open_workspace``."""

    def __init__(self, vault: Vault, path: Path, reason: str, actor: str) -> None:
        self.vault = vault
        self.path = path
        self.reason = reason
        self.actor = actor
        self.id = path.name

    def identities(
        self,
        *,
        source: str | None = None,
        batch_id: int | None = None,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> Iterator[IdentityRecord]:
        """Every record's decrypted identity (of one source or batch), in record-key order.

        Streams: memory stays bounded by ``chunk_size`` whatever the vault's size. The read is
        recorded in ``vault_access`` before the first record is decrypted.
        """
        scope = _scope(source, batch_id)
        with audited(
            self.vault.settings, "identities", scope, self.reason, self.actor, self.id
        ) as log:
            sealer = self.vault.sealer()
            for row in self.vault._rows(source, batch_id, None, chunk_size):
                yield sealer.open_record(*row)
                log.records += 1

    def identity_batches(
        self,
        *,
        source: str | None = None,
        batch_id: int | None = None,
        chunk_size: int = DEFAULT_CHUNK,
        workers: int | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """The same as :meth:`identities`, as Arrow record batches of :data:`IDENTITY_SCHEMA`.

        Standardised values only (no raw values); DuckDB and Spark read these directly, e.g.
        ``duckdb.from_arrow(pa.RecordBatchReader.from_batches(IDENTITY_SCHEMA, batches))``.
        Records are opened a column at a time (:mod:`candour.vault.columnar`), without an
        :class:`IdentityRecord` each, by ``workers`` processes (default: one per core, see
        :func:`~candour.vault.columnar.default_workers`): a linkage run reads every record in
        the vault. The read is recorded in ``vault_access`` before the first record is
        decrypted.
        """
        from candour.vault.columnar import default_workers, open_ranges, open_rows

        scope = _scope(source, batch_id)
        with audited(
            self.vault.settings, "identities", scope, self.reason, self.actor, self.id
        ) as log:
            count = default_workers() if workers is None else workers
            ranges = self.vault.key_ranges(source, batch_id, chunk_size)
            if count > 1 and len(ranges) > 2:
                # Each worker reads its own runs of keys: nothing passes through this process.
                batches = open_ranges(
                    self.vault.sealer(),
                    self.vault.settings.vault_store_url,
                    ranges,
                    IDENTITY_SCHEMA,
                    source=source,
                    batch_id=batch_id,
                    workers=count,
                )
            else:
                # A vault of one or two chunks (or one core): opened here, where starting
                # processes would cost more than it saves.
                batches = open_rows(
                    self.vault.sealer(),
                    self.vault._rows(source, batch_id, None, chunk_size, ranges),
                    IDENTITY_SCHEMA,
                    chunk_size=chunk_size,
                )
            for batch in batches:
                if batch.num_rows:
                    log.records += batch.num_rows
                    yield batch

    def records(self, record_keys: Sequence[str]) -> list[IdentityRecord]:
        """The decrypted identities of these records (those present), in the order asked."""
        keys = list(dict.fromkeys(record_keys))
        with audited(
            self.vault.settings,
            "records",
            f"record_keys={len(keys)}",
            self.reason,
            self.actor,
            self.id,
        ) as log:
            sealer = self.vault.sealer()
            found = {
                row[0]: sealer.open_record(*row) for row in self.vault._rows(None, None, keys, 500)
            }
            log.records = len(found)
        return [found[key] for key in keys if key in found]


def to_record_batch(records: Sequence[IdentityRecord]) -> pa.RecordBatch:
    """Identity records as one Arrow record batch of :data:`IDENTITY_SCHEMA`."""
    columns: dict[str, list[object]] = {
        "record_key": [r.record_key for r in records],
        "source": [r.source for r in records],
        "batch_id": [r.batch_id for r in records],
    }
    for name in FIELDS:
        columns[name] = [getattr(r, name) for r in records]
    columns["identifiers"] = [list(r.identifiers.items()) for r in records]
    columns["date_of_birth_valid"] = [r.date_of_birth_valid for r in records]
    columns["postcode_valid"] = [r.postcode_valid for r in records]
    columns["nhs_number_valid"] = [r.nhs_number_valid for r in records]
    return pa.RecordBatch.from_pydict(columns, schema=IDENTITY_SCHEMA)


def _scope(source: str | None, batch_id: int | None) -> str:
    parts = []
    if source is not None:
        parts.append(f"source={source}")
    if batch_id is not None:
        parts.append(f"batch={batch_id}")
    return " ".join(parts) or "all"


@contextmanager
def workspace(vault: Vault, *, reason: str, actor: str) -> Iterator[Workspace]:
    """Create a private workspace directory, yield it, and remove it whatever happens."""
    reason, actor = check_reason(reason, actor)
    root = workspaces_root(vault.settings)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    remove_stale_workspaces(vault.settings)
    path = root / f"ws-{secrets.token_hex(8)}"
    path.mkdir(mode=0o700)
    try:
        (path / OWNER_FILE).write_text(f"{socket.gethostname()} {os.getpid()}\n")
        yield Workspace(vault, path, reason, actor)
    finally:
        shutil.rmtree(path, ignore_errors=True)
