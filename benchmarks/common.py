"""What every benchmark returns, so the runner can write one table in docs/benchmarks.md.

A benchmark is a module ``benchmarks/bench_<name>.py`` with a function
``run(quick: bool) -> list[Result]``. ``quick`` runs at small scale (CI checks the benchmark code
still works); the full run measures against the issue's target. Every figure is reported beside a
reference measured in the same run (bare Splink, raw DuckDB, hashlib), as a ratio.
"""

from __future__ import annotations

import resource
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Result:
    """One measured figure, its reference in the same run, and the target it is judged by."""

    benchmark: str  # e.g. "synth throughput"
    figure: float  # the measured value
    unit: str  # e.g. "people/s", "s", "ms"
    target: str  # the target, in words, e.g. "<= 180 s for 1,500,000 people"
    met: bool | None  # None when the run was too small to judge (quick mode)
    reference: str = ""  # what the ratio is against, e.g. "hashlib sha256"
    reference_figure: float | None = None
    ratio: float | None = None  # figure / reference_figure, or as the benchmark defines it
    notes: str = ""
    extra: dict[str, float] = field(default_factory=dict)


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """Time a block: ``with stopwatch() as elapsed: ...; elapsed()`` gives seconds."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident memory of this process (or of waited-for children), in MB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


@contextmanager
def scratch_postgres(admin_url: str, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (a SQLAlchemy URL), dropped afterwards.

    ``admin_url`` is a libpq URL of any database on the server; the new one is named
    ``prefix`` + a random suffix. Used by the tests' ``postgres_url`` fixture and the
    scale-out benchmark.
    """
    import psycopg
    from psycopg import sql

    from candour.config import Settings
    from candour.store import dispose

    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    url = f"{base}/{name}"
    try:
        yield url
    finally:
        dispose(Settings(database_url=url))
        with psycopg.connect(admin_url, autocommit=True) as admin:
            # Only the database made a moment ago.
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
