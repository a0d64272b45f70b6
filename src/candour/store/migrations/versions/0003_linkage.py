"""Linkage: runs, models and parameters, the person index and its history, clerical review.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "link_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("engine", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("persons", sa.Integer(), nullable=False),
        sa.Column("comparisons", sa.Integer(), nullable=False),
        sa.Column("linked_pairs", sa.Integer(), nullable=False),
        sa.Column("review_pairs", sa.Integer(), nullable=False),
        sa.Column("kept_ids", sa.Integer(), nullable=False),
        sa.Column("new_ids", sa.Integer(), nullable=False),
        sa.Column("merges", sa.Integer(), nullable=False),
        sa.Column("splits", sa.Integer(), nullable=False),
        sa.Column("retired", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("review_low", sa.Float(), nullable=False),
        sa.Column("model_hash", sa.String(length=64), nullable=False),
        sa.Column("index_hash", sa.String(length=64), nullable=False),
        sa.Column("settings_hash", sa.String(length=64), nullable=True),
        sa.Column("blocking_json", sa.Text(), nullable=False),
        sa.Column("stats_json", sa.Text(), nullable=False),
        sa.Column("ledger_index", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_runs")),
        sa.UniqueConstraint("run_id", name=op.f("uq_link_runs_run_id")),
    )
    op.create_table(
        "link_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("model_hash", sa.String(length=64), nullable=False),
        sa.Column("model_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["link_runs.run_id"], name=op.f("fk_link_models_run_id_link_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_models")),
        sa.UniqueConstraint("run_id", name=op.f("uq_link_models_run_id")),
    )
    op.create_index(op.f("ix_link_models_model_hash"), "link_models", ["model_hash"])
    op.create_table(
        "link_parameters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("comparison", sa.String(length=64), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=256), nullable=False),
        sa.Column("m_probability", sa.Float(), nullable=True),
        sa.Column("u_probability", sa.Float(), nullable=True),
        sa.Column("match_weight", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["link_runs.run_id"], name=op.f("fk_link_parameters_run_id_link_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_parameters")),
    )
    op.create_index(op.f("ix_link_parameters_run_id"), "link_parameters", ["run_id"])
    op.create_table(
        "person_index",
        sa.Column("record_key", sa.String(length=200), nullable=False),
        sa.Column("person_id", sa.String(length=16), nullable=False),
        sa.Column("person_num", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("record_key", name=op.f("pk_person_index")),
    )
    op.create_index(op.f("ix_person_index_person_id"), "person_index", ["person_id"])
    op.create_index(op.f("ix_person_index_person_num"), "person_index", ["person_num"])
    op.create_table(
        "person_numbers",
        sa.Column("person_num", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("person_id", sa.String(length=16), nullable=False),
        sa.Column("created_run", sa.String(length=32), nullable=False),
        sa.Column("retired_run", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("person_num", name=op.f("pk_person_numbers")),
        sa.UniqueConstraint("person_id", name=op.f("uq_person_numbers_person_id")),
    )
    op.create_table(
        "person_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("old_ids", sa.Text(), nullable=False),
        sa.Column("new_ids", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["link_runs.run_id"], name=op.f("fk_person_changes_run_id_link_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_changes")),
    )
    op.create_index(op.f("ix_person_changes_run_id"), "person_changes", ["run_id"])
    op.create_table(
        "review_pairs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_key_l", sa.String(length=200), nullable=False),
        sa.Column("record_key_r", sa.String(length=200), nullable=False),
        sa.Column("match_weight", sa.Float(), nullable=False),
        sa.Column("match_probability", sa.Float(), nullable=False),
        sa.Column("weights_json", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("first_run_id", sa.String(length=32), nullable=False),
        sa.Column("last_run_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_pairs")),
        sa.UniqueConstraint(
            "record_key_l", "record_key_r", name=op.f("uq_review_pairs_record_key_l")
        ),
    )
    op.create_index(op.f("ix_review_pairs_status"), "review_pairs", ["status"])
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("record_key_l", sa.String(length=200), nullable=False),
        sa.Column("record_key_r", sa.String(length=200), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reviewer", sa.String(length=128), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pair_id"], ["review_pairs.id"], name=op.f("fk_review_decisions_pair_id_review_pairs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_decisions")),
    )
    op.create_index(op.f("ix_review_decisions_pair_id"), "review_decisions", ["pair_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_review_decisions_pair_id"), table_name="review_decisions")
    op.drop_table("review_decisions")
    op.drop_index(op.f("ix_review_pairs_status"), table_name="review_pairs")
    op.drop_table("review_pairs")
    op.drop_index(op.f("ix_person_changes_run_id"), table_name="person_changes")
    op.drop_table("person_changes")
    op.drop_table("person_numbers")
    op.drop_index(op.f("ix_person_index_person_num"), table_name="person_index")
    op.drop_index(op.f("ix_person_index_person_id"), table_name="person_index")
    op.drop_table("person_index")
    op.drop_index(op.f("ix_link_parameters_run_id"), table_name="link_parameters")
    op.drop_table("link_parameters")
    op.drop_index(op.f("ix_link_models_model_hash"), table_name="link_models")
    op.drop_table("link_models")
    op.drop_table("link_runs")
