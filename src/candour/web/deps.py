"""FastAPI dependencies, as ``Annotated`` aliases that routes declare in their signatures.

- :data:`SettingsDep`: the app's :class:`~candour.config.Settings`.
- :data:`SessionDep`: an operational-store session in one transaction (committed on success).
- :data:`CurrentResident`: the signed-in, identity-matched resident, or a redirect to sign-in.
- :data:`CurrentStaff`: the signed-in staff member, or a redirect to staff sign-in;
  :func:`require_role` narrows it to given roles (403 otherwise).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from candour.config import Settings
from candour.store import transaction

# A session older than this must sign in again, however active it has been.
ABSOLUTE_SESSION_SECONDS = 12 * 3600
STAFF_ROLES = ("analyst", "ig", "checker", "admin")


class SignInRequired(Exception):
    """Raised by a dependency when the visitor must sign in; the app turns it into a redirect."""

    def __init__(self, audience: str) -> None:
        super().__init__(audience)
        self.audience = audience


class Resident(BaseModel):
    """A resident who signed in and was matched to exactly one person."""

    model_config = ConfigDict(frozen=True)

    person_id: str
    signed_in_at: int


class StaffMember(BaseModel):
    """A member of staff who signed in with the staff provider.

    ``user`` is their name in the register's ``staff_users`` table (None when the provider's
    identity names no register user); ``roles`` are read from that table on every request, so
    deactivating a user or changing their role takes effect at once.
    """

    model_config = ConfigDict(frozen=True)

    subject: str
    name: str
    user: str | None
    roles: tuple[str, ...]
    signed_in_at: int

    def has(self, *roles: str) -> bool:
        """True when the member holds at least one of ``roles``."""
        return bool(set(self.roles) & set(roles))


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_db_session(settings: SettingsDep) -> Iterator[Session]:
    """A store session in one transaction: committed if the route succeeds, else rolled back."""
    with transaction(settings) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db_session)]


def _fresh(entry: Any) -> dict[str, Any] | None:
    """The session entry if it is a well-formed, not-too-old sign-in record, else None."""
    if not isinstance(entry, dict):
        return None
    since = entry.get("since")
    if isinstance(since, int) and time.time() - since < ABSOLUTE_SESSION_SECONDS:
        return entry
    return None


def current_resident(request: Request) -> Resident:
    """The signed-in resident; raises :class:`SignInRequired` for anyone else."""
    entry = _fresh(request.session.get("resident"))
    if entry is None or not isinstance(entry.get("person_id"), str):
        request.session.pop("resident", None)
        raise SignInRequired("resident")
    return Resident(person_id=entry["person_id"], signed_in_at=entry["since"])


def register_roles(settings: Settings, user: str | None, narrowed: Any) -> tuple[str, ...]:
    """The roles of register user ``user`` now, narrowed by the provider's roles claim.

    The register's ``staff_users`` table is the authority: an unknown or deactivated user has
    no role. When the provider sent a roles claim (``narrowed`` is a list), only roles it also
    lists are kept: the organisation's provider can take a role away, never grant one.
    """
    if not user:
        return ()
    from candour.store.register import StaffUser

    with transaction(settings) as session:
        row = session.scalar(select(StaffUser).where(StaffUser.name == user))
        if row is None or not row.active or row.role not in STAFF_ROLES:
            return ()
        role = row.role
    if isinstance(narrowed, list) and role not in narrowed:
        return ()
    return (role,)


def current_staff(request: Request) -> StaffMember:
    """The signed-in member of staff; raises :class:`SignInRequired` for anyone else."""
    entry = _fresh(request.session.get("staff"))
    if entry is None or not isinstance(entry.get("sub"), str):
        request.session.pop("staff", None)
        raise SignInRequired("staff")
    user = entry.get("user") if isinstance(entry.get("user"), str) else None
    return StaffMember(
        subject=entry["sub"],
        name=str(entry.get("name") or ""),
        user=user,
        roles=register_roles(get_settings(request), user, entry.get("claim_roles")),
        signed_in_at=entry["since"],
    )


CurrentResident = Annotated[Resident, Depends(current_resident)]
CurrentStaff = Annotated[StaffMember, Depends(current_staff)]


def require_role(*roles: str) -> Callable[[StaffMember], StaffMember]:
    """A dependency allowing only staff holding one of ``roles`` (403 for other staff)."""
    unknown = set(roles) - set(STAFF_ROLES)
    if unknown:
        raise ValueError(f"unknown staff role(s): {', '.join(sorted(unknown))}")

    def check(staff: CurrentStaff) -> StaffMember:
        if not set(staff.roles) & set(roles):
            raise HTTPException(status_code=403, detail="role")
        return staff

    return check
