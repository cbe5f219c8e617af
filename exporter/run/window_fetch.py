"""Fetching one window: its final history (and preliminary history where final may be
incomplete) listed through the site's client, then handed to :mod:`landing`; what each listing
cost is folded into the dataset's outcome."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from datetime import timedelta
from zoneinfo import ZoneInfo

import pyarrow as pa

from ..errors import ParseError, RetryableError, WindowFailedError
from ..model.windows import Window
from ..obs.logs import event
from ..webex.client import WebexClient
from ..webex.gather import run_all
from ..webex.paging import DEFAULT_MAX_RESCANS, fetch_window, new_listing_age
from ..webex.window_fetch import Probe, WindowFetch
from .context import DatasetScope, RunContext
from .landing import land, progress_key, record_failed_window
from .site_setup import zone_for

__all__ = ["WINDOW_ERRORS", "export_window", "is_recent"]

#: What fails one listing but not the site: the window is recorded as failed (or a pack listed
#: window by window); auth and site pauses go up to the site instead.
WINDOW_ERRORS = (WindowFailedError, ParseError, RetryableError)


async def export_window(
    scope: DatasetScope,
    client: WebexClient,
    window: Window,
    *,
    gate: asyncio.Semaphore | None = None,
    record_failure: bool = True,
    first: Probe | None = None,
) -> None:
    """Fetch one window (holding a slot of ``gate``) and land it (after giving the slot back, so
    fetching goes on while commits run).  A window that cannot be listed is recorded as failed,
    or with ``record_failure=False`` its error is raised to the caller."""
    ctx, site, dataset, outcome = scope.ctx, scope.site, scope.dataset, scope.outcome
    zone = zone_for(ctx, site, dataset)
    started = asyncio.get_running_loop().time()
    try:
        async with gate or contextlib.nullcontext():
            if ctx.stop.is_set():
                return
            fetched, tables, stats = await _fetch_final_and_preliminary(scope, client, window, zone, first,
                                                                        packed=not record_failure)
    except WINDOW_ERRORS as exc:
        if not record_failure:  # a pack: its caller lists the windows again, and says so
            exc.add_context(site=site.name, dataset=dataset.name, window=window)
            raise
        await record_failed_window(scope, window, exc)
        return
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    for fetch in stats:
        outcome.add(fetch)
    problems = [f"{'preliminary ' if f.preliminary else ''}{f.problem}" for f in stats if not f.verified]
    await land(scope, window, table, problem="; ".join(problems) if problems else None)
    elapsed = asyncio.get_running_loop().time() - started
    event(
        "window committed", site=site.name, dataset=dataset.name, window=str(window), records=table.num_rows,
        total=fetched.total, pages=fetched.pages, requests=fetched.requests, retries=fetched.retries,
        throttles=fetched.throttles, seconds=round(elapsed, 3),
        unknown_elements=sum(fetched.unknown_elements.values()), bad_values=sum(fetched.bad_values.values()),
    )


async def _fetch_final_and_preliminary(
    scope: DatasetScope, client: WebexClient, window: Window, zone: ZoneInfo, first: Probe | None, *, packed: bool,
) -> tuple[WindowFetch, list[pa.Table], list[WindowFetch]]:
    """The window's final history, plus preliminary history where final may not be complete yet.

    Both are listed at once and as one listing (one age), so the preliminary pages of a recent
    window do not wait behind every listing that started after its final one.  What a failed
    listing cost goes into ``outcome`` here (a successful one's, when it lands)."""
    ctx, site, dataset = scope.ctx, scope.site, scope.dataset
    age = new_listing_age()
    lost = scope.outcome.add
    # A packed listing that cannot be verified at once is not rescanned: its windows are listed
    # one by one (each rescanned, and landed unverified at worst), so a bad day costs one day.
    rescans = 0 if packed else DEFAULT_MAX_RESCANS
    listings = [fetch_window(
        client, dataset, window, site=site, zone=zone, age=age, on_failure=lost, first=first,
        max_window_records=ctx.settings.export.max_window_records, max_rescans=rescans, land_unverified=not packed,
        on_page=functools.partial(scope.tracker.page, window_key=progress_key(window)),
    )]
    if site.preliminary and dataset.preliminary_operation and is_recent(ctx, window):
        listings.append(fetch_window(
            client, dataset, window, site=site, zone=zone, preliminary=True, age=age, on_failure=lost,
            max_window_records=ctx.settings.export.max_window_records, max_rescans=rescans, land_unverified=not packed,
        ))
    stats = await run_all(listings, discarded=lost)  # one failed: the other's cost still counts
    return stats[0], [fetch.table for fetch in stats], stats


def is_recent(ctx: RunContext, window: Window) -> bool:
    """Preliminary history matters only where final history may not be complete yet."""
    return window.end > ctx.now - timedelta(days=max(ctx.settings.export.lookback_days, 2))

