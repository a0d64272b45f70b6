"""Web service: residents' service preferences (append-only) and services' API tokens.

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_preferences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("preference", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_preferences")),
    )
    op.create_index(
        "ix_service_preferences_person_source",
        "service_preferences",
        ["person_id", "source", "id"],
    )
    op.create_index(
        "ix_service_preferences_source_id", "service_preferences", ["source", "id"]
    )
    op.create_table(
        "service_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_tokens")),
        sa.UniqueConstraint("token_id", name=op.f("uq_service_tokens_token_id")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_service_tokens_token_sha256")),
    )
    op.create_index(op.f("ix_service_tokens_source"), "service_tokens", ["source"])


def downgrade() -> None:
    op.drop_index(op.f("ix_service_tokens_source"), table_name="service_tokens")
    op.drop_table("service_tokens")
    op.drop_index("ix_service_preferences_source_id", table_name="service_preferences")
    op.drop_index("ix_service_preferences_person_source", table_name="service_preferences")
    op.drop_table("service_preferences")
