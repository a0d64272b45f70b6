"""``candour link``: link ingested records to people, review, export, evaluate and report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from candour.cli.common import HomeOption, console, new_app, progress_bars, settings
from candour.errors import CandourError
from candour.linkage.engines import EngineName
from candour.linkage.evaluate import Quality
from candour.linkage.outputs import changes, evaluate_index, export_index, history
from candour.linkage.report import write_report
from candour.linkage.review import PairView, decide, get_pair, list_pairs
from candour.workflows.carry_choices import link_carrying_choices

app = new_app(
    "Link every ingested record to a person with a Splink model, and keep the person index.\n\n"
    "Run [bold]candour link[/] after each ingest; person ids stay stable between runs."
)
# `candour link` on its own runs linkage; its subcommands read and review what runs produced.
app.info.no_args_is_help = False
app.info.invoke_without_command = True

EngineOption = Annotated[
    str | None,
    typer.Option("--engine", help="duckdb (embedded) or spark (default: $CANDOUR_ENGINE)."),
]


@app.callback()
def run(
    ctx: typer.Context,
    home: HomeOption = None,
    engine: EngineOption = None,
    settings_file: Annotated[
        Path | None,
        typer.Option("--settings", help="YAML/JSON file overriding any part of the model."),
    ] = None,
    retrain: Annotated[
        bool, typer.Option("--retrain", help="Train afresh instead of reusing the last model.")
    ] = False,
) -> None:
    """Train (or reuse) the model, link every record and save the new person index."""
    if ctx.invoked_subcommand is not None:
        return
    config = settings(home)
    if engine is not None and engine not in ("duckdb", "spark"):
        raise CandourError(f"--engine must be duckdb or spark, not {engine!r}")
    chosen: EngineName | None = engine  # type: ignore[assignment]
    with progress_bars() as progress:
        result, carried = link_carrying_choices(
            config,
            engine=chosen,
            settings_file=settings_file,
            retrain=retrain,
            progress=progress,
        )
    table = Table(title=f"Link run {result.run_id} ({result.engine})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, value in (
        ("records", result.records),
        ("persons", result.persons),
        ("comparisons", result.comparisons),
        ("linked pairs", result.linked_pairs),
        ("person ids kept", result.kept_ids),
        ("person ids new", result.new_ids),
        ("merges / splits / retired", f"{result.merges} / {result.splits} / {result.retired}"),
        ("pairs waiting for review", result.review_pending),
        ("opt-outs carried to new ids", carried.carried if carried else 0),
        ("threshold (match probability)", result.threshold),
        ("ledger entry", result.ledger_index),
    ):
        table.add_row(label, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)
    rules = Table(title="Comparisons per blocking rule")
    rules.add_column("rule")
    rules.add_column("comparisons", justify="right")
    rules.add_column("note")
    for count in result.blocking:
        estimate = " (est.)" if count.estimated else ""
        rules.add_row(count.rule, f"{count.marginal:,}{estimate}", count.note)
    console.print(rules)


@app.command("history")
def show_history(
    home: HomeOption = None,
    run_id: Annotated[
        str | None, typer.Option("--run", help="Show the person-id changes of this run.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List link runs, and the merges and splits of person ids they recorded."""
    config = settings(home)
    runs = history(config)
    found = changes(config, run_id=run_id)
    if as_json:
        typer.echo(
            json.dumps(
                {"runs": [r.__dict__ for r in runs], "changes": [c.__dict__ for c in found]},
                indent=2,
            )
        )
        return
    table = Table(title="Link runs")
    for column in ("run", "engine", "finished", "records", "persons", "kept", "new", "merges",
                   "splits", "retired", "review"):
        table.add_column(column)
    for r in runs:
        table.add_row(r.run_id, r.engine, r.finished_at, *(f"{v:,}" for v in (
            r.records, r.persons, r.kept_ids, r.new_ids, r.merges, r.splits, r.retired,
            r.review_pairs)))
    console.print(table)
    moved = Table(title="Person-id changes")
    for column in ("run", "kind", "old id(s)", "new id(s)", "reason"):
        moved.add_column(column)
    for c in found:
        moved.add_row(c.run_id, c.kind, " ".join(c.old_ids), " ".join(c.new_ids), c.reason)
    console.print(moved)


def _render_pair(view: PairView, values: dict[str, dict[str, str]] | None) -> None:
    console.print(
        f"[bold]Pair {view.pair_id}[/] ({view.reason}, {view.status}): match weight "
        f"{view.match_weight:.2f}, probability {view.match_probability:.4f}"
        + (f"; decided {view.decision} by {view.decided_by}" if view.decision else "")
    )
    if values is not None:
        side = Table(title="The two records (from the vault; this view is audited)")
        side.add_column("field")
        side.add_column(view.record_key_l)
        side.add_column(view.record_key_r)
        left, right = values.get(view.record_key_l, {}), values.get(view.record_key_r, {})
        for name in sorted(set(left) | set(right)):
            side.add_row(name, left.get(name, ""), right.get(name, ""))
        console.print(side)
    waterfall = Table(title="Match-weight waterfall")
    waterfall.add_column("step")
    waterfall.add_column("level")
    waterfall.add_column("weight", justify="right")
    waterfall.add_column("running total", justify="right")
    total = view.prior_weight
    waterfall.add_row("prior", "", f"{view.prior_weight:+.2f}", f"{total:+.2f}")
    for step in view.waterfall:
        total += step.weight + step.tf_weight
        extra = f" (tf {step.tf_weight:+.2f})" if step.tf_weight else ""
        waterfall.add_row(
            step.comparison, step.level, f"{step.weight:+.2f}{extra}", f"{total:+.2f}"
        )
    console.print(waterfall)


