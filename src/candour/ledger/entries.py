"""Log entries: one versioned schema per kind, serialised as RFC 8785 canonical JSON.

Every entry is a flat JSON object ``{"kind", "v", "time", ...fields}``. The schemas admit no
free text: only opaque identifiers, hashes, counts and small enumerations, so a public entry
cannot carry a name, an address or a note someone typed (invariant 5). An entry about one
person carries a commitment ``HMAC-SHA256(person_key, nonce)`` with a fresh random nonce per
entry: the person (who can derive ``person_key``) can recognise it; nobody else can link two
such entries, because each uses a different nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from candour.errors import CandourError

SCHEMA_VERSION = 1

Hex256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256, lowercase hex")]
Nonce = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", description="16 random bytes, hex")]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
UseId = Annotated[str, Field(pattern=r"^DU-[0-9]{4}-[0-9]{3,6}$")]
OpaqueId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$")]
KeyId = Annotated[str, Field(pattern=r"^[0-9a-f]{8,64}$")]
Count = Annotated[int, Field(ge=0, le=(1 << 53) - 1)]
Timestamp = Annotated[
    str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
]
Purpose = Literal[
    "direct-care",
    "service-planning",
    "service-evaluation",
    "research",
    "official-statistics",
    "fraud-prevention",
]


class EntryError(CandourError):
    """An entry does not match its kind's schema."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    v: Literal[1] = 1
    time: Timestamp


class _PersonEntry(_Entry):
    nonce: Nonce
    commitment: Hex256


class Ingest(_Entry):
    """A source extract was loaded."""

    kind: Literal["ingest"] = "ingest"
    source: Slug
    file_hash: Hex256
    rows: Count
    rejected: Count
    batch_id: Count | None = None


class LinkRun(_Entry):
    """A linkage run produced a new person index."""

    kind: Literal["link-run"] = "link-run"
    run_id: OpaqueId
    model_hash: Hex256
    index_hash: Hex256
    records: Count
    persons: Count
    merges: Count
    splits: Count


class ChoiceChange(_PersonEntry):
    """A resident changed a choice about one purpose."""

    kind: Literal["choice-change"] = "choice-change"
    purpose: Purpose
    choice: Literal["opt-in", "opt-out"]
    # Set when the choice is narrowed to one source ("not my police records for research").
    source: Slug | None = None


class UseSubmitted(_Entry):
    """A data-use application was submitted."""

    kind: Literal["use-submitted"] = "use-submitted"
    use_id: UseId
    purpose: Purpose
    application_hash: Hex256


class UseApproved(_Entry):
    """A data use was approved."""

    kind: Literal["use-approved"] = "use-approved"
    use_id: UseId
    decision_hash: Hex256
    expires: Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")] | None = None


class UseRejected(_Entry):
    """An IG reviewer turned an application down (the register keeps the reasons)."""

    kind: Literal["use-rejected"] = "use-rejected"
    use_id: UseId
    decision_hash: Hex256


class UseRevoked(_Entry):
    """A data use was revoked."""

    kind: Literal["use-revoked"] = "use-revoked"
    use_id: UseId
    reason: Literal["expired", "withdrawn", "breach", "complaint", "other"]


class Query(_Entry):
    """A query ran under a data use: what ran, which choices it honoured, whom and what it gave."""

    kind: Literal["query"] = "query"
    use_id: UseId
    sql_hash: Hex256
    choices_hash: Hex256
    cohort_hash: Hex256
    output_hash: Hex256


class Release(_Entry):
    """An output left the environment after output checking."""

    kind: Literal["release"] = "release"
    release_id: OpaqueId
    use_id: UseId
    output_hash: Hex256
    method: Literal["sdc", "dp"]


class SubjectAccess(_PersonEntry):
    """A subject access request was answered."""

    kind: Literal["subject-access"] = "subject-access"
    response_hash: Hex256


