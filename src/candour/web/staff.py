"""``/staff`` and ``/api/v1/staff``: the staff console. Every route checks role on the server.

Roles come from the register's ``staff_users`` table (see :func:`candour.web.deps.
register_roles`). Who may do what:

- data uses: every role sees them (drafts only their applicant); analysts apply and submit
  their own; IG leads approve or reject, never their own or one they analyse (the register
  refuses that itself);
- releases: checkers, IG and admins see all, analysts their own requests; checkers approve or
  reject, never their own request or an output they created (two-person rule);
- linkage review: IG and admins (every look at identities is an audited vault read);
- audit search: IG, checkers and admins;
- service tokens: admins issue and revoke them.

The domain functions re-check every rule themselves; the checks here decide what to show.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy import select

from candour.choices import load_purposes
from candour.config import Settings
from candour.disclosure import (
    OutputError,
    Release,
    ReleaseError,
    approve_release,
    get_output,
    get_release,
    list_releases,
    reject_release,
    request_release,
)
from candour.errors import CandourError
from candour.ledger import KINDS
from candour.linkage.review import ReviewError, decide, get_pair, list_pairs
from candour.register import UseError, UseView, apply_use, approve, get_use, list_uses, parse_use
from candour.register import reject as reject_use
from candour.register import submit as submit_use
from candour.store import transaction
from candour.store.disclosure import DisclosureOutput
from candour.web import preferences
from candour.web.deps import CurrentStaff, SettingsDep, StaffMember, require_role
from candour.web.logindex import IndexedEntry
from candour.web.templating import Page, render

router = APIRouter(include_in_schema=False)

ROLE_NAMES = {
    "analyst": "Analyst",
    "ig": "Information governance lead",
    "checker": "Output checker",
    "admin": "Administrator",
}
MAX_CELLS = 500
USE_PATH = Annotated[str, Path(pattern=r"^DU-[0-9]{4}-[0-9]{3,6}$")]
RELEASE_PATH = Annotated[str, Path(pattern=r"^REL-[0-9a-f]{10}$")]
DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

AnyStaff = Annotated[StaffMember, Depends(require_role("analyst", "ig", "checker", "admin"))]
Reviewers = Annotated[StaffMember, Depends(require_role("ig", "admin"))]
Auditors = Annotated[StaffMember, Depends(require_role("ig", "checker", "admin"))]
ReleaseViewers = Annotated[StaffMember, Depends(require_role("checker", "ig", "admin", "analyst"))]
Admins = Annotated[StaffMember, Depends(require_role("admin"))]


def _flash(request: Request, message: str | None = None) -> str | None:
    if message is not None:
        request.session["flash"] = message
        return None
    value = request.session.pop("flash", None)
    return value if isinstance(value, str) else None


def _stamp(value: Any) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else None


# -- view models -----------------------------------------------------------------------------


class UseRow(BaseModel):
    """A data use in the staff list."""

    use_id: str
    title: str
    organisation: str
    purpose: str
    status: str
    applicant: str


class UseStep(BaseModel):
    """One step of a use's lifecycle, with who took it."""

    from_status: str | None
    to_status: str
    actor: str
    at: str
    reason: str | None
    ledger_index: int | None


class StaffUse(BaseModel):
    """A data use as staff review it: the application in full, and its history."""

    use_id: str
    status: str
    application: dict[str, Any]
    application_hash: str
    decided_by: str | None
    decision_hash: str | None
    steps: list[UseStep]
    can_submit: bool
    can_decide: bool


class CellView(BaseModel):
    """One row of an output table and what disclosure control did to it."""

    key: str
    suppressed: str | None
    reasons: list[str]
    original: dict[str, Any]
    published: dict[str, Any]
    rounded: list[str]
    margin: bool


