"""``use.yaml``: the fixed schema of a data-use application, with errors that name the line.

The keys are fixed so others can script against them (docs/register.md is the reference). An
unknown key, a repeated key, a wrong type or a broken rule is reported as
``use.yaml:12: grants.fire_home_safety_visits: ...``.
"""

from __future__ import annotations

import math
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from candour.errors import CandourError
from candour.yamlspec import parse_model

OutputType = Literal["aggregate", "record-level"]
OUTPUTS: tuple[str, ...] = ("aggregate", "record-level")
ALL_COLUMNS: Literal["*"] = "*"

UserName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9._-]{1,63}$")]
SourceName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_]{0,63}$")]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
_COLUMN = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
_ARTICLE_6 = re.compile(r"^6\(1\)\(([a-f])\)")
_ARTICLE_9 = re.compile(r"^9\(2\)\(([a-j])\)")
# DPA 2018 s10: these Art 9(2) conditions are met only with a Schedule 1 Part 1 or 2 condition.
_NEEDS_SCHEDULE_1 = frozenset("bghij")


class SpecError(CandourError):
    """A ``use.yaml`` is not valid; the message names the file, line and key."""


def _columns(value: Any) -> str | tuple[str, ...]:
    """A grant's value: ``"*"`` for every column, or a non-empty list of distinct columns."""
    if value == ALL_COLUMNS:
        return ALL_COLUMNS
    if not isinstance(value, list) or not value:
        raise ValueError('must be "*" (every column) or a non-empty list of column names')
    bad = [c for c in value if not isinstance(c, str) or not _COLUMN.match(c)]
    if bad:
        raise ValueError(f"{bad[0]!r} is not a column name (lower case, digits, _)")
    if len(set(value)) != len(value):
        raise ValueError("lists a column twice")
    return tuple(value)


GrantColumns = Annotated[str | tuple[str, ...], BeforeValidator(_columns)]


class LegalBasis(BaseModel):
    """The lawful bases of a data use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    article_6: ShortText
    """UK GDPR Art 6(1) basis, e.g. ``6(1)(e) public task``."""
    article_9: ShortText | None = None
    """UK GDPR Art 9(2) condition, when special category data is used."""
    dpa_schedule_1: ShortText | None = None
    """DPA 2018 Schedule 1 condition, required with Art 9(2)(b), (g), (h), (i) or (j)."""
    common_law: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)
    ]
    """The basis under the common-law duty of confidentiality."""

    @field_validator("article_6")
    @classmethod
    def _article_6(cls, value: str) -> str:
        if not _ARTICLE_6.match(value):
            raise ValueError('must start with the Art 6 basis, e.g. "6(1)(e) public task"')
        return value

    @field_validator("article_9")
    @classmethod
    def _article_9(cls, value: str | None) -> str | None:
        if value is not None and not _ARTICLE_9.match(value):
            raise ValueError('must start with the Art 9 condition, e.g. "9(2)(h) health care"')
        return value

    @model_validator(mode="after")
    def _schedule_1(self) -> LegalBasis:
        if self.article_9 is None:
            if self.dpa_schedule_1 is not None:
                raise ValueError("dpa_schedule_1 is only for special category data: add article_9")
            return self
        match = _ARTICLE_9.match(self.article_9)
        assert match is not None
        if match.group(1) in _NEEDS_SCHEDULE_1 and self.dpa_schedule_1 is None:
            raise ValueError(
                f"Art 9(2)({match.group(1)}) needs a DPA 2018 Schedule 1 condition "
                '(dpa_schedule_1), e.g. "Part 1 paragraph 2"'
            )
        return self


class Disclosure(BaseModel):
    """Statistical disclosure control for aggregate outputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: Annotated[int, Field(ge=1, le=1000, strict=True)] = 10
    """Counts below this are suppressed."""
    rounding: Annotated[int, Field(ge=1, le=1000, strict=True)] = 5
    """Other counts are rounded to a multiple of this; 1 means no rounding."""


class UseSpec(BaseModel):
    """A data-use application, exactly the keys of ``use.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: ShortText
    summary: LongText
    public_benefit: LongText
    organisation: ShortText
    team: ShortText
    senior_responsible_owner: ShortText
    purpose: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,63}$")]
    legal_basis: LegalBasis
    applicant: UserName
    analysts: Annotated[list[UserName], Field(min_length=1, max_length=100)]
    grants: Annotated[dict[SourceName, GrantColumns], Field(min_length=1, max_length=200)]
    output: OutputType = "aggregate"
    disclosure: Disclosure = Field(default_factory=Disclosure)
    dp_epsilon: Annotated[float, Field(gt=0, le=100)] | None = None
    starts: date
    ends: date

    @field_validator("analysts")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("names an analyst twice")
        return value

    @field_validator("dp_epsilon")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @model_validator(mode="after")
    def _rules(self) -> UseSpec:
        if self.ends < self.starts:
            raise ValueError(f"ends ({self.ends}) is before starts ({self.starts})")
        if self.dp_epsilon is not None and self.output != "aggregate":
            raise ValueError("differential privacy (dp_epsilon) is for aggregate output only")
        return self


KEYS: tuple[str, ...] = tuple(UseSpec.model_fields)


def parse_use(text: str, where: str = "use.yaml") -> UseSpec:
    """Parse and validate a ``use.yaml``'s text; errors name ``where``, the line and key."""
    return parse_model(text, UseSpec, where, SpecError, top_level_keys=KEYS)


def load_use(path: Path) -> UseSpec:
    """Read and validate a ``use.yaml`` file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read it: {exc}") from None
    return parse_use(text, str(path))
