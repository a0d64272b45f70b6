"""Properties of snapshots: equal to a naive replay at any moment; the hash is about the set."""

from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.integration.test_choices_store import make_home

from candour import choices
from candour.choices import ChoiceRequest
from candour.config import Settings

PURPOSES = ["research", "service-planning"]
SOURCES = [None, "police_incidents"]
PEOPLE = 5

change = st.tuples(
    st.integers(0, PEOPLE - 1),
    st.sampled_from(PURPOSES),
    st.sampled_from(SOURCES),
    st.sampled_from(["opt-out", "opt-in"]),
)


def _naive(
    history: list[tuple[datetime, str, str, str | None, str]], purpose: str, at: datetime | None
):
    """Replay every change (up to ``at``) in order; return the opted-out (source, person) set."""
    state: dict[tuple[str | None, str], str] = {}
    for when, person, p, source, decision in history:
        if p == purpose and (at is None or when <= at):
            state[(source, person)] = decision
    return {key for key, decision in state.items() if decision == "opt-out"}


def _as_set(snap: choices.Snapshot) -> set[tuple[str | None, str]]:
    found = {(None, p) for p in snap.everywhere.person_ids}
    for source, excluded in snap.by_source.items():
        found.update((source, p) for p in excluded.person_ids)
    return found


def test_snapshots_equal_a_naive_replay_at_every_moment(store_settings: Settings):
    people = make_home(store_settings, people=PEOPLE)
    history: list[tuple[datetime, str, str, str | None, str]] = []

    @settings(
        max_examples=12,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(change, min_size=1, max_size=4))
    def apply_batch(batch: list[tuple[int, str, str | None, str]]) -> None:
        # One batch may not hold two different decisions for the same choice: keep the last.
        last = {(i, p, s): d for i, p, s, d in batch}
        requests = [ChoiceRequest(people[i], p, d, s) for (i, p, s), d in last.items()]  # type: ignore[arg-type]
        result = choices.record_choices(
            requests, channel="api", actor="property", settings=store_settings
        )
        for r in result.recorded:
            history.append((r.recorded_at, r.person_id, r.purpose, r.source, r.decision))
        for purpose in PURPOSES:
            current = choices.snapshot(purpose, settings=store_settings)
            assert _as_set(current) == _naive(history, purpose, None)
            for when, *_ in history:
                past = choices.snapshot(purpose, at=when, settings=store_settings)
                assert _as_set(past) == _naive(history, purpose, when)
            if history:
                # The present equals a replay as at the newest change, hash and all.
                newest = max(h[0] for h in history)
                replayed = choices.snapshot(purpose, at=newest, settings=store_settings)
                assert replayed.content_hash == current.content_hash
                assert replayed.version == current.version

    apply_batch()
    assert history  # something was recorded


pairs = st.lists(
    st.tuples(
        st.sampled_from(["", "ae", "police"]), st.sampled_from([f"P-{c * 12}" for c in "ABCDE"])
    ),
    max_size=12,
)


@given(pairs, st.randoms())
def test_the_hash_ignores_order_and_repeats(rows, rnd):
    shuffled = list(rows) + list(rows[:2])
    rnd.shuffle(shuffled)
    assert choices.content_hash("research", rows) == choices.content_hash("research", shuffled)


@given(
    pairs,
    st.tuples(st.sampled_from(["", "ae"]), st.sampled_from(["P-ZZZZZZZZZZZZ", "P-AAAAAAAAAAAA"])),
)
def test_the_hash_changes_when_the_set_changes(rows, extra):
    before = set(rows)
    after = before ^ {extra}  # add it, or take it away
    assert choices.content_hash("research", before) != choices.content_hash("research", after)
    # ...and it is bound to the purpose.
    assert choices.content_hash("research", before) != choices.content_hash(
        "service-planning", before
    )


def test_an_every_source_opt_out_hashes_differently_from_a_source_one():
    assert choices.content_hash("research", [("", "P-AAAAAAAAAAAA")]) != choices.content_hash(
        "research", [("ae", "P-AAAAAAAAAAAA")]
    )
