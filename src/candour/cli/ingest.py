"""``candour ingest``: load service extracts into the identity vault and the warehouse."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from candour.cli.common import HomeOption, console, err_console, progress_bars, settings
from candour.sources.ingest import FileResult, IngestError
from candour.sources.ingest import ingest as run_ingest
from candour.warehouse import open_warehouse


def _table(results: list[FileResult]) -> Table:
    table = Table(title="Ingest", show_lines=False)
    for column, justify in (
        ("source", "left"),
        ("file", "left"),
        ("status", "left"),
        ("read", "right"),
        ("accepted", "right"),
        ("quarantined", "right"),
        ("batch", "right"),
        ("ledger", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in results:
        table.add_row(
            r.source,
            r.file,
            r.status,
            f"{r.rows_read:,}",
            f"{r.rows_accepted:,}",
            f"{r.rows_quarantined:,}",
            str(r.batch_id) if r.batch_id is not None else "-",
            str(r.ledger_index) if r.ledger_index is not None else "-",
        )
    return table


def ingest(
    sources_yaml: Annotated[
        Path,
        typer.Argument(
            help="The sources.yaml describing the extracts (see docs/sources.md).",
            show_default=False,
        ),
    ],
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Ingest only the source with this name (default: every source in the file).",
            show_default=False,
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Load service extracts: identities to the vault, attributes to the warehouse.

    Each file is one batch, all or nothing, recorded in the public ledger.

    Bad rows go to a quarantine file in the data home; over 1% bad rows stops the ingest.

    A file ingested before (same content hash) is not ingested again.
    """
    config = settings(home)
    try:
        with open_warehouse(config) as warehouse, progress_bars() as progress:
            report = run_ingest(
                sources_yaml, config, warehouse, source=source, progress=progress
            )
    except IngestError as exc:
        if exc.results:
            console.print(_table(exc.results))
        raise
    for item in report.recovered:
        err_console.print(
            f"[yellow]Recovered[/] batch {item.batch_id} of {item.source} left by an interrupted "
            f"ingest: {item.action}."
        )
    console.print(_table(report.results))
    for r in report.results:
        if r.status == "already ingested":
            console.print(
                f"{r.source}: {r.file}: already ingested (same content hash) as batch "
                f"{r.batch_id}; nothing to do.",
                highlight=False,
            )
        if r.quarantine_file is not None:
            console.print(
                f"{r.source}: {r.rows_quarantined:,} row(s) quarantined; see {r.quarantine_file}",
                highlight=False,
            )
