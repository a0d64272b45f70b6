"""The error model: what goes wrong when a service writes down who someone is.

Every error is drawn independently per record at a configured rate and logged as
``(row, error)`` so the truth files can say exactly which records carry which errors, and how
many records could have carried each (the denominators the rates are measured against).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from candour.synth.config import SynthConfig
from candour.synth.names import name_tables
from candour.synth.population import Population

MISSING_DAY = -(10**8)
_LOWER = "abcdefghijklmnopqrstuvwxyz"

# Every error the model can plant, as written to truth/record_errors.csv.
ERRORS = (
    "typo_given_name",
    "typo_family_name",
    "nickname",
    "dob_day_month_swap",
    "missing_date_of_birth",
    "missing_postcode",
    "missing_sex",
    "old_address",
    "duplicate",
    "nhs_number_missing",
)


@dataclass
class Identity:
    """The identity a source wrote for each row, with the errors it carries."""

    given: np.ndarray
    middle: np.ndarray
    family: np.ndarray
    dob: np.ndarray  # day number, MISSING_DAY when blank
    sex: np.ndarray  # 1 female, 0 male, -1 blank
    prop: np.ndarray  # property index of the written address
    postcode_blank: np.ndarray
    nhs: np.ndarray  # 0 when blank
    errors: list[tuple[np.ndarray, str]] = field(default_factory=list)
    eligible: dict[str, int] = field(default_factory=dict)


def typo(name: str, u: float, v: float, w: float) -> str:
    """One keying error in ``name`` (never the first letter), chosen by three uniforms."""
    if len(name) < 2:
        return name + _LOWER[int(w * 26)]
    i = 1 + int(u * (len(name) - 1))
    op = int(v * 4)
    if op == 1 and len(name) >= 3:
        return name[:i] + name[i + 1 :]
    if op == 2:
        return name[:i] + name[i] + name[i:]
    if op == 3 and i < len(name) - 1 and name[i] != name[i + 1]:
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    old = name[i]
    letter = _LOWER[int(w * 25)]
    if letter == old.lower():
        letter = "z" if letter != "z" else "y"
    if old.isupper():
        letter = letter.upper()
    return name[:i] + letter + name[i + 1 :]


def _ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dt = days.astype("datetime64[D]")
    years = dt.astype("datetime64[Y]")
    months = dt.astype("datetime64[M]")
    day = (dt - months).astype(np.int64) + 1
    month = (months - years).astype(np.int64) + 1
    return years.astype(np.int64) + 1970, month, day


def swap_day_month(days: np.ndarray) -> np.ndarray:
    """Dates with day and month exchanged (valid only when the day is 12 or less)."""
    year, month, day = _ymd(days)
    text = np.char.add(
        np.char.add(year.astype(str), "-"),
        np.char.add(
            np.char.add(np.char.zfill(day.astype(str), 2), "-"), np.char.zfill(month.astype(str), 2)
        ),
    )
    return text.astype("datetime64[D]").astype(np.int64)


def corrupt(
    rng: np.random.Generator,
    pop: Population,
    config: SynthConfig,
    person: np.ndarray,
    day: np.ndarray,
    fields: frozenset[str],
    *,
    prop: np.ndarray | None = None,
    nhs_rate: float = 1.0,
    nhs_is_error: bool = False,
) -> Identity:
    """Write each row's identity as a fallible service would.

    ``day`` is the date the record describes (the surname and address in force then).
    ``fields`` names what the source holds: given_name, middle_name, family_name,
    date_of_birth, sex, postcode, nhs_number. ``prop`` fixes the address (a property record)
    instead of looking it up, so no old-address error is possible. ``nhs_rate`` is the share of
    rows with an NHS number; when ``nhs_is_error`` a blank one is logged as ``nhs_number_missing``.
    """
    names = name_tables()
    n = len(person)
    errors: list[tuple[np.ndarray, str]] = []
    eligible: dict[str, int] = {}

    def draw(mask: np.ndarray, rate: float, code: str) -> np.ndarray:
        hit = mask & (rng.random(n) < rate)
        eligible[code] = int(mask.sum())
        errors.append((np.flatnonzero(hit), code))
        return hit

    every = np.ones(n, dtype=bool)
    given_idx = pop.given[person]
    given = names.given[given_idx].copy()
    if "given_name" in fields:
        nick = draw(names.has_nickname[given_idx], config.nickname_rate, "nickname")
        for row in np.flatnonzero(nick):
            options = names.nickname_options[given_idx[row]]
            given[row] = options[int(rng.integers(0, len(options)))]
        hit = draw(every, config.typo_rate, "typo_given_name")
        rows = np.flatnonzero(hit)
        u = rng.random((len(rows), 3))
        for k, row in enumerate(rows):
            given[row] = typo(given[row], *u[k])
    family = names.surnames[pop.surname_at(person, day)].copy()
    if "family_name" in fields:
        hit = draw(every, config.typo_rate, "typo_family_name")
        rows = np.flatnonzero(hit)
        u = rng.random((len(rows), 3))
        for k, row in enumerate(rows):
            family[row] = typo(family[row], *u[k])
    middle_idx = pop.middle[person]
    middle = np.where(middle_idx >= 0, names.given[np.maximum(middle_idx, 0)], "")

    # Missing fields: one of those the source holds, per hit record.
    blankable = [f for f in ("date_of_birth", "postcode", "sex") if f in fields]
    blank_dob = np.zeros(n, dtype=bool)
    blank_pc = np.zeros(n, dtype=bool)
    blank_sex = np.zeros(n, dtype=bool)
    if blankable:
        hit = rng.random(n) < config.missing_field_rate
        which = rng.integers(0, len(blankable), n)
        for k, name in enumerate(blankable):
            mask = hit & (which == k)
            errors.append((np.flatnonzero(mask), f"missing_{name}"))
            {"date_of_birth": blank_dob, "postcode": blank_pc, "sex": blank_sex}[name][:] = mask
        eligible["missing_field"] = n

    dob = pop.dob[person].copy()
    if "date_of_birth" in fields:
        _, month, dom = _ymd(dob)
        swappable = (dom <= 12) & (dom != month) & ~blank_dob
        hit = draw(swappable, config.dob_swap_rate, "dob_day_month_swap")
        if hit.any():
            dob[hit] = swap_day_month(dob[hit])
        dob[blank_dob] = MISSING_DAY

    sex = pop.female[person].astype(np.int8)
    sex[blank_sex] = -1

    if prop is None:
        moved = (pop.prop1[person] >= 0) & (day >= pop.move_day[person])
        hit = draw(moved, config.old_address_rate, "old_address")
        prop = np.where(moved & ~hit, pop.prop1[person], pop.prop0[person])

    nhs = pop.nhs[person].copy() if "nhs_number" in fields else np.zeros(n, dtype=np.int64)
    if "nhs_number" in fields and nhs_rate < 1.0:
        absent = rng.random(n) >= nhs_rate
        if nhs_is_error:
            eligible["nhs_number_missing"] = n
            errors.append((np.flatnonzero(absent), "nhs_number_missing"))
        nhs[absent] = 0

    return Identity(
        given=given,
        middle=middle,
        family=family,
        dob=dob,
        sex=sex,
        prop=prop,
        postcode_blank=blank_pc,
        nhs=nhs,
        errors=errors,
        eligible=eligible,
    )
