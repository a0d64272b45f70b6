"""Purposes: what data may be used for, and what residents may say about each.

The default set ships as ``purposes.yaml`` next to this module (the design's table, aligned to
the W3C Data Privacy Vocabulary); ``CANDOUR_PURPOSES_FILE`` replaces it. A purpose id must be one
the transparency log can record, because every choice change is logged with its purpose.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from candour.config import Settings
from candour.errors import CandourError
from candour.ledger.entries import Purpose as LedgerPurpose

DEFAULT_FILE = Path(__file__).with_name("purposes.yaml")
DPV_NAMESPACE = "https://w3id.org/dpv#"
LOGGABLE_PURPOSES: tuple[str, ...] = get_args(LedgerPurpose)

OutputType = Literal["aggregate", "record-level"]


class PurposeError(CandourError):
    """A purposes file is invalid, or a purpose is not known or not allowed as asked."""


class Purpose(BaseModel):
    """One purpose and the rules residents' choices follow for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")]
    title: Annotated[str, Field(min_length=1, max_length=100)]
    dpv: Annotated[str, Field(pattern=r"^[A-Z][A-Za-z]{1,99}$")]
    """The DPV purpose concept's local name (``dpv:<name>``)."""
    description: Annotated[str, Field(min_length=1, max_length=500)]
    opt_out: bool
    """Residents may opt out of this purpose."""
    opt_out_by_law: bool
    """Opting out is a legal right for this purpose, not only local policy."""
    record_level: bool = False
    """A data use for this purpose may ask for record-level output (inside the environment)."""
    why_no_opt_out: str | None = None
    """Shown to a resident who asks to opt out of a purpose that does not allow it."""

    @model_validator(mode="after")
    def _consistent(self) -> Purpose:
        if self.opt_out_by_law and not self.opt_out:
            raise ValueError("opt_out_by_law needs opt_out: true")
        if not self.opt_out and not self.why_no_opt_out:
            raise ValueError("a purpose without opt-out must say why (why_no_opt_out)")
        return self

    @property
    def dpv_iri(self) -> str:
        """The DPV concept's IRI."""
        return DPV_NAMESPACE + self.dpv

    def allows_output(self, output: OutputType) -> bool:
        """Whether a data use for this purpose may produce ``output``."""
        return output == "aggregate" or self.record_level


class PurposeSet(BaseModel):
    """Every configured purpose, by id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    purposes: Annotated[list[Purpose], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_and_loggable(self) -> PurposeSet:
        ids = [p.id for p in self.purposes]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"purpose ids must be unique; repeated: {', '.join(duplicates)}")
        unloggable = [i for i in ids if i not in LOGGABLE_PURPOSES]
        if unloggable:
            raise ValueError(
                f"purpose {unloggable[0]!r} cannot be recorded in the transparency log, which "
                f"knows {', '.join(LOGGABLE_PURPOSES)}; the log's schema must be extended first"
            )
        return self

    def ids(self) -> list[str]:
        """The purpose ids, in file order."""
        return [p.id for p in self.purposes]

    def get(self, purpose_id: str) -> Purpose:
        """The purpose with this id, or a :class:`PurposeError` naming the known ones."""
        for purpose in self.purposes:
            if purpose.id == purpose_id:
                return purpose
        raise PurposeError(f"unknown purpose {purpose_id!r}; known: {', '.join(self.ids())}")

    def check_use(self, purpose_id: str, output: str) -> None:
        """Raise a :class:`PurposeError` unless a data use may have this purpose and output.

        The register calls this (it cannot import this package), so the rule that record-level
        output is only for purposes that allow it lives in one place.
        """
        purpose = self.get(purpose_id)
        if output not in ("aggregate", "record-level"):
            raise PurposeError(f"output must be aggregate or record-level, not {output!r}")
        if not purpose.allows_output(output):  # type: ignore[arg-type]
            allowed = ", ".join(p.id for p in self.purposes if p.record_level) or "none"
            raise PurposeError(
                f"record-level output is not allowed for purpose {purpose_id!r}; use aggregate "
                f"output (record-level is allowed for: {allowed})"
            )


def parse_purposes(text: str, where: str) -> PurposeSet:
    """Parse and validate a purposes file's text; ``where`` names it in errors."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PurposeError(f"{where}: not valid YAML: {exc}") from None
    try:
        return PurposeSet.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise PurposeError(f"{where}: {path}: {first['msg']}") from None


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int) -> PurposeSet:
    return parse_purposes(Path(path).read_text(encoding="utf-8"), path)


def load_purposes(settings: Settings | None = None) -> PurposeSet:
    """The configured purposes: ``settings.purposes_file``, or the default set.

    Cached per file and modification time, so the gate can call it on every query.
    """
    path = (settings.purposes_file if settings else None) or DEFAULT_FILE
    try:
        stat = path.stat()
    except OSError as exc:
        raise PurposeError(f"cannot read the purposes file {path}: {exc.strerror}") from None
    return _load_cached(str(path), stat.st_mtime_ns, stat.st_size)
