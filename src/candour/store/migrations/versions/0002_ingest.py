"""Ingest: batch bookkeeping for crash-safe ingest, and the vault's access audit.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Recreated on SQLite with AUTOINCREMENT, so a deleted batch's id is never handed out again
    # (PostgreSQL's sequences never reuse an id anyway).
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table(
        "ingest_batches",
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True} if sqlite else {},
    ) as batch:
        batch.add_column(
            sa.Column("file_bytes", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("ledger_size_before", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("ledger_index", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        op.f("ix_ingest_batches_status"), "ingest_batches", ["status"], unique=False
    )
    op.create_table(
        "vault_access",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=256), nullable=False),
        sa.Column("workspace", sa.String(length=64), nullable=True),
        sa.Column("records", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vault_access")),
    )
    op.create_index(
        op.f("ix_vault_access_operation"), "vault_access", ["operation"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_vault_access_operation"), table_name="vault_access")
    op.drop_table("vault_access")
    op.drop_index(op.f("ix_ingest_batches_status"), table_name="ingest_batches")
    with op.batch_alter_table("ingest_batches") as batch:
        batch.drop_column("finished_at")
        batch.drop_column("ledger_index")
        batch.drop_column("ledger_size_before")
        batch.drop_column("file_bytes")
