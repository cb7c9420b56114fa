"""labs/usage_csv.py: cells a spreadsheet would run as formulas stay text."""

from __future__ import annotations

import csv
import io

import pytest

from labs.usage_csv import safe_cell, write_csv


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+2", "'=1+2"),
        ("+33 6 12", "'+33 6 12"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=cmd", "'\t=cmd"),
        ("\r=cmd", "'\r=cmd"),
        ("Ada = Lovelace", "Ada = Lovelace"),
        ("", ""),
        (None, ""),
        (2.5, 2.5),
        (0, 0),
    ],
)
def test_safe_cell(value, written):
    assert safe_cell(value) == written


def test_write_csv_has_a_header_and_one_line_a_row():
    columns = [("name", lambda row: row[0]), ("hours", lambda row: row[1]), ("limit", lambda row: row[2])]
    text = write_csv(columns, [('=evil, "quoted"', 1.5, None), ("ada", 0, 20)])
    assert text.endswith("\r\n")
    assert list(csv.reader(io.StringIO(text))) == [
        ["name", "hours", "limit"],
        ['\'=evil, "quoted"', "1.5", ""],
        ["ada", "0", "20"],
    ]
