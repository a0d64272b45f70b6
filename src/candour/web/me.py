"""``/me`` and ``/api/v1/me``: the signed-in resident's own pages and their JSON mirrors.

Every route depends on :data:`~candour.web.deps.CurrentResident`, and every one of them reads
the person id from the signed session only: no route takes a person id, record id or any other
reference to a person from the request, so there is nothing to change to see someone else's
data. The domain work is done by :mod:`candour.workflows.subject_access` (records and the
download), :mod:`candour.choices` (choices) and :mod:`candour.web.preferences` (services);
"every use of my data" (``/me/uses``) is :mod:`candour.web.uses`, mounted here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from candour.choices import (
    ChoiceError,
    ChoiceRequest,
    PurposeError,
    current,
    history,
    load_purposes,
    record_choices,
)
from candour.config import Settings
from candour.web import preferences, uses
from candour.web.deps import CurrentResident, SettingsDep
from candour.web.security import csrf_token
from candour.web.templating import Page, render
from candour.workflows.subject_access import (
    PersonRecords,
    SubjectAccessError,
    describe_source,
    record_keys_of,
    records_for,
    source_catalogue,
    subject_access_export,
)

router = APIRouter(include_in_schema=False)
# "Every use of my data" lives in its own module; its pages are served with these.
router.include_router(uses.router)
RESIDENT_ACTOR = "resident"
PURPOSE_PATTERN = r"^[a-z][a-z0-9-]{0,63}$"

# What saying no never stops, whatever the purpose: said on every purpose page.
NOT_STOPPED = [
    "the people caring for you seeing and using your records to care for you (direct care)",
    "a service using your records to provide the service you get from it",
    "checks to prevent and detect fraud, which the law requires",
    "results that were published before you said no",
]


def _when(timestamp: int) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%-d %B %Y at %-I:%M%p UTC").replace("AM", "am").replace("PM", "pm")


def _date(moment: datetime) -> str:
    return moment.strftime("%-d %B %Y, %H:%M UTC")


def _flash(request: Request, message: str | None = None) -> str | None:
    """Keep a one-off message for the next page, or take the one kept."""
    if message is not None:
        request.session["flash"] = message
        return None
    value = request.session.pop("flash", None)
    return value if isinstance(value, str) else None


def _gone(request: Request) -> HTMLResponse:
    """The page for a signed-in person the person index no longer knows (ids merged)."""
    return uses.gone_page(request)


# -- view models -----------------------------------------------------------------------------


class PurposeChoice(BaseModel):
    """A resident's choice about one purpose, with what the purpose means."""

    id: str
    title: str
    description: str
    opt_out_allowed: bool
    why_no_opt_out: str | None
    opted_out: bool
    """Opted out for every service's records."""
    opted_out_sources: list[str]
    """Services whose records are left out (when not opted out everywhere)."""


class ServiceChoice(BaseModel):
    """A service and how the resident wants it to deal with them."""

    source: str
    title: str
    controller: str | None
    holds_records: bool
    preference: Literal["online", "paper"] | None
    updated_at: str | None


class PreferenceChange(BaseModel):
    """One change in the history of service preferences."""

    source: str
    title: str
    preference: str
    channel: str
    recorded_at: str


class ServicesView(BaseModel):
    """Services, the resident's preference for each, and the history of changes."""

    services: list[ServiceChoice]
    history: list[PreferenceChange]


def purpose_choices(person_id: str, settings: Settings) -> list[PurposeChoice]:
    """Every purpose with the person's choice in force (ChoiceError if not a current person)."""
    now = current(person_id, settings=settings)
    return [
        PurposeChoice(
            id=p.id,
            title=p.title,
            description=p.description,
            opt_out_allowed=p.opt_out,
            why_no_opt_out=p.why_no_opt_out,
            opted_out=p.id in now.everywhere,
            opted_out_sources=sorted(now.by_source.get(p.id, ())),
        )
        for p in load_purposes(settings).purposes
    ]


