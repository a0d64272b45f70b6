"""``candour keys``: rotate the home's keys. Thin over candour.maintenance.keys."""

from __future__ import annotations

from typing import Annotated

import typer

from candour.cli.common import HomeOption, console, new_app, progress_bars, settings
from candour.errors import CandourError
from candour.maintenance.keys import KEYS, describe, rotate_key

app = new_app(
    "The home's keys: rotation, announced in the public log (see docs/operations.md, Keys)."
)


@app.command("rotate")
def rotate(
    key: Annotated[
        str,
        typer.Option(
            "--key",
            help=f"Which key to replace: {', '.join(KEYS)}.",
            show_default=False,
        ),
    ],
    home: HomeOption = None,
) -> None:
    """Replace a key with a new one and write a `key-rotation` entry to the log.

    The vault key re-encrypts every identity and the HMAC key rebuilds the look-up index, each in
    one transaction; the log key signs the current checkpoint with both keys before the swap.
    Safe to interrupt: run the same command again (or `candour check --repair`) to finish.
    Keys are never printed, only their ids.
    """
    if key not in KEYS:
        raise CandourError(f"unknown key {key!r}; choose one of {', '.join(KEYS)}")
    with progress_bars() as progress:
        report = rotate_key(settings(home), key, progress=progress)
    for line in describe(report):
        console.print(line, highlight=False)
