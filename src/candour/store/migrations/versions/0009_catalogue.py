"""Open data catalogue: publishers, datasets, their files, non-personal declarations.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalogue_organisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_organisations")),
        sa.UniqueConstraint(
            "organisation_id", name=op.f("uq_catalogue_organisations_organisation_id")
        ),
        sa.UniqueConstraint("name", name=op.f("uq_catalogue_organisations_name")),
    )
    op.create_table(
        "catalogue_datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("organisation_id", sa.String(length=36), nullable=False),
        sa.Column("licence", sa.String(length=32), nullable=False),
        sa.Column("keywords_json", sa.Text(), nullable=False),
        sa.Column("temporal_start", sa.Date(), nullable=True),
        sa.Column("temporal_end", sa.Date(), nullable=True),
        sa.Column("spatial", sa.String(length=500), nullable=True),
        sa.Column("frequency", sa.String(length=16), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("use_id", sa.String(length=16), nullable=True),
        sa.Column("release_id", sa.String(length=32), nullable=True),
        sa.Column("ledger_json", sa.Text(), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("columns_json", sa.Text(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=True),
        sa.Column("published_by", sa.String(length=64), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["catalogue_organisations.organisation_id"],
            name=op.f("fk_catalogue_datasets_organisation_id_catalogue_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_datasets")),
        sa.UniqueConstraint("dataset_id", name=op.f("uq_catalogue_datasets_dataset_id")),
        sa.UniqueConstraint("name", name=op.f("uq_catalogue_datasets_name")),
        sa.UniqueConstraint("release_id", name=op.f("uq_catalogue_datasets_release_id")),
    )
    op.create_index(
        op.f("ix_catalogue_datasets_organisation_id"), "catalogue_datasets", ["organisation_id"]
    )
    op.create_index(op.f("ix_catalogue_datasets_use_id"), "catalogue_datasets", ["use_id"])
    op.create_table(
        "catalogue_resources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("dataset_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["catalogue_datasets.dataset_id"],
            name=op.f("fk_catalogue_resources_dataset_id_catalogue_datasets"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_resources")),
        sa.UniqueConstraint("resource_id", name=op.f("uq_catalogue_resources_resource_id")),
    )
    op.create_index(
        op.f("ix_catalogue_resources_dataset_id"), "catalogue_resources", ["dataset_id"]
    )
    op.create_table(
        "catalogue_declarations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.String(length=36), nullable=False),
        sa.Column("declared_by", sa.String(length=64), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["catalogue_datasets.dataset_id"],
            name=op.f("fk_catalogue_declarations_dataset_id_catalogue_datasets"),
        ),
        sa.ForeignKeyConstraint(
            ["declared_by"],
            ["staff_users.name"],
            name=op.f("fk_catalogue_declarations_declared_by_staff_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_declarations")),
        sa.UniqueConstraint("dataset_id", name=op.f("uq_catalogue_declarations_dataset_id")),
    )


def downgrade() -> None:
    op.drop_table("catalogue_declarations")
    op.drop_index(op.f("ix_catalogue_resources_dataset_id"), table_name="catalogue_resources")
    op.drop_table("catalogue_resources")
    op.drop_index(op.f("ix_catalogue_datasets_use_id"), table_name="catalogue_datasets")
    op.drop_index(op.f("ix_catalogue_datasets_organisation_id"), table_name="catalogue_datasets")
    op.drop_table("catalogue_datasets")
    op.drop_table("catalogue_organisations")
