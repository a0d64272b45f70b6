"""The studies on the web: ``/studies`` (the built-in studies), ``/studies/{name}`` (a study's
latest report: headline figures, findings, method, charts, published tables, and links to its
register entry, transparency-log entries and open datasets) and ``/studies/{name}/{file}``
(its charts).

Everything shown is what the study's report holds, which is only what may be public: figures,
published (disclosure-controlled) tables and governance links. Nothing record-level is read.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel

from candour.home import Home
from candour.studies import list_studies, read_report, report_dir
from candour.web.deps import SettingsDep
from candour.web.templating import Page, render

router = APIRouter(include_in_schema=False)


class StudySummary(BaseModel):
    """One study in the list."""

    name: str
    title: str
    question: str
    run_at: str | None


class StudiesPage(Page):
    """The list of built-in studies."""

    studies: list[StudySummary]


class Figure(BaseModel):
    """One headline figure."""

    name: str
    value: str


class Link(BaseModel):
    """A link with its text."""

    text: str
    href: str


class ChartView(BaseModel):
    """A chart image and its text alternative."""

    src: str
    title: str
    alt: str


class TableView(BaseModel):
    """A published table."""

    title: str
    columns: list[str]
    rows: list[list[str]]


class StudyPage(Page):
    """One study's latest report."""

    name: str
    question: str
    run_at: str | None
    engine: str | None
    use: Link | None
    figures: list[Figure]
    findings: list[str]
    method: list[str]
    leaves: list[str]
    charts: list[ChartView]
    tables: list[TableView]
    datasets: list[Link]
    entries: dict[str, list[Link]]


def _cell(value: object) -> str:
    if value is None:
        return "[c]"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


@router.get("/studies", response_class=HTMLResponse)
def studies_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    """The built-in studies, and when each last ran in this home."""
    home = Home(settings.home)
    rows = []
    for study in list_studies():
        report = read_report(home, study.name)
        rows.append(
            StudySummary(
                name=study.name,
                title=study.title,
                question=study.question,
                run_at=report.run_at if report else None,
            )
        )
    return render(request, "studies/list.html", StudiesPage(title="Studies", studies=rows))


def _study_or_404(name: str) -> str:
    known = {s.name: s for s in list_studies()}
    if name not in known:
        raise HTTPException(status_code=404)
    return name


@router.get("/studies/{name}", response_class=HTMLResponse)
def study_page(request: Request, settings: SettingsDep, name: str) -> HTMLResponse:
    """A study's latest report, or a page saying it has not run yet."""
    _study_or_404(name)
    study = next(s for s in list_studies() if s.name == name)
    report = read_report(Home(settings.home), name)
    if report is None:
        page = StudyPage(
            title=study.title, name=name, question=study.question, run_at=None, engine=None,
            use=None, figures=[], findings=[], method=[], leaves=[], charts=[], tables=[],
            datasets=[], entries={},
        )
        return render(request, "studies/study.html", page)
    kinds = {"use": "Data use decisions", "queries": "Queries", "releases": "Releases"}
    page = StudyPage(
        title=report.title,
        name=name,
        question=report.question,
        run_at=report.run_at,
        engine=report.engine,
        use=Link(text=f"{report.use_id}: {report.use_title}", href=f"/register/{report.use_id}"),
        figures=[
            Figure(name=k, value="not available" if v is None else f"{v:.3f}")
            for k, v in report.figures.items()
        ],
        findings=report.findings,
        method=report.method,
        leaves=report.leaves,
        charts=[
            ChartView(src=f"/studies/{name}/{c.file}", title=c.title, alt=c.alt)
            for c in report.charts
        ],
        tables=[
            TableView(
                title=str(t["title"]),
                columns=[str(c) for c in t["columns"]],
                rows=[[_cell(v) for v in row] for row in t["rows"]],
            )
            for t in report.tables
        ],
        datasets=[Link(text=d["title"], href=f"/data/{d['name']}") for d in report.datasets],
        entries={
            kinds.get(kind, kind): [
                Link(text=str(i), href=f"/transparency/entries/{i}") for i in indices
            ]
            for kind, indices in report.ledger_entries.items()
        },
    )
    return render(request, "studies/study.html", page)


@router.get("/studies/{name}/{file}")
def study_chart(settings: SettingsDep, name: str, file: str) -> FileResponse:
    """A chart of a study's latest report (only files the report lists)."""
    _study_or_404(name)
    home = Home(settings.home)
    report = read_report(home, name)
    if report is None or file not in {c.file for c in report.charts}:
        raise HTTPException(status_code=404)
    path = report_dir(home, name) / file
    if not path.is_file():
        raise HTTPException(status_code=404)
    return FileResponse(path, media_type="image/png")
