"""Tables of linkage: runs, their models and parameters, the person index and its history,
and clerical review.

No table here holds an identity value: runs hold counts and hashes, models hold Splink's m/u
parameters, the person index holds record keys and opaque ids, and review pairs hold keys and
match weights. The names and dates a reviewer sees are read from the vault when shown.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
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


class LinkRun(Base):
    """One run of ``candour link``."""

    __tablename__ = "link_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(32), unique=True)
    engine: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    records: Mapped[int] = mapped_column(Integer, default=0)
    persons: Mapped[int] = mapped_column(Integer, default=0)
    comparisons: Mapped[int] = mapped_column(Integer, default=0)
    linked_pairs: Mapped[int] = mapped_column(Integer, default=0)
    review_pairs: Mapped[int] = mapped_column(Integer, default=0)
    kept_ids: Mapped[int] = mapped_column(Integer, default=0)
    new_ids: Mapped[int] = mapped_column(Integer, default=0)
    merges: Mapped[int] = mapped_column(Integer, default=0)
    splits: Mapped[int] = mapped_column(Integer, default=0)
    retired: Mapped[int] = mapped_column(Integer, default=0)
    threshold: Mapped[float] = mapped_column(Float)
    review_low: Mapped[float] = mapped_column(Float)
    model_hash: Mapped[str] = mapped_column(String(64))
    index_hash: Mapped[str] = mapped_column(String(64))
    settings_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    blocking_json: Mapped[str] = mapped_column(Text, default="[]")
    """Per blocking rule: comparisons generated (JSON list)."""
    stats_json: Mapped[str] = mapped_column(Text, default="{}")
    """Timings, histogram, examples for the report (JSON; weights only)."""
    ledger_index: Mapped[int | None] = mapped_column(Integer, nullable=True)


class LinkModel(Base):
    """The trained Splink model of a run (settings and m/u parameters, as Splink's JSON)."""

    __tablename__ = "link_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("link_runs.run_id"), unique=True)
    model_hash: Mapped[str] = mapped_column(String(64), index=True)
    model_json: Mapped[str] = mapped_column(Text)


class LinkParameter(Base):
    """One comparison level's parameters in a run's model, for querying and charts."""

    __tablename__ = "link_parameters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("link_runs.run_id"), index=True)
    comparison: Mapped[str] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(256))
    m_probability: Mapped[float | None] = mapped_column(Float, nullable=True)
    u_probability: Mapped[float | None] = mapped_column(Float, nullable=True)
    match_weight: Mapped[float | None] = mapped_column(Float, nullable=True)


class PersonIndexEntry(Base):
    """The current person index: which person each ingested record belongs to."""

    __tablename__ = "person_index"

    record_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(16), index=True)
    person_num: Mapped[int] = mapped_column(Integer, index=True)
    run_id: Mapped[str] = mapped_column(String(32))
    """The run that last assigned this record."""


class PersonNumber(Base):
    """Every person id ever issued and its dense number, so numbers are never reused."""

    __tablename__ = "person_numbers"

    person_num: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    person_id: Mapped[str] = mapped_column(String(16), unique=True)
    created_run: Mapped[str] = mapped_column(String(32))
    retired_run: Mapped[str | None] = mapped_column(String(32), nullable=True)


class PersonChange(Base):
    """A merge, split or retirement of person ids: old id(s) -> new id(s), with a reason."""

    __tablename__ = "person_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("link_runs.run_id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # merge | split | merge+split | retire
    old_ids: Mapped[str] = mapped_column(Text)  # JSON list
    new_ids: Mapped[str] = mapped_column(Text)  # JSON list
    reason: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReviewPair(Base):
    """A pair in the uncertain band, waiting for (or past) a reviewer's decision."""

    __tablename__ = "review_pairs"
    __table_args__ = (UniqueConstraint("record_key_l", "record_key_r"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_key_l: Mapped[str] = mapped_column(String(200))
    record_key_r: Mapped[str] = mapped_column(String(200))
    match_weight: Mapped[float] = mapped_column(Float)
    match_probability: Mapped[float] = mapped_column(Float)
    weights_json: Mapped[str] = mapped_column(Text)
    """Per comparison: level (gamma) and match weight, for the waterfall."""
    reason: Mapped[str] = mapped_column(String(32))  # band | names-disagree
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    first_run_id: Mapped[str] = mapped_column(String(32))
    last_run_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReviewDecision(Base):
    """A reviewer's decision. Append-only: a changed mind is a new row; the latest wins."""

    __tablename__ = "review_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("review_pairs.id"), index=True)
    record_key_l: Mapped[str] = mapped_column(String(200))
    record_key_r: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(16))  # match | non-match
    reviewer: Mapped[str] = mapped_column(String(128))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
