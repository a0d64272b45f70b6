"""``candour demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from candour.cli.common import console, progress_bars, settings
from candour.cli.serve import serve
from candour.demo import DEFAULT_DEMO_HOME, StageTiming, run_demo


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
            "non-empty directory is refused.",
        ),
    ] = DEFAULT_DEMO_HOME,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Stop after building; do not serve the portal.")
    ] = False,
) -> None:
    """Run the whole pipeline on a synthetic county in a fresh data home, and summarise it."""
    config = settings(home)

    def stage_done(timing: StageTiming) -> None:
        console.print(
            f"[green]✓[/] {timing.name} in {timing.seconds:.1f} s "
            f"(peak memory {timing.peak_rss_mb:,.0f} MB)"
        )

    with progress_bars() as progress:
        report = run_demo(config, people=people, seed=seed, progress=progress, on_stage=stage_done)

    table = Table(title="Candour demo", show_header=False)
    table.add_row("Data home", str(report.home))
    table.add_row("Synthetic county", f"{report.people:,} people, seed {report.seed}")
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
    if not no_serve:
        console.print(
            "Open the public register, transparency pages, log and open data in a browser. "
            "Resident sign-in needs an identity provider (docs/web.md)."
        )
        serve(home=home)
