"""Disclosure control: differential-privacy budgets and charges, outputs, release requests.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dp_budgets",
        sa.Column("use_id", sa.String(length=16), nullable=False),
        sa.Column("total_micro", sa.BigInteger(), nullable=False),
        sa.Column("spent_micro", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("use_id", name=op.f("pk_dp_budgets")),
    )
    op.create_table(
        "dp_charges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charge_id", sa.String(length=32), nullable=False),
        sa.Column("use_id", sa.String(length=16), nullable=False),
        sa.Column("epsilon_micro", sa.BigInteger(), nullable=False),
        sa.Column("statistic", sa.String(length=16), nullable=False),
        sa.Column("groups", sa.Integer(), nullable=False),
        sa.Column("result_sha256", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("query_ref", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["use_id"], ["dp_budgets.use_id"], name=op.f("fk_dp_charges_use_id_dp_budgets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dp_charges")),
        sa.UniqueConstraint("charge_id", name=op.f("uq_dp_charges_charge_id")),
    )
    op.create_index(op.f("ix_dp_charges_use_id"), "dp_charges", ["use_id"])
    op.create_table(
        "disclosure_outputs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("output_id", sa.String(length=32), nullable=False),
        sa.Column("use_id", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("report_json", sa.Text(), nullable=False),
        sa.Column("report_sha256", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disclosure_outputs")),
        sa.UniqueConstraint("output_id", name=op.f("uq_disclosure_outputs_output_id")),
    )
    op.create_index(op.f("ix_disclosure_outputs_use_id"), "disclosure_outputs", ["use_id"])
    op.create_table(
        "release_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.String(length=32), nullable=False),
        sa.Column("output_id", sa.String(length=32), nullable=False),
        sa.Column("use_id", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("output_sha256", sa.String(length=64), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_by", sa.String(length=64), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("ledger_index", sa.BigInteger(), nullable=True),
        sa.Column("release_path", sa.String(length=512), nullable=True),
        sa.ForeignKeyConstraint(
            ["output_id"],
            ["disclosure_outputs.output_id"],
            name=op.f("fk_release_requests_output_id_disclosure_outputs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_release_requests")),
        sa.UniqueConstraint("release_id", name=op.f("uq_release_requests_release_id")),
    )
    op.create_index(op.f("ix_release_requests_output_id"), "release_requests", ["output_id"])
    op.create_index(op.f("ix_release_requests_use_id"), "release_requests", ["use_id"])
    op.create_index(op.f("ix_release_requests_status"), "release_requests", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_release_requests_status"), table_name="release_requests")
    op.drop_index(op.f("ix_release_requests_use_id"), table_name="release_requests")
    op.drop_index(op.f("ix_release_requests_output_id"), table_name="release_requests")
    op.drop_table("release_requests")
    op.drop_index(op.f("ix_disclosure_outputs_use_id"), table_name="disclosure_outputs")
    op.drop_table("disclosure_outputs")
    op.drop_index(op.f("ix_dp_charges_use_id"), table_name="dp_charges")
    op.drop_table("dp_charges")
    op.drop_table("dp_budgets")
