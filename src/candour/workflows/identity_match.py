"""Matching a resident's verified identity to exactly one person, or to nobody.

The identity provider vouches for a name, a date of birth and a postcode. Before the portal
shows anyone anything, :class:`VaultMatcher` must find exactly one person they belong to, with
high confidence (invariant 6). It works in four steps:

1. **Standardise** the claims with the very rules ingest used for the vault's values
   (:mod:`candour.sources.standardise`), so "O'Brien" and "OBRIEN" are the same name.
2. **Find candidates**: the records whose date of birth is exactly the claimed one. The vault
   has no index of dates of birth, so the matcher keeps one in memory: keyed HMACs of each
   record's date (never the date itself) -> record keys, built from one audited read of the
   vault and rebuilt when a new ingest or link run changes what the vault and index hold.
3. **Score** each candidate against the claims with the latest link run's trained model: the
   same comparison levels (exact, nickname, Jaro-Winkler bands, postcode, sector, district) and
   their m and u probabilities, summed as match weights from the model's prior. Only the
   candidates are decrypted, in an audited read that states why.
4. **Decide**: exactly one person (through the person index) must have a record scoring at
   least :data:`CONFIDENT` *and* holding exactly the claimed postcode, and no other person (or
   unlinked record) may score even :data:`AMBIGUOUS`. Anything else (nobody, two people, a
   failure of any kind) is ``None``: the resident sees the safe page and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
from sqlalchemy import func, select

from candour.config import Settings
from candour.home import Home, read_secret
from candour.store import IngestBatch, transaction
from candour.store.linkage import LinkModel, LinkRun, PersonIndexEntry

logger = logging.getLogger(__name__)

ACTOR = "resident-sign-in"
CONFIDENT = 0.999
"""A person is confirmed only when one of their records scores at least this."""
AMBIGUOUS = 0.5
"""Any other person or unlinked record scoring this much makes the match ambiguous."""
_DOB_LABEL = b"candour/web/identity-match/date-of-birth/v1\n"
# m or u probabilities of exactly 0 (levels never seen in training) would make infinite
# weights; clamping keeps an unseen disagreement strongly negative but finite.
_FLOOR = 1e-6
_JW = re.compile(r"jaro[- ]winkler.*?>=\s*([0-9.]+)", re.IGNORECASE)
_POSTCODE = re.compile(r"^([A-Z]{1,2})([0-9][A-Z0-9]?) ([0-9])([A-Z]{2})$")


@dataclass(frozen=True)
class Candidate:
    """The standardised values compared on both sides."""

    given_name: str | None
    middle_name: str | None
    family_name: str | None
    date_of_birth: str | None
    postcode: str | None


@dataclass(frozen=True)
class Score:
    """One candidate record's match weight and probability against the claims."""

    record_key: str
    weight: float
    probability: float
    postcode_agrees: bool


_local = threading.local()


def _jaro_winkler(a: str, b: str) -> float:
    # DuckDB's implementation: the one Splink's Jaro-Winkler levels used in training.
    connection: duckdb.DuckDBPyConnection | None = getattr(_local, "duckdb", None)
    if connection is None:
        connection = _local.duckdb = duckdb.connect(":memory:")
    row = connection.execute("SELECT jaro_winkler_similarity(?, ?)", [a, b]).fetchone()
    return float(row[0]) if row else 0.0


def _postcode_parts(postcode: str) -> dict[str, str] | None:
    found = _POSTCODE.match(postcode)
    if not found:
        return None
    area, district, sector_digit, _ = found.groups()
    return {
        "area": area,
        "district": area + district,
        "sector": f"{area}{district} {sector_digit}",
    }


