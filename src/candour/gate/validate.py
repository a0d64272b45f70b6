"""Validate an analyst's SQL against a data use, by parsing it (sqlglot), never by pattern.

A query passes only if it is one read-only ``SELECT`` (optionally with ``WITH``) over the use's
granted tables and columns, calls only allowlisted functions, and, for an aggregate use, returns
only aggregated rows with no ``person_id``. Every refusal names its rule and where in the SQL it
happened, so an analyst can fix the query without guessing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify import qualify

from candour.errors import CandourError
from candour.gate.policy import (
    ALLOWED_ANONYMOUS,
    ALLOWED_FUNCTIONS,
    MAX_SQL_CHARS,
    MAX_SQL_NODES,
    SYSTEM_PREFIXES,
    SYSTEM_SCHEMAS,
)

PERSON_ID = "person_id"
DIALECT = "duckdb"

# The SQL being validated, so refusals can point at a line and column in it.
_SQL: ContextVar[str] = ContextVar("_SQL", default="")

# sqlglot warns when it falls back to a generic Command; we refuse those anyway.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


class QueryRefused(CandourError):
    """The gate refused a query. ``rule`` is a stable identifier; the message says what to do."""

    def __init__(self, rule: str, message: str, line: int | None = None, col: int | None = None):
        self.rule = rule
        self.line = line
        self.col = col
        where = f" at line {line}, column {col}" if line is not None else ""
        super().__init__(f"query refused ({rule}){where}: {message}")


@dataclass(frozen=True)
class GrantedTable:
    """A table an analyst may read under a use: its granted columns and all its columns."""

    name: str
    granted: Mapping[str, str]  # column -> SQL type, granted to the use
    all_columns: frozenset[str]  # every column the table has, to tell "not granted" apart


@dataclass(frozen=True)
class ValidatedQuery:
    """A query that passed validation, fully qualified, ready to rewrite."""

    sql: str
    sql_sha256: str
    expression: exp.Expr
    tables: tuple[str, ...]  # granted tables it reads
    single_block: bool  # one SELECT, no CTEs, subqueries or set operations
    aggregate: bool


def validate(sql: str, tables: Sequence[GrantedTable], *, aggregate: bool) -> ValidatedQuery:
    """Check ``sql`` against the granted ``tables``; raise :class:`QueryRefused` if it fails."""
    if len(sql) > MAX_SQL_CHARS:
        raise QueryRefused("too-long", f"the query is over {MAX_SQL_CHARS:,} characters")
    _SQL.set(sql)
    statement = _parse_one(sql)
    if sum(1 for _ in statement.walk()) > MAX_SQL_NODES:
        raise QueryRefused("too-complex", f"the query has over {MAX_SQL_NODES:,} parts")
    _check_statement_kind(statement)
    # DuckDB matches identifiers case-insensitively, quoted or not: so do we.
    statement = normalize_identifiers(statement, dialect=DIALECT)
    for identifier in statement.find_all(exp.Identifier):
        identifier.set("this", identifier.this.lower())
    granted = {t.name.lower(): t for t in tables}
    cte_names = _check_ctes(statement, granted)
    _check_nodes(statement)
    read = _check_tables(statement, granted, cte_names)
    qualified = _qualify(statement, granted)
    if aggregate:
        _check_aggregate_output(qualified)
    return ValidatedQuery(
        sql=sql,
        sql_sha256=hashlib.sha256(sql.encode()).hexdigest(),
        expression=qualified,
        tables=tuple(sorted(read)),
        single_block=_is_single_block(qualified),
        aggregate=aggregate,
    )


def _position(node: exp.Expr | None) -> tuple[int | None, int | None]:
    """Line and column (1-based) where ``node``'s first token starts in the SQL."""
    while node is not None:
        starts = [n.meta["start"] for n in node.walk() if "start" in n.meta]
        if starts:
            offset = min(starts)
            before = _SQL.get()[:offset]
            return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1
        node = node.parent
    return None, None


def _refuse(rule: str, message: str, node: exp.Expr | None = None) -> QueryRefused:
    line, col = _position(node)
    return QueryRefused(rule, message, line, col)


def _parse_one(sql: str) -> exp.Expr:
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        raise QueryRefused(
            "syntax",
            f"the SQL does not parse: {first.get('description', exc)}",
            first.get("line"),
            first.get("col"),
        ) from None
    except SqlglotError as exc:
        raise QueryRefused("syntax", f"the SQL does not parse: {exc}") from None
    if not statements:
        raise QueryRefused("empty", "there is no query")
    if len(statements) > 1:
        raise _refuse(
            "one-statement", "send exactly one SELECT statement, with no ';'", statements[1]
        )
    return statements[0]


def _check_statement_kind(statement: exp.Expr) -> None:
    if not isinstance(statement, exp.Query) or not isinstance(
        statement, exp.Select | exp.Union | exp.Except | exp.Intersect
    ):
        kind = type(statement).__name__.upper()
        raise _refuse("read-only", f"only SELECT (or WITH ... SELECT) is allowed, not {kind}")


def _check_ctes(statement: exp.Expr, granted: Mapping[str, GrantedTable]) -> set[str]:
    names: set[str] = set()
    for with_ in statement.find_all(exp.With):
        if with_.args.get("recursive"):
            raise _refuse("recursive", "recursive CTEs are not allowed", with_)
        for cte in with_.expressions:
            name = cte.alias_or_name
            if name in granted:
                raise _refuse(
                    "cte-shadows-table", f"the CTE {name!r} has the name of a table; rename it", cte
                )
            names.add(name)
    return names


