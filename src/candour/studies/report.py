"""A study's report: charts (PNG, matplotlib) and a standalone HTML page under
``<home>/reports/studies/<name>/``, plus ``report.json``, which the web app renders.

The report holds only what may be shown: the headline figures, the method, the published
(disclosure-controlled) tables, and links to the register entry, the transparency-log entries
and the catalogue datasets. Nothing record-level is ever written here.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from candour.home import Home

REPORT_FILE = "report.json"
PAGE_FILE = "index.html"
CHART_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,60}\.png$")


@dataclass(frozen=True)
class Chart:
    """One chart: its file name (``*.png``), a title and the text alternative for it."""

    file: str
    title: str
    alt: str


@dataclass
class Report:
    """Everything the report page shows."""

    name: str
    title: str
    question: str
    use_id: str
    use_title: str
    engine: str
    run_at: str
    figures: dict[str, float | None]
    findings: list[str]
    method: list[str]
    leaves: list[str]
    charts: list[Chart] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    datasets: list[dict[str, str]] = field(default_factory=list)
    ledger_entries: dict[str, list[int]] = field(default_factory=dict)
    truth: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return asdict(self)


def studies_dir(home: Home) -> Path:
    """Where study reports live."""
    return home.reports / "studies"


def report_dir(home: Home, name: str) -> Path:
    """One study's report folder."""
    return studies_dir(home) / name


def read_report(home: Home, name: str) -> Report | None:
    """The latest report of study ``name``, or None if it has not run in this home."""
    path = report_dir(home, name) / REPORT_FILE
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    data["charts"] = [Chart(**c) for c in data.get("charts", [])]
    return Report(**data)


def write_report(
    home: Home, report: Report, draw: Sequence[tuple[Chart, Callable[[Path], None]]]
) -> Path:
    """Draw the charts and write the page and ``report.json``; replace the previous report
    only once everything is written, so a reader never sees half a report."""
    root = studies_dir(home)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{report.name}-", dir=root))
    try:
        report.charts = []
        for chart, painter in draw:
            if not CHART_NAME.match(chart.file):
                raise ValueError(f"chart file {chart.file!r} must be a lower-case *.png name")
            painter(staging / chart.file)
            report.charts.append(chart)
        (staging / REPORT_FILE).write_text(
            json.dumps(report.as_dict(), indent=2, sort_keys=True, default=str) + "\n", "utf-8"
        )
        (staging / PAGE_FILE).write_text(render_html(report), "utf-8")
        os.chmod(staging, 0o755)
        final = report_dir(home, report.name)
        old = root / f".{report.name}-old"
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        return final
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _fmt(value: Any) -> str:
    if value is None:
        return "[c]"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def render_html(report: Report) -> str:
    """A standalone page (no scripts, no external assets) for reading the report offline."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(report.title)} - Candour study</title>",
        "<style>body{font-family:Arial,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;"
        "line-height:1.5}table{border-collapse:collapse;margin:1em 0}td,th{border-bottom:1px "
        "solid #b1b4b6;padding:.3em .8em;text-align:left}img{max-width:100%}</style>",
        "</head><body>",
        f"<h1>{e(report.title)}</h1>",
        f"<p><strong>{e(report.question)}</strong></p>",
        f"<p>Data use <a href=\"/register/{e(report.use_id)}\">{e(report.use_id)}</a>: "
        f"{e(report.use_title)}. Run {e(report.run_at)} on the {e(report.engine)} engine.</p>",
        "<h2>Headline figures</h2><table>",
    ]
    for key, value in report.figures.items():
        parts.append(f"<tr><th>{e(key)}</th><td>{e(_fmt(value))}</td></tr>")
    parts.append("</table>")
    for heading, items in (
        ("What we found", report.findings),
        ("Method", report.method),
        ("What leaves the environment", report.leaves),
    ):
        parts.append(f"<h2>{heading}</h2><ul>")
        parts += [f"<li>{e(item)}</li>" for item in items]
        parts.append("</ul>")
    for chart in report.charts:
        parts.append(
            f"<figure><img src=\"{e(chart.file)}\" alt=\"{e(chart.alt)}\">"
            f"<figcaption>{e(chart.title)}</figcaption></figure>"
        )
    for table in report.tables:
        columns: list[str] = table["columns"]
        parts.append(f"<h2>{e(table['title'])}</h2><table><tr>")
        parts += [f"<th>{e(c)}</th>" for c in columns]
        parts.append("</tr>")
        for row in table["rows"]:
            parts.append("<tr>" + "".join(f"<td>{e(_fmt(v))}</td>" for v in row) + "</tr>")
        parts.append("</table>")
    parts.append("<h2>Published data</h2><ul>")
    parts += [
        f"<li><a href=\"/data/{e(d['name'])}\">{e(d['title'])}</a></li>" for d in report.datasets
    ]
    parts.append("</ul><h2>Transparency log entries</h2><ul>")
    for kind, indices in report.ledger_entries.items():
        links = ", ".join(
            f"<a href=\"/transparency/entries/{i}\">{i}</a>" for i in indices
        )
        parts.append(f"<li>{e(kind)}: {links or 'none'}</li>")
    parts.append("</ul></body></html>\n")
    return "\n".join(parts)