def _level_applies(label: str, column: str, left: Candidate, right: Candidate) -> bool | None:
    """Whether a comparison level (known by its chart label) holds; None if it is unknown."""
    from candour.linkage.fields import name_groups

    text = label.lower()
    if text.startswith("all other"):
        return True
    if column in ("given_name", "middle_name", "family_name"):
        a, b = getattr(left, column), getattr(right, column)
        if text.startswith("exact match"):
            return a == b
        if "nickname" in text:
            return bool(set(name_groups(a)) & set(name_groups(b)))
        jw = _JW.search(label)
        if jw:
            return _jaro_winkler(a, b) >= float(jw.group(1))
        if "middle name" in text:
            return left.given_name == right.middle_name or left.middle_name == right.given_name
        if "swapped" in text:
            return left.given_name == right.family_name and left.family_name == right.given_name
        if "initial" in text:
            return a[:1] == b[:1]
        return None
    if column == "date_of_birth":
        if text.startswith("exact match"):
            return left.date_of_birth == right.date_of_birth
        return False  # candidates share the exact date, so the fuzzier levels never come first
    if column in ("location", "postcode"):
        a, b = left.postcode or "", right.postcode or ""
        if "address" in text:
            return False  # a verified identity carries a postcode, not an address line
        if text in ("same postcode", "exact match on postcode", "exact match on full postcode"):
            return a == b
        parts_a, parts_b = _postcode_parts(a), _postcode_parts(b)
        for part in ("sector", "district", "area"):
            if part in text:
                return bool(parts_a and parts_b and parts_a[part] == parts_b[part])
        return None
    return None


_NULLABLE = {
    "given_name": "given_name",
    "middle_name": "middle_name",
    "family_name": "family_name",
    "date_of_birth": "date_of_birth",
    "location": "postcode",
    "postcode": "postcode",
}


def score(model: dict[str, Any], claims: Candidate, record: Candidate) -> tuple[float, float]:
    """The match weight and probability of ``record`` against ``claims`` under ``model``.

    Only the comparisons a verified identity can take part in are scored (names, date of birth,
    postcode); the others (sex, NHS number, address) are treated as missing, which in a Fellegi
    and Sunter model adds no evidence either way.
    """
    prior = float(model.get("probability_two_random_records_match") or 0.0)
    prior = min(max(prior, _FLOOR), 1 - _FLOOR)
    weight = math.log2(prior / (1 - prior))
    for comparison in model.get("comparisons", []):
        column = str(comparison.get("output_column_name"))
        field = _NULLABLE.get(column)
        if field is None or getattr(claims, field) is None or getattr(record, field) is None:
            continue
        for level in comparison.get("comparison_levels", []):
            if level.get("is_null_level"):
                continue
            label = str(level.get("label_for_charts") or level.get("sql_condition") or "")
            if not _level_applies(label, column, claims, record):
                continue
            m = max(float(level.get("m_probability") or 0.0), _FLOOR)
            u = max(float(level.get("u_probability") or 0.0), _FLOOR)
            weight += math.log2(m / u)
            break
    probability = 1.0 / (1.0 + 2.0 ** (-weight)) if weight > -1000 else 0.0
    return weight, probability


def standardise_claims(
    given_names: str, family_name: str, birth_date: str, postcode: str | None
) -> Candidate:
    """The claims standardised exactly as ingest standardised the vault's values."""
    from candour.sources.standardise import standardise_value

    given = standardise_value("given_name", given_names) or ""
    first, _, rest = given.partition(" ")
    return Candidate(
        given_name=first or None,
        middle_name=rest or None,
        family_name=standardise_value("family_name", family_name),
        date_of_birth=birth_date,
        postcode=standardise_value("postcode", postcode) if postcode else None,
    )


