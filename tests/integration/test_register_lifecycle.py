"""The data-use register: lifecycle, who may do what, logging, authorisation, export."""

import csv
import io
import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select
from tests.unit.test_register_spec import EXAMPLE

from candour import ledger, register
from candour.choices import load_purposes
from candour.config import Settings
from candour.errors import CandourError
from candour.initialise import initialise_home
from candour.register import UseError, UserError
from candour.store import transaction
from candour.store.register import UseTransition

TODAY = date(2026, 6, 1)


def _setup(settings: Settings) -> None:
    initialise_home(settings)
    for name, role in (
        ("ana", "analyst"),
        ("bob", "analyst"),
        ("ian", "ig"),
        ("ida", "ig"),
        ("cat", "checker"),
        ("adam", "admin"),
    ):
        register.add_user(name, role, settings=settings)


def _apply(settings: Settings, text: str = EXAMPLE) -> str:
    spec = register.parse_use(text)
    view = register.apply_use(
        spec, purposes=load_purposes(settings), settings=settings, today=TODAY
    )
    return view.use_id


def _approved(settings: Settings) -> str:
    use_id = _apply(settings)
    register.submit(use_id, "ana", settings=settings, today=TODAY)
    register.approve(
        use_id, "ian", purposes=load_purposes(settings), settings=settings, today=TODAY
    )
    return use_id


def _entry(settings: Settings, index: int | None) -> dict:
    assert index is not None
    return json.loads(ledger.entry(index, settings=settings))


def test_the_full_lifecycle_is_logged(store_settings: Settings):
    _setup(store_settings)
    use_id = _apply(store_settings)
    assert use_id == "DU-2026-001"
    assert _apply(store_settings) == "DU-2026-002"
    draft = register.get_use(use_id, settings=store_settings, today=TODAY)
    assert draft.status == "draft" and draft.transitions[0].ledger_index is None

    submitted = register.submit(use_id, "ana", settings=store_settings, today=TODAY)
    entry = _entry(store_settings, submitted.transitions[-1].ledger_index)
    assert entry["kind"] == "use-submitted"
    assert (entry["use_id"], entry["purpose"]) == (use_id, "service-evaluation")
    assert entry["application_hash"] == register.application_hash(register.parse_use(EXAMPLE))

    approved = register.approve(
        use_id,
        "ian",
        purposes=load_purposes(store_settings),
        settings=store_settings,
        today=TODAY,
    )
    assert approved.status == "active"  # 2026-06-01 is within 2026-01-01..2027-12-31
    entry = _entry(store_settings, approved.transitions[-1].ledger_index)
    assert entry["kind"] == "use-approved"
    assert entry["expires"] == "2027-12-31" and entry["decision_hash"] == approved.decision_hash

    revoked = register.revoke(use_id, "adam", reason="breach", settings=store_settings, today=TODAY)
    assert revoked.status == "revoked"
    entry = _entry(store_settings, revoked.transitions[-1].ledger_index)
    assert (entry["kind"], entry["reason"]) == ("use-revoked", "breach")
    assert [t.to_status for t in revoked.transitions] == [
        "draft",
        "submitted",
        "approved",
        "revoked",
    ]


def test_active_and_expired_are_derived_from_the_dates(store_settings: Settings):
    _setup(store_settings)
    use_id = _approved(store_settings)
    status = lambda day: register.get_use(use_id, settings=store_settings, today=day).status  # noqa: E731
    assert status(date(2025, 12, 31)) == "approved"
    assert status(date(2026, 1, 1)) == "active"
    assert status(date(2027, 12, 31)) == "active"
    assert status(date(2028, 1, 1)) == "expired"
    with pytest.raises(UseError, match="only an approved or active use can be revoked"):
        register.revoke(use_id, "ian", settings=store_settings, today=date(2028, 1, 1))


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ("ana", "only an information-governance \\(ig\\) user can approve"),
        ("cat", "has the role checker"),
        ("adam", "has the role admin"),
        ("nobody", "no staff user called 'nobody'"),
    ],
)
def test_only_an_ig_user_may_approve(store_settings: Settings, user: str, message: str):
    _setup(store_settings)
    use_id = _apply(store_settings)
    register.submit(use_id, "ana", settings=store_settings, today=TODAY)
    with pytest.raises(CandourError, match=message):
        register.approve(
            use_id,
            user,
            purposes=load_purposes(store_settings),
            settings=store_settings,
            today=TODAY,
        )
    assert register.get_use(use_id, settings=store_settings).stored_status == "submitted"