def my_sources(person_id: str, settings: Settings) -> list[str]:
    """The sources holding at least one of the person's records."""
    return sorted({k.split(":", 1)[0] for k in record_keys_of(person_id, settings=settings)})


def services_view(person_id: str, settings: Settings) -> ServicesView:
    """Every known service with the person's preference, and their history of changes."""
    catalogue = source_catalogue(settings)
    mine = set(my_sources(person_id, settings))
    now = preferences.current(person_id, settings=settings)
    services = []
    for source in preferences.known_sources(settings):
        info = describe_source(source, catalogue)
        held = now.get(source)
        services.append(
            ServiceChoice(
                source=source,
                title=info.title,
                controller=info.controller,
                holds_records=source in mine,
                preference=held.preference if held else None,
                updated_at=_date(held.recorded_at) if held else None,
            )
        )
    # The services that hold records about the person come first: those are the ones to act.
    services.sort(key=lambda s: (not s.holds_records, s.title))
    changes = [
        PreferenceChange(
            source=r.source,
            title=describe_source(r.source, catalogue).title,
            preference=r.preference,
            channel=r.channel,
            recorded_at=_date(r.recorded_at),
        )
        for r in reversed(preferences.history(person_id, settings=settings))
    ]
    return ServicesView(services=services, history=changes)


@dataclass(frozen=True)
class ChoiceOutcome:
    """What saving a purpose page did."""

    changes: int


def save_choice(
    person_id: str,
    purpose_id: str,
    decision: str,
    excluded: list[str],
    settings: Settings,
    *,
    channel: Literal["portal", "api"] = "portal",
) -> ChoiceOutcome:
    """Apply a purpose page's answer: allow (with some services left out) or opt out.

    All the changes are one all-or-nothing batch; each is logged with the person's commitment.
    Raises ValueError for a service the person has no records with, and the choices
    package's errors for a purpose that does not allow opting out.
    """
    mine = set(my_sources(person_id, settings))
    unknown = sorted(set(excluded) - mine)
    if unknown:
        raise ValueError("you can only leave out services that hold records about you")
    now = current(person_id, settings=settings)
    requests: list[ChoiceRequest] = []
    if decision == "opt-out":
        requests.append(ChoiceRequest(person_id, purpose_id, "opt-out"))
    else:
        requests.append(ChoiceRequest(person_id, purpose_id, "opt-in"))
        out_now = now.by_source.get(purpose_id, frozenset())
        for source in sorted(mine):
            want_out = source in excluded
            if want_out != (source in out_now):
                requests.append(
                    ChoiceRequest(
                        person_id, purpose_id, "opt-out" if want_out else "opt-in", source
                    )
                )
    result = record_choices(requests, channel=channel, actor=RESIDENT_ACTOR, settings=settings)
    return ChoiceOutcome(changes=len(result.recorded))


# -- pages -----------------------------------------------------------------------------------


class MePage(Page):
    """The resident's home: that they are signed in, and where to go next."""

    signed_in_at: str


class RecordsPage(Page):
    """What each service holds about the resident."""

    records: PersonRecords


class ChoicesPage(Page):
    """Every purpose and the resident's choice about it."""

    choices: list[PurposeChoice]


class ChoicePage(Page):
    """One purpose: what it means, what saying no does and does not do, and the form."""

    choice: PurposeChoice
    sources: dict[str, str]
    not_stopped: list[str]
    error: str | None = None


class ChoiceSavedPage(Page):
    """The confirmation after a change of choice."""

    choice: PurposeChoice
    sources: dict[str, str]
    changes: int


class ServicesPage(Page):
    """Which services to deal with online or on paper, and the history."""

    view: ServicesView
    saved: str | None


class DownloadPage(Page):
    """Download my data, and what happens when I do."""

    error: str | None = None


@router.get("/me", response_class=HTMLResponse)
def me(request: Request, resident: CurrentResident) -> HTMLResponse:
    """The signed-in resident's home page."""
    page = MePage(
        title="Your data",
        signed_in_at=_when(resident.signed_in_at),
    )
    return render(request, "me.html", page)


