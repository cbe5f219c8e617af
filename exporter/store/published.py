"""Published tables: what direct Parquet readers and the catalog's tables are made of.

The landing lake (``<root>/<dataset>/site=/date=/``) holds every version of every record a
commit wrote, until compaction; readers would have to deduplicate it.  So each publish also
keeps, per dataset and UTC month of the record's start, **one** Parquet file with exactly one
row per record identity (the catalog rule: final beats preliminary, newest commit wins)::

    <root>/tables/<dataset>/month=<YYYY-MM>/part-0.parquet
    <root>/tables/<dataset>/month=__HIVE_DEFAULT_PARTITION__/part-0.parquet   (no start time)

``pandas.read_parquet("warehouse/tables/meeting_usage")``, pyarrow, polars, Spark or DataFusion
get one row per record with no recipe, and ``month`` (the path key) is not a column of the
files, so nothing clashes.  A month is rewritten only when the set of lake files behind it
changed (its *fingerprint*), to a temporary file renamed over the old one: a reader sees the
old month or the new one, never both and never half.

The catalog (``webex.duckdb``) holds the same rows as real tables, not views over file paths,
so a copied or mounted warehouse (or the catalog file alone) works anywhere.  Each generation
starts as a copy of the previous one and only its changed months are replaced, so a publish
costs what changed, not the whole history.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from ..model.dataset_spec import Dataset
from .lake import UNKNOWN_DATE, fsync_dir

__all__ = ["TABLES_DIR", "MonthFiles", "plan_months", "month_of", "month_predicate", "write_months",
           "refresh_tables", "FINGERPRINT_TABLE"]

TABLES_DIR = "tables"
PART_NAME = "part-0.parquet"
#: In every catalog generation: which fingerprint each dataset month it holds was built from.
FINGERPRINT_TABLE = "published_months"


def month_of(partition: str) -> str:
    """The month key (``YYYY-MM``, or the unknown-date key) of a lake partition ``YYYY-MM-DD``."""
    return UNKNOWN_DATE if partition == UNKNOWN_DATE else partition[:7]


def month_predicate(dataset: Dataset, month: str) -> str:
    """SQL that is true for the rows of ``dataset`` in ``month`` (by the UTC start time)."""
    column = '"' + dataset.start_column.replace('"', '""') + '"'
    if month == UNKNOWN_DATE:
        return f"{column} IS NULL"
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=timezone.utc)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return f"{column} >= TIMESTAMPTZ '{start.isoformat()}' AND {column} < TIMESTAMPTZ '{end.isoformat()}'"


@dataclass(frozen=True, slots=True)
class MonthFiles:
    """The committed lake files behind one dataset month, and their fingerprint."""

    month: str
    files: tuple[tuple[str, Mapping[str, str]], ...]
    fingerprint: str


def plan_months(
    manifest_rows: Sequence[Mapping[str, Any]],
    schemas: Sequence[Mapping[str, str]],
    uri: Callable[[str], str],
    extras: Sequence[str],
    declared: Sequence[tuple[str, str]],
) -> dict[str, MonthFiles]:
    """Group one dataset's manifest rows (and their parsed ``columns``, ``schemas``) by month.
    The fingerprint covers the files' paths and the table's column list, so a new file, a
    retired one or a new column rewrites the month."""
    by_month: dict[str, list[tuple[Mapping[str, Any], Mapping[str, str]]]] = {}
    for row, schema in zip(manifest_rows, schemas, strict=True):
        by_month.setdefault(month_of(row["partition"]), []).append((row, schema))
    shape = json.dumps([list(declared), list(extras)])
    out = {}
    for month, pairs in by_month.items():
        pairs.sort(key=lambda p: p[0]["path"])
        digest = hashlib.sha256(shape.encode())
        for row, _ in pairs:
            digest.update(b"\0" + row["path"].encode())
        out[month] = MonthFiles(month, tuple((uri(r["path"]), schema) for r, schema in pairs), digest.hexdigest()[:20])
    return out


def _month_file(root: Path, dataset: str, month: str) -> Path:
    return root / TABLES_DIR / dataset / f"month={month}" / PART_NAME


def write_months(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    dataset: Dataset,
    months: Mapping[str, MonthFiles],
    written: Mapping[str, str],
    select_sql: Callable[[Sequence[tuple[str, Mapping[str, str]]]], str],
) -> tuple[dict[str, str], list[str]]:
    """Bring ``<root>/tables/<dataset>/`` up to ``months``: rewrite each month whose fingerprint
    differs from ``written`` (what the files on disk were built from), delete months that are
    gone.  ``select_sql(files)`` is the deduplicating SELECT over a month's lake files.  Returns
    the new ``{month: fingerprint}`` and the months that changed."""
    changed = []
    for month, plan in sorted(months.items()):
        target = _month_file(root, dataset.name, month)
        if written.get(month) == plan.fingerprint and target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{PART_NAME}.{os.getpid()}.tmp")
        temp.unlink(missing_ok=True)
        sql = select_sql(plan.files)
        quoted = "'" + str(temp).replace("'", "''") + "'"
        con.execute(f"COPY ({sql}) TO {quoted} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 131072)")
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, target)
        fsync_dir(target.parent)
        changed.append(month)
    for month in sorted(set(written) - set(months)):
        folder = _month_file(root, dataset.name, month).parent
        for leftover in folder.glob("*"):
            leftover.unlink(missing_ok=True)
        if folder.exists():
            folder.rmdir()
        changed.append(month)
    return {m: p.fingerprint for m, p in months.items()}, changed


def refresh_tables(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    root: Path,
    dataset: Dataset,
    months: Mapping[str, MonthFiles],
    columns: Sequence[tuple[str, str]],
) -> None:
    """Make table ``<schema>.<dataset>`` (in a catalog that started as a copy of the previous
    generation) hold exactly the published months: months whose fingerprint differs from the
    one the copy recorded are deleted and inserted again; a table whose columns differ from
    ``columns`` (a new exporter version, or a catalog of views) is rebuilt whole."""
    name = '"' + dataset.name.replace('"', '""') + '"'
    table = f"{schema}.main.{name}"
    existing = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? AND table_name = ? "
        "AND schema_name = 'main' ORDER BY column_index",
        [schema, dataset.name],
    ).fetchall()
    is_table = bool(con.execute(
        "SELECT 1 FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' AND table_name = ?",
        [schema, dataset.name],
    ).fetchall())
    recorded = dict(con.execute(
        f"SELECT month, fingerprint FROM {schema}.main.{FINGERPRINT_TABLE} WHERE dataset = ?", [dataset.name]
    ).fetchall())
    files = {m: str(_month_file(root, dataset.name, m)) for m in months}
    wanted = [(n, _normal(t)) for n, t in columns]
    dirty = [m for m in sorted(set(recorded) | set(months))
             if recorded.get(m) != (months[m].fingerprint if m in months else None)]
    same_shape = is_table and [(n, _normal(t)) for n, t in existing] == wanted
    if not same_shape or 2 * len(dirty) > max(len(months), 1):
        # Rebuilt whole: a new shape, or most months changed (a backfill), where one scan of the
        # month files is cheaper than deleting and inserting month by month.
        con.execute(f"DROP {'TABLE' if is_table else 'VIEW'} IF EXISTS {table}")
        typed = ", ".join(f"CAST(NULL AS {t}) AS \"{n}\"" for n, t in columns)
        listed = ", ".join("'" + files[m].replace("'", "''") + "'" for m in sorted(months))
        source = f"read_parquet([{listed}], hive_partitioning = false)" if months else None
        con.execute(f"CREATE TABLE {table} AS SELECT {typed} WHERE false")
        if source:
            con.execute(f"INSERT INTO {table} SELECT * FROM {source}")
        dirty = []
    for month in dirty:
        con.execute(f"DELETE FROM {table} WHERE {month_predicate(dataset, month)}")
        if month in months:
            path = "'" + files[month].replace("'", "''") + "'"
            con.execute(f"INSERT INTO {table} SELECT * FROM read_parquet({path}, hive_partitioning = false)")
    con.execute(f"DELETE FROM {schema}.main.{FINGERPRINT_TABLE} WHERE dataset = ?", [dataset.name])
    if months:
        con.executemany(
            f"INSERT INTO {schema}.main.{FINGERPRINT_TABLE} VALUES (?, ?, ?)",
            [[dataset.name, m, p.fingerprint] for m, p in months.items()],
        )


def _normal(type_name: str) -> str:
    """DuckDB's spelling of a type as ``duckdb_columns`` reports it."""
    return {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}.get(type_name.upper(), type_name.upper())
