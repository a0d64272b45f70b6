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
    """A member of staff who signed in with the staff provider."""

    model_config = ConfigDict(frozen=True)

    subject: str
    name: str
    roles: tuple[str, ...]
    signed_in_at: int


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


def current_staff(request: Request) -> StaffMember:
    """The signed-in member of staff; raises :class:`SignInRequired` for anyone else."""
    entry = _fresh(request.session.get("staff"))
    if entry is None or not isinstance(entry.get("sub"), str):
        request.session.pop("staff", None)
        raise SignInRequired("staff")
    roles = tuple(r for r in entry.get("roles", []) if r in STAFF_ROLES)
    return StaffMember(
        subject=entry["sub"],
        name=str(entry.get("name") or ""),
        roles=roles,
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
