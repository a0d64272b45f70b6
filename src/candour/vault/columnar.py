"""Opening sealed records a column at a time: a chunk of vault rows -> one Arrow record batch.

:meth:`candour.vault.crypto.Sealer.open_record` opens one record into an
:class:`~candour.vault.records.IdentityRecord`, which is right for the handful a reviewer
looks at, but at a million records the per-record Python (parsing, a dataclass, then
transposing the objects back into columns) costs more than the decryption itself. Linkage
wants columns, so this module goes straight there:

1. the chunk's sealed blobs are joined into one buffer, and every field's header
   (``id | length | nonce``, see :mod:`candour.vault.crypto`) is read for all records at once
   with numpy, one "slot" (first field, second field, ...) at a time;
2. each field is then decrypted for all the records holding it with one ``map`` over the
   cipher, which runs the loop in C, exactly as sealing does;
3. plaintexts become an Arrow string column (``std`` or ``std NUL raw``: the standardised part
   is kept, see :func:`candour.vault.crypto.field_plaintext`).

The cipher, the nonces, the associated data and therefore the authentication are the same as
``open_record``'s; a record that fails them raises the same :class:`VaultCryptoError`, naming
the record.
"""

from __future__ import annotations

import json
import operator
import os
import subprocess
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.exceptions import InvalidTag

from candour.vault.crypto import (
    AAD_PREFIX,
    FORMAT_V1,
    IDENTIFIERS_ID,
    NONCE_BYTES,
    Sealer,
    VaultCryptoError,
)
from candour.vault.parallel import receive as _receive
from candour.vault.parallel import send as _send
from candour.vault.records import (
    DOB_VALID,
    FIELDS,
    IDENTIFIERS,
    NHS_NUMBER_VALID,
    POSTCODE_VALID,
)
from candour.vault.workers import die_with_parent, stop_workers

_HEADER_BYTES = 5  # field id (1 byte) and length (4 bytes, little-endian)
_FIELD_NAMES = [name.encode() for name in FIELDS]
_NONCE_DTYPE = np.dtype((np.void, NONCE_BYTES))
# Decryption is spread over at most this many processes: enough for the machines Candour
# targets, and no more, since the database read feeding them is single-threaded.
MAX_WORKERS = 4
_SRC = Path(__file__).resolve().parents[2]


def _aad_base(record_key: str) -> bytes:
    return AAD_PREFIX + record_key.encode() + b"\x00"


def _standardised(plains: list[bytes]) -> pa.Array:
    """The standardised part of each field plaintext, as strings (null when there is none)."""
    text = pa.array(plains, pa.binary()).cast(pa.string())
    has_raw = pc.match_substring(text, "\x00")
    if not pc.any(has_raw).as_py():
        return text
    # ``std NUL raw`` keeps ``std``; ``NUL raw`` (nothing standardised) becomes null.
    std = pc.replace_substring_regex(text, "(?s)\x00.*$", "")
    std = pc.if_else(pc.and_(has_raw, pc.equal(std, "")), pa.scalar(None, pa.string()), std)
    return std


def _scatter(values: pa.Array, rows: np.ndarray, n: int) -> pa.Array:
    """A column of ``n`` rows holding ``values`` at ``rows`` and null elsewhere."""
    positions = np.full(n, -1, dtype=np.int64)
    positions[rows] = np.arange(len(rows), dtype=np.int64)
    indices = pa.array(positions, mask=positions < 0)
    return pc.take(values, indices)


