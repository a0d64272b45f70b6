"""``candour demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from candour.cli.common import console, progress_bars, settings
from candour.cli.serve import serve
from candour.demo import (
    AREA_RATE_BOUNDS,
    DEFAULT_DEMO_HOME,
    OPT_OUT_PURPOSES,
    DemoReport,
    OptOutSummary,
    QueryFact,
    StageTiming,
    StudyFact,
    describe_store,
    run_demo,
)
from candour.synth import load_config


def demo(
    people: Annotated[
        int, typer.Option("--people", min=500, help="How many residents the county has.")
    ] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed: the same seed, the same county.")] = 1,
    home: Annotated[
        Path,
        typer.Option(
            "--home",
            help="A fresh data home for the demo. A previous demo home is replaced; any other "
            "non-empty directory is refused. A store or vault database named by "
            "CANDOUR_DATABASE_URL or CANDOUR_VAULT_URL must be empty: the demo never empties one.",
        ),
    ] = DEFAULT_DEMO_HOME,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Stop after building; do not serve the portal.")
    ] = False,
    county_config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML file overriding the synthetic county's error rates and effect sizes, as "
            "for candour synth (docs/synthetic-county.md). A county of a few thousand people "
            "needs denser effects for every study to pass disclosure control.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the whole pipeline on a synthetic county in a fresh data home, and summarise it:
    link the county, register a planning and a research use, opt 5% of residents out, run
    gated queries with receipts, run the three studies and publish their outputs and the
    sensor feed."""
    config = settings(home)
    synth_config = load_config(county_config) if county_config is not None else None

    def stage_done(timing: StageTiming) -> None:
        console.print(
            f"[green]✓[/] {timing.name} in {timing.seconds:.1f} s "
            f"(peak memory {timing.peak_rss_mb:,.0f} MB)"
        )

    with progress_bars() as progress:
        report = run_demo(
            config,
            people=people,
            seed=seed,
            progress=progress,
            on_stage=stage_done,
            config=synth_config,
        )

    table = Table(title="Candour demo", show_header=False)
    table.add_row("Data home", str(report.home))
    table.add_row("Synthetic county", f"{report.people:,} people, seed {report.seed}")
    table.add_row("Store", describe_store(config))
    engine = f"spark at {config.spark_master}" if config.engine == "spark" else config.engine
    table.add_row("Engine", engine)
    county = report.facts.get("county")
    if county is not None:
        table.add_row("County files", str(report.home / "synth"))
        table.add_row("Source records", f"{getattr(county, 'records', 0):,}")
    run = report.facts.get("link")
    if run is not None:
        table.add_row("Records linked", f"{run.records:,}")
        table.add_row("People found", f"{run.persons:,}")
    quality = report.facts.get("quality")
    if quality is not None:
        table.add_row(
            "Linkage quality (vs truth)",
            f"precision {quality.pairwise_precision:.4f}, recall {quality.pairwise_recall:.4f}, "
            f"F1 {quality.pairwise_f1:.4f}",
        )
    table.add_row("Total time", f"{sum(s.seconds for s in report.stages):.1f} s")
    console.print(table)
    _print_governance(report)
    if not no_serve:
        console.print(
            "Open the public register, transparency pages, log and open data in a browser. "
            "Sign in as one of the test residents listed below (a local test identity "
            "provider, started only for demo homes)."
        )
        serve(home=home, demo_sign_in=True)


def _print_governance(report: DemoReport) -> None:
    """The issue 5 and 7 stages, compactly: uses, choices, queries, studies, open data."""
    uses = report.facts.get("uses")
    if uses:
        console.print(
            "[bold]Data uses[/] "
            + "; ".join(f"{u.use_id} {u.spec.purpose} ({u.status})" for u in uses)
            + ", applied by the analyst and approved by a different IG lead",
            highlight=False,
            soft_wrap=True,
        )
    optouts: OptOutSummary | None = report.facts.get("optouts")
    if optouts is not None:
        _print_optouts(optouts)
    queries: list[QueryFact] | None = report.facts.get("queries")
    if queries:
        _print_queries(queries)
    released = report.facts.get("released_dataset")
    if released:
        console.print(
            f"Released by the checker and published: /data/{released}",
            highlight=False,
            soft_wrap=True,
        )
    studies: list[StudyFact] | None = report.facts.get("study_facts")
    if studies:
        _print_studies(studies)
    sensor = report.facts.get("sensor_dataset")
    if sensor:
        console.print(
            f"Sensor feed published on the IG lead's declaration: /data/{sensor}",
            highlight=False,
            soft_wrap=True,
        )


def _print_optouts(optouts: OptOutSummary) -> None:
    rates = [a.rate for a in optouts.areas]
    national = optouts.national[0] if optouts.national else None
    line = (
        f"[bold]Choices[/] {optouts.opted_out:,} of {optouts.people:,} people "
        f"({optouts.share:.1%}) opted out of {' and '.join(OPT_OUT_PURPOSES)}"
    )
    if rates:
        line += (
            f"; {min(rates):.1%} to {max(rates):.1%} across {len(rates)} GP practices "
            f"(bounds {AREA_RATE_BOUNDS[0]:.0%} to {AREA_RATE_BOUNDS[1]:.0%})"
        )
    console.print(line, highlight=False, soft_wrap=True)
    if national is not None:
        console.print(
            f"  national opt-out list: {national.numbers:,} NHS numbers, {national.persons:,} "
            f"people matched, {len(national.unmatched):,} unmatched; portal: "
            f"{optouts.portal_people:,} people; {optouts.ledger_entries:,} choices logged",
            highlight=False,
            soft_wrap=True,
        )


def _print_queries(queries: list[QueryFact]) -> None:
    table = Table(
        title="Gated queries (receipt: log entry # in a checkpoint of size n)", title_justify="left"
    )
    table.add_column("use")
    table.add_column("question")
    table.add_column("rows", justify="right")
    table.add_column("receipt")
    table.add_column("disclosure control")
    for q in queries:
        verdict = "verified" if q.receipt_verified else "[red]DOES NOT VERIFY[/]"
        table.add_row(
            q.use_id,
            q.question,
            str(q.rows),
            f"#{q.ledger_index} in {q.checkpoint_size}, {verdict}",
            f"{q.suppressed}/{q.cells} suppressed, {q.rounded} rounded",
        )
    console.print(table)


def _print_studies(studies: list[StudyFact]) -> None:
    table = Table(title="Studies", title_justify="left")
    for column in ("study", "result", "planted truth"):
        table.add_column(column)
    for s in studies:
        if s.not_run:
            table.add_row(s.name, "not run (below)", "")
        else:
            table.add_row(f"{s.name} {s.use_id}", s.headline, s.planted)
    console.print(table)
    for s in studies:
        if s.not_run:
            console.print(f"  {s.name} not run: {s.not_run}", highlight=False, soft_wrap=True)
        for dataset in s.datasets:
            console.print(f"  {s.name} published /data/{dataset}", highlight=False, soft_wrap=True)
