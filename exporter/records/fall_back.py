"""Wall times in the repeated hour when clocks fall back, told apart by the row itself.

A time without a zone label (``zone``: the site's) in that hour names two instants.  A row with
a start, an end and a ``duration`` in minutes usually says which: of the readings (first or
second occurrence of each ambiguous time), only one gives ``end - start`` equal to the duration
and an end not before the start.  When exactly one does, the row takes it; otherwise (both times
inside the repeated hour, or no duration) it keeps the first occurrence and stays counted in
``ambiguous_times``, so the guess is visible.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import product

import pyarrow as pa

from ..model.dataset_spec import Dataset

__all__ = ["DURATION_TOLERANCE", "resolve_fall_back", "span_columns"]

#: How far ``end - start`` may be from ``duration`` minutes and still match (Webex rounds it).
DURATION_TOLERANCE = timedelta(seconds=90)

#: Per column index: row -> the second-occurrence instant of an ambiguous wall time.
Alternatives = dict[int, dict[int, datetime]]


def span_columns(dataset: Dataset) -> tuple[int, int, int] | None:
    """Column indexes of (start, end, duration in minutes) for a dataset whose rows have them."""
    names = [c.name for c in dataset.columns]
    ends = [i for i, c in enumerate(dataset.columns)
            if c.type == "timestamp" and (c.name.endswith("end_time") or c.name == "leave_time")]
    if dataset.start_column not in names or "duration" not in names or len(ends) != 1:
        return None
    return names.index(dataset.start_column), ends[0], names.index("duration")


def resolve_fall_back(arrays: list[pa.Array], span: tuple[int, int, int] | None, second: Alternatives) -> Alternatives:
    """Replace, in ``arrays`` (a page's typed columns), each ambiguous start or end the row's
    duration settles; return the ambiguous times left unsettled (same shape as ``second``)."""
    left = {index: dict(rows) for index, rows in second.items() if rows}
    if span is None:
        return left
    start_at, end_at, duration_at = span
    starts, ends = left.get(start_at, {}), left.get(end_at, {})
    changed: dict[int, dict[int, datetime]] = {start_at: {}, end_at: {}}
    for row in sorted(set(starts) | set(ends)):
        start, end = arrays[start_at][row].as_py(), arrays[end_at][row].as_py()
        minutes = arrays[duration_at][row].as_py()
        if start is None or end is None or minutes is None:
            continue
        duration = timedelta(minutes=minutes)
        readings = [(s, e) for s, e in product([start] + ([starts[row]] if row in starts else []),
                                               [end] + ([ends[row]] if row in ends else []))
                    if e >= s and abs((e - s) - duration) <= DURATION_TOLERANCE]
        if len(readings) != 1:
            continue
        (s, e), = readings
        changed[start_at][row], changed[end_at][row] = s, e
        starts.pop(row, None)
        ends.pop(row, None)
    for index, rows in changed.items():
        if rows:
            values = arrays[index].to_pylist()
            for row, value in rows.items():
                values[row] = value
            arrays[index] = pa.array(values, arrays[index].type)
    return {index: rows for index, rows in left.items() if rows}
