"""Shaping a table for landing: conformed to the registry's declared columns and types, lineage
columns added (``_commit``, ``_landed_at``), one row per identity (the newest version), and split
into the lake's daily partitions.  Used by the commit path and compaction before
:meth:`exporter.store.lake.Lake.write_staged`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import WarehouseError
from ..model.dataset_spec import Dataset
from ..records.arrow_schema import ARROW_TYPES
from ..records.identity import OCCURRENCE_COLUMN, VERIFIED_COLUMN
from .lake import COMMIT_COLUMN, LANDED_COLUMN, PRELIMINARY_COLUMN, UNKNOWN_DATE

__all__ = ["arrow_type", "conform", "dedupe_latest", "split_partitions", "with_lineage"]

def arrow_type(column_type: str) -> pa.DataType:
    """The Arrow type a registry column type lands as (json is kept as its JSON text)."""
    return ARROW_TYPES[column_type]


def conform(table: pa.Table, dataset: Dataset, site: str) -> pa.Table:
    """``table`` in the dataset's landing shape: declared columns in order and typed, then
    ``site``, ``extra``, ``_preliminary``, then any other columns the parser added (kept, so a
    promoted extra lands before the registry knows it).  Missing declared columns become nulls;
    a ``site`` column that names another site is refused (it would file rows under a wrong site).
    """
    n = table.num_rows
    arrays: list[pa.Array | pa.ChunkedArray] = []
    fields: list[pa.Field] = []

    def put(name: str, wanted: pa.DataType, default: pa.Array | None = None) -> None:
        if name in table.column_names:
            column = table.column(name)
            if column.type != wanted:
                try:
                    column = column.cast(wanted)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise WarehouseError(
                        f"{dataset.name}.{name}: cannot land {column.type} as {wanted}: {exc}"
                    ) from exc
        else:
            column = default if default is not None else pa.nulls(n, wanted)
        arrays.append(column)
        fields.append(pa.field(name, wanted))

    # REST-only columns only where the source filled them (XML files stay as they were).
    for col in (*dataset.columns, *(c for c in dataset.rest_columns if c.name in table.column_names)):
        put(col.name, arrow_type(col.type))
    put("site", pa.string(), pa.array([site] * n, pa.string()))
    arrays[-1] = pc.fill_null(arrays[-1], site)
    sites = set(pc.unique(arrays[-1]).to_pylist()) if n else {site}
    if sites != {site}:
        raise WarehouseError(f"{dataset.name}: rows for site {sorted(map(str, sites))} given to site {site!r}")
    put("extra", pa.string())
    put(PRELIMINARY_COLUMN, pa.bool_(), pa.array([False] * n, pa.bool_()))
    arrays[-1] = pc.fill_null(arrays[-1], False)
    put(OCCURRENCE_COLUMN, pa.int64(), pa.repeat(pa.scalar(1, pa.int64()), n))
    arrays[-1] = pc.fill_null(arrays[-1], 1)
    put(VERIFIED_COLUMN, pa.bool_(), pa.repeat(pa.scalar(True), n))
    arrays[-1] = pc.fill_null(arrays[-1], True)
    known = {f.name for f in fields} | {COMMIT_COLUMN, LANDED_COLUMN}
    for name in table.column_names:
        if name not in known:
            arrays.append(table.column(name))
            fields.append(table.schema.field(name))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def with_lineage(table: pa.Table, commit_id: int, landed_at: datetime) -> pa.Table:
    """``table`` plus ``_commit`` (this commit's number) and ``_landed_at`` (when it landed)."""
    n = table.num_rows
    for name in (COMMIT_COLUMN, LANDED_COLUMN):
        if name in table.column_names:
            table = table.drop_columns([name])
    table = table.append_column(pa.field(COMMIT_COLUMN, pa.int64()), pa.repeat(pa.scalar(commit_id, pa.int64()), n))
    stamp = ARROW_TYPES["timestamp"]
    return table.append_column(pa.field(LANDED_COLUMN, stamp), pa.repeat(pa.scalar(landed_at, stamp), n))


def dedupe_latest(table: pa.Table, key: Sequence[str]) -> pa.Table:
    """One row per ``key`` (a row identity, :func:`exporter.records.identity.identity_key`): a final
    row beats a preliminary one, then the highest ``_commit``, then the later row.  Row order of the
    survivors is kept.

    Used inside a window (a listing that returned one record twice) and by compaction; the
    catalog views apply the same rule across files.
    """
    n = table.num_rows
    if n == 0:
        return table
    if n >= 1 << 31:
        raise WarehouseError(f"table too large to deduplicate in one piece ({n} rows)")
    final = pc.if_else(pc.fill_null(table.column(PRELIMINARY_COLUMN), False), 0, 1).cast(pa.int64())
    commit = pc.fill_null(table.column(COMMIT_COLUMN), 0).cast(pa.int64())
    # One sortable number per row: final flag, commit number, position (commit < 2**31).
    score = pc.add(
        pc.add(pc.shift_left(final, 62), pc.shift_left(commit, 31)),
        pa.array(range(n), pa.int64()),
    )
    scored = table.select(list(key)).append_column("__score", score)
    best = scored.group_by(list(key), use_threads=False).aggregate([("__score", "max")]).column("__score_max")
    if len(best) == n:
        return table
    return table.filter(pc.is_in(score, value_set=best.combine_chunks()))


def split_partitions(table: pa.Table, start_column: str) -> list[tuple[str, pa.Table]]:
    """``(date, rows)`` per UTC date of ``start_column``, each sorted by start (tight row-group
    statistics let readers skip data by time); null starts go to :data:`UNKNOWN_DATE`."""
    if table.num_rows == 0:
        return []
    # One stable sort, then each date is one contiguous run (null starts sort last): slices,
    # not a filter per date, and no strftime per row.
    table = table.sort_by([(start_column, "ascending")])
    days = pc.run_end_encode(pc.cast(table.column(start_column), pa.date32()).combine_chunks())
    out = []
    begin = 0
    for end, day in zip(days.run_ends.to_pylist(), days.values.to_pylist(), strict=True):
        out.append((UNKNOWN_DATE if day is None else day.isoformat(), table.slice(begin, end - begin)))
        begin = end
    return out
