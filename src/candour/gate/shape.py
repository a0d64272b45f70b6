"""The shape of an aggregate answer: which output columns are group keys and which are measures,
and the SQL that gathers the evidence disclosure control needs.

Disclosure control can protect a table only if it knows what each column is. For an aggregate
use without differential privacy every output column must therefore be a ``GROUP BY`` key or one
plain ``COUNT``, ``SUM`` or ``AVG``. Anything else (a ratio, a ``MAX``, a rounded mean) is
refused *before* the engine runs, with the rule ``sdc-shape`` and a hint: compute derived
figures from the protected output instead.

For sums and means the dominance rule needs each group's contributors and its largest two
*per-person* contributions. :func:`evidence_sql` writes that query: the analyst's FROM, JOINs and
WHERE, grouped by the keys and the contributing person, then ranked within each group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sqlglot import exp

from candour.gate.rewrite import PERSON_NUM, _retarget
from candour.gate.validate import DIALECT, QueryRefused, ValidatedQuery, _position

Kind = Literal["count", "sum", "mean"]


@dataclass(frozen=True)
class MeasureSpec:
    """One aggregate output column."""

    column: str
    kind: Kind
    argument: exp.Expr | None  # the summed or averaged expression
    person_alias: str | None  # the table whose person a contribution belongs to


@dataclass(frozen=True)
class OutputPlan:
    """An aggregate query's output: its key columns (and expressions) and measures."""

    keys: tuple[str, ...]
    key_exprs: tuple[exp.Expr, ...]
    measures: tuple[MeasureSpec, ...]

    @property
    def needs_evidence(self) -> bool:
        """Whether disclosure control needs per-person contributions (sums and means)."""
        return any(m.kind != "count" for m in self.measures)


def _refuse(message: str, node: exp.Expr | None) -> QueryRefused:
    line, col = _position(node)
    return QueryRefused("sdc-shape", message, line, col)


def _measure(name: str, node: exp.Expr, select: exp.Select) -> MeasureSpec:
    inner = node.this if isinstance(node, exp.Filter) else node
    if isinstance(inner, exp.Count | exp.CountIf):
        return MeasureSpec(name, "count", None, None)
    if isinstance(inner, exp.Sum | exp.Avg):
        if isinstance(node, exp.Filter) or isinstance(inner.this, exp.Distinct):
            raise _refuse(
                f"{name!r}: write SUM/AVG without FILTER or DISTINCT (use CASE WHEN inside)", node
            )
        argument = inner.this
        columns = list(argument.find_all(exp.Column))
        aliases = [c.table for c in columns if c.table]
        if not aliases:
            first = select.args.get("from_")
            table = first.this if first is not None else None
            aliases = [table.alias_or_name] if isinstance(table, exp.Table) else []
        if not aliases:
            raise _refuse(f"{name!r}: cannot tell whose rows this sums", node)
        return MeasureSpec(
            name, "sum" if isinstance(inner, exp.Sum) else "mean", argument, aliases[0]
        )
    raise _refuse(
        f"{name!r} is not a plain COUNT, SUM or AVG; in an aggregate use every output column "
        "is a GROUP BY key or one of those, so that disclosure control can check it "
        "(compute ratios, rounding and other statistics from the protected output)",
        node,
    )


def plan(query: ValidatedQuery, *, dp: bool = False) -> OutputPlan:
    """Classify an aggregate query's output columns, or refuse (rule ``sdc-shape``)."""
    select = query.expression
    if not isinstance(select, exp.Select):
        raise _refuse(
            "an aggregate use's query must end in one SELECT ... GROUP BY (not UNION, "
            "INTERSECT or EXCEPT): disclosure control protects one table at a time",
            select,
        )
    for arg, words in (("having", "HAVING"), ("limit", "LIMIT"), ("offset", "OFFSET")):
        node = select.args.get(arg)
        if node is not None:
            raise _refuse(
                f"{words} is not allowed in the outer SELECT of an aggregate use: which groups "
                "exist would depend on unprotected values (disclosure control already hides "
                "small groups)",
                node,
            )
    group = select.args.get("group")
    key_sql = {k.sql(DIALECT): k for k in (group.expressions if group else [])}
    keys: list[str] = []
    key_exprs: list[exp.Expr] = []
    measures: list[MeasureSpec] = []
    for projection in select.expressions:
        name = projection.alias_or_name
        inner = projection.unalias() if isinstance(projection, exp.Alias) else projection
        if inner.sql(DIALECT) in key_sql or isinstance(inner, exp.Literal):
            keys.append(name)
            key_exprs.append(inner)
            continue
        measures.append(_measure(name, inner, select))
    if not measures:
        raise _refuse("the query has no COUNT, SUM or AVG to publish", select)
    order = select.args.get("order")
    if order is not None:
        for ordered in order.expressions:
            target = ordered.this
            if target.sql(DIALECT) not in key_sql and not (
                isinstance(target, exp.Column) and target.name in keys
            ):
                raise _refuse(
                    "ORDER BY may use only group keys in an aggregate use: ordering by a count "
                    "would rank the cells disclosure control hides",
                    ordered,
                )
    if dp:
        if not query.single_block:
            raise _refuse(
                "differential privacy needs a query of one SELECT block (no CTEs, subqueries "
                "or set operations)",
                select,
            )
        if len(measures) != 1 or not keys:
            raise _refuse(
                "a differentially private query has one or more group keys and exactly one "
                "COUNT(*), SUM(x) or AVG(x)",
                select,
            )
    elif any(m.kind != "count" for m in measures) and not query.single_block:
        raise _refuse(
            "SUM and AVG need a query of one SELECT block, so that disclosure control can see "
            "each person's contribution; move CTE or subquery logic into JOINs and WHERE",
            select,
        )
    return OutputPlan(tuple(keys), tuple(key_exprs), tuple(measures))


