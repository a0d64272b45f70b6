"""Residents' choices in the store: history, current state, snapshots, logging, atomicity."""

import json
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import func, select

from candour import choices, ledger
from candour.choices import ChoiceError, ChoiceRequest, PurposeError
from candour.config import Settings
from candour.initialise import initialise_home
from candour.store import IngestBatch, transaction
from candour.store.choices import ChoiceEvent, ChoiceOptOut, ChoiceVersion
from candour.store.linkage import PersonNumber

B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def pid(n: int) -> str:
    """A valid person id for number ``n``."""
    chars = []
    for _ in range(12):
        n, r = divmod(n, 32)
        chars.append(B32[r])
    return "P-" + "".join(reversed(chars))


def make_home(settings: Settings, people: int = 6, retired: tuple[int, ...] = ()) -> list[str]:
    """An initialised home with a person index of ``people`` and two ingested sources."""
    initialise_home(settings)
    ids = [pid(1000 + i) for i in range(people)]
    with transaction(settings) as session:
        session.add_all(
            PersonNumber(
                person_num=i + 1,
                person_id=p,
                created_run="R-1",
                retired_run="R-2" if i in retired else None,
            )
            for i, p in enumerate(ids)
        )
        for n, source in enumerate(("ae_attendances", "police_incidents")):
            session.add(
                IngestBatch(
                    source=source,
                    file_name=f"{source}.csv",
                    content_sha256=f"{n}" * 64,
                    status="done",
                )
            )
    choices.clear_cache()
    return ids


def _count(settings: Settings, table: type) -> int:
    with transaction(settings) as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_an_opt_out_is_stored_logged_and_in_the_snapshot(store_settings: Settings):
    people = make_home(store_settings)
    record = choices.set_choice(
        people[0],
        "research",
        "opt-out",
        channel="portal",
        actor="resident",
        settings=store_settings,
    )
    assert record is not None and record.ledger_index is not None
    assert (record.channel, record.actor, record.source) == ("portal", "resident", None)

    entry = json.loads(ledger.entry(record.ledger_index, settings=store_settings))
    assert entry["kind"] == "choice-change"
    assert (entry["purpose"], entry["choice"]) == ("research", "opt-out")
    assert people[0] not in json.dumps(entry)  # no person id in the public log
    key = ledger.person_key_for(people[0], settings=store_settings)
    assert ledger.is_about(entry, key)
    assert not ledger.is_about(entry, ledger.person_key_for(people[1], settings=store_settings))

    snap = choices.snapshot("research", settings=store_settings)
    assert snap.everywhere.person_ids == (people[0],)
    assert snap.everywhere.person_nums.tolist() == [1]
    assert snap.everywhere.person_nums.dtype == np.uint32
    assert snap.version == 1
    assert people[0] in snap.excluded("ae_attendances")
    assert 1 in snap.excluded("ae_attendances") and 2 not in snap.excluded("ae_attendances")
    assert choices.opted_out("research", people[0], settings=store_settings)
    assert not choices.opted_out("service-planning", people[0], settings=store_settings)
    # Other purposes are untouched.
    assert len(choices.snapshot("service-planning", settings=store_settings).everywhere) == 0


def test_restating_a_choice_is_not_a_change(store_settings: Settings):
    people = make_home(store_settings)
    assert (
        choices.set_choice(people[0], "research", "opt-in", actor="a", settings=store_settings)
        is None
    )
    choices.set_choice(people[0], "research", "opt-out", actor="a", settings=store_settings)
    assert (
        choices.set_choice(people[0], "research", "opt-out", actor="a", settings=store_settings)
        is None
    )
    assert len(choices.history(people[0], settings=store_settings)) == 1


def test_opting_back_in_and_history_is_append_only(store_settings: Settings):
    people = make_home(store_settings)
    first = choices.set_choice(people[1], "research", "opt-out", actor="a", settings=store_settings)
    before = choices.snapshot("research", settings=store_settings)
    second = choices.set_choice(people[1], "research", "opt-in", actor="b", settings=store_settings)
    assert first and second and second.recorded_at >= first.recorded_at
    after = choices.snapshot("research", settings=store_settings)
    assert len(after.everywhere) == 0 and after.version == 2
    assert after.content_hash != before.content_hash
    assert [h.decision for h in choices.history(people[1], settings=store_settings)] == [
        "opt-out",
        "opt-in",
    ]
    assert _count(store_settings, ChoiceOptOut) == 0
    # The past is still answerable: as at the first change, the person was opted out.
    past = choices.snapshot("research", at=first.recorded_at, settings=store_settings)
    assert past.everywhere.person_ids == (people[1],)
    assert past.content_hash == before.content_hash and past.version == 1
    assert choices.opted_out("research", people[1], at=first.recorded_at, settings=store_settings)
    assert not choices.opted_out("research", people[1], settings=store_settings)
    earlier = choices.snapshot(
        "research", at=first.recorded_at - timedelta(seconds=1), settings=store_settings
    )
    assert earlier.version == 0 and len(earlier.everywhere) == 0


