"""Running a study end to end: staff, data use, gated queries, release, publication, report.

    result = run_study("home-safety-visits", settings=settings, purposes=purposes)
    result.figures      # {"estimate": ..., "ci_low": ..., "ci_high": ...}

``purposes`` is the configured purpose set (``candour.choices.load_purposes(settings)``): the
register checks a use's purpose and output type against it, and studies may not import the
choices package themselves (the design's one-way imports), so the caller passes it in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from candour.config import Settings
from candour.home import Home
from candour.register import PurposePolicy, uk_today
from candour.studies import family_needs, hmo_risk, home_safety
from candour.studies.charts import draw_family_needs, draw_hmo_risk, draw_home_safety
from candour.studies.governance import (
    StudyError,
    StudyRun,
    StudyUsers,
    active_use,
    ensure_users,
    load_study_use,
)
from candour.studies.report import Chart, Report, write_report

Figures = dict[str, float | None]


@dataclass(frozen=True)
class StudyDef:
    """A built-in study: its name, question, use file, who runs it, and its steps."""

    name: str
    title: str
    question: str
    use_file: str
    users: StudyUsers
    analyse: Callable[[StudyRun], tuple[dict[str, float], dict[str, Any]]]
    evaluate: Callable[[Path, dict[str, Any]], dict[str, Any]] | None
    describe: Callable[[dict[str, float], dict[str, Any]], dict[str, list[str]]]
    draw: Callable[[dict[str, Any]], list[tuple[Chart, Callable[[Path], None]]]]
    figure_keys: tuple[str, ...] = field(default=())


STUDIES: dict[str, StudyDef] = {
    home_safety.NAME: StudyDef(
        name=home_safety.NAME,
        title="Home safety visits and falls",
        question="Did fire service Safe and Well visits reduce later A&E attendances for falls?",
        use_file=home_safety.USE_FILE,
        users=StudyUsers(),
        analyse=home_safety.run,
        evaluate=None,
        describe=home_safety.describe,
        draw=draw_home_safety,
        figure_keys=("estimate", "ci_low", "ci_high"),
    ),
    family_needs.NAME: StudyDef(
        name=family_needs.NAME,
        title="Families grouped by patterns of need",
        question="Which patterns of need occur together in families, and how common is each?",
        use_file=family_needs.USE_FILE,
        users=StudyUsers(),
        analyse=family_needs.run,
        evaluate=family_needs.evaluate,
        describe=family_needs.describe,
        draw=draw_family_needs,
        figure_keys=("adjusted_rand",),
    ),
    hmo_risk.NAME: StudyDef(
        name=hmo_risk.NAME,
        title="Likely unlicensed houses in multiple occupation",
        question="Which properties are most likely to be unlicensed HMOs?",
        use_file=hmo_risk.USE_FILE,
        users=StudyUsers(analyst="hmo-enforcement"),
        analyse=hmo_risk.run,
        evaluate=hmo_risk.evaluate,
        describe=hmo_risk.describe,
        draw=draw_hmo_risk,
        figure_keys=("precision_at_100",),
    ),
}


@dataclass(frozen=True)
class StudyResult:
    """The outcome of one study run: headline figures, and the governance trail behind them."""

    name: str
    use_id: str
    use_created: bool
    figures: Figures
    details: dict[str, Any]
    datasets: list[str]
    releases: list[str]
    ledger_entries: dict[str, list[int]]
    report_dir: Path


def list_studies() -> list[StudyDef]:
    """The built-in studies, by name."""
    return [STUDIES[name] for name in sorted(STUDIES)]


def get_study(name: str) -> StudyDef:
    """The built-in study called ``name``, or a :class:`StudyError` naming the choices."""
    try:
        return STUDIES[name]
    except KeyError:
        raise StudyError(
            f"no study {name!r}; the studies are {', '.join(sorted(STUDIES))}"
        ) from None


def run_study(
    name: str,
    *,
    settings: Settings,
    purposes: PurposePolicy,
    engine: str | None = None,
    truth_dir: Path | None = None,
) -> StudyResult:
    """Run study ``name`` in the home of ``settings`` and return its headline figures.

    Creates the study's staff if missing, registers (or reuses) its approved data use, runs its
    gated queries, releases and publishes its safe outputs, and writes its report. When the
    home holds a synthetic county's ground truth (``<home>/synth/truth``, or ``truth_dir``), the
    figures that need it (adjusted Rand index, precision at 100) are computed against it;
    otherwise they are None. The truth is read only to score the study, never to analyse.
    """
    study = get_study(name)
    home = Home(settings.home)
    home.require_initialised()
    chosen_engine = engine or settings.engine
    ensure_users(study.users, settings=settings)
    spec = load_study_use(study.use_file, study.users, uk_today())
    use, created = active_use(spec, study.users, purposes=purposes, settings=settings)
    run = StudyRun(
        study=name, settings=settings, users=study.users, use=use, engine=chosen_engine
    )
    figures, details = study.analyse(run)
    all_figures: Figures = {k: figures.get(k) for k in study.figure_keys}
    truth = truth_dir or home.synth / "truth"
    scored: dict[str, Any] = {}
    if study.evaluate is not None:
        scored = study.evaluate(truth, details) if truth.is_dir() else {}
        for key in study.figure_keys:
            if key in scored:
                all_figures[key] = scored[key]
    # Keys starting with "_" hold in-environment rows kept only for scoring: drop them so that
    # nothing record-level reaches the result, the report or the caller.
    for key in [k for k in details if k.startswith("_")]:
        del details[key]
    details["truth"] = {k: v for k, v in scored.items() if k not in study.figure_keys}
    text = study.describe({k: v for k, v in all_figures.items() if v is not None}, details)
    report = Report(
        name=name,
        title=study.title,
        question=study.question,
        use_id=use.use_id,
        use_title=use.spec.title,
        engine=chosen_engine,
        run_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        figures=all_figures,
        findings=text["findings"],
        method=text["method"],
        leaves=text["leaves"],
        tables=details.get("tables", []),
        datasets=[{"name": d.name, "title": d.title} for d in run.datasets],
        ledger_entries=run.ledger_entries(),
        truth=details["truth"],
    )
    folder = write_report(home, report, study.draw(details))
    return StudyResult(
        name=name,
        use_id=use.use_id,
        use_created=created,
        figures=all_figures,
        details=details,
        datasets=[d.name for d in run.datasets],
        releases=[r.release_id for r in run.releases],
        ledger_entries=run.ledger_entries(),
        report_dir=folder,
    )
