"""The Python API: ``candour.connect(use=..., user=...)`` and ``.query(sql)``.

    import candour
    con = candour.connect(use="DU-2026-001", user="ana")
    df = con.query("SELECT area, count(*) AS n FROM ae_attendances GROUP BY area")
    df.attrs["receipt"]      # the query's receipt (ledger index, inclusion proof, checkpoint)
    df.attrs["disclosure"]   # what disclosure control did
    con.last                 # the full QueryResult

Each ``.query`` is one gated query: authorised, validated, logged and receipted like any other.
The connection holds no warehouse lock between queries (it opens the engine per query), so
ingest and linkage can run while a notebook is open.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from candour.config import Settings
from candour.gate.engines import Engine, Limits
from candour.gate.run import DpOptions, QueryResult, run


@dataclass
class Connection:
    """A session of one analyst under one data use."""

    use: str
    user: str
    settings: Settings
    limits: Limits = field(default_factory=Limits)
    engine: Engine | None = None
    last: QueryResult | None = None

    def query(self, sql: str, *, dp: DpOptions | None = None) -> pd.DataFrame:
        """Run ``sql`` through the gate; return the protected output as a DataFrame.

        The DataFrame's ``attrs`` carry ``receipt`` (a :class:`~candour.gate.Receipt`),
        ``query_id``, ``method`` and ``disclosure`` (what disclosure control did).
        """
        result = run(
            self.use,
            self.user,
            sql,
            settings=self.settings,
            engine=self.engine,
            limits=self.limits,
            dp=dp,
        )
        self.last = result
        frame = result.table.copy()
        frame.attrs["receipt"] = result.receipt
        frame.attrs["query_id"] = result.query_id
        frame.attrs["method"] = result.method
        frame.attrs["disclosure"] = result.disclosure_summary()
        return frame

    def close(self) -> None:
        """Close the engine, if one was given to the connection."""
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    use: str,
    user: str,
    settings: Settings | None = None,
    *,
    limits: Limits | None = None,
    engine: Engine | None = None,
) -> Connection:
    """A connection for ``user`` to query under data use ``use`` (settings from the environment
    when not given). Authorisation is checked on every query, not only here, so a use that
    expires or is revoked mid-session stops answering at once."""
    from candour import register

    settings = settings or Settings()
    register.authorise(use, user, settings=settings)
    return Connection(use, user, settings, limits or Limits.from_settings(settings), engine)