def test_an_ig_applicant_cannot_approve_their_own_use(store_settings: Settings):
    _setup(store_settings)
    use_id = _apply(store_settings, EXAMPLE.replace("applicant: ana", "applicant: ida"))
    register.submit(use_id, "ida", settings=store_settings, today=TODAY)
    with pytest.raises(UseError, match="ida applied for .* and cannot also approve it"):
        register.approve(
            use_id,
            "ida",
            purposes=load_purposes(store_settings),
            settings=store_settings,
            today=TODAY,
        )
    with pytest.raises(UseError, match="cannot also reject"):
        register.reject(use_id, "ida", settings=store_settings, today=TODAY)
    rejected = register.reject(use_id, "ian", settings=store_settings, today=TODAY)
    index = rejected.transitions[-1].ledger_index
    assert rejected.status == "rejected" and index is not None
    entry = json.loads(ledger.entry(index, settings=store_settings))
    assert entry["kind"] == "use-rejected" and entry["use_id"] == use_id


def test_transitions_only_from_the_right_state(store_settings: Settings):
    _setup(store_settings)
    use_id = _apply(store_settings)
    purposes = load_purposes(store_settings)
    with pytest.raises(UseError, match="is draft; only a submitted use can be approved"):
        register.approve(use_id, "ian", purposes=purposes, settings=store_settings, today=TODAY)
    with pytest.raises(UseError, match="only the applicant \\(ana\\) can submit"):
        register.submit(use_id, "bob", settings=store_settings, today=TODAY)
    register.submit(use_id, "ana", settings=store_settings, today=TODAY)
    with pytest.raises(UseError, match="is submitted; only a draft use can be submitted"):
        register.submit(use_id, "ana", settings=store_settings, today=TODAY)
    with pytest.raises(UseError, match="no data use DU-2026-999"):
        register.submit("DU-2026-999", "ana", settings=store_settings)
    with pytest.raises(UseError, match="bob cannot revoke"):
        register.approve(use_id, "ian", purposes=purposes, settings=store_settings, today=TODAY)
        register.revoke(use_id, "bob", settings=store_settings, today=TODAY)
    # The applicant may withdraw their own use, but not claim a breach.
    with pytest.raises(UseError, match="ana cannot revoke"):
        register.revoke(use_id, "ana", reason="breach", settings=store_settings, today=TODAY)
    assert register.revoke(use_id, "ana", settings=store_settings, today=TODAY).status == "revoked"


def test_application_checks_people_and_purpose(store_settings: Settings):
    _setup(store_settings)
    with pytest.raises(UseError, match="ian is named as an analyst but has the role ig"):
        _apply(store_settings, EXAMPLE.replace("analysts: [ana]", "analysts: [ana, ian]"))
    with pytest.raises(UserError, match="no staff user called 'zed'"):
        _apply(store_settings, EXAMPLE.replace("applicant: ana", "applicant: zed"))
    with pytest.raises(CandourError, match="record-level output is not allowed for purpose"):
        _apply(store_settings, EXAMPLE.replace("output: aggregate", "output: record-level"))
    with pytest.raises(CandourError, match="unknown purpose 'marketing'"):
        _apply(store_settings, EXAMPLE.replace("service-evaluation ", "marketing "))
    research = EXAMPLE.replace("service-evaluation ", "research ").replace(
        "output: aggregate", "output: record-level"
    )
    assert _apply(store_settings, research) == "DU-2026-001"  # nothing before it was stored


def test_a_failure_to_log_an_approval_leaves_it_submitted(store_settings: Settings, monkeypatch):
    _setup(store_settings)
    use_id = _apply(store_settings)
    register.submit(use_id, "ana", settings=store_settings, today=TODAY)

    def broken(*args, **kwargs):
        raise ledger.LogError("disk full")

    monkeypatch.setattr(ledger, "record", broken)
    with pytest.raises(ledger.LogError):
        register.approve(
            use_id,
            "ian",
            purposes=load_purposes(store_settings),
            settings=store_settings,
            today=TODAY,
        )
    monkeypatch.undo()
    view = register.get_use(use_id, settings=store_settings, today=TODAY)
    assert view.stored_status == "submitted" and view.decision_hash is None
    with transaction(store_settings) as session:
        assert session.scalar(select(func.count()).select_from(UseTransition)) == 2


