"""Choices and register: residents' choices (history, current opt-outs, versions), staff users,
data uses and their transitions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "choice_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=16), nullable=False),
        sa.Column("person_num", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=True),
        sa.Column("ledger_nonce", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_choice_events")),
    )
    op.create_index(op.f("ix_choice_events_person_id"), "choice_events", ["person_id"])
    op.create_index(
        "ix_choice_events_purpose_recorded_at", "choice_events", ["purpose", "recorded_at"]
    )
    op.create_table(
        "choice_optouts",
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("person_num", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("person_id", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("purpose", "source", "person_num", name=op.f("pk_choice_optouts")),
    )
    op.create_index(op.f("ix_choice_optouts_person_id"), "choice_optouts", ["person_id"])
    op.create_table(
        "choice_versions",
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("purpose", name=op.f("pk_choice_versions")),
    )
    op.create_table(
        "staff_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("name", name=op.f("uq_staff_users_name")),
    )
    op.create_table(
        "data_uses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("use_id", sa.String(length=16), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("public_benefit", sa.Text(), nullable=False),
        sa.Column("organisation", sa.String(length=200), nullable=False),
        sa.Column("team", sa.String(length=200), nullable=False),
        sa.Column("senior_responsible_owner", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("article_6", sa.String(length=200), nullable=False),
        sa.Column("article_9", sa.String(length=200), nullable=True),
        sa.Column("dpa_schedule_1", sa.String(length=200), nullable=True),
        sa.Column("common_law", sa.String(length=500), nullable=False),
        sa.Column("applicant", sa.String(length=64), nullable=False),
        sa.Column("analysts_json", sa.Text(), nullable=False),
        sa.Column("grants_json", sa.Text(), nullable=False),
        sa.Column("output", sa.String(length=16), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("rounding", sa.Integer(), nullable=False),
        sa.Column("dp_epsilon", sa.Float(), nullable=True),
        sa.Column("starts", sa.Date(), nullable=False),
        sa.Column("ends", sa.Date(), nullable=False),
        sa.Column("application_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decision_hash", sa.String(length=64), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.Column("revoke_reason", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["applicant"], ["staff_users.name"], name=op.f("fk_data_uses_applicant_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_uses")),
        sa.UniqueConstraint("use_id", name=op.f("uq_data_uses_use_id")),
        sa.UniqueConstraint("year", "seq", name=op.f("uq_data_uses_year")),
    )
    op.create_index(op.f("ix_data_uses_status"), "data_uses", ["status"])
    op.create_table(
        "use_transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("use_id", sa.String(length=16), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=True),
        sa.Column("ledger_index", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["use_id"], ["data_uses.use_id"], name=op.f("fk_use_transitions_use_id_data_uses")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_use_transitions")),
    )
    op.create_index(op.f("ix_use_transitions_use_id"), "use_transitions", ["use_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_use_transitions_use_id"), table_name="use_transitions")
    op.drop_table("use_transitions")
    op.drop_index(op.f("ix_data_uses_status"), table_name="data_uses")
    op.drop_table("data_uses")
    op.drop_table("staff_users")
    op.drop_table("choice_versions")
    op.drop_index(op.f("ix_choice_optouts_person_id"), table_name="choice_optouts")
    op.drop_table("choice_optouts")
    op.drop_index("ix_choice_events_purpose_recorded_at", table_name="choice_events")
    op.drop_index(op.f("ix_choice_events_person_id"), table_name="choice_events")
    op.drop_table("choice_events")
