"""Row identity: what makes one landed row *one record*, when real data repeats itself.

Webex attendee history has no per-join id, and real sites produce rows that agree on every
field we could key on: two call-in users labelled ``Call-in User_3`` with no email joining the
same second, one person joining from two devices.  Such rows are separate records (each is a
join), so they must all land.  A row's identity is therefore its dataset's natural key plus its
**occurrence**: 1, 2, ... among the rows of one listing that share that key, numbered in the
order of their content (every source field), so re-listing the same data numbers it the same
way and a revised row still replaces its earlier version.

The same content hash finds rows a listing returned twice (a page overlap when the server's
order is unstable among ties): exact twins are legitimate, so a repeat across pages is
*checked*, never just dropped (see :mod:`exporter.webex.paging`).

All functions are pure: Arrow tables in, Arrow arrays out (DuckDB does the hashing, in a private
in-memory connection per call, so threads never share one).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ..model.dataset_spec import Dataset

__all__ = [
    "OCCURRENCE_COLUMN",
    "VERIFIED_COLUMN",
    "content_columns",
    "content_hashes",
    "occurrences",
    "with_occurrences",
    "repeated_across_pages",
    "union_by_content",
    "identity_key",
]

#: 1, 2, ... among rows of one listing with the same natural key (see the module docstring).
OCCURRENCE_COLUMN = "_occurrence"
#: False on rows of a listing that landed although it could not be verified complete.
VERIFIED_COLUMN = "_verified"


def identity_key(dataset: Dataset, present: Sequence[str] | None = None) -> tuple[str, ...]:
    """The columns that identify one landed row: ``site``, the natural key, the occurrence; with
    ``present`` (a table's columns) only the key columns it has (a source fills its own key)."""
    key = dataset.identity_columns if present is None else tuple(c for c in dataset.identity_columns if c in present)
    return ("site", *key, OCCURRENCE_COLUMN)


def content_columns(dataset: Dataset, table: pa.Table) -> list[str]:
    """The source fields of ``dataset`` present in ``table`` (declared columns, then ``extra``)."""
    have = set(table.column_names)
    return [c.name for c in dataset.all_columns if c.name in have] + (["extra"] if "extra" in have else [])


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_LOCAL = threading.local()


def _query(table: pa.Table, sql: str) -> pa.Table:
    """``sql`` over ``table`` (as ``rows_in``) in this thread's private in-memory DuckDB (opening
    one costs ~10 ms, more than hashing a page)."""
    con = getattr(_LOCAL, "con", None)
    if con is None:
        con = _LOCAL.con = duckdb.connect()
        con.execute("SET threads = 1")  # small tables; and keep the event loop's core to itself
    con.register("rows_in", table)
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.unregister("rows_in")


def content_hashes(table: pa.Table, columns: Sequence[str]) -> pa.Array:
    """One 64-bit hash per row over ``columns`` (nulls hash as nulls; equal rows, equal hashes)."""
    if table.num_rows == 0:
        return pa.array([], pa.uint64())
    if not columns:
        return pa.repeat(pa.scalar(0, pa.uint64()), table.num_rows)
    cols = ", ".join(_quote(c) for c in columns)
    out = _query(table.select(list(columns)), f"SELECT hash({cols}) AS h FROM rows_in")
    return out.column("h").combine_chunks()


def occurrences(table: pa.Table, key: Sequence[str], columns: Sequence[str]) -> pa.Array:
    """The occurrence number (int64, from 1) of each row among rows with equal ``key``, in the
    order of their content hash over ``columns`` (ties: exact twins, which are interchangeable)."""
    n = table.num_rows
    if n == 0:
        return pa.array([], pa.int64())
    keys = table.select(list(key))
    # Fast path: keys unique, every occurrence is 1 (Arrow's hash grouping, no DuckDB round trip).
    if keys.group_by(list(key)).aggregate([]).num_rows == n:
        return pa.repeat(pa.scalar(1, pa.int64()), n)
    work = keys.append_column("__h", content_hashes(table, columns)).append_column(
        "__rid", pa.array(range(n), pa.int64())
    )
    partition = ", ".join(_quote(k) for k in key)
    out = _query(
        work,
        f"SELECT __rid, row_number() OVER (PARTITION BY {partition} ORDER BY __h) AS occ FROM rows_in ORDER BY __rid",
    )
    return out.column("occ").combine_chunks().cast(pa.int64())


def with_occurrences(table: pa.Table, dataset: Dataset, *, by: Sequence[str] = ()) -> pa.Table:
    """``table`` with :data:`OCCURRENCE_COLUMN` (re)computed over the natural key (and ``by``,
    e.g. ``_preliminary``: final and preliminary rows are numbered apart)."""
    # A source's rows fill only its own key columns (see Dataset.identity_columns).
    key = [*(c for c in dataset.identity_columns if c in table.column_names), *(c for c in by if c in table.column_names)]
    occ = occurrences(table, key, content_columns(dataset, table))
    if OCCURRENCE_COLUMN in table.column_names:
        table = table.drop_columns([OCCURRENCE_COLUMN])
    return table.append_column(pa.field(OCCURRENCE_COLUMN, pa.int64()), occ)


def repeated_across_pages(
    pages: Sequence[pa.Table], columns: Sequence[str], key: Sequence[str] = ()
) -> dict[int, dict[int, int]]:
    """Contents that appear on more than one page: ``{hash: {page index: copies on that page}}``.

    Within one page (one server query, one ordering) equal rows are real twins; equal rows on two
    pages may be twins split by a page boundary, or one row served twice because the server's
    order among tied rows moved between the two requests.  With ``key`` (the natural key), only
    rows whose key is on two pages are hashed: equal rows have equal keys, and a listing without
    such keys (the usual case) costs one Arrow group-by."""
    pages = list(pages)
    if len(pages) < 2:
        return {}
    page_of = pa.concat_arrays([pa.repeat(pa.scalar(i, pa.int64()), p.num_rows) for i, p in enumerate(pages)])
    rows = pa.concat_tables([p.select(list(columns)) for p in pages]).append_column("__page", page_of)
    if key:
        spread = rows.select([*key, "__page"]).group_by(list(key)).aggregate([("__page", "count_distinct")])
        if pc.max(spread.column("__page_count_distinct")).as_py() < 2:
            return {}
    # One query over every page: content hash, page, copies; kept where a hash is on two pages.
    cols = ", ".join(_quote(c) for c in columns)
    counted = _query(rows, f"SELECT hash({cols}) AS h, __page AS page, count(*) AS n FROM rows_in GROUP BY ALL")
    seen: dict[int, dict[int, int]] = {}
    for h, page, n in zip(*(counted.column(c).to_pylist() for c in ("h", "page", "n")), strict=True):
        seen.setdefault(h, {})[page] = n
    return {h: where for h, where in seen.items() if len(where) > 1}


def union_by_content(tables: Sequence[pa.Table], columns: Sequence[str]) -> pa.Table:
    """Every distinct content any of ``tables`` holds, as many times as the table holding it most
    often does: what several unverifiable listings of one window saw, with nothing left out."""
    filled = [t for t in tables if t.num_rows]
    if len(filled) <= 1:
        return filled[0] if filled else tables[0]
    tables = filled
    best: dict[int, tuple[int, int]] = {}  # hash -> (copies, table index)
    hashes = [content_hashes(t, columns).to_pylist() for t in tables]
    for index, hs in enumerate(hashes):
        for h, copies in Counter(hs).items():
            if h not in best or copies > best[h][0]:
                best[h] = (copies, index)
    picks: list[pa.Table] = []
    for index, (table, hs) in enumerate(zip(tables, hashes, strict=True)):
        keep = [row for row, h in enumerate(hs) if best[h][1] == index]
        if keep:
            picks.append(table.take(pa.array(keep, pa.int64())))
    return pa.concat_tables(picks)
