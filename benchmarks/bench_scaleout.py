"""The demo beyond one machine: ``candour demo`` on PostgreSQL + Spark against the embedded
default (SQLite + DuckDB), on the same county (issue 8).

Full run: 200,000 people, the default county (seed 1), once on each backend, every stage of the
demo (init, synth, ingest, link, evaluate, register, choices, queries, studies, open data).
Each figure is PostgreSQL + Spark's, with the embedded default's as its reference: linkage F1
against the synthetic truth, the three studies' headline figures, and the demo's wall time.
Quick run: the demo's minimum county with denser effects (so that every study runs).

The PostgreSQL database is created for the run and dropped after it, on the server named by
``CANDOUR_BENCH_PG_ADMIN`` (a database the benchmark may connect to in order to create one;
default ``postgresql://postgres@127.0.0.1:5432/test``). Spark runs at ``CANDOUR_SPARK_MASTER``
(``local[2]`` by default).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmarks.bench_studies import SMALL_CONFIG
from benchmarks.common import Result, scratch_postgres, stopwatch
from candour.config import Settings
from candour.demo import MIN_PEOPLE, DemoReport, run_demo
from candour.store import dispose
from candour.synth.config import SynthConfig
from candour.vault import dispose_vault

FULL_PEOPLE = 200_000
# A smaller full run (e.g. to fit a time slot): the comparisons are still judged, but the
# "completes at 200,000 people" target is then reported as not met.
PEOPLE_OVERRIDE = os.environ.get("CANDOUR_BENCH_SCALEOUT_PEOPLE")
SEED = 1
PG_ADMIN = os.environ.get("CANDOUR_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
# "The same linkage quality": both engines train and score the same Splink model; Spark sums EM
# steps in another order, so a pair at the threshold may fall the other way. 0.002 of F1 is
# about seven such pairs at the quick scale (3,810 true pairs), thousands at full scale, and
# far less than any real difference between the engines.
F1_TOLERANCE = 0.002
# "The same study results": equal to the precision the demo prints them at (a rate change to
# 0.1%, an adjusted Rand index and a precision to 0.01), so half a unit of that.
STUDY_TOLERANCE = {"estimate": 0.0005, "adjusted_rand": 0.005, "precision_at_100": 0.005}


def run_once(
    settings: Settings, people: int, config: SynthConfig | None
) -> tuple[DemoReport, float]:
    """The whole demo in ``settings``' home; returns its report and wall seconds."""
    try:
        with stopwatch() as elapsed:
            report = run_demo(settings, people=people, seed=SEED, config=config)
        return report, elapsed()
    finally:
        dispose(settings)
        dispose_vault(settings)


def _figure(report: DemoReport, study: str, key: str) -> float:
    results = report.facts["studies"]
    if study not in results:
        reason = report.facts["studies_not_run"].get(study, "it did not run")
        raise RuntimeError(f"{study} gave no figures: {reason}")
    value = results[study].figures.get(key)
    if value is None:
        raise RuntimeError(f"{study} gave no {key}")
    return float(value)


def _stages(report: DemoReport) -> str:
    return ", ".join(
        f"{s.name} {s.seconds:.0f} s"
        for s in report.stages
        if s.name in ("ingest", "link", "queries", "studies")
    )


