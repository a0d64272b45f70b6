"""The query gate: the catalogue of linked tables, and the private record of every query.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gate_tables",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("link_key", sa.String(length=200), nullable=False),
        sa.Column("columns_json", sa.Text(), nullable=False),
        sa.Column("has_event_date", sa.Boolean(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("persons", sa.BigInteger(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_gate_tables")),
    )
    op.create_table(
        "gate_queries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query_id", sa.String(length=32), nullable=False),
        sa.Column("use_id", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("engine", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sql_sha256", sa.String(length=64), nullable=False),
        sa.Column("choices_hash", sa.String(length=64), nullable=False),
        sa.Column("choices_version", sa.Integer(), nullable=False),
        sa.Column("link_key", sa.String(length=200), nullable=False),
        sa.Column("cohort_sha256", sa.String(length=64), nullable=False),
        sa.Column("cohort_exact", sa.Boolean(), nullable=False),
        sa.Column("cohort_size", sa.BigInteger(), nullable=False),
        sa.Column("cohort_slot", sa.BigInteger(), nullable=False),
        sa.Column("cohort_file", sa.String(length=255), nullable=False),
        sa.Column("output_sha256", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_queries")),
        sa.UniqueConstraint("query_id", name=op.f("uq_gate_queries_query_id")),
        sa.UniqueConstraint("cohort_slot", name=op.f("uq_gate_queries_cohort_slot")),
    )
    op.create_index(op.f("ix_gate_queries_use_id"), "gate_queries", ["use_id"])
    op.create_index(op.f("ix_gate_queries_ledger_index"), "gate_queries", ["ledger_index"])


def downgrade() -> None:
    op.drop_index(op.f("ix_gate_queries_ledger_index"), table_name="gate_queries")
    op.drop_index(op.f("ix_gate_queries_use_id"), table_name="gate_queries")
    op.drop_table("gate_queries")
    op.drop_table("gate_tables")
