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
  transaction commits, so the lake itself says what was committed (:mod:`exporter.store.commit_records`);
  :func:`~exporter.store.state_rebuild.rebuild_state` rebuilds a lost or damaged state DB from the
  newest backup (:mod:`exporter.store.state_backups`) plus the records made after it.
* Every publish checks each manifest file (exists, recorded size, readable footer); a damaged one
  is left out of the views, recorded in ``damaged_files``, set aside and its windows fetched
  again, and the run that finds it does not report success - see :mod:`exporter.store.lake_health`.
* The failed and unverified window lists all of these update: :mod:`exporter.store.window_ledger`.

Status rows and gap reporting live in :mod:`exporter.store.status`, the ``run_log``/``runs`` rows of
each run in :mod:`exporter.store.run_log`; the steps themselves in :mod:`exporter.store.landing`
(commits), :mod:`exporter.store.compaction` (compaction and deleting retired files),
:mod:`exporter.store.publishing` (catalog generations) and :mod:`exporter.store.startup` (what
opening does after a crash); the paths, the lock, opening and closing in
:mod:`exporter.store.warehouse_handle`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import WarehouseError
from ..model.runs import RunReport
from ..model.windows import Window
from ..obs.logs import event
from . import commit_records, lake_health, run_log, startup
from . import state as state_rules
from .catalog_readers import held_for_writing
from .commit_records import fold_commit_records
from .compaction import CompactResult, compact_partitions, reap
from .duckdb_lake import connect_lake
from .lake_health import LakeHealth
from .landing import CommitResult, as_window, check_site, land_window, record_failed_window, record_unavailable
from .publishing import PublishResult, publish_generation
from .state import DatasetState
from .state_backups import backup_state
from .status import StatusRow, dataset_state, rows_held, store_status
from .warehouse_handle import WarehouseHandle

__all__ = ["Warehouse"]


class Warehouse(WarehouseHandle):
    """The Parquet lake, its state and its reader catalog, for one exporter process.

    Use as a context manager; opening takes the process lock, finishes or discards whatever a
    crash left (pending moves, staging orphans, unfinished catalog generations) and publishes a
    fresh catalog, so every dataset's view exists from the first moment.

    ``auto_compact``: :meth:`finish_run` compacts partitions that reached
    ``settings.compact_min_files``.  ``retire_grace_seconds``: see
    :data:`~exporter.store.warehouse_handle.DEFAULT_RETIRE_GRACE_SECONDS`.  ``clock``: the current
    time (tests).  ``datasets``: the registry to land and catalog (default: all of
    ``exporter.model.datasets.ALL_DATASETS``; an older or newer registry is how schema evolution is
    exercised).  Paths, the lock, opening and closing: :class:`~exporter.store.warehouse_handle.WarehouseHandle`.
    """

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
            ds = self._dataset(dataset)
            check_site(site)
            return land_window(
                self.store, self.lake, ds, site, as_window(window), table, cursor_to=cursor_to, run_id=run_id,
                verified=verified, problem=problem, now=self._now(), hook=self._hook, on_commit=self._mark_dirty,
            )

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
            check_site(site)
            message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
            record_failed_window(self.store, site, dataset, as_window(window), message, run_id=run_id,
                                 cursor_to=cursor_to, now=self._now())
            self._dirty = True

    def mark_unavailable(
        self, site: str, dataset: str, message: str, *, rest_switched_at: datetime | None = None
    ) -> None:
        """Record that the site does not serve ``dataset`` now (e.g. its operation is retired):
        ``status`` shows ``message`` until a later commit of the dataset lands.  An ``auto`` site
        switching the dataset to REST passes ``rest_switched_at`` (``DatasetState.rest_switched_at``)."""
        with self._mutex:
            self._dataset(dataset)
            check_site(site)
            record_unavailable(self.store, site, dataset, message, now=self._now(), rest_switched_at=rest_switched_at)
            self._dirty = True

    # ------------------------------------------------------------------ runs

    def start_run(
        self, run_id: str, started_at: datetime | None = None, pairs: Iterable[tuple[str, str]] = ()
    ) -> None:
        """Note that run ``run_id`` started, for the (site, dataset) ``pairs`` it exports (they show
        as ``running``; a run that never finishes shows as ``crashed``)."""
        with self._mutex:
            run_log.record_start(self.store, run_id, started_at or self._now(), pairs)
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
                event("compaction after the run failed (will retry next run)", level=logging.WARNING,
                      run_id=run_id, error=str(exc))
        try:  # housekeeping too: a failure here costs the backup, never the run's data
            # Under the lock like every use of the state DB: in `serve` other jobs' threads use
            # the same connection, and DuckDB refuses a connection busy with another call.
            with self._mutex:
                # Read at call time: what tests tune.
                fold_commit_records(self.store, self.lake, per_segment=commit_records.RECORDS_PER_SEGMENT)
                self.backup_state()
        except WarehouseError as exc:
            event("backing up the state DB after the run failed (will retry next run)", level=logging.WARNING,
                  run_id=run_id, error=str(exc))

    # ------------------------------------------------------------------ compaction

    def compact(
        self, *, site: str | None = None, dataset: str | None = None, min_files: int | None = None
    ) -> CompactResult:
        """Rewrite each partition holding ``min_files`` (default ``compact_min_files``) or more
        committed files into one file with the newest version per key, in one commit per
        partition.  Replaced files are deleted once no open catalog can name them."""
        with self._mutex:
            result = compact_partitions(
                self.store, self.lake, dataset_named=self._dataset,
                threshold=max(2, min_files or self.settings.compact_min_files), site=site, dataset=dataset,
                clock=self._now, hook=self._hook, on_commit=self._mark_dirty,
            )
            self._reap()
            return result

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
                event("the catalog is held open read-write by another process (DuckDB's exclusive lock); "
                      "publishing a fresh copy so other readers can open it", level=logging.WARNING,
                      catalog=str(self.catalog_path))
            startup.settle(store, self.lake)
            self.verify_lake()
            result = publish_generation(
                store, self.lake, catalog_path=self.catalog_path, generations_dir=self.generations_dir,
                lake_readable=self._ensure_lake_readable(), datasets=list(self.datasets.values()), now=self._now(),
                started=started, hook=self._hook,
            )
            self._dirty = False
            self._reap()
            return result

    def _ensure_lake_readable(self) -> bool:
        """Whether this process's DuckDB can read the lake (to bind views and count rows)."""
        if self._lake_readable is None:
            self._lake_readable = connect_lake(self.store, self.lake, self.settings)
        return self._lake_readable

    def _reap(self) -> None:
        """Drop superseded catalog generations no reader holds, then the retired files that no
        remaining generation can name."""
        reap(self.store, self.lake, now=self._now(), retire_grace=self.retire_grace,
             catalog_path=self.catalog_path, hook=self._hook)

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
        :data:`~exporter.store.state_backups.STATE_BACKUPS_KEPT`; returns its path.  Called after every finished run."""
        with self._mutex:
            return backup_state(self.store, self.backups_dir, self._now())

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
