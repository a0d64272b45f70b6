"""What the catalogue holds: datasets, their files and publishers, and the vocabularies used.

These are plain frozen dataclasses built from store rows, so pages, the CLI and the machine
interfaces never see ORM objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from candour.errors import CandourError

Origin = Literal["release", "non-personal"]


class CatalogueError(CandourError):
    """A catalogue request cannot be met (unknown dataset, bad metadata, clashing name)."""


class NotFound(CatalogueError):
    """No dataset, resource or publisher has that name or id."""


class PublishRefused(CatalogueError):
    """A file may not be published: it is, or may be, about people. Nothing was published."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("publishing refused: " + "; ".join(problems))


@dataclass(frozen=True)
class Licence:
    """A licence a dataset can be published under."""

    id: str
    title: str
    url: str
    ckan_id: str


#: Licences offered, keyed by SPDX identifier. The Open Government Licence v3.0 is the default
#: for UK public-sector information (The National Archives' guidance).
LICENCES: dict[str, Licence] = {
    "OGL-UK-3.0": Licence(
        "OGL-UK-3.0",
        "Open Government Licence v3.0",
        "http://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/",
        "uk-ogl",
    ),
    "CC-BY-4.0": Licence(
        "CC-BY-4.0",
        "Creative Commons Attribution 4.0",
        "https://creativecommons.org/licenses/by/4.0/",
        "cc-by",
    ),
    "CC0-1.0": Licence(
        "CC0-1.0",
        "Creative Commons CCZero",
        "https://creativecommons.org/publicdomain/zero/1.0/",
        "cc-zero",
    ),
}
DEFAULT_LICENCE = "OGL-UK-3.0"

FREQUENCY_AUTHORITY = "http://publications.europa.eu/resource/authority/frequency/"
#: Update frequencies, mapped to the EU Publications Office frequency vocabulary (DCAT-AP).
FREQUENCIES: dict[str, str] = {
    "never": "NEVER",
    "irregular": "IRREG",
    "continuous": "CONT",
    "hourly": "HOURLY",
    "daily": "DAILY",
    "weekly": "WEEKLY",
    "monthly": "MONTHLY",
    "quarterly": "QUARTERLY",
    "annual": "ANNUAL",
    "unknown": "UNKNOWN",
}

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,99}$")
KEYWORD = re.compile(r"^[\w .-]{2,100}$")


@dataclass(frozen=True)
class Organisation:
    """A publisher."""

    organisation_id: str
    name: str
    title: str
    created_at: datetime
    datasets: int = 0


@dataclass(frozen=True)
class Resource:
    """One downloadable file of a dataset."""

    resource_id: str
    dataset_id: str
    position: int
    format: str
    media_type: str
    file_name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Column:
    """One column of a dataset's CSVW table schema."""

    name: str
    title: str
    datatype: str
    description: str | None = None
    measure: Literal["count"] | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored."""
        return {
            "name": self.name,
            "title": self.title,
            "datatype": self.datatype,
            "description": self.description,
            "measure": self.measure,
        }


@dataclass(frozen=True)
class Declaration:
    """Who declared that a directly published file holds no personal data, and when."""

    declared_by: str
    declared_at: datetime
    statement: str
    file_sha256: str


@dataclass(frozen=True)
class Dataset:
    """A published dataset with its DCAT-AP metadata, provenance and files."""

    dataset_id: str
    name: str
    title: str
    description: str
    publisher: Organisation
    licence: Licence
    keywords: tuple[str, ...]
    temporal_start: date | None
    temporal_end: date | None
    spatial: str | None
    frequency: str
    origin: Origin
    use_id: str | None
    release_id: str | None
    ledger_entries: tuple[int, ...]
    source_sha256: str
    rows: int
    columns: tuple[Column, ...]
    threshold: int | None
    published_by: str | None
    published_at: datetime
    resources: tuple[Resource, ...] = field(default=())
    declaration: Declaration | None = None

    @property
    def frequency_uri(self) -> str:
        """The update frequency as a term of the EU frequency vocabulary."""
        return FREQUENCY_AUTHORITY + FREQUENCIES.get(self.frequency, "UNKNOWN")

    def resource(self, fmt: str) -> Resource | None:
        """The file in this format (``CSV``, ``JSON``, ``Parquet``), if any."""
        return next((r for r in self.resources if r.format == fmt), None)

    @property
    def csvw_file(self) -> str:
        """The file name of the CSVW metadata (beside the CSV, as CSVW's discovery rule has it)."""
        return f"{self.name}.csv-metadata.json"