class Reidentification(_PersonEntry):
    """A person was re-identified (e.g. for direct care or fraud), under a data use."""

    kind: Literal["reidentification"] = "reidentification"
    use_id: UseId
    purpose: Purpose
    approval_hash: Hex256


class KeyRotation(_Entry):
    """A key was replaced."""

    kind: Literal["key-rotation"] = "key-rotation"
    key: Literal["log", "witness", "vault", "hmac", "web-session"]
    old_key_id: KeyId
    new_key_id: KeyId


SCHEMAS: dict[str, type[_Entry]] = {
    "ingest": Ingest,
    "link-run": LinkRun,
    "choice-change": ChoiceChange,
    "use-submitted": UseSubmitted,
    "use-approved": UseApproved,
    "use-rejected": UseRejected,
    "use-revoked": UseRevoked,
    "query": Query,
    "release": Release,
    "subject-access": SubjectAccess,
    "reidentification": Reidentification,
    "key-rotation": KeyRotation,
}
KINDS = tuple(SCHEMAS)


def now() -> str:
    """The current UTC time, to the second, as entries carry it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def validate(kind: str, payload: dict[str, Any]) -> _Entry:
    """Check ``payload`` against ``kind``'s schema; ``time`` defaults to now."""
    schema = SCHEMAS.get(kind)
    if schema is None:
        raise EntryError(f"unknown entry kind {kind!r}; expected one of {', '.join(KINDS)}")
    data = dict(payload)
    if data.get("kind", kind) != kind:
        raise EntryError(f"payload kind {data['kind']!r} does not match {kind!r}")
    data["kind"] = kind
    data.setdefault("time", now())
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or kind
        raise EntryError(f"invalid {kind} entry: {where}: {first['msg']}") from None


def canonical(obj: Any) -> bytes:
    """RFC 8785 canonical JSON bytes."""
    return bytes(rfc8785.dumps(obj))


def encode(kind: str, payload: dict[str, Any]) -> bytes:
    """Validate and serialise an entry to the exact bytes that become a leaf."""
    model = validate(kind, payload)
    return canonical(model.model_dump(mode="json", exclude_none=True))


def decode(data: bytes) -> dict[str, Any]:
    """Parse an entry's bytes, checking that they are canonical and match their schema."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EntryError("entry is not JSON") from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
        raise EntryError("entry is not an object with a kind")
    if canonical(obj) != data:
        raise EntryError("entry is not RFC 8785 canonical JSON")
    payload = {k: v for k, v in obj.items() if k != "kind"}
    validate(obj["kind"], payload)
    return obj


_PERSON_KEY_LABEL = b"candour/ledger/person-key/v1\n"


def person_key(hmac_key: bytes, person_id: str) -> bytes:
    """The per-person key: ``HMAC-SHA256(hmac_key, label || person_id)``.

    Derived, never stored, so the portal can recompute it for a resident who has proved who
    they are, and nobody without the home's HMAC key can.
    """
    return hmac.new(hmac_key, _PERSON_KEY_LABEL + person_id.encode(), hashlib.sha256).digest()


def commitment(key: bytes, nonce: str) -> str:
    """``HMAC-SHA256(person_key, nonce)`` in hex, the value a per-person entry carries."""
    return hmac.new(key, bytes.fromhex(nonce), hashlib.sha256).hexdigest()


def person_fields(key: bytes, nonce: str | None = None) -> dict[str, str]:
    """The ``nonce`` and ``commitment`` fields for an entry about the person with ``key``."""
    nonce = nonce or secrets.token_hex(16)
    return {"nonce": nonce, "commitment": commitment(key, nonce)}


def is_about(entry: dict[str, Any], key: bytes) -> bool:
    """True when a per-person entry's commitment was made with this person's key."""
    nonce, value = entry.get("nonce"), entry.get("commitment")
    if not isinstance(nonce, str) or not isinstance(value, str):
        return False
    return hmac.compare_digest(commitment(key, nonce), value)
