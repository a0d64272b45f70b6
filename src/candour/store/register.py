"""Tables of the data-use register: staff users, data uses, and every transition of a use.

A data use's application fields are stored as columns (not one JSON blob) so that the public
register can be queried and exported without parsing; the few list-shaped fields (analysts,
grants) are canonical JSON text. ``use_transitions`` is append-only: each row is one step of the
lifecycle with who took it, when, and the ledger entry that logged it.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from candour.store.models import Base, utcnow


class StaffUser(Base):
    """A member of staff who may apply for, approve, query under or check data uses."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # analyst | ig | checker | admin
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DataUse(Base):
    """One data use in the register, from application to its end."""

    __tablename__ = "data_uses"
    __table_args__ = (UniqueConstraint("year", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    use_id: Mapped[str] = mapped_column(String(16), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    """Stored status: draft | submitted | approved | rejected | revoked. ``active`` and
    ``expired`` are derived from ``approved`` and the dates (see candour.register)."""

    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text)
    public_benefit: Mapped[str] = mapped_column(Text)
    organisation: Mapped[str] = mapped_column(String(200))
    team: Mapped[str] = mapped_column(String(200))
    senior_responsible_owner: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(64))
    article_6: Mapped[str] = mapped_column(String(200))
    article_9: Mapped[str | None] = mapped_column(String(200), nullable=True)
    dpa_schedule_1: Mapped[str | None] = mapped_column(String(200), nullable=True)
    common_law: Mapped[str] = mapped_column(String(500))
    applicant: Mapped[str] = mapped_column(ForeignKey("staff_users.name"))
    analysts_json: Mapped[str] = mapped_column(Text)
    grants_json: Mapped[str] = mapped_column(Text)
    output: Mapped[str] = mapped_column(String(16))
    threshold: Mapped[int] = mapped_column(Integer)
    rounding: Mapped[int] = mapped_column(Integer)
    dp_epsilon: Mapped[float | None] = mapped_column(Float, nullable=True)
    starts: Mapped[date] = mapped_column(Date)
    ends: Mapped[date] = mapped_column(Date)
    application_hash: Mapped[str] = mapped_column(String(64))

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decision_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    revoke_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)


class UseTransition(Base):
    """One step in a data use's lifecycle (append-only)."""

    __tablename__ = "use_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    use_id: Mapped[str] = mapped_column(ForeignKey("data_uses.use_id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    ledger_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
