"""``candour check``, ``candour backup`` and ``candour restore``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from candour.cli.common import HomeOption, console, settings
from candour.errors import CandourError
from candour.maintenance.backup import backup as make_backup
from candour.maintenance.backup import restore as run_restore
from candour.maintenance.check import CheckReport, check_home

PASSPHRASE_ENV = "CANDOUR_BACKUP_PASSPHRASE"

PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help=f"Read the passphrase from this file (else ${PASSPHRASE_ENV}, else a prompt).",
        show_default=False,
    ),
]


def _passphrase(path: Path | None, *, confirm: bool) -> str:
    if path is not None:
        try:
            return path.read_text().rstrip("\n")
        except OSError as exc:
            raise CandourError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV]
    if not sys.stdin.isatty():
        raise CandourError(
            f"no passphrase: give --passphrase-file or set {PASSPHRASE_ENV} (no terminal to ask)"
        )
    return str(typer.prompt("Backup passphrase", hide_input=True, confirmation_prompt=confirm))


def _show(report: CheckReport) -> None:
    table = Table(title=f"Data home {report.home}")
    for column in ("part", "check", "result", "detail"):
        table.add_column(column)
    for f in report.findings:
        table.add_row(f.part, f.check, "[green]ok[/]" if f.ok else "[bold red]problem[/]", f.detail)
    console.print(table)
    for line in report.repaired:
        console.print(f"repaired: {line}")


def check(
    repair: Annotated[
        bool,
        typer.Option("--repair", help="First settle ingests a crash interrupted (safe to run)."),
    ] = False,
    home: HomeOption = None,
) -> None:
    """Check the store, vault, warehouse, keys and public log of a data home agree and are whole.

    Exits 0 when all is well and 1 when something needs attention.
    """
    report = check_home(settings(home), repair=repair)
    _show(report)
    if not report.ok:
        raise typer.Exit(1)


def backup(
    out: Annotated[Path, typer.Option("--out", help="The backup file to write (must be new).")],
    passphrase_file: PassphraseFile = None,
    home: HomeOption = None,
) -> None:
    """Write an encrypted archive of the whole data home: store, vault, warehouse, ledger, keys.

    Keep the passphrase apart from the backup: without it the backup cannot be read.
    """
    size = make_backup(settings(home), out, _passphrase(passphrase_file, confirm=True))
    console.print(f"Wrote {out} ({size / 2**20:,.1f} MiB, AES-256-GCM, key from scrypt).")


def restore(
    backup_file: Annotated[Path, typer.Argument(help="A file made by `candour backup`.")],
    home: Annotated[
        Path, typer.Option("--home", help="Where to restore: a new or empty directory.")
    ],
    passphrase_file: PassphraseFile = None,
) -> None:
    """Restore a backup into a new data home, then check it as `candour check` does."""
    restored = run_restore(backup_file, home, _passphrase(passphrase_file, confirm=False))
    console.print(f"Restored into {restored}.")
    report = check_home(settings(restored))
    _show(report)
    if not report.ok:
        raise typer.Exit(1)
