"""Rewrite a validated query so that it reads only what the residents' choices allow.

Each granted table in the query is replaced by its *gated view*: the source's rows joined to the
person index, minus the rows of everyone who opted out of the use's purpose (or out of that
source for that purpose) as of the query's choices snapshot. The analyst's SQL is otherwise
unchanged, so the result is exactly the analyst's question over the people who did not say no.

The same module writes the *cohort* query: which people's rows the query read. For a query of
one SELECT block that is exact (the people whose rows pass its FROM, JOINs and WHERE); for
anything more complex it is a documented superset (everyone in each gated table it reads).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from candour.gate.validate import DIALECT, ValidatedQuery

PERSON_NUM = "person_num"


def _retarget(tree: exp.Expr, views: Mapping[str, str], tables: tuple[str, ...]) -> None:
    for table in list(tree.find_all(exp.Table)):
        if table.name in tables:
            alias = table.alias or table.name
            table.set("this", exp.to_identifier(views[table.name], quoted=True))
            table.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))


def gated_sql(query: ValidatedQuery, views: Mapping[str, str], dialect: str = DIALECT) -> str:
    """The analyst's query over the gated views named in ``views`` (table -> view)."""
    missing = set(query.tables) - set(views)
    if missing:
        raise ValueError(f"no gated view for {sorted(missing)}")
    tree = query.expression.copy()
    _retarget(tree, views, query.tables)
    return tree.sql(dialect=dialect)


def cohort_sql(
    query: ValidatedQuery,
    views: Mapping[str, str],
    dialect: str = DIALECT,
    *,
    distinct: bool = True,
) -> str:
    """SQL returning the ``person_num`` of everyone whose rows ``query`` read.

    With ``distinct=False`` a person may appear many times (once per row read) and the caller
    removes repeats: engines that can set bits in an array do that far faster than ``DISTINCT``.
    """
    if query.single_block:
        select = query.expression.copy()
        assert isinstance(select, exp.Select)
        aliases = [t.alias_or_name for t in select.find_all(exp.Table)]
        parts = []
        for alias in dict.fromkeys(aliases):
            block = select.copy()
            for arg in ("group", "having", "order", "limit", "offset", "distinct", "qualify"):
                block.set(arg, None)
            column = exp.column(PERSON_NUM, table=alias, quoted=True)
            block.set("expressions", [column.as_(PERSON_NUM, quoted=True)])
            if distinct:
                block.set("distinct", exp.Distinct())
            _retarget(block, views, query.tables)
            parts.append(block)
        union: exp.Query = parts[0]
        for part in parts[1:]:
            union = exp.union(union, part, distinct=distinct)
        return union.sql(dialect=dialect)
    selects = [
        exp.select(exp.column(PERSON_NUM, quoted=True)).from_(
            exp.to_table(views[name], quoted=True)
        )
        for name in query.tables
    ]
    union = selects[0]
    for part in selects[1:]:
        union = exp.union(union, part, distinct=distinct)
    if len(selects) == 1 and distinct:
        union = selects[0].distinct()
    return union.sql(dialect=dialect)
