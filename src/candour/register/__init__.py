"""The data-use register: staff users, applications, approvals, and what the gate may run.

Applying and deciding (the CLI and, later, the staff console)::

    spec = load_use(Path("use.yaml"))
    use = apply_use(spec, purposes=choices.load_purposes(settings), settings=settings)
    submit(use.use_id, "ana", settings=settings)
    approve(use.use_id, "ian", purposes=..., settings=settings)

Querying (the gate, before each query)::

    active = authorise("DU-2026-001", "ana", settings=settings)   # raises UseError if not
    active.purpose, active.grants, active.output, active.threshold, active.dp_epsilon

See :mod:`candour.register.uses` for the lifecycle and docs/register.md for the reference.
"""

from candour.register.export import (
    EXPORT_SCHEMA,
    FIELD_NAMES,
    FIELDS,
    ExportField,
    export_record,
    export_records,
    to_csv,
    to_json,
)
from candour.register.spec import (
    ALL_COLUMNS,
    KEYS,
    OUTPUTS,
    Disclosure,
    LegalBasis,
    SpecError,
    UseSpec,
    load_use,
    parse_use,
)
from candour.register.users import ROLES, Role, User, UserError, add_user, get_user, list_users
from candour.register.uses import (
    REVOKE_REASONS,
    STATUSES,
    ActiveUse,
    PurposePolicy,
    Status,
    Transition,
    UseError,
    UseView,
    application_hash,
    apply_use,
    approve,
    authorise,
    effective_status,
    get_use,
    list_uses,
    reject,
    revoke,
    submit,
    uk_today,
)

__all__ = [
    "ALL_COLUMNS",
    "EXPORT_SCHEMA",
    "FIELDS",
    "FIELD_NAMES",
    "KEYS",
    "OUTPUTS",
    "REVOKE_REASONS",
    "ROLES",
    "STATUSES",
    "ActiveUse",
    "Disclosure",
    "ExportField",
    "LegalBasis",
    "PurposePolicy",
    "Role",
    "SpecError",
    "Status",
    "Transition",
    "UseError",
    "UseSpec",
    "UseView",
    "User",
    "UserError",
    "add_user",
    "application_hash",
    "apply_use",
    "approve",
    "authorise",
    "effective_status",
    "export_record",
    "export_records",
    "get_use",
    "get_user",
    "list_uses",
    "list_users",
    "load_use",
    "parse_use",
    "reject",
    "revoke",
    "submit",
    "to_csv",
    "to_json",
    "uk_today",
]
