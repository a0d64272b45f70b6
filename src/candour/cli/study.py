"""``candour study``: run the built-in studies end to end through the gate."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from candour import choices
from candour.cli.common import HomeOption, console, new_app, settings
from candour.studies import list_studies, run_study

app = new_app(
    "Built-in studies: each is a registered data use, gated queries, outputs released by a "
    "checker and published as open data, and a report with charts (docs/studies.md)."
)


@app.command("list")
def list_(home: HomeOption = None) -> None:
    """List the built-in studies and the question each answers."""
    table = Table(title="Studies")
    table.add_column("name", no_wrap=True)
    table.add_column("question")
    for study in list_studies():
        table.add_row(study.name, study.question)
    console.print(table)


@app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="The study: home-safety-visits, family-needs or "
                                        "hmo-risk.")],
    engine: Annotated[
        str | None,
        typer.Option("--engine", help="duckdb or spark (default: $CANDOUR_ENGINE).",
                     show_default=False),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print only the headline figures, as JSON.")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Run a study: register (or reuse) its data use, query through the gate, release and
    publish its safe outputs, and write its report."""
    if engine is not None and engine not in ("duckdb", "spark"):
        raise typer.BadParameter("must be duckdb or spark", param_hint="--engine")
    current = settings(home)
    result = run_study(
        name, settings=current, purposes=choices.load_purposes(current), engine=engine
    )
    if as_json:
        typer.echo(json.dumps(result.figures, sort_keys=True))
        return
    table = Table(title=f"{name} ({result.use_id})")
    table.add_column("figure", no_wrap=True)
    table.add_column("value", justify="right")
    for key, value in result.figures.items():
        table.add_row(key, "not available" if value is None else f"{value:.4f}")
    console.print(table)
    for dataset in result.datasets:
        console.print(f"published /data/{dataset}")
    console.print(f"report {result.report_dir / 'index.html'}")