@app.command("review")
def review(
    home: HomeOption = None,
    list_only: Annotated[bool, typer.Option("--list", help="List pairs waiting.")] = False,
    show: Annotated[int | None, typer.Option("--show", help="Show one pair.")] = None,
    decide_pair: Annotated[
        tuple[int, str] | None,
        typer.Option("--decide", help="PAIR_ID match|non-match", metavar="PAIR_ID DECISION"),
    ] = None,
    reviewer: Annotated[
        str | None, typer.Option("--as", help="Who is reviewing (recorded with each decision).")
    ] = None,
    identities: Annotated[
        bool,
        typer.Option(
            "--identities/--no-identities",
            help="Show the two records' identity values (read from the vault, audited).",
        ),
    ] = True,
    limit: Annotated[int, typer.Option("--limit", help="How many pairs to list.")] = 20,
) -> None:
    """Review uncertain pairs: see them side by side with the waterfall, decide match or not.

    Interactive on a terminal; scriptable with --list, --show and --decide ... --as NAME.
    """
    config = settings(home)
    if decide_pair is not None:
        if not reviewer:
            raise CandourError("say who is deciding with --as NAME")
        pair_id, decision = decide_pair
        decide(config, pair_id, decision, reviewer)
        console.print(f"Pair {pair_id}: {decision}, by {reviewer}. It applies from the next run.")
        return
    if show is not None:
        view = get_pair(config, show)
        values = _identities(config, view, reviewer) if identities else None
        _render_pair(view, values)
        return
    pending = list_pairs(config, limit=limit)
    if list_only or not sys.stdin.isatty():
        table = Table(title=f"Pairs waiting for review ({len(pending)} shown)")
        for column in ("pair", "left", "right", "weight", "probability", "reason"):
            table.add_column(column)
        for p in pending:
            table.add_row(str(p.pair_id), p.record_key_l, p.record_key_r,
                          f"{p.match_weight:.2f}", f"{p.match_probability:.4f}", p.reason)
        console.print(table)
        return
    if not reviewer:
        reviewer = typer.prompt("Your name (recorded with each decision)")
    for view in pending:
        _render_pair(view, _identities(config, view, reviewer) if identities else None)
        answer = typer.prompt("[m]atch, [n]on-match, [s]kip, [q]uit", default="s")
        if answer.startswith("q"):
            break
        if answer.startswith("m"):
            decide(config, view.pair_id, "match", reviewer)
        elif answer.startswith("n"):
            decide(config, view.pair_id, "non-match", reviewer)


def _identities(config: object, view: PairView, reviewer: str | None) -> dict[str, dict[str, str]]:
    from candour.config import Settings
    from candour.linkage.inputs import records_for_review

    assert isinstance(config, Settings)
    return records_for_review(
        config, [view.record_key_l, view.record_key_r], reviewer or "reviewer", view.pair_id
    )


@app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
    home: HomeOption = None,
) -> None:
    """Write source,record_id,person_id for every ingested record."""
    rows = export_index(settings(home), out)
    console.print(f"Wrote {rows:,} records to {out}")


def _quality_table(quality: Quality) -> Table:
    table = Table(title="Linkage quality against the truth")
    table.add_column("measure")
    table.add_column("precision", justify="right")
    table.add_column("recall", justify="right")
    table.add_column("F1", justify="right")
    table.add_row("pairwise", f"{quality.pairwise_precision:.4f}",
                  f"{quality.pairwise_recall:.4f}", f"{quality.pairwise_f1:.4f}")
    table.add_row("B-cubed", f"{quality.bcubed_precision:.4f}",
                  f"{quality.bcubed_recall:.4f}", f"{quality.bcubed_f1:.4f}")
    return table


@app.command("evaluate")
def evaluate(
    truth: Annotated[Path, typer.Option("--truth", help="CSV: source,record_id,person_key.")],
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Pairwise precision, recall and F1, and B-cubed precision and recall, against a truth."""
    quality = evaluate_index(settings(home), truth)
    if as_json:
        typer.echo(json.dumps(quality.as_dict(), indent=2))
        return
    console.print(_quality_table(quality))
    console.print(
        f"{quality.records:,} records; {quality.predicted_persons:,} persons linked, "
        f"{quality.true_persons:,} in the truth"
    )


@app.command("report")
def report(
    home: HomeOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="HTML file to write.")] = None,
) -> None:
    """Write an HTML report of the latest run: weights, parameters, clusters, blocking."""
    path = write_report(settings(home), out)
    console.print(f"Wrote {path}")
