"""Sealing on every core: worker processes encrypt shares of a batch and write them to the vault.

Encryption is the one step of ingest that runs in Python, one field at a time, so a large batch
is split: the rows to seal are handed over as a Parquet file (in the ingest's private staging
directory), and each worker seals a share of its row groups and inserts them into the vault,
one transaction per row group (SQLite lets one writer in at a time, so one worker writes while
the other encrypts). Every row carries the batch id: if anything fails, ingest deletes the
batch's rows, and a crash leaves the batch pending for ``candour.sources.ingest.recover``.

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
from pathlib import Path
from typing import IO, Any, Self

import pyarrow.parquet as pq

from candour.errors import CandourError
from candour.vault.crypto import Sealer

_SRC = Path(__file__).resolve().parents[2]


class SealWorkerError(CandourError):
    """A sealing worker failed; the batch is rolled back."""


def seal_share(
    sealer: Sealer,
    parquet: str,
    groups: Sequence[int],
    vault_url: str,
    source: str,
    batch_id: int,
) -> int:
    """Seal row groups of ``parquet`` and insert them into the vault; return rows written."""
    from candour.vault.core import VaultWriter, engine_for_url

    reader = pq.ParquetFile(parquet)
    engine = engine_for_url(vault_url, deferred_sync=True)
    written = 0
    try:
        for group in groups:
            table = reader.read_row_group(group)
            columns = [column.to_pylist() for column in table.columns]
            sealed, lookups = sealer.seal_columns(columns, source, batch_id)
            with engine.begin() as connection:
                VaultWriter(connection).insert(sealed, lookups)
            written += len(sealed)
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
        for proc in self._procs:
            if proc.stdin is not None and not proc.stdin.closed:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()

    def seal(
        self, sealer: Sealer, parquet: Path, vault_url: str, source: str, batch_id: int
    ) -> int:
        """Seal every row of ``parquet`` (``COLUMN_LAYOUT``) into the vault; return rows."""
        groups = pq.ParquetFile(str(parquet)).metadata.num_row_groups
        shares = [list(range(groups))[i :: self.size] for i in range(self.size)]
        busy: list[subprocess.Popen[bytes]] = []
        for proc, share in zip(self._procs, shares, strict=True):
            if not share:
                continue
            assert proc.stdin is not None
            try:
                send(
                    proc.stdin,
                    {
                        "sealer": sealer,
                        "parquet": str(parquet),
                        "groups": share,
                        "vault_url": vault_url,
                        "source": source,
                        "batch_id": batch_id,
                    },
                )
            except (BrokenPipeError, OSError) as exc:
                raise SealWorkerError(f"a sealing worker has stopped ({exc})") from exc
            busy.append(proc)
        total = 0
        failure: str | None = None
        for proc in busy:
            assert proc.stdout is not None
            reply = receive(proc.stdout)
            if reply is None:
                failure = failure or f"a sealing worker exited (code {proc.poll()})"
            elif reply[0] != "ok":
                failure = failure or f"a sealing worker failed: {reply[1]}"
            else:
                total += int(reply[1])
        if failure:
            raise SealWorkerError(failure)
        return total
