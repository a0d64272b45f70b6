"""The ``candour`` command: one module per command group, each thin over a domain function."""

from __future__ import annotations

import typer

from candour import __version__
from candour.cli import (
    catalogue,
    choices,
    demo,
    ingest,
    init,
    keys,
    ledger,
    link,
    maintenance,
    query,
    release,
    serve,
    study,
    synth,
    users,
    uses,
    witness,
)
from candour.cli.common import new_app

app = new_app(
    "Candour: a trusted data environment for public services.\n\n"
    "Link service extracts to pseudonymous people, honour residents' choices, govern every use, "
    "release only safe outputs, and record it all in a public, verifiable log."
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"candour {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Candour: a trusted data environment for public services."""


app.command("init")(init.init)
app.command("synth")(synth.synth)
app.command("ingest")(ingest.ingest)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("query")(query.query)
app.command("check")(maintenance.check)
app.command("backup")(maintenance.backup)
app.command("restore")(maintenance.restore)
app.add_typer(ledger.app, name="ledger")
app.add_typer(witness.app, name="witness")
app.add_typer(keys.app, name="keys")
app.add_typer(link.app, name="link")
app.add_typer(choices.app, name="choices")
app.add_typer(uses.app, name="uses")
app.add_typer(users.app, name="users")
app.add_typer(release.app, name="release")
app.add_typer(catalogue.app, name="catalogue")
app.add_typer(study.app, name="study")


def run() -> None:
    """Entry point for the ``candour`` console script."""
    app()
