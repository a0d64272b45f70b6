"""``candour catalogue``: publish released outputs and non-personal data as open datasets."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from candour.catalogue import (
    DEFAULT_LICENCE,
    FREQUENCIES,
    LICENCES,
    CatalogueError,
    Dataset,
    get_dataset,
    list_datasets,
    publish_file,
    publish_release,
)
from candour.cli.common import HomeOption, console, new_app, settings

app = new_app(
    "The open data catalogue: publish outputs that passed disclosure control and a second "
    "person's check, or data declared to hold nothing about people, as CSV, JSON and Parquet "
    "with DCAT and CSVW metadata (served at /data, /catalog.jsonld and the CKAN API)."
)

TitleOption = Annotated[str | None, typer.Option("--title", help="The dataset's title.")]
DescriptionOption = Annotated[
    str | None, typer.Option("--description", help="What the data is, in plain English.")
]
KeywordsOption = Annotated[
    str | None, typer.Option("--keywords", help="Comma-separated keywords, e.g. 'falls,fire'.")
]
FromOption = Annotated[
    str | None, typer.Option("--from", help="Start of the time covered (YYYY-MM-DD).")
]
ToOption = Annotated[str | None, typer.Option("--to", help="End of the time covered (YYYY-MM-DD).")]
SpatialOption = Annotated[
    str | None, typer.Option("--spatial", help="The area covered: a name or a URI.")
]
LicenceOption = Annotated[
    str, typer.Option("--licence", help=f"One of {', '.join(LICENCES)}.")
]
NameOption = Annotated[
    str | None, typer.Option("--name", help="The dataset's name in URLs (default: from title).")
]
FREQUENCY_HELP = f"How often it is updated: {', '.join(FREQUENCIES)}."


def _keywords(text: str | None) -> list[str]:
    return [k.strip() for k in (text or "").split(",") if k.strip()]


def _temporal(start: str | None, end: str | None) -> tuple[date, date] | None:
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise CatalogueError("give both --from and --to, or neither")
    try:
        return date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise CatalogueError("--from and --to are dates, YYYY-MM-DD") from None


def _published(dataset: Dataset) -> None:
    console.print(f"published {dataset.name} ({dataset.dataset_id})", highlight=False)
    for resource in dataset.resources:
        console.print(f"  {resource.format:<8} {resource.file_name}  sha256 {resource.sha256}",
                      highlight=False)
    console.print(f"  page     /data/{dataset.name}", highlight=False)


@app.command("publish-release")
def publish_release_command(
    release_id: Annotated[str, typer.Argument(help="The released output (REL-…).")],
    title: TitleOption = None,
    description: DescriptionOption = None,
    keywords: KeywordsOption = None,
    start: FromOption = None,
    end: ToOption = None,
    spatial: SpatialOption = None,
    frequency: Annotated[str, typer.Option("--frequency", help=FREQUENCY_HELP)] = "never",
    licence: LicenceOption = DEFAULT_LICENCE,
    name: NameOption = None,
    user: Annotated[
        str | None, typer.Option("--as", help="Who is publishing (recorded).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Publish a released output. Title and description default to the data use's."""
    dataset = publish_release(
        settings(home),
        release_id,
        title=title,
        description=description,
        keywords=_keywords(keywords),
        temporal=_temporal(start, end),
        spatial=spatial,
        frequency=frequency,
        licence=licence,
        name=name,
        published_by=user,
    )
    _published(dataset)


@app.command("publish-file")
def publish_file_command(
    file: Annotated[
        Path, typer.Argument(help="A CSV file with a header row.", exists=True, dir_okay=False)
    ],
    title: Annotated[str, typer.Option("--title", help="The dataset's title.")],
    user: Annotated[
        str,
        typer.Option("--as", help="The ig or admin user who declares it holds no personal data."),
    ],
    publisher: Annotated[
        str, typer.Option("--publisher", help="The organisation publishing it.")
    ],
    declare_non_personal: Annotated[
        bool,
        typer.Option(
            "--declare-non-personal",
            help="Declare that the file holds no personal data (required; recorded with your "
            "name, the time and the file's hash).",
        ),
    ] = False,
    description: DescriptionOption = None,
    keywords: KeywordsOption = None,
    start: FromOption = None,
    end: ToOption = None,
    spatial: SpatialOption = None,
    frequency: Annotated[str, typer.Option("--frequency", help=FREQUENCY_HELP)] = "irregular",
    licence: LicenceOption = DEFAULT_LICENCE,
    name: NameOption = None,
    home: HomeOption = None,
) -> None:
    """Publish a file of non-personal data (such as sensor readings) on your declaration."""
    dataset = publish_file(
        settings(home),
        file,
        title=title,
        description=description or title,
        publisher=publisher,
        declared_by=user,
        declare_non_personal=declare_non_personal,
        keywords=_keywords(keywords),
        temporal=_temporal(start, end),
        spatial=spatial,
        frequency=frequency,
        licence=licence,
        name=name,
    )
    _published(dataset)


@app.command("list")
def list_command(home: HomeOption = None) -> None:
    """List published datasets, newest first."""
    datasets = list_datasets(settings(home))
    table = Table(title="Open data catalogue")
    # The name is what `show` takes, so it is never wrapped or cut.
    widest = max((len(d.name) for d in datasets), default=4)
    table.add_column("name", no_wrap=True, min_width=widest)
    for column in ("title", "publisher", "origin", "rows", "published"):
        table.add_column(column)
    for d in datasets:
        table.add_row(
            d.name, d.title, d.publisher.title, d.origin, str(d.rows),
            f"{d.published_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@app.command("show")
def show_command(
    dataset_id: Annotated[str, typer.Argument(help="A dataset's name or id.")],
    home: HomeOption = None,
) -> None:
    """Show a dataset's metadata, provenance and files."""
    d = get_dataset(settings(home), dataset_id)
    lines = [
        ("name", d.name),
        ("id", d.dataset_id),
        ("title", d.title),
        ("description", d.description),
        ("publisher", d.publisher.title),
        ("licence", f"{d.licence.title} <{d.licence.url}>"),
        ("keywords", ", ".join(d.keywords) or "-"),
        ("temporal", f"{d.temporal_start} to {d.temporal_end}" if d.temporal_start else "-"),
        ("spatial", d.spatial or "-"),
        ("frequency", d.frequency),
        ("published", f"{d.published_at:%Y-%m-%d %H:%M} by {d.published_by or '-'}"),
        ("rows", str(d.rows)),
    ]
    if d.origin == "release":
        lines += [
            ("data use", d.use_id or "-"),
            ("release", d.release_id or "-"),
            ("ledger", ", ".join(str(i) for i in d.ledger_entries) or "-"),
            ("threshold", str(d.threshold)),
        ]
    elif d.declaration is not None:
        lines += [
            ("declared", f"by {d.declaration.declared_by} at "
                         f"{d.declaration.declared_at:%Y-%m-%d %H:%M}"),
            ("declaration", d.declaration.statement),
        ]
    for key, value in lines:
        console.print(f"{key:<12} {value}", highlight=False, soft_wrap=True)
    for c in d.columns:
        console.print(f"column       {c.name} ({c.datatype}): {c.title}", highlight=False)
    for r in d.resources:
        console.print(f"file         {r.format:<8} {r.file_name} {r.size} bytes sha256 {r.sha256}",
                      highlight=False)
