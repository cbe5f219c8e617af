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
no lock and never block the exporter (see :mod:`exporter.catalog`).

Damage and loss:

* Every commit also writes a small record to ``<root>/_commits/<commit>.json`` (its window, cursor,
  files, the files it retired) *before* its transaction commits, so the lake itself says what was
  committed; :func:`rebuild_state` rebuilds a lost or damaged state DB from the newest backup
  (``.webex-exporter/backups/``, one after every finished run, the last three kept) plus the
  records made after it.
* Every publish checks that each manifest file exists, has its recorded size and a readable
  footer (footers already read are remembered by path, size and mtime).  A damaged file is left
  out of the views, recorded in ``damaged_files`` (copied into the catalog, shown by ``status``),
  set aside under ``<root>/_damaged/`` when it exists, and the windows it held are recorded as
  failed windows, so the next run or backfill fetches them again while Webex still has them.  The
  run that finds damage, and every run while it is not repaired, does not report success.
"""

from __future__ import annotations

import fcntl
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

from . import state as state_rules
from .catalog import (
    StateStore,
    build_catalog,
    dataset_view_sql,
    duckdb_errors,
    held_for_writing,
    in_use,
    open_reader,
    pointer_path,
    quote_ident,
    quote_str,
    swap_in,
    ts,
    write_pointer,
)
from .config import ExportSettings, WarehouseSettings
from .datasets import DATASETS, Dataset
from .errors import WarehouseError
from .identity import VERIFIED_COLUMN, identity_key, with_occurrences
from .logs import event
from .lake import (
    COMMITS_DIR,
    DAMAGED_DIR,
    STAGING_DIR,
    UNKNOWN_DATE,
    Lake,
    StagedFile,
    conform,
    dedupe_latest,
    split_partitions,
    storage_errors,
    with_lineage,
    PRELIMINARY_COLUMN,
)
from .state import DatasetState, FailedWindow, LastRun, UnverifiedWindow
from .windows import Window, clamp_to_retention, plan_windows

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

#: How many backups of the state DB (one per finished run) are kept in ``.webex-exporter/backups``.
STATE_BACKUPS_KEPT = 3

#: Loose commit records are folded into one segment file once there are this many.
RECORDS_PER_SEGMENT = 256

#: Missing files beyond which a publish refuses to record damage and stops instead: so many
#: files gone at once is an unmounted disk or a wrong ``warehouse.root``, not damage to repair
#: (re-fetching would be wrong, and history older than the retention would be written off).
MASS_MISSING_MIN = 10

_RECORD_NAME = re.compile(r"^(\d{10})\.json$")
_SEGMENT_NAME = re.compile(r"^segment-(\d{10})-(\d{10})\.jsonl$")
_PART_COMMIT = re.compile(r"part-(\d+)-[0-9a-f]+\.parquet$")


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


class _ProcessLock:
    """An exclusive ``flock`` on a file that names its holder's pid."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, what: str) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            finally:
                os.close(fd)
            raise WarehouseError(
                f"{what} is being written by another exporter (pid {holder}, lock {self.path}); "
                "only one exporter may write a warehouse at a time"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            # The file stays: deleting a lock file lets two processes lock two different files.
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class Warehouse:
    """The Parquet lake, its state and its reader catalog, for one exporter process.

    Use as a context manager; opening takes the process lock, finishes or discards whatever a
    crash left (pending moves, staging orphans, unfinished catalog generations) and publishes a
    fresh catalog, so every dataset's view exists from the first moment.

    ``auto_compact``: :meth:`finish_run` compacts partitions that reached
    ``settings.compact_min_files``.  ``retire_grace_seconds``: see
    :data:`DEFAULT_RETIRE_GRACE_SECONDS`.  ``clock``: the current time (tests).  ``datasets``: the
    registry to land and catalog (default: all of ``exporter.datasets.DATASETS``; an older or newer
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
        self.datasets: dict[str, Dataset] = {d.name: d for d in (datasets or DATASETS)}
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
        #: Footers already read: path -> (size, mtime_ns) as it was then (loaded on first use).
        self._verified: dict[str, tuple[int, int]] | None = None
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
        self._verified = None
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
        self._drop_uncommitted_records()

    def _drop_uncommitted_records(self) -> None:
        """Delete commit records above the newest commit whose transaction never committed (a
        crash after the record was written; or records of a lake whose files were cleared): none
        of their files is in its partition, and the next commit reuses the number.  A record above
        the newest commit whose files *are* in place means the state DB is older than the lake
        (an old backup copied over it): refuse, rather than number new commits over those."""
        store, lake = self.store, self.lake
        newest = store.max_commit()
        for name in lake.list_files(COMMITS_DIR):
            leaf = name.rsplit("/", 1)[-1]
            if leaf.startswith("."):
                lake.delete(name)  # a temporary file of a write that did not finish
                continue
            record, segment = _RECORD_NAME.match(leaf), _SEGMENT_NAME.match(leaf)
            last = int(record.group(1)) if record else int(segment.group(2)) if segment else 0
            if last <= newest:
                continue
            lines = [line for line in lake.read_bytes(name).splitlines() if line.strip()]
            ahead = [r for r in (_parse_record(line, name) for line in lines) if r and int(r["commit_id"]) > newest]
            placed = [f["path"] for r in ahead for f in r.get("files") or () if lake.exists(f["path"])]
            if placed:
                raise WarehouseError(
                    f"the state DB {self.state_path} knows commits up to {newest}, but the lake at {lake.root_uri} "
                    f"holds later ones ({lake.uri(name)} names {lake.uri(placed[0])}): the state DB is older than "
                    "the lake (restored from an old copy?). Rebuild it: `webex-exporter state rebuild --force` "
                    "(from its backups and the lake's commit records)"
                )
            lake.delete(name)

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
            shaped = dedupe_latest(with_lineage(shaped, commit_id, now), identity_key(ds))
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
                    _clear_failures(con, site, dataset, window)
                    con.execute("UPDATE sync_state SET unavailable = NULL, unavailable_since = NULL "
                                "WHERE site = ? AND dataset = ?", [site, dataset])  # fmt: skip
                    if verified:
                        _retire_verified(con, site, dataset, window, commit_id, now)
                    else:
                        _record_unverified(con, site, dataset, window, commit_id, problem, run_id, now)
                    # Last inside the transaction: the lake says what this commit did before it counts.
                    self._write_commit_record(con, commit_id)
                    self._hook("recorded")
            except BaseException:
                for name in [f.staged for f in staged] + [_record_path(commit_id)]:
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

    def _write_commit_record(self, con: Any, commit_id: int) -> None:
        """Write ``<root>/_commits/<commit>.json``: the commit row, its files (with what the
        manifest knows of them), the files it retired and, for an unverified listing, why.  Called
        inside the commit's transaction, after every statement of it: if writing fails, the commit
        rolls back; if the process dies before the transaction commits, the next start deletes the
        record (its number is above the newest commit).  :func:`rebuild_state` replays these."""
        record = _commit_record(con, commit_id)
        self.lake.write_bytes(_record_path(commit_id), (json.dumps(record, default=_json_default) + "\n").encode())

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
                _record_failure(con, site, dataset, window, message[:2000], run_id, now)
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

        ``report`` is a :class:`exporter.pipeline.RunReport` (read by attribute: ``run_id``,
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
            self._report_damage(outcomes, run_id)
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
            self._fold_commit_records()
            self.backup_state()
        except WarehouseError as exc:
            _log.warning("backing up the state DB after run %s failed (will retry next run): %s", run_id, exc)

    def _report_damage(self, outcomes: Sequence[Any], run_id: str) -> None:
        """Check the lake once more, then add an error to the outcome of every (site, dataset) of
        this run that holds damaged files not yet repaired, or damaged files no run has reported
        yet (found by this run's start, a publish or ``verify``; reported once even when this run
        fetched their windows again already).  The pipeline's exit code counts outcome errors
        (``RunReport.exit_code``), so such a run never exits 0 and its summary says why.  Damage
        of (site, dataset) pairs outside the run is logged, and reported by their next run."""
        try:
            self.verify_lake()
        except WarehouseError as exc:
            _log.error("checking the lake's files after the run failed: %s", exc)
        rows = self.store.rows(
            "SELECT * FROM damaged_files WHERE state NOT IN ('repaired', 'restored') OR reported_in IS NULL "
            "ORDER BY detected_at, path"
        )
        by_pair: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in rows:
            by_pair.setdefault((row["site"], row["dataset"]), []).append(row)
        reported: list[str] = []
        for o in outcomes:
            found = by_pair.pop((getattr(o, "site", None), getattr(o, "dataset", None)), None)
            errors = getattr(o, "errors", None)
            if found and isinstance(errors, list):
                errors.append(_damage_message(found))
                reported += [r["path"] for r in found]
        if reported:
            self.store.execute("UPDATE damaged_files SET reported_in = coalesce(reported_in, ?) "
                               "WHERE list_contains(?, path)", [run_id, reported])  # fmt: skip
        for (site, dataset), found in by_pair.items():
            event(_damage_message(found), level=logging.ERROR, site=site, dataset=dataset)

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
                table = dedupe_latest(lake.read(paths), identity_key(ds))
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
                        self._write_commit_record(con, commit_id)
                except BaseException:
                    lake.delete(new.staged)
                    lake.delete(_record_path(commit_id))
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
            files = build_catalog(
                store, target, self.lake, generation=generation, max_commit=max_commit,
                published_at=now, lake_readable=self._ensure_lake_readable(), datasets=list(self.datasets.values()),
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

    def verify_lake(self, *, full: bool = False) -> list[dict[str, Any]]:
        """Check that every committed file is whole: it exists, has the size the manifest
        recorded and a readable Parquet footer with the recorded row count.  Footers already read
        are remembered (state table ``verified_files``) by path, size and mtime, so a publish reads
        only new or changed files; ``full`` reads every footer again.

        A damaged file is taken out of the manifest (so no view names it), recorded in
        ``damaged_files`` with the windows it held, set aside under ``<root>/_damaged/`` when it
        exists, and those windows become failed windows: the next run or backfill lists them
        again (while Webex's retention still holds them; older ones are recorded as ``lost``).
        Returns the files found damaged now (dicts: ``path``, ``dataset``, ``site``, ``problem``).

        Local lakes only: on S3 this is skipped (one request per file per publish would cost more
        than it finds; S3 does not truncate objects).  ``WarehouseError`` when so many files are
        missing that the lake looks unmounted (nothing is recorded then).
        """
        with self._mutex:
            store, lake = self.store, self.lake
            if not lake.is_local:
                return []
            if full:
                store.execute("DELETE FROM verified_files")
                self._verified = {}
            elif self._verified is None:
                self._verified = {r["path"]: (int(r["size"]), int(r["mtime_ns"]))
                                  for r in store.rows("SELECT path, size, mtime_ns FROM verified_files")}  # fmt: skip
            self._restore_returned_files()
            manifest = store.rows("SELECT * FROM manifest ORDER BY commit_id, path")
            damaged: list[tuple[dict[str, Any], str]] = []
            fresh: list[tuple[str, int, int]] = []
            for row in manifest:
                path = row["path"]
                if row["staged_as"] is not None:  # its move is pending (_settle found it in neither place)
                    if not lake.exists(row["staged_as"]) and not lake.exists(path):
                        damaged.append((row, "missing (neither in its partition nor in staging)"))
                    continue
                found = lake.stat(path)
                if found is not None and self._verified.get(path) == found:
                    continue
                problem = "missing" if found is None else lake.check_parquet(path, size=row["bytes"], rows=row["rows"])
                if problem is None:
                    fresh.append((path, *found))  # type: ignore[misc]
                    self._verified[path] = found  # type: ignore[assignment]
                else:
                    damaged.append((row, problem))
            if fresh:  # one statement (executemany goes row by row: 1.6 s for 1,000 files)
                store.execute(
                    "INSERT OR REPLACE INTO verified_files "
                    "SELECT unnest(?), unnest(?), unnest(?), CAST(? AS TIMESTAMPTZ)",
                    [[f[0] for f in fresh], [f[1] for f in fresh], [f[2] for f in fresh], ts(self._now())],
                    action="remembering verified lake files",
                )
            listed = {row["path"] for row in manifest}
            stale = [p for p in self._verified if p not in listed]
            if stale:  # retired or damaged since: forget them
                for p in stale:
                    del self._verified[p]
                store.execute("DELETE FROM verified_files WHERE list_contains(?, path)", [stale])
            missing = sum(1 for _, problem in damaged if problem.startswith("missing"))
            if missing >= MASS_MISSING_MIN and 2 * missing > len(manifest):
                raise WarehouseError(
                    f"{missing} of the {len(manifest)} committed files of the lake at {lake.root_uri} are missing "
                    f"(e.g. {lake.uri(next(r['path'] for r, p in damaged if p.startswith('missing')))}): is the "
                    "lake's disk mounted, and is warehouse.root right?  Nothing was changed; fix the path or restore "
                    "the files, then run again"
                )
            if damaged:
                self._record_damage(damaged)
            self._update_damage_states()
            return [{"path": r["path"], "dataset": r["dataset"], "site": r["site"], "problem": problem}
                    for r, problem in damaged]  # fmt: skip

    def _record_damage(self, damaged: Sequence[tuple[dict[str, Any], str]]) -> None:
        """Take damaged files out of the manifest, record them and list their windows again."""
        store, lake = self.store, self.lake
        now = self._now()
        horizon = _horizon(now, self.export.retention_days)
        detected_after = store.max_commit()
        with store.transaction("recording damaged lake files") as con:
            for row, problem in damaged:
                site, dataset = row["site"], row["dataset"]
                held = _commit_windows(con, row)
                live = [Window(max(w.start, horizon), w.end) for w in held if w.end > horizon]
                for window in live:
                    for piece in plan_windows(window.start, window.end, self.export.window_hours):
                        message = f"listed again: lake file {row['path']} is damaged ({problem})"
                        _record_failure(con, site, dataset, piece, message, None, now)
                con.execute(
                    """
                    INSERT INTO damaged_files VALUES (?, ?, ?, ?, ?, ?, ?, CAST(? AS TIMESTAMPTZ), ?, ?, ?, NULL, NULL,
                                                      NULL, ?)
                    ON CONFLICT (path) DO UPDATE SET problem = excluded.problem, detected_at = excluded.detected_at,
                        detected_after = excluded.detected_after, refetch = excluded.refetch, state = excluded.state,
                        repaired_at = NULL, reported_in = NULL, manifest_row = excluded.manifest_row
                    """,
                    [row["path"], dataset, site, row["partition"], row["commit_id"], row["rows"], problem[:2000],
                     ts(now), detected_after, json.dumps([[ts(w.start), ts(w.end)] for w in live]),
                     "refetching" if live else "lost", json.dumps({**row, "staged_as": None}, default=_json_default)],
                )  # fmt: skip
                con.execute("DELETE FROM manifest WHERE path = ?", [row["path"]])
                con.execute("DELETE FROM verified_files WHERE path = ?", [row["path"]])
        self._dirty = True
        for row, problem in damaged:
            moved_to = None
            if lake.exists(row["path"]):  # unreadable, not gone: out of every dataset glob, kept for a look
                moved_to = f"{DAMAGED_DIR}/{row['path']}"
                try:
                    lake.move_aside(row["path"], moved_to)
                    store.execute("UPDATE damaged_files SET moved_to = ? WHERE path = ?", [moved_to, row["path"]])
                except WarehouseError as exc:
                    _log.warning("cannot set damaged file %s aside: %s", lake.uri(row["path"]), exc)
                    moved_to = None
            event(
                "damaged lake file left out of the catalog; its windows are listed again", level=logging.ERROR,
                site=row["site"], dataset=row["dataset"], file=lake.uri(row["path"]), problem=problem,
                commit=row["commit_id"], rows=row["rows"], moved_to=lake.uri(moved_to) if moved_to else None,
            )  # fmt: skip

    def _restore_returned_files(self) -> None:
        """A damaged file not yet repaired whose good copy is back at its path (restored from a
        backup of the lake) goes back into the manifest as it was: state ``restored``."""
        store, lake = self.store, self.lake
        for row in store.rows("SELECT * FROM damaged_files WHERE state IN ('refetching', 'lost') "
                              "AND manifest_row IS NOT NULL"):  # fmt: skip
            entry = json.loads(row["manifest_row"])
            if lake.stat(row["path"]) is None or lake.check_parquet(row["path"], size=entry["bytes"],
                                                                    rows=entry["rows"]) is not None:  # fmt: skip
                continue
            with store.transaction(f"restoring {row['path']} into the manifest") as con:
                con.execute(
                    "INSERT OR REPLACE INTO manifest VALUES (?, ?, ?, ?, ?, ?, ?, CAST(? AS TIMESTAMPTZ), "
                    "CAST(? AS TIMESTAMPTZ), ?, NULL)",
                    [entry["path"], entry["dataset"], entry["site"], entry["partition"], entry["commit_id"],
                     entry["rows"], entry["bytes"], entry["min_start"], entry["max_start"], entry["columns"]],
                )  # fmt: skip
                con.execute("UPDATE damaged_files SET state = 'restored', repaired_at = CAST(? AS TIMESTAMPTZ) "
                            "WHERE path = ?", [ts(self._now()), row["path"]])  # fmt: skip
            self._dirty = True
            event("damaged lake file is back and readable: in the catalog again", level=logging.WARNING,
                  site=row["site"], dataset=row["dataset"], file=lake.uri(row["path"]))  # fmt: skip

    def _update_damage_states(self) -> None:
        """A damaged file is ``repaired`` once window commits made after it was found cover every
        window it held; ``lost`` while the uncovered ones are past the server's retention (a file
        recorded lost is still repaired should those windows be landed again, e.g. by a rerun
        against an archive)."""
        store = self.store
        pending = store.rows("SELECT * FROM damaged_files WHERE state IN ('refetching', 'lost') AND refetch <> '[]'")
        if not pending:
            return
        now = self._now()
        horizon = now - timedelta(days=self.export.retention_days)
        changed = False
        with store.transaction("updating damaged lake files") as con:
            for row in pending:
                windows = [Window(datetime.fromisoformat(a), datetime.fromisoformat(b))
                           for a, b in json.loads(row["refetch"])]  # fmt: skip
                open_ = [w for w in windows if not _covered(con, row["site"], row["dataset"], w, row["detected_after"])]
                if not open_:
                    con.execute("UPDATE damaged_files SET state = 'repaired', repaired_at = CAST(? AS TIMESTAMPTZ) "
                                "WHERE path = ?", [ts(now), row["path"]])  # fmt: skip
                    changed = True
                elif row["state"] == "refetching" and all(w.end <= horizon for w in open_):
                    con.execute("UPDATE damaged_files SET state = 'lost' WHERE path = ?", [row["path"]])
                    changed = True
        if changed:
            self._dirty = True

    def damaged_files(self, *, include_repaired: bool = False) -> list[dict[str, Any]]:
        """Rows of ``damaged_files`` (by default those not repaired), oldest first."""
        with self._mutex:
            where = "" if include_repaired else "WHERE state NOT IN ('repaired', 'restored')"
            return self.store.rows(f"SELECT * FROM damaged_files {where} ORDER BY detected_at, path")

    # ------------------------------------------------------------------ state backups

    def backup_state(self) -> Path:
        """Write a backup of the state DB to ``.webex-exporter/backups/`` and keep the newest
        :data:`STATE_BACKUPS_KEPT`; returns its path.  Called after every finished run."""
        with self._mutex:
            store = self.store
            name = f"state-{self._now():%Y%m%dT%H%M%S%f}-{store.max_commit():010d}.duckdb"
            target = self.backups_dir / name
            store.backup_to(target)
            for old in _backups(self.backups_dir)[STATE_BACKUPS_KEPT:]:
                try:
                    old.unlink()
                except OSError as exc:
                    _log.warning("cannot remove old state backup %s: %s", old, exc)
            return target

    def _fold_commit_records(self) -> None:
        """Fold loose commit records into one segment file once there are many (fewer files to
        list and read for a rebuild); a crash between writing the segment and deleting the loose
        records leaves both, which :func:`rebuild_state` reads as one."""
        lake = self.lake
        newest = self.store.max_commit()
        loose = sorted(
            (int(m.group(1)), name) for name in lake.list_files(COMMITS_DIR)
            if (m := _RECORD_NAME.match(name.rsplit("/", 1)[-1])) and int(m.group(1)) <= newest
        )  # fmt: skip
        if len(loose) < RECORDS_PER_SEGMENT:
            return
        lines = [lake.read_bytes(name).strip() for _, name in loose]
        first, last = loose[0][0], loose[-1][0]
        lake.write_bytes(f"{COMMITS_DIR}/segment-{first:010d}-{last:010d}.jsonl", b"\n".join(lines) + b"\n")
        for _, name in loose:
            lake.delete(name)

    # ------------------------------------------------------------------ status

    def gap_warnings(self, now: datetime | None = None) -> list[dict[str, object]]:
        """(site, dataset) whose uncovered history nears the server's retention, most urgent
        first, as plain dicts (see :class:`exporter.state.GapWarning`)."""
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


def _backups(directory: Path) -> list[Path]:
    """State DB backups in ``directory``, newest first (their names sort by time)."""
    return sorted(directory.glob("state-*.duckdb"), key=lambda p: p.name, reverse=True)


def _record_path(commit_id: int) -> str:
    return f"{COMMITS_DIR}/{commit_id:010d}.json"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")


def _commit_record(con: Any, commit_id: int) -> dict[str, Any]:
    """What commit ``commit_id`` did, from inside its own transaction: the commit row, its files,
    the files it retired, and for an unverified listing why."""

    def rows(sql: str) -> list[dict[str, Any]]:
        return con.sql(sql, params=[commit_id]).to_arrow_table().to_pylist()

    (commit,) = rows("SELECT * FROM commits WHERE commit_id = ?")
    files = rows("SELECT path, partition, rows, bytes, min_start, max_start, columns FROM manifest "
                 "WHERE commit_id = ? ORDER BY path")  # fmt: skip
    retires = [r["path"] for r in rows("SELECT path FROM retired_files WHERE retired_by = ? ORDER BY path")]
    problem = rows("SELECT problem FROM unverified_windows WHERE commit_id = ?")
    return {
        "format": 1,
        "commit_id": commit_id,
        "kind": commit["kind"],
        "site": commit["site"],
        "dataset": commit["dataset"],
        "window": [commit["window_start"], commit["window_end"]] if commit["window_start"] is not None else None,
        "run_id": commit["run_id"],
        "committed_at": commit["committed_at"],
        "rows": commit["rows"],
        "cursor_to": commit["cursor_to"],
        "verified": commit.get("verified") is not False,
        "problem": problem[0]["problem"] if problem else None,
        "sources": json.loads(commit["sources"]) if commit.get("sources") else None,
        "files": [{**f, "columns": json.loads(f["columns"])} for f in files],
        "retires": retires,
    }


def _commit_windows(con: Any, row: dict[str, Any]) -> list[Window]:
    """The listing windows whose rows the manifest file ``row`` holds, merged: its commit's
    window; for a compacted file, the windows of the commits it merged (recursively).  A file
    compacted before compactions recorded their sources: every window commit of its (site,
    dataset) that could hold a row of it (windows are on the session start; a row's start column
    may be a later join time, hence two days of slack)."""
    site, dataset = row["site"], row["dataset"]
    spans: list[tuple[datetime, datetime]] = []
    todo, seen = [int(row["commit_id"])], set()
    fallback = False
    while todo:
        commit_id = todo.pop()
        if commit_id in seen:
            continue
        seen.add(commit_id)
        found = con.sql("SELECT kind, window_start, window_end, sources FROM commits WHERE commit_id = ?",
                        params=[commit_id]).fetchall()  # fmt: skip
        if not found:
            fallback = True
            continue
        kind, start, end, sources = found[0]
        if kind == "window" and start is not None:
            spans.append((start, end))
        elif kind == "compaction" and sources:
            todo.extend(int(c) for c in json.loads(sources))
        else:
            fallback = True
    if fallback:
        low, high = row.get("min_start"), row.get("max_start")
        if row.get("partition") == UNKNOWN_DATE or low is None or high is None:
            low, high = datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(9999, 1, 1, tzinfo=timezone.utc)
        else:
            low, high = low - timedelta(days=2), high + timedelta(seconds=1)
        spans += con.sql(
            "SELECT window_start, window_end FROM commits WHERE site = ? AND dataset = ? AND kind = 'window' "
            "AND window_start < CAST(? AS TIMESTAMPTZ) AND window_end > CAST(? AS TIMESTAMPTZ)",
            params=[site, dataset, ts(high), ts(low)],
        ).fetchall()
    return _merge_spans(spans)


def _merge_spans(spans: Iterable[tuple[datetime, datetime]]) -> list[Window]:
    """Overlapping or touching ``(start, end)`` spans merged into windows, in order."""
    merged: list[list[datetime]] = []
    for start, end in sorted((_as_utc(a), _as_utc(b)) for a, b in spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [Window(a, b) for a, b in merged if a < b]


def _horizon(now: datetime, retention_days: int) -> datetime:
    """The oldest moment the server still safely holds (as the pipeline plans: retention minus a margin)."""
    return clamp_to_retention(now - timedelta(days=retention_days + 1), now, retention_days)


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


def _covered(con: Any, site: str, dataset: str, window: Window, after: int) -> bool:
    """Whether window commits made after commit ``after`` cover all of ``window``."""
    spans = con.sql(
        "SELECT window_start, window_end FROM commits WHERE site = ? AND dataset = ? AND kind = 'window' "
        "AND commit_id > ? AND window_start < CAST(? AS TIMESTAMPTZ) AND window_end > CAST(? AS TIMESTAMPTZ) "
        "ORDER BY window_start",
        params=[site, dataset, after, ts(window.end), ts(window.start)],
    ).fetchall()
    reached = window.start
    for start, end in spans:
        if _as_utc(start) > reached:
            return False
        reached = max(reached, _as_utc(end))
    return reached >= window.end


def _damage_message(rows: Sequence[dict[str, Any]]) -> str:
    """One line about the damaged files of one (site, dataset)."""
    states = sorted({r["state"] for r in rows})
    first = rows[0]
    more = f" and {len(rows) - 1} more" if len(rows) > 1 else ""
    what = {
        "refetching": "its windows are listed again by the next run or backfill",
        "repaired": "their windows were fetched again",
        "lost": "their windows are past Webex's retention: those rows are lost unless the file is restored",
        "restored": "a good copy was put back",
    }
    return (
        f"{len(rows)} damaged lake file(s) left out of the catalog ({', '.join(states)}): {first['path']} "
        f"({first['problem']}){more}; " + "; ".join(what[s] for s in states if s in what)
        + "; see `webex-exporter status` and the table damaged_files"
    )


def _overlapping_failures(con: Any, site: str, dataset: str, window: Window) -> list[dict[str, Any]]:
    """The failed windows of (site, dataset) that overlap ``window``."""
    return (
        con.sql(
            "SELECT * FROM failed_windows WHERE site = ? AND dataset = ? "
            "AND window_start < CAST(? AS TIMESTAMPTZ) AND window_end > CAST(? AS TIMESTAMPTZ)",
            params=[site, dataset, ts(window.end), ts(window.start)],
        )
        .to_arrow_table()
        .to_pylist()
    )


def _clear_failures(con: Any, site: str, dataset: str, window: Window) -> None:
    """Remove ``window`` from the failed windows it overlaps, keeping the parts it does not cover."""
    rows = _overlapping_failures(con, site, dataset, window)
    for row in rows:
        failed = Window(row["window_start"], row["window_end"])
        con.execute(
            "DELETE FROM failed_windows WHERE site = ? AND dataset = ? "
            "AND window_start = CAST(? AS TIMESTAMPTZ) AND window_end = CAST(? AS TIMESTAMPTZ)",
            [site, dataset, ts(failed.start), ts(failed.end)],
        )
        for piece in state_rules.subtract_window(failed, window):
            con.execute(
                "INSERT INTO failed_windows VALUES (?, ?, CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ), ?, ?, "
                "CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ), ?)",
                [site, dataset, ts(piece.start), ts(piece.end), row["error"], row["attempts"],
                 ts(row["first_failed_at"]), ts(row["last_failed_at"]), row["run_id"]],
            )  # fmt: skip


def _record_failure(
    con: Any, site: str, dataset: str, window: Window, error: str, run_id: str | None, now: datetime
) -> None:
    """Add ``window`` to the failed list: a window already inside a failed one bumps that one's
    attempts; failed windows inside the new one are merged into it."""
    rows = _overlapping_failures(con, site, dataset, window)
    where = "site = ? AND dataset = ? AND window_start = CAST(? AS TIMESTAMPTZ) AND window_end = CAST(? AS TIMESTAMPTZ)"
    for row in rows:
        if row["window_start"] <= window.start and row["window_end"] >= window.end:
            con.execute(
                f"UPDATE failed_windows SET attempts = attempts + 1, error = ?, "
                f"last_failed_at = CAST(? AS TIMESTAMPTZ), run_id = ? WHERE {where}",
                [error, ts(now), run_id, site, dataset, ts(row["window_start"]), ts(row["window_end"])],
            )
            return
    attempts, first = 1, now
    for row in rows:
        if row["window_start"] >= window.start and row["window_end"] <= window.end:
            attempts = max(attempts, row["attempts"] + 1)
            first = min(first, row["first_failed_at"])
            con.execute(f"DELETE FROM failed_windows WHERE {where}",
                        [site, dataset, ts(row["window_start"]), ts(row["window_end"])])  # fmt: skip
    con.execute(
        "INSERT INTO failed_windows VALUES (?, ?, CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ), ?, ?, "
        "CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ), ?)",
        [site, dataset, ts(window.start), ts(window.end), error, attempts, ts(first), ts(now), run_id],
    )


def _record_unverified(
    con: Any, site: str, dataset: str, window: Window, commit_id: int, problem: str | None, run_id: str | None,
    now: datetime,
) -> None:
    """List ``window`` as landed-but-unverified (its rows are in ``commit_id``); an entry for the
    same window from an earlier unverified landing keeps its first time and counts one more try."""
    where = "site = ? AND dataset = ? AND window_start = CAST(? AS TIMESTAMPTZ) AND window_end = CAST(? AS TIMESTAMPTZ)"
    args = [site, dataset, ts(window.start), ts(window.end)]
    old = con.sql(f"SELECT attempts, first_seen_at FROM unverified_windows WHERE {where}", params=args).fetchall()
    attempts = 1 + max((r[0] for r in old), default=0)
    first = min((r[1] for r in old), default=now)
    # The earlier unverified commit stays (it may hold rows this one missed); both are retired
    # together by the first verified listing.
    con.execute(f"DELETE FROM unverified_windows WHERE {where}", args)
    con.execute(
        "INSERT INTO unverified_windows VALUES (?, ?, CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ), ?, ?, ?, "
        "CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ), ?)",
        [site, dataset, ts(window.start), ts(window.end), commit_id, (problem or "")[:2000], attempts, ts(first),
         ts(now), run_id],
    )  # fmt: skip


def _retire_verified(con: Any, site: str, dataset: str, window: Window, commit_id: int, now: datetime) -> None:
    """After a verified commit of ``window``: every unverified window now covered by verified
    commits made after its own landing is verified.  Its entry goes, and so do the files of the
    unverified commits of that window (their rows are superseded by complete listings; they may
    hold rows served twice).  Verified rows are never retired this way: they are only replaced
    row by row (same identity, newer commit), so a listing that comes back short loses nothing."""
    entries = con.sql(
        "SELECT * FROM unverified_windows WHERE site = ? AND dataset = ? "
        "AND window_start < CAST(? AS TIMESTAMPTZ) AND window_end > CAST(? AS TIMESTAMPTZ)",
        params=[site, dataset, ts(window.end), ts(window.start)],
    ).to_arrow_table().to_pylist()
    for entry in entries:
        start, end = entry["window_start"], entry["window_end"]
        spans = con.sql(
            "SELECT window_start, window_end FROM commits WHERE site = ? AND dataset = ? AND kind = 'window' "
            "AND coalesce(verified, true) AND commit_id > ? AND window_start < CAST(? AS TIMESTAMPTZ) "
            "AND window_end > CAST(? AS TIMESTAMPTZ) ORDER BY window_start",
            params=[site, dataset, entry["commit_id"], ts(end), ts(start)],
        ).fetchall()
        reached = start
        for s_start, s_end in spans:
            if s_start > reached:
                break
            reached = max(reached, s_end)
        if reached < end:
            continue  # part of it is still unverified
        # Every unverified commit of exactly this window (the entry's and earlier tries').
        old = [r[0] for r in con.sql(
            "SELECT commit_id FROM commits WHERE site = ? AND dataset = ? AND kind = 'window' AND NOT "
            "coalesce(verified, true) AND commit_id < ? AND window_start >= CAST(? AS TIMESTAMPTZ) "
            "AND window_end <= CAST(? AS TIMESTAMPTZ)",
            params=[site, dataset, commit_id, ts(start), ts(end)],
        ).fetchall()]  # fmt: skip
        if old:
            con.execute(
                "INSERT INTO retired_files SELECT path, dataset, site, ?, CAST(? AS TIMESTAMPTZ) FROM manifest "
                "WHERE site = ? AND dataset = ? AND list_contains(?, commit_id) ON CONFLICT DO NOTHING",
                [commit_id, ts(now), site, dataset, old],
            )
            con.execute("DELETE FROM manifest WHERE site = ? AND dataset = ? AND list_contains(?, commit_id)",
                        [site, dataset, old])  # fmt: skip
        con.execute(
            "DELETE FROM unverified_windows WHERE site = ? AND dataset = ? AND window_start = CAST(? AS TIMESTAMPTZ) "
            "AND window_end = CAST(? AS TIMESTAMPTZ)",
            [site, dataset, ts(start), ts(end)],
        )


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


# ---------------------------------------------------------------------- rebuilding the state DB

#: State tables a rebuild takes over from a backup (generations and verified_files start afresh).
_RESTORED_TABLES = ("commits", "manifest", "retired_files", "sync_state", "failed_windows", "unverified_windows",
                    "runs", "run_log", "damaged_files")  # fmt: skip


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
    lock = _ProcessLock(home / "lock")
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
            records = _read_commit_records(lake)
            replayed = sum(1 for cid in sorted(records) if cid > backup_commit and _replay(store, lake, records[cid]))
            adopted = _adopt_unrecorded(store, lake, records, registry, now)
            missing = sum(
                1 for r in store.rows("SELECT path, staged_as FROM manifest")
                if not lake.exists(r["path"]) and not (r["staged_as"] and lake.exists(r["staged_as"]))
            )  # fmt: skip
            seen = [*records, *(int(m.group(1)) for d in registry for f in lake.list_files(d.name)
                                if (m := _PART_COMMIT.search(f)))]  # fmt: skip
            if seen and max(seen) > store.max_commit():
                # Every new commit must number above every _commit already in the lake ("newest wins").
                with store.transaction("recording the rebuild") as con:
                    store.insert_commit(con, commit_id=max(seen), kind="rebuild", site="", dataset="", window=None,
                                        run_id=None, committed_at=now, rows=0, files=0)  # fmt: skip
            gaps = _list_gaps(store, export, now)
            store.execute("UPDATE sync_state SET finished_commit = ?", [store.max_commit()])
            _adopt_generations(store, home / "catalogs", now)
            for key, value in (("lake_root", lake.root_uri), ("rebuilt_at", now.isoformat()),
                               ("rebuilt_from", str(backup) if backup else "commit records")):  # fmt: skip
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
        _fsync_dir(home)
        _log.warning("rebuilt the state DB %s (backup %s, %d commit records replayed)", state_path, backup, replayed)
        return RebuildResult(state_path, backup, backup_commit, replayed, adopted, missing, gaps, max_commit,
                             tuple(moved))  # fmt: skip
    finally:
        lock.release()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    for path in _backups(directory):
        try:
            store.execute(f"ATTACH {quote_str(str(path))} AS webex_restore (READ_ONLY)",
                          action=f"opening backup {path}")
        except WarehouseError as exc:
            _log.warning("skipping unreadable state backup %s: %s", path, exc)
            continue
        try:
            root = store.value("SELECT value FROM webex_restore.main.meta WHERE key = 'lake_root'")
            if root and root != lake.root_uri:
                _log.warning("skipping state backup %s: it belongs to the lake at %s", path, root)
                continue
            with store.transaction(f"restoring backup {path}") as con:
                for table in _RESTORED_TABLES:
                    have = [r[0] for r in con.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_catalog = ? "
                        "AND table_schema = 'main' AND table_name = ? ORDER BY ordinal_position", [database, table],
                    ).fetchall()]  # fmt: skip
                    theirs = {r[0] for r in con.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'webex_restore' "
                        "AND table_schema = 'main' AND table_name = ?", [table],
                    ).fetchall()}  # fmt: skip
                    columns = ", ".join(quote_ident(c) for c in have if c in theirs)
                    if columns:
                        con.execute(f"INSERT INTO main.{table} ({columns}) "
                                    f"SELECT {columns} FROM webex_restore.main.{table}")  # fmt: skip
            return path, store.max_commit()
        except WarehouseError as exc:
            _log.warning("skipping unreadable state backup %s: %s", path, exc)
        finally:
            store.execute("DETACH webex_restore")
    return None, 0


def _read_commit_records(lake: Lake) -> dict[int, dict[str, Any]]:
    """Every commit record in the lake by commit number: segments, then loose records (a record
    in both, left by a crash while folding, is the same record)."""
    records: dict[int, dict[str, Any]] = {}
    names = lake.list_files(COMMITS_DIR)
    leaves = [(n, n.rsplit("/", 1)[-1]) for n in names]
    for name, leaf in sorted(leaves, key=lambda x: x[1]):
        if _SEGMENT_NAME.match(leaf):
            for line in lake.read_bytes(name).splitlines():
                if line.strip():
                    record = _parse_record(line, name)
                    if record:
                        records[int(record["commit_id"])] = record
    for name, leaf in leaves:
        if _RECORD_NAME.match(leaf):
            record = _parse_record(lake.read_bytes(name), name)
            if record:
                records[int(record["commit_id"])] = record
    return records


def _parse_record(data: bytes, name: str) -> dict[str, Any] | None:
    try:
        record = json.loads(data)
        int(record["commit_id"])
        return record
    except (ValueError, KeyError, TypeError) as exc:
        _log.warning("skipping unreadable commit record in %s: %s", name, exc)
        return None


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
    window = Window(_when(bounds[0]), _when(bounds[1])) if bounds else None  # type: ignore[arg-type]
    verified = record.get("verified", True) is not False
    with store.transaction(f"replaying commit record {commit_id}") as con:
        store.insert_commit(
            con, commit_id=commit_id, kind=kind, site=site, dataset=dataset,
            window=(window.start, window.end) if window else None, run_id=record.get("run_id"), committed_at=at,
            rows=int(record.get("rows") or 0), files=len(record.get("files") or ()),
            cursor_to=_when(record.get("cursor_to")), verified=verified, sources=record.get("sources"),
        )  # fmt: skip
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
            )  # fmt: skip
        for path in record.get("retires") or ():
            con.execute("DELETE FROM manifest WHERE path = ?", [path])
            if lake.exists(path):  # not deleted yet: the reaper will
                con.execute("INSERT INTO retired_files VALUES (?, ?, ?, ?, CAST(? AS TIMESTAMPTZ)) "
                            "ON CONFLICT DO NOTHING", [path, dataset, site, commit_id, ts(at)])  # fmt: skip
        if kind == "window" and window is not None:
            store.advance_cursor(con, site=site, dataset=dataset, cursor_to=_when(record.get("cursor_to")),
                                 commit_id=commit_id, at=at)  # fmt: skip
            _clear_failures(con, site, dataset, window)
            if verified:
                _retire_verified(con, site, dataset, window, commit_id, at)
            else:
                _record_unverified(con, site, dataset, window, commit_id, record.get("problem"),
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
                _log.warning("not adopting unreadable lake file %s: %s", lake.uri(rel), exc)
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
                )  # fmt: skip
                if not con.execute("SELECT count(*) FROM commits WHERE commit_id = ?", [commit_id]).fetchall()[0][0]:
                    store.insert_commit(con, commit_id=commit_id, kind="adopted", site=site, dataset=ds.name,
                                        window=None, run_id=None, committed_at=now, rows=rows, files=1)  # fmt: skip
            _log.warning("adopted lake file %s, which no commit record names", lake.uri(rel))
            adopted += 1
    return adopted


def _list_gaps(store: StateStore, export: ExportSettings, now: datetime) -> int:
    """Record as failed windows the parts of ``[retention horizon, cursor)`` of every (site,
    dataset) that no window commit and no failed window covers; returns how many."""
    horizon = _horizon(now, export.retention_days)
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
        for window in _merge_spans((r["a"], r["b"]) for r in spans):
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
                    _record_failure(con, site, dataset, piece,
                                    "no commit covers it (found when the state DB was rebuilt)", None, now)  # fmt: skip
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
