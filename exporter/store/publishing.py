"""Publishing: one new generation of the reader catalog built from the committed files and
state, recorded in ``generations`` and swapped in atomically under ``settings.catalog``.

:meth:`exporter.store.warehouse.Warehouse.publish` decides whether to publish (something
changed, or a reader holds the catalog read-write) and settles and checks the lake first;
:func:`publish_generation` does the rest.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import WarehouseError
from ..model.dataset_spec import Dataset
from .catalog import build_catalog, swap_in
from .catalog_readers import write_pointer
from .lake import Lake
from .state_db import StateStore, ts

__all__ = ["PublishResult", "publish_generation"]


@dataclass(frozen=True, slots=True)
class PublishResult:
    """One :meth:`~exporter.store.warehouse.Warehouse.publish`: the catalog generation now at ``path``."""

    generation: int
    path: Path
    files: int
    max_commit: int
    seconds: float
    skipped: bool = False


def publish_generation(
    store: StateStore,
    lake: Lake,
    *,
    catalog_path: Path,
    generations_dir: Path,
    lake_readable: bool,
    datasets: Sequence[Dataset],
    now: datetime,
    started: float,
    hook: Callable[[str], None],
) -> PublishResult:
    """Build generation ``max(generation) + 1`` into ``generations_dir`` (plus the copy the
    exporter's own readers open), record it, and swap it in as ``catalog_path``.  ``started``:
    the ``time.perf_counter()`` the publish began at."""
    generation = int(store.value("SELECT coalesce(max(generation), 0) FROM generations") or 0) + 1
    target = generations_dir / f"webex-{generation:08d}.duckdb"
    reader_copy = generations_dir / f"webex-{generation:08d}.readonly.duckdb"
    max_commit = store.max_commit()
    previous = [Path(g["file"]) for g in store.generations()]
    files = build_catalog(
        store, target, lake, generation=generation, max_commit=max_commit,
        published_at=now, lake_readable=lake_readable, datasets=list(datasets),
        previous=previous[-1] if previous else None,
    )
    # The exporter's own readers open this copy (another inode), through the pointer file:
    # whoever holds webex.duckdb, even read-write, holds no lock on it.
    _copy_durably(target, reader_copy)
    hook("publish-built")
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
    hook("publish-recorded")
    swap_in(target, catalog_path)
    write_pointer(catalog_path, reader_copy, generation)
    hook("publish-swapped")
    return PublishResult(generation, catalog_path, files, max_commit, time.perf_counter() - started)


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
