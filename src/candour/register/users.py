"""Staff users and their roles.

- ``analyst``: applies for data uses and queries under the uses that name them;
- ``ig``: an information-governance lead, who approves, rejects and revokes data uses;
- ``checker``: an output checker, who approves releases (the two-person rule);
- ``admin``: runs the environment; may revoke a use, but not approve one.

The web issue adds OpenID Connect sign-in; until then the CLI's ``--as USER`` names the user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from candour.config import Settings
from candour.errors import CandourError
from candour.store import transaction
from candour.store.register import StaffUser

Role = Literal["analyst", "ig", "checker", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
_NAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")


class UserError(CandourError):
    """A staff user is unknown, already exists, or lacks the role an action needs."""


@dataclass(frozen=True)
class User:
    """A member of staff."""

    name: str
    role: Role
    active: bool
    created_at: datetime


def _to_user(row: StaffUser) -> User:
    return User(row.name, row.role, row.active, row.created_at)  # type: ignore[arg-type]


def add_user(name: str, role: str, *, settings: Settings) -> User:
    """Add a staff user. Names are lower case (letters, digits, ``.``, ``_``, ``-``)."""
    if not _NAME.match(name):
        raise UserError(
            f"{name!r} is not a user name: 2-64 characters, lower-case letters first, then "
            "letters, digits, '.', '_' or '-'"
        )
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    try:
        with transaction(settings) as session:
            existing = session.scalar(select(StaffUser).where(StaffUser.name == name))
            if existing is not None:
                raise UserError(f"user {name} already exists (role {existing.role})")
            row = StaffUser(name=name, role=role, active=True)
            session.add(row)
            session.flush()
            return _to_user(row)
    except IntegrityError:
        raise UserError(f"user {name} already exists") from None


def list_users(*, settings: Settings) -> list[User]:
    """Every staff user, by name."""
    with transaction(settings) as session:
        return [_to_user(r) for r in session.scalars(select(StaffUser).order_by(StaffUser.name))]


def user_in(session: Session, name: str) -> User:
    """The active user called ``name`` within an open session, or a :class:`UserError`."""
    row = session.scalar(select(StaffUser).where(StaffUser.name == name))
    if row is None:
        raise UserError(f"no staff user called {name!r}; add one with `candour users add`")
    if not row.active:
        raise UserError(f"staff user {name} is deactivated")
    return _to_user(row)


def get_user(name: str, *, settings: Settings) -> User:
    """The active user called ``name``, or a :class:`UserError`."""
    with transaction(settings) as session:
        return user_in(session, name)
