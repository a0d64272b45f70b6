"""Importing a national opt-out list: matched through the vault, reported by line, atomic."""

from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.integration.test_choices_store import make_home
from typer.testing import CliRunner

from candour import choices
from candour.cli.main import app
from candour.config import Settings
from candour.store import transaction
from candour.store.choices import ChoiceEvent
from candour.store.linkage import PersonIndexEntry
from candour.vault import open_vault
from candour.workflows.optout_import import OptOutImportError, import_optouts


def nhs(stem: int) -> str:
    """A valid NHS number from a 9-digit stem (skipping stems whose check digit would be 10)."""
    while True:
        digits = [int(c) for c in f"{stem:09d}"]
        check = (11 - sum(d * (10 - i) for i, d in enumerate(digits)) % 11) % 11
        if check != 10:
            return f"{stem:09d}{check}"
        stem += 1


NUMBERS = [nhs(400_000_001 + 37 * i) for i in range(5)]


def _vault_and_index(settings: Settings, people: list[str]) -> None:
    """Records in the vault with NHS numbers, linked in the person index.

    NUMBERS[0..2] -> people[0..2]; NUMBERS[3] is in the vault but unlinked; NUMBERS[4] is on two
    records that linkage put in two persons (people[3] and people[4]).
    """
    # Only the keyed-HMAC index is written: the import never reads sealed identities, and the
    # index digest comes from the vault's own sealer, so it matches whatever ingest writes.
    vault = open_vault(settings)
    sealer = vault.sealer()
    keys = [f"gp_registrations:{i}" for i in range(6)]
    numbers = [*NUMBERS[:4], NUMBERS[4], NUMBERS[4]]
    with vault.writer() as writer:
        writer.insert(
            [],
            [
                ("nhs_number", sealer.digest("nhs_number", number), key, 1)
                for key, number in zip(keys, numbers, strict=True)
            ],
        )
    links = {keys[0]: 0, keys[1]: 1, keys[2]: 2, keys[4]: 3, keys[5]: 4}
    with transaction(settings) as session:
        session.add_all(
            PersonIndexEntry(record_key=key, person_id=people[i], person_num=i + 1, run_id="R-1")
            for key, i in links.items()
        )


def _events(settings: Settings) -> int:
    with transaction(settings) as session:
        return int(session.scalar(select(func.count()).select_from(ChoiceEvent)) or 0)


def test_a_list_is_matched_and_applied(store_settings: Settings, tmp_path: Path):
    people = make_home(store_settings)
    _vault_and_index(store_settings, people)
    listing = tmp_path / "optouts.csv"
    unknown = nhs(700_000_001)
    listing.write_text(
        "\ufeff"
        + f"{NUMBERS[0]},\r\n"
        + f"{NUMBERS[1][:3]} {NUMBERS[1][3:6]} {NUMBERS[1][6:]}\r\n"
        + "\r\n"
        + f"{unknown},\r\n"
        + f"{NUMBERS[3]}\r\n"
        + f"{NUMBERS[4]},\r\n"
        + f"{NUMBERS[0]}\r\n",
        encoding="utf-8",
    )
    report = import_optouts(listing, "research", actor="ig-team", settings=store_settings)
    assert report.lines == 6 and report.numbers == 5
    assert report.unmatched == [4]
    assert report.unlinked == [5]
    assert report.ambiguous == [6]
    assert report.repeated == [7]
    assert report.persons == 4 and report.recorded == 4 and report.already == 0
    snap = choices.snapshot("research", settings=store_settings)
    assert set(snap.everywhere.person_ids) == {people[0], people[1], people[3], people[4]}
    history = choices.history(people[0], settings=store_settings)
    assert [(h.channel, h.actor) for h in history] == [("bulk-import", "ig-team")]

    again = import_optouts(listing, "research", actor="ig-team", settings=store_settings)
    assert (again.recorded, again.already) == (0, 4)
    assert _events(store_settings) == 4


def test_a_malformed_line_stops_everything(store_settings: Settings, tmp_path: Path):
    people = make_home(store_settings)
    _vault_and_index(store_settings, people)
    bad_check = NUMBERS[1][:9] + str((int(NUMBERS[1][9]) + 1) % 10)
    listing = tmp_path / "optouts.csv"
    listing.write_text(f"{NUMBERS[0]},\n{bad_check},\nhello\n{NUMBERS[2]},,\n")
    with pytest.raises(
        OptOutImportError, match=r"3 line\(s\) are not valid NHS numbers \(line 2, 3, 4\)"
    ) as caught:
        import_optouts(listing, "research", actor="ig-team", settings=store_settings)
    assert _events(store_settings) == 0
    assert bad_check not in str(caught.value)  # lines are named by number, never by content


def test_a_purpose_without_opt_out_is_refused(store_settings: Settings, tmp_path: Path):
    make_home(store_settings)
    listing = tmp_path / "optouts.csv"
    listing.write_text(f"{NUMBERS[0]}\n")
    with pytest.raises(OptOutImportError, match="cannot opt out of direct-care"):
        import_optouts(listing, "direct-care", actor="ig-team", settings=store_settings)


def test_the_cli_reports_lines_and_never_numbers(sqlite_settings: Settings, tmp_path: Path):
    people = make_home(sqlite_settings)
    _vault_and_index(sqlite_settings, people)
    listing = tmp_path / "optouts.csv"
    listing.write_text(f"{NUMBERS[0]},\n{nhs(700_000_001)},\n")
    result = CliRunner().invoke(
        app,
        [
            "choices",
            "import",
            str(listing),
            "--purpose",
            "research",
            "--home",
            str(sqlite_settings.home),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Unmatched (not in our data) (1): line 2" in result.output
    assert NUMBERS[0] not in result.output
    missing = CliRunner().invoke(
        app,
        [
            "choices",
            "import",
            str(tmp_path / "nope"),
            "--purpose",
            "research",
            "--home",
            str(sqlite_settings.home),
        ],
    )
    assert missing.exit_code == 2 and "no such file" in missing.output