def _check_nodes(statement: exp.Expr) -> None:
    for node in statement.walk():
        if isinstance(node, exp.Command):
            raise _refuse("read-only", "only SELECT is allowed", node)
        if isinstance(node, exp.Placeholder | exp.Parameter):
            raise _refuse("parameters", "query parameters are not supported; write values", node)
        if isinstance(node, exp.Pivot):
            raise _refuse("unsupported", "PIVOT and UNPIVOT are not supported; use GROUP BY", node)
        if isinstance(node, exp.Into):
            raise _refuse("read-only", "SELECT ... INTO writes a table; it is not allowed", node)
        if isinstance(node, exp.Func):
            _check_function(node)


def _check_function(node: exp.Func) -> None:
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        if name in ALLOWED_ANONYMOUS:
            return
        raise _refuse("function", f"the function {node.name}() is not allowed", node)
    if type(node) in ALLOWED_FUNCTIONS:
        return
    name = node.sql_name() if hasattr(node, "sql_name") else type(node).__name__
    raise _refuse("function", f"the function {name}() is not allowed", node)


def _check_tables(
    statement: exp.Expr, granted: Mapping[str, GrantedTable], cte_names: set[str]
) -> set[str]:
    read: set[str] = set()
    for table in statement.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            # read_csv(...), range(...), duckdb_tables(), 'file.csv' as a function ...
            raise _refuse("table-function", "only tables may appear in FROM, not functions", table)
        name = table.name
        schema = table.args.get("db") or table.args.get("catalog")
        lowered = name.lower()
        if schema is not None or lowered.startswith(SYSTEM_PREFIXES):
            qualifier = table.text("db").lower() or table.text("catalog").lower()
            if qualifier in SYSTEM_SCHEMAS or lowered.startswith(SYSTEM_PREFIXES):
                raise _refuse(
                    "system-catalogue", f"system catalogues ({table.sql()}) are not readable", table
                )
            raise _refuse(
                "qualified-name", f"write the table name alone, without a schema: {name}", table
            )
        if name in cte_names:
            continue
        if name not in granted:
            known = ", ".join(sorted(granted)) or "none"
            raise _refuse(
                "table-not-granted",
                f"the table {name!r} is not granted to this use (granted: {known})",
                table,
            )
        read.add(name)
    if not read:
        raise _refuse("no-table", "the query reads no granted table")
    return read


def _qualify(statement: exp.Expr, granted: Mapping[str, GrantedTable]) -> exp.Expr:
    schema: dict[str, object] = {name: dict(t.granted) for name, t in granted.items()}
    try:
        return qualify(
            statement.copy(),
            schema=schema,
            dialect=DIALECT,
            validate_qualify_columns=True,
            quote_identifiers=True,
        )
    except OptimizeError as exc:
        message = str(exc)
        column = message.split("'")[1] if message.count("'") >= 2 else ""
        owners = [t.name for t in granted.values() if column in t.all_columns]
        node = next((c for c in statement.find_all(exp.Column) if c.name == column), statement)
        if owners and not any(column in granted[o].granted for o in owners):
            raise _refuse(
                "column-not-granted",
                f"the column {column!r} of {owners[0]!r} is not granted to this use",
                node,
            ) from None
        raise _refuse("column", message.split(". Line")[0], node) from None


def _outer_selects(query: exp.Expr) -> list[exp.Select]:
    if isinstance(query, exp.Select):
        return [query]
    if isinstance(query, exp.SetOperation):
        return _outer_selects(query.left) + _outer_selects(query.right)
    if isinstance(query, exp.Subquery):
        return _outer_selects(query.this)
    return []


def _aggregates_outside_windows(node: exp.Expr) -> list[exp.AggFunc]:
    found = []
    for agg in node.find_all(exp.AggFunc):
        if agg.find_ancestor(exp.Window) is None:
            found.append(agg)
    return found


def _mentions_person_id(node: exp.Expr) -> exp.Column | None:
    return next((c for c in node.find_all(exp.Column) if c.name == PERSON_ID), None)


def _check_aggregate_output(query: exp.Expr) -> None:
    for select in _outer_selects(query):
        for projection in select.expressions:
            person = _mentions_person_id(projection)
            if person is not None and person.find_ancestor(exp.AggFunc) is None:
                raise _refuse(
                    "person-id-in-output",
                    "aggregate uses may not return person_id; it may appear only inside an "
                    "aggregate such as COUNT(DISTINCT person_id)",
                    person,
                )
        group = select.args.get("group")
        keys = [k for k in (group.expressions if group else [])]
        for key in keys:
            person = _mentions_person_id(key)
            if person is not None:
                raise _refuse(
                    "person-id-in-output",
                    "grouping by person_id gives one row per person; aggregate uses may not",
                    person,
                )
        key_sql = {k.sql(DIALECT) for k in keys}
        has_aggregate = any(_aggregates_outside_windows(p) for p in select.expressions)
        if not keys and not has_aggregate:
            raise _refuse(
                "row-level-output",
                "this use allows aggregate output only: add GROUP BY and aggregate functions",
                select,
            )
        for projection in select.expressions:
            inner = projection.unalias() if isinstance(projection, exp.Alias) else projection
            aggregates = _aggregates_outside_windows(inner)
            if aggregates:
                continue
            if inner.sql(DIALECT) in key_sql or isinstance(inner, exp.Literal):
                continue
            raise _refuse(
                "row-level-output",
                f"{projection.alias_or_name!r} is neither aggregated nor a GROUP BY key",
                projection,
            )


def _is_single_block(query: exp.Expr) -> bool:
    if not isinstance(query, exp.Select) or query.args.get("with"):
        return False
    return sum(1 for _ in query.find_all(exp.Select)) == 1
