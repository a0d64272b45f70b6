"""``candour users``: staff users and their roles (analyst, ig, checker, admin)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from candour import register
from candour.cli.common import HomeOption, console, new_app, settings

app = new_app(
    "Staff users: analysts query, ig (information governance) approves data uses, checkers "
    "check outputs, admins run the environment."
)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The user name (lower case), e.g. ana.")],
    role: Annotated[
        str, typer.Option("--role", help="analyst, ig, checker or admin.", show_default=False)
    ],
    home: HomeOption = None,
) -> None:
    """Add a staff user with a role."""
    user = register.add_user(name, role, settings=settings(home))
    console.print(f"Added {user.name} ({user.role}).")


@app.command("list")
def list_(home: HomeOption = None) -> None:
    """List staff users and their roles."""
    users = register.list_users(settings=settings(home))
    if not users:
        console.print("No staff users yet: add one with `candour users add NAME --role ROLE`.")
        return
    table = Table(title="Staff users")
    for column in ("name", "role", "active", "added (UTC)"):
        table.add_column(column)
    for user in users:
        table.add_row(
            user.name,
            user.role,
            "yes" if user.active else "no",
            user.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)