def _locate(
    keys: Sequence[str], blobs: Sequence[bytes]
) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    """Every field in the chunk: (buffer, record index, field id, offset of its header)."""
    n = len(blobs)
    lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=n)
    buffer = b"".join(blobs)
    data = np.frombuffer(buffer, dtype=np.uint8)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    bad = (
        np.flatnonzero(
            (lengths == 0) | (data[np.minimum(starts, max(len(data) - 1, 0))] != FORMAT_V1)
        )
        if n
        else np.empty(0, np.int64)
    )
    if len(bad):
        raise VaultCryptoError(f"{keys[int(bad[0])]}: unknown vault record format")
    records: list[np.ndarray] = []
    field_ids: list[np.ndarray] = []
    offsets: list[np.ndarray] = []
    live = np.arange(n, dtype=np.int64)
    cursor = starts + 1
    while True:
        # One slot per pass: the first field of every record, then the second, and so on.
        live = live[cursor[live] < ends[live]]
        if not len(live):
            break
        at = cursor[live]
        if np.any(at + _HEADER_BYTES > ends[live]):
            row = int(live[np.flatnonzero(at + _HEADER_BYTES > ends[live])[0]])
            raise VaultCryptoError(f"{keys[row]}: a sealed record is malformed (truncated)")
        field_id = data[at].astype(np.int64)
        size = (
            data[at + 1].astype(np.int64)
            | data[at + 2].astype(np.int64) << 8
            | data[at + 3].astype(np.int64) << 16
            | data[at + 4].astype(np.int64) << 24
        )
        nxt = at + _HEADER_BYTES + size
        wrong = (nxt > ends[live]) | (size < NONCE_BYTES + 16)
        wrong |= (field_id >= len(FIELDS)) & (field_id != IDENTIFIERS_ID)
        if np.any(wrong):
            row = int(live[np.flatnonzero(wrong)[0]])
            raise VaultCryptoError(f"{keys[row]}: a sealed record is malformed (bad field)")
        records.append(live)
        field_ids.append(field_id)
        offsets.append(at)
        cursor[live] = nxt
    if not records:
        empty = np.empty(0, dtype=np.int64)
        return buffer, empty, empty, empty
    return buffer, np.concatenate(records), np.concatenate(field_ids), np.concatenate(offsets)


def _decrypt_field(
    sealer: Sealer,
    keys: Sequence[str],
    bases: np.ndarray,
    buffer: bytes,
    rows: np.ndarray,
    offsets: np.ndarray,
    field_name: bytes,
) -> list[bytes]:
    """Decrypt one field of the given records (their header offsets in ``buffer``)."""
    data = np.frombuffer(buffer, dtype=np.uint8)
    nonce_at = offsets + _HEADER_BYTES
    size = (
        data[offsets + 1].astype(np.int64)
        | data[offsets + 2].astype(np.int64) << 8
        | data[offsets + 3].astype(np.int64) << 16
        | data[offsets + 4].astype(np.int64) << 24
    )
    # Nonces are fixed-width: gathered for the whole column in one numpy step.
    gather = nonce_at[:, None] + np.arange(NONCE_BYTES, dtype=np.int64)
    nonces = cast(
        list[bytes], np.ascontiguousarray(data[gather]).view(_NONCE_DTYPE).ravel().tolist()
    )
    body_start = (nonce_at + NONCE_BYTES).tolist()
    body_end = (nonce_at + size).tolist()
    bodies = map(buffer.__getitem__, map(slice, body_start, body_end))
    aads = map(operator.add, bases[rows].tolist(), repeat(field_name))
    try:
        return list(map(sealer.aead.decrypt, nonces, bodies, aads))
    except InvalidTag:
        # Find the record to name (the slow way, only when something is wrong).
        for k, row in enumerate(rows.tolist()):
            try:
                sealer.aead.decrypt(
                    nonces[k],
                    buffer[body_start[k] : body_end[k]],
                    bases[row] + field_name,
                )
            except InvalidTag:
                raise VaultCryptoError(
                    f"{keys[row]}: a sealed field does not authenticate (wrong vault key, or "
                    "the vault was altered)"
                ) from None
        raise


def _identifiers_column(plains: list[bytes], rows: np.ndarray, n: int) -> pa.Array:
    """The ``identifiers`` map column: each record's standardised identifier values."""
    entries: list[list[tuple[str, str]] | None] = [[] for _ in range(n)]
    for row, plain in zip(rows.tolist(), plains, strict=True):
        pairs = json.loads(plain)
        entries[row] = [(name, pair[0]) for name, pair in pairs.items() if pair[0] is not None]
    return pa.array(entries, pa.map_(pa.string(), pa.string()))