class VaultMatcher:
    """An :class:`~candour.web.identity.IdentityMatcher` over the vault and the person index."""

    def __init__(
        self, settings: Settings, *, confident: float = CONFIDENT, ambiguous: float = AMBIGUOUS
    ) -> None:
        if not 0 < ambiguous < confident < 1:
            raise ValueError("need 0 < ambiguous < confident < 1")
        self.settings = settings
        self.confident = confident
        self.ambiguous = ambiguous
        self._lock = threading.Lock()
        self._stamp: tuple[Any, ...] | None = None
        self._index: dict[bytes, list[str]] = {}
        self._key: bytes | None = None

    # -- the date-of-birth index ----------------------------------------------------------

    def _digest(self, date_of_birth: str) -> bytes:
        if self._key is None:
            secret = read_secret(Home(self.settings.home).hmac_key)
            self._key = hmac.new(secret, _DOB_LABEL, hashlib.sha256).digest()
        return hmac.new(self._key, date_of_birth.encode(), hashlib.sha256).digest()

    def _current_stamp(self) -> tuple[Any, ...]:
        with transaction(self.settings) as session:
            run = session.scalar(select(func.max(LinkRun.id)))
            batches = session.execute(
                select(func.count(), func.max(IngestBatch.id)).where(IngestBatch.status == "done")
            ).one()
        return (run, int(batches[0]), batches[1])

    def _fresh_index(self) -> dict[bytes, list[str]]:
        # Callers hold the lock, so a sign-in arriving during a warm-up waits for that build
        # instead of starting a second full read of the vault.
        stamp = self._current_stamp()
        if stamp != self._stamp:
            self._index = self._build_index()
            self._stamp = stamp
        return self._index

    def warm(self) -> None:
        """Build the date-of-birth index now, so the first resident's sign-in does not wait.

        The web app calls this in a background thread at start-up (it reads the whole vault
        once, which takes minutes for a large county). Raises whatever the vault or store
        raise; the caller logs it, and the first sign-in simply tries again.
        """
        with self._lock:
            self._fresh_index()

    def _candidates(self, date_of_birth: str) -> list[str]:
        with self._lock:
            index = self._fresh_index()
            return list(index.get(self._digest(date_of_birth), ()))

    def _build_index(self) -> dict[bytes, list[str]]:
        from candour.vault import open_vault

        index: dict[bytes, list[str]] = {}
        vault = open_vault(self.settings)
        reason = "resident sign-in: index dates of birth (as keyed hashes) to find candidates"
        with vault.open_workspace(reason=reason, actor=ACTOR) as workspace:
            for record in workspace.identities():
                if record.date_of_birth and record.date_of_birth_valid:
                    index.setdefault(self._digest(record.date_of_birth), []).append(
                        record.record_key
                    )
        return index

    # -- matching -------------------------------------------------------------------------

    def _model(self) -> dict[str, Any]:
        with transaction(self.settings) as session:
            text = session.execute(
                select(LinkModel.model_json)
                .join(LinkRun, LinkRun.run_id == LinkModel.run_id)
                .order_by(LinkRun.id.desc())
                .limit(1)
            ).scalar()
        return json.loads(text) if text else {}

    def _records(self, keys: list[str]) -> list[tuple[str, Candidate]]:
        from candour.vault import open_vault

        vault = open_vault(self.settings)
        reason = f"resident sign-in: compare a verified identity with {len(keys)} candidates"
        with vault.open_workspace(reason=reason, actor=ACTOR) as workspace:
            return [
                (
                    r.record_key,
                    Candidate(r.given_name, r.middle_name, r.family_name, r.date_of_birth,
                              r.postcode),
                )
                for r in workspace.records(keys)
            ]

    def _persons(self, keys: Iterable[str]) -> dict[str, str]:
        wanted = sorted(set(keys))
        found: dict[str, str] = {}
        with transaction(self.settings) as session:
            for start in range(0, len(wanted), 500):
                rows = session.execute(
                    select(PersonIndexEntry.record_key, PersonIndexEntry.person_id).where(
                        PersonIndexEntry.record_key.in_(wanted[start : start + 500])
                    )
                )
                found.update({key: person for key, person in rows})
        return found

    def scores(self, claims: Candidate) -> list[Score]:
        """Every candidate record's score against standardised ``claims`` (best first)."""
        if not claims.date_of_birth:
            return []
        keys = self._candidates(claims.date_of_birth)
        if not keys:
            return []
        model = self._model()
        if not model:
            return []
        found = []
        for key, record in self._records(keys):
            weight, probability = score(model, claims, record)
            agrees = bool(claims.postcode) and claims.postcode == record.postcode
            found.append(Score(key, weight, probability, agrees))
        return sorted(found, key=lambda s: -s.weight)

    def decide(self, scores: list[Score]) -> str | None:
        """The one confirmed person among ``scores``, or None (nobody, or ambiguous)."""
        persons = self._persons(s.record_key for s in scores)
        confirmed: set[str] = set()
        plausible: set[str] = set()
        for item in scores:
            if item.probability < self.ambiguous:
                continue
            # An unlinked record that looks like the resident may be someone else entirely.
            plausible.add(persons.get(item.record_key, "unlinked:" + item.record_key))
            if (
                item.probability >= self.confident
                and item.postcode_agrees
                and item.record_key in persons
            ):
                confirmed.add(persons[item.record_key])
        if len(confirmed) != 1 or plausible != confirmed:
            return None
        return next(iter(confirmed))

    def match(self, claims: Any) -> str | None:
        """The ``person_id`` the verified identity belongs to, or None.

        ``claims`` is a :class:`candour.web.identity.IdentityClaims`. Any error (vault
        unavailable, no link run yet) is logged by kind only and means None.
        """
        try:
            if not claims.postcode:
                return None
            standard = standardise_claims(
                claims.given_names,
                claims.family_name,
                claims.birth_date.isoformat(),
                claims.postcode,
            )
            return self.decide(self.scores(standard))
        except Exception as exc:  # the safe answer to any failure is "not confirmed"
            logger.warning("identity match failed: %s", type(exc).__name__)
            return None


