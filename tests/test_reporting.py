"""Printed rows: tables aligned in terminal cells (CJK names are two cells a character), NDJSON."""

from __future__ import annotations

import json

from rich.cells import cell_len

from exporter.app.reporting import format_rows


def test_a_table_with_cjk_names_stays_aligned():
    rows = [("meiling.chen6", "美玲 陳", 52), ("dean.smith2", "Dean Smith", 67), ("soren.aero3", "Søren Ærø", 49)]
    text = format_rows(["host", "name", "meetings"], rows, "table")
    lines = text.splitlines()[:-1]  # without the "(3 rows)" line
    header_column = cell_len(lines[0][: lines[0].index("meetings")])
    starts = {cell_len(line[: line.rindex(str(n))]) for line, (_, _, n) in zip(lines[2:], rows)}
    assert starts == {header_column}, text  # every count starts in the header's terminal column
    assert len({cell_len(line.rstrip()) for line in lines[2:]}) == 1, text


def test_ndjson_is_one_object_per_line():
    text = format_rows(["site", "n"], [("acme", 1), ("globex", 2)], "ndjson")
    assert [json.loads(line) for line in text.splitlines()] == [{"site": "acme", "n": 1}, {"site": "globex", "n": 2}]
