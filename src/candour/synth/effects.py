"""Events in the window, with the three planted effects built in.

1. Falls: people aged 65+ have a gamma-distributed frailty that multiplies an age-rising falls
   rate. Safe and Well visits go preferentially to frailer people (confounding that a matched
   difference-in-differences removes, since frailty is constant over time) and are never
   triggered by a recent fall, so there is no regression to the mean. For 12 months after a
   visit the falls rate is multiplied by ``1 + home_safety_visit_falls_effect``.
2. Family need clusters: each household with children belongs to one of K clusters, each with its
   own rates of social-care contacts, police incidents and A&E attendances (``config``).
3. Unlicensed HMOs: crowded, high-turnover lets (see population) that draw housing complaints
   and police noise/ASB incidents.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from candour.synth.config import SynthConfig
from candour.synth.population import FAMILY, LICENSED_HMO, SHARERS, UNLICENSED_HMO, Population

AE_CATEGORIES = (
    "fall",
    "injury",
    "respiratory",
    "cardiac",
    "mental_health",
    "self_harm",
    "assault",
    "alcohol_drugs",
    "other",
)
# Attendances per person per year: (child, adult 18-64, older 65+). Falls for 65+ come from
# the frailty model instead.
_AE_RATES = {
    "fall": (0.010, 0.008, 0.0),
    "injury": (0.12, 0.07, 0.05),
    "respiratory": (0.07, 0.025, 0.06),
    "cardiac": (0.002, 0.015, 0.05),
    "mental_health": (0.004, 0.012, 0.005),
    "self_harm": (0.002, 0.004, 0.001),
    "assault": (0.002, 0.006, 0.001),
    "alcohol_drugs": (0.001, 0.010, 0.003),
    "other": (0.07, 0.07, 0.11),
}
SC_REASONS = (
    "early_help",
    "child_neglect",
    "child_disability",
    "adult_mental_health",
    "learning_disability",
    "carer_support",
    "older_frailty",
    "domestic_abuse_support",
)
_SC_RATES = {
    "early_help": (0.010, 0.0, 0.0),
    "child_neglect": (0.003, 0.0, 0.0),
    "child_disability": (0.003, 0.0, 0.0),
    "adult_mental_health": (0.0, 0.006, 0.002),
    "learning_disability": (0.0, 0.002, 0.001),
    "carer_support": (0.0, 0.003, 0.004),
    "older_frailty": (0.0, 0.0, 0.03),
    "domestic_abuse_support": (0.0, 0.002, 0.0),
}
POLICE_TYPES = (
    "domestic_abuse",
    "asb_noise",
    "drugs",
    "violence",
    "theft",
    "missing_person",
    "concern_for_welfare",
    "road_traffic",
)
_POLICE_RATES = {
    "domestic_abuse": (0.0, 0.003, 0.001),
    "asb_noise": (0.001, 0.004, 0.001),
    "drugs": (0.0005, 0.003, 0.0),
    "violence": (0.002, 0.006, 0.001),
    "theft": (0.001, 0.010, 0.006),
    "missing_person": (0.002, 0.0005, 0.0005),
    "concern_for_welfare": (0.0, 0.002, 0.004),
    "road_traffic": (0.0, 0.006, 0.003),
}
POLICE_ROLES = ("victim", "suspect", "witness", "involved", "reporting_person", "missing_person")
# Roles each incident type draws from.
_POLICE_ROLE_CHOICES = {
    "domestic_abuse": (0, 1),
    "asb_noise": (1, 4, 3),
    "drugs": (1, 3),
    "violence": (0, 1, 2),
    "theft": (0, 2),
    "missing_person": (5,),
    "concern_for_welfare": (3,),
    "road_traffic": (3, 2, 0),
}
VISIT_TYPES = ("Safe and Well", "Home Fire Safety Check")
COMPLAINT_TYPES = ("noise", "overcrowding", "waste", "disrepair", "pests")

_YEAR = 365.2425


@dataclass
class EventTable:
    """Events of one kind: who, when, and a small integer code (category, type...)."""

    person: np.ndarray
    day: np.ndarray
    code: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Events:
    """All of one chunk's events and property-level housing facts."""

    ae: EventTable
    social_care: EventTable
    police: EventTable
    fire: EventTable
    complaints_12m: np.ndarray  # per property
    last_complaint: np.ndarray  # per property, code into COMPLAINT_TYPES or -1
    stats: dict[str, float]


