"""Landing fetched windows: each window's rows and cursor move in one warehouse commit, with
windows that finish while a commit runs grouped into one range commit (group commit); a window
that cannot be listed is recorded as failed, to be listed again next run."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import pyarrow as pa

from ..errors import ExporterError
from ..model.windows import Window
from ..obs.logs import event
from .context import DatasetScope

__all__ = ["Ready", "land", "progress_key", "record_failed_window"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: Most rows landed by one group commit.
GROUP_COMMIT_MAX_ROWS = 50_000


def progress_key(window: Window) -> int:
    """Which listing a progress count belongs to."""
    return hash(window)


async def _finish_in_thread(func: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
    """Run a warehouse commit in a worker thread and wait for it even if we are cancelled: the
    caller holds the commit lock, and releasing it while the thread still writes would let a
    second commit start beside the first."""
    future = asyncio.ensure_future(asyncio.to_thread(func, *args, **kwargs))
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(future)
            break
        except asyncio.CancelledError:
            if future.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


@dataclass(slots=True)
class Ready:
    """A fetched window waiting for its commit."""

    window: Window
    table: pa.Table | None
    done: asyncio.Future[None]
    problem: str | None = None  # set: the listing could not be verified; lands alone, flagged


async def land(scope: DatasetScope, window: Window, table: pa.Table | None, problem: str | None = None) -> None:
    """Commit one window's rows (None: a window known to be empty) and move the cursor;
    ``problem``: why its listing could not be verified (it lands flagged, in a commit of its own).

    Group commit: while a commit runs, windows of the same dataset that finish queue up; the next
    holder of the commit lock lands each *contiguous* run of them as one range commit (atomic
    like any commit: all or nothing).  A commit costs tens of milliseconds whatever its size, so
    under load this removes most of them; with nothing queued it adds no delay.
    """
    ctx = scope.ctx
    key = (scope.site.name, scope.dataset.name)
    ready = Ready(window, table, asyncio.get_running_loop().create_future(), problem)
    ctx.ready.setdefault(key, []).append(ready)
    async with ctx.commit_lock:
        if not ready.done.done():
            queued, ctx.ready[key] = ctx.ready[key], []
            try:
                for run in _contiguous_ready(queued):
                    await _commit_run(scope, run)
            except BaseException as exc:
                for item in queued:
                    if item.done.done():
                        continue
                    if isinstance(exc, asyncio.CancelledError):
                        item.done.cancel()  # a stop: the waiters are being cancelled too
                    else:
                        item.done.set_exception(exc)
                        # A waiter cancelled meanwhile never reads it: mark it read, so a clean stop
                        # logs no "Future exception was never retrieved" traceback.
                        item.done.add_done_callback(_retrieve)
                raise
    await ready.done


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _contiguous_ready(queued: list[Ready]) -> list[list[Ready]]:
    """Contiguous runs of ready windows, each at most ``GROUP_COMMIT_MAX_ROWS`` rows: a group only
    needs to be big enough to amortise a commit's fixed cost, and landing copies it a few times."""
    runs: list[list[Ready]] = []
    rows = 0
    for item in sorted(queued, key=lambda r: r.window.start):
        size = item.table.num_rows if item.table is not None else 0
        alone = item.problem is not None or runs and runs[-1][-1].problem is not None
        if runs and not alone and runs[-1][-1].window.end == item.window.start and rows + size <= GROUP_COMMIT_MAX_ROWS:
            runs[-1].append(item)
            rows += size
        else:
            runs.append([item])
            rows = size
    return runs


async def _commit_run(scope: DatasetScope, run: list[Ready]) -> None:
    """One commit for a contiguous run of ready windows (the caller holds the commit lock)."""
    ctx, site, dataset, outcome = scope.ctx, scope.site, scope.dataset, scope.outcome
    window = run[0].window if len(run) == 1 else Window(run[0].window.start, run[-1].window.end)
    tables = [r.table for r in run if r.table is not None and r.table.num_rows]
    table = pa.concat_tables(tables) if len(tables) > 1 else (tables[0] if tables else None)
    moves = [scope.cursor_plan.finish(r.window) for r in run]
    cursor_to = max((m for m in moves if m is not None), default=None)
    # Once a commit starts it finishes, even if the run is being stopped.
    await _finish_in_thread(
        ctx.warehouse.commit_window,
        site.name, dataset.name, window, table, cursor_to=cursor_to, run_id=ctx.report.run_id,
        verified=run[0].problem is None, problem=run[0].problem,
    )
    ctx.dirty = True
    rows = table.num_rows if table is not None else 0
    outcome.windows_committed += 1
    if run[0].problem is not None:
        outcome.windows_unverified += 1
        outcome.errors.append(f"{window}: landed unverified: {run[0].problem}")
        event("window landed unverified", level=logging.WARNING, site=site.name, dataset=dataset.name, window=str(window),
              records=rows, problem=run[0].problem)
    outcome.records += rows
    if cursor_to is not None:
        outcome.cursor = cursor_to
    for item in run:
        item_rows = item.table.num_rows if item.table is not None else 0
        scope.tracker.window_done(item_rows, windows=scope.cursor_plan.covered(item.window),
                                  window_key=progress_key(item.window))
        item.done.set_result(None)


async def record_failed_window(scope: DatasetScope, window: Window, exc: ExporterError) -> None:
    """Record ``window`` as failed (listed again next run) and let the cursor pass it; ``exc``
    carries the site, dataset and window from here on (the one boundary of a window's failure).

    The record and the log name ``window`` itself, not ``exc.window``: one exception can fail
    several windows (a packed listing), and only the first one's stays on it."""
    ctx, site, dataset, outcome = scope.ctx, scope.site, scope.dataset, scope.outcome
    exc.add_context(site=site.name, dataset=dataset.name, window=window)
    message = f"{type(exc).__name__}: {exc}"
    outcome.windows_failed += 1
    outcome.errors.append(f"{window}: {message}")
    async with ctx.commit_lock:
        cursor_to = scope.cursor_plan.finish(window)
        await _finish_in_thread(
            ctx.warehouse.fail_window,
            site.name, dataset.name, window, message, run_id=ctx.report.run_id, cursor_to=cursor_to,
        )
    event("window failed", level=logging.ERROR, site=site.name, dataset=dataset.name, window=str(window), error=message)
