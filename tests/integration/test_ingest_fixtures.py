"""Hand-written extracts for the ingest tests, and helpers to look at everything ingest writes.

No tests live here; other test modules import from it.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
from sqlalchemy import func, select

from candour import ledger
from candour.config import Settings
from candour.initialise import initialise_home
from candour.sources.ingest import IngestReport, ingest
from candour.store import IngestBatch, dispose, transaction
from candour.vault import dispose_vault, open_vault
from candour.warehouse import open_warehouse

HEADER = (
    "patient_id,forename,surname,dob,sex,postcode,addr1,town,nhs_no,pnc,"
    "registered,practice,visits,housebound"
)
ROWS = [
    "P001,Zoë,O'Brien,03/02/1980,F,sw1a1aa,12 Acacia Ave,London,943 476 5919,99/1234A,"
    "2020-01-05,G81001,3,Y",
    "P002,Bob,Smith-Jones,31/12/1975,Male,EC1A 1BB,1 High St,London,4010232137,,"
    "2021-03-04,G81002,,N",
    "P003,Ana,Núñez,1975-12-31,2,75001,Rue X,Paris,,,2022-02-02,G81001,7,",
    "P004,Siobhán,MacDonald,15/08/2001,F,M1 1AE,Flat 3,Manchester,9434765870,,"
    "2019-11-30,G81003,0,N",
    'P005,"Mary Ann",Ellis,01/01/1950,F,"TN1 1AA","4, The Gdns",Ashford,,,2018-07-07,G81002,12,Y',
]

SOURCES_YAML = """\
version: 1
sources:
  - name: gp
    title: GP registrations
    controller: Test Integrated Care Board
    files: [{files}]
    csv: {{delimiter: "{delimiter}", encoding: {encoding}}}
    record_id: patient_id
    identity:
      given_name: forename
      family_name: surname
      date_of_birth: {{column: dob, format: "%d/%m/%Y"}}
      sex: sex
      postcode: postcode
      address: [addr1, town]
      nhs_number: nhs_no
      identifiers: {{pnc: pnc}}
    attributes:
      registered_on: {{column: registered, type: date}}
      practice: {{column: practice, type: category}}
      visits: {{column: visits, type: int}}
      housebound: {{column: housebound, type: bool, format: "Y/N"}}
    event_date: registered_on
"""


def write_extract(
    directory: Path,
    rows: list[str] | None = None,
    *,
    name: str = "gp.csv",
    header: str = HEADER,
    encoding: str = "utf-8",
    declared_encoding: str | None = None,
    delimiter: str = ",",
    files: str | None = None,
) -> Path:
    """Write ``sources.yaml`` and one CSV extract; return the YAML's path."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [header, *(ROWS if rows is None else rows)]
    text = "\n".join(lines) + "\n"
    if delimiter != ",":
        text = text.replace(",", delimiter)
    (directory / name).write_bytes(text.encode(encoding))
    spec = directory / "sources.yaml"
    spec.write_text(
        SOURCES_YAML.format(
            files=files or name,
            delimiter=delimiter,
            encoding=declared_encoding or encoding,
        )
    )
    return spec


def run_ingest(spec: Path, settings: Settings, **options: object) -> IngestReport:
    """Ingest with a warehouse opened (and closed) the way the CLI does."""
    with open_warehouse(settings) as warehouse:
        return ingest(spec, settings, warehouse, **options)  # type: ignore[arg-type]


_TEMPLATE: list[Path] = []


def initialised(settings: Settings) -> Settings:
    """A data home made by ``candour init``.

    With the SQLite store, a home initialised once per test process is copied (keys, modes and
    all), which is many times faster than running every migration again for each test.
    """
    if settings.database_url is not None or settings.home.exists():
        initialise_home(settings)
        return settings
    if not _TEMPLATE:
        root = Path(tempfile.mkdtemp(prefix="candour-home-template-"))
        atexit.register(shutil.rmtree, root, True)
        initialise_home(Settings(home=root / "home"))
        dispose(Settings(home=root / "home"))
        _TEMPLATE.append(root / "home")
    shutil.copytree(_TEMPLATE[0], settings.home, symlinks=True)
    return settings


@dataclass
class Footprint:
    """Everything ingest can leave behind."""

    batches: int
    done_batches: int
    vault_records: int
    vault_lookups: int
    warehouse_rows: int
    warehouse_tables: list[str]
    ingest_entries: int

    def empty(self) -> bool:
        """Nothing written (tables may exist, rows may not)."""
        return (
            self.batches == 0
            and self.vault_records == 0
            and self.vault_lookups == 0
            and self.warehouse_rows == 0
            and self.ingest_entries == 0
        )


def footprint(settings: Settings) -> Footprint:
    """Count what the store, vault, warehouse and ledger hold."""
    with transaction(settings) as session:
        batches = session.scalar(select(func.count()).select_from(IngestBatch)) or 0
        done = (
            session.scalar(
                select(func.count()).select_from(IngestBatch).where(IngestBatch.status == "done")
            )
            or 0
        )
    stats = open_vault(settings).stats()
    dispose_vault(settings)
    tables: list[str] = []
    rows = 0
    path = settings.home / "warehouse.duckdb"
    if path.exists():
        con = duckdb.connect(str(path), read_only=True)
        try:
            tables = [r[0] for r in con.execute("SHOW TABLES").fetchall()]
            for table in tables:
                rows += con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0]
        finally:
            con.close()
    entries = 0
    size = 0
    current = ledger.open_log(settings).read_checkpoint()
    if current is not None:
        size = current[0].size
    for index in range(size):
        if json.loads(ledger.entry(index, settings=settings)).get("kind") == "ingest":
            entries += 1
    return Footprint(
        batches, done, stats.records, stats.lookups, rows, tables, entries
    )
