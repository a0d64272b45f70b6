"""The query gate: the only way to read the warehouse.

Every query runs under an approved data use, over only its granted tables and columns, with the
residents' choices applied as they stand when it starts; its cohort is captured privately, its
output protected, and it is logged before it returns (see :mod:`candour.gate.run`)::

    result = gate.run("DU-2026-001", "ana", sql, settings=settings)
    result.table, result.disclosure_summary(), result.receipt

    con = candour.connect(use="DU-2026-001", user="ana")     # the Python API
    gate.queries_including("P-ABCDEFGHJKLM", settings=settings)  # for the resident's portal

docs/analysts.md is the analyst's how-to; docs/trust-model.md has the guarantees and limits.
"""

from candour.gate.api import Connection, connect
from candour.gate.cohort import CohortStore
from candour.gate.engines import (
    DuckDBEngine,
    Engine,
    GatedTable,
    Limits,
    QueryLimit,
    open_engine,
)
from candour.gate.receipts import Receipt, ReceiptError, home_verifier, receipt_for
from candour.gate.records import (
    QueryRecord,
    count_queries_including,
    get_query,
    person_num_of,
    queries_including,
)
from candour.gate.run import DpOptions, QueryResult, output_bytes, prepare, run
from candour.gate.spark import SparkEngine
from candour.gate.tables import GateError, TableInfo, catalogue, link_state
from candour.gate.validate import GrantedTable, QueryRefused, ValidatedQuery, validate

__all__ = [
    "CohortStore",
    "Connection",
    "DpOptions",
    "DuckDBEngine",
    "Engine",
    "GateError",
    "GatedTable",
    "GrantedTable",
    "Limits",
    "QueryLimit",
    "QueryRecord",
    "QueryRefused",
    "QueryResult",
    "Receipt",
    "ReceiptError",
    "SparkEngine",
    "TableInfo",
    "ValidatedQuery",
    "catalogue",
    "connect",
    "count_queries_including",
    "get_query",
    "home_verifier",
    "link_state",
    "open_engine",
    "output_bytes",
    "person_num_of",
    "prepare",
    "queries_including",
    "receipt_for",
    "run",
    "validate",
]
