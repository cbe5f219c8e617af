"""Landing: one fetched window committed exactly once, a window that could not be completed
recorded as failed, a dataset the site no longer serves recorded as unavailable.

A window lands in three steps (see :mod:`exporter.store.warehouse`): staged files, one state-DB
transaction (manifest, commit, cursor, failed list, commit record), then the move into place.
:class:`~exporter.store.warehouse.Warehouse` calls these under its lock.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import pyarrow as pa

from ..errors import WarehouseError
from ..model.dataset_spec import Dataset
from ..model.windows import Window
from ..obs.logs import event
from ..records.identity import VERIFIED_COLUMN, identity_key, with_occurrences
from .commit_records import record_path, write_commit_record
from .lake import PRELIMINARY_COLUMN, Lake, StagedFile
from .lake_shaping import conform, dedupe_latest, split_partitions, with_lineage
from .state import REST_SWITCH_NOTE
from .state_db import StateStore, ts
from .window_ledger import clear_failures, record_failure, record_unverified, retire_verified

__all__ = ["CommitResult", "Span", "as_window", "check_site", "land_window", "place", "record_failed_window",
           "record_unavailable"]

#: Site names as the configuration allows them: safe as a path segment on every filesystem.
_SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True, slots=True)
class CommitResult:
    """What one :meth:`~exporter.store.warehouse.Warehouse.commit_window` landed."""

    commit_id: int
    site: str
    dataset: str
    window: Window
    rows: int
    files: tuple[str, ...]
    cursor: datetime | None
    seconds: float


class Span(Protocol):
    """Anything with ``start`` and ``end`` instants (a :class:`Window`, or a caller's own pair)."""

    @property
    def start(self) -> datetime: ...

    @property
    def end(self) -> datetime: ...


def land_window(
    store: StateStore,
    lake: Lake,
    ds: Dataset,
    site: str,
    window: Window,
    table: pa.Table | None,
    *,
    cursor_to: datetime | None,
    run_id: str | None,
    verified: bool,
    problem: str | None,
    now: datetime,
    hook: Callable[[str], None],
    on_commit: Callable[[], None],
) -> CommitResult:
    """Commit one window (see :meth:`~exporter.store.warehouse.Warehouse.commit_window`);
    ``on_commit`` runs once the transaction is durable, ``hook`` at each step (crash tests)."""
    started = time.perf_counter()
    dataset = ds.name
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
        hook("staged")
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
            # A commit disproves "retired, nowhere to go", not a switch to REST (it is REST committing).
            con.execute("UPDATE sync_state SET unavailable = NULL, unavailable_since = NULL "
                        "WHERE site = ? AND dataset = ? AND NOT starts_with(coalesce(unavailable, ''), ?)",
                        [site, dataset, REST_SWITCH_NOTE])
            if verified:
                retire_verified(con, site, dataset, window, commit_id, now)
            else:
                record_unverified(con, site, dataset, window, commit_id, problem, run_id, now)
            # Last inside the transaction: the lake says what this commit did before it counts.
            write_commit_record(lake, con, commit_id)
            hook("recorded")
    except BaseException:
        for name in [f.staged for f in staged] + [record_path(commit_id)]:
            try:
                lake.delete(name)  # the record too, if the transaction failed after writing it
            except WarehouseError:
                pass  # an orphan in staging (or a record above the newest commit) goes at the next start
        raise
    on_commit()
    hook("committed")
    try:
        place(store, lake, staged)
    except WarehouseError as exc:
        # The window is committed; only the move is pending.  The next publish (or start)
        # finishes it, and no catalog names these files before that.
        event("committed window: moving its files is pending", level=logging.WARNING, site=site,
              dataset=dataset, window=str(window), error=str(exc))
    hook("placed")
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


def place(store: StateStore, lake: Lake, staged: Sequence[StagedFile]) -> None:
    """Move committed files into place; a failure leaves the move pending (finished by the
    next publish or start) and raises - the commit itself stands."""
    for f in staged:
        lake.place(f.staged, f.final)
    store.mark_placed([f.final for f in staged])


def record_failed_window(
    store: StateStore, site: str, dataset: str, window: Window, message: str, *, run_id: str | None,
    cursor_to: datetime | None, now: datetime,
) -> None:
    """Add ``window`` to the failed list (and move the cursor to ``cursor_to``, if given), in one
    transaction."""
    with store.transaction(f"recording failed window {site}/{dataset} {window}") as con:
        record_failure(con, site, dataset, window, message[:2000], run_id, now)
        if cursor_to is not None:
            store.advance_cursor(con, site=site, dataset=dataset, cursor_to=cursor_to, commit_id=None, at=now)


def record_unavailable(
    store: StateStore, site: str, dataset: str, message: str, *, now: datetime, rest_switched_at: datetime | None
) -> None:
    """Note in ``sync_state`` why the site does not serve ``dataset`` (since when: the first note)
    and, for an ``auto`` site's switch to REST, when it switched; like the note, a later note
    replaces that time and the dataset's next commit clears it."""
    with store.transaction(f"recording {site}/{dataset} as unavailable") as con:
        con.execute(
            """
            INSERT INTO sync_state (site, dataset, unavailable, unavailable_since, rest_switched_at)
            VALUES (?, ?, ?, CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ))
            ON CONFLICT (site, dataset) DO UPDATE SET unavailable = excluded.unavailable,
                unavailable_since = coalesce(sync_state.unavailable_since, excluded.unavailable_since),
                rest_switched_at = excluded.rest_switched_at
            """,
            [site, dataset, message[:2000], ts(now), ts(rest_switched_at)],
        )


def check_site(site: str) -> None:
    """Site names become path segments (``site=<name>``): refuse anything the config would."""
    if not isinstance(site, str) or not _SITE_NAME.match(site):
        raise WarehouseError(f"invalid site name {site!r}: letters, digits, '_', '.', '-' (max 63)")


def as_window(window: Span) -> Window:
    """Accept any ``(start, end)`` object; the warehouse stores :class:`Window` bounds."""
    if isinstance(window, Window):
        return window
    try:
        return Window(window.start, window.end)
    except (AttributeError, ValueError) as exc:
        raise WarehouseError(f"not a window: {window!r} ({exc})") from None