def _poisson_events(
    rng: np.random.Generator, rate: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Events at a constant yearly ``rate`` per person between ``start`` and ``end`` (days)."""
    length = np.maximum(end - start, 0)
    counts = rng.poisson(np.maximum(rate, 0.0) * length / _YEAR)
    person = np.repeat(np.arange(len(rate)), counts)
    day = start[person] + (rng.random(len(person)) * length[person]).astype(np.int64)
    return person, day


def _by_age(rates: tuple[float, float, float], age: np.ndarray) -> np.ndarray:
    return np.select([age < 18, age < 65], [rates[0], rates[1]], rates[2])


def _collect(parts: list[tuple[np.ndarray, np.ndarray, int]]) -> EventTable:
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return EventTable(empty, empty, empty)
    return EventTable(
        np.concatenate([p for p, _, _ in parts]),
        np.concatenate([d for _, d, _ in parts]),
        np.concatenate([np.full(len(p), c, dtype=np.int64) for p, _, c in parts]),
    )


def simulate_events(rng: np.random.Generator, pop: Population, config: SynthConfig) -> Events:
    """Draw every event of the window for one chunk."""
    start = pop.window_start
    p_from, p_to = pop.present_from, pop.present_to
    age = (start - pop.dob) / _YEAR  # negative for babies born in the window
    n = pop.n
    stats: dict[str, float] = {}

    # --- A&E: background, then falls among the old ---------------------------------------
    ae_parts: list[tuple[np.ndarray, np.ndarray, int]] = []
    for code, category in enumerate(AE_CATEGORIES):
        person, day = _poisson_events(rng, _by_age(_AE_RATES[category], age), p_from, p_to)
        ae_parts.append((person, day, code))

    older = np.flatnonzero((age >= 65) & pop.resident_at_start & (p_to > p_from))
    shape = config.frailty_shape
    frailty = rng.gamma(shape, 1.0 / shape, len(older))
    falls_rate = config.falls_base_rate * np.exp(config.falls_age_slope * (age[older] - 65))
    falls_rate *= frailty
    pull = frailty**config.visit_targeting
    mean_pull = float(pull.mean()) if len(pull) else 1.0
    p_visit = np.minimum(0.95, config.visit_share * pull / max(mean_pull, 1e-9))
    visit_day = start + 365 + rng.integers(0, 365, len(older))
    visited = (rng.random(len(older)) < p_visit) & (visit_day < p_to[older])
    o_from, o_to = p_from[older], p_to[older]
    v_start = np.where(visited, visit_day, o_to)
    v_end = np.where(visited, np.minimum(visit_day + 365, o_to), o_to)
    multiplier = 1.0 + config.home_safety_visit_falls_effect
    segments = (
        (falls_rate, o_from, v_start, "pre"),
        (falls_rate * multiplier, v_start, v_end, "post"),
        (falls_rate, v_end, o_to, "after"),
    )
    for rate, seg_from, seg_to, label in segments:
        local, day = _poisson_events(rng, rate, seg_from, seg_to)
        ae_parts.append((older[local], day, 0))
        stats[f"falls_visited_{label}"] = float(visited[local].sum())
        stats[f"falls_unvisited_{label}"] = float((~visited[local]).sum())
    stats["people_65_plus"] = float(len(older))
    stats["visited_65_plus"] = float(visited.sum())

    sc_parts: list[tuple[np.ndarray, np.ndarray, int]] = []
    for code, reason in enumerate(SC_REASONS):
        person, day = _poisson_events(rng, _by_age(_SC_RATES[reason], age), p_from, p_to)
        sc_parts.append((person, day, code))
    police_parts: list[tuple[np.ndarray, np.ndarray, int]] = []
    for code, kind in enumerate(POLICE_TYPES):
        person, day = _poisson_events(rng, _by_age(_POLICE_RATES[kind], age), p_from, p_to)
        police_parts.append((person, day, code))

    # --- family need clusters ------------------------------------------------------------
    cluster = pop.hh_cluster[pop.household]
    in_family = (cluster >= 0) & pop.resident_at_start
    child = in_family & (age < 18)
    adult = in_family & (age >= 18)
    hh_children = np.bincount(pop.household[child], minlength=len(pop.hh_cluster))
    hh_adults = np.bincount(pop.household[adult], minlength=len(pop.hh_cluster))
    codes = {
        "ae_attendances": (AE_CATEGORIES, ae_parts),
        "social_care_contacts": (SC_REASONS, sc_parts),
        "police_incidents": (POLICE_TYPES, police_parts),
    }
    for c, profile in enumerate(config.family_cluster_profiles):
        for key, household_rate in profile.items():
            source, category, role = key.split(":")
            names, parts = codes[source]
            if category not in names:
                continue
            members = (child if role == "child" else adult) & (cluster == c)
            share = (hh_children if role == "child" else hh_adults)[pop.household]
            rate = np.where(members, household_rate / np.maximum(share, 1), 0.0)
            person, day = _poisson_events(rng, rate, p_from, p_to)
            parts.append((person, day, names.index(category)))

    # --- HMOs: noise and ASB involving tenants --------------------------------------------
    kind_of_home = pop.property_kind[pop.prop0]
    slots = np.maximum(pop.hmo_slots[pop.prop0], 1)
    asb_rate = np.select(
        [kind_of_home == UNLICENSED_HMO, kind_of_home == LICENSED_HMO],
        [config.hmo_asb_incidents_per_year / slots, 0.3 / slots],
        0.0,
    )
    person, day = _poisson_events(rng, asb_rate, p_from, p_to)
    police_parts.append((person, day, POLICE_TYPES.index("asb_noise")))

    ae = _collect(ae_parts)
    social_care = _collect(sc_parts)
    police = _collect(police_parts)
    type_names = [POLICE_TYPES[c] for c in police.code]
    choice = rng.random(len(police.code))
    police.extra["role"] = np.array(
        [
            _POLICE_ROLE_CHOICES[t][int(u * len(_POLICE_ROLE_CHOICES[t]))]
            for t, u in zip(type_names, choice, strict=True)
        ],
        dtype=np.int64,
    )

    # --- fire and rescue visits -------------------------------------------------------------
    v_people = older[visited]
    v_days = visit_day[visited]
    v_risk = np.clip(np.round(1 + 1.5 * frailty[visited] + rng.normal(0, 0.7, len(v_people))), 1, 5)
    family_ref = np.flatnonzero(
        (pop.hh_type[pop.household] == FAMILY) & ~(age < 18) & pop.resident_at_start
    )
    _, first = np.unique(pop.household[family_ref], return_index=True)
    family_ref = family_ref[first]
    f_person, f_day = _poisson_events(
        rng, np.full(len(family_ref), 0.02), p_from[family_ref], p_to[family_ref]
    )
    f_person = family_ref[f_person]
    g_rate = np.where((age >= 18) & (age < 65), 0.002, 0.0)
    g_person, g_day = _poisson_events(rng, g_rate, p_from, p_to)
    fire = EventTable(
        np.concatenate([v_people, f_person, g_person]),
        np.concatenate([v_days, f_day, g_day]),
        np.concatenate(
            [np.zeros(len(v_people), np.int64), np.ones(len(f_person) + len(g_person), np.int64)]
        ),
    )
    fire.extra["risk"] = np.concatenate(
        [
            v_risk.astype(np.int64),
            rng.integers(1, 4, len(f_person) + len(g_person)),
        ]
    )

    # --- housing complaints per property ---------------------------------------------------
    n_props = len(pop.property_kind)
    sharer_props = np.zeros(n_props, dtype=bool)
    sharer_props[pop.prop0[pop.hh_type[pop.household] == SHARERS]] = True
    complaint_rate = np.select(
        [pop.property_kind == UNLICENSED_HMO, pop.property_kind == LICENSED_HMO, sharer_props],
        [config.hmo_complaints_per_year, 1.5, 0.3],
        0.04,
    )
    complaints = rng.poisson(complaint_rate)
    last = np.where(complaints > 0, rng.integers(0, len(COMPLAINT_TYPES), n_props), -1)
    stats["ae_attendances_fall"] = float((ae.code == 0).sum())
    stats["people"] = float(n)
    return Events(ae, social_care, police, fire, complaints, last, stats)
