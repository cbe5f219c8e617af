"""Rebuilding a lost or damaged state DB (``webex-exporter state rebuild``): from the newest
backup (:mod:`exporter.store.state_backups`) plus the lake's commit records made after it
(:mod:`exporter.store.commit_records`); :class:`RebuildResult` says what it did.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..config import ExportSettings, WarehouseSettings
from ..errors import WarehouseError
from ..model.dataset_spec import Dataset
from ..model.datasets import DATASETS
from ..model.windows import Window, plan_windows
from ..obs.logs import event
from .commit_records import read_commit_records
from .lake import STAGING_DIR, UNKNOWN_DATE, Lake, fsync_dir, storage_errors
from .process_lock import ProcessLock
from .state_backups import backups
from .state_db import StateStore, quote_ident, quote_str, ts
from .state_schema import applied_version, backfill_restored
from .window_ledger import (
    clear_failures,
    merge_spans,
    record_failure,
    record_unverified,
    retention_horizon,
    retire_verified,
)

__all__ = ["RebuildResult", "rebuild_state"]

_PART_COMMIT = re.compile(r"part-(\d+)-[0-9a-f]+\.parquet$")

#: State tables a rebuild takes over from a backup (generations and verified_files start afresh).
_RESTORED_TABLES = ("commits", "manifest", "retired_files", "sync_state", "failed_windows", "unverified_windows",
                    "runs", "run_log", "damaged_files")


@dataclass(frozen=True, slots=True)
class RebuildResult:
    """What :func:`rebuild_state` did."""

    state_path: Path
    backup: Path | None  # the backup it started from (None: the lake's commit records alone)
    backup_commit: int  # the newest commit that backup knew (0 without one)
    records: int  # commit records replayed on top of it
    adopted_files: int  # Parquet files in the lake no record or backup named, taken in as they are
    missing_files: int  # files the manifest names that are not in the lake (the next publish records them)
    gaps: int  # windows within the retention no commit covers: listed again by the next run
    max_commit: int
    moved_aside: tuple[Path, ...]  # the replaced state DB's files, kept beside the new one

    def summary(self) -> str:
        """A few lines for the ``state rebuild`` command."""
        source = f"backup {self.backup} (commits up to {self.backup_commit})" if self.backup else "no backup"
        lines = [
            f"rebuilt {self.state_path} from {source} and {self.records} commit record(s) in the lake",
            f"newest commit {self.max_commit}; {self.adopted_files} unrecorded file(s) adopted; "
            f"{self.missing_files} named file(s) missing (recorded as damaged and fetched again by the next run); "
            f"{self.gaps} uncovered window(s) within the retention listed for the next run",
        ]
        lines += [f"kept the replaced state DB as {p}" for p in self.moved_aside]
        lines.append("next: `webex-exporter run` (it publishes a fresh catalog and fetches what is missing)")
        return "\n".join(lines)


def rebuild_state(
    settings: WarehouseSettings,
    *,
    export: ExportSettings | None = None,
    use_backups: bool = True,
    force: bool = False,
    clock: Callable[[], datetime] | None = None,
    datasets: Sequence[Dataset] | None = None,
) -> RebuildResult:
    """Rebuild the private state DB after it was lost or damaged, from what survives elsewhere.

    1. The newest readable backup in ``.webex-exporter/backups/`` (one is written after every
       finished run; ``use_backups=False`` ignores them) gives commits, manifest, cursors, failed
       and unverified windows and the run history up to its time.
    2. The lake's commit records (``<root>/_commits/``, written by every commit before it counted)
       newer than that backup are replayed in order through the same rules as the commits
       themselves: files, retired files, cursor, failed and unverified windows.
    3. Parquet files in the lake that neither names (written by an exporter older than the
       records) are adopted as they are; files the manifest names that are gone are left for the
       next publish, which records them as damaged and lists their windows again.
    4. Every window within Webex's retention, before a cursor, that no commit covers becomes a
       failed window (a window that failed after the backup was taken is one of them), so the
       next run fetches it; everything else keeps its cursor: nothing is fetched twice for nothing.

    The old state DB (if any) is kept beside the new one as ``state.duckdb.broken-<time>``.  A
    state DB that still opens and holds commits is only replaced with ``force``.  Takes the
    warehouse lock: no exporter may run meanwhile.
    """
    export = export or ExportSettings()
    now = (clock or (lambda: datetime.now(timezone.utc)))().astimezone(timezone.utc)
    registry = list(datasets or DATASETS)
    catalog_path = Path(settings.catalog).expanduser().resolve()
    home = catalog_path.parent / ".webex-exporter"
    state_path = home / "state.duckdb"
    with storage_errors(f"creating {home}"):
        home.mkdir(parents=True, exist_ok=True)
    lock = ProcessLock(home / "lock")
    lock.acquire(f"warehouse {settings.root} (catalog {catalog_path})")
    try:
        if state_path.exists() and not force:
            held = _state_commits(state_path)
            if held:
                raise WarehouseError(
                    f"the state DB {state_path} opens and holds {held} commits: nothing to rebuild; "
                    "`webex-exporter state rebuild --force` replaces it anyway (the old file is kept beside it)"
                )
        lake = Lake(settings.root, s3_endpoint_url=settings.s3_endpoint_url, s3_region=settings.s3_region)
        temp = home / "state.rebuild.duckdb"
        for leftover in (temp, temp.with_name(temp.name + ".wal")):
            leftover.unlink(missing_ok=True)
        store = StateStore(temp)
        try:
            backup, backup_commit = _restore_backup(store, home / "backups", lake) if use_backups else (None, 0)
            records = read_commit_records(lake)
            replayed = sum(1 for cid in sorted(records) if cid > backup_commit and _replay(store, lake, records[cid]))
            adopted = _adopt_unrecorded(store, lake, records, registry, now)
            missing = sum(
                1 for r in store.rows("SELECT path, staged_as FROM manifest")
                if not lake.exists(r["path"]) and not (r["staged_as"] and lake.exists(r["staged_as"]))
            )
            seen = [*records, *(int(m.group(1)) for d in registry for f in lake.list_files(d.name)
                                if (m := _PART_COMMIT.search(f)))]
            if seen and max(seen) > store.max_commit():
                # Every new commit must number above every _commit already in the lake ("newest wins").
                with store.transaction("recording the rebuild") as con:
                    store.insert_commit(con, commit_id=max(seen), kind="rebuild", site="", dataset="", window=None,
                                        run_id=None, committed_at=now, rows=0, files=0)
            gaps = _list_gaps(store, export, now)
            store.execute("UPDATE sync_state SET finished_commit = ?", [store.max_commit()])
            _adopt_generations(store, home / "catalogs", now)
            for key, value in (("lake_root", lake.root_uri), ("rebuilt_at", now.isoformat()),
                               ("rebuilt_from", str(backup) if backup else "commit records")):
                store.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])
            max_commit = store.max_commit()
        finally:
            store.close()
        moved = []
        suffix = f"{'replaced' if force else 'broken'}-{now:%Y%m%dT%H%M%S}"
        with storage_errors(f"replacing {state_path}"):
            for old in (state_path, state_path.with_name(state_path.name + ".wal")):
                if old.exists():
                    aside = old.with_name(f"{old.name}.{suffix}")
                    os.replace(old, aside)
                    moved.append(aside)
            os.replace(temp, state_path)
        fsync_dir(home)
        event("rebuilt the state DB", level=logging.WARNING, state_db=str(state_path),
              backup=str(backup) if backup else None, records_replayed=replayed)
        return RebuildResult(state_path, backup, backup_commit, replayed, adopted, missing, gaps, max_commit,
                             tuple(moved))
    finally:
        lock.release()


def _state_commits(path: Path) -> int | None:
    """How many commits the state DB at ``path`` holds; None when it cannot be read."""
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return None
    try:
        con.execute("SELECT count(*) FROM manifest").fetchall()
        ((count,),) = con.execute("SELECT count(*) FROM commits").fetchall()
        return int(count)
    except duckdb.Error:
        return None
    finally:
        con.close()


def _restore_backup(store: StateStore, directory: Path, lake: Lake) -> tuple[Path | None, int]:
    """Copy the newest readable backup of this lake's state into ``store``; returns it and the
    newest commit it knew (``(None, 0)`` when there is none)."""
    database = store.value("SELECT current_database()")
    for path in backups(directory):
        try:
            store.execute(f"ATTACH {quote_str(str(path))} AS webex_restore (READ_ONLY)",
                          action=f"opening backup {path}")
        except WarehouseError as exc:
            event("skipping an unreadable state backup", level=logging.WARNING, path=str(path), error=str(exc))
            continue
        try:
            root = store.value("SELECT value FROM webex_restore.main.meta WHERE key = 'lake_root'")
            if root and root != lake.root_uri:
                event("skipping a state backup of another lake", level=logging.WARNING, path=str(path), lake=root)
                continue
            with store.transaction(f"restoring backup {path}") as con:
                for table in _RESTORED_TABLES:
                    have = [r[0] for r in con.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_catalog = ? "
                        "AND table_schema = 'main' AND table_name = ? ORDER BY ordinal_position", [database, table],
                    ).fetchall()]
                    theirs = {r[0] for r in con.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'webex_restore' "
                        "AND table_schema = 'main' AND table_name = ?", [table],
                    ).fetchall()}
                    columns = ", ".join(quote_ident(c) for c in have if c in theirs)
                    if columns:
                        con.execute(f"INSERT INTO main.{table} ({columns}) "
                                    f"SELECT {columns} FROM webex_restore.main.{table}")
                # A backup from before a migration lacks what it derived (e.g. rest_switched_at).
                backfill_restored(con, applied_version(con, "webex_restore"))
            return path, store.max_commit()
        except WarehouseError as exc:
            event("skipping an unreadable state backup", level=logging.WARNING, path=str(path), error=str(exc))
        finally:
            store.execute("DETACH webex_restore")
    return None, 0


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(timezone.utc) if value else None


def _replay(store: StateStore, lake: Lake, record: dict[str, Any]) -> bool:
    """Apply one commit record to a state DB being rebuilt, by the rules the commit followed."""
    commit_id = int(record["commit_id"])
    if store.value("SELECT count(*) FROM commits WHERE commit_id = ?", [commit_id]):
        return False
    site, dataset, kind = record["site"], record["dataset"], record["kind"]
    at = _when(record["committed_at"]) or datetime.now(timezone.utc)
    bounds = record.get("window")
    start, end = (_when(bounds[0]), _when(bounds[1])) if bounds else (None, None)
    window = Window(start, end) if start is not None and end is not None else None
    verified = record.get("verified", True) is not False
    with store.transaction(f"replaying commit record {commit_id}") as con:
        store.insert_commit(
            con, commit_id=commit_id, kind=kind, site=site, dataset=dataset,
            window=(window.start, window.end) if window else None, run_id=record.get("run_id"), committed_at=at,
            rows=int(record.get("rows") or 0), files=len(record.get("files") or ()),
            cursor_to=_when(record.get("cursor_to")), verified=verified, sources=record.get("sources"),
        )
        for f in record.get("files") or ():
            staged = None
            if not lake.exists(f["path"]):  # committed, its move never happened: finish it at the next start
                candidate = f"{STAGING_DIR}/{f['path'].rsplit('/', 1)[-1]}"
                staged = candidate if lake.exists(candidate) else None
            con.execute(
                "INSERT OR REPLACE INTO manifest VALUES (?, ?, ?, ?, ?, ?, ?, CAST(? AS TIMESTAMPTZ), "
                "CAST(? AS TIMESTAMPTZ), ?, ?)",
                [f["path"], dataset, site, f["partition"], commit_id, f["rows"], f["bytes"], f.get("min_start"),
                 f.get("max_start"), json.dumps(f["columns"]), staged],
            )
        for path in record.get("retires") or ():
            con.execute("DELETE FROM manifest WHERE path = ?", [path])
            if lake.exists(path):  # not deleted yet: the reaper will
                con.execute("INSERT INTO retired_files VALUES (?, ?, ?, ?, CAST(? AS TIMESTAMPTZ)) "
                            "ON CONFLICT DO NOTHING", [path, dataset, site, commit_id, ts(at)])
        if kind == "window" and window is not None:
            store.advance_cursor(con, site=site, dataset=dataset, cursor_to=_when(record.get("cursor_to")),
                                 commit_id=commit_id, at=at)
            clear_failures(con, site, dataset, window)
            if verified:
                retire_verified(con, site, dataset, window, commit_id, at)
            else:
                record_unverified(con, site, dataset, window, commit_id, record.get("problem"),
                                   record.get("run_id"), at)
    return True


def _adopt_unrecorded(
    store: StateStore, lake: Lake, records: dict[int, dict[str, Any]], registry: Sequence[Dataset], now: datetime
) -> int:
    """Take Parquet files no record and no backup names into the manifest, from their footers."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    known = {r["path"] for r in store.rows("SELECT path FROM manifest UNION ALL SELECT path FROM retired_files")}
    for record in records.values():
        known.update(f["path"] for f in record.get("files") or ())
        known.update(record.get("retires") or ())
    adopted = 0
    for ds in registry:
        for rel in lake.list_files(ds.name):
            if not rel.endswith(".parquet") or rel in known:
                continue
            try:
                with lake.fs.open_input_file(lake.path(rel)) as handle:
                    parquet = pq.ParquetFile(handle)
                    meta = parquet.schema_arrow.metadata or {}
                    schema = parquet.schema_arrow
                    rows = parquet.metadata.num_rows
                    has_start = ds.start_column in schema.names
                    start = parquet.read(columns=[ds.start_column]).column(0) if has_start else None
            except (OSError, pa.ArrowException) as exc:
                event("not adopting an unreadable lake file", level=logging.WARNING, file=lake.uri(rel),
                      error=str(exc))
                continue
            parts = dict(seg.split("=", 1) for seg in rel.split("/") if "=" in seg)
            site = (meta.get(b"webex.site") or parts.get("site", "").encode()).decode()
            match = _PART_COMMIT.search(rel)
            commit_id = int((meta.get(b"webex.commit") or (match.group(1) if match else "0").encode()).decode())
            bounds = pc.min_max(start) if start is not None and len(start) else None
            size = (lake.stat(rel) or (0, 0))[0]
            with store.transaction(f"adopting {rel}") as con:
                con.execute(
                    "INSERT OR REPLACE INTO manifest VALUES (?, ?, ?, ?, ?, ?, ?, CAST(? AS TIMESTAMPTZ), "
                    "CAST(? AS TIMESTAMPTZ), ?, NULL)",
                    [rel, ds.name, site, parts.get("date", UNKNOWN_DATE), commit_id, rows, size,
                     ts(bounds["min"].as_py()) if bounds and bounds["min"].is_valid else None,
                     ts(bounds["max"].as_py()) if bounds and bounds["max"].is_valid else None,
                     json.dumps({f.name: str(f.type) for f in schema})],
                )
                if not con.execute("SELECT count(*) FROM commits WHERE commit_id = ?", [commit_id]).fetchall()[0][0]:
                    store.insert_commit(con, commit_id=commit_id, kind="adopted", site=site, dataset=ds.name,
                                        window=None, run_id=None, committed_at=now, rows=rows, files=1)
            event("adopted a lake file no commit record names", level=logging.WARNING, file=lake.uri(rel))
            adopted += 1
    return adopted


