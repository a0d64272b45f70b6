"""The people of one chunk of the county: households at properties, and how they change.

Everything is vectorised with numpy over a chunk of about 25,000 residents. Days are integers
counted from 1970-01-01. ``NEVER`` (a far-future day) means "does not happen in the window".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from candour.synth.config import SynthConfig
from candour.synth.names import name_tables
from candour.synth.places import Places, build_places

NEVER = 10**7
BEFORE = -(10**7)
EPOCH = date(1970, 1, 1)
# Distinct global person numbers per chunk (residents, babies and incomers together).
PEOPLE_PER_CHUNK_CAP = 100_000

# Household types.
SINGLE, COUPLE, FAMILY, SHARERS, MULTIGEN, HMO_TENANT = range(6)
# Property kinds.
HOME, UNLICENSED_HMO, LICENSED_HMO, VACANT = range(4)

# Adults by 5-year age band from 18 (England and Wales, Census 2021, millions, rounded):
# the shape that gives the county a realistic age pyramid.
_ADULT_BAND_START = np.array([18, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90])
_ADULT_BAND_WIDTH = np.array([2, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 10])
_ADULT_BAND_COUNT = np.array(
    [1.4, 3.7, 3.9, 4.0, 3.8, 3.6, 3.7, 4.0, 4.0, 3.5, 3.1, 3.0, 2.2, 1.5, 0.9, 0.5]
)

_NHS_SPACE = 300_000_000  # 9-digit stems 400000000-499999999 and 600000000-799999999
_NHS_MULTIPLIER = 193_877_777  # coprime with 2, 3 and 5, so the mapping is a bijection
_NHS_WEIGHTS = np.array([10, 9, 8, 7, 6, 5, 4, 3, 2], dtype=np.int64)


def day_number(value: date) -> int:
    """Days since 1970-01-01."""
    return (value - EPOCH).days


def nhs_check_digit(stems: np.ndarray) -> np.ndarray:
    """The modulus-11 check digit of each 9-digit stem; 10 means the stem cannot be used."""
    stems = np.asarray(stems, dtype=np.int64)
    digits = (stems[:, None] // 10 ** np.arange(8, -1, -1, dtype=np.int64)) % 10
    remainder = (digits * _NHS_WEIGHTS).sum(axis=1) % 11
    check = 11 - remainder
    return np.where(check == 11, 0, check)


def is_valid_nhs_number(text: str) -> bool:
    """Whether ``text`` (spaces allowed) is a 10-digit NHS number with a correct check digit."""
    digits = text.replace(" ", "")
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def nhs_numbers(global_ids: np.ndarray, seed: int) -> np.ndarray:
    """A distinct valid NHS number for each distinct global person id.

    Each id owns 8 candidate stems under a seeded affine bijection, so two people never share
    one; the first candidate whose check digit is not 10 is used.
    """
    ids = np.asarray(global_ids, dtype=np.int64)
    offset = (seed * 2_654_435_761 + 12_345) % _NHS_SPACE
    result = np.zeros(len(ids), dtype=np.int64)
    pending = np.ones(len(ids), dtype=bool)
    for j in range(8):
        x = (_NHS_MULTIPLIER * (8 * ids + j) + offset) % _NHS_SPACE
        stem = np.where(x < 100_000_000, x + 400_000_000, x + 500_000_000)
        check = nhs_check_digit(stem)
        usable = pending & (check != 10)
        result[usable] = stem[usable] * 10 + check[usable]
        pending &= ~usable
        if not pending.any():
            break
    if pending.any():  # probability 11**-8 per person; fail loudly rather than write a bad one
        raise RuntimeError("no valid NHS number candidate; use a different seed")
    return result


@dataclass
class Population:
    """One chunk: people, households and properties, as parallel numpy arrays."""

    chunk: int
    window_start: int
    window_end: int  # exclusive
    places: Places
    property_kind: np.ndarray
    hmo_slots: np.ndarray
    # households
    hh_type: np.ndarray
    hh_cluster: np.ndarray
    hh_surname: np.ndarray
    # people
    global_id: np.ndarray
    resident_at_start: np.ndarray
    female: np.ndarray
    dob: np.ndarray
    given: np.ndarray
    middle: np.ndarray
    surname: np.ndarray
    prev_surname: np.ndarray
    surname_change: np.ndarray
    nhs: np.ndarray
    household: np.ndarray
    prop0: np.ndarray
    prop1: np.ndarray
    move_day: np.ndarray
    death: np.ndarray
    arrival: np.ndarray
    departure: np.ndarray
    occupancy_start: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of people in the chunk (residents, babies and incomers)."""
        return len(self.dob)

    @property
    def present_from(self) -> np.ndarray:
        """First day each person is in the county during the window."""
        return np.maximum(np.maximum(self.window_start, self.dob), self.arrival)

    @property
    def present_to(self) -> np.ndarray:
        """Day after each person's last day in the county during the window."""
        return np.minimum(np.minimum(self.window_end, self.death), self.departure)

    def age_at(self, day: np.ndarray | int, people: np.ndarray | None = None) -> np.ndarray:
        """Whole years of age on ``day``."""
        dob = self.dob if people is None else self.dob[people]
        return ((np.asarray(day) - dob) / 365.2425).astype(np.int64)

    def property_at(self, people: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Where each person lived on each day."""
        moved = day >= self.move_day[people]
        return np.where(moved, self.prop1[people], self.prop0[people])

    def surname_at(self, people: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Each person's surname on each day (the old one before a change)."""
        before = day < self.surname_change[people]
        return np.where(
            before & (self.prev_surname[people] >= 0),
            self.prev_surname[people],
            self.surname[people],
        )


# Household reference people of one- and two-person households are older than adults overall
# (half of one-person households are 65+), which families and sharers balance out.
_SMALL_HOUSEHOLD_TILT = np.array(
    [0.2, 0.35, 0.55, 0.7, 0.7, 0.75, 0.85, 1.0, 1.1, 1.4, 2.2, 2.5, 2.7, 2.8, 2.8, 2.8]
)


def _adult_ages(
    rng: np.random.Generator, n: int, low: int = 18, high: int = 100, tilt: bool = False
) -> np.ndarray:
    weights = _ADULT_BAND_COUNT * (_SMALL_HOUSEHOLD_TILT if tilt else 1.0)
    weights[(_ADULT_BAND_START + _ADULT_BAND_WIDTH <= low) | (_ADULT_BAND_START >= high)] = 0
    band = rng.choice(len(weights), size=n, p=weights / weights.sum())
    ages = _ADULT_BAND_START[band] + rng.random(n) * _ADULT_BAND_WIDTH[band]
    return np.clip(ages, low, high - 0.01)


def build_population(
    rng: np.random.Generator, chunk: int, residents: int, seed: int, config: SynthConfig
) -> Population:
    """Generate ``residents`` people living in the chunk at the window start, plus newcomers."""
    names = name_tables()
    start = day_number(config.window_start)
    end = day_number(
        date(
            config.window_start.year + config.window_years,
            config.window_start.month,
            config.window_start.day,
        )
    )
    span = end - start

    # --- HMOs: rooms let to unrelated adults, with high turnover ------------------------------
    est_properties = max(1, int(residents / 2.3))
    n_unlic = int(rng.binomial(est_properties, config.unlicensed_hmo_share))
    n_lic = int(rng.binomial(est_properties, config.licensed_hmo_share))
    hmo_slots = np.concatenate([rng.integers(3, 8, n_unlic), rng.integers(5, 9, n_lic)])
    tenant_hmo: list[int] = []
    tenant_start: list[float] = []
    tenant_end: list[float] = []
    mean_days = config.hmo_mean_tenancy_months * 30.44
    for h, slots in enumerate(hmo_slots):
        for _ in range(int(slots)):
            t = start - rng.random() * 2 * mean_days
            while t < end:
                stay = max(30.0, rng.exponential(mean_days))
                tenant_hmo.append(h)
                tenant_start.append(t)
                tenant_end.append(t + stay)
                t = t + stay + rng.random() * 45
    t_hmo = np.array(tenant_hmo, dtype=np.int64)
    t_start = np.floor(np.array(tenant_start)).astype(np.int64)
    t_end = np.floor(np.array(tenant_end)).astype(np.int64)
    # Tenants whose stay ended before the window never appear.
    keep = t_end > start
    t_hmo, t_start, t_end = t_hmo[keep], t_start[keep], t_end[keep]
    n_tenants = len(t_hmo)
    tenants_at_start = int((t_start < start).sum())

    # --- households ---------------------------------------------------------------------------
    target = max(0, residents - tenants_at_start)
    type_p = np.array([0.29, 0.27, 0.28, config.sharer_share, 0.13])
    type_p /= type_p.sum()
    batch = max(16, target)  # households are at least one person, so this is always enough
    kinds = rng.choice(5, size=batch, p=type_p)
    kids = rng.choice([1, 2, 3, 4], size=batch, p=[0.4, 0.38, 0.16, 0.06])
    lone = rng.random(batch) < 0.25
    n_sharers = rng.integers(2, 4, batch)
    adult_kids = rng.integers(1, 3, batch)
    sizes = np.select(
        [kinds == SINGLE, kinds == COUPLE, kinds == FAMILY, kinds == SHARERS],
        [1, 2, np.where(lone, 1, 2) + kids, n_sharers],
        2 + adult_kids,
    )
    cum = np.cumsum(sizes)
    n_full = int(np.searchsorted(cum, target, side="right"))
    filled = int(cum[n_full - 1]) if n_full else 0
    extra_singles = target - filled
    kinds = np.concatenate([kinds[:n_full], np.full(extra_singles, SINGLE)])
    kids = np.concatenate([kids[:n_full], np.zeros(extra_singles, int)])
    lone = np.concatenate([lone[:n_full], np.zeros(extra_singles, bool)])
    n_sharers = np.concatenate([n_sharers[:n_full], np.zeros(extra_singles, int)])
    adult_kids = np.concatenate([adult_kids[:n_full], np.zeros(extra_singles, int)])
    sizes = np.concatenate([sizes[:n_full], np.ones(extra_singles, int)])
    n_hh = len(kinds)

    # Member roles within each household: position 0 is the household reference person.
    hh_of = np.repeat(np.arange(n_hh), sizes)
    pos = np.arange(len(hh_of)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    kind_p = kinds[hh_of]
    n_adults_hh = np.select(
        [kinds == SINGLE, kinds == COUPLE, kinds == FAMILY, kinds == SHARERS],
        [1, 2, np.where(lone, 1, 2), n_sharers],
        2 + adult_kids,
    )
    is_child = pos >= n_adults_hh[hh_of]
    is_child &= kind_p == FAMILY
    n_res = len(hh_of)

    # Ages at the window start.
    age = np.empty(n_res)
    ref_age = np.select(
        [kinds == FAMILY, kinds == SHARERS, kinds == MULTIGEN],
        [22 + rng.random(n_hh) * 30, 19 + rng.random(n_hh) * 16, 45 + rng.random(n_hh) * 20],
        _adult_ages(rng, n_hh, low=18, tilt=True),
    )
    age[:] = ref_age[hh_of]
    partner = (pos == 1) & np.isin(kind_p, [COUPLE, FAMILY, MULTIGEN])
    age[partner] = np.clip(age[partner] + rng.normal(0, 3.5, int(partner.sum())), 18, 100)
    sharer = (kind_p == SHARERS) & (pos > 0)
    age[sharer] = 19 + rng.random(int(sharer.sum())) * 16
    grown = (kind_p == MULTIGEN) & (pos >= 2)
    age[grown] = 18 + rng.random(int(grown.sum())) * 12
    oldest_child = np.clip(ref_age[hh_of] - 18, 0.5, 18)
    age[is_child] = rng.random(int(is_child.sum())) * oldest_child[is_child]

    # Sex: couples are mostly one man and one woman; lone parents mostly mothers; the oldest
    # singles are mostly women, as widowhood makes them.
    female = rng.random(n_res) < 0.5
    ref = pos == 0
    old_single = ref & (kind_p == SINGLE) & (age > 75)
    female[old_single] = rng.random(int(old_single.sum())) < 0.65
    lone_parent = ref & (kind_p == FAMILY) & lone[hh_of]
    female[lone_parent] = rng.random(int(lone_parent.sum())) < 0.9
    mixed = rng.random(n_hh) < 0.95
    female[partner] = np.where(
        mixed[hh_of[partner]],
        ~female[np.flatnonzero(partner) - 1],
        female[np.flatnonzero(partner) - 1],
    )

    # Surnames: shared in families; 25% of couples keep different names; sharers all differ.
    hh_surname = names.sample_surnames(rng, n_hh)
    surname = hh_surname[hh_of].copy()
    own_name = sharer | ((pos == 1) & (rng.random(n_res) < 0.25) & ~is_child)
    surname[own_name] = names.sample_surnames(rng, int(own_name.sum()))

    # --- tenants of HMOs: each their own household --------------------------------------------
    t_age = 18 + rng.random(n_tenants) * 27
    t_female = rng.random(n_tenants) < 0.45
    t_surname = names.sample_surnames(rng, n_tenants)

    # --- properties: homes, vacant homes (to move into), HMOs ---------------------------------
    hh_moves = rng.random(n_hh) < config.move_share
    n_movers = int(hh_moves.sum())
    n_vacant = n_movers + n_hh // 50
    n_hmo = len(hmo_slots)
    n_props = n_hh + n_vacant + n_hmo
    places = build_places(rng, chunk, n_props)
    order = rng.permutation(n_props)
    hh_prop = order[:n_hh]
    vacant_props = order[n_hh : n_hh + n_vacant]
    hmo_props = order[n_hh + n_vacant :]
    kind = np.full(n_props, HOME, dtype=np.int8)
    kind[vacant_props] = VACANT
    kind[hmo_props[:n_unlic]] = UNLICENSED_HMO
    kind[hmo_props[n_unlic:]] = LICENSED_HMO
    slots_by_prop = np.zeros(n_props, dtype=np.int64)
    slots_by_prop[hmo_props] = hmo_slots

    hh_prop1 = np.full(n_hh, -1, dtype=np.int64)
    hh_prop1[hh_moves] = vacant_props[:n_movers]
    hh_move = np.full(n_hh, NEVER, dtype=np.int64)
    hh_move[hh_moves] = start + rng.integers(0, span, n_movers)

    # --- assemble people: residents, then tenants ---------------------------------------------
    all_age = np.concatenate([age, t_age])
    all_female = np.concatenate([female, t_female])
    n_all = n_res + n_tenants
    dob = (start - all_age * 365.2425).astype(np.int64)
    household = np.concatenate([hh_of, n_hh + np.arange(n_tenants)])
    hh_type = np.concatenate([kinds, np.full(n_tenants, HMO_TENANT)]).astype(np.int8)
    all_hh_surname = np.concatenate([hh_surname, t_surname])
    prop0 = np.concatenate([hh_prop[hh_of], hmo_props[t_hmo]])
    prop1 = np.concatenate([hh_prop1[hh_of], np.full(n_tenants, -1)])
    move_day = np.concatenate([hh_move[hh_of], np.full(n_tenants, NEVER)])
    arrival = np.concatenate([np.full(n_res, BEFORE), np.where(t_start < start, BEFORE, t_start)])
    departure = np.concatenate([np.full(n_res, NEVER), np.where(t_end >= end, NEVER, t_end)])
    surname_all = np.concatenate([surname, t_surname])
    child_all = np.concatenate([is_child, np.zeros(n_tenants, bool)])
    years_there = rng.random(n_all) * np.minimum(np.maximum(all_age - 18, 0.1), 25)
    occupancy_start = np.where(child_all, dob, (start - years_there * 365.2425).astype(np.int64))
    occupancy_start = np.concatenate([occupancy_start[:n_res], t_start])

    # --- births: a baby joins some families ---------------------------------------------------
    person_type = hh_type[household]
    mothers = np.flatnonzero(
        (person_type == FAMILY) & all_female & ~child_all & (all_age >= 20) & (all_age <= 42)
    )
    _, first = np.unique(household[mothers], return_index=True)
    mothers = mothers[first]
    mothers = mothers[rng.random(len(mothers)) < config.birth_share]
    n_babies = len(mothers)
    baby_dob = start + rng.integers(0, max(1, span - 30), n_babies)
    baby_hh = household[mothers]

    def extend(values: np.ndarray, baby_values: np.ndarray) -> np.ndarray:
        return np.concatenate([values, baby_values.astype(values.dtype)])

    dob = extend(dob, baby_dob)
    all_female = extend(all_female, rng.random(n_babies) < 0.49)
    household = extend(household, baby_hh)
    surname_all = extend(surname_all, surname_all[mothers])
    prop0 = extend(prop0, prop0[mothers])
    prop1 = extend(prop1, prop1[mothers])
    move_day = extend(move_day, move_day[mothers])
    arrival = extend(arrival, np.full(n_babies, BEFORE))
    departure = extend(departure, np.full(n_babies, NEVER))
    occupancy_start = extend(occupancy_start, baby_dob)
    resident_at_start = np.concatenate([arrival[:n_all] == BEFORE, np.zeros(n_babies, bool)])
    n = len(dob)
    if n > PEOPLE_PER_CHUNK_CAP:
        raise ValueError("chunk too large for its person-number range")

    # --- names, NHS numbers --------------------------------------------------------------------
    given = names.sample_given(rng, all_female)
    middle = np.where(rng.random(n) < 0.6, names.sample_given(rng, all_female), -1)
    middle = np.where(middle == given, -1, middle).astype(np.int32)
    global_id = chunk * PEOPLE_PER_CHUNK_CAP + np.arange(n, dtype=np.int64)
    nhs = nhs_numbers(global_id, seed)

    # --- deaths (Gompertz mortality) ----------------------------------------------------------
    age_start = (start - dob) / 365.2425
    annual_q = np.minimum(0.6, np.exp(-10.2 + 0.095 * np.maximum(age_start, 0)))
    annual_q *= config.mortality_scale
    p_from = np.maximum(np.maximum(start, dob), arrival)
    p_to = np.minimum(end, departure)
    exposure = np.maximum(p_to - p_from, 0) / 365.2425
    dies = rng.random(n) < 1 - (1 - np.minimum(annual_q, 1.0)) ** exposure
    death = np.full(n, NEVER, dtype=np.int64)
    death[dies] = p_from[dies] + (rng.random(int(dies.sum())) * (p_to - p_from)[dies]).astype(
        np.int64
    )

    # --- surname changes (e.g. on marriage), mostly women aged 20-50 --------------------------
    adult_now = (age_start >= 18) & resident_at_start
    eligible = adult_now & (age_start >= 20) & (age_start <= 50)
    weight = np.where(all_female, 0.85, 0.15) * eligible
    n_change = min(
        int(rng.binomial(int(adult_now.sum()), config.surname_change_share)), int(eligible.sum())
    )
    prev_surname = np.full(n, -1, dtype=np.int32)
    surname_change = np.full(n, NEVER, dtype=np.int64)
    if n_change:
        changers = rng.choice(n, size=n_change, replace=False, p=weight / weight.sum())
        new = names.sample_surnames(rng, n_change)
        new = np.where(new == surname_all[changers], (new + 1) % len(names.surnames), new)
        prev_surname[changers] = surname_all[changers]
        surname_all[changers] = new
        surname_change[changers] = start + rng.integers(0, span, n_change)

    # --- family clusters: households with children at the window start -----------------------
    n_households = n_hh + n_tenants
    hh_cluster = np.full(n_households, -1, dtype=np.int8)
    families = np.unique(household[np.flatnonzero(child_all)])
    hh_cluster[families] = rng.choice(
        config.clusters, size=len(families), p=np.array(config.family_cluster_shares)
    )
    return Population(
        chunk=chunk,
        window_start=start,
        window_end=end,
        places=places,
        property_kind=kind,
        hmo_slots=slots_by_prop,
        hh_type=hh_type,
        hh_cluster=hh_cluster,
        hh_surname=all_hh_surname,
        global_id=global_id,
        resident_at_start=resident_at_start,
        female=all_female,
        dob=dob,
        given=given,
        middle=middle,
        surname=surname_all.astype(np.int32),
        prev_surname=prev_surname,
        surname_change=surname_change,
        nhs=nhs,
        household=household,
        prop0=prop0,
        prop1=prop1,
        move_day=move_day,
        death=death,
        arrival=arrival,
        departure=departure,
        occupancy_start=occupancy_start,
    )
