"""Tables of the web service: residents' service preferences and the services' API tokens.

- ``service_preferences`` is append-only: one row per change of how a resident wants a service
  to deal with them (``online`` or ``paper``). The latest row per ``(person_id, source)`` is in
  force; the earlier rows are the history the resident can see.
- ``service_tokens`` holds one row per API token issued to a service (a source). Only the
  token's SHA-256 is kept; the token itself is shown once, when it is issued.

Neither table holds a name, date of birth, address or any other direct identifier: residents
are known by their opaque ``person_id`` only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from candour.store.models import Base, utcnow


class ServicePreference(Base):
    """One change of a resident's preference for how a service contacts them (append-only)."""

    __tablename__ = "service_preferences"
    __table_args__ = (
        Index("ix_service_preferences_person_source", "person_id", "source", "id"),
        Index("ix_service_preferences_source_id", "source", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(64))
    preference: Mapped[str] = mapped_column(String(8))  # online | paper
    channel: Mapped[str] = mapped_column(String(16))  # portal | api | staff
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ServiceToken(Base):
    """An API token that lets one service read its residents' preferences."""

    __tablename__ = "service_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_id: Mapped[str] = mapped_column(String(16), unique=True)
    source: Mapped[str] = mapped_column(String(64), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