def run(quick: bool) -> list[Result]:
    """Run the demo on both backends and compare what they found."""
    people = MIN_PEOPLE if quick else int(PEOPLE_OVERRIDE or FULL_PEOPLE)
    config = SynthConfig.model_validate(SMALL_CONFIG) if quick else None
    with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp:
        # Explicit, so that CANDOUR_* variables in the environment cannot swap the backends.
        embedded = Settings(
            home=Path(tmp) / "embedded", database_url=None, vault_url=None, engine="duckdb"
        )
        reference, reference_seconds = run_once(embedded, people, config)
        with scratch_postgres(PG_ADMIN, "candour_bench_scaleout_") as url:
            scaled = Settings(
                home=Path(tmp) / "scaleout", database_url=url, vault_url=None, engine="spark"
            )
            report, seconds = run_once(scaled, people, config)
    judge: Callable[[bool], bool | None] = (lambda ok: None) if quick else (lambda ok: bool(ok))
    scale = f"{people:,} people, seed {SEED}"
    backends = "PostgreSQL + Spark; reference SQLite + DuckDB"

    ours, theirs = report.facts["quality"], reference.facts["quality"]
    results = [
        Result(
            "scaleout linkage pairwise F1",
            ours.pairwise_f1,
            "F1",
            f"equal to the embedded default's (within {F1_TOLERANCE})",
            judge(abs(ours.pairwise_f1 - theirs.pairwise_f1) <= F1_TOLERANCE),
            reference="embedded default (SQLite + DuckDB)",
            reference_figure=theirs.pairwise_f1,
            ratio=ours.pairwise_f1 / theirs.pairwise_f1 if theirs.pairwise_f1 else None,
            notes=(
                f"{scale}; {backends}; precision {ours.pairwise_precision:.4f} vs "
                f"{theirs.pairwise_precision:.4f}, recall {ours.pairwise_recall:.4f} vs "
                f"{theirs.pairwise_recall:.4f}; {ours.records:,} records, "
                f"{ours.true_pairs:,} true pairs"
            ),
            extra={
                "precision": ours.pairwise_precision,
                "recall": ours.pairwise_recall,
                "reference_precision": theirs.pairwise_precision,
                "reference_recall": theirs.pairwise_recall,
            },
        )
    ]

    # The home-safety estimate is a relative change (negative when visits help): as in the
    # studies benchmark, it is reported as a rate ratio, 1 + estimate, so it stays positive.
    keys = ("estimate", "ci_low", "ci_high")
    estimate = {k: _figure(report, "home-safety-visits", k) for k in keys}
    base = {k: _figure(reference, "home-safety-visits", k) for k in estimate}
    same = all(abs(estimate[k] - base[k]) <= STUDY_TOLERANCE["estimate"] for k in estimate)
    results.append(
        Result(
            "scaleout home-safety-visits rate ratio",
            1.0 + estimate["estimate"],
            "ratio",
            "the embedded default's estimate and 95% CI, to 0.1%",
            judge(same),
            reference="embedded default (SQLite + DuckDB)",
            reference_figure=1.0 + base["estimate"],
            ratio=(1.0 + estimate["estimate"]) / (1.0 + base["estimate"]),
            notes=(
                f"{scale}; relative change {estimate['estimate']:+.4f} (95% CI "
                f"{estimate['ci_low']:+.4f} to {estimate['ci_high']:+.4f}) vs "
                f"{base['estimate']:+.4f} ({base['ci_low']:+.4f} to {base['ci_high']:+.4f})"
            ),
            extra={f"reference_{k}": v for k, v in base.items()} | estimate,
        )
    )
    for study, key, label in (
        ("family-needs", "adjusted_rand", "adjusted Rand index"),
        ("hmo-risk", "precision_at_100", "precision at 100"),
    ):
        mine, theirs_figure = _figure(report, study, key), _figure(reference, study, key)
        tolerance = STUDY_TOLERANCE[key]
        results.append(
            Result(
                f"scaleout {study} {label}",
                mine,
                "share" if key == "precision_at_100" else "ARI",
                f"the embedded default's, to {tolerance * 2:g}",
                judge(abs(mine - theirs_figure) <= tolerance),
                reference="embedded default (SQLite + DuckDB)",
                reference_figure=theirs_figure,
                ratio=mine / theirs_figure if theirs_figure else None,
                notes=f"{scale}; {backends}",
            )
        )
    results.append(
        Result(
            "scaleout demo wall time",
            seconds,
            "s",
            f"completes at {FULL_PEOPLE:,} people",
            judge(people >= FULL_PEOPLE),
            reference="embedded default (SQLite + DuckDB)",
            reference_figure=reference_seconds,
            ratio=seconds / reference_seconds,
            notes=(
                f"{scale}; every stage of candour demo --no-serve; Spark at "
                f"{scaled.spark_master}: {_stages(report)}; embedded: {_stages(reference)}"
            ),
            extra=_seconds_by_stage(report)
            | {f"reference_{k}": v for k, v in _seconds_by_stage(reference).items()},
        )
    )
    return results


def _seconds_by_stage(report: DemoReport) -> dict[str, float]:
    return {s.name: round(s.seconds, 2) for s in report.stages}
