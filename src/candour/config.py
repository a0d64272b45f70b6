"""Settings for Candour, read from ``CANDOUR_*`` environment variables.

Every command takes ``--home``; everything else is configured here, so that an operator can see
in one place what can be set, and so that a typo in a variable is caught rather than ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = Path("candour-data")


class Settings(BaseSettings):
    """Candour's configuration. Each field can be set as ``CANDOUR_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="CANDOUR_", extra="forbid", frozen=True)

    home: Path = Field(
        default=DEFAULT_HOME, description="The data home: store, vault, warehouse, ledger, keys."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the operational store; SQLite in the home when unset.",
    )
    engine: Literal["duckdb", "spark"] = Field(
        default="duckdb", description="The analytic engine behind the warehouse."
    )
    spark_master: str = Field(default="local[2]", description="Spark master URL for the engine.")
    log_origin: str = Field(
        default="candour.example.gov.uk/log",
        description="The transparency log's origin line and signing-key name.",
    )
    witness_name: str = Field(
        default="witness.candour.example.gov.uk",
        description="The key name of this home's own witness (tlog-witness).",
    )
    vault_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the identity vault; SQLite vault.db in the home when unset.",
    )
    ingest_max_bad_share: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="An ingest aborts when more than this share of a file's rows is quarantined.",
    )
    ingest_max_field_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="The longest line (and so field) an extract may have, in bytes.",
    )
    log_witnesses: list[str] = Field(
        default_factory=list,
        description="Witnesses the log asks to cosign each checkpoint, each '<vkey> <url>' "
        "(JSON list in the environment).",
    )
    witness_logs: list[str] = Field(
        default_factory=list,
        description="Verifier keys of other logs this home's witness cosigns, besides its own "
        "log (JSON list in the environment).",
    )

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        # Resolve once so every component agrees on the same place whatever the working dir.
        return value.expanduser().resolve()

    @field_validator("database_url", "vault_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    def with_home(self, home: Path | None) -> Settings:
        """Return these settings with the home replaced, when ``home`` is given."""
        if home is None:
            return self
        return self.model_copy(update={"home": home.expanduser().resolve()})

    @property
    def store_url(self) -> str:
        """The operational store's URL: ``database_url`` or SQLite inside the home."""
        return self.database_url or f"sqlite:///{self.home / 'candour.db'}"

    @property
    def vault_store_url(self) -> str:
        """The identity vault's URL: ``vault_url`` or SQLite ``vault.db`` inside the home."""
        return self.vault_url or f"sqlite:///{self.home / 'vault.db'}"
