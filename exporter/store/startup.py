"""What opening a warehouse read-write does before any work: refuse a state DB and lake that do
not belong together, and finish or discard whatever a crash left behind (pending moves, staging
orphans, unrecorded catalog generations, temporary files, commit records above the newest commit).

Called by :meth:`exporter.store.warehouse.Warehouse.open` once it holds the process lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..errors import WarehouseError
from .catalog_readers import pointer_path
from .commit_records import drop_uncommitted_records
from .lake import STAGING_DIR, Lake, storage_errors
from .run_log import record_crashed
from .state_db import StateStore

__all__ = ["check_lake_root", "recover", "remove_fresh_state", "settle"]


def check_lake_root(store: StateStore, lake: Lake, state_path: Path, dataset_names: Iterable[str]) -> None:
    """Refuse a state DB that belongs to another lake, and a lake whose state DB is gone:
    either way the manifest and the files would disagree and history would vanish from the
    catalog (or be deleted as orphans)."""
    recorded = store.value("SELECT value FROM meta WHERE key = 'lake_root'")
    files = store.rows("SELECT path FROM manifest ORDER BY commit_id DESC LIMIT 3")
    if recorded and recorded != lake.root_uri and files:
        if not all(lake.exists(r["path"]) for r in files):
            raise WarehouseError(
                f"state DB {state_path} belongs to the lake at {recorded}, but warehouse.root is "
                f"{lake.root_uri} and its files are not there"
            )
    if not files and not recorded:
        found = [p for name in dataset_names for p in lake.list_files(name) if p.endswith(".parquet")]
        if found:
            raise WarehouseError(
                f"lake {lake.root_uri} already holds {len(found)} Parquet files but the state DB "
                f"{state_path} is new: the manifest that says which files are committed is missing; "
                "rebuild it with `webex-exporter state rebuild` (from its backups and the lake's commit "
                "records), or move the lake aside, before exporting"
            )
    store.execute(
        "INSERT INTO meta VALUES ('lake_root', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [lake.root_uri],
    )


def recover(
    store: StateStore, lake: Lake, *, state_path: Path, catalog_path: Path, generations_dir: Path, backups_dir: Path
) -> None:
    """Finish or discard what a crash left behind."""
    record_crashed(store)
    settle(store, lake)
    pending = {staged for staged, _ in store.pending_moves()}
    for rel in lake.list_files(STAGING_DIR):
        if rel not in pending:
            lake.delete(rel)  # written, never committed: not part of any table
    recorded = {Path(f).name for g in store.generations() for f in (g["file"], g.get("reader_file")) if f}
    with storage_errors(f"cleaning {generations_dir}"):
        for leftover in generations_dir.iterdir():
            if leftover.name not in recorded:
                leftover.unlink()  # a publish that crashed before it was recorded
        for temp in catalog_path.parent.glob(f".{catalog_path.name}.*.tmp"):
            temp.unlink()
        pointer = pointer_path(catalog_path)
        for temp in pointer.parent.glob(f".{pointer.name}.*.tmp"):
            temp.unlink()
        for temp in backups_dir.glob(".*.tmp*"):
            temp.unlink()
    drop_uncommitted_records(store, lake, state_path)


def settle(store: StateStore, lake: Lake) -> None:
    """Move committed files whose move did not happen (crash, S3 hiccup) into place.  A file
    that is in neither place stays pending: the lake check records it as damaged."""
    moved = []
    for staged, final in store.pending_moves():
        if not lake.exists(staged) and not lake.exists(final):
            continue
        lake.place(staged, final)
        moved.append(final)
    store.mark_placed(moved)


def remove_fresh_state(state_path: Path) -> None:
    """Remove the empty state DB a refused open just created (e.g. for a lake whose state DB
    is lost), so that the next attempt, and ``state rebuild``, see the loss as it is."""
    for path in (state_path, state_path.with_name(state_path.name + ".wal")):
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass
