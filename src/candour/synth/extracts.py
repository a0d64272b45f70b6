"""The six service extracts: their ``sources.yaml`` entries and how each one writes its rows.

Each source has its own column names, date formats and quirks, as real extracts do:

- ``gp_registrations``: upper-case headers, ``dd/mm/yyyy``, NHS number spaced ``3 3 4``, address
  split over three lines, middle names, a property reference.
- ``ae_attendances``: snake_case headers, ISO dates, single-line address, diagnosis category.
- ``social_care_contacts``: semicolon-delimited, CRLF line ends, ``dd-Mon-yyyy`` dates,
  ``Male/Female/Unknown``, NHS number only sometimes.
- ``fire_home_safety_visits``: UTF-8 with a byte-order mark, headers with spaces, a title,
  house number and street in separate columns, no sex.
- ``police_incidents``: surnames in upper case, compact ``yyyymmdd`` birth dates, postcodes
  without their space.
- ``council_tax_housing``: one row per occupant per property, property-level values repeated
  on every occupant row, ``dd-mm-yyyy`` dates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

import numpy as np

from candour.sources.spec import Attribute, CsvDialect, DateColumn, Identity, Source
from candour.synth.config import SynthConfig
from candour.synth.corruption import MISSING_DAY, corrupt
from candour.synth.corruption import Identity as Written
from candour.synth.effects import (
    AE_CATEGORIES,
    COMPLAINT_TYPES,
    POLICE_ROLES,
    POLICE_TYPES,
    SC_REASONS,
    VISIT_TYPES,
    Events,
)
from candour.synth.places import COUNTY, TOWNS
from candour.synth.population import (
    HMO_TENANT,
    LICENSED_HMO,
    NEVER,
    UNLICENSED_HMO,
    Population,
)

_TABLE_FROM = date(1890, 1, 1)
_TABLE_TO = date(2031, 1, 1)
_TABLE_BASE = (_TABLE_FROM - date(1970, 1, 1)).days


@lru_cache(maxsize=16)
def _date_table(fmt: str) -> np.ndarray:
    # Formatting dates by lookup is ~50x faster than strftime per row; the last slot is blank.
    days = (_TABLE_TO - _TABLE_FROM).days
    texts = [(_TABLE_FROM + timedelta(days=k)).strftime(fmt) for k in range(days)]
    return np.array([*texts, ""], dtype=object)


def format_dates(days: np.ndarray, fmt: str) -> np.ndarray:
    """Day numbers as text in a strptime/strftime ``fmt``; missing days become ''."""
    table = _date_table(fmt)
    index = np.asarray(days, dtype=np.int64) - _TABLE_BASE
    bad = (days == MISSING_DAY) | (index < 0) | (index >= len(table) - 1)
    return table[np.where(bad, len(table) - 1, index)]


def _text(values: np.ndarray) -> np.ndarray:
    return np.asarray(values).astype(str).astype(object)


def _blank_where(values: np.ndarray, blank: np.ndarray) -> np.ndarray:
    out = values.copy()
    out[blank] = ""
    return out


@dataclass
class Rows:
    """One source's rows for one chunk, before shuffling and record ids."""

    columns: dict[str, np.ndarray]
    person: np.ndarray
    duplicate: np.ndarray
    written: Written
    extra_errors: list[tuple[np.ndarray, str]] = field(default_factory=list)


@dataclass(frozen=True)
class SourceDef:
    """A source: its ``sources.yaml`` entry, record-id pattern and row builder."""

    spec: Source
    id_prefix: str
    build: Callable[[np.random.Generator, Population, Events, SynthConfig], Rows]
    bom: bool = False
    line_end: str = "\n"

    @property
    def header(self) -> list[str]:
        """The CSV header (the record id column first)."""
        return [self.spec.record_id or "id", *self.columns]

    @property
    def columns(self) -> list[str]:
        """Columns after the record id, in file order."""
        return _COLUMNS[self.spec.name]

    @property
    def file(self) -> str:
        """The extract's file name inside the county directory."""
        return self.spec.files[0]