def open_columns(
    sealer: Sealer,
    columns: Sequence[Sequence[Any]],
    schema: pa.Schema,
) -> pa.RecordBatch:
    """Open a chunk of vault rows, given as columns, into one record batch of ``schema``.

    ``columns`` is ``(record_keys, sources, batch_ids, flags, sealed)``; ``schema`` is the
    workspace's identity schema: the keys, the standardised fields of
    :data:`~candour.vault.records.FIELDS`, ``identifiers`` and the three validity flags.
    """
    keys, sources, batch_ids, flags, blobs = columns
    n = len(keys)
    if n == 0:
        return pa.RecordBatch.from_pydict(
            {f.name: pa.array([], f.type) for f in schema}, schema=schema
        )
    buffer, records, field_ids, offsets = _locate(keys, blobs)
    bases = np.empty(n, dtype=object)
    bases[:] = list(map(_aad_base, keys))
    out: dict[str, Any] = {
        "record_key": pa.array(keys, pa.string()),
        "source": pa.array(sources, pa.string()),
        "batch_id": pa.array(batch_ids, pa.int64()),
    }
    for field_id, name in enumerate(FIELDS):
        chosen = np.flatnonzero(field_ids == field_id)
        if not len(chosen):
            out[name] = pa.nulls(n, pa.string())
            continue
        holders = records[chosen]
        plains = _decrypt_field(
            sealer, keys, bases, buffer, holders, offsets[chosen], _FIELD_NAMES[field_id]
        )
        out[name] = _scatter(_standardised(plains), holders, n)
    chosen = np.flatnonzero(field_ids == IDENTIFIERS_ID)
    if len(chosen):
        holders = records[chosen]
        plains = _decrypt_field(
            sealer, keys, bases, buffer, holders, offsets[chosen], IDENTIFIERS.encode()
        )
        out[IDENTIFIERS] = _identifiers_column(plains, holders, n)
    else:
        out[IDENTIFIERS] = pa.array([[]] * n, pa.map_(pa.string(), pa.string()))
    bits = np.fromiter(flags, dtype=np.int64, count=n)
    out["date_of_birth_valid"] = pa.array((bits & DOB_VALID) != 0)
    out["postcode_valid"] = pa.array((bits & POSTCODE_VALID) != 0)
    out["nhs_number_valid"] = pa.array((bits & NHS_NUMBER_VALID) != 0)
    return pa.RecordBatch.from_pydict(out, schema=schema)


