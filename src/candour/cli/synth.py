"""``candour synth``: write a synthetic county (extracts, sources.yaml, truth, open data)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from candour.cli.common import console
from candour.synth import load_config, write_county


def synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the county into.")],
    people: Annotated[
        int, typer.Option("--people", "-n", help="Residents at the start of the 3-year window.")
    ] = 20_000,
    seed: Annotated[
        int, typer.Option("--seed", "-s", help="Random seed; same seed, same bytes.")
    ] = 1,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML file overriding error rates and effect sizes "
            "(see docs/synthetic-county.md).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write a synthetic county: six service extracts with realistic errors, their
    sources.yaml, ground truth (truth/) and an open road-temperature feed (open/)."""
    settings = load_config(config) if config is not None else None
    with Progress(
        TextColumn("[bold]Synthesising county"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("residents"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("synth", total=max(people, 1))

        def advance(_task: str, done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        summary = write_county(out, people, seed, settings, advance)

    table = Table(title=f"Synthetic county written to {summary.out}", show_header=True)
    table.add_column("source")
    table.add_column("records", justify="right")
    for name, count in summary.records_by_source.items():
        table.add_row(name, f"{count:,}")
    table.add_row("[bold]all sources", f"[bold]{summary.records:,}")
    console.print(table)
    console.print(
        f"{summary.people:,} residents at the start ({summary.people_total:,} people in all, "
        f"with births and arrivals), {summary.households:,} households, "
        f"{summary.properties:,} properties; {summary.seconds:.1f} s. "
        "Ground truth in truth/, sources.yaml beside the extracts."
    )
