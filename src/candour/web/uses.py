"""Every use of my data: ``/me/uses`` and ``/api/v1/me/uses``, with a proof for each entry.

A resident sees each logged query whose cohort included them (from the gate's cohort lookup
index, :func:`candour.gate.queries_including`), newest first and 20 a page, with the data use's
title, organisation and purpose from the register, and the entries of the public log that are
about them: their choice changes, subject access answers and re-identifications, each with the
nonce and commitment that make it recognisably theirs and nobody else's.

Each entry has a proof to download (:class:`EntryProof`): the exact entry bytes, its index, its
inclusion proof in the newest published tree and that tree's signed checkpoint, checked before it
is served. Anyone can check it with the log's verifier key; for a query entry it is also a
:class:`~candour.gate.Receipt` (``Receipt.from_json(proof).verify(verifier)``).

As every resident route, these read the person id from the signed session only. Proof addresses
name a ledger index, never a person; a resident asking for the proof of an entry that is not
about them (another resident's entry, or a query that did not include them) gets 404, exactly as
for an index that does not exist, so the answer says nothing about anyone else.

Finding one's own choice changes uses the store's history (each change keeps its ledger index).
Subject access and re-identification entries are not indexed by person anywhere (by design: the
store keeps no link from a person to them), so they are found by checking the commitment of each
such entry with the person's key; :class:`PersonEntryIndex` keeps those entries' nonces and
commitments in memory (public data) and reads only entries appended since the last look.
"""

from __future__ import annotations

import base64
import hmac
import json
import threading
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from candour import ledger
from candour.choices import history as choice_history
from candour.config import Settings
from candour.gate import GateError, person_num_of, queries_including
from candour.gate.records import QueryRecord
from candour.web.auth import MessagePage
from candour.web.deps import CurrentResident, SettingsDep
from candour.web.register import RegisterCache, UseSummary, purpose_titles
from candour.web.templating import Page, render
from candour.web.transparency import NotFound, PublicLog

PER_PAGE = 20
MAX_PAGE_NUMBER = 1_000_000
MAX_INDEX = (1 << 63) - 1
PROOF_FORMAT: Literal["candour/entry-proof/v1"] = "candour/entry-proof/v1"
# Per-person entries found by commitment rather than by a store index (see the module doc).
SCANNED_KINDS = ("subject-access", "reidentification")
PERSON_KINDS = ("choice-change", *SCANNED_KINDS)


def gone_page(request: Request) -> HTMLResponse:
    """The page for a signed-in person the person index no longer knows (ids merged)."""
    page = MessagePage(
        title="We cannot find your records",
        heading="We cannot find your records",
        paragraphs=[
            "The records that services share with Candour were updated since you signed in, "
            "so we need to confirm who you are again.",
            "Sign out, then sign in again.",
        ],
    )
    return render(request, "message.html", page, status_code=404)


# -- view models -----------------------------------------------------------------------------


class QueryUse(BaseModel):
    """One query whose cohort included the resident."""

    query_id: str
    use_id: str
    title: str
    organisation: str
    purpose: str
    purpose_title: str
    date: str = Field(description="When the query ran (UTC), YYYY-MM-DD.")
    date_text: str
    cohort_exact: bool = Field(
        description="False when the cohort counted everyone in the tables the query read, so "
        "the query may not in fact have used this person's records."
    )
    ledger_index: int | None
    register_url: str
    proof_url: str | None


class PersonEntry(BaseModel):
    """An entry of the public log about the resident, with the commitment that shows it."""

    ledger_index: int
    kind: Literal["choice-change", "subject-access", "reidentification"]
    what: str
    time: str
    time_text: str
    nonce: str
    commitment: str = Field(description="HMAC-SHA256(the person's key, nonce), in hex.")
    use_id: str | None = None
    proof_url: str


class UsesView(BaseModel):
    """One page of the queries that included the resident, and the entries about them."""

    total: int = Field(description="How many queries included the resident, in all.")
    page: int
    pages: int
    per_page: int
    queries: list[QueryUse]
    entries: list[PersonEntry] = Field(
        description="Choice changes, subject access answers and re-identifications about the "
        "resident, newest first (every one, on every page)."
    )


class EntryProof(BaseModel):
    """One entry, its inclusion proof and the signed checkpoint: checkable offline.

    ``entry`` is the exact leaf (canonical JSON, UTF-8), also in ``entry_base64``. A query's
    proof also reads as a gate receipt (``query_id``, ``ledger_index``, ``entry``,
    ``checkpoint``, ``inclusion_proof``).
    """

    format: Literal["candour/entry-proof/v1"] = PROOF_FORMAT
    ledger_index: int
    kind: str
    query_id: str | None = None
    entry: str
    entry_base64: str
    inclusion_proof: dict[str, Any]
    checkpoint: str
    log_verifier_key: str
    how_to_check: str


