"""DuckDB: the catalog file the exporter publishes for readers, next to its private state DB.

Two files, because DuckDB allows one read-write process *or* many readers per file:

* ``<catalog dir>/.webex-exporter/state.duckdb`` - private, opened read-write by the one exporter
  that holds the warehouse lock: :class:`~exporter.store.state_db.StateStore`.
* ``webex.duckdb`` (``WarehouseSettings.catalog``) - what analysts and BI tools open, read-only
  or not.  :func:`build_catalog` writes a complete new file under
  ``.webex-exporter/catalogs/webex-<generation>.duckdb`` (one view per dataset over the committed
  files listed explicitly, deduplicated; copies of the state tables), closes it, and
  :func:`swap_in` hard-links it over ``webex.duckdb`` with one ``rename``.  A reader that had the
  old file open keeps reading its snapshot (the old inode); the next one opens the new file.  The
  exporter never opens ``webex.duckdb`` itself, so it never holds a lock a reader could hit.

The exporter's own readers (``query``, ``status``, ``report``, the dashboard: :func:`~exporter.store.catalog_readers.open_reader`)
do not open ``webex.duckdb`` at all.  DuckDB locks per file, and a tool that opens
``webex.duckdb`` read-write (the DuckDB CLI's default) holds an exclusive lock on it until it
closes or the next publish swaps a new file in.  So each generation also gets a private copy,
``webex-<generation>.readonly.duckdb`` (another inode: a lock on ``webex.duckdb`` is not a lock on
it), named by the pointer file ``.webex-exporter/current-catalog`` (replaced atomically, never
locked).  Should even that copy be locked (someone opened it read-write), :func:`~exporter.store.catalog_readers.open_reader`
reads a private temporary copy of it instead.  Opening, the pointer file and the lock probes live
in :mod:`exporter.store.catalog_readers`.

Old generations are kept while a reader holds them open (DuckDB takes a POSIX lock on the file it
opens; :func:`~exporter.store.catalog_readers.in_use` probes it), so files that compaction
retired are deleted only once no open catalog can still name them.

All DuckDB exceptions are translated into :class:`~exporter.errors.WarehouseError` here.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import WarehouseError
from ..model.dataset_spec import SOURCE_COLUMN, Dataset
from ..model.datasets import ALL_DATASETS
from ..records.identity import OCCURRENCE_COLUMN, VERIFIED_COLUMN
from .lake import COMMIT_COLUMN, LANDED_COLUMN, PRELIMINARY_COLUMN, Lake, fsync_dir
from .state_db import StateStore, duckdb_errors, fsync_file, quote_ident, quote_str, ts

__all__ = [
    "CATALOG_TABLES",
    "DUCKDB_TYPES",
    "build_catalog",
    "dataset_view_sql",
    "declared_columns",
    "swap_in",
]

#: Registry column type -> DuckDB type of the view column.
DUCKDB_TYPES = {
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "str": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
    "json": "VARCHAR",
}
_LINEAGE_TYPES = (
    ("site", "VARCHAR"),
    (SOURCE_COLUMN, "VARCHAR"),
    ("extra", "VARCHAR"),
    (PRELIMINARY_COLUMN, "BOOLEAN"),
    (OCCURRENCE_COLUMN, "BIGINT"),
    (VERIFIED_COLUMN, "BOOLEAN"),
    (COMMIT_COLUMN, "BIGINT"),
    (LANDED_COLUMN, "TIMESTAMPTZ"),
)

#: State tables copied into every published catalog.
CATALOG_TABLES = ("sync_state", "failed_windows", "unverified_windows", "runs", "run_log", "commits", "damaged_files")


def dataset_view_sql(
    dataset: Dataset, files: Sequence[tuple[str, Mapping[str, str]]], *, extras: Sequence[str] | None = None
) -> str:
    """The ``SELECT`` behind one dataset's view: typed columns, newest version per key.

    ``files`` are the committed files as ``(uri, {column: type})`` (none: an empty, typed
    result).  Files are read in groups of identical schema, so each group binds from one footer
    (``union_by_name`` would read every footer on every query); the groups are united with the
    same column list.  A declared column a file lacks (a field added to the registry later) reads
    as a typed NULL; columns beyond the registry (a promoted extra, a retired field) are kept at
    the end so no landed value is hidden.
    """
    declared = declared_columns(dataset)
    if not files:
        columns = ", ".join(f"CAST(NULL AS {t}) AS {quote_ident(n)}" for n, t in declared)
        return f"SELECT {columns} WHERE false"
    groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for uri, schema in files:
        groups.setdefault(tuple(schema.items()), []).append(uri)
    names = {n for n, _ in declared}
    if extras is None:
        extras = sorted({n for shape in groups for n, _ in shape} - names)
    branches = []
    for shape, uris in groups.items():
        have = {n for n, _ in shape}
        parts = [
            f"CAST({quote_ident(n)} AS {t}) AS {quote_ident(n)}"
            if n in have
            # files landed before the REST source existed, and XML files, carry no source column
            else ("'xml'" if n == SOURCE_COLUMN else f"CAST(NULL AS {t})") + f" AS {quote_ident(n)}"
            for n, t in declared
        ]
        parts += [quote_ident(n) if n in have else f"NULL AS {quote_ident(n)}" for n in extras]
        listed = ", ".join(quote_str(u) for u in uris)
        # hive_partitioning off: every column is in the file itself (site too), and DuckDB's hive
        # type guessing could turn a site named "2024" into a number.
        branches.append(f"SELECT {', '.join(parts)}\nFROM read_parquet([{listed}], hive_partitioning = false)")
    # One row per identity (natural key + occurrence; files landed before occurrences existed: 1).
    key = ", ".join([quote_ident(k) for k in ("site", *dataset.identity_columns)]
                    + [f"coalesce({quote_ident(OCCURRENCE_COLUMN)}, 1)"])
    return (
        "SELECT * FROM (\n" + "\nUNION ALL\n".join(branches) + "\n)\n"
        f"QUALIFY row_number() OVER (PARTITION BY {key} "
        f"ORDER BY coalesce({quote_ident(PRELIMINARY_COLUMN)}, false) ASC, {quote_ident(COMMIT_COLUMN)} DESC) = 1"
    )


def _duckdb_type_of(schemas: Sequence[Mapping[str, str]], column: str) -> str:
    """The DuckDB type of an undeclared column as the view SQL passes it through (the type of
    the first file that has it: extras are kept as they were landed)."""
    arrow = {"int64": "BIGINT", "double": "DOUBLE", "bool": "BOOLEAN", "string": "VARCHAR",
             "timestamp[us, tz=UTC]": "TIMESTAMP WITH TIME ZONE"}
    for schema in schemas:
        found = schema.get(column)
        if found:
            return arrow.get(found, "VARCHAR")
    return "VARCHAR"


def declared_columns(dataset: Dataset) -> list[tuple[str, str]]:
    """``(name, DuckDB type)`` of every column of the dataset's view and table, in order: the
    XML schema's columns, the REST-only ones, then the lineage columns."""
    return [(c.name, DUCKDB_TYPES[c.type]) for c in dataset.all_columns] + list(_LINEAGE_TYPES)


def _unreadable_view_sql(dataset: Dataset, reason: str) -> str:
    """A view with the right typed columns that fails with ``reason`` when queried (an S3 lake
    the exporter could not bind from here): better an error that says why than empty results."""
    declared = declared_columns(dataset)
    columns = ", ".join(f"CAST(NULL AS {t}) AS {quote_ident(n)}" for n, t in declared)
    return f"SELECT {columns} FROM range(1) WHERE error({quote_str(reason)})"


def build_catalog(
    store: StateStore,
    target: Path,
    lake: Lake,
    *,
    generation: int,
    max_commit: int,
    published_at: datetime,
    lake_readable: bool,
    datasets: Sequence[Dataset] = ALL_DATASETS,
    previous: Path | None = None,
) -> int:
    """Write a complete reader catalog to ``target`` (a new file) and close it; returns the
    number of committed files behind it.  ``lake_readable`` says whether this DuckDB can read the
    lake (always for local lakes; for S3 through a registered filesystem or httpfs).

    A local lake gets one **table** per entry of ``datasets``, filled from the published month
    files (:mod:`exporter.store.published`, rewritten here where their lake files changed), starting
    from a copy of ``previous`` (the last generation) so only changed months are replaced: the
    file holds its data and works wherever it is copied.  An S3 lake gets views over the files'
    ``s3://`` URIs (valid from anywhere)."""
    from . import published

    if target.exists():
        target.unlink()  # a leftover from a publish that crashed before it was recorded
    wal = target.with_name(target.name + ".wal")
    if wal.exists():
        wal.unlink()
    materialize = lake.is_local
    if materialize and previous is not None and previous.exists():
        shutil.copyfile(previous, target)
    manifest = store.manifest()
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for row in manifest:
        by_dataset.setdefault(row["dataset"], []).append(row)
    con = store.con
    with duckdb_errors(f"building catalog {target}"):
        # Storage version 1.0: BI tools embedding an older DuckDB can still open the file.
        con.execute(f"ATTACH {quote_str(str(target))} AS webex_publish (STORAGE_VERSION 'v1.0.0')")
        try:
            for name in (*CATALOG_TABLES, "manifest", "catalog_info"):
                con.execute(f"DROP TABLE IF EXISTS webex_publish.main.{name}")
            for name in CATALOG_TABLES:
                con.execute(f"CREATE TABLE webex_publish.main.{name} AS SELECT * FROM main.{name}")
            con.execute(
                "CREATE TABLE webex_publish.main.manifest AS "
                "SELECT ? || '/' || path AS uri, * EXCLUDE (staged_as) FROM main.manifest ORDER BY dataset, path",
                [lake.root_uri],
            )
            con.execute(
                "CREATE TABLE webex_publish.main.catalog_info AS SELECT ? AS generation, "
                "CAST(? AS TIMESTAMPTZ) AS published_at, ? AS lake_root, ? AS max_commit, ? AS files, "
                "? AS lake_readable",
                [generation, ts(published_at), lake.root_uri, max_commit, len(manifest), lake_readable],
            )
            if materialize:
                con.execute(f"CREATE TABLE IF NOT EXISTS webex_publish.main.{published.FINGERPRINT_TABLE} "
                            "(dataset VARCHAR, month VARCHAR, fingerprint VARCHAR)")
                root = Path(lake.root_uri)
                for dataset in datasets:
                    rows = by_dataset.get(dataset.name, [])
                    declared = declared_columns(dataset)
                    names = {n for n, _ in declared}
                    schemas = [json.loads(r["columns"]) for r in rows]  # each file's schema, parsed once
                    extras = sorted({n for schema in schemas for n in schema} - names)
                    months = published.plan_months(rows, schemas, lake.uri, extras, declared)
                    written = dict(con.execute("SELECT month, fingerprint FROM main.published_months "
                                               "WHERE dataset = ?", [dataset.name]).fetchall())
                    now_written, _ = published.write_months(
                        con, root, dataset, months, written,
                        functools.partial(dataset_view_sql, dataset, extras=extras),
                    )
                    con.execute("DELETE FROM main.published_months WHERE dataset = ?", [dataset.name])
                    if now_written:
                        con.executemany("INSERT INTO main.published_months VALUES (?, ?, ?)",
                                        [[dataset.name, m, f] for m, f in now_written.items()])
                    columns = declared + [(n, _duckdb_type_of(schemas, n)) for n in extras]
                    published.refresh_tables(con, "webex_publish", root, dataset, months, columns)
            for dataset in () if materialize else datasets:
                rows = by_dataset.get(dataset.name, [])
                if rows and not lake_readable:
                    sql = _unreadable_view_sql(
                        dataset,
                        f"{dataset.name}: the lake is on S3 ({lake.root_uri}) and the exporter could not read it "
                        "through DuckDB when it built this catalog (no httpfs extension, no fsspec); read the "
                        "files listed in the manifest table (column uri) with pyarrow, see docs/reading-the-lake.md",
                    )
                else:
                    sql = dataset_view_sql(dataset, [(lake.uri(r["path"]), json.loads(r["columns"])) for r in rows])
                con.execute(f"CREATE VIEW webex_publish.main.{quote_ident(dataset.name)} AS {sql}")
            con.execute("CHECKPOINT webex_publish")
        finally:
            con.execute("DETACH webex_publish")
    if wal.exists():
        raise WarehouseError(f"catalog {target} left a WAL behind after closing; not publishing it")
    fsync_file(target)
    return len(manifest)


def swap_in(generation_file: Path, catalog: Path) -> None:
    """Make ``catalog`` the same file as ``generation_file`` in one atomic rename.

    A hard link keeps the generation's own name alive, so the exporter can later tell whether a
    reader still has it open (:func:`~exporter.store.catalog_readers.in_use`).  Where hard links are not possible, a copy is
    renamed into place instead (readers are still safe; retired files then wait for the grace
    period alone).
    """
    temp = catalog.with_name(f".{catalog.name}.{os.getpid()}.tmp")
    # A WAL beside the catalog can only come from someone who opened it read-write and wrote
    # (then crashed): it belongs to the file being replaced, and DuckDB refuses to open the new
    # file next to it ("WAL does not match database file").  Those writes die with the old file.
    stale_wal = catalog.with_name(catalog.name + ".wal")
    try:
        if stale_wal.exists():
            stale_wal.unlink()
        if temp.exists():
            temp.unlink()
        try:
            os.link(generation_file, temp)
        except OSError:
            import shutil

            shutil.copyfile(generation_file, temp)
            fsync_file(temp)
        os.replace(temp, catalog)
    except OSError as exc:
        raise WarehouseError(f"replacing catalog {catalog}: {exc}") from exc
    fsync_dir(catalog.parent)
