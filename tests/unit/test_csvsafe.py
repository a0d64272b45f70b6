"""CSV-injection neutralisation for every CSV Candour writes."""

from __future__ import annotations

import csv
import io

from candour.csvsafe import SafeCsvWriter, neutralise_cell


def test_formula_prefixes_are_neutralised():
    for value in ("=1+2", "+A1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("x")'):
        assert neutralise_cell(value) == "'" + value


def test_plain_numbers_and_other_values_are_left_alone():
    for value in ("-12", "+3.5", "-1e3", ".5", "hello", "", "a=b", "O'Brien"):
        assert neutralise_cell(value) == value
    assert neutralise_cell(-5) == -5 and neutralise_cell(None) is None


def test_the_writer_neutralises_every_cell():
    buffer = io.StringIO()
    SafeCsvWriter(buffer).writerows([["source", "value"], ["gp", "=cmd|' /C calc'!A0"]])
    rows = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert rows == [["source", "value"], ["gp", "'=cmd|' /C calc'!A0"]]
