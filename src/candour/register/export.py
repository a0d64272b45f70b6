"""The public register export: CSV and JSON, aligned to ATRS and the HDR UK data use register.

Each exported field is listed in :data:`FIELDS` with the Algorithmic Transparency Recording
Standard (ATRS) field and the HDR UK Data Use Register field it corresponds to, where one
does; docs/register.md renders the same table. Drafts are private applications and are not
exported. Staff user names are not exported either: the register names the organisation, team
and senior responsible owner (a role), as both standards do, and counts the analysts.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from candour.config import Settings
from candour.csvsafe import neutralise_row
from candour.register.spec import ALL_COLUMNS
from candour.register.uses import UseView, list_uses, uk_today

EXPORT_SCHEMA = "candour/register-export/v1"


@dataclass(frozen=True)
class ExportField:
    """One exported field and the standards' fields it matches (empty: no match)."""

    name: str
    description: str
    atrs: str = ""
    hdruk: str = ""


FIELDS: tuple[ExportField, ...] = (
    ExportField("use_id", "Register id, DU-<year>-<nnn>", "", "Project ID"),
    ExportField("title", "Title of the data use", "Name", "Project Title"),
    ExportField("summary", "Plain-English summary", "Description", "Lay Summary"),
    ExportField("public_benefit", "Public benefit", "Benefits", "Public Benefit Statement"),
    ExportField("organisation", "Organisation responsible", "Organisation", "Organisation Name"),
    ExportField("team", "Team responsible", "Team", ""),
    ExportField(
        "senior_responsible_owner", "Senior responsible owner (a role)", "Senior responsible owner"
    ),
    ExportField("purpose", "Purpose id (candour purposes)", "", "Request Category Type"),
    ExportField(
        "article_6",
        "UK GDPR Art 6 lawful basis",
        "Data sharing agreements",
        "Legal Basis for Provision of Data under Article 6",
    ),
    ExportField(
        "article_9",
        "UK GDPR Art 9 condition (special category data)",
        "",
        "Lawful Conditions for Provision of Data under Article 9",
    ),
    ExportField("dpa_schedule_1", "DPA 2018 Schedule 1 condition", "", ""),
    ExportField(
        "common_law",
        "Common-law duty of confidentiality basis",
        "",
        "Common Law Duty of Confidentiality",
    ),
    ExportField("datasets", "Sources granted (source names)", "Data sources", "Dataset(s) Name"),
    ExportField("grants", "Sources and columns granted", "Data description", ""),
    ExportField("output", "aggregate or record-level (inside the environment)", "", "Access Type"),
    ExportField(
        "privacy_enhancements",
        "Disclosure control applied to outputs",
        "Risks and mitigations",
        "Privacy Enhancements",
    ),
    ExportField(
        "national_data_opt_out_applied",
        "Residents' opt-outs are applied",
        "",
        "National Data Opt-out Applied?",
    ),
    ExportField("analyst_count", "How many analysts may query under it", "", ""),
    ExportField("status", "Status on the export date", "Phase", ""),
    ExportField("starts", "Start date", "", "Project Start Date"),
    ExportField("ends", "End date", "", "Project End Date"),
    ExportField("approved_on", "Date of approval", "Date deployed", "Latest Approval Date"),
    ExportField("revoked_on", "Date of revocation", "", ""),
    ExportField("revoke_reason", "Why it was revoked", "", ""),
    ExportField("application_hash", "SHA-256 of the application (matches the log)", "", ""),
    ExportField("decision_hash", "SHA-256 of the decision (matches the log)", "", ""),
    ExportField("ledger_entries", "Indices of its entries in the public log", "", ""),
)
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)


def _privacy(view: UseView) -> str:
    spec = view.spec
    if spec.dp_epsilon is not None:
        return f"differential privacy, epsilon {spec.dp_epsilon:g}"
    text = f"counts below {spec.disclosure.threshold} suppressed"
    if spec.disclosure.rounding > 1:
        text += f"; rounded to the nearest {spec.disclosure.rounding}"
    return text + "; secondary suppression; output checking"


def export_record(view: UseView, opt_outs_apply: bool | None = None) -> dict[str, Any]:
    """One use as an export record (values are JSON types; lists stay lists)."""
    spec = view.spec
    return {
        "use_id": view.use_id,
        "title": spec.title,
        "summary": spec.summary,
        "public_benefit": spec.public_benefit,
        "organisation": spec.organisation,
        "team": spec.team,
        "senior_responsible_owner": spec.senior_responsible_owner,
        "purpose": spec.purpose,
        "article_6": spec.legal_basis.article_6,
        "article_9": spec.legal_basis.article_9,
        "dpa_schedule_1": spec.legal_basis.dpa_schedule_1,
        "common_law": spec.legal_basis.common_law,
        "datasets": sorted(spec.grants),
        "grants": {s: c if c == ALL_COLUMNS else list(c) for s, c in sorted(spec.grants.items())},
        "output": spec.output,
        "privacy_enhancements": _privacy(view),
        "national_data_opt_out_applied": opt_outs_apply,
        "analyst_count": len(spec.analysts),
        "status": view.status,
        "starts": spec.starts.isoformat(),
        "ends": spec.ends.isoformat(),
        "approved_on": (
            view.decided_at.date().isoformat()
            if view.decided_at and view.stored_status in ("approved", "revoked")
            else None
        ),
        "revoked_on": view.revoked_at.date().isoformat() if view.revoked_at else None,
        "revoke_reason": view.revoke_reason,
        "application_hash": view.application_hash,
        "decision_hash": view.decision_hash if view.stored_status != "rejected" else None,
        "ledger_entries": [t.ledger_index for t in view.transitions if t.ledger_index is not None],
    }


def export_records(
    *,
    settings: Settings,
    opt_outs_apply: dict[str, bool] | None = None,
    today: date | None = None,
) -> list[dict[str, Any]]:
    """Every non-draft use as an export record, oldest first.

    ``opt_outs_apply`` maps purpose id -> whether residents' opt-outs apply (from the configured
    purposes; the register cannot read them itself). Unknown purposes export ``null``.
    """
    from candour.register.uses import get_use

    today = today or uk_today()
    records = []
    for summary in list_uses(settings=settings, today=today, include_drafts=False):
        view = get_use(summary.use_id, settings=settings, today=today)
        applies = (opt_outs_apply or {}).get(view.spec.purpose)
        records.append(export_record(view, applies))
    return records


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(
            f"{k}: {'*' if v == ALL_COLUMNS else ', '.join(v)}" for k, v in value.items()
        )
    return str(value)


def to_csv(records: list[dict[str, Any]]) -> str:
    """The records as CSV (RFC 4180, a header row of :data:`FIELD_NAMES`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(FIELD_NAMES)
    for record in records:
        # Titles and summaries are typed by applicants: neutralise formula injection.
        writer.writerow(neutralise_row(_cell(record[name]) for name in FIELD_NAMES))
    return buffer.getvalue()


def to_json(records: list[dict[str, Any]], *, generated: date | None = None) -> str:
    """The records as a JSON document with the field mapping, for machines."""
    document = {
        "schema": EXPORT_SCHEMA,
        "generated": (generated or uk_today()).isoformat(),
        "fields": [
            {
                "name": f.name,
                "description": f.description,
                "atrs": f.atrs or None,
                "hdruk_data_use_register": f.hdruk or None,
            }
            for f in FIELDS
        ],
        "uses": records,
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