@router.get("/me/records", response_class=HTMLResponse)
async def me_records(
    request: Request, resident: CurrentResident, settings: SettingsDep
) -> HTMLResponse:
    """What each service holds about the resident, per source."""
    try:
        records = await run_in_threadpool(records_for, resident.person_id, settings=settings)
    except SubjectAccessError:
        return _gone(request)
    return render(
        request,
        "me_records.html",
        RecordsPage(title="What services hold about you", records=records),
    )


def _titles(settings: Settings, sources: list[str]) -> dict[str, str]:
    catalogue = source_catalogue(settings)
    return {s: describe_source(s, catalogue).title for s in sources}


@router.get("/me/choices", response_class=HTMLResponse)
def me_choices(request: Request, resident: CurrentResident, settings: SettingsDep) -> HTMLResponse:
    """Every purpose and the resident's choice about each."""
    try:
        choices = purpose_choices(resident.person_id, settings)
    except ChoiceError:
        return _gone(request)
    return render(request, "me_choices.html", ChoicesPage(title="Your choices", choices=choices))


def _one_choice(person_id: str, purpose_id: str, settings: Settings) -> PurposeChoice:
    for choice in purpose_choices(person_id, settings):
        if choice.id == purpose_id:
            return choice
    raise HTTPException(status_code=404)


def _choice_page(
    request: Request, person_id: str, purpose_id: str, settings: Settings, error: str | None
) -> HTMLResponse:
    choice = _one_choice(person_id, purpose_id, settings)
    page = ChoicePage(
        title=choice.title,
        choice=choice,
        sources=_titles(settings, my_sources(person_id, settings)),
        not_stopped=NOT_STOPPED,
        error=error,
    )
    return render(request, "me_choice.html", page, status_code=400 if error else 200)


PurposePath = Annotated[str, Path(pattern=PURPOSE_PATTERN, max_length=64)]


@router.get("/me/choices/{purpose_id}", response_class=HTMLResponse)
def me_choice(
    request: Request, resident: CurrentResident, settings: SettingsDep, purpose_id: PurposePath
) -> HTMLResponse:
    """One purpose: what saying no means and does not stop, and the form to change it."""
    try:
        return _choice_page(request, resident.person_id, purpose_id, settings, None)
    except ChoiceError:
        return _gone(request)


