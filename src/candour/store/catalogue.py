"""Tables of the open data catalogue: publishers, datasets, their files, and declarations.

A dataset is published once and not edited in place: its files are written at publish time and
their hashes kept here, so what the catalogue serves can always be checked against what was
published. Lists (keywords, ledger entries, the CSVW columns) are canonical JSON text, as in the
register's tables. A non-personal dataset has exactly one declaration row: who declared that the
file holds no personal data, when, and the hash of the file the declaration was about.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from candour.store.models import Base, utcnow


class CatalogueOrganisation(Base):
    """A publisher: a CKAN organisation, a DCAT ``foaf:Agent``."""

    __tablename__ = "catalogue_organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CatalogueDataset(Base):
    """One published dataset and its DCAT-AP metadata."""

    __tablename__ = "catalogue_datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    organisation_id: Mapped[str] = mapped_column(
        ForeignKey("catalogue_organisations.organisation_id"), index=True
    )
    licence: Mapped[str] = mapped_column(String(32))
    keywords_json: Mapped[str] = mapped_column(Text)
    temporal_start: Mapped[date | None] = mapped_column(Date, nullable=True)
    temporal_end: Mapped[date | None] = mapped_column(Date, nullable=True)
    spatial: Mapped[str | None] = mapped_column(String(500), nullable=True)
    frequency: Mapped[str] = mapped_column(String(16))
    origin: Mapped[str] = mapped_column(String(16))  # release | non-personal
    use_id: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    release_id: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)
    ledger_json: Mapped[str] = mapped_column(Text)
    source_sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    columns_json: Mapped[str] = mapped_column(Text)
    threshold: Mapped[int | None] = mapped_column(Integer, nullable=True)
    published_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CatalogueResource(Base):
    """One downloadable file of a dataset (a CKAN resource, a DCAT distribution)."""

    __tablename__ = "catalogue_resources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(36), unique=True)
    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("catalogue_datasets.dataset_id"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))
    media_type: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))


class CatalogueDeclaration(Base):
    """A declaration that a file published directly holds no personal data (append-only)."""

    __tablename__ = "catalogue_declarations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("catalogue_datasets.dataset_id"), unique=True
    )
    declared_by: Mapped[str] = mapped_column(ForeignKey("staff_users.name"))
    declared_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    statement: Mapped[str] = mapped_column(Text)
    file_sha256: Mapped[str] = mapped_column(String(64))
