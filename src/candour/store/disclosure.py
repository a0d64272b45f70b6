"""Tables of disclosure control: differential-privacy budgets, checked outputs, release requests.

Privacy budgets are kept in whole micro-epsilon (``epsilon * 10**6``) so that repeated charges
add up exactly: a float total drifts (ten charges of 0.1 need not make 1.0), and a budget must
never be overspent by rounding. Charges round up and budgets round down.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from candour.store.models import Base, utcnow

MICRO = 1_000_000


class DpBudget(Base):
    """A data use's differential-privacy budget and how much of it is spent."""

    __tablename__ = "dp_budgets"

    use_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    total_micro: Mapped[int] = mapped_column(BigInteger)
    spent_micro: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DpCharge(Base):
    """One differentially private query charged against a use's budget (append-only)."""

    __tablename__ = "dp_charges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    charge_id: Mapped[str] = mapped_column(String(32), unique=True)
    use_id: Mapped[str] = mapped_column(ForeignKey("dp_budgets.use_id"), index=True)
    epsilon_micro: Mapped[int] = mapped_column(BigInteger)
    statistic: Mapped[str] = mapped_column(String(16))
    groups: Mapped[int] = mapped_column(Integer)
    result_sha256: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    query_ref: Mapped[str | None] = mapped_column(String(80), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DisclosureOutput(Base):
    """A protected output kept inside the environment: its file and its disclosure report."""

    __tablename__ = "disclosure_outputs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    output_id: Mapped[str] = mapped_column(String(32), unique=True)
    use_id: Mapped[str] = mapped_column(String(16), index=True)
    method: Mapped[str] = mapped_column(String(8))  # sdc | dp
    file_name: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64))
    report_json: Mapped[str] = mapped_column(Text)
    report_sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReleaseRequest(Base):
    """A request to release an output, and its outcome (pending, rejected or released)."""

    __tablename__ = "release_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[str] = mapped_column(String(32), unique=True)
    output_id: Mapped[str] = mapped_column(ForeignKey("disclosure_outputs.output_id"), index=True)
    use_id: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    output_sha256: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    checked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    ledger_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    release_path: Mapped[str | None] = mapped_column(String(512), nullable=True)
