"""A tiny progress protocol, so domain code can report progress without printing.

The CLI passes a callback that drives a rich progress bar; tests and library callers pass
nothing, and :data:`silent` is used.
"""

from __future__ import annotations

from typing import Protocol


class ProgressCallback(Protocol):
    """Called as work advances: ``(task, completed, total)``; ``total`` None when unknown."""

    def __call__(self, task: str, completed: int, total: int | None) -> None: ...


def silent(task: str, completed: int, total: int | None) -> None:
    """A progress callback that does nothing."""