@router.post("/me/choices/{purpose_id}", response_model=None)
def me_choice_save(
    request: Request,
    resident: CurrentResident,
    settings: SettingsDep,
    purpose_id: PurposePath,
    choice: Annotated[str | None, Form()] = None,
    exclude: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Save the answer, then show the confirmation page."""
    person = resident.person_id
    try:
        target = _one_choice(person, purpose_id, settings)
    except ChoiceError:
        return _gone(request)
    if not target.opt_out_allowed:
        return _choice_page(
            request, person, purpose_id, settings, f"You cannot opt out of {target.title.lower()}."
        )
    if choice not in ("allow", "opt-out"):
        return _choice_page(
            request,
            person,
            purpose_id,
            settings,
            f"Select whether your data can be used for {target.title.lower()}",
        )
    try:
        outcome = save_choice(
            person,
            purpose_id,
            "opt-out" if choice == "opt-out" else "opt-in",
            list(exclude or []),
            settings,
        )
    except (ValueError, ChoiceError, PurposeError) as exc:
        return _choice_page(request, person, purpose_id, settings, str(exc))
    request.session["choice_changes"] = outcome.changes
    return RedirectResponse(f"/me/choices/{purpose_id}/saved", status_code=303)


@router.get("/me/choices/{purpose_id}/saved", response_class=HTMLResponse)
def me_choice_saved(
    request: Request, resident: CurrentResident, settings: SettingsDep, purpose_id: PurposePath
) -> HTMLResponse:
    """Confirms the choice in force and that it took effect immediately."""
    changes = request.session.pop("choice_changes", 0)
    try:
        choice = _one_choice(resident.person_id, purpose_id, settings)
    except ChoiceError:
        return _gone(request)
    page = ChoiceSavedPage(
        title="Your choice has been saved",
        choice=choice,
        sources=_titles(settings, choice.opted_out_sources),
        changes=changes if isinstance(changes, int) else 0,
    )
    return render(request, "me_choice_saved.html", page)


@router.get("/me/services", response_class=HTMLResponse)
def me_services(request: Request, resident: CurrentResident, settings: SettingsDep) -> HTMLResponse:
    """Which services the resident wants to deal with online or on paper."""
    page = ServicesPage(
        title="How services contact you",
        view=services_view(resident.person_id, settings),
        saved=_flash(request),
    )
    return render(request, "me_services.html", page)


@router.post("/me/services", response_model=None)
async def me_services_save(
    request: Request, resident: CurrentResident, settings: SettingsDep
) -> Response:
    """Save the preferences that changed; the old ones stay in the history."""
    form = await request.form()
    wanted = {
        str(name).removeprefix("service-"): str(value)
        for name, value in form.multi_items()
        if str(name).startswith("service-") and value in preferences.PREFERENCES
    }
    try:
        changed = await run_in_threadpool(
            preferences.set_preferences,
            resident.person_id,
            wanted,
            channel="portal",
            settings=settings,
        )
    except preferences.PreferenceError:
        raise HTTPException(status_code=400) from None
    _flash(
        request,
        f"{len(changed)} preference{'' if len(changed) == 1 else 's'} saved"
        if changed
        else "Nothing changed: these were already your preferences",
    )
    return RedirectResponse("/me/services", status_code=303)


@router.get("/me/download", response_class=HTMLResponse)
def me_download(request: Request, resident: CurrentResident) -> HTMLResponse:
    """Explains the download and offers JSON and CSV."""
    return render(request, "me_download.html", DownloadPage(title="Download your data"))


def _attachment(data: bytes, fmt: str) -> Response:
    media = "application/json" if fmt == "json" else "text/csv; charset=utf-8"
    return Response(
        data,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="candour-my-data.{fmt}"'},
    )


@router.post("/me/download", response_model=None)
async def me_download_file(
    request: Request,
    resident: CurrentResident,
    settings: SettingsDep,
    format: Annotated[str | None, Form()] = None,
) -> Response:
    """The subject access download, logged as a ``subject-access`` entry before it is sent."""
    if format not in ("json", "csv"):
        page = DownloadPage(title="Download your data", error="Select JSON or CSV")
        return render(request, "me_download.html", page, status_code=400)
    try:
        export = await run_in_threadpool(
            subject_access_export, resident.person_id, settings=settings
        )
    except SubjectAccessError:
        return _gone(request)
    return _attachment(export.json if format == "json" else export.csv, format)


# -- API -------------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    """An error: what went wrong, in words."""

    detail: str


PERSONAL: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Not signed in as a resident."},
    403: {"model": ErrorBody, "description": "CSRF token missing or wrong (unsafe methods)."},
    404: {"model": ErrorBody, "description": "Not found, or not a current person any more."},
}

api = APIRouter(prefix="/api/v1/me", tags=["resident (signed in)"], responses=PERSONAL)
api.include_router(uses.api)


class MeView(BaseModel):
    """Who is signed in (opaque id only), and the token for unsafe requests."""

    person_id: str
    signed_in_at: int
    csrf_token: str = Field(description="Send as X-CSRF-Token with PUT and POST requests.")


@api.get("", response_model=MeView)
def api_me(request: Request, resident: CurrentResident) -> MeView:
    """The signed-in resident's opaque id and a CSRF token for changes."""
    return MeView(
        person_id=resident.person_id,
        signed_in_at=resident.signed_in_at,
        csrf_token=csrf_token(request.session),
    )


@api.get("/records", response_model=PersonRecords)
async def api_records(resident: CurrentResident, settings: SettingsDep) -> PersonRecords:
    """What each service holds about the signed-in resident."""
    try:
        return await run_in_threadpool(records_for, resident.person_id, settings=settings)
    except SubjectAccessError:
        raise HTTPException(status_code=404, detail="no records for this person") from None


@api.get("/choices", response_model=list[PurposeChoice])
def api_choices(resident: CurrentResident, settings: SettingsDep) -> list[PurposeChoice]:
    """Every purpose with the resident's choice in force."""
    try:
        return purpose_choices(resident.person_id, settings)
    except ChoiceError:
        raise HTTPException(status_code=404, detail="not a current person") from None


class ChoiceChange(BaseModel):
    """A change of choice about one purpose."""

    decision: Literal["opt-in", "opt-out"]
    excluded_sources: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="With opt-in: services whose records are still left out.",
    )