def _base(query: ValidatedQuery, views: Mapping[str, str]) -> exp.Select:
    """The analyst's FROM, JOINs and WHERE over the gated views, with nothing selected yet."""
    select = query.expression.copy()
    assert isinstance(select, exp.Select)
    for arg in ("group", "having", "order", "limit", "offset", "distinct", "qualify"):
        select.set(arg, None)
    _retarget(select, views, query.tables)
    return select


def evidence_sql(
    query: ValidatedQuery, plan: OutputPlan, views: Mapping[str, str], dialect: str = DIALECT
) -> list[tuple[int, str]]:
    """For every SUM and AVG (by position ``j`` among the measures), SQL giving per group the
    keys ``_k<i>``, and ``_c`` (contributors), ``_t`` (total), ``_a`` and ``_b`` (the largest
    two per-person contributions). Contributions are summed per person before ranking, and a
    contribution belongs to the person of the table the summed column comes from."""
    keys = [f"_k{i}" for i in range(len(plan.key_exprs))]
    lead = "".join(f"{k}, " for k in keys)
    out: list[tuple[int, str]] = []
    for j, m in enumerate(plan.measures):
        if m.kind == "count":
            continue
        assert m.argument is not None
        base = _base(query, views)
        inner: list[exp.Expr] = [k.copy().as_(f"_k{i}") for i, k in enumerate(plan.key_exprs)]
        inner.append(exp.column(PERSON_NUM, table=m.person_alias, quoted=True).as_("_p"))
        inner.append(m.argument.copy().as_("_x"))
        base.set("expressions", inner)
        rows = base.sql(dialect=DIALECT)
        per_person = (
            f"SELECT {lead}_p, SUM(_x) AS _v FROM ({rows}) AS _rows "
            f"WHERE _x IS NOT NULL GROUP BY {lead}_p"
        )
        partition = f"PARTITION BY {', '.join(keys)} " if keys else ""
        ranked = (
            f"SELECT {lead}_v, ROW_NUMBER() OVER ({partition}ORDER BY _v DESC) AS _r "
            f"FROM ({per_person}) AS _pp"
        )
        grouped = f" GROUP BY {', '.join(keys)}" if keys else ""
        sql = (
            f"SELECT {lead}COUNT(*) AS _c, SUM(_v) AS _t, MAX(CASE WHEN _r = 1 THEN _v END) AS _a, "
            f"COALESCE(MAX(CASE WHEN _r = 2 THEN _v END), 0) AS _b FROM ({ranked}) AS _ranked"
            f"{grouped}"
        )
        if dialect != DIALECT:
            import sqlglot

            sql = sqlglot.transpile(sql, read=DIALECT, write=dialect)[0]
        out.append((j, sql))
    return out


def rows_sql(
    query: ValidatedQuery, plan: OutputPlan, views: Mapping[str, str], dialect: str = DIALECT
) -> str:
    """For differential privacy: the rows a grouped query reads, one per row, as ``_k<i>``,
    ``_value`` (the summed or averaged expression, if any) and ``_person``."""
    base = _base(query, views)
    measure = plan.measures[0]
    select: list[exp.Expr] = [k.copy().as_(f"_k{i}") for i, k in enumerate(plan.key_exprs)]
    if measure.argument is not None:
        select.append(measure.argument.copy().as_("_value"))
    alias = measure.person_alias
    if alias is None:
        first = base.args["from_"].this
        alias = first.alias_or_name
    select.append(exp.column(PERSON_NUM, table=alias, quoted=True).as_("_person"))
    base.set("expressions", select)
    return base.sql(dialect=dialect)
