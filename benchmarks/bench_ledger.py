"""Ledger benchmark: durable append, full verification and inclusion proofs from tiles.

Every figure sits beside raw ``hashlib`` SHA-256 measured in the same run:

- append: entries/s, durable (fsynced tiles, bundles and checkpoint) in batches of 1,000; the
  ratio is entries/s over raw hashlib hashes/s of messages the size of an entry.
- verify --full: seconds to check a whole log from its files; the reference is the time raw
  hashlib takes for the same number of hashes (one leaf and one interior hash per entry).
- inclusion proof: milliseconds to build a proof from tiles with a cold tile cache; the ratio is
  over the time of one raw hash (the proof's cost in raw hashes).
"""

from __future__ import annotations

import hashlib
import random
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import Result, stopwatch
from candour.config import Settings
from candour.home import Home
from candour.ledger import ensure_keys, entries, public_dir, tree, verifier_key, verify
from candour.ledger.log import Log, TileReader

ORIGIN = "bench.candour.example/log"
BATCH = 1_000


def _entry(i: int) -> bytes:
    h = hashlib.sha256(i.to_bytes(8, "big")).hexdigest()
    return entries.encode(
        "query",
        {
            "time": "2026-01-01T00:00:00Z",
            "use_id": "DU-2026-001",
            "sql_hash": h,
            "choices_hash": h,
            "cohort_hash": h,
            "output_hash": h,
        },
    )


def _hashlib_rate(message: bytes, seconds: float = 0.5) -> float:
    sha = hashlib.sha256
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10_000):
            sha(message).digest()
        n += 10_000
    return n / (time.perf_counter() - start)


def run(quick: bool) -> list[Result]:
    """Run the ledger benchmarks; ``quick`` uses a 20,000-entry log instead of 1,000,000."""
    total = 20_000 if quick else 1_000_000
    work = Path(tempfile.mkdtemp(prefix="candour-bench-ledger-"))
    try:
        home = Home(work / "home")
        home.create_directories()
        ensure_keys(home, ORIGIN, "witness.bench.example/w")
        conf = Settings(home=home.root, log_origin=ORIGIN)
        log = Log.open(conf)
        template = [_entry(i) for i in range(BATCH)]
        entry_size = len(template[0])
        ref_rate = _hashlib_rate(template[0])

        with stopwatch() as elapsed:
            for _ in range(0, total, BATCH):
                log.append(template)
        append_rate = total / elapsed()

        sample = 2_000
        with stopwatch() as elapsed_record:
            for start in range(0, sample, 200):
                encoded = [_entry(start + i) for i in range(200)]
                log.append(encoded)
        record_rate = sample / elapsed_record()
        size = total + sample

        source = verify.DirSource(public_dir(home))
        with stopwatch() as elapsed_verify:
            report = verify.verify(source, verifier_key(home), full=True)
        verify_s = elapsed_verify()
        assert report.size == size and report.entries_checked == size
        sha = hashlib.sha256
        leaf_msg = b"\x00" + template[0]
        node_msg = b"\x01" + bytes(64)
        with stopwatch() as elapsed_ref:
            for _ in range(size):
                sha(leaf_msg).digest()
                sha(node_msg).digest()
        verify_ref = elapsed_ref()

        rng = random.Random(1)
        trials = 200
        root = report.root
        times = []
        fetch = log.storage.read
        for _ in range(trials):
            index = rng.randrange(size)
            t0 = time.perf_counter()
            reader = TileReader(fetch, size)  # cold: reads its tiles from disk
            proof = tree.inclusion_proof(index, size, reader.node)
            leaf = reader.node(0, index)
            times.append(time.perf_counter() - t0)
            tree.verify_inclusion(index, size, leaf, proof, root)
        times.sort()
        proof_ms = times[len(times) // 2] * 1000
        proof_p99 = times[int(len(times) * 0.99)] * 1000
        one_hash_ms = 1000 / ref_rate
    finally:
        shutil.rmtree(work, ignore_errors=True)

    judge = None if quick else True
    return [
        Result(
            benchmark="ledger durable append (batches of 1,000)",
            figure=append_rate,
            unit="entries/s",
            target=">= 50,000 entries/s",
            met=None if judge is None else append_rate >= 50_000,
            reference="hashlib sha256 of one entry-sized message",
            reference_figure=ref_rate,
            ratio=append_rate / ref_rate,
            notes=f"{total:,} entries of {entry_size} bytes, fsync per batch; "
            f"validated record() batches of 200: {record_rate:,.0f} entries/s",
            extra={"record_entries_per_s": record_rate, "entry_bytes": float(entry_size)},
        ),
        Result(
            benchmark="ledger verify --full",
            figure=verify_s,
            unit="s",
            target="<= 15 s for 1,000,000 entries",
            met=None if judge is None else verify_s <= 15,
            reference="hashlib sha256, one leaf and one node hash per entry",
            reference_figure=verify_ref,
            ratio=verify_s / verify_ref,
            notes=f"{size:,} entries, {report.files_checked:,} files",
        ),
        Result(
            benchmark="ledger inclusion proof from tiles",
            figure=proof_ms,
            unit="ms",
            target="<= 2 ms",
            met=None if judge is None else proof_ms <= 2,
            reference="hashlib sha256 of one entry-sized message (ms)",
            reference_figure=one_hash_ms,
            ratio=proof_ms / one_hash_ms,
            notes=f"median of {trials} cold proofs in a {size:,}-entry log; p99 {proof_p99:.3f} ms",
            extra={"p99_ms": proof_p99},
        ),
    ]


if __name__ == "__main__":
    import sys

    for result in run(quick="--full" not in sys.argv):
        print(result)
