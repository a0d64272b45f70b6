"""Residents' choices: purposes, per-person opt-outs (optionally per source), and snapshots.

Recording (``candour choices set``, the portal, bulk imports)::

    set_choice("P-ABCDEFGHJKLM", "research", "opt-out", source="police_incidents",
               channel="portal", actor="resident", settings=settings)
    record_choices([ChoiceRequest(...), ...], channel="bulk-import", actor=..., settings=...)

Reading (the gate, when a query starts)::

    snap = snapshot("research", settings=settings)
    snap.content_hash                       # goes into the query's ledger entry
    snap.excluded("ae_attendances").person_nums   # sorted uint32 array to drop

See :mod:`candour.choices.decisions` for the transaction and logging discipline, and
:mod:`candour.choices.snapshot` for the snapshot hash.
"""

from candour.choices.decisions import (
    CHANNELS,
    DECISIONS,
    ChangeResult,
    Channel,
    ChoiceError,
    ChoiceRecord,
    ChoiceRequest,
    Decision,
    PersonChoices,
    current,
    history,
    known_sources,
    record_choices,
    set_choice,
)
from candour.choices.purposes import (
    DEFAULT_FILE,
    Purpose,
    PurposeError,
    PurposeSet,
    load_purposes,
    parse_purposes,
)
from candour.choices.snapshot import (
    ExcludedSet,
    Snapshot,
    clear_cache,
    content_hash,
    opted_out,
    snapshot,
)

__all__ = [
    "CHANNELS",
    "DECISIONS",
    "DEFAULT_FILE",
    "ChangeResult",
    "Channel",
    "ChoiceError",
    "ChoiceRecord",
    "ChoiceRequest",
    "Decision",
    "ExcludedSet",
    "PersonChoices",
    "Purpose",
    "PurposeError",
    "PurposeSet",
    "Snapshot",
    "clear_cache",
    "content_hash",
    "current",
    "history",
    "known_sources",
    "load_purposes",
    "opted_out",
    "parse_purposes",
    "record_choices",
    "set_choice",
    "snapshot",
]
