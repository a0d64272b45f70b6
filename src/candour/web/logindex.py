"""An in-memory index of the public log, kept up to date incrementally.

Pages that need entries by data use (the register's queries and releases) or by kind and date
(staff audit search) would otherwise read the whole log on every request. The index reads each
entry once, from the published tiles through the verifier key, and on each use reads only the
entries appended since. It holds what every entry already says in public (index, kind, time,
use id, release id), so keeping it in memory discloses nothing new.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from candour.config import Settings
from candour.web.transparency import PublicLog


@dataclass(frozen=True)
class IndexedEntry:
    """What the index keeps about one entry."""

    index: int
    kind: str
    time: str
    use_id: str | None
    release_id: str | None


class LogIndex:
    """Entries of the public log by use id, with a kind and date search over all of them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._entries: list[IndexedEntry] = []
        self._by_use: dict[str, list[int]] = {}

    @property
    def size(self) -> int:
        """How many entries the index has read."""
        return len(self._entries)

    def refresh(self) -> int:
        """Read the entries published since the last refresh; return the log's size."""
        with self._lock:
            log = PublicLog(self.settings)
            for i in range(len(self._entries), log.size):
                try:
                    parsed = json.loads(log.reader.entry(i))
                except ValueError:
                    parsed = {}
                entry = parsed if isinstance(parsed, dict) else {}
                use_id = entry.get("use_id")
                release_id = entry.get("release_id")
                item = IndexedEntry(
                    index=i,
                    kind=str(entry.get("kind") or "unknown"),
                    time=str(entry.get("time") or ""),
                    use_id=use_id if isinstance(use_id, str) else None,
                    release_id=release_id if isinstance(release_id, str) else None,
                )
                self._entries.append(item)
                if item.use_id:
                    self._by_use.setdefault(item.use_id, []).append(i)
            return len(self._entries)

    def for_use(self, use_id: str, kinds: tuple[str, ...] | None = None) -> list[IndexedEntry]:
        """Entries naming ``use_id`` (of ``kinds``, if given), oldest first."""
        self.refresh()
        found = [self._entries[i] for i in self._by_use.get(use_id, [])]
        return [e for e in found if kinds is None or e.kind in kinds]

    def search(
        self,
        *,
        kind: str | None = None,
        use_id: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        start: int = 0,
        limit: int = 50,
    ) -> tuple[int, list[IndexedEntry]]:
        """Matching entries, newest first: (how many match in all, one page of them).

        Dates are ``YYYY-MM-DD`` and inclusive; entries' times are UTC.
        """
        self.refresh()
        pool: list[IndexedEntry]
        if use_id:
            pool = [self._entries[i] for i in self._by_use.get(use_id, [])]
        else:
            pool = self._entries
        if date_from:
            pool = [e for e in pool if e.time[:10] >= date_from]
        if date_to:
            pool = [e for e in pool if e.time[:10] <= date_to]
        if kind:
            pool = [e for e in pool if e.kind == kind]
        total = len(pool)
        newest_first = pool[::-1]
        return total, newest_first[start : start + limit]