class ReleaseView(BaseModel):
    """A release request with the output it would release and the disclosure report."""

    release_id: str
    output_id: str
    use_id: str
    status: str
    requested_by: str
    requested_at: str | None
    checked_by: str | None
    checked_at: str | None
    reason: str | None
    ledger_index: int | None
    method: str | None
    file_name: str | None
    rows: int | None
    created_by: str | None
    summary: dict[str, Any]
    rules: dict[str, Any]
    measures: list[str]
    cells: list[CellView]
    cells_shown: int
    dp_noise: list[dict[str, Any]]
    can_decide: bool


class PairSide(BaseModel):
    """One record of a review pair, with its identity values when they were read."""

    record_key: str
    values: dict[str, str]


class WaterfallBar(BaseModel):
    """One comparison's contribution to the match weight."""

    comparison: str
    level: str
    weight: float
    width: int
    against: bool


class PairView(BaseModel):
    """A review pair side by side, with its waterfall and latest decision."""

    pair_id: int
    match_weight: float
    match_probability: float
    reason: str
    status: str
    prior_weight: float
    left: PairSide
    right: PairSide
    fields: list[str]
    waterfall: list[WaterfallBar]
    decision: str | None
    decided_by: str | None


class AuditEntry(BaseModel):
    """An entry found by audit search."""

    index: int
    kind: str
    time: str
    use_id: str | None
    release_id: str | None


class AuditResult(BaseModel):
    """One page of audit search results."""

    total: int
    start: int
    entries: list[AuditEntry]


class TokenRow(BaseModel):
    """A service API token, without its secret."""

    token_id: str
    source: str
    created_by: str
    created_at: str
    revoked_at: str | None


# -- building views --------------------------------------------------------------------------


def _use_row(view: UseView) -> UseRow:
    return UseRow(
        use_id=view.use_id,
        title=view.spec.title,
        organisation=view.spec.organisation,
        purpose=view.spec.purpose,
        status=view.status,
        applicant=view.spec.applicant,
    )


def visible_uses(staff: StaffMember, settings: Settings) -> list[UseRow]:
    """Every non-draft use, and the member's own drafts, newest first."""
    rows = [
        _use_row(v)
        for v in list_uses(settings=settings)
        if v.stored_status != "draft" or v.spec.applicant == staff.user
    ]
    return rows[::-1]


def staff_use(use_id: str, staff: StaffMember, settings: Settings) -> StaffUse:
    """One use for staff; 404 for a use they may not see (someone else's draft)."""
    try:
        view = get_use(use_id, settings=settings)
    except UseError:
        raise HTTPException(status_code=404) from None
    spec = view.spec
    if view.stored_status == "draft" and spec.applicant != staff.user:
        raise HTTPException(status_code=404)
    return StaffUse(
        use_id=view.use_id,
        status=view.status,
        application=spec.model_dump(mode="json"),
        application_hash=view.application_hash,
        decided_by=view.decided_by,
        decision_hash=view.decision_hash,
        steps=[
            UseStep(
                from_status=t.from_status,
                to_status=t.to_status,
                actor=t.actor,
                at=_stamp(t.at) or "",
                reason=t.reason,
                ledger_index=t.ledger_index,
            )
            for t in view.transitions
        ],
        can_submit=view.stored_status == "draft" and spec.applicant == staff.user,
        can_decide=(
            view.stored_status == "submitted"
            and staff.has("ig")
            and staff.user not in (spec.applicant, *spec.analysts)
        ),
    )


def _may_see_release(staff: StaffMember, release: Release, created_by: str | None) -> bool:
    if staff.has("checker", "ig", "admin"):
        return True
    return staff.user is not None and staff.user in (release.requested_by, created_by)


def _cells(report: dict[str, Any]) -> list[CellView]:
    cells = []
    for cell in report.get("cells", [])[:MAX_CELLS]:
        original = cell.get("original", {})
        published = cell.get("published", {})
        rounded = [
            c for c, v in published.items() if v is not None and v != original.get(c)
        ]
        cells.append(
            CellView(
                key=" / ".join(str(k) for k in cell.get("key", [])) or "All",
                suppressed=cell.get("suppressed"),
                reasons=list(cell.get("reasons", [])),
                original=original,
                published=published,
                rounded=rounded,
                margin=bool(cell.get("margin")),
            )
        )
    return cells


def release_view(release_id: str, staff: StaffMember, settings: Settings) -> ReleaseView:
    """A release request with its output's disclosure report; 404 if not the member's to see."""
    try:
        release = get_release(settings, release_id)
    except ReleaseError:
        raise HTTPException(status_code=404) from None
    try:
        output = get_output(settings, release.output_id)
    except OutputError:
        output = None
    created_by = output.created_by if output else None
    if not _may_see_release(staff, release, created_by):
        raise HTTPException(status_code=404)
    report = output.report if output else {}
    measures = [str(m.get("name", m)) if isinstance(m, dict) else str(m)
                for m in report.get("measures", [])]
    return ReleaseView(
        release_id=release.release_id,
        output_id=release.output_id,
        use_id=release.use_id,
        status=release.status,
        requested_by=release.requested_by,
        requested_at=_stamp(release.requested_at),
        checked_by=release.checked_by,
        checked_at=_stamp(release.checked_at),
        reason=release.reason,
        ledger_index=release.ledger_index,
        method=output.method if output else None,
        file_name=output.file_name if output else None,
        rows=output.rows if output else None,
        created_by=created_by,
        summary=dict(report.get("summary", {})),
        rules=dict(report.get("rules", {})),
        measures=measures,
        cells=_cells(report),
        cells_shown=min(len(report.get("cells", [])), MAX_CELLS),
        dp_noise=list(report.get("noise", [])),
        can_decide=(
            release.status == "pending"
            and staff.has("checker")
            and staff.user not in (release.requested_by, created_by)
        ),
    )


class OutputRow(BaseModel):
    """One of an analyst's checked outputs, and whether its release was asked for."""

    output_id: str
    use_id: str
    file_name: str
    rows: int
    method: str
    created_at: str | None
    release_id: str | None
    release_status: str | None


def my_outputs(staff: StaffMember, settings: Settings) -> list[OutputRow]:
    """The outputs the member created, newest first, with their latest release request."""
    if not staff.user:
        return []
    latest: dict[str, Release] = {}
    for release in reversed(list_releases(settings)):  # oldest first, so the newest wins
        latest[release.output_id] = release
    with transaction(settings) as session:
        rows = session.scalars(
            select(DisclosureOutput)
            .where(DisclosureOutput.created_by == staff.user)
            .order_by(DisclosureOutput.id.desc())
            .limit(200)
        ).all()
        return [
            OutputRow(
                output_id=r.output_id,
                use_id=r.use_id,
                file_name=r.file_name,
                rows=r.rows,
                method=r.method,
                created_at=_stamp(r.created_at),
                release_id=latest[r.output_id].release_id if r.output_id in latest else None,
                release_status=latest[r.output_id].status if r.output_id in latest else None,
            )
            for r in rows
        ]


def visible_releases(staff: StaffMember, settings: Settings, status: str | None) -> list[Release]:
    """Release requests the member may see, newest first."""
    found = list_releases(settings, status)
    if staff.has("checker", "ig", "admin"):
        return found
    return [r for r in found if r.requested_by == staff.user]


