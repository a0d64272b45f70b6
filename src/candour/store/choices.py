"""Tables of residents' choices: the append-only history and the materialised current state.

- ``choice_events`` is the history: one row per change, never updated or deleted. It holds the
  person's opaque id and number, the purpose, an optional source, the decision, who recorded it
  and through which channel, when, and the ledger entry (index and nonce) that logged it.
- ``choice_optouts`` is the current state, derived from the history and maintained in the same
  transaction as each history insert: one row per opted-out ``(purpose, source, person)``. A
  snapshot for the gate is one indexed range scan of it, not a replay of the history.
- ``choice_versions`` holds one row per purpose with a counter bumped by every change. Updating
  it first serialises changes to one purpose (a row lock on PostgreSQL, the write lock on
  SQLite), which keeps history timestamps in commit order, and lets readers cache a snapshot
  until the counter moves.

``source`` is ``""`` (not NULL) for a choice about every source, so it can be part of a primary
key on both backends.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from candour.store.models import Base, utcnow

ALL_SOURCES = ""


class ChoiceEvent(Base):
    """One change of a resident's choice (append-only)."""

    __tablename__ = "choice_events"
    __table_args__ = (Index("ix_choice_events_purpose_recorded_at", "purpose", "recorded_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[str] = mapped_column(String(16), index=True)
    person_num: Mapped[int] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64), default=ALL_SOURCES)
    decision: Mapped[str] = mapped_column(String(8))  # opt-out | opt-in
    channel: Mapped[str] = mapped_column(String(16))  # cli | portal | bulk-import | api | staff
    actor: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ledger_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ledger_nonce: Mapped[str | None] = mapped_column(String(32), nullable=True)


class ChoiceOptOut(Base):
    """A current opt-out: this person's rows are excluded from this purpose (and source)."""

    __tablename__ = "choice_optouts"

    purpose: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_num: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    person_id: Mapped[str] = mapped_column(String(16), index=True)
    event_id: Mapped[int] = mapped_column(Integer)
    """The history row that put this opt-out in force."""


class ChoiceVersion(Base):
    """Per purpose: how many changes have been recorded, and when the last one was."""

    __tablename__ = "choice_versions"

    purpose: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
