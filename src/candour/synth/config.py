"""Every knob of the synthetic county: error rates, population dynamics and planted effects.

Defaults are documented in docs/synthetic-county.md. A YAML file with any subset of these keys
overrides them (``candour synth --config FILE``); unknown keys are rejected so that a typo cannot
silently leave a rate at its default.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from candour.errors import CandourError

Rate = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveRate = Annotated[float, Field(ge=0.0)]

SOURCE_NAMES = (
    "gp_registrations",
    "ae_attendances",
    "social_care_contacts",
    "fire_home_safety_visits",
    "police_incidents",
    "council_tax_housing",
)


_CLUSTER_SOURCES = ("ae_attendances", "social_care_contacts", "police_incidents")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DuplicateRates(_Strict):
    """Share of records in each source that are entered a second time under a new record id."""

    gp_registrations: Rate = 0.02
    ae_attendances: Rate = 0.01
    social_care_contacts: Rate = 0.03
    fire_home_safety_visits: Rate = 0.01
    police_incidents: Rate = 0.02
    council_tax_housing: Rate = 0.01


def _default_profiles() -> list[dict[str, float]]:
    # Keys are "source:category:role" (role = adult or child); values are events per household
    # per year. Cluster 0 is the large low-need group; the others each have one signature.
    return [
        {
            "social_care_contacts:early_help:child": 0.08,
            "ae_attendances:injury:child": 0.10,
        },
        {
            "police_incidents:domestic_abuse:adult": 1.2,
            "social_care_contacts:adult_mental_health:adult": 0.8,
            "ae_attendances:self_harm:adult": 0.4,
            "ae_attendances:mental_health:adult": 0.4,
        },
        {
            "social_care_contacts:child_neglect:child": 1.2,
            "police_incidents:drugs:adult": 0.8,
            "ae_attendances:alcohol_drugs:adult": 0.5,
            "police_incidents:missing_person:child": 0.4,
        },
        {
            "social_care_contacts:child_disability:child": 1.0,
            "social_care_contacts:carer_support:adult": 0.6,
            "ae_attendances:respiratory:child": 0.8,
        },
    ]


class SynthConfig(_Strict):
    """Rates and effect sizes for one synthetic county. All rates are probabilities in [0, 1]."""

    # --- the observation window -------------------------------------------------------------
    window_start: date = date(2023, 1, 1)
    """First day of the 3-year window that every event falls in."""
    window_years: Annotated[int, Field(ge=2, le=5)] = 3

    # --- population dynamics ----------------------------------------------------------------
    move_share: Rate = 0.2
    """Share of households that move once, within the county, during the window."""
    surname_change_share: Rate = 0.02
    """Share of adults who change surname (e.g. on marriage) during the window."""
    birth_share: Rate = 0.15
    """Share of households with children and a mother aged 20-42 that have a baby in the window."""
    mortality_scale: PositiveRate = 1.0
    """Multiplier on the age-specific (Gompertz) death rates."""

    # --- the error model (per record unless stated) ------------------------------------------
    typo_rate: Rate = 0.02
    """Per name field (given, family) of each record: one character substituted, dropped,
    doubled or transposed."""
    nickname_rate: Rate = 0.10
    """Among records of people whose given name has a nickname: the nickname is written."""
    dob_swap_rate: Rate = 0.02
    """Among records whose date of birth has day <= 12 and day != month: day and month swapped."""
    missing_field_rate: Rate = 0.02
    """Per record: one of date of birth, postcode or sex (those the source has) left blank."""
    old_address_rate: Rate = 0.25
    """Among records dated after the person's move: the previous address is written."""
    duplicates: DuplicateRates = Field(default_factory=DuplicateRates)
    ae_nhs_number_missing_rate: Rate = 0.05
    """A&E attendances where the NHS number was not traced (blank)."""
    social_care_nhs_number_rate: Rate = 0.4
    """Social care contacts that carry an NHS number at all (a quirk, not an error)."""

    # --- planted effect 1: home safety visits and falls ---------------------------------------
    home_safety_visit_falls_effect: Annotated[float, Field(ge=-1.0, le=5.0)] = -0.3
    """Relative change in the falls A&E rate in the 12 months after a visit."""
    visit_share: Rate = 0.15
    """Share of people aged 65+ at the window start who get a Safe and Well visit."""
    visit_targeting: Annotated[float, Field(ge=0.0, le=3.0)] = 1.0
    """Exponent on frailty in the chance of a visit: > 0 sends visits to higher-risk people."""
    falls_base_rate: PositiveRate = 0.08
    """Falls attendances per year at age 65 and average frailty."""
    falls_age_slope: PositiveRate = 0.05
    """Log-rate increase in falls per year of age over 65."""
    frailty_shape: Annotated[float, Field(gt=0.0)] = 2.0
    """Shape of the gamma-distributed (mean 1) frailty that multiplies the falls rate."""

    # --- planted effect 2: family need clusters -----------------------------------------------
    family_cluster_shares: list[Rate] = Field(default_factory=lambda: [0.55, 0.15, 0.15, 0.15])
    family_cluster_profiles: list[dict[str, PositiveRate]] = Field(
        default_factory=_default_profiles
    )
    """Per cluster: "source:category:role" -> events per household per year."""

    # --- planted effect 3: unlicensed HMOs ----------------------------------------------------
    unlicensed_hmo_share: Rate = 0.005
    """Share of properties that are unlicensed houses in multiple occupation."""
    licensed_hmo_share: Rate = 0.005
    """Share of properties that are licensed HMOs (a decoy: crowded, but licensed)."""
    sharer_share: Rate = 0.03
    """Share of households that are 2-3 unrelated sharers (another decoy)."""
    hmo_single_person_discount_rate: Rate = 0.6
    """Unlicensed HMOs whose council tax account claims the single person discount."""
    hmo_complaints_per_year: PositiveRate = 2.0
    """Housing complaints (noise, overcrowding, waste) per year at an unlicensed HMO."""
    hmo_asb_incidents_per_year: PositiveRate = 1.0
    """Police noise/ASB incidents per year involving tenants of an unlicensed HMO."""
    hmo_mean_tenancy_months: Annotated[float, Field(gt=0.5)] = 9.0
    licensed_hmo_licence_missing_rate: Rate = 0.25
    """Licensed HMOs whose licence number is missing from the housing extract."""

    @model_validator(mode="after")
    def _clusters_consistent(self) -> SynthConfig:
        if not self.family_cluster_shares:
            raise ValueError("family_cluster_shares must name at least one cluster")
        if abs(sum(self.family_cluster_shares) - 1.0) > 1e-6:
            raise ValueError("family_cluster_shares must sum to 1")
        if len(self.family_cluster_profiles) != len(self.family_cluster_shares):
            raise ValueError("family_cluster_profiles needs one profile per cluster share")
        for profile in self.family_cluster_profiles:
            for key in profile:
                parts = key.split(":")
                if (
                    len(parts) != 3
                    or parts[0] not in _CLUSTER_SOURCES
                    or parts[2] not in ("adult", "child")
                ):
                    raise ValueError(
                        f"cluster profile key {key!r} must be 'source:category:adult|child' with "
                        "source ae_attendances, social_care_contacts or police_incidents"
                    )
        return self

    @property
    def clusters(self) -> int:
        """The number of latent family need clusters."""
        return len(self.family_cluster_shares)


def load_config(path: Path) -> SynthConfig:
    """Read a YAML file of overrides; any problem is a one-line :class:`CandourError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CandourError(f"cannot read synth config {path}: {exc}") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise CandourError(f"{path}: not valid YAML") from exc
    if not isinstance(data, dict):
        raise CandourError(f"{path}: expected a mapping of settings")
    try:
        return SynthConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown setting"
        raise CandourError(f"{path}: {where}: {message}") from exc
