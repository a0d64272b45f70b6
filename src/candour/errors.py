"""The one exception type that means "the user can fix this".

Anything raised as a :class:`CandourError` is shown as a single clear line, and the CLI exits
with code 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno


class CandourError(Exception):
    """A problem with input, configuration or state that the person running Candour can fix."""


_FULL_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
# SQLite, DuckDB and PostgreSQL report a full disk in words rather than as an OSError.
_FULL_DISK_WORDS = ("no space left on device", "database or disk is full", "disk full")


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc``, or anything in its chain of causes, is a full disk or quota.

    A full disk is something the operator fixes (free space, then ``candour check --repair``),
    not a bug, so the CLI reports it in one line rather than as a traceback.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL_DISK_ERRNOS:
            return True
        if any(words in str(current).lower() for words in _FULL_DISK_WORDS):
            return True
        current = current.__cause__ or current.__context__
    return False
