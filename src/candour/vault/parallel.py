"""Sealing on every core: worker processes encrypt shares of a batch and write them to the vault.

Encryption is the one step of ingest that runs in Python, one field at a time, so a large batch
is split: the rows to seal are handed over as an Arrow IPC file (in the ingest's private staging
directory), and each worker seals a share of its record batches and inserts them into the
vault, one transaction per record batch (SQLite lets one writer in at a time; each worker
seals its next batch while it waits for its turn or writes). Every row carries the batch id:
if anything fails, ingest deletes the batch's rows, and a crash leaves the batch pending for
``candour.sources.ingest.recover``.

Workers are fresh interpreters (``python -m candour.vault.sealworker``) started once per ingest
and fed jobs over a pipe, rather than ``multiprocessing`` children: a fork of a process running
DuckDB threads is unsafe, and ``spawn``/``forkserver`` re-import the caller's main script.
Keys travel to the workers over that private pipe, never on a command line.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import IO, Any, Self

import pyarrow as pa

from candour.errors import CandourError
from candour.vault.crypto import Sealer
from candour.vault.workers import stop_workers

_SRC = Path(__file__).resolve().parents[2]


class SealWorkerError(CandourError):
    """A sealing worker failed; the batch is rolled back."""


def seal_share(
    sealer: Sealer,
    rows_file: str,
    groups: Sequence[int],
    vault_url: str,
    source: str,
    batch_id: int,
) -> int:
    """Seal record batches of ``rows_file`` (Arrow IPC) into the vault; return rows written.

    Sealing the next row group overlaps writing the last one: SQLite lets one writer in at a
    time and releases the interpreter lock while it works, so a worker waiting its turn at the
    lock goes on encrypting instead of sleeping.
    """
    from candour.vault.core import VaultWriter, engine_for_url

    reader = pa.ipc.open_file(pa.memory_map(rows_file))
    engine = engine_for_url(vault_url, deferred_sync=True)

    def write(sealed: list[Any], lookups: list[Any]) -> int:
        with engine.begin() as connection:
            VaultWriter(connection).insert(sealed, lookups)
        return len(sealed)

    written = 0
    writing: Future[int] | None = None
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="candour-vault") as writer:
            try:
                for group in groups:
                    batch = reader.get_batch(group)
                    columns = [column.to_pylist() for column in batch.columns]
                    del batch
                    sealed, lookups = sealer.seal_columns(columns, source, batch_id)
                    del columns
                    if writing is not None:
                        written += writing.result()
                    writing = writer.submit(write, sealed, lookups)
                if writing is not None:
                    written += writing.result()
                    writing = None
            finally:
                if writing is not None:
                    # Failing: still wait for the write under way, so that nothing of this
                    # batch is written after the caller has begun deleting it.
                    wait([writing])
    finally:
        engine.dispose()
    return written


def send(stream: IO[bytes], message: Any) -> None:
    """Write one length-prefixed pickled message."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(8, "little") + data)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    """Read one length-prefixed pickled message (None at end of stream)."""
    header = stream.read(8)
    if len(header) < 8:
        return None
    size = int.from_bytes(header, "little")
    return pickle.loads(stream.read(size))  # noqa: S301 - our own child process, our own pipe


class SealPool:
    """Long-lived sealing workers for one ingest run. Use as a context manager."""

    def __init__(self, workers: int) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_SRC), env.get("PYTHONPATH")]))
        self._procs = [
            subprocess.Popen(
                [sys.executable, "-m", "candour.vault.sealworker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
            for _ in range(max(1, workers))
        ]

    @property
    def size(self) -> int:
        """How many workers there are."""
        return len(self._procs)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers."""
        stop_workers(self._procs)

    def seal(
        self, sealer: Sealer, rows_file: Path, vault_url: str, source: str, batch_id: int
    ) -> int:
        """Seal every row of ``rows_file`` (``COLUMN_LAYOUT``) into the vault; return rows."""
        return self.start(sealer, rows_file, vault_url, source, batch_id).wait()

    def start(
        self, sealer: Sealer, rows_file: Path, vault_url: str, source: str, batch_id: int
    ) -> PendingSeal:
        """Hand every row of ``rows_file`` (Arrow IPC) to the workers; return at once.

        The caller can write the warehouse meanwhile; it must :meth:`PendingSeal.wait` before
        anything else touches the batch (even to delete it after a failure).
        """
        with pa.memory_map(str(rows_file)) as source_file:
            groups = pa.ipc.open_file(source_file).num_record_batches
        shares = [list(range(groups))[i :: self.size] for i in range(self.size)]
        pending = PendingSeal()
        for proc, share in zip(self._procs, shares, strict=True):
            if not share:
                continue
            assert proc.stdin is not None
            try:
                send(
                    proc.stdin,
                    {
                        "sealer": sealer,
                        "rows_file": str(rows_file),
                        "groups": share,
                        "vault_url": vault_url,
                        "source": source,
                        "batch_id": batch_id,
                    },
                )
            except (BrokenPipeError, OSError) as exc:
                pending.failure = f"a sealing worker has stopped ({exc})"
                break
            pending.busy.append(proc)
        if pending.failure:
            try:
                pending.wait()
            except SealWorkerError:
                pass
            raise SealWorkerError(pending.failure)
        return pending


class PendingSeal:
    """Sealing jobs handed to workers: :meth:`wait` for their answers."""

    def __init__(self) -> None:
        self.busy: list[subprocess.Popen[bytes]] = []
        self.failure: str | None = None
        self._total: int | None = None

    def wait(self) -> int:
        """Wait for every worker's answer; return the rows written, or raise if one failed.

        Each worker is waited for even after another has failed, so that when this returns or
        raises, no worker is still writing the batch.
        """
        if self._total is None:
            total = 0
            for proc in self.busy:
                assert proc.stdout is not None
                reply = receive(proc.stdout)
                if reply is None:
                    self.failure = self.failure or f"a sealing worker exited (code {proc.poll()})"
                elif reply[0] != "ok":
                    self.failure = self.failure or f"a sealing worker failed: {reply[1]}"
                else:
                    total += int(reply[1])
            self.busy = []
            self._total = total
        if self.failure:
            raise SealWorkerError(self.failure)
        return self._total