HOW_TO_CHECK = (
    "Check that the checkpoint is signed by the log's verifier key (log_verifier_key); that "
    "SHA-256(0x00 || entry) is inclusion_proof.leaf_hash; that the RFC 6962 inclusion proof "
    "leads from that leaf at ledger_index to inclusion_proof.root for inclusion_proof.tree_size; "
    "and that the checkpoint's size and root hash are that tree_size and root. Later "
    "checkpoints include this one's tree if the log's consistency proofs hold."
)


# -- finding the entries about a person ------------------------------------------------------


class PersonEntryIndex:
    """The public log's subject access and re-identification entries, kept in memory.

    Holds what those entries already say in public (index, kind, time, nonce, commitment, use
    id). :meth:`about` checks each commitment with one person's key: one HMAC per entry, with
    the nonces and commitments kept as bytes so the check is a single C call each.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._size = 0
        self._entries: list[dict[str, Any]] = []
        self._checks: list[tuple[bytes, bytes]] = []

    def refresh(self, log: PublicLog) -> None:
        """Read the entries published since the last refresh."""
        with self._lock:
            if log.size < self._size:  # a different log at the same path: start again
                self._size, self._entries, self._checks = 0, [], []
            for i in range(self._size, log.size):
                try:
                    parsed = json.loads(log.reader.entry(i))
                    if not isinstance(parsed, dict) or parsed.get("kind") not in SCANNED_KINDS:
                        continue
                    check = (bytes.fromhex(parsed["nonce"]), bytes.fromhex(parsed["commitment"]))
                except (ValueError, KeyError, TypeError):
                    continue  # not an entry anyone could recognise as theirs
                self._entries.append({"index": i, **parsed})
                self._checks.append(check)
            self._size = max(self._size, log.size)

    def about(self, key: bytes, log: PublicLog) -> list[dict[str, Any]]:
        """The indexed entries whose commitment was made with ``key``."""
        self.refresh(log)
        with self._lock:
            entries, checks = list(self._entries), list(self._checks)
        # The same HMAC as ledger.entries.commitment, compared as bytes (all of it is public).
        return [
            entry
            for entry, (nonce, commitment) in zip(entries, checks, strict=True)
            if hmac.digest(key, nonce, "sha256") == commitment
        ]


_indexes: dict[tuple[str, str], PersonEntryIndex] = {}
_indexes_lock = threading.Lock()


def person_entry_index(settings: Settings, log: PublicLog) -> PersonEntryIndex:
    """The process's index for this home's log (keyed by the home and the log's key)."""
    key = (str(settings.home), log.verifier.vkey())
    with _indexes_lock:
        found = _indexes.get(key)
        if found is None:
            found = _indexes[key] = PersonEntryIndex(settings)
        return found


def _when(moment: datetime) -> str:
    return moment.strftime("%-d %B %Y, %H:%M UTC")


def _entry_time(value: Any) -> tuple[str, str]:
    text = value if isinstance(value, str) else ""
    try:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return text, text
    return text, _when(moment)


def _what(entry: dict[str, Any], titles: dict[str, str], uses: dict[str, UseSummary]) -> str:
    kind = entry.get("kind")
    purpose = str(entry.get("purpose") or "")
    purpose_title = titles.get(purpose, purpose).lower()
    if kind == "choice-change":
        said = "no" if entry.get("choice") == "opt-out" else "yes"
        scope = " for one service's records" if entry.get("source") else ""
        return f"You said {said} to {purpose_title}{scope}"
    if kind == "subject-access":
        return "You downloaded your data (a subject access request)"
    use = uses.get(str(entry.get("use_id")))
    under = f" under {use.title}" if use else f" under {entry.get('use_id')}"
    return f"You were identified for {purpose_title}{under}"


def _person_entry(
    entry: dict[str, Any], index: int, titles: dict[str, str], uses: dict[str, UseSummary]
) -> PersonEntry:
    iso, text = _entry_time(entry.get("time"))
    use_id = entry.get("use_id")
    return PersonEntry(
        ledger_index=index,
        kind=entry["kind"],
        what=_what(entry, titles, uses),
        time=iso,
        time_text=text,
        nonce=str(entry["nonce"]),
        commitment=str(entry["commitment"]),
        use_id=use_id if isinstance(use_id, str) else None,
        proof_url=f"/me/uses/{index}/proof",
    )


def entries_about(
    person_id: str,
    *,
    settings: Settings,
    log: PublicLog | None = None,
    uses: dict[str, UseSummary] | None = None,
) -> list[PersonEntry]:
    """Choice-change, subject-access and re-identification entries about the person, newest
    first; each one's commitment is checked with the person's key before it is listed."""
    log = log or PublicLog(settings)
    # Entries made before an HMAC key rotation carry commitments under the retired key.
    keys = ledger.person_keys_for(person_id, settings=settings)
    titles = purpose_titles(settings)
    uses = uses or {}
    found: dict[int, dict[str, Any]] = {}
    for change in choice_history(person_id, settings=settings):
        index = change.ledger_index
        if index is None or not 0 <= index < log.size:
            continue
        try:
            entry = json.loads(log.reader.entry(index))
        except ValueError:
            continue
        # The store says it is theirs; the commitment must say so too before it is shown.
        if (
            isinstance(entry, dict)
            and entry.get("kind") == "choice-change"
            and any(ledger.is_about(entry, key) for key in keys)
        ):
            found[index] = entry
    index_of_entries = person_entry_index(settings, log)
    for key in keys:
        for entry in index_of_entries.about(key, log):
            found[int(entry["index"])] = entry
    return [_person_entry(found[i], i, titles, uses) for i in sorted(found, reverse=True)]


def _query_use(
    record: QueryRecord, uses: dict[str, UseSummary], titles: dict[str, str]
) -> QueryUse:
    use = uses.get(record.use_id)
    return QueryUse(
        query_id=record.query_id,
        use_id=record.use_id,
        title=use.title if use else record.use_id,
        organisation=use.organisation if use else "",
        purpose=record.purpose,
        purpose_title=titles.get(record.purpose, record.purpose),
        date=record.finished_at.strftime("%Y-%m-%d"),
        date_text=_when(record.finished_at),
        cohort_exact=record.cohort_exact,
        ledger_index=record.ledger_index,
        register_url=f"/register/{record.use_id}",
        proof_url=(
            f"/me/uses/{record.ledger_index}/proof" if record.ledger_index is not None else None
        ),
    )


class UnknownPerson(LookupError):
    """The signed-in person id has no person number (never issued)."""


def uses_view(
    person_id: str,
    *,
    settings: Settings,
    page: int = 1,
    uses: dict[str, UseSummary] | None = None,
) -> UsesView:
    """Page ``page`` (20 a page, newest first) of the queries whose cohort included the person,
    and every log entry about them. ``uses`` maps use ids to the register's summaries (the
    app's cached register); read from the register when not given.

    Raises :class:`UnknownPerson` for a person id never issued, and :class:`LookupError` for a
    page past the last.
    """
    try:
        num = person_num_of(person_id, settings=settings)
    except GateError:
        raise UnknownPerson(person_id) from None
    if uses is None:
        uses = {u.use_id: u for u in RegisterCache(settings).uses()}
    titles = purpose_titles(settings)
    # One lookup gives both the count and the page: the cohort index is read once.
    everything = queries_including(num, settings=settings, newest_first=True)
    total = len(everything)
    pages = max(1, -(-total // PER_PAGE))
    if page > pages:
        raise LookupError(f"there is no page {page}")
    start = (page - 1) * PER_PAGE
    return UsesView(
        total=total,
        page=page,
        pages=pages,
        per_page=PER_PAGE,
        queries=[_query_use(r, uses, titles) for r in everything[start : start + PER_PAGE]],
        entries=entries_about(person_id, settings=settings, uses=uses),
    )


def _owned(
    person_id: str, index: int, entry: dict[str, Any], settings: Settings
) -> tuple[bool, str | None]:
    """Whether entry ``index`` is the person's (a query that included them, or an entry about
    them), and for a query its id."""
    kind = entry.get("kind")
    if kind == "query":
        try:
            num = person_num_of(person_id, settings=settings)
        except GateError:
            return False, None
        for record in queries_including(num, settings=settings):
            if record.ledger_index == index:
                return True, record.query_id
        return False, None
    if kind in PERSON_KINDS:
        keys = ledger.person_keys_for(person_id, settings=settings)
        return any(ledger.is_about(entry, key) for key in keys), None
    return False, None


def entry_proof(person_id: str, index: int, *, settings: Settings) -> EntryProof:
    """The proof of entry ``index``, if it is the person's (else :class:`NotFound`).

    The proof is built from the published files through the verifier key and verified before it
    is returned (:meth:`PublicLog.proof`).
    """
    log = PublicLog(settings)
    bundle = log.proof(index)
    mine, query_id = _owned(person_id, index, bundle.entry, settings)
    if not mine:
        raise NotFound(f"entry {index} is not one of yours")
    return EntryProof(
        ledger_index=index,
        kind=str(bundle.entry.get("kind")),
        query_id=query_id,
        entry=base64.b64decode(bundle.entry_base64).decode("utf-8"),
        entry_base64=bundle.entry_base64,
        inclusion_proof=bundle.proof,
        checkpoint=bundle.checkpoint,
        log_verifier_key=log.verifier.vkey(),
        how_to_check=HOW_TO_CHECK,
    )


# -- pages -----------------------------------------------------------------------------------


class PageLink(BaseModel):
    """One item of the GOV.UK pagination component: a page number, or an ellipsis."""

    number: int | None
    href: str | None
    current: bool = False
    ellipsis: bool = False


def page_links(page: int, pages: int, base: str = "/me/uses") -> list[PageLink]:
    """Numbered pagination as GOV.UK recommends: first, last, and the current page with its
    neighbours, with ellipses for the gaps."""
    shown = sorted({1, pages, page - 1, page, page + 1} & set(range(1, pages + 1)))
    items: list[PageLink] = []
    previous = 0
    for number in shown:
        if number - previous > 1:
            items.append(PageLink(number=None, href=None, ellipsis=True))
        items.append(PageLink(number=number, href=f"{base}?page={number}", current=number == page))
        previous = number
    return items


class UsesPage(Page):
    """Every use of the resident's data: one page of queries, and the entries about them."""

    view: UsesView
    links: list[PageLink]


def _register_uses(request: Request) -> dict[str, UseSummary]:
    cache: RegisterCache = request.app.state.register_cache
    return {u.use_id: u for u in cache.uses()}


PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE_NUMBER, description="Page, from 1.")]
Index = Annotated[int, Path(ge=0, le=MAX_INDEX, description="The entry's index in the log.")]

router = APIRouter(include_in_schema=False)


@router.get("/me/uses", response_class=HTMLResponse)
async def me_uses(
    request: Request, resident: CurrentResident, settings: SettingsDep, page: PageNumber = 1
) -> HTMLResponse:
    """Every query that included the resident (20 a page, newest first) and every entry
    about them, each with its proof."""
    try:
        view = await run_in_threadpool(
            uses_view,
            resident.person_id,
            settings=settings,
            page=page,
            uses=_register_uses(request),
        )
    except UnknownPerson:
        return gone_page(request)
    except LookupError:
        raise HTTPException(status_code=404) from None
    title = "Every use of your data"
    if view.pages > 1:
        title += f" (page {view.page} of {view.pages})"
    return render(
        request,
        "me_uses.html",
        UsesPage(title=title, view=view, links=page_links(view.page, view.pages)),
    )


def _proof_response(proof: EntryProof) -> JSONResponse:
    return JSONResponse(
        proof.model_dump(mode="json"),
        headers={
            "Content-Disposition": (
                f'attachment; filename="candour-entry-{proof.ledger_index}-proof.json"'
            )
        },
    )


@router.get("/me/uses/{index}/proof", response_model=None)
async def me_use_proof(
    request: Request, resident: CurrentResident, settings: SettingsDep, index: Index
) -> Response:
    """The proof of one of the resident's entries, as a JSON download (404 if not theirs)."""
    try:
        proof = await run_in_threadpool(entry_proof, resident.person_id, index, settings=settings)
    except NotFound:
        raise HTTPException(status_code=404) from None
    return _proof_response(proof)


# -- API (mounted under /api/v1/me by candour.web.me) ----------------------------------------

api = APIRouter(prefix="/uses")


@api.get("", response_model=UsesView)
async def api_uses(
    request: Request, resident: CurrentResident, settings: SettingsDep, page: PageNumber = 1
) -> UsesView:
    """As ``/me/uses``: one page of the queries that included the resident, and the entries
    about them."""
    try:
        return await run_in_threadpool(
            uses_view,
            resident.person_id,
            settings=settings,
            page=page,
            uses=_register_uses(request),
        )
    except UnknownPerson:
        raise HTTPException(status_code=404, detail="not a current person") from None
    except LookupError:
        raise HTTPException(status_code=404, detail=f"there is no page {page}") from None


@api.get(
    "/{index}/proof",
    response_model=EntryProof,
    responses={200: {"description": "The proof, as a download."}},
)
async def api_use_proof(
    resident: CurrentResident, settings: SettingsDep, index: Index
) -> JSONResponse:
    """The entry, its inclusion proof and the signed checkpoint, for an entry of the
    resident's (a query that included them, or an entry about them); 404 for any other."""
    try:
        proof = await run_in_threadpool(entry_proof, resident.person_id, index, settings=settings)
    except NotFound:
        raise HTTPException(status_code=404, detail="no such entry of yours") from None
    return _proof_response(proof)
