"""What a list request selects: :class:`Selection` (the cache key of a listing) and its
:class:`Filter` s, and the record tests they compile to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .records import Layout, Record

__all__ = ["Filter", "Selection", "predicate_of"]


@dataclass(frozen=True, slots=True)
class Filter:
    """One request filter: ``column`` compared with ``value`` by ``op`` (eq, ieq, prefix, in, status, or
    owner: the lower-cased webExID ``value`` hosts the session or recording the column names)."""

    column: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class Selection:
    """What a list request selects, without paging: the cache key of a listing.

    ``filters`` combine by AND, or by OR when ``any_of``; the scopes count as filters.  ``requires``
    always combine by AND (service types, status).  ``audio_only`` / ``pmr`` admit flagged rows.
    """

    dataset: str
    preliminary: bool = False
    start_range: tuple[int, int] | None = None
    end_range: tuple[int, int] | None = None
    filters: tuple[Filter, ...] = ()
    requires: tuple[Filter, ...] = ()
    any_of: bool = False
    order: tuple[tuple[str, bool], ...] = ()
    audio_only: bool = True
    pmr: bool = False


def predicate_of(lay: Layout, sel: Selection, now: int,
               owners: Mapping[int, str]) -> Callable[[Record], bool] | None:
    """The test a record must pass to be listed for ``sel`` (None: every record passes)."""
    tests = []
    if sel.start_range and sel.any_of:
        tests.append(_start_test(lay, *sel.start_range))
    if sel.end_range:
        tests.append(_end_test(lay, *sel.end_range))
    tests.extend(_filter_test(lay, f, now, owners) for f in sel.filters)
    required = [_filter_test(lay, f, now, owners) for f in sel.requires]
    if not tests and not required:
        return None
    combine = any if sel.any_of else all
    if not tests:
        return lambda r: all(t(r) for t in required)
    return lambda r: all(t(r) for t in required) and combine(t(r) for t in tests)


def _start_test(lay: Layout, low: int, high: int) -> Callable[[Record], bool]:
    start = lay.start
    return lambda r: low <= r[start] <= high


def _end_test(lay: Layout, low: int, high: int) -> Callable[[Record], bool]:
    end_of = lay.end_of
    return lambda r: (end := end_of(r)) is not None and low <= end <= high


def _filter_test(lay: Layout, f: Filter, now: int, owners: Mapping[int, str]) -> Callable[[Record], bool]:
    if f.op == "owner":
        i, who = lay.index[f.column], f.value
        return lambda r: owners.get(r[i]) == who
    if f.op == "status":
        lay_end, actual = lay.end_of, lay.index["actual_start_time"]
        want_running = f.value == "INPROGRESS"
        return lambda r: ((r[actual] is not None and (end := lay_end(r)) is not None and r[actual] <= now < end)
                          == want_running)
    i = lay.index[f.column]
    value = f.value
    if f.op == "eq":
        return lambda r: r[i] == value
    if f.op == "ieq":
        low = str(value).lower()
        return lambda r: r[i] is not None and r[i].lower() == low
    if f.op == "prefix":
        low = str(value).lower()
        return lambda r: r[i] is not None and r[i].lower().startswith(low)
    if f.op == "in":
        return lambda r: r[i] in value
    raise ValueError(f"unknown filter op {f.op!r}")
