"""The :class:`~exporter.store.warehouse.Warehouse`'s handle on its files: where it keeps them
(``<catalog dir>/.webex-exporter/``: the state DB, catalog generations, backups, the lock), the
process lock that lets one process write a warehouse at a time, and opening and closing.

Opening takes the lock, opens the lake and the state DB, refuses a state DB and lake that do not
belong together and finishes or discards whatever a crash left (:mod:`exporter.store.startup`),
then publishes; closing publishes what changed, closes the state DB and releases the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Self

from ..config import ExportSettings, WarehouseSettings
from ..errors import WarehouseError
from ..model.dataset_spec import Dataset
from ..model.datasets import ALL_DATASETS
from . import startup
from .lake import Lake, storage_errors
from .lake_health import LakeHealth
from .process_lock import ProcessLock as _ProcessLock
from .publishing import PublishResult
from .state_db import StateStore

__all__ = ["WarehouseHandle", "DEFAULT_RETIRE_GRACE_SECONDS"]

#: How long a superseded catalog generation (and the files only it names) is kept at least, even
#: when no reader seems to hold it: covers a reader that resolved the path just before the swap.
DEFAULT_RETIRE_GRACE_SECONDS = 300.0


class WarehouseHandle:
    """Paths, process lock, opening and closing of one warehouse; the operations are
    :class:`~exporter.store.warehouse.Warehouse`'s (see it for the constructor's arguments)."""

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

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        # Leaving on an error: close without publishing (the next open publishes anyway), so a
        # second failure cannot hide the first.
        self.close(publish=exc_type is None)

    def open(self) -> Self:
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
                startup.check_lake_root(self._store, self._lake, self.state_path, self.datasets)
                startup.recover(self._store, self._lake, state_path=self.state_path, catalog_path=self.catalog_path,
                                generations_dir=self.generations_dir, backups_dir=self.backups_dir)
                self.publish(force=True)
            except BaseException:
                self._close_quietly()
                if fresh:  # nothing was committed to it: leave no empty state DB behind a refusal
                    startup.remove_fresh_state(self.state_path)
                raise
            return self

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

    def publish(self, *, force: bool = False) -> PublishResult:
        """Rebuild and swap in the reader catalog: :meth:`exporter.store.warehouse.Warehouse.publish`
        (opening and closing publish, the catalog is the subclass's job)."""
        raise NotImplementedError
