"""``candour choices import``: apply a national data opt-out list to one purpose.

The file is what the NHS opt-out service returns: one NHS number per line, optionally followed
by a comma, with blank lines, a UTF-8 byte-order mark and CRLF line ends tolerated. The import:

1. reads and standardises every line exactly as ingest standardised NHS numbers; if any line is
   malformed (not a valid NHS number), nothing is applied and every bad line number is named;
2. matches the numbers through the identity vault's keyed-HMAC index (an audited access with a
   stated reason; nothing is decrypted), and the matched records through the person index;
3. records an opt-out of the purpose, for every source, for every matched person, as one
   all-or-nothing batch through :func:`candour.choices.record_choices` (each logged).

Lines whose number is not in the vault are *unmatched* (the person is not in our data);
numbers whose records are in the vault but not yet linked are *unlinked* (run ``candour link``
and import again: people already opted out are left as they are). Both are reported by line
number only, so no NHS number is ever printed. A number that matches more than one person
opts out all of them: honouring an opt-out matters more than the linkage error behind it.

The list only adds opt-outs. A withdrawn national opt-out is applied with
``candour choices set --decision opt-in``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from candour.choices import ChoiceRequest, load_purposes, record_choices
from candour.config import Settings
from candour.errors import CandourError
from candour.sources.standardise import standardise_values
from candour.store import transaction
from candour.store.linkage import PersonIndexEntry
from candour.vault import open_vault

MAX_LINE_CHARS = 64
_CHUNK = 500


class OptOutImportError(CandourError):
    """The list cannot be imported; nothing was applied."""


@dataclass
class OptOutImportReport:
    """What an import found and did. Line numbers are 1-based; no NHS number is kept."""

    purpose: str
    lines: int = 0
    """Non-blank lines read."""
    numbers: int = 0
    """Distinct NHS numbers."""
    repeated: list[int] = field(default_factory=list)
    """Lines repeating a number already seen."""
    unmatched: list[int] = field(default_factory=list)
    """Lines whose number is not in the vault."""
    unlinked: list[int] = field(default_factory=list)
    """Lines whose number is in the vault but whose records are not linked to a person yet."""
    ambiguous: list[int] = field(default_factory=list)
    """Lines whose number matched more than one person (all of whom are opted out)."""
    persons: int = 0
    """Distinct people matched."""
    recorded: int = 0
    """New opt-outs recorded (each a ledger entry)."""
    already: int = 0
    """People already opted out of the purpose for every source."""
    ledger_first: int | None = None
    ledger_last: int | None = None


def read_numbers(path: Path) -> tuple[list[tuple[int, str]], int]:
    """``[(line number, standardised NHS number)]`` and the count of non-blank lines.

    Raises :class:`OptOutImportError` naming every malformed line (by number only).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise OptOutImportError(f"{path}: no such file") from None
    except OSError as exc:
        raise OptOutImportError(f"{path}: cannot read it: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OptOutImportError(f"{path}: not UTF-8 text (byte {exc.start})") from None

    candidates: list[tuple[int, str]] = []
    malformed: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        value = line.strip()
        if not value:
            continue
        if value.endswith(","):
            value = value[:-1].rstrip()
        if not value or len(value) > MAX_LINE_CHARS or "," in value:
            malformed.append(number)
            continue
        candidates.append((number, value))
    checked = standardise_values("nhs_number", [v for _, v in candidates])
    good: list[tuple[int, str]] = []
    for (number, _), (standard, valid) in zip(candidates, checked, strict=True):
        if valid and standard:
            good.append((number, standard))
        else:
            malformed.append(number)
    if malformed:
        malformed.sort()
        shown = ", ".join(str(n) for n in malformed[:20])
        more = f" and {len(malformed) - 20} more" if len(malformed) > 20 else ""
        raise OptOutImportError(
            f"{path}: {len(malformed)} line(s) are not valid NHS numbers (line {shown}{more}); "
            "nothing was imported"
        )
    return good, len(candidates) + len(malformed)


def _persons_for(settings: Settings, record_keys: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    with transaction(settings) as session:
        for start in range(0, len(record_keys), _CHUNK):
            chunk = record_keys[start : start + _CHUNK]
            rows = session.execute(
                select(PersonIndexEntry.record_key, PersonIndexEntry.person_id).where(
                    PersonIndexEntry.record_key.in_(chunk)
                )
            )
            found.update({key: person for key, person in rows})
    return found


def import_optouts(
    path: Path, purpose: str, *, actor: str, settings: Settings
) -> OptOutImportReport:
    """Import a national opt-out list for ``purpose``; see the module docstring."""
    policy = load_purposes(settings).get(purpose)
    if not policy.opt_out:
        raise OptOutImportError(
            f"residents cannot opt out of {policy.id} ({policy.title}): {policy.why_no_opt_out}"
        )
    report = OptOutImportReport(purpose=purpose)
    numbers, report.lines = read_numbers(path)

    first_line: dict[str, int] = {}
    for line, value in numbers:
        if value in first_line:
            report.repeated.append(line)
        else:
            first_line[value] = line
    report.numbers = len(first_line)
    if not first_line:
        return report

    vault = open_vault(settings)
    matches = vault.lookup(
        "nhs_number",
        list(first_line),
        reason=f"national data opt-out import for purpose {purpose}",
        actor=actor,
    )
    all_keys = sorted({key for keys in matches.values() for key in keys})
    persons_of_key = _persons_for(settings, all_keys)

    persons: dict[str, set[str]] = defaultdict(set)
    for value, line in first_line.items():
        keys = matches.get(value)
        if not keys:
            report.unmatched.append(line)
            continue
        people = {persons_of_key[k] for k in keys if k in persons_of_key}
        if not people:
            report.unlinked.append(line)
            continue
        if len(people) > 1:
            report.ambiguous.append(line)
        persons[value] = people
    people_all = sorted({p for people in persons.values() for p in people})
    report.persons = len(people_all)
    for items in (report.unmatched, report.unlinked, report.ambiguous, report.repeated):
        items.sort()
    if not people_all:
        return report

    result = record_choices(
        [ChoiceRequest(pid, purpose, "opt-out") for pid in people_all],
        channel="bulk-import",
        actor=actor,
        settings=settings,
    )
    report.recorded = len(result.recorded)
    report.already = len(result.unchanged)
    indices = [r.ledger_index for r in result.recorded if r.ledger_index is not None]
    if indices:
        report.ledger_first, report.ledger_last = min(indices), max(indices)
    return report