def _with_duplicates(
    rng: np.random.Generator, rate: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices with a share re-entered: (index into the originals, is-duplicate flag)."""
    dups = np.flatnonzero(rng.random(n) < rate)
    index = np.concatenate([np.arange(n), dups])
    return index, np.concatenate([np.zeros(n, bool), np.ones(len(dups), bool)])


def _sex_codes(sex: np.ndarray, female: str, male: str, blank: str) -> np.ndarray:
    return np.select([sex == 1, sex == 0], [female, male], blank).astype(object)


def _town_index(towns: np.ndarray) -> np.ndarray:
    lookup = {t: i for i, t in enumerate(TOWNS)}
    return np.array([lookup[t] for t in towns], dtype=np.int64)


# --- GP registrations ------------------------------------------------------------------------


def _gp(rng: np.random.Generator, pop: Population, ev: Events, cfg: SynthConfig) -> Rows:
    start, end = pop.window_start, pop.window_end
    present = np.flatnonzero(pop.present_to > pop.present_from)
    n0 = len(present)
    registered = np.where(
        pop.dob[present] >= start - 60,
        pop.dob[present] + rng.integers(3, 60, n0),
        np.where(
            pop.arrival[present] > start,
            pop.arrival[present] + rng.integers(0, 90, n0),
            np.maximum(pop.dob[present] + 20, start - rng.integers(1, 20 * 365, n0)),
        ),
    )
    registered = np.minimum(registered, pop.present_to[present] - 1)
    index, dup = _with_duplicates(rng, cfg.duplicates.gp_registrations, n0)
    person = present[index]
    # A duplicate registration is a later, separate sign-up at the same practice.
    reg = registered[index] + np.where(dup, rng.integers(30, 400, len(index)), 0)
    last_day = np.minimum(pop.present_to[person], end) - 1
    reg = np.minimum(reg, last_day)
    w = corrupt(
        rng,
        pop,
        cfg,
        person,
        last_day,
        frozenset(
            {
                "given_name",
                "middle_name",
                "family_name",
                "date_of_birth",
                "sex",
                "postcode",
                "nhs_number",
            }
        ),
    )
    died = pop.death[person] < end
    left = (pop.departure[person] < end) & ~died
    dereg = np.where(died, pop.death[person], np.where(left, pop.departure[person], MISSING_DAY))
    places = pop.places
    nhs = np.array(
        [f"{x // 10**7:03d} {x // 10**4 % 1000:03d} {x % 10**4:04d}" for x in w.nhs], dtype=object
    )
    town = places.town[w.prop]
    practice = np.array(
        [f"G8{1000 + t * 10 + p % 3}" for t, p in zip(_town_index(town), w.prop, strict=True)],
        dtype=object,
    )
    cols = {
        "NHS_NUMBER": nhs,
        "SURNAME": w.family,
        "FORENAME": w.given,
        "MIDDLE_NAMES": w.middle,
        "DATE_OF_BIRTH": format_dates(w.dob, "%d/%m/%Y"),
        "GENDER": _sex_codes(w.sex, "F", "M", "U"),
        "ADDRESS_LINE_1": places.line1[w.prop],
        "ADDRESS_LINE_2": town,
        "ADDRESS_LINE_3": np.full(len(person), COUNTY, dtype=object),
        "POSTCODE": _blank_where(places.postcode[w.prop], w.postcode_blank),
        "PROPERTY_REF": _text(places.property_id[w.prop]),
        "PRACTICE_CODE": practice,
        "REGISTRATION_DATE": format_dates(reg, "%d/%m/%Y"),
        "DEREGISTRATION_DATE": format_dates(dereg, "%d/%m/%Y"),
        "DEREGISTRATION_REASON": np.select(
            [died, left], ["Death", "Left practice area"], ""
        ).astype(object),
    }
    return Rows(cols, person, dup, w)


# --- A&E attendances -------------------------------------------------------------------------


def _ae(rng: np.random.Generator, pop: Population, ev: Events, cfg: SynthConfig) -> Rows:
    index, dup = _with_duplicates(rng, cfg.duplicates.ae_attendances, len(ev.ae.person))
    person, day, code = ev.ae.person[index], ev.ae.day[index], ev.ae.code[index]
    w = corrupt(
        rng,
        pop,
        cfg,
        person,
        day,
        frozenset({"given_name", "family_name", "date_of_birth", "sex", "postcode", "nhs_number"}),
        nhs_rate=1 - cfg.ae_nhs_number_missing_rate,
        nhs_is_error=True,
    )
    places = pop.places
    minutes = rng.integers(0, 24 * 60, len(person))
    # A duplicate is the same attendance keyed twice: same date, time and diagnosis.
    minutes = minutes[np.concatenate([np.arange(len(ev.ae.person)), index[len(ev.ae.person) :]])]
    serious = np.isin(code, [0, 3])
    ambulance = rng.random(len(person)) < np.where(serious, 0.6, 0.2)
    admitted = rng.random(len(person)) < np.where(serious, 0.35, 0.12)
    cols = {
        "nhs_number": np.where(w.nhs > 0, _text(w.nhs), "").astype(object),
        "forename": w.given,
        "surname": w.family,
        "date_of_birth": format_dates(w.dob, "%Y-%m-%d"),
        "sex": _sex_codes(w.sex, "female", "male", ""),
        "address": np.array(
            [f"{a}, {t}" for a, t in zip(places.line1[w.prop], places.town[w.prop], strict=True)],
            dtype=object,
        ),
        "postcode": _blank_where(places.postcode[w.prop], w.postcode_blank),
        "arrival_date": format_dates(day, "%Y-%m-%d"),
        "arrival_time": np.array([f"{m // 60:02d}:{m % 60:02d}" for m in minutes], dtype=object),
        "age_at_arrival": _text(pop.age_at(day, person)),
        "diagnosis_category": np.array(AE_CATEGORIES, dtype=object)[code],
        "arrival_mode": np.where(ambulance, "ambulance", "walk_in").astype(object),
        "disposal": np.where(admitted, "admitted", "discharged").astype(object),
    }
    return Rows(cols, person, dup, w)


# --- social care contacts --------------------------------------------------------------------


def _sc(rng: np.random.Generator, pop: Population, ev: Events, cfg: SynthConfig) -> Rows:
    index, dup = _with_duplicates(
        rng, cfg.duplicates.social_care_contacts, len(ev.social_care.person)
    )
    person, day = ev.social_care.person[index], ev.social_care.day[index]
    code = ev.social_care.code[index]
    w = corrupt(
        rng,
        pop,
        cfg,
        person,
        day,
        frozenset({"given_name", "family_name", "date_of_birth", "sex", "postcode", "nhs_number"}),
        nhs_rate=cfg.social_care_nhs_number_rate,
    )
    places = pop.places
    child = pop.age_at(day, person) < 18
    hh_global = pop.chunk * 100_000 + pop.household[person]
    case = np.where(
        child,
        np.char.add("CF", _text(hh_global).astype(str)),
        np.char.add("CA", _text(pop.global_id[person]).astype(str)),
    ).astype(object)
    outcome = np.array(
        ["No further action", "Information and advice", "Assessment", "Referred to partner"],
        dtype=object,
    )[rng.integers(0, 4, len(person))]
    cols = {
        "CaseRef": case,
        "Service": np.where(child, "Children", "Adults").astype(object),
        "FirstName": w.given,
        "LastName": w.family,
        "DOB": format_dates(w.dob, "%d-%b-%Y"),
        "Gender": _sex_codes(w.sex, "Female", "Male", "Unknown"),
        "Address": np.array(
            [
                f"{a}, {t}, {COUNTY}"
                for a, t in zip(places.line1[w.prop], places.town[w.prop], strict=True)
            ],
            dtype=object,
        ),
        "PostCode": _blank_where(places.postcode[w.prop], w.postcode_blank),
        "NHSNumber": np.where(w.nhs > 0, _text(w.nhs), "").astype(object),
        "ContactDate": format_dates(day, "%d-%b-%Y"),
        "ContactReason": np.array(SC_REASONS, dtype=object)[code],
        "Outcome": outcome,
    }
    return Rows(cols, person, dup, w)


# --- fire and rescue home safety visits ------------------------------------------------------


def _fire(rng: np.random.Generator, pop: Population, ev: Events, cfg: SynthConfig) -> Rows:
    index, dup = _with_duplicates(rng, cfg.duplicates.fire_home_safety_visits, len(ev.fire.person))
    person, day, code = ev.fire.person[index], ev.fire.day[index], ev.fire.code[index]
    risk = ev.fire.extra["risk"][index]
    w = corrupt(
        rng,
        pop,
        cfg,
        person,
        day,
        frozenset({"given_name", "family_name", "date_of_birth", "postcode"}),
    )
    places = pop.places
    female = pop.female[person]
    age = pop.age_at(day, person)
    u = rng.random(len(person))
    title = np.where(
        female, np.where(u < 0.6, "Mrs", np.where(u < 0.85, "Ms", "Miss")), "Mr"
    ).astype(object)
    safe_and_well = code == 0
    referral = np.array(
        ["Partner agency", "Self referral", "Fire crew", "GP practice"], dtype=object
    )[rng.integers(0, 4, len(person))]
    cols = {
        "Title": title,
        "First Name": w.given,
        "Last Name": w.family,
        "Date of Birth": format_dates(w.dob, "%d/%m/%Y"),
        "House Number": places.house[w.prop],
        "Street": places.street[w.prop],
        "Town": places.town[w.prop],
        "Post Code": _blank_where(places.postcode[w.prop], w.postcode_blank),
        "visit_date": format_dates(day, "%d/%m/%Y"),
        "Visit Type": np.array(VISIT_TYPES, dtype=object)[code],
        "Referral Source": referral,
        "Risk Score": _text(risk),
        "Smoke Alarms Fitted": _text(rng.integers(0, 3, len(person))),
        "Falls Advice Given": np.where(safe_and_well & (age >= 60), "Y", "N").astype(object),
    }
    return Rows(cols, person, dup, w)


# --- police incidents ------------------------------------------------------------------------


def _police(rng: np.random.Generator, pop: Population, ev: Events, cfg: SynthConfig) -> Rows:
    index, dup = _with_duplicates(rng, cfg.duplicates.police_incidents, len(ev.police.person))
    person, day, code = ev.police.person[index], ev.police.day[index], ev.police.code[index]
    role = ev.police.extra["role"][index]
    w = corrupt(
        rng,
        pop,
        cfg,
        person,
        day,
        frozenset({"given_name", "family_name", "date_of_birth", "sex", "postcode"}),
    )
    places = pop.places
    minutes = rng.integers(0, 24 * 60, len(person))
    incident = pop.chunk * 1_000_000 + np.arange(len(person))
    # A duplicate is the same person added twice to the same incident.
    n0 = len(ev.police.person)
    incident = np.concatenate([incident[:n0], incident[index[n0:]]])
    minutes = np.concatenate([minutes[:n0], minutes[index[n0:]]])
    year = (day.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970) % 100
    cols = {
        "INCIDENT_NO": np.array(
            [f"{y:02d}/{i:09d}" for y, i in zip(year, incident, strict=True)], dtype=object
        ),
        "SURNAME": np.array([s.upper() for s in w.family], dtype=object),
        "FORENAME": w.given,
        "DOB": format_dates(w.dob, "%Y%m%d"),
        "SEX": _sex_codes(w.sex, "F", "M", ""),
        "ADDRESS": np.array(
            [
                f"{a}, {t}".upper()
                for a, t in zip(places.line1[w.prop], places.town[w.prop], strict=True)
            ],
            dtype=object,
        ),
        "POSTCODE": _blank_where(
            np.array([p.replace(" ", "") for p in places.postcode[w.prop]], dtype=object),
            w.postcode_blank,
        ),
        "OCCURRED_DATE": format_dates(day, "%d/%m/%Y"),
        "OCCURRED_TIME": np.array([f"{m // 60:02d}{m % 60:02d}" for m in minutes], dtype=object),
        "INCIDENT_TYPE": np.array(POLICE_TYPES, dtype=object)[code],
        "PERSON_ROLE": np.array(POLICE_ROLES, dtype=object)[role],
    }
    return Rows(cols, person, dup, w)


# --- council tax and housing -----------------------------------------------------------------


def _ctax(rng: np.random.Generator, pop: Population, ev: Events, cfg: SynthConfig) -> Rows:
    start, end = pop.window_start, pop.window_end
    age_start = (start - pop.dob) / 365.2425
    leaves = np.minimum(pop.death, pop.departure)
    adult = age_start >= 18
    # Rows: each adult's occupancy of their first home, then of the home they moved to.
    first = np.flatnonzero(adult & (pop.occupancy_start < end) & (leaves > start))
    first_end = np.minimum(np.minimum(pop.move_day[first], leaves[first]), NEVER)
    moved = first[(pop.move_day[first] < leaves[first]) & (pop.prop1[first] >= 0)]
    person0 = np.concatenate([first, moved])
    prop_row = np.concatenate([pop.prop0[first], pop.prop1[moved]])
    row_start = np.concatenate([pop.occupancy_start[first], pop.move_day[moved]])
    row_end = np.concatenate([first_end, leaves[moved]])
    row_end = np.where(row_end >= end, NEVER, row_end)
    # Liable: the household reference person (its first adult); HMO tenants are not liable.
    hh = pop.household[person0]
    _, first_of_hh = np.unique(hh, return_index=True)
    liable0 = np.zeros(len(person0), bool)
    liable0[first_of_hh] = True
    liable0 &= pop.hh_type[hh] != HMO_TENANT

    index, dup = _with_duplicates(rng, cfg.duplicates.council_tax_housing, len(person0))
    person, prop = person0[index], prop_row[index]
    r_start, r_end, liable = row_start[index], row_end[index], liable0[index]
    # The name is kept up to date, so use the one in force at the row's last day.
    name_day = np.minimum(r_end, end) - 1
    w = corrupt(
        rng,
        pop,
        cfg,
        person,
        name_day,
        frozenset({"given_name", "family_name", "date_of_birth", "postcode"}),
        prop=prop,
    )

    # Property-level facts, repeated on each occupant row.
    places = pop.places
    kind = pop.property_kind
    current = row_end[: len(person0)] == NEVER
    adults_now = np.bincount(prop_row[current], minlength=len(kind))
    spd = adults_now == 1
    spd |= (adults_now == 2) & (rng.random(len(kind)) < 0.03)
    unlic = kind == UNLICENSED_HMO
    spd[unlic] = rng.random(int(unlic.sum())) < cfg.hmo_single_person_discount_rate
    spd[kind == LICENSED_HMO] = False
    licence = np.full(len(kind), "", dtype=object)
    lic = np.flatnonzero(kind == LICENSED_HMO)
    shown = rng.random(len(lic)) >= cfg.licensed_hmo_licence_missing_rate
    licence[lic[shown]] = np.array(
        [f"HMO/{2019 + int(k % 5)}/{pop.places.property_id[k] % 100000:05d}" for k in lic[shown]],
        dtype=object,
    )
    account = np.array([f"{pid % 10**8:08d}" for pid in places.property_id], dtype=object)
    last_type = np.where(
        ev.last_complaint >= 0,
        np.array(COMPLAINT_TYPES, dtype=object)[np.maximum(ev.last_complaint, 0)],
        "",
    ).astype(object)
    title = np.where(pop.female[person], "Ms", "Mr").astype(object)
    cols = {
        "property_ref": _text(places.property_id[prop]),
        "account_ref": account[prop],
        "band": places.band[prop],
        "address_1": places.line1[prop],
        "address_2": places.town[prop],
        "postcode": _blank_where(places.postcode[prop], w.postcode_blank),
        "title": title,
        "first_name": w.given,
        "last_name": w.family,
        "date_of_birth": format_dates(w.dob, "%d-%m-%Y"),
        "liable_party": np.where(liable, "Y", "N").astype(object),
        "occupancy_start": format_dates(r_start, "%d-%m-%Y"),
        "occupancy_end": format_dates(np.where(r_end == NEVER, MISSING_DAY, r_end), "%d-%m-%Y"),
        "single_person_discount": np.where(spd[prop], "Y", "N").astype(object),
        "hmo_licence_no": licence[prop],
        "complaints_12m": _text(ev.complaints_12m[prop]),
        "last_complaint_type": last_type[prop],
    }
    return Rows(cols, person, dup, w)


_COLUMNS: dict[str, list[str]] = {}


def _attr(column: str, kind: str, fmt: str | None = None) -> Attribute:
    return Attribute.model_validate({"column": column, "type": kind, "format": fmt})


def _source_defs() -> list[SourceDef]:
    gp = Source(
        name="gp_registrations",
        title="GP practice registrations",
        controller="Wealdshire and Downs Integrated Care Board",
        files=["gp_registrations.csv"],
        record_id="PATIENT_REG_ID",
        identity=Identity(
            given_name="FORENAME",
            middle_name="MIDDLE_NAMES",
            family_name="SURNAME",
            date_of_birth=DateColumn(column="DATE_OF_BIRTH", format="%d/%m/%Y"),
            sex="GENDER",
            postcode="POSTCODE",
            address=["ADDRESS_LINE_1", "ADDRESS_LINE_2", "ADDRESS_LINE_3"],
            nhs_number="NHS_NUMBER",
        ),
        attributes={
            "property_ref": _attr("PROPERTY_REF", "text"),
            "practice_code": _attr("PRACTICE_CODE", "category"),
            "registration_date": _attr("REGISTRATION_DATE", "date", "%d/%m/%Y"),
            "deregistration_date": _attr("DEREGISTRATION_DATE", "date", "%d/%m/%Y"),
            "deregistration_reason": _attr("DEREGISTRATION_REASON", "category"),
        },
        event_date="registration_date",
        retention="For the patient's lifetime and 10 years after death (NHS Records "
        "Management Code of Practice 2021).",
    )
    ae = Source(
        name="ae_attendances",
        title="Emergency department (A&E) attendances",
        controller="Wealdshire Hospitals NHS Foundation Trust",
        files=["ae_attendances.csv"],
        record_id="attendance_id",
        identity=Identity(
            given_name="forename",
            family_name="surname",
            date_of_birth=DateColumn(column="date_of_birth", format="%Y-%m-%d"),
            sex="sex",
            postcode="postcode",
            address="address",
            nhs_number="nhs_number",
        ),
        attributes={
            "arrival_date": _attr("arrival_date", "date", "%Y-%m-%d"),
            "arrival_time": _attr("arrival_time", "text"),
            "age_at_arrival": _attr("age_at_arrival", "int"),
            "diagnosis_category": _attr("diagnosis_category", "category"),
            "arrival_mode": _attr("arrival_mode", "category"),
            "disposal": _attr("disposal", "category"),
        },
        event_date="arrival_date",
        retention="8 years after the attendance (NHS Records Management Code of Practice).",
    )
    sc = Source(
        name="social_care_contacts",
        title="Adult and children's social care contacts",
        controller="Wealdshire County Council",
        files=["social_care_contacts.csv"],
        csv=CsvDialect(delimiter=";", encoding="utf-8"),
        record_id="ContactID",
        identity=Identity(
            given_name="FirstName",
            family_name="LastName",
            date_of_birth=DateColumn(column="DOB", format="%d-%b-%Y"),
            sex="Gender",
            postcode="PostCode",
            address="Address",
            nhs_number="NHSNumber",
        ),
        attributes={
            "case_ref": _attr("CaseRef", "text"),
            "service": _attr("Service", "category"),
            "contact_date": _attr("ContactDate", "date", "%d-%b-%Y"),
            "contact_reason": _attr("ContactReason", "category"),
            "outcome": _attr("Outcome", "category"),
        },
        event_date="contact_date",
        retention="Adults: 6 years after the case closes; children: until the 25th birthday "
        "(75 years for looked-after children).",
    )
    fire = Source(
        name="fire_home_safety_visits",
        title="Fire and rescue home safety (Safe and Well) visits",
        controller="Wealdshire Fire and Rescue Service",
        files=["fire_home_safety_visits.csv"],
        csv=CsvDialect(delimiter=",", encoding="utf-8-sig"),
        record_id="VisitRef",
        identity=Identity(
            given_name="First Name",
            family_name="Last Name",
            date_of_birth=DateColumn(column="Date of Birth", format="%d/%m/%Y"),
            postcode="Post Code",
            address=["House Number", "Street", "Town"],
        ),
        attributes={
            "visit_date": _attr("visit_date", "date", "%d/%m/%Y"),
            "visit_type": _attr("Visit Type", "category"),
            "referral_source": _attr("Referral Source", "category"),
            "risk_score": _attr("Risk Score", "int"),
            "smoke_alarms_fitted": _attr("Smoke Alarms Fitted", "int"),
            "falls_advice_given": _attr("Falls Advice Given", "category"),
        },
        event_date="visit_date",
        retention="6 years after the visit.",
    )
    police = Source(
        name="police_incidents",
        title="Police incidents involving people",
        controller="Wealdshire Police",
        files=["police_incidents.csv"],
        record_id="PERSON_INCIDENT_ID",
        identity=Identity(
            given_name="FORENAME",
            family_name="SURNAME",
            date_of_birth=DateColumn(column="DOB", format="%Y%m%d"),
            sex="SEX",
            postcode="POSTCODE",
            address="ADDRESS",
        ),
        attributes={
            "incident_no": _attr("INCIDENT_NO", "text"),
            "occurred_date": _attr("OCCURRED_DATE", "date", "%d/%m/%Y"),
            "occurred_time": _attr("OCCURRED_TIME", "text"),
            "incident_type": _attr("INCIDENT_TYPE", "category"),
            "person_role": _attr("PERSON_ROLE", "category"),
        },
        event_date="occurred_date",
        retention="Reviewed after 6 years under the College of Policing guidance on the "
        "management of police information (MoPI).",
    )
    ctax = Source(
        name="council_tax_housing",
        title="Council tax and housing: properties and their occupants",
        controller="Wealdshire Borough Councils (joint revenues and benefits service)",
        files=["council_tax_housing.csv"],
        record_id="occupant_row_id",
        identity=Identity(
            given_name="first_name",
            family_name="last_name",
            date_of_birth=DateColumn(column="date_of_birth", format="%d-%m-%Y"),
            postcode="postcode",
            address=["address_1", "address_2"],
        ),
        attributes={
            "property_ref": _attr("property_ref", "text"),
            "account_ref": _attr("account_ref", "text"),
            "band": _attr("band", "category"),
            "liable_party": _attr("liable_party", "category"),
            "occupancy_start": _attr("occupancy_start", "date", "%d-%m-%Y"),
            "occupancy_end": _attr("occupancy_end", "date", "%d-%m-%Y"),
            "single_person_discount": _attr("single_person_discount", "category"),
            "hmo_licence_no": _attr("hmo_licence_no", "text"),
            "complaints_12m": _attr("complaints_12m", "int"),
            "last_complaint_type": _attr("last_complaint_type", "category"),
        },
        event_date="occupancy_start",
        retention="6 years after the account closes (Local Government Finance Act 1992 "
        "recovery period).",
    )
    return [
        SourceDef(gp, "R", _gp),
        SourceDef(ae, "AE", _ae),
        SourceDef(sc, "SC", _sc, line_end="\r\n"),
        SourceDef(fire, "HSV", _fire, bom=True),
        SourceDef(police, "", _police),
        SourceDef(ctax, "OCC", _ctax),
    ]


_COLUMNS.update(
    {
        "gp_registrations": [
            "NHS_NUMBER",
            "SURNAME",
            "FORENAME",
            "MIDDLE_NAMES",
            "DATE_OF_BIRTH",
            "GENDER",
            "ADDRESS_LINE_1",
            "ADDRESS_LINE_2",
            "ADDRESS_LINE_3",
            "POSTCODE",
            "PROPERTY_REF",
            "PRACTICE_CODE",
            "REGISTRATION_DATE",
            "DEREGISTRATION_DATE",
            "DEREGISTRATION_REASON",
        ],
        "ae_attendances": [
            "nhs_number",
            "forename",
            "surname",
            "date_of_birth",
            "sex",
            "address",
            "postcode",
            "arrival_date",
            "arrival_time",
            "age_at_arrival",
            "diagnosis_category",
            "arrival_mode",
            "disposal",
        ],
        "social_care_contacts": [
            "CaseRef",
            "Service",
            "FirstName",
            "LastName",
            "DOB",
            "Gender",
            "Address",
            "PostCode",
            "NHSNumber",
            "ContactDate",
            "ContactReason",
            "Outcome",
        ],
        "fire_home_safety_visits": [
            "Title",
            "First Name",
            "Last Name",
            "Date of Birth",
            "House Number",
            "Street",
            "Town",
            "Post Code",
            "visit_date",
            "Visit Type",
            "Referral Source",
            "Risk Score",
            "Smoke Alarms Fitted",
            "Falls Advice Given",
        ],
        "police_incidents": [
            "INCIDENT_NO",
            "SURNAME",
            "FORENAME",
            "DOB",
            "SEX",
            "ADDRESS",
            "POSTCODE",
            "OCCURRED_DATE",
            "OCCURRED_TIME",
            "INCIDENT_TYPE",
            "PERSON_ROLE",
        ],
        "council_tax_housing": [
            "property_ref",
            "account_ref",
            "band",
            "address_1",
            "address_2",
            "postcode",
            "title",
            "first_name",
            "last_name",
            "date_of_birth",
            "liable_party",
            "occupancy_start",
            "occupancy_end",
            "single_person_discount",
            "hmo_licence_no",
            "complaints_12m",
            "last_complaint_type",
        ],
    }
)

SOURCES: tuple[SourceDef, ...] = tuple(_source_defs())


def record_ids(source: SourceDef, chunk: int, n: int) -> list[str]:
    """Record ids for ``n`` shuffled rows of one chunk: unique within the source."""
    if n >= 1_000_000:
        raise ValueError("too many rows in one chunk for its record-id range")
    base = chunk * 1_000_000
    if source.spec.name == "police_incidents":
        return [str(10_000_000_000 + base + i) for i in range(n)]
    return [f"{source.id_prefix}{base + i:010d}" for i in range(n)]
