"""Staging: one file read, validated and standardised by DuckDB in vectorised SQL.

A staging database is in memory (spilling only to a private directory that ingest removes);
it never touches the warehouse file, so no identity value can reach the warehouse's pages.

Tables, per file:

- ``raw``: every accepted record as text, in file order (``rowid`` = record index);
- ``rejected``: lines DuckDB's CSV parser could not read (wrong field count, over-long line);
- ``std``: one row per record: its line, record id, standardised identity values beside the
  values as received, validity flags, typed attributes, and ``problems``, a bit mask over
  :attr:`Staging.problems` (0 for a good row; a mask, not a list, because building a list for
  every row of a million-row file costs seconds).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from candour.sources.reader import ExtractError, ExtractFile
from candour.sources.spec import Attribute, Source
from candour.sources.standardise import install_macros
from candour.vault import FIELDS

TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
VALUE_SHOWN_CHARS = 120
MAX_PROBLEMS = 62  # problem codes are bits of a BIGINT


def _q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Problem:
    """A kind of bad row: which YAML field and column, and why."""

    field: str
    column: str | None
    reason: str
    identity: bool = False  # the value is an identity value: never shown or written


@dataclass(frozen=True)
class BadRow:
    """One problem with one row, as written to the quarantine file."""

    line: int
    record_id: str | None
    field: str
    column: str | None
    reason: str
    value: str | None


@dataclass(frozen=True)
class StageCounts:
    """How many records a file had, and how many were bad."""

    read: int
    bad: int

    @property
    def accepted(self) -> int:
        """Records that pass every check."""
        return self.read - self.bad


def _bool_words(attribute: Attribute) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if attribute.format:
        true, _, false = attribute.format.partition("/")
        if not true or not false:
            raise ExtractError(
                f"bool format {attribute.format!r} must be 'TRUE/FALSE' words, e.g. 'Y/N'"
            )
        return (true.strip().lower(),), (false.strip().lower(),)
    return TRUE_WORDS, FALSE_WORDS


def typed_sql(attribute: Attribute, column_sql: str) -> tuple[str, str | None]:
    """(SQL for the typed value, reason a non-blank value that fails is bad; None if never)."""
    value = f"nullif(trim({column_sql}), '')"
    kind = attribute.type
    if kind == "int":
        return (
            f"CASE WHEN regexp_full_match({value}, '[+-]?[0-9]{{1,18}}') "
            f"THEN {value}::BIGINT END",
            "not a whole number",
        )
    if kind == "float":
        return f"try_cast({value} AS DOUBLE)", "not a number"
    if kind == "date":
        fmt = attribute.format or "%Y-%m-%d"
        return f"try_strptime({value}, {_lit(fmt)})::DATE", f"not a date in the format {fmt}"
    if kind == "bool":
        true, false = _bool_words(attribute)
        lowered = f"lower({value})"
        words = "/".join([*true[:1], *false[:1]])
        return (
            f"CASE WHEN {lowered} IN ({', '.join(map(_lit, true))}) THEN true "
            f"WHEN {lowered} IN ({', '.join(map(_lit, false))}) THEN false END",
            f"not a yes/no value ({words})",
        )
    if kind == "category":
        return value, None
    return column_sql, None


class Staging:
    """Reads, validates and standardises one file of one source, in an in-memory DuckDB."""

    def __init__(self, source: Source, batch_id: int, temp_dir: Path, max_line_bytes: int):
        self.source = source
        self.batch_id = batch_id
        self.max_line_bytes = max_line_bytes
        self.con = duckdb.connect(":memory:")
        # Spill (if ever) only into the private staging directory, which ingest removes.
        self._run(f"SET temp_directory = {_lit(str(temp_dir))}")
        self._run("SET preserve_insertion_order = true")
        install_macros(self.con)
        self.problems: list[Problem] = []
        self.identifier_names = sorted(source.identity.identifiers)
        self._display = ""
        self._kind = "csv"

    def close(self) -> None:
        """Free the staging database."""
        self.con.close()

    def _run(self, sql: str) -> None:
        # Fetch even a DDL/UPDATE result: DuckDB refuses new work while one is unfinished.
        self.con.execute(sql).fetchall()

    def _problem(self, problem: Problem) -> int:
        if len(self.problems) >= MAX_PROBLEMS:
            raise ExtractError(
                f"source {self.source.name!r} has more than {MAX_PROBLEMS - 3} typed attributes; "
                "split it into two sources"
            )
        self.problems.append(problem)
        return len(self.problems) - 1

    # -- loading ---------------------------------------------------------------------------

    def load(self, extract: ExtractFile) -> None:
        """Read the file into ``raw`` (text columns) and ``rejected`` (unreadable lines)."""
        self._display = extract.display
        self._kind = extract.kind
        assert extract.readable is not None
        path = _lit(str(extract.readable))
        if extract.kind == "parquet":
            self._load_parquet(extract, path)
            return
        columns = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in extract.columns) + "}"
        delimiter = _lit(self.source.csv.delimiter)
        try:
            self._run(
                f"""CREATE TABLE raw AS SELECT * FROM read_csv({path}, header = true,
                    auto_detect = false, columns = {columns}, delim = {delimiter},
                    quote = '"', escape = '"', store_rejects = true, strict_mode = true,
                    max_line_size = {self.max_line_bytes}, encoding = 'utf-8')"""
            )
            rejected = self.con.execute(
                "SELECT line, error_type, error_message FROM reject_errors ORDER BY line"
            ).fetchall()
        except duckdb.Error as exc:
            # DuckDB's own message can quote a line of the file; never echo it.
            kind = type(exc).__name__
            raise ExtractError(
                f"{extract.display}: the file is not readable as CSV with delimiter "
                f"{self.source.csv.delimiter!r} ({kind}); check csv.delimiter and quoting"
            ) from None
        rows: list[tuple[int, str]] = []
        for line, error_type, message in rejected:
            if error_type in ("UNQUOTED VALUE", "UNTERMINATED QUOTE"):
                raise ExtractError(
                    f"{extract.display}: line {line}: a quoted value is never closed, so the "
                    "rest of the file cannot be read; fix the quoting and send the file again"
                )
            rows.append((int(line), self._reject_reason(error_type, message)))
        self._run("CREATE TABLE rejected (line BIGINT, reason VARCHAR)")
        if rows:
            self.con.executemany("INSERT INTO rejected VALUES (?, ?)", rows)

    def _reject_reason(self, error_type: str, message: str) -> str:
        if error_type == "LINE SIZE OVER MAXIMUM":
            found = re.search(r"Actual Size:\s*(\d+)", message or "")
            size = f"{int(found.group(1)) / 1e6:.1f} MB" if found else "too long"
            return (
                f"the line is {size}, over the limit of {self.max_line_bytes:,} bytes "
                "(ingest_max_field_bytes)"
            )
        if error_type in ("TOO MANY COLUMNS", "MISSING COLUMNS"):
            found = re.search(
                r"Expected Number of Columns:\s*(\d+)\s*Found:\s*(\d+)", message or ""
            )
            if found:
                return (
                    f"the row has {found.group(2)} fields but the header has {found.group(1)} "
                    "(an unquoted delimiter?)"
                )
            return "the row has the wrong number of fields"
        return f"the row cannot be read as CSV ({error_type.lower()})"

    def _load_parquet(self, extract: ExtractFile, path: str) -> None:
        types = dict(
            self.con.execute(
                "SELECT column_name, column_type FROM "
                f"(DESCRIBE SELECT * FROM read_parquet({path}))"
            ).fetchall()
        )
        formats = self._date_formats()
        parts = []
        for column in extract.columns:
            kind = str(types.get(column, "VARCHAR")).upper()
            if (kind == "DATE" or kind.startswith("TIMESTAMP")) and column in formats:
                # Typed dates arrive as dates; render them in the declared format so the one
                # parsing path below serves CSV and Parquet alike.
                parts.append(f"strftime({_q(column)}, {_lit(formats[column])}) AS {_q(column)}")
            else:
                parts.append(f"CAST({_q(column)} AS VARCHAR) AS {_q(column)}")
        self._run(
            f"CREATE TABLE raw AS SELECT {', '.join(parts)} FROM read_parquet({path})"
        )
        self._run("CREATE TABLE rejected (line BIGINT, reason VARCHAR)")

    def _date_formats(self) -> dict[str, str]:
        formats: dict[str, str] = {}
        if self.source.identity.date_of_birth:
            dob = self.source.identity.date_of_birth
            formats[dob.column] = dob.format
        for attribute in self.source.attributes.values():
            if attribute.type == "date":
                formats[attribute.column] = attribute.format or "%Y-%m-%d"
        return formats

    # -- standardising and validating -------------------------------------------------------

    def records(self) -> int:
        """Records in the file: those read plus those rejected by the parser."""
        row = self.con.execute(
            "SELECT (SELECT count(*) FROM raw) + (SELECT count(*) FROM rejected)"
        ).fetchall()
        return int(row[0][0]) if row else 0

    def _line_sql(self) -> str:
        """SQL for each raw record's line: 1 is the header; rejected lines are skipped over."""
        if self._kind == "parquet":
            return "r.rowid + 1"
        if self._rejected_count() == 0:
            return "r.rowid + 2"
        # Accepted record r sits after every rejected line whose ordinal falls before it. With
        # rejected ordinals o_1 < o_2 < ..., the k-th is passed once r >= o_k - (k - 1).
        self._run(
            """CREATE TABLE reject_steps AS SELECT line - 2 - (row_number() OVER (ORDER BY line)
               - 1) AS threshold, row_number() OVER (ORDER BY line) AS passed FROM rejected"""
        )
        return "r.rowid + 2 + coalesce(steps.passed, 0)"

    def standardise(self, known_keys: pa.Table | None = None) -> StageCounts:
        """Build ``std``: standardised identity, typed attributes and each row's problems.

        ``known_keys`` holds record keys already in the warehouse for this source: a record
        id seen in an earlier batch is a problem (a changed record needs a new id).

        The SELECT is built in levels (raw values, then first derivations, then final values)
        so that each regular expression runs once per value: see the note in standardise.py.
        """
        source = self.source
        identity = source.identity
        dob = identity.date_of_birth
        fmt = _lit(dob.format) if dob else "NULL"

        def present(column: str) -> str:
            return f"CASE WHEN trim(r.{_q(column)}) <> '' THEN r.{_q(column)} END"

        # Level 0: the values as received, record id, typed attributes and problems.
        level0: list[str] = ["r.rowid AS rec"]
        problem_sql: list[str] = []
        if source.record_id:
            rid = f"nullif(trim(r.{_q(source.record_id)}), '')"
            code = self._problem(Problem("record_id", source.record_id, "the record id is blank"))
            problem_sql.append(f"CASE WHEN {rid} IS NULL THEN {1 << code} ELSE 0 END")
        else:
            rid = f"'{self.batch_id}-' || (r.rowid + 1)::VARCHAR"
        level0.append(f"{rid} AS record_id")
        raw_of: dict[str, str] = {}
        for name in ("given_name", "middle_name", "family_name", "sex", "postcode", "nhs_number"):
            column = getattr(identity, name)
            if column:
                raw_of[name] = present(column)
        if dob:
            raw_of["date_of_birth"] = present(dob.column)
        if identity.address:
            columns = [identity.address] if isinstance(identity.address, str) else identity.address
            parts = ", ".join(f"nullif(trim(r.{_q(c)}), '')" for c in columns)
            raw_of["address"] = f"nullif(concat_ws(', ', {parts}), '')"
        for name in FIELDS:
            level0.append(f"{raw_of.get(name, 'NULL::VARCHAR')} AS r_{name}")
        for index, name in enumerate(self.identifier_names):
            level0.append(f"{present(identity.identifiers[name])} AS r_id{index}")
        attributes = []
        for name, attribute in source.attributes.items():
            typed, reason = typed_sql(attribute, f"r.{_q(attribute.column)}")
            level0.append(f"{typed} AS {_q('a_' + name)}")
            attributes.append(_q("a_" + name))
            if reason is not None:
                code = self._problem(Problem(f"attributes.{name}", attribute.column, reason))
                problem_sql.append(
                    f"CASE WHEN trim(r.{_q(attribute.column)}) <> '' AND ({typed}) IS NULL "
                    f"THEN {1 << code} ELSE 0 END"
                )
        problems = f"({' | '.join(problem_sql) or '0'})::BIGINT"
        level0.append(f"{problems} AS problems")
        line = self._line_sql()
        level0.insert(1, f"{line} AS line")
        join = order = ""
        if "steps." in line:
            join = "ASOF LEFT JOIN reject_steps steps ON r.rowid >= steps.threshold"
            order = "ORDER BY rec"  # the join may reorder; keep std in file order

        keep = ["rec", "line", "record_id", "problems", *attributes]
        keep += [f"r_{n}" for n in FIELDS]
        keep += [f"r_id{i}" for i in range(len(self.identifier_names))]
        # Level 1: one pass of each expensive function.
        level1 = [
            *keep,
            "cd_name(r_given_name) AS s_given_name",
            "cd_name(r_middle_name) AS s_middle_name",
            "cd_name(r_family_name) AS s_family_name",
            "cd_fold(r_sex) AS f_sex",
            "cd_fold(r_address) AS f_address",
            "cd_pc_compact(r_postcode) AS c_postcode",
            "cd_nhs_digits(r_nhs_number) AS d_nhs",
            f"cd_dob_parse(r_date_of_birth, {fmt}) AS p_dob",
            *(f"cd_identifier(r_id{i}) AS s_id{i}" for i in range(len(self.identifier_names))),
        ]
        carried = [
            *keep,
            "s_given_name",
            "s_middle_name",
            "s_family_name",
            *(f"s_id{i}" for i in range(len(self.identifier_names))),
        ]
        # Level 2: checks on those.
        carried += ["d_nhs"]
        level2 = [
            *carried,
            "cd_sex_from_folded(f_sex) AS s_sex",
            "cd_address_from_folded(f_address) AS s_address",
            "cd_pc_fixed(c_postcode) AS k_postcode",
            "cd_nhs_valid_from(r_nhs_number, d_nhs) AS v_nhs",
            f"cd_dob_century(p_dob, {fmt}) AS d_dob",
        ]
        carried += ["s_sex", "s_address", "k_postcode", "v_nhs", "d_dob"]
        level3 = [*carried, "cd_pc_key_valid(k_postcode) AS v_postcode"]
        # Level 4: the final values and flags.
        level4 = [
            *carried[: carried.index("d_nhs")],
            "s_sex",
            "s_address",
            "cd_pc_from(r_postcode, k_postcode, v_postcode) AS s_postcode",
            "cd_nhs_from(r_nhs_number, d_nhs, v_nhs) AS s_nhs_number",
            "cd_dob_from(r_date_of_birth, d_dob) AS s_date_of_birth",
            "((CASE WHEN cd_dob_valid_from(d_dob) THEN 1 ELSE 0 END)"
            " | (CASE WHEN v_postcode THEN 2 ELSE 0 END)"
            " | (CASE WHEN v_nhs THEN 4 ELSE 0 END))::INTEGER AS flags",
        ]
        sql = (
            f"CREATE TABLE std AS SELECT {', '.join(level4)} FROM ("
            f"SELECT {', '.join(level3)} FROM ("
            f"SELECT {', '.join(level2)} FROM ("
            f"SELECT {', '.join(level1)} FROM ("
            f"SELECT {', '.join(level0)} FROM raw r {join})))) {order}"
        )
        try:
            self._run(sql)
        except duckdb.Error as exc:
            raise ExtractError(
                f"{self._display}: cannot standardise the file ({_first_line(exc)}); check the "
                "date formats in sources.yaml"
            ) from None
        self._flag_duplicates(known_keys)
        row = self.con.execute("SELECT count(*) FROM std WHERE problems <> 0").fetchall()
        bad = (int(row[0][0]) if row else 0) + self._rejected_count()
        return StageCounts(read=self.records(), bad=bad)

    def _rejected_count(self) -> int:
        row = self.con.execute("SELECT count(*) FROM rejected").fetchall()
        return int(row[0][0]) if row else 0

    def _flag_duplicates(self, known_keys: pa.Table | None) -> None:
        if not self.source.record_id:
            return
        column = self.source.record_id
        dup = self._problem(Problem("record_id", column, "the record id appears more than once"))
        self._run(
            f"""UPDATE std SET problems = problems | {1 << dup}
                WHERE record_id IN (SELECT record_id FROM std WHERE record_id IS NOT NULL
                                    GROUP BY record_id HAVING count(*) > 1)"""
        )
        if known_keys is not None and known_keys.num_rows:
            seen = self._problem(
                Problem(
                    "record_id",
                    column,
                    "the record id was ingested in an earlier batch (a changed record needs a "
                    "new record id)",
                )
            )
            self.con.register("known_keys", known_keys)
            prefix = _lit(self.source.name + ":")
            self._run(
                f"""UPDATE std SET problems = problems | {1 << seen}
                    WHERE {prefix} || record_id IN (SELECT record_key FROM known_keys)"""
            )
            self.con.unregister("known_keys")

    # -- reading the results ---------------------------------------------------------------

    def bad_rows(self) -> list[BadRow]:
        """Every problem of every bad row, in line order (identity values withheld)."""
        found: list[BadRow] = []
        for line, reason in self.con.execute("SELECT line, reason FROM rejected").fetchall():
            found.append(BadRow(int(line), None, "row", None, reason, None))
        rows = [
            (rec, line, record_id, code)
            for rec, line, record_id, mask in self.con.execute(
                "SELECT rec, line, record_id, problems FROM std WHERE problems <> 0 ORDER BY line"
            ).fetchall()
            for code in range(len(self.problems))
            if mask >> code & 1
        ]
        if not rows:
            return sorted(found, key=lambda b: b.line)
        lines_of: dict[str, list[int]] = {}
        if self.source.record_id:
            for record_id, lines in self.con.execute(
                """SELECT record_id, list(line ORDER BY line) FROM std
                   WHERE record_id IN (SELECT record_id FROM std GROUP BY record_id
                                       HAVING count(*) > 1) GROUP BY record_id"""
            ).fetchall():
                lines_of[record_id] = lines
        values = self._raw_values({rec for rec, _, _, _ in rows})
        for rec, line, record_id, code in rows:
            problem = self.problems[code]
            reason = problem.reason
            if problem.reason.startswith("the record id appears") and record_id in lines_of:
                shown = ", ".join(str(n) for n in lines_of[record_id][:5])
                more = "..." if len(lines_of[record_id]) > 5 else ""
                reason = f"the record id appears more than once (lines {shown}{more})"
            value = None
            if problem.column is not None and not problem.identity:
                value = values.get((rec, problem.column))
                if value is not None and len(value) > VALUE_SHOWN_CHARS:
                    value = value[:VALUE_SHOWN_CHARS] + "..."
            found.append(
                BadRow(int(line), record_id, problem.field, problem.column, reason, value)
            )
        return sorted(found, key=lambda b: b.line)

    def _raw_values(self, recs: set[int]) -> dict[tuple[int, str], str | None]:
        columns = sorted(
            {p.column for p in self.problems if p.column is not None and not p.identity}
        )
        if not columns or not recs:
            return {}
        self._run("CREATE OR REPLACE TEMP TABLE bad_recs (rec BIGINT)")
        self.con.executemany("INSERT INTO bad_recs VALUES (?)", [(r,) for r in sorted(recs)])
        picked = ", ".join(f"r.{_q(c)}" for c in columns)
        result: dict[tuple[int, str], str | None] = {}
        for row in self.con.execute(
            f"SELECT r.rowid, {picked} FROM raw r WHERE r.rowid IN (SELECT rec FROM bad_recs)"
        ).fetchall():
            for column, value in zip(columns, row[1:], strict=True):
                result[(int(row[0]), column)] = value
        return result

    def warehouse_rows(self) -> pa.Table:
        """The good rows' pseudonymised columns: record_key, batch_id, event_date, attributes."""
        source = self.source
        parts = [
            f"{_lit(source.name + ':')} || record_id AS record_key",
            f"{self.batch_id}::BIGINT AS batch_id",
        ]
        if source.event_date:
            parts.append(f"{_q('a_' + source.event_date)} AS event_date")
        parts += [f"{_q('a_' + name)} AS {_q(name)}" for name in source.attributes]
        return self.con.sql(
            f"SELECT {', '.join(parts)} FROM std WHERE problems = 0"
        ).to_arrow_table()

    def _vault_select(self) -> str:
        """SQL for the good rows' identity, in the layout ``Sealer.seal_columns`` takes.

        Each field's plaintext (``std``, ``std NUL raw`` or ``NUL raw``; see
        ``candour.vault.crypto``) is assembled here in SQL, vectorised, so the Python loop that
        encrypts does nothing but encrypt.
        """
        parts = [f"{_lit(self.source.name + ':')} || record_id AS record_key", "flags"]
        for name in FIELDS:
            std, raw = f"s_{name}", f"r_{name}"
            parts.append(
                f"CASE WHEN {std} IS NULL AND {raw} IS NULL THEN NULL "
                f"WHEN {std} IS NULL THEN encode(chr(0) || {raw}) "
                f"WHEN {std} = {raw} THEN encode({std}) "
                f"ELSE encode({std} || chr(0) || {raw}) END AS pt_{name}"
            )
        for index in range(len(self.identifier_names)):
            parts += [f"s_id{index}", f"r_id{index}"]
        return f"SELECT {', '.join(parts)} FROM std WHERE problems = 0"

    def vault_columns(self, chunk: int) -> Iterator[list[list[Any]]]:
        """The good rows' identity in chunks of columns (``Sealer.seal_columns`` layout)."""
        reader = self.con.sql(self._vault_select()).to_arrow_reader(chunk)
        for batch in reader:
            yield [column.to_pylist() for column in batch.columns]

    def export_vault_rows(self, path: Path, rows_per_group: int) -> None:
        """Write the good rows' identity to an Arrow IPC file for the sealing workers.

        One record batch per ``rows_per_group`` rows (each a worker's unit of work). Arrow's
        own file format, not Parquet: the workers map it and read the columns as they are,
        which costs half as much, here and there, as encoding and decoding Parquet.
        ``path`` must be inside the private staging directory: it holds identities in clear,
        and is created readable by its owner only.
        """
        reader = self.con.sql(self._vault_select()).to_arrow_reader(rows_per_group)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with (
            open(fd, "wb") as handle,
            pa.PythonFile(handle, mode="w") as sink,
            pa.ipc.new_file(sink, reader.schema) as writer,
        ):
            for batch in reader:
                writer.write_batch(batch)

    def identity_values(self) -> Sequence[str]:
        """Every identity value staged (raw and standardised): for invariant tests only."""
        columns = [f"s_{n}" for n in FIELDS] + [f"r_{n}" for n in FIELDS]
        columns += [f"s_id{i}" for i in range(len(self.identifier_names))]
        columns += [f"r_id{i}" for i in range(len(self.identifier_names))]
        union = " UNION ".join(f"SELECT {c} AS v FROM std" for c in columns)
        rows = self.con.execute(f"SELECT DISTINCT v FROM ({union}) WHERE v IS NOT NULL").fetchall()
        return [row[0] for row in rows]


def _first_line(exc: BaseException) -> str:
    # DuckDB messages can quote a value from the file; only a format complaint is safe to show.
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return text if "format" in text.lower() else type(exc).__name__


def check_formats(source: Source, index: int | None = None) -> None:
    """Refuse a date format DuckDB cannot use, naming its place in sources.yaml."""
    where = f"sources[{index}]" if index is not None else source.name
    formats: list[tuple[str, str]] = []
    if source.identity.date_of_birth:
        formats.append(("identity.date_of_birth.format", source.identity.date_of_birth.format))
    for name, attribute in source.attributes.items():
        if attribute.type == "date":
            formats.append((f"attributes.{name}.format", attribute.format or "%Y-%m-%d"))
    con = duckdb.connect(":memory:")
    try:
        for path, fmt in formats:
            try:
                con.execute("SELECT try_strptime('2000-01-01', ?)", [fmt]).fetchall()
            except duckdb.Error:
                raise ExtractError(
                    f"sources.yaml: {where}.{path}: {fmt!r} is not a usable strptime format"
                ) from None
    finally:
        con.close()