def _chunks(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    """Rows regrouped as column tuples, ``size`` rows at a time."""
    chunk: list[Sequence[Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield list(zip(*chunk, strict=True))
            chunk = []
    if chunk:
        yield list(zip(*chunk, strict=True))


def _idle_cores(window: float = 0.2) -> float | None:
    """How many cores sat idle over the last ``window`` seconds (from /proc/stat), or None
    where the kernel does not say."""
    import time

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
        return sum(fields), fields[3] + (fields[4] if len(fields) > 4 else 0)

    try:
        total0, idle0 = sample()
        time.sleep(window)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (os.cpu_count() or 1) * (idle1 - idle0) / (total1 - total0)


def default_workers() -> int:
    """Processes to open records with: one per core (at most :data:`MAX_WORKERS`) when a core
    is idle now, else 1 (this process alone).

    Workers cost CPU of their own (each starts an interpreter, and every batch they open comes
    back through a pipe); on a machine whose cores are already busy they only compete with
    each other, and opening the records here was faster (measured when the workers were also
    handed every row: 200,000 records in 8 s here, 12 s with two workers, at a load average
    of 4 on 2 cores). Idleness is sampled now rather than read from the load average,
    which trails by a minute: right after an ingest (the usual moment for a link run) the load
    average still counts the ingest's own workers.
    """
    cores = os.cpu_count() or 1
    if cores < 2:
        return 1
    idle = _idle_cores()
    if idle is None:
        try:
            idle = cores - os.getloadavg()[0]
        except OSError:  # no load figures on this platform: assume the cores are free
            idle = float(cores)
    if idle < 1.0:
        return 1
    return min(MAX_WORKERS, cores)


class OpenWorkerError(VaultCryptoError):
    """A worker process opening vault records stopped or failed."""


class _Workers:
    """Worker processes (``python -m candour.vault.columnar``), each reading and opening one
    run of keys at a time. A fresh interpreter rather than ``multiprocessing``, which would
    re-import the caller's main module in every worker (a script without a main guard cannot
    survive it).
    """

    def __init__(self, count: int, sealer: Sealer, schema: pa.Schema, vault_url: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_SRC), env.get("PYTHONPATH")]))
        self.procs: list[subprocess.Popen[bytes]] = []
        try:
            for _ in range(count):
                proc = subprocess.Popen(
                    [sys.executable, "-m", "candour.vault.columnar"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    env=env,
                )
                self.procs.append(proc)
                # The keys (and the vault's address, which may hold a password) go down the
                # pipe once, never on a command line or to disk.
                self.send(proc, (sealer, schema, vault_url))
        except BaseException:
            self.close()
            raise

    def send(self, proc: subprocess.Popen[bytes], message: Any) -> None:
        """Hand a worker one message."""
        assert proc.stdin is not None
        try:
            _send(proc.stdin, message)
        except OSError as exc:
            raise OpenWorkerError(f"a vault worker process has stopped ({exc})") from None

    def receive(self, proc: subprocess.Popen[bytes]) -> pa.RecordBatch:
        """A worker's answer: the batch it opened (its failure is raised here)."""
        assert proc.stdout is not None
        answer = _receive(proc.stdout)
        if answer is None:
            raise OpenWorkerError(f"a vault worker process stopped (exit {proc.poll()})")
        kind, value = answer
        if kind == "crypto":
            raise VaultCryptoError(value)
        if kind != "ok":
            raise OpenWorkerError(f"a vault worker process failed: {value}")
        batch: pa.RecordBatch = value
        return batch

    def close(self) -> None:
        """Stop the workers (closing their input ends their loop)."""
        stop_workers(self.procs)


def open_rows(
    sealer: Sealer,
    rows: Iterable[Sequence[Any]],
    schema: pa.Schema,
    *,
    chunk_size: int,
) -> Iterator[pa.RecordBatch]:
    """Open vault rows ``(record_key, source, batch_id, flags, sealed)`` into record batches,
    ``chunk_size`` rows each, in the rows' order, in this process (see :func:`open_ranges`
    for worker processes)."""
    for columns in _chunks(rows, chunk_size):
        yield open_columns(sealer, columns, schema)


def open_ranges(
    sealer: Sealer,
    vault_url: str,
    ranges: Sequence[tuple[str | None, str | None]],
    schema: pa.Schema,
    *,
    source: str | None = None,
    batch_id: int | None = None,
    workers: int,
) -> Iterator[pa.RecordBatch]:
    """Open the vault's records in runs of keys ``(after, upto]``, each run read *and* opened
    by a worker process with its own connection to the vault; batches come in ``ranges``'
    order.

    This process only hands out ranges and collects batches, so every core decrypts: with
    :func:`open_rows` this process reads and hands over every row itself, and a link run's
    million records then wait on it.
    """
    pool = _Workers(workers, sealer, schema, vault_url)
    try:
        # Two ranges queued per worker: a range is a few bytes, so sending never blocks, and a
        # worker starts its next range while this process takes the batch it just finished.
        busy: deque[subprocess.Popen[bytes]] = deque()
        slots = deque([proc for proc in pool.procs for _ in range(2)])
        for after, upto in ranges:
            if not slots:
                proc = busy.popleft()
                yield pool.receive(proc)
                slots.append(proc)
            proc = slots.popleft()
            pool.send(proc, (source, batch_id, after, upto))
            busy.append(proc)
        while busy:
            yield pool.receive(busy.popleft())
    finally:
        pool.close()


def main() -> None:
    """A worker: read and open the runs of keys given on standard input until it closes."""
    die_with_parent()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    setup = _receive(stdin)
    if setup is None:
        return
    sealer, schema, vault_url = setup
    from candour.vault.core import engine_for_url, sealed_rows

    engine = engine_for_url(vault_url, reading=True)
    while (job := _receive(stdin)) is not None:
        try:
            with engine.connect() as connection:
                rows = sealed_rows(connection, *job)
            columns = list(zip(*rows, strict=True)) if rows else [()] * 5
            _send(stdout, ("ok", open_columns(sealer, columns, schema)))
        except VaultCryptoError as exc:
            _send(stdout, ("crypto", str(exc)))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
            _send(stdout, ("error", f"{type(exc).__name__}: {exc}"))


if __name__ == "__main__":
    main()