# -- identities the matcher confirms (the demo's test sign-ins) --------------------------------

DEMO_ACTOR = "demo-sign-in"


@dataclass(frozen=True)
class ConfirmableIdentity:
    """A name, date of birth and postcode that :class:`VaultMatcher` confirms as one person.

    Values are as one of the person's records received them (so they read naturally), and they
    standardise to exactly that record's vault values.
    """

    person_id: str
    given_names: str
    family_name: str
    birth_date: date
    postcode: str


@dataclass(frozen=True)
class _Claims:
    # The attributes VaultMatcher.match reads (those of candour.web.identity.IdentityClaims).
    given_names: str
    family_name: str
    birth_date: date
    postcode: str


def _usual_identity(records: list[Any]) -> ConfirmableIdentity | None:
    """The (given name, family name, date of birth, postcode) most of a person's records hold."""
    counts: Counter[tuple[str, str, str, str]] = Counter()
    shown: dict[tuple[str, str, str, str], tuple[str, str, str]] = {}
    for record in records:
        if not (record.given_name and record.family_name and record.postcode
                and record.date_of_birth and record.date_of_birth_valid and record.postcode_valid):
            continue
        key = (record.given_name, record.family_name, record.date_of_birth, record.postcode)
        counts[key] += 1
        raw = record.raw
        shown.setdefault(
            key,
            (
                raw.get("given_name", record.given_name),
                raw.get("family_name", record.family_name),
                raw.get("postcode", record.postcode),
            ),
        )
    if not counts:
        return None
    key = counts.most_common(1)[0][0]
    given, family, postcode = shown[key]
    return ConfirmableIdentity("", given, family, date.fromisoformat(key[2]), postcode)


def confirmable_identities(
    settings: Settings, matcher: VaultMatcher, wanted: int, *, look_at: int = 400
) -> list[ConfirmableIdentity]:
    """Up to ``wanted`` people whose usual identity ``matcher`` confirms as exactly them.

    For the demo's test sign-ins (only ever in a demo home: the caller checks). Looks at the
    first ``look_at`` people with at least two records, in person-id order (pseudonymous, so
    effectively a random sample), reads only their records from the vault (one audited read,
    actor ``demo-sign-in``), and keeps those whose most common name, date of birth and postcode
    the matcher confirms as that same person: signing in with them is certain to work.
    """
    from candour.vault import open_vault

    with transaction(settings) as session:
        people = (
            select(PersonIndexEntry.person_id)
            .group_by(PersonIndexEntry.person_id)
            .having(func.count() >= 2)
            .order_by(PersonIndexEntry.person_id)
            .limit(look_at)
            .subquery()
        )
        rows = session.execute(
            select(PersonIndexEntry.person_id, PersonIndexEntry.record_key)
            .where(PersonIndexEntry.person_id.in_(select(people.c.person_id)))
            .order_by(PersonIndexEntry.person_id, PersonIndexEntry.record_key)
        ).all()
    keys_of: dict[str, list[str]] = {}
    for person_id, record_key in rows:
        keys_of.setdefault(person_id, []).append(record_key)
    if not keys_of:
        return []
    reason = "demo sign-in: choose synthetic residents whose details match exactly one person"
    with open_vault(settings).open_workspace(reason=reason, actor=DEMO_ACTOR) as workspace:
        wanted_keys = [key for keys in keys_of.values() for key in keys]
        held = {r.record_key: r for r in workspace.records(wanted_keys)}
    found: list[ConfirmableIdentity] = []
    for person_id, keys in keys_of.items():
        usual = _usual_identity([held[k] for k in keys if k in held])
        if usual is None:
            continue
        claims = _Claims(usual.given_names, usual.family_name, usual.birth_date, usual.postcode)
        if matcher.match(claims) != person_id:
            continue
        found.append(
            ConfirmableIdentity(
                person_id, usual.given_names, usual.family_name, usual.birth_date, usual.postcode
            )
        )
        if len(found) >= wanted:
            break
    return found