def pair_view(
    pair_id: int, staff: StaffMember, settings: Settings, *, identities: bool
) -> PairView:
    """A review pair side by side; identities are read from the vault (audited) when asked."""
    try:
        view = get_pair(settings, pair_id)
    except ReviewError:
        raise HTTPException(status_code=404) from None
    values: dict[str, dict[str, str]] = {}
    if identities:
        from candour.linkage.inputs import records_for_review

        values = records_for_review(
            settings,
            [view.record_key_l, view.record_key_r],
            staff.user or staff.subject,
            view.pair_id,
        )
    left = values.get(view.record_key_l, {})
    right = values.get(view.record_key_r, {})
    fields = sorted(set(left) | set(right))
    biggest = max([abs(s.weight) for s in view.waterfall] + [abs(view.prior_weight), 1.0])
    bars = [
        WaterfallBar(
            comparison="Prior (two records chosen at random)",
            level="",
            weight=view.prior_weight,
            width=round(abs(view.prior_weight) / biggest * 20),
            against=view.prior_weight < 0,
        )
    ]
    for step in view.waterfall:
        total = step.weight + step.tf_weight
        bars.append(
            WaterfallBar(
                comparison=step.comparison.replace("_", " "),
                level=step.level,
                weight=total,
                width=round(abs(total) / biggest * 20),
                against=total < 0,
            )
        )
    return PairView(
        pair_id=view.pair_id,
        match_weight=view.match_weight,
        match_probability=view.match_probability,
        reason=view.reason,
        status=view.status,
        prior_weight=view.prior_weight,
        left=PairSide(record_key=view.record_key_l, values=left),
        right=PairSide(record_key=view.record_key_r, values=right),
        fields=fields,
        waterfall=bars,
        decision=view.decision,
        decided_by=view.decided_by,
    )


def _audit_entry(entry: IndexedEntry) -> AuditEntry:
    return AuditEntry(
        index=entry.index, kind=entry.kind, time=entry.time, use_id=entry.use_id,
        release_id=entry.release_id,
    )


def _tokens(settings: Settings) -> list[TokenRow]:
    return [
        TokenRow(
            token_id=t.token_id,
            source=t.source,
            created_by=t.created_by,
            created_at=_stamp(t.created_at) or "",
            revoked_at=_stamp(t.revoked_at),
        )
        for t in preferences.list_tokens(settings=settings)
    ]


# -- pages -----------------------------------------------------------------------------------


class StaffPage(Page):
    """Who is signed in, with which roles, and what they can open."""

    name: str
    user: str | None
    roles: list[str]
    codes: list[str]


class UsesPage(Page):
    """Data uses for staff."""

    uses: list[UseRow]
    can_apply: bool
    flash: str | None


class UsePage(Page):
    """One data use, with the actions the member may take."""

    use: StaffUse
    error: str | None
    flash: str | None


class NewUsePage(Page):
    """Apply for a data use by pasting its use.yaml."""

    text: str
    error: str | None
    purposes: list[str]


class ReleasesPage(Page):
    """Release requests, and the analyst's own outputs that could be requested."""

    releases: list[dict[str, Any]]
    status: str | None
    outputs: list[OutputRow]
    flash: str | None


class ReleasePage(Page):
    """One release request and its output check."""

    release: ReleaseView
    error: str | None
    flash: str | None


class PairsPage(Page):
    """The clerical review queue."""

    pairs: list[dict[str, Any]]
    status: str


class PairPage(Page):
    """One pair, side by side, with its waterfall."""

    pair: PairView
    flash: str | None


class AuditPage(Page):
    """Audit search over the public log."""

    kinds: list[str]
    kind: str | None
    use_id: str | None
    date_from: str | None
    date_to: str | None
    result: AuditResult
    previous_start: int | None
    next_start: int | None
    query: str


class TokensPage(Page):
    """Service API tokens."""

    tokens: list[TokenRow]
    sources: list[str]
    issued: str | None
    issued_source: str | None
    flash: str | None


@router.get("/staff", response_class=HTMLResponse)
def staff_home(request: Request, staff: CurrentStaff) -> HTMLResponse:
    """The staff home page: the signed-in member, their roles and their areas."""
    page = StaffPage(
        title="Staff",
        name=staff.name or "Member of staff",
        user=staff.user,
        roles=[ROLE_NAMES[r] for r in staff.roles],
        codes=list(staff.roles),
    )
    return render(request, "staff.html", page)


@router.get("/staff/uses", response_class=HTMLResponse)
def staff_uses(request: Request, staff: AnyStaff, settings: SettingsDep) -> HTMLResponse:
    """Data-use applications and uses."""
    page = UsesPage(
        title="Data uses",
        uses=visible_uses(staff, settings),
        can_apply=staff.has("analyst"),
        flash=_flash(request),
    )
    return render(request, "staff_uses.html", page)