def test_authorise_returns_what_the_gate_needs(store_settings: Settings):
    _setup(store_settings)
    use_id = _approved(store_settings)
    at = datetime(2026, 6, 1, 12, tzinfo=UTC)
    active = register.authorise(use_id, "ana", at=at, settings=store_settings)
    assert active.purpose == "service-evaluation" and active.output == "aggregate"
    assert active.columns("ae_attendances") == "*"
    assert active.columns("fire_home_safety_visits") == ("visit_date",)
    assert active.columns("police_incidents") is None
    assert (active.threshold, active.rounding, active.dp_epsilon) == (10, 5, None)


@pytest.mark.parametrize(
    ("user", "at", "message"),
    [
        ("bob", datetime(2026, 6, 1, tzinfo=UTC), "bob is not named as an analyst"),
        ("nobody", datetime(2026, 6, 1, tzinfo=UTC), "no staff user"),
        ("ana", datetime(2025, 12, 31, 12, tzinfo=UTC), "approved but starts on 2026-01-01"),
        # Dates are UK dates; in winter London is on UTC, so this is 2028-01-01 there.
        ("ana", datetime(2028, 1, 1, 0, 30, tzinfo=UTC), "expired on 2027-12-31"),
    ],
)
def test_authorise_refuses_clearly(store_settings: Settings, user: str, at: datetime, message: str):
    _setup(store_settings)
    use_id = _approved(store_settings)
    with pytest.raises(CandourError, match=message):
        register.authorise(use_id, user, at=at, settings=store_settings)


def test_authorise_refuses_drafts_and_revoked_uses(store_settings: Settings):
    _setup(store_settings)
    draft = _apply(store_settings)
    at = datetime(2026, 6, 1, tzinfo=UTC)
    with pytest.raises(UseError, match="is draft, not approved"):
        register.authorise(draft, "ana", at=at, settings=store_settings)
    use_id = _approved(store_settings)
    register.revoke(use_id, "ian", reason="complaint", settings=store_settings, today=TODAY)
    with pytest.raises(UseError, match="was revoked \\(complaint\\)"):
        register.authorise(use_id, "ana", at=at, settings=store_settings)
    with pytest.raises(UseError, match="no data use DU-1999-001"):
        register.authorise("DU-1999-001", "ana", at=at, settings=store_settings)


def test_export_is_public_and_aligned(store_settings: Settings):
    _setup(store_settings)
    _apply(store_settings)  # a draft: private, not exported
    use_id = _approved(store_settings)
    records = register.export_records(
        settings=store_settings, opt_outs_apply={"service-evaluation": True}, today=TODAY
    )
    assert [r["use_id"] for r in records] == [use_id]
    record = records[0]
    assert record["datasets"] == ["ae_attendances", "fire_home_safety_visits"]
    assert record["status"] == "active" and record["national_data_opt_out_applied"] is True
    assert record["analyst_count"] == 1 and '"ana"' not in json.dumps(record)
    assert len(record["ledger_entries"]) == 2

    rows = list(csv.DictReader(io.StringIO(register.to_csv(records))))
    assert list(rows[0]) == list(register.FIELD_NAMES)
    assert rows[0]["grants"] == "ae_attendances: *; fire_home_safety_visits: visit_date"
    document = json.loads(register.to_json(records))
    mapping = {f["name"]: f for f in document["fields"]}
    assert mapping["summary"]["hdruk_data_use_register"] == "Lay Summary"
    assert mapping["senior_responsible_owner"]["atrs"] == "Senior responsible owner"
    assert document["uses"] == records


def test_csv_export_neutralises_formulas(store_settings: Settings):
    _setup(store_settings)
    use_id = _apply(store_settings, EXAMPLE.replace("title: Falls", "title: =HYPERLINK(1)Falls"))
    register.submit(use_id, "ana", settings=store_settings, today=TODAY)
    text = register.to_csv(register.export_records(settings=store_settings, today=TODAY))
    assert "'=HYPERLINK" in text


def test_users_are_unique_and_roles_fixed(store_settings: Settings):
    _setup(store_settings)
    with pytest.raises(UserError, match="user ana already exists \\(role analyst\\)"):
        register.add_user("ana", "ig", settings=store_settings)
    with pytest.raises(UserError, match="role must be one of analyst, ig, checker, admin"):
        register.add_user("zoe", "boss", settings=store_settings)
    with pytest.raises(UserError, match="is not a user name"):
        register.add_user("Zoe Smith", "analyst", settings=store_settings)
    assert [u.name for u in register.list_users(settings=store_settings)] == [
        "adam",
        "ana",
        "bob",
        "cat",
        "ian",
        "ida",
    ]
