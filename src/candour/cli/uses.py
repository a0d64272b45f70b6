"""``candour uses``: apply for, decide on, list, show and export data uses (the register)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from candour import register
from candour.choices import load_purposes
from candour.cli.common import HomeOption, console, new_app, settings
from candour.errors import CandourError

app = new_app(
    "The data-use register: every use of data is applied for, approved by information "
    "governance, and published.\n\n"
    "Lifecycle: draft -> submitted -> approved or rejected -> active -> expired or revoked."
)

UseArgument = Annotated[str, typer.Argument(help="The use's id, e.g. DU-2026-001.")]
AsOption = Annotated[
    str, typer.Option("--as", help="The staff user taking this step.", show_default=False)
]


def _done(view: register.UseView) -> None:
    last = view.transitions[-1] if view.transitions else None
    logged = f", ledger entry {last.ledger_index}" if last and last.ledger_index is not None else ""
    console.print(f"{view.use_id} is now {view.status}{logged}.")


@app.command("apply")
def apply(
    file: Annotated[
        Path, typer.Option("--file", help="The application, a use.yaml.", show_default=False)
    ],
    home: HomeOption = None,
) -> None:
    """Register an application from a use.yaml as a draft and print its new DU- id."""
    config = settings(home)
    spec = register.load_use(file)
    view = register.apply_use(spec, purposes=load_purposes(config), settings=config)
    typer.echo(view.use_id)


@app.command("submit")
def submit(use_id: UseArgument, user: AsOption, home: HomeOption = None) -> None:
    """Submit a draft for approval (the applicant only)."""
    _done(register.submit(use_id, user, settings=settings(home)))


@app.command("approve")
def approve(use_id: UseArgument, user: AsOption, home: HomeOption = None) -> None:
    """Approve a submitted use (an ig user who is not the applicant or one of its analysts)."""
    config = settings(home)
    _done(register.approve(use_id, user, purposes=load_purposes(config), settings=config))


@app.command("reject")
def reject(use_id: UseArgument, user: AsOption, home: HomeOption = None) -> None:
    """Reject a submitted use (an ig user who is not the applicant or one of its analysts)."""
    _done(register.reject(use_id, user, settings=settings(home)))


@app.command("revoke")
def revoke(
    use_id: UseArgument,
    user: AsOption,
    reason: Annotated[
        str,
        typer.Option("--reason", help="withdrawn, breach, complaint or other."),
    ] = "withdrawn",
    home: HomeOption = None,
) -> None:
    """Revoke an approved use: no query can run under it from now on."""
    _done(register.revoke(use_id, user, reason=reason, settings=settings(home)))


@app.command("list")
def list_(home: HomeOption = None) -> None:
    """List every data use with its status today."""
    views = register.list_uses(settings=settings(home))
    if not views:
        console.print("The register is empty: apply with `candour uses apply --file use.yaml`.")
        return
    table = Table(title="Data uses")
    # Ids, statuses and dates must never be cut short, even in an 80-column terminal.
    for column in ("id", "status", "starts", "ends"):
        table.add_column(
            column, no_wrap=True, min_width=len("DU-2026-001") if column == "id" else None
        )
    for column in ("purpose", "output", "title"):
        table.add_column(column, overflow="fold")
    for view in views:
        spec = view.spec
        table.add_row(
            view.use_id,
            view.status,
            spec.starts.isoformat(),
            spec.ends.isoformat(),
            spec.purpose,
            spec.output,
            spec.title,
        )
    console.print(table)


@app.command("show")
def show(use_id: UseArgument, home: HomeOption = None) -> None:
    """Show a data use in full, with its history."""
    view = register.get_use(use_id, settings=settings(home))
    spec = view.spec
    table = Table(title=f"{view.use_id}: {spec.title}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    basis = spec.legal_basis
    grants = "\n".join(
        f"{source}: {'every column' if cols == register.ALL_COLUMNS else ', '.join(cols)}"
        for source, cols in sorted(spec.grants.items())
    )
    rows = [
        ("status", view.status),
        ("summary", spec.summary),
        ("public benefit", spec.public_benefit),
        ("organisation", f"{spec.organisation} / {spec.team}"),
        ("senior responsible owner", spec.senior_responsible_owner),
        ("purpose", spec.purpose),
        ("UK GDPR Art 6", basis.article_6),
        ("UK GDPR Art 9", basis.article_9 or "-"),
        ("DPA 2018 Sch 1", basis.dpa_schedule_1 or "-"),
        ("common law", basis.common_law),
        ("applicant", spec.applicant),
        ("analysts", ", ".join(spec.analysts)),
        ("grants", grants),
        ("output", spec.output),
        (
            "disclosure",
            f"threshold {spec.disclosure.threshold}, rounding {spec.disclosure.rounding}",
        ),
        ("dp epsilon", "-" if spec.dp_epsilon is None else f"{spec.dp_epsilon:g}"),
        ("dates", f"{spec.starts.isoformat()} to {spec.ends.isoformat()}"),
        ("application hash", view.application_hash),
        ("decision hash", view.decision_hash or "-"),
    ]
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)
    history = Table(title="History")
    for column in ("when (UTC)", "from", "to", "by", "reason", "ledger"):
        history.add_column(column)
    for step in view.transitions:
        history.add_row(
            step.at.strftime("%Y-%m-%d %H:%M:%S"),
            step.from_status or "-",
            step.to_status,
            step.actor,
            step.reason or "",
            "" if step.ledger_index is None else str(step.ledger_index),
        )
    console.print(history)


@app.command("export")
def export(
    format_: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file (default: standard output).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Export the public register (every use but drafts) as CSV or JSON.

    Fields are aligned to the Algorithmic Transparency Recording Standard and the HDR UK data
    use register (docs/register.md has the mapping).
    """
    if format_ not in ("csv", "json"):
        raise CandourError(f"--format must be csv or json, not {format_!r}")
    config = settings(home)
    purposes = load_purposes(config)
    records = register.export_records(
        settings=config, opt_outs_apply={p.id: p.opt_out for p in purposes.purposes}
    )
    text = register.to_csv(records) if format_ == "csv" else register.to_json(records)
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise CandourError(f"cannot write {out}: {exc.strerror}") from None
    console.print(f"Wrote {len(records)} use(s) to {out}.")