def _new_use_page(
    request: Request, settings: Settings, text: str, error: str | None
) -> HTMLResponse:
    page = NewUsePage(
        title="Apply for a data use",
        text=text,
        error=error,
        purposes=load_purposes(settings).ids(),
    )
    return render(request, "staff_use_new.html", page, status_code=400 if error else 200)


@router.get("/staff/uses/new", response_class=HTMLResponse)
def staff_use_new(
    request: Request,
    settings: SettingsDep,
    staff: Annotated[StaffMember, Depends(require_role("analyst"))],
) -> HTMLResponse:
    """The application form: the use.yaml an applicant would give the CLI."""
    return _new_use_page(request, settings, "", None)


@router.post("/staff/uses/new", response_model=None)
def staff_use_apply(
    request: Request,
    settings: SettingsDep,
    staff: Annotated[StaffMember, Depends(require_role("analyst"))],
    application: Annotated[str, Form(max_length=100_000)] = "",
) -> Response:
    """Register the application as a draft, with the signed-in analyst as applicant."""
    try:
        spec = parse_use(application, "your application")
        if spec.applicant != staff.user:
            raise CandourError(
                f"applicant must be you ({staff.user}); you cannot apply for someone else"
            )
        view = apply_use(spec, purposes=load_purposes(settings), settings=settings)
    except CandourError as exc:
        return _new_use_page(request, settings, application, str(exc))
    _flash(request, f"{view.use_id} saved as a draft. Submit it when it is ready.")
    return RedirectResponse(f"/staff/uses/{view.use_id}", status_code=303)


def _use_page(
    request: Request, staff: StaffMember, settings: Settings, use_id: str, error: str | None
) -> HTMLResponse:
    use = staff_use(use_id, staff, settings)
    page = UsePage(title=f"{use.use_id}: {use.application['title']}", use=use, error=error,
                   flash=_flash(request))
    return render(request, "staff_use.html", page, status_code=400 if error else 200)


@router.get("/staff/uses/{use_id}", response_class=HTMLResponse)
def staff_use_detail(
    request: Request, staff: AnyStaff, settings: SettingsDep, use_id: USE_PATH
) -> HTMLResponse:
    """One data use with its application, history and the member's actions."""
    return _use_page(request, staff, settings, use_id, None)


@router.post("/staff/uses/{use_id}/{action}", response_model=None)
def staff_use_act(
    request: Request,
    staff: AnyStaff,
    settings: SettingsDep,
    use_id: USE_PATH,
    action: Annotated[Literal["submit", "approve", "reject"], Path()],
) -> Response:
    """Submit (applicant), approve or reject (an IG lead who is not involved)."""
    staff_use(use_id, staff, settings)  # 404 for a use the member may not see
    if action == "submit" and not staff.has("analyst"):
        raise HTTPException(status_code=403)
    if action in ("approve", "reject") and not staff.has("ig"):
        raise HTTPException(status_code=403)
    assert staff.user is not None  # a member with a role is a register user
    try:
        if action == "submit":
            submit_use(use_id, staff.user, settings=settings)
            message = f"{use_id} submitted for approval"
        elif action == "approve":
            approve(use_id, staff.user, purposes=load_purposes(settings), settings=settings)
            message = f"{use_id} approved"
        else:
            reject_use(use_id, staff.user, settings=settings)
            message = f"{use_id} rejected"
    except CandourError as exc:
        return _use_page(request, staff, settings, use_id, str(exc))
    _flash(request, message)
    return RedirectResponse(f"/staff/uses/{use_id}", status_code=303)


def _release_row(r: Release) -> dict[str, Any]:
    return {
        "release_id": r.release_id,
        "output_id": r.output_id,
        "use_id": r.use_id,
        "status": r.status,
        "requested_by": r.requested_by,
        "requested_at": _stamp(r.requested_at),
        "checked_by": r.checked_by,
    }


