"""Printing result rows (table, CSV, JSON) and the ``status`` rows."""

from __future__ import annotations

import csv
import json
import sys
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TextIO

from ..config import Settings

__all__ = ["print_rows", "format_rows", "status_rows"]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _pad(text: str, width: int) -> str:
    """``text`` padded to ``width`` terminal cells (a CJK character takes two, a combining mark none)."""
    from rich.cells import cell_len

    return text + " " * max(0, width - cell_len(text))


def format_rows(columns: list[str], rows: list[tuple[Any, ...]], output: str) -> str:
    """Render rows as an aligned table (widths in terminal cells), CSV, a JSON list of objects,
    or NDJSON (one JSON object per line)."""
    if output == "json":
        return json.dumps([{c: _jsonable(v) for c, v in zip(columns, row)} for row in rows], ensure_ascii=False, indent=1)
    if output == "ndjson":
        return "\n".join(json.dumps({c: _jsonable(v) for c, v in zip(columns, row)}, ensure_ascii=False, default=str)
                         for row in rows)
    if output == "csv":
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_cell(v) for v in row] for row in rows])
        return buffer.getvalue().rstrip("\n")
    from rich.cells import cell_len

    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([cell_len(c)] + [cell_len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(_pad(c, w) for c, w in zip(columns, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(_pad(v, w) for v, w in zip(r, widths)) for r in cells]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)


def print_rows(columns: list[str], rows: list[tuple[Any, ...]], output: str = "table", stream: TextIO | None = None) -> None:
    """Print rows to stdout in the chosen format."""
    print(format_rows(columns, rows, output), file=stream or sys.stdout)


def status_rows(
    settings: Settings, *, sites: tuple[str, ...] | None = None, datasets: tuple[str, ...] | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Per (site, dataset): cursor, lag, last run and outcome, failed windows, gap warning, rows, and
    committed files found damaged and not yet repaired by a re-fetch (``damaged_files``)."""
    from ..store.status import read_status

    expected = [(site.name, d) for site in settings.sites for d in site.datasets]
    rows = read_status(settings.warehouse, export=settings.export, expected=expected)
    columns = ["site", "dataset", "cursor", "lag_hours", "last_run", "outcome", "failed_windows", "unverified_windows",
               "gap_warning", "rows", "files", "unavailable", "damaged_files"]
    out = []
    for r in rows:
        if (sites and r.site not in sites) or (datasets and r.dataset not in datasets):
            continue
        lag = round(r.lag.total_seconds() / 3600, 1) if r.lag is not None else None
        out.append((r.site, r.dataset, r.cursor, lag, r.last_run_at, r.last_outcome, r.failed_windows,
                    r.unverified_windows, r.gap_warning, r.rows_held, r.files, r.unavailable, r.damaged_files))
    return columns, out
