"""Ingest throughput: rows per second, end to end, for the synthetic county's six extracts.

End to end means everything ``candour ingest`` does: hash and check each file, parse,
validate and standardise it, quarantine, append the warehouse, seal every identity field with
AES-256-GCM into the vault (with its keyed index), and append the ledger entry.

Reference, measured in the same run: DuckDB's own ``read_csv`` of the same files into a table
(all columns as text, the same delimiter), i.e. the cost of just reading the bytes. The ratio
is ingest time over that.
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
from pathlib import Path

import duckdb

from benchmarks.common import Result, peak_rss_mb, stopwatch
from candour.config import Settings
from candour.initialise import initialise_home
from candour.sources.ingest import ingest
from candour.sources.spec import load_sources
from candour.store import dispose
from candour.synth import write_county
from candour.vault import dispose_vault
from candour.warehouse import open_warehouse

FULL_PEOPLE = 300_000  # about 1.08 million records across the six extracts
QUICK_PEOPLE = 3_000
TARGET_ROWS_PER_S = 50_000.0


def _raw_duckdb_seconds(sources_yaml: Path) -> float:
    """DuckDB reading every extract into a table, as text: the floor for any ingest."""
    spec = load_sources(sources_yaml)
    con = duckdb.connect(":memory:")
    try:
        with stopwatch() as elapsed:
            for index, source in enumerate(spec.sources):
                for pattern in source.files:
                    path = str(sources_yaml.parent / pattern).replace("'", "''")
                    delimiter = source.csv.delimiter.replace("'", "''")
                    con.execute(
                        f"CREATE TABLE t{index} AS SELECT * FROM read_csv('{path}', "
                        f"header = true, all_varchar = true, delim = '{delimiter}')"
                    ).fetchall()
        return elapsed()
    finally:
        con.close()


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the sealing workers)."""
    return _own_cpu_seconds() + _children_cpu_seconds()


def _own_cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _children_cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


def run(quick: bool) -> list[Result]:
    """Ingest a county of ~1.08M records (20,000 people's worth in quick mode)."""
    people = QUICK_PEOPLE if quick else FULL_PEOPLE
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    settings = Settings(home=workdir / "home")
    try:
        summary = write_county(workdir / "county", people, seed=3)
        sources_yaml = workdir / "county" / "sources.yaml"
        raw = _raw_duckdb_seconds(sources_yaml)
        initialise_home(settings)
        cpu_before = _cpu_seconds()
        workers_before = _children_cpu_seconds()
        load_before = os.getloadavg()[0]
        with stopwatch() as elapsed, open_warehouse(settings) as warehouse:
            report = ingest(sources_yaml, settings, warehouse)
        seconds = elapsed()
        cpu = _cpu_seconds() - cpu_before
        workers_cpu = _children_cpu_seconds() - workers_before
        load = max(load_before, os.getloadavg()[0])
        rows = sum(r.rows_read for r in report.results)
        phases: dict[str, float] = {}
        for result in report.results:
            for phase, spent in result.phases.items():
                phases[phase] = phases.get(phase, 0.0) + spent
    finally:
        dispose_vault(settings)
        dispose(settings)
        shutil.rmtree(workdir, ignore_errors=True)
    judged = not quick
    per_second = rows / seconds
    split = ", ".join(f"{name} {spent:.1f} s" for name, spent in phases.items())
    return [
        Result(
            benchmark="ingest throughput",
            figure=per_second,
            unit="rows/s",
            target=f">= {TARGET_ROWS_PER_S:,.0f} rows/s end to end",
            met=(per_second >= TARGET_ROWS_PER_S) if judged else None,
            reference="DuckDB read_csv of the same files (all text)",
            reference_figure=rows / raw,
            ratio=seconds / raw,
            notes=(
                f"{rows:,} rows ({summary.records:,} records written) in {seconds:.1f} s; "
                f"{split}; CPU {cpu:.1f} s ({cpu / rows * 1e6:.1f} s per million rows; sealing "
                f"workers {workers_cpu:.1f} s) on {os.cpu_count()} cores; "
                f"machine load {load:.1f}; peak RSS {peak_rss_mb():.0f} MB"
            ),
            extra={
                "seconds": seconds,
                "rows": float(rows),
                "raw_seconds": raw,
                "cpu_seconds": cpu,
                "cpu_seconds_per_million_rows": cpu / rows * 1e6,
                "worker_cpu_seconds": workers_cpu,
                "load": load,
                **phases,
            },
        )
    ]