ReleaseStatus = Annotated[Literal["pending", "rejected", "released"] | None, Query()]


@router.get("/staff/releases", response_class=HTMLResponse)
def staff_releases(
    request: Request, staff: ReleaseViewers, settings: SettingsDep, status: ReleaseStatus = None
) -> HTMLResponse:
    """Release requests, newest first (analysts see their own)."""
    page = ReleasesPage(
        title="Release requests",
        releases=[_release_row(r) for r in visible_releases(staff, settings, status)],
        status=status,
        outputs=my_outputs(staff, settings) if staff.has("analyst") else [],
        flash=_flash(request),
    )
    return render(request, "staff_releases.html", page)


@router.post("/staff/outputs/{output_id}/request", response_model=None)
def staff_output_request(
    request: Request,
    staff: Annotated[StaffMember, Depends(require_role("analyst"))],
    settings: SettingsDep,
    output_id: Annotated[str, Path(pattern=r"^OUT-[0-9a-f]{10}$")],
) -> Response:
    """Ask for one of the analyst's own outputs to be checked and released."""
    try:
        output = get_output(settings, output_id)
    except OutputError:
        raise HTTPException(status_code=404) from None
    if output.created_by != staff.user:
        raise HTTPException(status_code=404)
    assert staff.user is not None
    try:
        release = request_release(settings, output_id, user=staff.user)
    except CandourError as exc:
        _flash(request, f"Not requested: {exc}")
        return RedirectResponse("/staff/releases", status_code=303)
    _flash(request, f"Release {release.release_id} requested: a checker will look at it")
    return RedirectResponse(f"/staff/releases/{release.release_id}", status_code=303)


def _release_page(
    request: Request, staff: StaffMember, settings: Settings, release_id: str, error: str | None
) -> HTMLResponse:
    view = release_view(release_id, staff, settings)
    page = ReleasePage(title=f"Output check: {view.release_id}", release=view, error=error,
                       flash=_flash(request))
    return render(request, "staff_release.html", page, status_code=400 if error else 200)


@router.get("/staff/releases/{release_id}", response_class=HTMLResponse)
def staff_release(
    request: Request, staff: ReleaseViewers, settings: SettingsDep, release_id: RELEASE_PATH
) -> HTMLResponse:
    """One release request: the output's cells, which were suppressed or rounded, and why."""
    return _release_page(request, staff, settings, release_id, None)


