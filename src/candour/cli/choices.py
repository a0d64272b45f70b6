"""``candour choices``: record and show residents' choices, and import national opt-out lists."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from candour import choices
from candour.cli.common import HomeOption, console, new_app, settings
from candour.errors import CandourError
from candour.workflows.optout_import import import_optouts

app = new_app(
    "Residents' choices: opt out of (or back in to) a purpose, for every source or one.\n\n"
    "Each change takes effect for every query that starts after it is recorded, and is logged "
    "in the public ledger with a commitment only the resident can recognise."
)

PersonOption = Annotated[
    str, typer.Option("--person", help="The person id (P- and 12 characters).", show_default=False)
]
PurposeOption = Annotated[
    str, typer.Option("--purpose", help="A purpose id, e.g. research.", show_default=False)
]


def _actor(given: str | None) -> str:
    if given:
        return given
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in some containers
        return "cli"


def _scope(source: str | None) -> str:
    return f"{source} records" if source else "every source"


@app.command("set")
def set_(
    person: PersonOption,
    purpose: PurposeOption,
    decision: Annotated[
        str, typer.Option("--decision", help="opt-out or opt-in.", show_default=False)
    ],
    source: Annotated[
        str | None,
        typer.Option("--source", help="Narrow the choice to one source's records."),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option("--as", help="Who is recording it (default: cli:<login name>)."),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Record one resident's choice about one purpose (optionally one source)."""
    if decision not in choices.DECISIONS:
        raise CandourError(f"--decision must be opt-out or opt-in, not {decision!r}")
    record = choices.set_choice(
        person,
        purpose,
        decision,  # type: ignore[arg-type]
        source=source,
        channel="cli",
        actor=_actor(actor),
        settings=settings(home),
    )
    if record is None:
        console.print(f"No change: {person} is already {decision} of {purpose} ({_scope(source)}).")
        return
    console.print(
        f"Recorded: {person} {decision} of {purpose} ({_scope(source)}), "
        f"ledger entry {record.ledger_index}. It applies to every query that starts from now."
    )


@app.command("show")
def show(person: PersonOption, home: HomeOption = None) -> None:
    """Show a person's choices in force, per purpose, and their history."""
    config = settings(home)
    purposes = choices.load_purposes(config)
    state = choices.current(person, settings=config)
    table = Table(title=f"Choices of {person}")
    table.add_column("purpose")
    table.add_column("may opt out")
    table.add_column("in force")
    for purpose in purposes.purposes:
        if purpose.id in state.everywhere:
            status = "opted out (every source)"
        elif purpose.id in state.by_source:
            status = "opted out of: " + ", ".join(sorted(state.by_source[purpose.id]))
        else:
            status = "not opted out"
        allowed = "yes" if purpose.opt_out else f"no: {purpose.why_no_opt_out}"
        table.add_row(f"{purpose.id}\n{purpose.title}", allowed, status)
    console.print(table)
    past = choices.history(person, settings=config)
    if not past:
        console.print("No choices recorded.")
        return
    log = Table(title="History (oldest first)")
    for column in ("recorded (UTC)", "purpose", "source", "decision", "channel", "by", "ledger"):
        log.add_column(column)
    for item in past:
        log.add_row(
            item.recorded_at.strftime("%Y-%m-%d %H:%M:%S"),
            item.purpose,
            item.source or "every source",
            item.decision,
            item.channel,
            item.actor,
            "" if item.ledger_index is None else str(item.ledger_index),
        )
    console.print(log)


def _lines(label: str, numbers: list[int]) -> None:
    if numbers:
        shown = ", ".join(str(n) for n in numbers[:30])
        more = f" ... and {len(numbers) - 30} more" if len(numbers) > 30 else ""
        console.print(f"{label} ({len(numbers)}): line {shown}{more}")


@app.command("import")
def import_(
    file: Annotated[
        Path,
        typer.Argument(help="The opt-out list: one NHS number per line (a trailing comma is ok)."),
    ],
    purpose: PurposeOption,
    actor: Annotated[
        str | None,
        typer.Option("--as", help="Who is importing it (default: cli:<login name>)."),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Import a national data opt-out list for a purpose, all-or-nothing.

    Numbers are matched through the identity vault; unmatched lines are reported by line
    number. Any malformed line stops the import before anything is applied.
    """
    report = import_optouts(file, purpose, actor=_actor(actor), settings=settings(home))
    table = Table(title=f"Opt-out import for {purpose}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, value in (
        ("lines read", report.lines),
        ("distinct NHS numbers", report.numbers),
        ("people matched", report.persons),
        ("opt-outs recorded", report.recorded),
        ("already opted out", report.already),
        ("unmatched lines", len(report.unmatched)),
        ("matched but not yet linked", len(report.unlinked)),
    ):
        table.add_row(label, f"{value:,}")
    if report.ledger_first is not None:
        table.add_row("ledger entries", f"{report.ledger_first}..{report.ledger_last}")
    console.print(table)
    _lines("Unmatched (not in our data)", report.unmatched)
    _lines("Not yet linked (run `candour link`, then import again)", report.unlinked)
    _lines("Matched more than one person (all opted out)", report.ambiguous)
    _lines("Repeated numbers", report.repeated)