def _list_gaps(store: StateStore, export: ExportSettings, now: datetime) -> int:
    """Record as failed windows the parts of ``[retention horizon, cursor)`` of every (site,
    dataset) that no window commit and no failed window covers; returns how many."""
    horizon = retention_horizon(now, export.retention_days)
    count = 0
    for pair in store.rows('SELECT site, dataset, "cursor" FROM sync_state WHERE "cursor" IS NOT NULL'):
        site, dataset, cursor = pair["site"], pair["dataset"], pair["cursor"]
        if cursor <= horizon:
            continue
        spans = store.rows(
            "SELECT window_start AS a, window_end AS b FROM commits WHERE site = ? AND dataset = ? AND kind = 'window' "
            "AND window_start IS NOT NULL UNION ALL SELECT window_start, window_end FROM failed_windows "
            "WHERE site = ? AND dataset = ?",
            [site, dataset, site, dataset],
        )
        reached, gaps = horizon, []
        for window in merge_spans((r["a"], r["b"]) for r in spans):
            if window.end <= reached:
                continue
            if window.start > reached:
                gaps.append((reached, min(window.start, cursor)))
            reached = max(reached, window.end)
            if reached >= cursor:
                break
        if reached < cursor:
            gaps.append((reached, cursor))
        with store.transaction(f"listing uncovered windows of {site}/{dataset}") as con:
            for start, end in gaps:
                for piece in plan_windows(start, end, export.window_hours) if start < end else ():
                    record_failure(con, site, dataset, piece,
                                    "no commit covers it (found when the state DB was rebuilt)", None, now)
                    count += 1
    return count


def _adopt_generations(store: StateStore, directory: Path, now: datetime) -> None:
    """Record catalog generations still on disk as superseded, with ``max_commit`` 0: until a
    reap finds them unused, no retired file is deleted that an open one could name; and new
    generations number after them."""
    if not directory.is_dir():
        return
    found = re.compile(r"^webex-(\d{8})\.duckdb$")
    with store.transaction("recording old catalog generations") as con:
        for path in sorted(directory.iterdir()):
            match = found.match(path.name)
            if not match:
                continue
            reader_copy = path.with_name(path.name.replace(".duckdb", ".readonly.duckdb"))
            con.execute(
                "INSERT OR IGNORE INTO generations (generation, file, published_at, max_commit, superseded_at, "
                "removed, reader_file) VALUES (?, ?, CAST(? AS TIMESTAMPTZ), 0, CAST(? AS TIMESTAMPTZ), false, ?)",
                [int(match.group(1)), str(path), ts(now), ts(now), str(reader_copy) if reader_copy.exists() else None],
            )
