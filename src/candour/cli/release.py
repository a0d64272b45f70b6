"""``candour release``: output checking under the two-person rule, and release."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from candour.cli.common import HomeOption, console, new_app, settings
from candour.disclosure import (
    Release,
    approve_release,
    get_output,
    get_release,
    list_releases,
    reject_release,
    request_release,
)

app = new_app(
    "Check outputs and release them: an output leaves the environment only when a checker who "
    "is not the requester approves it, and every release is logged with the file's hash."
)

AsOption = Annotated[
    str, typer.Option("--as", help="The staff user taking this step.", show_default=False)
]
ReleaseArgument = Annotated[str, typer.Argument(help="The release request id (REL-…).")]


@app.command("request")
def request(
    output_id: Annotated[str, typer.Argument(help="The output to release (OUT-…).")],
    user: AsOption,
    home: HomeOption = None,
) -> None:
    """Ask for an output to be released; a checker then approves or rejects it."""
    release = request_release(settings(home), output_id, user=user)
    console.print(f"{release.release_id} requested for {release.output_id} ({release.use_id})")


@app.command("list")
def list_(
    status: Annotated[
        str | None,
        typer.Option("--status", help="Only requests that are pending, rejected or released."),
    ] = None,
    home: HomeOption = None,
) -> None:
    """List release requests, newest first."""
    rows = list_releases(settings(home), status)
    table = Table(title="Release requests")
    for column in ("release", "output", "use", "status", "requested by", "checked by"):
        table.add_column(column, no_wrap=True)
    for r in rows:
        table.add_row(
            r.release_id, r.output_id, r.use_id, r.status, r.requested_by, r.checked_by or ""
        )
    console.print(table)


@app.command("show")
def show(release_id: ReleaseArgument, home: HomeOption = None) -> None:
    """Show a request, its output, and what disclosure control did to each cell."""
    config = settings(home)
    release = get_release(config, release_id)
    output = get_output(config, release.output_id)
    _describe(release)
    console.print(f"output      {output.output_id}: {output.file_name}, {output.rows} rows")
    console.print(f"sha256      {output.file_sha256}")
    report = output.report
    if report.get("method") == "dp":
        _show_dp(report)
    else:
        _show_sdc(report)


@app.command("approve")
def approve(release_id: ReleaseArgument, user: AsOption, home: HomeOption = None) -> None:
    """Approve a pending request: copy the output to releases/ and log the release."""
    release = approve_release(settings(home), release_id, checker=user)
    console.print(
        f"{release.release_id} released to {release.release_path} "
        f"(ledger entry {release.ledger_index})"
    )


@app.command("reject")
def reject(
    release_id: ReleaseArgument,
    user: AsOption,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the requester.")],
    home: HomeOption = None,
) -> None:
    """Reject a pending request, with a reason."""
    release = reject_release(settings(home), release_id, checker=user, reason=reason)
    console.print(f"{release.release_id} rejected: {release.reason}")


def _describe(r: Release) -> None:
    console.print(f"release     {r.release_id} ({r.status})")
    console.print(f"use         {r.use_id}")
    console.print(f"requested   by {r.requested_by} at {r.requested_at:%Y-%m-%d %H:%M}")
    if r.checked_by and r.checked_at:
        console.print(f"checked     by {r.checked_by} at {r.checked_at:%Y-%m-%d %H:%M}")
    if r.reason:
        console.print(f"reason      {r.reason}")
    if r.ledger_index is not None:
        console.print(f"ledger      entry {r.ledger_index}")


def _show_sdc(report: dict[str, Any]) -> None:
    rules = report["rules"]
    console.print(
        f"rules       threshold {rules['threshold']}, rounding {rules['rounding']}, "
        f"dominance {rules['dominance']}"
    )
    summary = report["summary"]
    console.print(
        f"cells       {summary['cells']}: {summary['primary']} primary, "
        f"{summary['dominance']} dominance, {summary['secondary']} secondary suppressions; "
        f"{summary['rounded']} rounded"
    )
    table = Table(title="Cells changed by disclosure control")
    for column in ("group", "action", "original", "published", "why"):
        table.add_column(column)
    for cell in report["cells"]:
        changed = {
            c: v for c, v in cell["published"].items() if v is not None and v != cell["original"][c]
        }
        if cell["suppressed"] is None and not changed:
            continue
        action = f"suppressed ({cell['suppressed']})" if cell["suppressed"] else "rounded"
        table.add_row(
            " / ".join(str(k) for k in cell["key"]) or "(all)",
            action,
            _values(cell["original"]),
            _values(cell["published"]),
            "; ".join(cell["reasons"]),
        )
    console.print(table)


def _show_dp(report: dict[str, Any]) -> None:
    column = f" of {report['column']}" if report.get("column") else ""
    console.print(
        f"method      differential privacy: {report['statistic']}{column} by "
        f"{', '.join(report['keys'])} over {report['groups']} public groups"
    )
    console.print(
        f"epsilon     {report['epsilon']} spent, {report['remaining_epsilon']} left on the use"
    )
    for n in report["noise"]:
        console.print(
            f"noise       {n['aggregate']}: {n['distribution']}, scale {n['scale']:.3g}; within "
            f"±{n['accuracy']:.3g} with {1 - report['alpha']:.0%} confidence"
        )


def _values(values: dict[str, Any]) -> str:
    return ", ".join(f"{c}={'[c]' if v is None else v}" for c, v in values.items())
