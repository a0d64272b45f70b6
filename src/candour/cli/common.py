"""What every command shares: the ``--home`` option, settings, output helpers and error handling."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from typer.core import TyperGroup

from candour.config import Settings
from candour.errors import CandourError, is_disk_full
from candour.home import Home
from candour.progress import ProgressCallback

console = Console()
err_console = Console(stderr=True)

USER_ERROR_EXIT = 2

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="The data home (default: $CANDOUR_HOME or ./candour-data).",
        show_default=False,
    ),
]


class CandourGroup(TyperGroup):
    """A command group that turns :class:`CandourError` into one line on stderr and exit code 2."""

    def invoke(self, ctx: Any) -> Any:  # typer vendors click; its Context is private
        try:
            return super().invoke(ctx)
        except CandourError as exc:
            err_console.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(USER_ERROR_EXIT) from None
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            # Every writer is transactional, so nothing half-written stays; say how to go on.
            err_console.print(
                "[bold red]Error:[/] the disk holding the data home is full. Nothing was "
                "half-applied. Free some space, run `candour check --repair`, then run the "
                "command again.",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(USER_ERROR_EXIT) from None


def new_app(help_text: str) -> typer.Typer:
    """A Typer app for one command group, with Candour's error handling."""
    return typer.Typer(
        help=help_text,
        cls=CandourGroup,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
        add_completion=False,
    )


def settings(home: Path | None) -> Settings:
    """Settings from the environment, with ``--home`` taking precedence when given."""
    try:
        return Settings().with_home(home)
    except Exception as exc:  # pydantic's ValidationError: a bad CANDOUR_* variable
        raise CandourError(f"invalid CANDOUR_* setting: {exc}") from exc


def home_of(home: Path | None) -> Home:
    """The data home named by ``--home`` or the settings."""
    return Home(settings(home).home)


@contextmanager
def progress_bars() -> Iterator[ProgressCallback]:
    """A rich progress display; yields a callback with one bar per task name."""
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    tasks: dict[str, TaskID] = {}
    with Progress(*columns, console=err_console, transient=False) as progress:

        def update(task: str, completed: int, total: int | None) -> None:
            if task not in tasks:
                tasks[task] = progress.add_task(task, total=total)
            progress.update(tasks[task], completed=completed, total=total)

        yield update
