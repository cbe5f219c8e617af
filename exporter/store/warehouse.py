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
"""

from __future__ import annotations

import json
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
from typing import Any

import pyarrow as pa

from ..config import ExportSettings, WarehouseSettings
from ..errors import WarehouseError
from ..model.datasets import ALL_DATASETS, Dataset
from ..model.windows import Window
from ..records.identity import VERIFIED_COLUMN, identity_key, with_occurrences
from . import lake_health, state_recovery
from . import state as state_rules
from .catalog import (
    build_catalog,
    dataset_view_sql,
    held_for_writing,
    in_use,
    open_reader,
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
from .state import DatasetState, FailedWindow, LastRun, UnverifiedWindow
from .state_db import StateStore, duckdb_errors, quote_ident, quote_str, ts
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
from .window_ledger import clear_failures, record_failure, record_unverified, retire_verified

__all__ = [
    "Warehouse",
    "CommitResult",
    "CompactResult",
    "PublishResult",
    "StatusRow",
    "RebuildResult",
    "read_status",
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


@dataclass(frozen=True, slots=True)
class StatusRow:
    """One (site, dataset) for ``status``: how current it is and what it holds."""

    site: str
    dataset: str
    cursor: datetime | None
    lag: timedelta | None
    last_run_at: datetime | None
    last_outcome: str | None
    failed_windows: int
    gap_warning: str | None
    rows_held: int | None
    files: int
    unverified_windows: int = 0  # landed, but not yet verified complete (re-listed every run)
    unavailable: str | None = None  # why the site does not serve this dataset (a retired operation)
    damaged_files: int = 0  # committed files found missing or unreadable, not yet repaired by a re-fetch


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
            return _dataset_state(
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
                                      by=[PRELIMINARY_COLUMN])  # fmt: skip
            if not verified:
                shaped = shaped.set_column(shaped.schema.get_field_index(VERIFIED_COLUMN), VERIFIED_COLUMN,
                                           pa.repeat(pa.scalar(False), shaped.num_rows))  # fmt: skip
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
                    )  # fmt: skip
                    store.add_files(con, commit_id=commit_id, dataset=dataset, site=site, files=staged)
                    store.advance_cursor(
                        con, site=site, dataset=dataset, cursor_to=cursor_to, commit_id=commit_id, at=now
                    )
                    clear_failures(con, site, dataset, window)
                    con.execute("UPDATE sync_state SET unavailable = NULL, unavailable_since = NULL "
                                "WHERE site = ? AND dataset = ?", [site, dataset])  # fmt: skip
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
            self.store.execute(
                "INSERT INTO run_log VALUES (?, CAST(? AS TIMESTAMPTZ), NULL, 'running', NULL) "
                "ON CONFLICT (run_id) DO NOTHING",
                [run_id, ts(started_at or self._now())],
            )
            self._dirty = True

    def finish_run(self, report: Any) -> None:
        """Write the ``runs`` rows of a finished run and each (site, dataset)'s last outcome.

        ``report`` is a :class:`exporter.model.runs.RunReport` (read by attribute: ``run_id``,
        ``started_at``, ``finished_at``, ``interrupted``, ``site_errors`` and ``outcomes`` of
        ``DatasetOutcome``).  Windows committed by a run that was *not* interrupted stop counting
        as resumable (``DatasetState.resume_done``).  Then, with ``auto_compact``, compacts.
        """
        with self._mutex:
            store = self.store
            now = self._now()
            run_id = str(report.run_id)
            finished = getattr(report, "finished_at", None) or now
            started = getattr(report, "started_at", None) or finished
            interrupted = bool(getattr(report, "interrupted", False))
            site_errors = dict(getattr(report, "site_errors", None) or {})
            outcomes = list(getattr(report, "outcomes", ()) or ())
            self._lake_health().report_damage(outcomes, run_id)
            max_commit = store.max_commit()
            labels = []
            with store.transaction(f"recording run {run_id}") as con:
                for o in outcomes:
                    label = _outcome_label(o, interrupted, o.site in site_errors)
                    labels.append(label)
                    _insert_run_row(con, run_id, o, label, started, finished, site_errors.get(o.site))
                    con.execute(
                        """
                        INSERT INTO sync_state (site, dataset, last_run_id, last_run_at, last_outcome, finished_commit)
                        VALUES (?, ?, ?, CAST(? AS TIMESTAMPTZ), ?, ?)
                        ON CONFLICT (site, dataset) DO UPDATE SET
                            last_run_id = excluded.last_run_id, last_run_at = excluded.last_run_at,
                            last_outcome = excluded.last_outcome,
                            finished_commit = greatest(sync_state.finished_commit, excluded.finished_commit)
                        """,
                        [o.site, o.dataset, run_id, ts(finished), label, 0 if interrupted else max_commit],
                    )
                overall = _run_label(labels, interrupted, bool(site_errors))
                con.execute(
                    """
                    INSERT INTO run_log VALUES (?, CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ), ?, ?)
                    ON CONFLICT (run_id) DO UPDATE SET finished_at = excluded.finished_at,
                        outcome = excluded.outcome, site_errors = excluded.site_errors
                    """,
                    [run_id, ts(started), ts(finished), overall, json.dumps(site_errors) if site_errors else None],
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
                )  # fmt: skip
                self._hook("compact-staged")
                try:
                    with store.transaction(
                        f"compacting {group['dataset']}/{group['site']}/{group['partition']}"
                    ) as con:
                        store.insert_commit(
                            con, commit_id=commit_id, kind="compaction", site=group["site"], dataset=group["dataset"],
                            window=None, run_id=None, committed_at=now, rows=new.rows, files=1,
                            sources=list(group["commit_ids"]),
                        )  # fmt: skip
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
                                         skipped=True)  # fmt: skip
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
            )  # fmt: skip
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
                        f"USE_SSL {'false' if scheme == 'http' else 'true'}"]  # fmt: skip
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
            pairs = sorted(set(self.store.pairs()) | set(expected))
            held = self._rows_held() if count_rows else {}
            files = {
                (r["site"], r["dataset"]): int(r["n"])
                for r in self.store.rows("SELECT site, dataset, count(*) AS n FROM manifest GROUP BY ALL")
            }
            damaged = {
                (r["site"], r["dataset"]): int(r["n"])
                for r in self.store.rows(
                    "SELECT site, dataset, count(*) AS n FROM damaged_files "
                    "WHERE state NOT IN ('repaired', 'restored') GROUP BY ALL"
                )
            }
            pairs = sorted(set(pairs) | set(damaged))
            states = [self.state(site, dataset) for site, dataset in pairs]
            return _status_rows(states, now, self.export, files, held if count_rows else None, damaged)

    def _rows_held(self) -> dict[tuple[str, str], int]:
        """Deduplicated row count per (site, dataset): distinct (site, natural key)."""
        if not self._ensure_lake_readable():
            return {}
        out: dict[tuple[str, str], int] = {}
        for ds in self.datasets.values():
            files = [(self.lake.uri(r["path"]), json.loads(r["columns"])) for r in self.store.manifest(ds.name)]
            if not files:
                continue
            for r in self.store.rows(f"SELECT site, count(*) AS n FROM ({dataset_view_sql(ds, files)}) GROUP BY site"):
                out[(r["site"], ds.name)] = int(r["n"])
        return out


# ---------------------------------------------------------------------- helpers


def _dataset_state(
    site: str,
    dataset: str,
    row: dict[str, Any] | None,
    failure_rows: Iterable[dict[str, Any]],
    unfinished: Iterable[tuple[datetime, datetime]],
    lookback_days: int,
    unverified_rows: Iterable[dict[str, Any]] = (),
) -> DatasetState:
    """A :class:`DatasetState` from its ``sync_state``, ``failed_windows`` and
    ``unverified_windows`` rows."""
    row = row or {}
    unverified = tuple(
        UnverifiedWindow(Window(u["window_start"], u["window_end"]), u["problem"] or "", u["attempts"],
                         u["first_seen_at"], u["last_seen_at"], u["commit_id"])  # fmt: skip
        for u in unverified_rows
    )
    failures = tuple(
        FailedWindow(
            window=Window(f["window_start"], f["window_end"]),
            error=f["error"] or "",
            attempts=f["attempts"],
            first_failed_at=f["first_failed_at"],
            last_failed_at=f["last_failed_at"],
            run_id=f["run_id"],
        )
        for f in failure_rows
    )
    last_run = (
        LastRun(row["last_run_id"], row.get("last_run_at"), row.get("last_outcome") or "")
        if row.get("last_run_id")
        else None
    )
    return DatasetState(
        site=site,
        dataset=dataset,
        cursor=row.get("cursor"),
        failed_windows=tuple(f.window for f in failures),
        failures=failures,
        last_run=last_run,
        resume_done=tuple(Window(s, e) for s, e in unfinished),
        last_commit_at=row.get("last_commit_at"),
        lookback_days=lookback_days,
        unverified=unverified,
        unavailable=row.get("unavailable"),
    )


def _status_rows(
    states: Iterable[DatasetState],
    now: datetime,
    export: ExportSettings,
    files: dict[tuple[str, str], int],
    held: dict[tuple[str, str], int] | None,
    damaged: dict[tuple[str, str], int] | None = None,
) -> list[StatusRow]:
    out = []
    for st in states:
        warning = state_rules.gap_warning(st, now, export.retention_days, export.gap_warning_days)
        out.append(
            StatusRow(
                site=st.site,
                dataset=st.dataset,
                cursor=st.cursor,
                lag=(now - st.cursor) if st.cursor else None,
                last_run_at=st.last_run.finished_at if st.last_run else None,
                last_outcome=st.last_run.outcome if st.last_run else None,
                failed_windows=len(st.failed_windows),
                gap_warning=warning.message if warning else None,
                rows_held=held.get((st.site, st.dataset), 0) if held is not None else None,
                files=files.get((st.site, st.dataset), 0),
                unverified_windows=len(st.unverified),
                unavailable=st.unavailable,
                damaged_files=(damaged or {}).get((st.site, st.dataset), 0),
            )
        )
    return out


def read_status(
    settings: WarehouseSettings,
    *,
    export: ExportSettings | None = None,
    now: datetime | None = None,
    expected: Iterable[tuple[str, str]] = (),
    count_rows: bool = True,
) -> list[StatusRow]:
    """:meth:`Warehouse.status` from the *published catalog*, read-only and without the writer
    lock, so ``status`` works while an export runs (it shows the last publish).

    For another process than the exporter: opening the catalog here would hold a lock on it that
    the exporter cannot tell from a reader's (harmless, but it keeps old generations around).
    """
    export = export or ExportSettings()
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    catalog = Path(settings.catalog).expanduser()
    if not catalog.exists():
        return _status_rows(
            [DatasetState(s, d, lookback_days=export.lookback_for(d)) for s, d in sorted(set(expected))],
            now,
            export,
            {},
            None,
        )
    with duckdb_errors(f"reading catalog {catalog}"):
        con = open_reader(catalog)
        try:

            def rows(sql: str) -> list[dict[str, Any]]:
                return [{k: (v.astimezone(timezone.utc) if isinstance(v, datetime) else v) for k, v in r.items()}
                        for r in con.sql(sql).to_arrow_table().to_pylist()]  # fmt: skip

            info = rows("SELECT * FROM catalog_info")[0]
            sync = {(r["site"], r["dataset"]): r for r in rows("SELECT * FROM sync_state")}
            failed: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for r in rows("SELECT * FROM failed_windows ORDER BY window_start"):
                failed.setdefault((r["site"], r["dataset"]), []).append(r)
            unverified: dict[tuple[str, str], list[dict[str, Any]]] = {}
            has_unverified = rows("SELECT count(*) AS n FROM information_schema.tables "
                                  "WHERE table_name = 'unverified_windows'")[0]["n"]  # fmt: skip
            for r in rows("SELECT * FROM unverified_windows ORDER BY window_start") if has_unverified else ():
                unverified.setdefault((r["site"], r["dataset"]), []).append(r)
            files = {(r["site"], r["dataset"]): int(r["n"])
                     for r in rows("SELECT site, dataset, count(*) AS n FROM manifest GROUP BY ALL")}  # fmt: skip
            damaged: dict[tuple[str, str], int] = {}
            has_damaged = rows("SELECT count(*) AS n FROM information_schema.tables "
                               "WHERE table_name = 'damaged_files'")[0]["n"]  # fmt: skip
            sql = ("SELECT site, dataset, count(*) AS n FROM damaged_files "
                   "WHERE state NOT IN ('repaired', 'restored') GROUP BY ALL")
            for r in rows(sql) if has_damaged else ():
                damaged[(r["site"], r["dataset"])] = int(r["n"])
            held: dict[tuple[str, str], int] | None = None
            if count_rows and (info["lake_readable"] or not files):
                fs = None
                if str(info["lake_root"]).startswith("s3://") and files:
                    fs = Lake(str(info["lake_root"]), s3_endpoint_url=settings.s3_endpoint_url,
                              s3_region=settings.s3_region).duckdb_filesystem()  # fmt: skip
                    if fs is not None:
                        con.register_filesystem(fs)
                readable = fs is not None or not str(info["lake_root"]).startswith("s3://") or not files
                held = {} if readable else None
                for name in sorted({d for _, d in files}) if readable else ():
                    for r in rows(f"SELECT site, count(*) AS n FROM {quote_ident(name)} GROUP BY site"):
                        held[(r["site"], name)] = int(r["n"])
        finally:
            con.close()
    pairs = sorted(set(sync) | set(failed) | set(unverified) | set(files) | set(expected) | set(damaged))
    states = [
        _dataset_state(s, d, sync.get((s, d)), failed.get((s, d), ()), (), export.lookback_for(d),
                       unverified.get((s, d), ()))
        for s, d in pairs
    ]
    return _status_rows(states, now, export, files, held, damaged)


def _check_site(site: str) -> None:
    """Site names become path segments (``site=<name>``): refuse anything the config would."""
    if not isinstance(site, str) or not _SITE_NAME.match(site):
        raise WarehouseError(f"invalid site name {site!r}: letters, digits, '_', '.', '-' (max 63)")


def _window(window: Any) -> Window:
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


def _outcome_label(outcome: Any, interrupted: bool, site_stopped: bool) -> str:
    label = str(getattr(outcome, "outcome", "ok") or "ok")
    if label == "ok" and site_stopped:
        return "site_stopped"
    if label == "ok" and interrupted:
        return "interrupted"
    return label


def _run_label(labels: Sequence[str], interrupted: bool, site_errors: bool) -> str:
    if interrupted:
        return "interrupted"
    if not site_errors and all(label == "ok" for label in labels):
        return "ok"
    if labels and all(label in ("failed", "site_stopped", "refused") for label in labels):
        return "failed"
    return "partial"


def _count(value: Any) -> int:
    """A counter field as a number (a Counter/dict sums its values, a list counts)."""
    if value is None:
        return 0
    if isinstance(value, dict):
        return int(sum(value.values()))
    if isinstance(value, (list, tuple, set)):
        return len(value)
    return int(value)


def _insert_run_row(
    con: Any, run_id: str, o: Any, label: str, started: datetime, finished: datetime, site_error: str | None
) -> None:
    errors = [str(e) for e in (getattr(o, "errors", None) or [])]
    if site_error:
        errors.append(site_error)
    details = {
        "unknown_elements": dict(getattr(o, "unknown_elements", None) or {}),
        "bad_values": dict(getattr(o, "bad_values", None) or {}),
    }
    con.execute(
        """
        INSERT INTO runs (run_id, site, dataset, started_at, finished_at, outcome, windows, windows_failed, pages,
                          records, requests, retries, throttles, throttle_wait_seconds, unknown_elements,
                          bad_values, errors, error_messages, details, windows_unverified)
        VALUES (?, ?, ?, CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (run_id, site, dataset) DO UPDATE SET windows_unverified = excluded.windows_unverified,
            finished_at = excluded.finished_at, outcome = excluded.outcome, windows = excluded.windows,
            windows_failed = excluded.windows_failed, pages = excluded.pages, records = excluded.records,
            requests = excluded.requests, retries = excluded.retries, throttles = excluded.throttles,
            throttle_wait_seconds = excluded.throttle_wait_seconds, unknown_elements = excluded.unknown_elements,
            bad_values = excluded.bad_values, errors = excluded.errors, error_messages = excluded.error_messages,
            details = excluded.details
        """,
        [
            run_id, o.site, o.dataset, ts(started), ts(finished), label,
            _count(getattr(o, "windows_committed", 0)), _count(getattr(o, "windows_failed", 0)),
            _count(getattr(o, "pages", 0)), _count(getattr(o, "records", 0)), _count(getattr(o, "requests", 0)),
            _count(getattr(o, "retries", 0)), _count(getattr(o, "throttles", 0)),
            float(getattr(o, "throttle_wait_seconds", 0.0) or 0.0),
            _count(getattr(o, "unknown_elements", 0)), _count(getattr(o, "bad_values", 0)), len(errors),
            json.dumps(errors[:20]) if errors else None, json.dumps(details, default=str),
            _count(getattr(o, "windows_unverified", 0)),
        ],
    )  # fmt: skip
