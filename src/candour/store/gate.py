"""Tables of the query gate: the catalogue of linked tables, and every query it answered.

Neither table is public. ``gate_queries`` is the private record behind each public ``query``
ledger entry: who ran it, under which use, which choices snapshot it honoured, and where its
cohort bitmap is kept (the bitmap itself lives in a file under ``<home>/gate/``, never here).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from candour.store.models import Base, utcnow


class GateTable(Base):
    """One linked table the gate built in the warehouse: what analysts can see of a source."""

    __tablename__ = "gate_tables"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    link_key: Mapped[str] = mapped_column(String(200))
    """The link run, person-index hash and ingest batches the table was built from."""
    columns_json: Mapped[str] = mapped_column(Text)
    """Attribute columns and their SQL types (JSON object, in table order)."""
    has_event_date: Mapped[bool] = mapped_column(Boolean)
    rows: Mapped[int] = mapped_column(BigInteger)
    persons: Mapped[int] = mapped_column(BigInteger)
    built_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GateQuery(Base):
    """One query the gate answered (append-only)."""

    __tablename__ = "gate_queries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_id: Mapped[str] = mapped_column(String(32), unique=True)
    use_id: Mapped[str] = mapped_column(String(16), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    user: Mapped[str] = mapped_column(String(64))
    engine: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    """How the output was protected: ``sdc``, ``dp`` or ``record-level`` (not protected)."""
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sql_sha256: Mapped[str] = mapped_column(String(64))
    choices_hash: Mapped[str] = mapped_column(String(64))
    choices_version: Mapped[int] = mapped_column(Integer)
    link_key: Mapped[str] = mapped_column(String(200))
    cohort_sha256: Mapped[str] = mapped_column(String(64))
    cohort_exact: Mapped[bool] = mapped_column(Boolean)
    cohort_size: Mapped[int] = mapped_column(BigInteger)
    cohort_slot: Mapped[int] = mapped_column(BigInteger, unique=True)
    """Column of the per-person lookup index that marks this query's cohort."""
    cohort_file: Mapped[str] = mapped_column(String(255))
    """The cohort bitmap's file, relative to the data home."""
    output_sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    ledger_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