def test_a_source_level_choice_excludes_only_that_source(store_settings: Settings):
    people = make_home(store_settings)
    choices.set_choice(
        people[2],
        "research",
        "opt-out",
        source="police_incidents",
        actor="a",
        settings=store_settings,
    )
    snap = choices.snapshot("research", settings=store_settings)
    assert len(snap.everywhere) == 0
    assert people[2] in snap.excluded("police_incidents")
    assert people[2] not in snap.excluded("ae_attendances")
    assert snap.by_source["police_incidents"].person_nums.tolist() == [3]
    assert not choices.opted_out("research", people[2], settings=store_settings)
    assert choices.opted_out(
        "research", people[2], source="police_incidents", settings=store_settings
    )
    state = choices.current(people[2], settings=store_settings)
    assert state.by_source == {"research": frozenset({"police_incidents"})}
    # An opt-out everywhere and one narrowed to a source are separate choices.
    choices.set_choice(people[2], "research", "opt-out", actor="a", settings=store_settings)
    both = choices.snapshot("research", settings=store_settings)
    assert both.excluded("police_incidents").person_ids == (people[2],)
    assert both.person_count == 1


@pytest.mark.parametrize("purpose", ["direct-care", "fraud-prevention"])
def test_an_opt_out_a_purpose_does_not_allow_is_refused_with_the_reason(
    store_settings: Settings, purpose: str
):
    people = make_home(store_settings)
    with pytest.raises(PurposeError, match=f"residents cannot opt out of {purpose}.*: The|Care"):
        choices.set_choice(people[0], purpose, "opt-out", actor="a", settings=store_settings)
    assert _count(store_settings, ChoiceEvent) == 0


def test_unknown_person_source_and_purpose_are_refused(store_settings: Settings):
    people = make_home(store_settings, retired=(5,))
    with pytest.raises(ChoiceError, match="no current person P-AAAAAAAAAAAA"):
        choices.set_choice(
            "P-AAAAAAAAAAAA", "research", "opt-out", actor="a", settings=store_settings
        )
    with pytest.raises(ChoiceError, match="no current person"):  # retired by a merge
        choices.set_choice(people[5], "research", "opt-out", actor="a", settings=store_settings)
    with pytest.raises(ChoiceError, match="not a person id"):
        choices.set_choice("someone", "research", "opt-out", actor="a", settings=store_settings)
    with pytest.raises(ChoiceError, match="no source called 'polise'.*police_incidents"):
        choices.set_choice(
            people[0], "research", "opt-out", source="polise", actor="a", settings=store_settings
        )
    with pytest.raises(PurposeError, match="unknown purpose"):
        choices.set_choice(people[0], "marketing", "opt-out", actor="a", settings=store_settings)
    assert _count(store_settings, ChoiceEvent) == 0


def test_a_batch_is_all_or_nothing(store_settings: Settings):
    people = make_home(store_settings)
    good = ChoiceRequest(people[0], "research", "opt-out")
    with pytest.raises(ChoiceError, match="no current person"):
        choices.record_choices(
            [good, ChoiceRequest("P-AAAAAAAAAAAA", "research", "opt-out")],
            channel="bulk-import",
            actor="a",
            settings=store_settings,
        )
    with pytest.raises(ChoiceError, match="conflicting choices"):
        choices.record_choices(
            [good, ChoiceRequest(people[0], "research", "opt-in")],
            channel="bulk-import",
            actor="a",
            settings=store_settings,
        )
    assert _count(store_settings, ChoiceEvent) == 0


def test_a_failure_to_log_fails_the_change(store_settings: Settings, monkeypatch):
    people = make_home(store_settings)
    choices.set_choice(people[0], "research", "opt-out", actor="a", settings=store_settings)
    before = choices.snapshot("research", settings=store_settings)

    def broken(*args, **kwargs):
        raise ledger.LogError("disk full")

    monkeypatch.setattr(ledger, "record_many", broken)
    with pytest.raises(ledger.LogError):
        choices.record_choices(
            [
                ChoiceRequest(people[1], "research", "opt-out"),
                ChoiceRequest(people[0], "research", "opt-in"),
            ],
            channel="cli",
            actor="a",
            settings=store_settings,
        )
    monkeypatch.undo()
    assert _count(store_settings, ChoiceEvent) == 1
    after = choices.snapshot("research", settings=store_settings)
    assert after.content_hash == before.content_hash
    assert after.everywhere.person_ids == (people[0],)
    with transaction(store_settings) as session:
        assert session.get(ChoiceVersion, "research").version == 1  # type: ignore[union-attr]


def test_a_change_reaches_the_next_snapshot_despite_the_cache(store_settings: Settings):
    people = make_home(store_settings)
    first = choices.snapshot("research", settings=store_settings)
    assert choices.snapshot("research", settings=store_settings) is first  # cached
    choices.set_choice(people[3], "research", "opt-out", actor="a", settings=store_settings)
    second = choices.snapshot("research", settings=store_settings)
    assert second is not first and second.everywhere.person_ids == (people[3],)


def test_a_bulk_batch_logs_one_entry_per_change(store_settings: Settings):
    people = make_home(store_settings)
    result = choices.record_choices(
        [ChoiceRequest(p, "service-planning", "opt-out") for p in people[:4]],
        channel="bulk-import",
        actor="import",
        settings=store_settings,
    )
    indices = sorted(r.ledger_index for r in result.recorded if r.ledger_index is not None)
    assert len(indices) == 4 and indices == list(range(indices[0], indices[0] + 4))
    snap = choices.snapshot("service-planning", settings=store_settings)
    assert snap.everywhere.person_nums.tolist() == [1, 2, 3, 4]
    again = choices.record_choices(
        [ChoiceRequest(p, "service-planning", "opt-out") for p in people[:5]],
        channel="bulk-import",
        actor="import",
        settings=store_settings,
    )
    assert (len(again.recorded), len(again.unchanged)) == (1, 4)