class ChoiceSaved(BaseModel):
    """The choice in force after a change, and how many changes were recorded."""

    choice: PurposeChoice
    changes: int


@api.put(
    "/choices/{purpose_id}",
    response_model=ChoiceSaved,
    responses={409: {"model": ErrorBody, "description": "The purpose's rules forbid it."}},
)
def api_choice_put(
    resident: CurrentResident, settings: SettingsDep, purpose_id: PurposePath, body: ChoiceChange
) -> ChoiceSaved:
    """Change a choice; it applies to every query that starts after this returns."""
    person = resident.person_id
    try:
        target = _one_choice(person, purpose_id, settings)
        if body.decision == "opt-out" and not target.opt_out_allowed:
            raise HTTPException(status_code=409, detail=target.why_no_opt_out or "not allowed")
        outcome = save_choice(
            person, purpose_id, body.decision, body.excluded_sources, settings, channel="api"
        )
    except (ValueError, PurposeError) as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    except ChoiceError:
        raise HTTPException(status_code=404, detail="not a current person") from None
    return ChoiceSaved(choice=_one_choice(person, purpose_id, settings), changes=outcome.changes)


@api.get("/choices/history", response_model=list[dict[str, Any]])
def api_choice_history(resident: CurrentResident, settings: SettingsDep) -> list[dict[str, Any]]:
    """Every change of choice the resident made, oldest first, with its log entry."""
    return [
        {
            "purpose": r.purpose,
            "source": r.source,
            "decision": r.decision,
            "channel": r.channel,
            "recorded_at": r.recorded_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ledger_index": r.ledger_index,
        }
        for r in history(resident.person_id, settings=settings)
    ]


@api.get("/services", response_model=ServicesView)
def api_services(resident: CurrentResident, settings: SettingsDep) -> ServicesView:
    """Every service, the resident's preference for each, and the history of changes."""
    return services_view(resident.person_id, settings)


class PreferenceBody(BaseModel):
    """How the resident wants one service to deal with them."""

    preference: Literal["online", "paper"]


@api.put("/services/{source}", response_model=ServicesView)
def api_service_put(
    resident: CurrentResident,
    settings: SettingsDep,
    source: Annotated[str, Path(pattern=r"^[a-z0-9_]{1,64}$")],
    body: PreferenceBody,
) -> ServicesView:
    """Set the preference for one service (kept in the history)."""
    try:
        preferences.set_preferences(
            resident.person_id, {source: body.preference}, channel="api", settings=settings
        )
    except preferences.PreferenceError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    return services_view(resident.person_id, settings)


@api.post(
    "/download",
    responses={
        200: {
            "description": "The subject access answer as a file.",
            "content": {"application/json": {}, "text/csv": {}},
        }
    },
    response_class=Response,
)
async def api_download(
    resident: CurrentResident,
    settings: SettingsDep,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """Everything held about the resident, as JSON or CSV; logged as ``subject-access``."""
    try:
        export = await run_in_threadpool(
            subject_access_export, resident.person_id, settings=settings
        )
    except SubjectAccessError:
        return JSONResponse({"detail": "no records for this person"}, status_code=404)
    return _attachment(export.json if format == "json" else export.csv, format)
