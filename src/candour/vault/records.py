"""What the vault holds about one record: standard identity fields, standardised and as received."""

from __future__ import annotations

from dataclasses import dataclass, field

# The standard identity fields, in storage order. Their position is the field's id inside a
# sealed record, so this order is part of the on-disk format: append, never reorder.
FIELDS: tuple[str, ...] = (
    "given_name",
    "middle_name",
    "family_name",
    "date_of_birth",
    "sex",
    "postcode",
    "address",
    "nhs_number",
)
IDENTIFIERS = "identifiers"

# Quality flags, stored beside the ciphertext (they say whether a value parsed, not what it is).
DOB_VALID = 1
POSTCODE_VALID = 2
NHS_NUMBER_VALID = 4

# Fields whose standardised value is indexed (keyed HMAC) for exact look-ups, besides every
# entry of ``identifiers`` (looked up as ``identifiers.<name>``).
INDEXED_FIELDS = ("nhs_number",)


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """One record's decrypted identity.

    The named fields hold *standardised* values (see docs/sources.md): names folded for case,
    accents and punctuation; ``date_of_birth`` as ``YYYY-MM-DD`` when it parsed; postcodes as
    ``AA9A 9AA``; NHS numbers as ten digits. A value that did not parse is kept as cleaned text,
    and its ``*_valid`` flag is False. ``raw`` maps each field to the value as received, when it
    differs from the standardised one (identifiers as ``identifiers.<name>``).
    """

    record_key: str
    source: str
    batch_id: int
    given_name: str | None = None
    middle_name: str | None = None
    family_name: str | None = None
    date_of_birth: str | None = None
    sex: str | None = None
    postcode: str | None = None
    address: str | None = None
    nhs_number: str | None = None
    identifiers: dict[str, str] = field(default_factory=dict)
    date_of_birth_valid: bool = False
    postcode_valid: bool = False
    nhs_number_valid: bool = False
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def record_id(self) -> str:
        """The record's id within its source (``record_key`` without ``<source>:``)."""
        return self.record_key.split(":", 1)[1]

    def values(self) -> dict[str, str]:
        """Every standardised value held, by field (identifiers as ``identifiers.<name>``)."""
        found = {name: getattr(self, name) for name in FIELDS if getattr(self, name) is not None}
        found.update({f"{IDENTIFIERS}.{k}": v for k, v in self.identifiers.items()})
        return found
