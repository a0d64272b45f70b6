"""``candour query``: run one SQL query through the gate under a data use."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from candour import gate
from candour.cli.common import HomeOption, console, err_console, settings
from candour.disclosure import SUPPRESSED_MARK
from candour.errors import CandourError


class Format(StrEnum):
    """How the protected output is printed."""

    table = "table"
    csv = "csv"
    json = "json"


def _read_sql(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CandourError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _cell(value: Any) -> str:
    if value is None:
        return SUPPRESSED_MARK
    try:
        import pandas as pd

        if pd.isna(value):
            return SUPPRESSED_MARK
    except (TypeError, ValueError):
        pass
    return str(value)


def _what_happened(result: gate.QueryResult) -> list[str]:
    summary = result.disclosure_summary()
    lines = [f"query {result.query_id} under {result.use_id} ({result.method}, {result.engine})"]
    if summary["method"] == "sdc":
        rules = summary["rules"]
        lines.append(
            f"disclosure control: threshold {rules['threshold']}, rounding {rules['rounding']}; "
            f"{summary['cells']} cells, {summary['primary']} suppressed (primary), "
            f"{summary['dominance']} (dominance), {summary['secondary']} (secondary), "
            f"{summary['rounded']} rounded"
        )
    elif summary["method"] == "dp":
        lines.append(
            f"differential privacy: {summary['statistic']}, epsilon {summary['epsilon']:g} "
            f"spent, {summary['remaining_epsilon']:g} left"
        )
    else:
        lines.append(
            f"record-level output: {summary['rows']} rows"
            + (" (truncated at the row limit)" if summary["truncated"] else "")
            + "; it must not leave the environment"
        )
    lines.extend(result.notes)
    receipt = result.receipt
    lines.append(
        f"receipt: ledger entry {receipt.ledger_index}, proved into the checkpoint of tree size "
        f"{receipt.proof.tree_size} ({len(receipt.proof.hashes)} proof hashes)"
    )
    return lines


def query(
    use: Annotated[str, typer.Option("--use", help="The data use, e.g. DU-2026-001.")],
    user: Annotated[str, typer.Option("--as", help="The analyst running the query.")],
    sql: Annotated[
        str, typer.Option("--sql", help="A file holding the SQL, or - to read standard input.")
    ],
    output: Annotated[
        Format, typer.Option("--format", help="How to print the protected output.")
    ] = Format.table,
    receipt_file: Annotated[
        Path | None, typer.Option("--receipt", help="Also write the receipt (JSON) here.")
    ] = None,
    save: Annotated[
        str | None,
        typer.Option(
            "--save",
            help="Keep the output inside the environment under this name, "
            "ready for `candour release request`.",
        ),
    ] = None,
    engine: Annotated[
        str | None, typer.Option("--engine", help="duckdb or spark (default: settings).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Run SQL (DuckDB dialect) through the gate: validated, with residents' choices applied,
    disclosure-controlled, logged, and receipted."""
    config = settings(home)
    text = _read_sql(sql)
    chosen = gate.open_engine(config, engine) if engine else None
    try:
        result = gate.run(use, user, text, settings=config, engine=chosen)
    finally:
        if chosen is not None:
            chosen.close()
    saved = result.save(settings=config, name=save) if save else None
    frame = result.table
    if output is Format.json:
        body = {
            "query_id": result.query_id,
            "columns": [str(c) for c in frame.columns],
            "rows": [
                [None if _cell(v) == SUPPRESSED_MARK else v for v in row]
                for row in json.loads(frame.to_json(orient="values", date_format="iso"))
            ],
            "disclosure": result.disclosure_summary(),
            "notes": list(result.notes),
            "receipt": result.receipt.to_json(),
            "saved_output": saved.output_id if saved else None,
        }
        typer.echo(json.dumps(body, indent=2, default=str))
    elif output is Format.csv:
        typer.echo(frame.to_csv(index=False, na_rep=SUPPRESSED_MARK, lineterminator="\n"), nl=False)
        for line in _what_happened(result):
            err_console.print(line, highlight=False)
    else:
        table = Table(*[str(c) for c in frame.columns])
        for row in frame.itertuples(index=False):
            table.add_row(*[_cell(v) for v in row])
        console.print(table)
        for line in _what_happened(result):
            console.print(line, highlight=False)
    if saved is not None:
        err_console.print(
            f"saved as {saved.output_id}; `candour release request "
            f"{saved.output_id} --as {user}` asks for it to be checked"
        )
    if receipt_file is not None:
        receipt_file.write_text(json.dumps(result.receipt.to_json(), indent=2) + "\n")
