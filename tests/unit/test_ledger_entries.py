"""Entry schemas, canonical JSON and per-person commitments."""

from __future__ import annotations

import json
from typing import Any

import pytest

from candour.ledger import entries

H = "0f" * 32
PERSON = entries.person_fields(entries.person_key(b"k" * 32, "P-ABCDEFGHIJKL"))
EXAMPLES: dict[str, dict[str, Any]] = {
    "ingest": {"source": "council-housing", "file_hash": H, "rows": 10, "rejected": 1},
    "link-run": {
        "run_id": "run-1",
        "model_hash": H,
        "index_hash": H,
        "records": 9,
        "persons": 5,
        "merges": 0,
        "splits": 0,
    },
    "choice-change": {**PERSON, "purpose": "research", "choice": "opt-out"},
    "use-submitted": {
        "use_id": "DU-2026-001",
        "purpose": "service-evaluation",
        "application_hash": H,
    },
    "use-approved": {"use_id": "DU-2026-001", "decision_hash": H, "expires": "2027-01-01"},
    "use-rejected": {"use_id": "DU-2026-001", "decision_hash": H},
    "use-revoked": {"use_id": "DU-2026-001", "reason": "withdrawn"},
    "query": {
        "use_id": "DU-2026-001",
        "sql_hash": H,
        "choices_hash": H,
        "cohort_hash": H,
        "output_hash": H,
    },
    "release": {"release_id": "R-1", "use_id": "DU-2026-001", "output_hash": H, "method": "sdc"},
    "subject-access": {**PERSON, "response_hash": H},
    "reidentification": {
        **PERSON,
        "use_id": "DU-2026-002",
        "purpose": "direct-care",
        "approval_hash": H,
    },
    "key-rotation": {"key": "log", "old_key_id": "0a0b0c0d", "new_key_id": "01020304"},
}


def test_every_kind_has_an_example() -> None:
    assert set(EXAMPLES) == set(entries.KINDS) and len(entries.KINDS) == 12


@pytest.mark.parametrize("kind", entries.KINDS)
def test_each_kind_encodes_canonically(kind: str) -> None:
    data = entries.encode(kind, {**EXAMPLES[kind], "time": "2026-01-02T03:04:05Z"})
    obj = json.loads(data)
    assert obj["kind"] == kind and obj["v"] == 1
    assert data == json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    assert entries.decode(data) == obj


@pytest.mark.parametrize("kind", entries.KINDS)
def test_no_field_accepts_personal_free_text(kind: str) -> None:
    with pytest.raises(entries.EntryError):
        entries.encode(kind, {**EXAMPLES[kind], "note": "Jane Smith, 1 High St"})
    for field, value in EXAMPLES[kind].items():
        if isinstance(value, str):
            with pytest.raises(entries.EntryError):
                entries.encode(kind, {**EXAMPLES[kind], field: "Jane Smith"})


def test_decode_rejects_non_canonical_bytes() -> None:
    data = entries.encode("use-revoked", EXAMPLES["use-revoked"])
    with pytest.raises(entries.EntryError):
        entries.decode(data.replace(b",", b", ", 1))


def test_commitments_are_recognisable_only_by_the_person_and_unlinkable() -> None:
    key = entries.person_key(b"home-hmac-key" * 3, "P-ABCDEFGHIJKL")
    other = entries.person_key(b"home-hmac-key" * 3, "P-ZZZZZZZZZZZZ")
    a, b = entries.person_fields(key), entries.person_fields(key)
    assert a["nonce"] != b["nonce"] and a["commitment"] != b["commitment"]
    assert entries.is_about(a, key) and entries.is_about(b, key)
    assert not entries.is_about(a, other)
    assert "P-ABCDEFGHIJKL" not in json.dumps(a)


def test_optional_fields_are_left_out_when_unset() -> None:
    plain = json.loads(entries.encode("choice-change", {**EXAMPLES["choice-change"]}))
    assert "source" not in plain
    narrowed = {**EXAMPLES["choice-change"], "source": "police_incidents"}
    assert json.loads(entries.encode("choice-change", narrowed))["source"] == "police_incidents"
