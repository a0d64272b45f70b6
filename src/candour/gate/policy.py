"""What SQL an analyst may write: the function allowlist and the names that are never tables.

Everything not listed here is refused. The list is deliberately small and boring: aggregates,
arithmetic, dates, strings and window functions. Anything that reads files or the network,
inspects the system, generates rows, or changes state is absent, so it is refused by default.
"""

from __future__ import annotations

from sqlglot import exp

# sqlglot expression classes of allowed functions (parsing maps DuckDB's names onto these).
ALLOWED_FUNCTIONS: frozenset[type[exp.Expr]] = frozenset(
    {
        # boolean connectives (sqlglot models AND/OR/XOR as functions)
        exp.And,
        exp.Or,
        exp.Xor,
        # aggregates
        exp.Count,
        exp.CountIf,
        exp.Sum,
        exp.Avg,
        exp.Min,
        exp.Max,
        exp.Stddev,
        exp.StddevPop,
        exp.StddevSamp,
        exp.Variance,
        exp.VariancePop,
        exp.Median,
        exp.PercentileCont,
        exp.PercentileDisc,
        exp.ApproxDistinct,
        exp.Corr,
        exp.CovarPop,
        exp.CovarSamp,
        exp.LogicalAnd,
        exp.LogicalOr,
        exp.AnyValue,
        exp.ArgMax,
        exp.ArgMin,
        # conditionals and casts
        exp.Coalesce,
        exp.Case,
        exp.If,
        exp.Nullif,
        exp.Cast,
        exp.TryCast,
        exp.Greatest,
        exp.Least,
        # arithmetic
        exp.Abs,
        exp.Round,
        exp.Floor,
        exp.Ceil,
        exp.Sqrt,
        exp.Ln,
        exp.Log,
        exp.Exp,
        exp.Pow,
        exp.Sign,
        exp.Mod,
        exp.SafeDivide,
        exp.IntDiv,
        # strings
        exp.Lower,
        exp.Upper,
        exp.Length,
        exp.Substring,
        exp.Trim,
        exp.Concat,
        exp.Left,
        exp.Right,
        exp.StrPosition,
        exp.StartsWith,
        exp.EndsWith,
        exp.Replace,
        exp.RegexpLike,
        # dates
        exp.DateTrunc,
        exp.TimestampTrunc,
        exp.DatetimeTrunc,
        exp.Extract,
        exp.Year,
        exp.Month,
        exp.Day,
        exp.Quarter,
        exp.DayOfWeek,
        exp.DayOfYear,
        exp.WeekOfYear,
        exp.Week,
        exp.DateDiff,
        exp.DateAdd,
        exp.DateSub,
        exp.CurrentDate,
        exp.StrToDate,
        exp.TsOrDsToDate,
        exp.Date,
        exp.TimeToStr,
        # window functions
        exp.RowNumber,
        exp.Rank,
        exp.DenseRank,
        exp.Lag,
        exp.Lead,
        exp.First,
        exp.Last,
        exp.Ntile,
    }
)

# DuckDB functions sqlglot does not model (parsed as Anonymous), allowed by lower-case name.
ALLOWED_ANONYMOUS: frozenset[str] = frozenset(
    {
        "age",
        "date_part",
        "datediff",
        "datepart",
        "dayname",
        "monthname",
        "isodow",
        "isoyear",
        "last_day",
        "make_date",
        "count_star",
        "mode",
        "entropy",
        "kurtosis",
        "skewness",
        "regr_slope",
        "regr_intercept",
        "percent_rank",
        "cume_dist",
        "bit_length",
        "ifnull",
        "nvl",
    }
)

# Schemas and name prefixes that are system catalogues: refused by name, whatever the grants.
SYSTEM_SCHEMAS = frozenset({"information_schema", "pg_catalog", "system", "temp", "main"})
SYSTEM_PREFIXES = ("duckdb_", "pg_", "sqlite_", "pragma_")

# Limits on the query text itself: a query is a question, not a program.
MAX_SQL_CHARS = 20_000
MAX_SQL_NODES = 5_000