@router.post("/staff/releases/{release_id}", response_model=None)
def staff_release_decide(
    request: Request,
    staff: Annotated[StaffMember, Depends(require_role("checker"))],
    settings: SettingsDep,
    release_id: RELEASE_PATH,
    decision: Annotated[str | None, Form()] = None,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Approve (copy out and log) or reject (with a reason) a pending release."""
    release_view(release_id, staff, settings)
    assert staff.user is not None
    try:
        if decision == "approve":
            approve_release(settings, release_id, checker=staff.user)
            message = f"{release_id} released and written to the public log"
        elif decision == "reject":
            reject_release(settings, release_id, checker=staff.user, reason=reason)
            message = f"{release_id} rejected"
        else:
            return _release_page(request, staff, settings, release_id,
                                 "Select whether to release or reject the output")
    except CandourError as exc:
        return _release_page(request, staff, settings, release_id, str(exc))
    _flash(request, message)
    return RedirectResponse(f"/staff/releases/{release_id}", status_code=303)


PairStatus = Annotated[Literal["pending", "decided", "stale", "all"], Query()]


def _pair_row(p: Any) -> dict[str, Any]:
    return {
        "pair_id": p.pair_id,
        "match_weight": round(p.match_weight, 2),
        "match_probability": round(p.match_probability, 4),
        "reason": p.reason,
        "status": p.status,
        "decision": p.decision,
    }


@router.get("/staff/linkage", response_class=HTMLResponse)
def staff_pairs(
    request: Request, staff: Reviewers, settings: SettingsDep, status: PairStatus = "pending"
) -> HTMLResponse:
    """The clerical review queue, least certain first."""
    page = PairsPage(
        title="Linkage review",
        pairs=[_pair_row(p) for p in list_pairs(settings, status=status, limit=100)],
        status=status,
    )
    return render(request, "staff_pairs.html", page)


@router.get("/staff/linkage/{pair_id}", response_class=HTMLResponse)
async def staff_pair(
    request: Request,
    staff: Reviewers,
    settings: SettingsDep,
    pair_id: Annotated[int, Path(ge=1, le=2**62)],
) -> HTMLResponse:
    """Two records side by side (an audited vault read) with the match-weight waterfall."""
    view = await run_in_threadpool(pair_view, pair_id, staff, settings, identities=True)
    page = PairPage(title=f"Review pair {pair_id}", pair=view, flash=_flash(request))
    return render(request, "staff_pair.html", page)


@router.post("/staff/linkage/{pair_id}", response_model=None)
def staff_pair_decide(
    request: Request,
    staff: Reviewers,
    settings: SettingsDep,
    pair_id: Annotated[int, Path(ge=1, le=2**62)],
    decision: Annotated[str | None, Form()] = None,
) -> Response:
    """Record a match or non-match; it applies from the next link run."""
    if decision not in ("match", "non-match"):
        raise HTTPException(status_code=400)
    try:
        decide(settings, pair_id, decision, staff.user or staff.subject)
    except ReviewError:
        raise HTTPException(status_code=404) from None
    _flash(request, f"Pair {pair_id}: {decision}. It applies from the next link run.")
    return RedirectResponse(f"/staff/linkage/{pair_id}", status_code=303)


def audit_search(
    request: Request,
    kind: str | None,
    use_id: str | None,
    date_from: str | None,
    date_to: str | None,
    start: int,
    limit: int = 50,
) -> AuditResult:
    """Search the public log by kind, use id and date (inclusive, UTC)."""
    total, entries = request.app.state.log_index.search(
        kind=kind or None, use_id=use_id or None, date_from=date_from or None,
        date_to=date_to or None, start=start, limit=limit,
    )
    return AuditResult(total=total, start=start, entries=[_audit_entry(e) for e in entries])


KindQuery = Annotated[Literal[KINDS] | None, Query()]  # type: ignore[valid-type]
UseQuery = Annotated[str | None, Query(pattern=r"^(DU-[0-9]{4}-[0-9]{3,6})?$")]
DateQuery = Annotated[str | None, Query(pattern=r"^([0-9]{4}-[0-9]{2}-[0-9]{2})?$")]
StartQuery = Annotated[int, Query(ge=0, le=10**12)]


@router.get("/staff/audit", response_class=HTMLResponse)
def staff_audit(
    request: Request,
    staff: Auditors,
    kind: KindQuery = None,
    use_id: UseQuery = None,
    date_from: DateQuery = None,
    date_to: DateQuery = None,
    start: StartQuery = 0,
) -> HTMLResponse:
    """Audit search over the public log."""
    result = audit_search(request, kind, use_id, date_from, date_to, start)
    params = {k: v for k, v in (("kind", kind), ("use_id", use_id), ("date_from", date_from),
                                ("date_to", date_to)) if v}
    page = AuditPage(
        title="Audit search",
        kinds=list(KINDS),
        kind=kind,
        use_id=use_id,
        date_from=date_from,
        date_to=date_to,
        result=result,
        previous_start=max(0, start - 50) if start > 0 else None,
        next_start=start + 50 if start + 50 < result.total else None,
        query=urlencode(params),
    )
    return render(request, "staff_audit.html", page)


def _tokens_page(
    request: Request, settings: Settings, issued: str | None = None, source: str | None = None
) -> HTMLResponse:
    page = TokensPage(
        title="Service API tokens",
        tokens=_tokens(settings),
        sources=preferences.known_sources(settings),
        issued=issued,
        issued_source=source,
        flash=_flash(request),
    )
    return render(request, "staff_tokens.html", page)


@router.get("/staff/services", response_class=HTMLResponse)
def staff_tokens(request: Request, staff: Admins, settings: SettingsDep) -> HTMLResponse:
    """Tokens that let services read residents' contact preferences."""
    return _tokens_page(request, settings)


@router.post("/staff/services", response_model=None)
def staff_token_issue(
    request: Request,
    staff: Admins,
    settings: SettingsDep,
    source: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Issue a token for one service; it is shown once, on this response only."""
    try:
        token = preferences.issue_token(source, created_by=staff.user or "", settings=settings)
    except preferences.PreferenceError:
        raise HTTPException(status_code=400) from None
    return _tokens_page(request, settings, token, source)


@router.post("/staff/services/{token_id}/revoke", response_model=None)
def staff_token_revoke(
    request: Request,
    staff: Admins,
    settings: SettingsDep,
    token_id: Annotated[str, Path(pattern=r"^[a-z0-9]{12}$")],
) -> Response:
    """Revoke a token; the service's next request is refused."""
    try:
        preferences.revoke_token(token_id, settings=settings)
    except preferences.PreferenceError:
        raise HTTPException(status_code=404) from None
    _flash(request, f"Token {token_id} revoked")
    return RedirectResponse("/staff/services", status_code=303)


# -- API -------------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    """An error: what went wrong, in words."""

    detail: str


STAFF_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Not signed in as staff."},
    403: {"model": ErrorBody, "description": "The member's role does not allow this."},
    404: {"model": ErrorBody, "description": "Not found, or not the member's to see."},
}
api = APIRouter(prefix="/api/v1/staff", tags=["staff console"], responses=STAFF_ERRORS)


@api.get("/uses", response_model=list[UseRow])
def api_uses(staff: AnyStaff, settings: SettingsDep) -> list[UseRow]:
    """Data uses the member may see, newest first."""
    return visible_uses(staff, settings)


@api.get("/uses/{use_id}", response_model=StaffUse)
def api_use(staff: AnyStaff, settings: SettingsDep, use_id: USE_PATH) -> StaffUse:
    """One data use with its application and history."""
    return staff_use(use_id, staff, settings)


@api.get("/releases", response_model=list[dict[str, Any]])
def api_releases(
    staff: ReleaseViewers, settings: SettingsDep, status: ReleaseStatus = None
) -> list[dict[str, Any]]:
    """Release requests the member may see, newest first."""
    return [_release_row(r) for r in visible_releases(staff, settings, status)]


@api.get("/releases/{release_id}", response_model=ReleaseView)
def api_release(staff: ReleaseViewers, settings: SettingsDep, release_id: RELEASE_PATH) -> Any:
    """One release request with its disclosure report."""
    return release_view(release_id, staff, settings)


@api.get("/linkage/pairs", response_model=list[dict[str, Any]])
def api_pairs(
    staff: Reviewers, settings: SettingsDep, status: PairStatus = "pending"
) -> list[dict[str, Any]]:
    """The clerical review queue, least certain first (no identities)."""
    return [_pair_row(p) for p in list_pairs(settings, status=status, limit=100)]


@api.get("/linkage/pairs/{pair_id}", response_model=PairView)
def api_pair(
    staff: Reviewers, settings: SettingsDep, pair_id: Annotated[int, Path(ge=1, le=2**62)]
) -> PairView:
    """One pair's weights and waterfall. Identities are shown only on the page (audited)."""
    return pair_view(pair_id, staff, settings, identities=False)


@api.get("/audit", response_model=AuditResult)
def api_audit(
    request: Request,
    staff: Auditors,
    kind: KindQuery = None,
    use_id: UseQuery = None,
    date_from: DateQuery = None,
    date_to: DateQuery = None,
    start: StartQuery = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> AuditResult:
    """Entries of the public log by kind, use id and date (newest first)."""
    return audit_search(request, kind, use_id, date_from, date_to, start, limit)
