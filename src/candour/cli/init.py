"""``candour init``."""

from __future__ import annotations

from candour.cli.common import HomeOption, console, settings
from candour.initialise import initialise_home


def init(home: HomeOption = None) -> None:
    """Create a data home: directories, keys (mode 0600) and the store's schema.

    Safe to run again: existing keys are never overwritten.
    """
    report = initialise_home(settings(home))
    console.print(f"Data home: [bold]{report.home}[/]")
    if report.keys_created:
        for path in report.keys_created:
            console.print(f"  created key {path.name}")
    else:
        console.print("  keys already present; none changed")
    console.print(f"  store schema at revision {report.store_revision}")
