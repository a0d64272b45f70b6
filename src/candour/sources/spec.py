"""The ``sources.yaml`` format, version 1: which files a service sends and what their columns mean.

This module is a leaf: it imports nothing else from Candour but its error type and YAML
reader, so that the synthetic county can write files in exactly the format that ingest reads
(see docs/sources.md).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from candour.errors import CandourError
from candour.yamlspec import parse_model

SOURCE_NAME = re.compile(r"^[a-z0-9_]+$")
ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Names the warehouse uses itself; an attribute may not shadow them.
RESERVED_COLUMNS = frozenset({"record_key", "person_id", "person_num", "batch_id", "source"})

AttributeType = Literal["date", "int", "float", "category", "text", "bool"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CsvDialect(_Strict):
    """How a CSV file is written. Defaults suit most extracts."""

    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    encoding: str = "utf-8"

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {value!r} (try utf-8, utf-8-sig, cp1252)") from exc
        return value


class DateColumn(_Strict):
    """A date held in one column, written in a strptime ``format`` such as ``%d/%m/%Y``."""

    column: str
    format: str = "%Y-%m-%d"


class Identity(_Strict):
    """Which columns hold direct identifiers. Every one of them goes only to the vault."""

    given_name: str | None = None
    middle_name: str | None = None
    family_name: str | None = None
    date_of_birth: DateColumn | None = None
    sex: str | None = None
    postcode: str | None = None
    address: str | list[str] | None = None
    nhs_number: str | None = None
    identifiers: dict[str, str] = Field(default_factory=dict)

    def columns(self) -> list[str]:
        """Every source column named here, in a stable order."""
        found: list[str] = []
        for value in (self.given_name, self.middle_name, self.family_name):
            if value:
                found.append(value)
        if self.date_of_birth:
            found.append(self.date_of_birth.column)
        for value in (self.sex, self.postcode):
            if value:
                found.append(value)
        if isinstance(self.address, str):
            found.append(self.address)
        elif self.address:
            found.extend(self.address)
        if self.nhs_number:
            found.append(self.nhs_number)
        found.extend(self.identifiers.values())
        return found

    def fields(self) -> list[str]:
        """The standard identity fields this source provides."""
        return [
            name
            for name in (
                "given_name",
                "middle_name",
                "family_name",
                "date_of_birth",
                "sex",
                "postcode",
                "address",
                "nhs_number",
            )
            if getattr(self, name)
        ] + [f"identifiers.{key}" for key in self.identifiers]


class Attribute(_Strict):
    """A typed column kept, pseudonymised, in the warehouse."""

    column: str
    type: AttributeType
    format: str | None = None

    @model_validator(mode="after")
    def _format_only_for_dates(self) -> Attribute:
        if self.format is not None and self.type not in ("date", "bool"):
            raise ValueError("format applies only to date and bool attributes")
        return self


class Source(_Strict):
    """One service's extract."""

    name: str
    title: str
    controller: str
    files: Annotated[list[str], Field(min_length=1)]
    csv: CsvDialect = Field(default_factory=CsvDialect)
    record_id: str | None = None
    identity: Identity = Field(default_factory=Identity)
    attributes: dict[str, Attribute] = Field(default_factory=dict)
    event_date: str | None = None
    retention: str | None = Field(
        default=None, description="How long the controller keeps these records, in plain words."
    )

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not SOURCE_NAME.match(value):
            raise ValueError("must be lower-case letters, digits and underscores ([a-z0-9_]+)")
        return value

    @field_validator("attributes")
    @classmethod
    def _attribute_names(cls, value: dict[str, Attribute]) -> dict[str, Attribute]:
        for name in value:
            if not ATTRIBUTE_NAME.match(name):
                raise ValueError(f"attribute name {name!r} must match [a-z][a-z0-9_]*")
            if name in RESERVED_COLUMNS:
                raise ValueError(f"attribute name {name!r} is reserved")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Source:
        identity_columns = set(self.identity.columns())
        for name, attribute in self.attributes.items():
            if attribute.column in identity_columns:
                raise ValueError(
                    f"attribute {name!r} uses identity column {attribute.column!r}; direct "
                    "identifiers may not be kept in the warehouse"
                )
        if self.event_date is not None:
            event = self.attributes.get(self.event_date)
            if event is None or event.type != "date":
                raise ValueError(
                    f"event_date {self.event_date!r} must name one of this source's date attributes"
                )
        return self


class SourcesFile(_Strict):
    """The whole ``sources.yaml``."""

    version: Literal[1]
    sources: Annotated[list[Source], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_names(self) -> SourcesFile:
        seen: set[str] = set()
        for source in self.sources:
            if source.name in seen:
                raise ValueError(f"source name {source.name!r} appears more than once")
            seen.add(source.name)
        return self

    def source(self, name: str) -> Source:
        """The source called ``name``."""
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources)
        raise KeyError(f"no source called {name!r} (known: {known})")


class SourcesFileError(CandourError, ValueError):
    """``sources.yaml`` is not valid; the message names the file, line and YAML path."""


def load_sources(path: Path) -> SourcesFile:
    """Read and validate a ``sources.yaml``, naming the exact place of any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SourcesFileError(f"{path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise SourcesFileError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    return parse_sources(text, path)


def parse_sources(text: str, path: Path | str = "sources.yaml") -> SourcesFile:
    """Validate ``sources.yaml`` text; ``path`` is used only in error messages."""
    return parse_model(
        text, SourcesFile, str(path), SourcesFileError, top_level_keys=("version", "sources")
    )
