"""Synth throughput: people per second for a whole county (all six sources, truth and feed).

Reference, measured in the same run: a bare ``csv.writer`` writing the same number of rows of
the same width (pre-built strings, no generation), so the ratio shows what generation costs
over simply writing the bytes. Peak memory counts the parent and the worker processes.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path

from benchmarks.common import Result, peak_rss_mb, stopwatch
from candour.synth import write_county

FULL_PEOPLE = 1_500_000
QUICK_PEOPLE = 20_000
TARGET_SECONDS = 180.0
TARGET_MB = 4096.0


def _raw_csv_seconds(path: Path, rows: int, width: int) -> float:
    row = [f"value{k:02d}" for k in range(width)]
    batch = [row] * 10_000
    with stopwatch() as elapsed, path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        for _ in range(rows // len(batch)):
            writer.writerows(batch)
        writer.writerows(batch[: rows % len(batch)])
    return elapsed()


def run(quick: bool) -> list[Result]:
    """Write a county of 1.5M people (20,000 in quick mode) and report throughput and memory."""
    people = QUICK_PEOPLE if quick else FULL_PEOPLE
    workdir = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    try:
        with stopwatch() as elapsed:
            summary = write_county(workdir / "county", people, seed=1)
        seconds = elapsed()
        records = summary.records
        raw = _raw_csv_seconds(workdir / "raw.csv", records, 14)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    parent_mb = peak_rss_mb()
    child_mb = peak_rss_mb(children=True)
    workers = 2
    # RUSAGE_CHILDREN gives the largest single child; bound the total by assuming each worker
    # peaked at once alongside the parent.
    total_mb = parent_mb + workers * child_mb
    judged = not quick
    return [
        Result(
            benchmark="synth throughput",
            figure=people / seconds,
            unit="people/s",
            target=f"<= {TARGET_SECONDS:.0f} s for {FULL_PEOPLE:,} people (all sources)",
            met=(seconds <= TARGET_SECONDS) if judged else None,
            reference="bare csv.writer, same number of rows",
            reference_figure=records / raw,
            ratio=seconds / raw,
            notes=f"{people:,} people, {records:,} records in {seconds:.1f} s",
            extra={
                "seconds": seconds,
                "records": float(records),
                "records_per_s": records / seconds,
                "raw_csv_seconds": raw,
            },
        ),
        Result(
            benchmark="synth peak memory",
            figure=total_mb,
            unit="MB",
            target=f"<= {TARGET_MB:,.0f} MB for {FULL_PEOPLE:,} people",
            met=(total_mb <= TARGET_MB) if judged else None,
            notes=f"parent {parent_mb:.0f} MB + {workers} x largest worker {child_mb:.0f} MB",
            extra={"parent_mb": parent_mb, "child_mb": child_mb},
        ),
    ]


if __name__ == "__main__":
    for result in run(quick=False):
        print(result)
