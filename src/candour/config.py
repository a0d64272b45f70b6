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
# A memory size the engine accepts (e.g. 4GB, 512MiB): it is interpolated into a SET statement.
MEMORY_SIZE_PATTERN = r"^[0-9]+(\.[0-9]+)?\s?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$"


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
    warehouse_wait_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long a command waits for another process to finish with the DuckDB "
        "warehouse before it gives up (readers share it; a writer has it alone).",
    )
    # -- the query gate's limits (candour.gate.Limits; docs/analysts.md) ----------------------
    gate_timeout_seconds: float = Field(
        default=120.0, gt=0, description="Wall-clock seconds one gated query may run."
    )
    gate_memory_limit: str = Field(
        default="4GB",
        pattern=MEMORY_SIZE_PATTERN,
        description="Engine memory one gated query may use (DuckDB memory_limit), e.g. 4GB.",
    )
    gate_max_rows: int = Field(
        default=100_000,
        ge=1,
        description="Rows a gated query may return (record-level) or groups (aggregate).",
    )
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
    purposes_file: Path | None = Field(
        default=None,
        description="A purposes.yaml replacing the default purposes (residents' choices).",
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

    # -- web service (candour.web; docs/web.md) ----------------------------------------------
    web_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The public URL of the web service; sign-in redirect URIs are built from it.",
    )
    web_secure_cookies: bool = Field(
        default=True,
        description="Mark cookies Secure and send HSTS; turn off only for plain-http tests/demo.",
    )
    web_session_max_age: int = Field(
        default=3600, ge=60, description="How long a signed-in session lasts, in seconds."
    )
    web_assets_dir: Path | None = Field(
        default=None,
        description="GOV.UK Frontend's dist/govuk folder; node_modules in the checkout when unset.",
    )
    web_signin_rate_limit: int = Field(
        default=10, ge=1, description="Sign-in attempts allowed per client address per minute."
    )
    web_demo_idp: bool = Field(
        default=False,
        description="Use the local demo identity provider; refused unless the home is a demo home.",
    )
    resident_oidc_issuer: str | None = Field(
        default=None,
        description="Residents' OpenID provider (e.g. https://oidc.account.gov.uk/); off if unset.",
    )
    resident_oidc_client_id: str | None = Field(default=None, description="Residents' client id.")
    resident_oidc_client_secret: str | None = Field(
        default=None, description="Client secret, for the client_secret_* auth methods."
    )
    resident_oidc_client_auth: Literal[
        "private_key_jwt", "client_secret_basic", "client_secret_post"
    ] = Field(default="private_key_jwt", description="How Candour authenticates to the provider.")
    resident_oidc_private_key: Path | None = Field(
        default=None, description="PEM private key (RSA) for private_key_jwt client auth."
    )
    resident_oidc_scopes: list[str] = Field(
        default_factory=lambda: ["openid"], description="Scopes asked of the residents' provider."
    )
    resident_oidc_vtr: str | None = Field(
        default='["Cl.Cm.P2"]',
        description="Vectors of trust (GOV.UK One Login); not sent when empty.",
    )
    resident_oidc_claims: list[str] = Field(
        default_factory=lambda: [
            "https://vocab.account.gov.uk/v1/coreIdentityJWT",
            "https://vocab.account.gov.uk/v1/address",
        ],
        description="Userinfo claims requested with the OIDC claims parameter.",
    )
    resident_claims_format: Literal["govuk-one-login", "oidc"] = Field(
        default="govuk-one-login",
        description="Where name, birth date and postcode are read from: One Login's core "
        "identity JWT and address claim, or standard OIDC claims.",
    )
    resident_core_identity_key: Path | None = Field(
        default=None, description="PEM public key that signs One Login's core identity JWT."
    )
    resident_core_identity_issuer: str = Field(
        default="https://identity.account.gov.uk/",
        description="The expected issuer of the core identity JWT.",
    )
    staff_oidc_issuer: str | None = Field(
        default=None, description="Staff's OpenID provider; staff sign-in is off when unset."
    )
    staff_oidc_client_id: str | None = Field(default=None, description="Staff client id.")
    staff_oidc_client_secret: str | None = Field(default=None, description="Staff secret.")
    staff_oidc_client_auth: Literal[
        "private_key_jwt", "client_secret_basic", "client_secret_post"
    ] = Field(default="client_secret_basic", description="How Candour authenticates for staff.")
    staff_oidc_private_key: Path | None = Field(
        default=None, description="PEM private key for staff private_key_jwt client auth."
    )
    staff_oidc_scopes: list[str] = Field(
        default_factory=lambda: ["openid", "profile", "email"],
        description="Scopes asked of the staff provider.",
    )
    staff_roles_claim: str = Field(
        default="roles",
        description="A claim listing a member's roles; it can narrow, never widen, the role "
        "their staff user has in the register.",
    )
    staff_username_claim: str = Field(
        default="preferred_username",
        description="The staff provider's claim holding the register user name (staff_users).",
    )
    sources_file: Path | None = Field(
        default=None,
        description="The sources.yaml that describes each source (title, controller, "
        "retention) to residents; <home>/sources.yaml, or a demo's synth/sources.yaml, if unset.",
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
