"""The warehouse facade the pipeline uses: exactly-once landing, state, compaction, publishing.

A window lands in three steps, so a crash at any instant leaves the whole window or nothing:

1. its rows are written as Parquet files under unique names in ``<root>/_staging/`` (durably);
2. one state-DB transaction adds them to the manifest, records the commit, moves the cursor and
   clears the window from the failed list - from here on the window *is* committed;
3. the files are moved into their partitions and the manifest notes the move is done.

A crash before 2 leaves staging files no manifest names: they are deleted at the next start and
never counted.  A crash between 2 and 3 leaves moves pending in the manifest: the next start
finishes them.  Readers never see a file before 2 (staging is outside every dataset directory)
and the catalog lists only manifest files, so no query ever sees part of a window.

Re-landing a window (lookback, backfill, a rerun after a crash) adds a newer version of each
record; the catalog's views keep one row per (site, natural key): final beats preliminary, then
the highest ``_commit``.  Nothing is ever deleted because a re-fetch no longer returns it.

One process writes a warehouse at a time (``<catalog dir>/.webex-exporter/lock``); readers need
no lock and never block the exporter (see :mod:`exporter.store.catalog`).

Damage and loss (the facade delegates; the rules live in their own modules):

* Every commit also writes a small record to ``<root>/_commits/<commit>.json`` *before* its
  transaction commits, so the lake itself says what was committed; :func:`rebuild_state` rebuilds
  a lost or damaged state DB from the newest backup plus the records made after it - see
  :mod:`exporter.store.state_recovery`.
* Every publish checks each manifest file (exists, recorded size, readable footer); a damaged one
  is left out of the views, recorded in ``damaged_files``, set aside and its windows fetched
  again, and the run that finds it does not report success - see :mod:`exporter.store.lake_health`.
* The failed and unverified window lists all of these update: :mod:`exporter.store.window_ledger`.

Status rows and gap reporting live in :mod:`exporter.store.status`, the ``run_log``/``runs`` rows of
each run in :mod:`exporter.store.run_log`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from ..config import ExportSettings, WarehouseSettings
from ..errors import WarehouseError
from ..model.dataset_spec import Dataset
from ..model.datasets import ALL_DATASETS
from ..model.runs import RunReport
from ..model.windows import Window
from ..records.identity import VERIFIED_COLUMN, identity_key, with_occurrences
from . import lake_health, run_log, state_recovery
from . import state as state_rules
from .catalog import (
    build_catalog,
    held_for_writing,
    in_use,
    pointer_path,
    swap_in,
    write_pointer,
)
from .lake import (
    PRELIMINARY_COLUMN,
    STAGING_DIR,
    Lake,
    StagedFile,
    conform,
    dedupe_latest,
    split_partitions,
    storage_errors,
    with_lineage,
)
from .lake_health import MASS_MISSING_MIN, LakeHealth  # noqa: F401 - MASS_MISSING_MIN: re-exported
from .process_lock import ProcessLock as _ProcessLock
from .state import DatasetState
from .state_db import StateStore, duckdb_errors, quote_str, ts
from .state_recovery import (
    RECORDS_PER_SEGMENT,
    STATE_BACKUPS_KEPT,
    RebuildResult,
    drop_uncommitted_records,
    fold_commit_records,
    rebuild_state,
    record_path,
    write_commit_record,
)
from .status import StatusRow, dataset_state, rows_held, store_status
from .window_ledger import clear_failures, record_failure, record_unverified, retire_verified

__all__ = [
    "Warehouse",
    "CommitResult",
    "CompactResult",
    "PublishResult",
    "RebuildResult",
    "rebuild_state",
    "DEFAULT_RETIRE_GRACE_SECONDS",
    "STATE_BACKUPS_KEPT",
]

_log = logging.getLogger(__name__)

#: Site names as the configuration allows them: safe as a path segment on every filesystem.
_SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

#: How long a superseded catalog generation (and the files only it names) is kept at least, even
#: when no reader seems to hold it: covers a reader that resolved the path just before the swap.
DEFAULT_RETIRE_GRACE_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class CommitResult:
    """What one :meth:`Warehouse.commit_window` landed."""

    commit_id: int
    site: str
    dataset: str
    window: Window
    rows: int
    files: tuple[str, ...]
    cursor: datetime | None
    seconds: float


@dataclass(frozen=True, slots=True)
class CompactResult:
    """What one :meth:`Warehouse.compact` did."""

    partitions: int
    files_before: int
    files_after: int
    rows_before: int
    rows_after: int
    seconds: float


@dataclass(frozen=True, slots=True)
class PublishResult:
    """One :meth:`Warehouse.publish`: the catalog generation now at ``path``."""

    generation: int
    path: Path
    files: int
    max_commit: int
    seconds: float
    skipped: bool = False


class Warehouse:
    """The Parquet lake, its state and its reader catalog, for one exporter process.

    Use as a context manager; opening takes the process lock, finishes or discards whatever a
    crash left (pending moves, staging orphans, unfinished catalog generations) and publishes a
    fresh catalog, so every dataset's view exists from the first moment.

    ``auto_compact``: :meth:`finish_run` compacts partitions that reached
    ``settings.compact_min_files``.  ``retire_grace_seconds``: see
    :data:`DEFAULT_RETIRE_GRACE_SECONDS`.  ``clock``: the current time (tests).  ``datasets``: the
    registry to land and catalog (default: all of ``exporter.model.datasets.ALL_DATASETS``; an older or newer
    registry is how schema evolution is exercised).
    """

    def __init__(
        self,
        settings: WarehouseSettings,
        *,
        export: ExportSettings | None = None,
        auto_compact: bool = True,
        retire_grace_seconds: float = DEFAULT_RETIRE_GRACE_SECONDS,
        clock: Callable[[], datetime] | None = None,
        datasets: Sequence[Dataset] | None = None,
    ) -> None:
        self.settings = settings
        self.datasets: dict[str, Dataset] = {d.name: d for d in (datasets or ALL_DATASETS)}
        self.export = export or ExportSettings()
        self.auto_compact = auto_compact
        self.retire_grace = timedelta(seconds=retire_grace_seconds)
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self.catalog_path = Path(settings.catalog).expanduser().resolve()
        self.home = self.catalog_path.parent / ".webex-exporter"
        self.state_path = self.home / "state.duckdb"
        self.generations_dir = self.home / "catalogs"
        self.backups_dir = self.home / "backups"
        self._process_lock = _ProcessLock(self.home / "lock")
        self._mutex = threading.RLock()
        self._store: StateStore | None = None
        self._lake: Lake | None = None
        self._lake_readable: bool | None = None
        self._dirty = True
        #: The lake-file checks of this opening (it remembers the footers already read).
        self._health: LakeHealth | None = None
        #: Called with a stage name at each step of a commit, compaction and publish (crash tests).
        self._crash_hook: Callable[[str], None] | None = None

    # ------------------------------------------------------------------ opening and closing

    def __enter__(self) -> Warehouse:
        return self.open()

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        # Leaving on an error: close without publishing (the next open publishes anyway), so a
        # second failure cannot hide the first.
        self.close(publish=exc_type is None)

    def open(self) -> Warehouse:
        """Lock, open, recover from any crash, publish.  Idempotent."""
        with self._mutex:
            if self._store is not None:
                return self
            with storage_errors(f"creating {self.home}"):
                self.generations_dir.mkdir(parents=True, exist_ok=True)
                self.backups_dir.mkdir(parents=True, exist_ok=True)
            self._process_lock.acquire(f"warehouse {self.settings.root} (catalog {self.catalog_path})")
            fresh = False
            try:
                self._lake = Lake(
                    self.settings.root,
                    s3_endpoint_url=self.settings.s3_endpoint_url,
                    s3_region=self.settings.s3_region,
                    row_group_size=self.settings.row_group_size,
                )
                fresh = not self.state_path.exists()
                self._store = StateStore(self.state_path)
                self._check_lake_root()
                self._recover()
                self.publish(force=True)
            except BaseException:
                self._close_quietly()
                if fresh:  # nothing was committed to it: leave no empty state DB behind a refusal
                    self._remove_fresh_state()
                raise
            return self

    def _remove_fresh_state(self) -> None:
        """Remove the empty state DB a refused open just created (e.g. for a lake whose state DB
        is lost), so that the next attempt, and ``state rebuild``, see the loss as it is."""
        for path in (self.state_path, self.state_path.with_name(self.state_path.name + ".wal")):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass

    def close(self, *, publish: bool = True) -> None:
        """Publish what changed since the last publish (unless ``publish`` is false), close the
        state DB and release the lock.  Committed work is durable either way."""
        with self._mutex:
            if self._store is None:
                return
            try:
                if publish:
                    self.publish()
            finally:
                self._close_quietly()

    def _close_quietly(self) -> None:
        try:
            if self._store is not None:
                self._store.close()
        except WarehouseError:
            pass
        self._store = None
        self._health = None
        self._process_lock.release()

    @property
    def lake(self) -> Lake:
        """The Parquet lake (open warehouses only)."""
        if self._lake is None or self._store is None:
            raise WarehouseError("the warehouse is not open (use `with Warehouse(...) as w:`)")
        return self._lake

    @property
    def store(self) -> StateStore:
        """The private state DB (open warehouses only)."""
        if self._store is None:
            raise WarehouseError("the warehouse is not open (use `with Warehouse(...) as w:`)")
        return self._store

    def _now(self) -> datetime:
        return self._clock().astimezone(timezone.utc)

    def _dataset(self, name: str) -> Dataset:
        try:
            return self.datasets[name]
        except KeyError:
            raise WarehouseError(f"unknown dataset {name!r}; known: {', '.join(self.datasets)}") from None

    def _hook(self, stage: str) -> None:
        if self._crash_hook is not None:
            self._crash_hook(stage)

    def _check_lake_root(self) -> None:
        """Refuse a state DB that belongs to another lake, and a lake whose state DB is gone:
        either way the manifest and the files would disagree and history would vanish from the
        catalog (or be deleted as orphans)."""
        store, lake = self.store, self.lake
        recorded = store.value("SELECT value FROM meta WHERE key = 'lake_root'")
        files = store.rows("SELECT path FROM manifest ORDER BY commit_id DESC LIMIT 3")
        if recorded and recorded != lake.root_uri and files:
            if not all(lake.exists(r["path"]) for r in files):
                raise WarehouseError(
                    f"state DB {self.state_path} belongs to the lake at {recorded}, but warehouse.root is "
                    f"{lake.root_uri} and its files are not there"
                )
        if not files and not recorded:
            found = [p for name in self.datasets for p in lake.list_files(name) if p.endswith(".parquet")]
            if found:
                raise WarehouseError(
                    f"lake {lake.root_uri} already holds {len(found)} Parquet files but the state DB "
                    f"{self.state_path} is new: the manifest that says which files are committed is missing; "
                    "rebuild it with `webex-exporter state rebuild` (from its backups and the lake's commit "
                    "records), or move the lake aside, before exporting"
                )
        store.execute(
            "INSERT INTO meta VALUES ('lake_root', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [lake.root_uri],
        )

    def _recover(self) -> None:
        """Finish or discard what a crash left behind."""
        store, lake = self.store, self.lake
        store.execute("UPDATE run_log SET outcome = 'crashed' WHERE outcome = 'running' AND finished_at IS NULL")
        self._settle()
        pending = {staged for staged, _ in store.pending_moves()}
        for rel in lake.list_files(STAGING_DIR):
            if rel not in pending:
                lake.delete(rel)  # written, never committed: not part of any table
        recorded = {Path(f).name for g in store.generations() for f in (g["file"], g.get("reader_file")) if f}
        with storage_errors(f"cleaning {self.generations_dir}"):
            for leftover in self.generations_dir.iterdir():
                if leftover.name not in recorded:
                    leftover.unlink()  # a publish that crashed before it was recorded
            for temp in self.catalog_path.parent.glob(f".{self.catalog_path.name}.*.tmp"):
                temp.unlink()
            pointer = pointer_path(self.catalog_path)
            for temp in pointer.parent.glob(f".{pointer.name}.*.tmp"):
                temp.unlink()
            for temp in self.backups_dir.glob(".*.tmp*"):
                temp.unlink()
        drop_uncommitted_records(store, lake, self.state_path)

    def _settle(self) -> None:
        """Move committed files whose move did not happen (crash, S3 hiccup) into place.  A file
        that is in neither place stays pending: :meth:`verify_lake` records it as damaged."""
        moved = []
        for staged, final in self.store.pending_moves():
            if not self.lake.exists(staged) and not self.lake.exists(final):
                continue
            self.lake.place(staged, final)
            moved.append(final)
        self.store.mark_placed(moved)

    # ------------------------------------------------------------------ state

    def state(self, site: str, dataset: str) -> DatasetState:
        """Cursor, failed windows, last run and unfinished-run windows of one (site, dataset)."""
        with self._mutex:
            store = self.store
            horizon = self._now() - timedelta(days=self.export.retention_days)
            return dataset_state(
                site,
                dataset,
                store.sync_row(site, dataset),
                store.failures(site, dataset),
                store.unfinished_windows(site, dataset, horizon),
                self.export.lookback_for(dataset),
                store.unverified(site, dataset),
            )

    def states(self) -> list[DatasetState]:
        """:meth:`state` of every (site, dataset) the warehouse knows."""
        with self._mutex:
            return [self.state(site, dataset) for site, dataset in self.store.pairs()]

    # ------------------------------------------------------------------ landing

    def commit_window(
        self,
        site: str,
        dataset: str,
        window: Window,
        table: pa.Table | None,
        *,
        cursor_to: datetime | None = None,
        run_id: str | None = None,
        verified: bool = True,
        problem: str | None = None,
    ) -> CommitResult:
        """Land one fetched window atomically: its rows, its manifest entries, the cursor (moved
        to ``cursor_to`` if that is later; None leaves it) and the failed-window list together.

        ``table`` is in ``parse.arrow_schema(dataset)`` (None or empty: a window with no records,
        still committed), every row the listing returned: rows with equal natural keys are
        numbered (``_occurrence``), never merged.  ``verified=False`` lands a listing that could
        not be verified complete (``problem`` says why): its rows carry ``_verified = false``, the
        window is listed in ``unverified_windows`` and planned again by later runs, and the first
        verified commit covering it retires its files.  Returns when the commit is durable.
        """
        with self._mutex:
            started = time.perf_counter()
            store, lake = self.store, self.lake
            ds = self._dataset(dataset)
            _check_site(site)
            window = _window(window)
            now = self._now()
            commit_id = store.max_commit() + 1
            shaped = with_occurrences(conform(table if table is not None else pa.table({}), ds, site), ds,
                                      by=[PRELIMINARY_COLUMN])
            if not verified:
                shaped = shaped.set_column(shaped.schema.get_field_index(VERIFIED_COLUMN), VERIFIED_COLUMN,
                                           pa.repeat(pa.scalar(False), shaped.num_rows))
            shaped = dedupe_latest(with_lineage(shaped, commit_id, now), identity_key(ds, shaped.column_names))
            staged: list[StagedFile] = []
            try:
                for partition, rows in split_partitions(shaped, ds.start_column):
                    staged.append(
                        lake.write_staged(rows, dataset=ds, site=site, partition=partition, commit_id=commit_id)
                    )
                self._hook("staged")
                with store.transaction(f"committing {site}/{dataset} {window}") as con:
                    store.insert_commit(
                        con, commit_id=commit_id, kind="window", site=site, dataset=dataset,
                        window=(window.start, window.end), run_id=run_id, committed_at=now,
                        rows=shaped.num_rows, files=len(staged), cursor_to=cursor_to, verified=verified,
                    )
                    store.add_files(con, commit_id=commit_id, dataset=dataset, site=site, files=staged)
                    store.advance_cursor(
                        con, site=site, dataset=dataset, cursor_to=cursor_to, commit_id=commit_id, at=now
                    )
                    clear_failures(con, site, dataset, window)
                    con.execute("UPDATE sync_state SET unavailable = NULL, unavailable_since = NULL "
                                "WHERE site = ? AND dataset = ?", [site, dataset])
                    if verified:
                        retire_verified(con, site, dataset, window, commit_id, now)
                    else:
                        record_unverified(con, site, dataset, window, commit_id, problem, run_id, now)
                    # Last inside the transaction: the lake says what this commit did before it counts.
                    write_commit_record(lake, con, commit_id)
                    self._hook("recorded")
            except BaseException:
                for name in [f.staged for f in staged] + [record_path(commit_id)]:
                    try:
                        lake.delete(name)  # the record too, if the transaction failed after writing it
                    except WarehouseError:
                        pass  # an orphan in staging (or a record above the newest commit) goes at the next start
                raise
            self._dirty = True
            self._hook("committed")
            try:
                self._place(staged)
            except WarehouseError as exc:
                # The window is committed; only the move is pending.  The next publish (or start)
                # finishes it, and no catalog names these files before that.
                _log.warning("committed window %s/%s %s: moving its files is pending: %s", site, dataset, window, exc)
            self._hook("placed")
            cursor = (store.sync_row(site, dataset) or {}).get("cursor")
            return CommitResult(
                commit_id=commit_id,
                site=site,
                dataset=dataset,
                window=window,
                rows=shaped.num_rows,
                files=tuple(f.final for f in staged),
                cursor=cursor,
                seconds=time.perf_counter() - started,
            )

    def _place(self, staged: Sequence[StagedFile]) -> None:
        """Move committed files into place; a failure leaves the move pending (finished by the
        next publish or start) and raises - the commit itself stands."""
        for f in staged:
            self.lake.place(f.staged, f.final)
        self.store.mark_placed([f.final for f in staged])

    def fail_window(
        self,
        site: str,
        dataset: str,
        window: Window,
        error: str | BaseException,
        *,
        run_id: str | None = None,
        cursor_to: datetime | None = None,
    ) -> None:
        """Record that ``window`` could not be completed; it stays in ``state().failed_windows``
        until a commit covers it.  The cursor may still move past it (``cursor_to``): the failed
        list, not the cursor, guarantees it is retried."""
        with self._mutex:
            self._dataset(dataset)
            _check_site(site)
            window = _window(window)
            message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
            now = self._now()
            store = self.store
            with store.transaction(f"recording failed window {site}/{dataset} {window}") as con:
                record_failure(con, site, dataset, window, message[:2000], run_id, now)
                if cursor_to is not None:
                    store.advance_cursor(con, site=site, dataset=dataset, cursor_to=cursor_to, commit_id=None, at=now)
            self._dirty = True

    def mark_unavailable(self, site: str, dataset: str, message: str) -> None:
        """Record that the site does not serve ``dataset`` now (e.g. its operation is retired):
        ``status`` shows ``message`` until a later commit of the dataset lands."""
        with self._mutex:
            self._dataset(dataset)
            _check_site(site)
            now = self._now()
            with self.store.transaction(f"recording {site}/{dataset} as unavailable") as con:
                con.execute(
                    """
                    INSERT INTO sync_state (site, dataset, unavailable, unavailable_since)
                    VALUES (?, ?, ?, CAST(? AS TIMESTAMPTZ))
                    ON CONFLICT (site, dataset) DO UPDATE SET unavailable = excluded.unavailable,
                        unavailable_since = coalesce(sync_state.unavailable_since, excluded.unavailable_since)
                    """,
                    [site, dataset, message[:2000], ts(now)],
                )
            self._dirty = True

    # ------------------------------------------------------------------ runs

    def start_run(self, run_id: str, started_at: datetime | None = None) -> None:
        """Note that run ``run_id`` started (a run that never finishes shows as ``crashed``)."""
        with self._mutex:
            run_log.record_start(self.store, run_id, started_at or self._now())
            self._dirty = True

    def finish_run(self, report: RunReport) -> None:
        """Write the ``runs`` rows of a finished run and each (site, dataset)'s last outcome.

        ``report`` is a :class:`exporter.model.runs.RunReport` (read by attribute: ``run_id``,
        ``started_at``, ``finished_at``, ``interrupted``, ``site_errors`` and ``outcomes`` of
        ``DatasetOutcome``).  Windows committed by a run that was *not* interrupted stop counting
        as resumable (``DatasetState.resume_done``).  Then, with ``auto_compact``, compacts.
        See :func:`exporter.store.run_log.record_finish`.
        """
        with self._mutex:
            run_id = run_log.record_finish(
                self.store,
                report,
                self._now(),
                lambda outcomes, run_id: self._lake_health().report_damage(outcomes, run_id),
            )
            self._dirty = True
        if self.auto_compact:
            try:
                self.compact()
            except WarehouseError as exc:  # compaction is housekeeping: the run's data is safe
                _log.warning("compaction after run %s failed (will retry next run): %s", run_id, exc)
        try:  # housekeeping too: a failure here costs the backup, never the run's data
            # Under the lock like every use of the state DB: in `serve` other jobs' threads use
            # the same connection, and DuckDB refuses a connection busy with another call.
            with self._mutex:
                # This module's RECORDS_PER_SEGMENT (re-exported), read at call time: what tests tune.
                fold_commit_records(self.store, self.lake, per_segment=RECORDS_PER_SEGMENT)
                self.backup_state()
        except WarehouseError as exc:
            _log.warning("backing up the state DB after run %s failed (will retry next run): %s", run_id, exc)

    # ------------------------------------------------------------------ compaction

    def compact(
        self, *, site: str | None = None, dataset: str | None = None, min_files: int | None = None
    ) -> CompactResult:
        """Rewrite each partition holding ``min_files`` (default ``compact_min_files``) or more
        committed files into one file with the newest version per key, in one commit per
        partition.  Replaced files are deleted once no open catalog can name them."""
        with self._mutex:
            started = time.perf_counter()
            store, lake = self.store, self.lake
            threshold = max(2, min_files or self.settings.compact_min_files)
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
                ds = self._dataset(group["dataset"])
                paths: list[str] = list(group["paths"])
                table = lake.read(paths)
                table = dedupe_latest(table, identity_key(ds, table.column_names))
                commit_id = store.max_commit() + 1
                now = self._now()
                new = lake.write_staged(
                    table.sort_by([(ds.start_column, "ascending")]),
                    dataset=ds, site=group["site"], partition=group["partition"], commit_id=commit_id,
                )
                self._hook("compact-staged")
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
                self._dirty = True
                self._hook("compact-committed")
                self._place([new])
                self._hook("compact-placed")
                before += len(paths)
                after += 1
                rows_before += int(group["rows"])
                rows_after += new.rows
            self._reap()
            return CompactResult(len(groups), before, after, rows_before, rows_after, time.perf_counter() - started)

    # ------------------------------------------------------------------ publishing

    def publish(self, *, force: bool = False) -> PublishResult:
        """Rebuild the reader catalog (``settings.catalog``) from the committed files and state,
        and swap it in atomically.  Skipped when nothing changed since the last publish."""
        with self._mutex:
            started = time.perf_counter()
            store = self.store
            if not force and not self._dirty and self.catalog_path.exists():
                last = store.generations()[-1]
                if not held_for_writing(self.catalog_path):
                    return PublishResult(last["generation"], self.catalog_path, -1, last["max_commit"], 0.0,
                                         skipped=True)
                # Someone holds webex.duckdb read-write: nobody else can open that file until it
                # closes.  A new generation under the name frees it for everyone else.
                _log.warning("%s is held open read-write by another process (DuckDB's exclusive lock); "
                             "publishing a fresh copy so other readers can open it", self.catalog_path)
            self._settle()
            self.verify_lake()
            generation = int(store.value("SELECT coalesce(max(generation), 0) FROM generations") or 0) + 1
            target = self.generations_dir / f"webex-{generation:08d}.duckdb"
            reader_copy = self.generations_dir / f"webex-{generation:08d}.readonly.duckdb"
            max_commit = store.max_commit()
            now = self._now()
            previous = [Path(g["file"]) for g in store.generations()]
            files = build_catalog(
                store, target, self.lake, generation=generation, max_commit=max_commit,
                published_at=now, lake_readable=self._ensure_lake_readable(), datasets=list(self.datasets.values()),
                previous=previous[-1] if previous else None,
            )
            # The exporter's own readers open this copy (another inode), through the pointer file:
            # whoever holds webex.duckdb, even read-write, holds no lock on it.
            _copy_durably(target, reader_copy)
            self._hook("publish-built")
            with store.transaction("recording catalog generation") as con:
                con.execute(
                    "UPDATE generations SET superseded_at = CAST(? AS TIMESTAMPTZ) WHERE superseded_at IS NULL",
                    [ts(now)],
                )
                con.execute(
                    "INSERT INTO generations (generation, file, published_at, max_commit, superseded_at, removed, "
                    "reader_file) VALUES (?, ?, CAST(? AS TIMESTAMPTZ), ?, NULL, false, ?)",
                    [generation, str(target), ts(now), max_commit, str(reader_copy)],
                )
            self._hook("publish-recorded")
            swap_in(target, self.catalog_path)
            write_pointer(self.catalog_path, reader_copy, generation)
            self._hook("publish-swapped")
            self._dirty = False
            self._reap()
            return PublishResult(generation, self.catalog_path, files, max_commit, time.perf_counter() - started)

    def _ensure_lake_readable(self) -> bool:
        """Whether this process's DuckDB can read the lake (to bind views and count rows)."""
        if self._lake_readable is None:
            lake = self.lake
            if lake.is_local:
                self._lake_readable = True
            elif (fs := lake.duckdb_filesystem()) is not None:
                self.store.register_filesystem(fs)
                self._lake_readable = True
            else:
                self._lake_readable = self._try_httpfs()
        return self._lake_readable

    def _try_httpfs(self) -> bool:
        """Load DuckDB's httpfs (only if already installed) with a session secret for the lake."""
        con = self.store.con
        try:
            con.execute("LOAD httpfs")
        except Exception:  # noqa: BLE001 - any failure means "not available"; callers degrade honestly
            return False
        region = self.settings.s3_region or os.environ.get("AWS_REGION", "us-east-1")
        options = [
            f"KEY_ID {quote_str(os.environ.get('AWS_ACCESS_KEY_ID', ''))}",
            f"SECRET {quote_str(os.environ.get('AWS_SECRET_ACCESS_KEY', ''))}",
            f"REGION {quote_str(region)}",
        ]
        if endpoint := self.settings.s3_endpoint_url:
            scheme, _, host = endpoint.partition("://")
            options += [f"ENDPOINT {quote_str(host or scheme)}", "URL_STYLE 'path'",
                        f"USE_SSL {'false' if scheme == 'http' else 'true'}"]
        with duckdb_errors("configuring DuckDB for the S3 lake"):
            con.execute(f"CREATE OR REPLACE TEMPORARY SECRET webex_lake (TYPE s3, {', '.join(options)})")
        return True

    def _reap(self) -> None:
        """Drop superseded catalog generations no reader holds, then the retired files that no
        remaining generation can name."""
        store, lake = self.store, self.lake
        now = self._now()
        generations = store.generations()
        for g in generations[:-1]:  # never the newest: it is the catalog
            path = Path(g["file"])
            reader_copy = Path(g["reader_file"]) if g.get("reader_file") else None
            superseded = g["superseded_at"]
            if superseded is None or now - superseded < self.retire_grace:
                continue
            if _same_file(path, self.catalog_path) or in_use(path) or (reader_copy and in_use(reader_copy)):
                continue
            try:
                path.unlink(missing_ok=True)
                if reader_copy is not None:
                    reader_copy.unlink(missing_ok=True)
            except OSError as exc:
                _log.warning("cannot remove old catalog generation %s: %s", path, exc)
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
                _log.warning("cannot delete retired file %s yet: %s", r["path"], exc)
                continue
            deleted.append(r["path"])
        if deleted:
            store.execute("DELETE FROM retired_files WHERE list_contains(?, path)", [deleted])
            self._hook("compact-reaped")

    # ------------------------------------------------------------------ damaged files

    def _lake_health(self) -> LakeHealth:
        """The checker of this open warehouse's lake files (it remembers the footers it read)."""
        store, lake = self.store, self.lake
        if self._health is None:
            self._health = LakeHealth(store, lake, self.export, clock=self._now, on_change=self._mark_dirty)
        return self._health

    def _mark_dirty(self) -> None:
        self._dirty = True

    def verify_lake(self, *, full: bool = False) -> list[dict[str, Any]]:
        """Check that every committed file is whole (exists, recorded size, readable footer) and
        record the damaged ones: out of the manifest, into ``damaged_files``, set aside, their
        windows listed again.  ``full`` reads every footer again.  Returns the files found damaged
        now.  See :meth:`exporter.store.lake_health.LakeHealth.verify`."""
        with self._mutex:
            return self._lake_health().verify(full=full)

    def damaged_files(self, *, include_repaired: bool = False) -> list[dict[str, Any]]:
        """Rows of ``damaged_files`` (by default those not repaired), oldest first."""
        with self._mutex:
            return lake_health.damaged_files(self.store, include_repaired=include_repaired)


    # ------------------------------------------------------------------ state backups

    def backup_state(self) -> Path:
        """Write a backup of the state DB to ``.webex-exporter/backups/`` and keep the newest
        :data:`STATE_BACKUPS_KEPT`; returns its path.  Called after every finished run."""
        with self._mutex:
            return state_recovery.backup_state(self.store, self.backups_dir, self._now())


    # ------------------------------------------------------------------ status

    def gap_warnings(self, now: datetime | None = None) -> list[dict[str, object]]:
        """(site, dataset) whose uncovered history nears the server's retention, most urgent
        first, as plain dicts (see :class:`exporter.store.state.GapWarning`)."""
        with self._mutex:
            now = now or self._now()
            found = state_rules.gap_warnings(
                self.states(), now, self.export.retention_days, self.export.gap_warning_days
            )
            return [w.as_dict() for w in found]

    def status(
        self,
        now: datetime | None = None,
        *,
        expected: Iterable[tuple[str, str]] = (),
        count_rows: bool = True,
    ) -> list[StatusRow]:
        """One row per (site, dataset) known to the state or named in ``expected`` (configured
        pairs that never ran show up with no cursor and a gap warning)."""
        with self._mutex:
            now = (now or self._now()).astimezone(timezone.utc)
            held = self._rows_held() if count_rows else None
            return store_status(self.store, self.state, now, self.export, expected=expected, held=held)

    def _rows_held(self) -> dict[tuple[str, str], int]:
        """Deduplicated row count per (site, dataset): distinct (site, natural key)."""
        if not self._ensure_lake_readable():
            return {}
        return rows_held(self.store, self.lake, self.datasets.values())


# ---------------------------------------------------------------------- helpers


class _Span(Protocol):
    """Anything with ``start`` and ``end`` instants (a :class:`Window`, or a caller's own pair)."""

    @property
    def start(self) -> datetime: ...

    @property
    def end(self) -> datetime: ...


def _check_site(site: str) -> None:
    """Site names become path segments (``site=<name>``): refuse anything the config would."""
    if not isinstance(site, str) or not _SITE_NAME.match(site):
        raise WarehouseError(f"invalid site name {site!r}: letters, digits, '_', '.', '-' (max 63)")


def _window(window: _Span) -> Window:
    """Accept any ``(start, end)`` object; the warehouse stores :class:`Window` bounds."""
    if isinstance(window, Window):
        return window
    try:
        return Window(window.start, window.end)
    except (AttributeError, ValueError) as exc:
        raise WarehouseError(f"not a window: {window!r} ({exc})") from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _copy_durably(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` through a temporary name, fsynced, so ``target`` is whole
    whenever it exists (another inode than ``source``: DuckDB's locks on one are not on the other)."""
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, temp)
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
    except OSError as exc:
        raise WarehouseError(f"copying catalog {source} to {target}: {exc}") from exc
