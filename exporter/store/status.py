"""Status and gap reporting: what each (site, dataset) holds and how current it is.

:class:`StatusRow` is one line of ``status``.  :meth:`exporter.store.warehouse.Warehouse.status`
builds the rows from the open state DB (:func:`store_status`); :func:`read_status` builds the same
rows from the *published catalog*, read-only and without the writer lock, so ``status`` works while
an export runs.  :func:`dataset_state` turns the state DB's rows into a
:class:`~exporter.store.state.DatasetState` for both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..config import ExportSettings, WarehouseSettings
from ..model.dataset_spec import Dataset
from ..model.windows import Window
from . import state as state_rules
from .catalog import dataset_view_sql
from .catalog_readers import open_reader
from .lake import Lake
from .state import DatasetState, FailedWindow, LastRun, UnverifiedWindow
from .state_db import StateStore, duckdb_errors, quote_ident

__all__ = ["StatusRow", "dataset_state", "read_status", "rows_held", "status_rows", "store_status"]


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


def dataset_state(
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
                         u["first_seen_at"], u["last_seen_at"], u["commit_id"])
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
        rest_switched_at=row.get("rest_switched_at"),
    )


def status_rows(
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


def store_status(
    store: StateStore,
    state_of: Callable[[str, str], DatasetState],
    now: datetime,
    export: ExportSettings,
    *,
    expected: Iterable[tuple[str, str]] = (),
    held: dict[tuple[str, str], int] | None = None,
) -> list[StatusRow]:
    """The rows of :meth:`Warehouse.status` from the open state DB ``store``: one per (site,
    dataset) it knows, named in ``expected`` or with damaged files; ``state_of`` gives each one's
    :class:`DatasetState`, ``held`` the rows held (``None``: not counted)."""
    pairs = sorted(set(store.pairs()) | set(expected))
    files = {
        (r["site"], r["dataset"]): int(r["n"])
        for r in store.rows("SELECT site, dataset, count(*) AS n FROM manifest GROUP BY ALL")
    }
    damaged = {
        (r["site"], r["dataset"]): int(r["n"])
        for r in store.rows(
            "SELECT site, dataset, count(*) AS n FROM damaged_files "
            "WHERE state NOT IN ('repaired', 'restored') GROUP BY ALL"
        )
    }
    pairs = sorted(set(pairs) | set(damaged))
    states = [state_of(site, dataset) for site, dataset in pairs]
    return status_rows(states, now, export, files, held, damaged)


def rows_held(store: StateStore, lake: Lake, datasets: Iterable[Dataset]) -> dict[tuple[str, str], int]:
    """Deduplicated row count per (site, dataset): distinct (site, natural key), read from the
    manifest's files in ``lake`` (the caller makes sure the lake is readable)."""
    out: dict[tuple[str, str], int] = {}
    for ds in datasets:
        files = [(lake.uri(r["path"]), json.loads(r["columns"])) for r in store.manifest(ds.name)]
        if not files:
            continue
        for r in store.rows(f"SELECT site, count(*) AS n FROM ({dataset_view_sql(ds, files)}) GROUP BY site"):
            out[(r["site"], ds.name)] = int(r["n"])
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
        return status_rows(
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
                        for r in con.sql(sql).to_arrow_table().to_pylist()]

            info = rows("SELECT * FROM catalog_info")[0]
            sync = {(r["site"], r["dataset"]): r for r in rows("SELECT * FROM sync_state")}
            failed: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for r in rows("SELECT * FROM failed_windows ORDER BY window_start"):
                failed.setdefault((r["site"], r["dataset"]), []).append(r)
            unverified: dict[tuple[str, str], list[dict[str, Any]]] = {}
            has_unverified = rows("SELECT count(*) AS n FROM information_schema.tables "
                                  "WHERE table_name = 'unverified_windows'")[0]["n"]
            for r in rows("SELECT * FROM unverified_windows ORDER BY window_start") if has_unverified else ():
                unverified.setdefault((r["site"], r["dataset"]), []).append(r)
            files = {(r["site"], r["dataset"]): int(r["n"])
                     for r in rows("SELECT site, dataset, count(*) AS n FROM manifest GROUP BY ALL")}
            damaged: dict[tuple[str, str], int] = {}
            has_damaged = rows("SELECT count(*) AS n FROM information_schema.tables "
                               "WHERE table_name = 'damaged_files'")[0]["n"]
            sql = ("SELECT site, dataset, count(*) AS n FROM damaged_files "
                   "WHERE state NOT IN ('repaired', 'restored') GROUP BY ALL")
            for r in rows(sql) if has_damaged else ():
                damaged[(r["site"], r["dataset"])] = int(r["n"])
            held: dict[tuple[str, str], int] | None = None
            if count_rows and (info["lake_readable"] or not files):
                fs = None
                if str(info["lake_root"]).startswith("s3://") and files:
                    fs = Lake(str(info["lake_root"]), s3_endpoint_url=settings.s3_endpoint_url,
                              s3_region=settings.s3_region).duckdb_filesystem()
                    if fs is not None:
                        con.register_filesystem(fs)
                readable = fs is not None or not str(info["lake_root"]).startswith("s3://") or not files
                counts: dict[tuple[str, str], int] = {}
                for name in sorted({d for _, d in files}) if readable else ():
                    for r in rows(f"SELECT site, count(*) AS n FROM {quote_ident(name)} GROUP BY site"):
                        counts[(r["site"], name)] = int(r["n"])
                held = counts if readable else None
        finally:
            con.close()
    pairs = sorted(set(sync) | set(failed) | set(unverified) | set(files) | set(expected) | set(damaged))
    states = [
        dataset_state(s, d, sync.get((s, d)), failed.get((s, d), ()), (), export.lookback_for(d),
                       unverified.get((s, d), ()))
        for s, d in pairs
    ]
    return status_rows(states, now, export, files, held, damaged)
