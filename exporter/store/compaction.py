"""Compaction and retirement: many small files of a partition rewritten into one, and the files
and catalog generations nothing can name any more deleted.

:meth:`exporter.store.warehouse.Warehouse.compact` runs :func:`compact_partitions` under its
lock; every compaction and every publish ends with :func:`reap`.  A compaction is a commit like
a window's (its own commit record, the replaced files moved to ``retired_files``), so a crash at
any point leaves either the old files or the new one in the tables, never both or neither.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from ..errors import WarehouseError
from ..model.dataset_spec import Dataset
from ..obs.logs import event
from ..records.identity import identity_key
from .catalog_readers import in_use
from .commit_records import record_path, write_commit_record
from .lake import Lake
from .lake_shaping import dedupe_latest
from .state_db import StateStore, ts

__all__ = ["CompactResult", "compact_partitions", "reap"]


@dataclass(frozen=True, slots=True)
class CompactResult:
    """What one :meth:`~exporter.store.warehouse.Warehouse.compact` did."""

    partitions: int
    files_before: int
    files_after: int
    rows_before: int
    rows_after: int
    seconds: float


def compact_partitions(
    store: StateStore,
    lake: Lake,
    *,
    dataset_named: Callable[[str], Dataset],
    threshold: int,
    site: str | None,
    dataset: str | None,
    clock: Callable[[], datetime],
    hook: Callable[[str], None],
    on_commit: Callable[[], None],
) -> CompactResult:
    """Rewrite each partition holding ``threshold`` or more committed files into one file with
    the newest version per key, in one commit per partition (``on_commit`` after each).  The
    caller reaps afterwards (:func:`reap`)."""
    started = time.perf_counter()
    groups = store.rows(
        """
        SELECT dataset, site, partition, list(path ORDER BY commit_id, path) AS paths, sum(rows) AS rows,
               list(DISTINCT commit_id) AS commit_ids
        FROM manifest
        WHERE (? IS NULL OR site = ?) AND (? IS NULL OR dataset = ?)
          -- an unverified listing's files stay apart: a verified one retires them whole
          AND commit_id NOT IN (SELECT commit_id FROM unverified_windows)
        GROUP BY dataset, site, partition
        HAVING count(*) >= ? AND count(staged_as) = 0
        ORDER BY dataset, site, partition
        """,
        [site, site, dataset, dataset, threshold],
    )
    before = after = rows_before = rows_after = 0
    for group in groups:
        ds = dataset_named(group["dataset"])
        paths: list[str] = list(group["paths"])
        table = lake.read(paths)
        table = dedupe_latest(table, identity_key(ds, table.column_names))
        commit_id = store.max_commit() + 1
        now = clock()
        new = lake.write_staged(
            table.sort_by([(ds.start_column, "ascending")]),
            dataset=ds, site=group["site"], partition=group["partition"], commit_id=commit_id,
        )
        hook("compact-staged")
        try:
            with store.transaction(
                f"compacting {group['dataset']}/{group['site']}/{group['partition']}"
            ) as con:
                store.insert_commit(
                    con, commit_id=commit_id, kind="compaction", site=group["site"], dataset=group["dataset"],
                    window=None, run_id=None, committed_at=now, rows=new.rows, files=1,
                    sources=list(group["commit_ids"]),
                )
                con.execute("DELETE FROM manifest WHERE list_contains(?, path)", [paths])
                store.add_files(
                    con, commit_id=commit_id, dataset=group["dataset"], site=group["site"], files=[new]
                )
                for path in paths:
                    con.execute(
                        "INSERT INTO retired_files VALUES (?, ?, ?, ?, CAST(? AS TIMESTAMPTZ))",
                        [path, group["dataset"], group["site"], commit_id, ts(now)],
                    )
                write_commit_record(lake, con, commit_id)
        except BaseException:
            lake.delete(new.staged)
            lake.delete(record_path(commit_id))
            raise
        on_commit()
        hook("compact-committed")
        lake.place(new.staged, new.final)
        store.mark_placed([new.final])
        hook("compact-placed")
        before += len(paths)
        after += 1
        rows_before += int(group["rows"])
        rows_after += new.rows
    return CompactResult(len(groups), before, after, rows_before, rows_after, time.perf_counter() - started)


def reap(
    store: StateStore,
    lake: Lake,
    *,
    now: datetime,
    retire_grace: timedelta,
    catalog_path: Path,
    hook: Callable[[str], None],
) -> None:
    """Drop superseded catalog generations no reader holds (and older than ``retire_grace``),
    then the retired files that no remaining generation can name."""
    generations = store.generations()
    for g in generations[:-1]:  # never the newest: it is the catalog
        path = Path(g["file"])
        reader_copy = Path(g["reader_file"]) if g.get("reader_file") else None
        superseded = g["superseded_at"]
        if superseded is None or now - superseded < retire_grace:
            continue
        if _same_file(path, catalog_path) or in_use(path) or (reader_copy and in_use(reader_copy)):
            continue
        try:
            path.unlink(missing_ok=True)
            if reader_copy is not None:
                reader_copy.unlink(missing_ok=True)
        except OSError as exc:
            event("cannot remove old catalog generation", level=logging.WARNING, path=str(path), error=str(exc))
            continue
        store.execute("UPDATE generations SET removed = true WHERE generation = ?", [g["generation"]])
    live = store.generations()
    floor = min((g["max_commit"] for g in live), default=None)
    retired = store.rows(
        "SELECT path FROM retired_files WHERE ? IS NULL OR retired_by <= ? ORDER BY path", [floor, floor]
    )
    deleted = []
    for r in retired:
        try:
            lake.delete(r["path"])
        except WarehouseError as exc:  # housekeeping: try again next time
            event("cannot delete retired file yet", level=logging.WARNING, path=r["path"], error=str(exc))
            continue
        deleted.append(r["path"])
    if deleted:
        store.execute("DELETE FROM retired_files WHERE list_contains(?, path)", [deleted])
        hook("compact-reaped")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
