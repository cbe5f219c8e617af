"""One (site, dataset) exported through the Webex REST APIs, into the same warehouse.

The windows are planned exactly as for the XML source (cursor − lookback, failed and unverified
windows again, nothing beyond the API's reach), then contiguous windows are joined into spans of
at most the listing's ``window_days`` (30 days for the meeting reports): one span, one listing
walked to its last ``rel="next"`` page by :class:`exporter.webex.rest.client.RestClient`, one commit
through the same group-commit path as XML windows (``landing.land``).  A span that cannot be
listed is recorded as a failed window and listed again by the next run; a span whose walk could
not be shown complete lands with every row seen, flagged unverified, and is listed again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pyarrow as pa

from ..config import RestSettings, SiteSettings
from ..errors import (
    AuthError,
    FatalSiteError,
    OperationRetiredError,
    ParseError,
    RetryableError,
    SitePausedError,
    WindowFailedError,
)
from ..model.dataset_spec import SOURCE_COLUMN, Dataset
from ..model.runs import DatasetOutcome
from ..model.windows import Window
from ..obs.logs import event
from .context import DatasetScope, RunContext, first_leaf
from .landing import land, record_failed_window
from .planning import CursorPlan, plan_dataset_windows

if TYPE_CHECKING:
    from ..store.state import DatasetState
    from ..webex.rest.client import RestClient
    from ..webex.rest.results import RestFetch

__all__ = ["REST_SIDE_ERRORS", "export_rest_dataset", "rest_side_failed", "rest_spans"]

#: What stops a site's REST client (tokens, scopes, endpoint, a Retry-After hold).  On an ``auto``
#: site that is the REST side only: its XML datasets go on (see :func:`rest_side_failed`).
REST_SIDE_ERRORS = (FatalSiteError, SitePausedError)


def rest_side_failed(site: SiteSettings, outcome: DatasetOutcome, exc: FatalSiteError | SitePausedError) -> None:
    """An ``auto`` site's REST side cannot export ``outcome``'s dataset this run (no tokens yet,
    missing scopes, ...): that dataset fails (``refused`` for credentials: exit 3, so someone runs
    ``auth``), and the site's XML datasets go on rather than stop with it."""
    exc.add_context(site=site.name, dataset=outcome.dataset)
    message = f"{type(exc).__name__}: {exc}"
    outcome.errors.append(message)
    outcome.refused = outcome.refused or isinstance(exc, AuthError)
    event("REST side unusable: this dataset fails, the site's XML datasets go on", level=logging.ERROR,
          site=site.name, dataset=outcome.dataset, error=message)


#: Margin kept from the REST reach limit ("from cannot be earlier than 90 days ago"), so a
#: request sent a little after planning is not refused.
REACH_MARGIN = timedelta(hours=1)
#: Spans of one dataset listed at once.
SPANS_IN_FLIGHT = 4
#: A capped ``/meetings`` listing is halved down to this span.
MIN_SPLIT = timedelta(minutes=1)


def rest_spans(windows: list[Window], *, max_days: int) -> list[Window]:
    """Join sorted, contiguous ``windows`` (already trimmed to the API's reach) into spans of at
    most ``max_days``."""
    spans: list[Window] = []
    limit = timedelta(days=max_days)
    for w in sorted(windows, key=lambda w: w.start):
        if spans and spans[-1].end == w.start and w.end - spans[-1].start <= limit:
            spans[-1] = Window(spans[-1].start, w.end)
        else:
            spans.append(w)
    return spans


async def export_rest_dataset(
    ctx: RunContext, client: RestClient, site: SiteSettings, dataset: Dataset, outcome: DatasetOutcome,
    state: DatasetState, *, not_before: datetime | None = None,
) -> None:
    """List and land one dataset of one site through REST (see the module docstring).
    ``not_before``: never list earlier than this (where an ``auto`` site's XML history ends).

    Raises what stops the site (auth, scopes, endpoint) for the caller to report;
    :class:`OperationRetiredError` (the endpoint answers 404/410) marks the dataset unavailable."""
    listing = dataset.rest
    assert listing is not None
    list_cap = (site.rest or RestSettings()).meetings_list_cap
    export = ctx.settings.export
    margin = ctx.now - timedelta(days=min(export.retention_days, listing.reach_days) - 1)
    retry = list(state.failed_windows) + [w for w in state.unverified_windows
                                          if w.start >= margin and w not in state.failed_windows]
    windows, advances = plan_dataset_windows(
        ctx.settings, ctx.options, state.cursor, retry, ctx.now, state.resume_done, dataset
    )
    reach_start = ctx.now - timedelta(days=listing.reach_days) + REACH_MARGIN
    if not_before is not None:
        reach_start = max(reach_start, not_before)
    failed = set(retry)
    # Trimmed before the cursor plan sees them: a span must cover whole planned windows, or the
    # cursor would never move past the first one.
    planned = [Window(max(w.start, reach_start), w.end) for w in windows if w not in failed and w.end > reach_start]
    spans = rest_spans(planned, max_days=listing.window_days)
    spans += [w for w in windows if w in failed and w.start >= reach_start]
    outcome.windows_planned = len(windows)
    outcome.cursor = state.cursor
    if not spans:
        return
    if listing.unconfirmed:
        event("REST mapping not confirmed by Cisco's spec", level=logging.INFO, site=site.name, dataset=dataset.name,
              unconfirmed=listing.unconfirmed)
    tracker = ctx.progress.dataset(site.name, dataset.name, windows=len(windows))
    cursor_plan = CursorPlan(planned, state.cursor, advances, ctx.settle_limit)
    gate = asyncio.Semaphore(SPANS_IN_FLIGHT)
    scope = DatasetScope(ctx, site, dataset, outcome, tracker, cursor_plan)

    async def listed(span: Window) -> list[RestFetch]:
        """``span``'s listing; a listing that hit ``/meetings``' per-query cap is asked again
        as two halves (down to a minute), so no instance beyond the cap is cut off."""
        async with gate:
            if ctx.stop.is_set():
                raise asyncio.CancelledError
            fetched = await client.fetch_window(dataset, span.start, span.end)
        if listing.path == "/meetings" and fetched.rows >= list_cap and span.end - span.start > MIN_SPLIT:
            middle = span.start + (span.end - span.start) / 2
            middle = middle.replace(second=0, microsecond=0)
            outcome.add(fetched)  # what the capped listing cost still counts
            event("REST listing capped: listing it again in halves", level=logging.INFO, site=site.name, dataset=dataset.name,
                  window=str(span), rows=fetched.rows)
            halves = await asyncio.gather(listed(Window(span.start, middle)), listed(Window(middle, span.end)))
            return [f for half in halves for f in half]
        return [fetched]

    async def one(span: Window) -> None:
        if ctx.stop.is_set():
            return
        started = asyncio.get_running_loop().time()
        try:
            parts = await listed(span)
        except asyncio.CancelledError:
            if ctx.stop.is_set():
                return
            raise
        except (WindowFailedError, ParseError, RetryableError) as exc:
            await record_failed_window(scope, span, exc)
            return
        for fetched in parts:
            outcome.add(fetched)
        problems = [f.problem or "the listing could not be shown complete" for f in parts if not f.verified]
        tables = [f.table for f in parts]
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        if SOURCE_COLUMN not in table.column_names:
            table = table.append_column(SOURCE_COLUMN, pa.repeat(pa.scalar("rest"), table.num_rows))
        await land(scope, span, table, problem="; ".join(problems) if problems else None)
        event("window committed", site=site.name, dataset=dataset.name, window=str(span), source="rest",
              records=table.num_rows, listings=len(parts), pages=sum(f.pages for f in parts),
              requests=sum(f.requests for f in parts), retries=sum(f.retries for f in parts),
              throttles=sum(f.throttles for f in parts), seconds=round(asyncio.get_running_loop().time() - started, 3),
              unknown_elements=sum(sum(f.unknown_elements.values()) for f in parts),
              bad_values=sum(sum(f.bad_values.values()) for f in parts))

    try:
        async with asyncio.TaskGroup() as group:
            for span in spans:
                group.create_task(one(span), name=f"rest:{site.name}:{dataset.name}:{span}")
    except* OperationRetiredError as caught:  # the dataset's boundary: it carries site and dataset on
        exc = first_leaf(caught)
        exc.add_context(site=site.name, dataset=dataset.name)
        message = f"{exc} ({dataset.name} through REST: {listing.path}); skipped this run"
        outcome.unavailable = message
        event("dataset unavailable: REST endpoint gone", level=logging.ERROR, site=site.name, dataset=dataset.name, error=message)
        await asyncio.to_thread(ctx.warehouse.mark_unavailable, site.name, dataset.name, message)
    tracker.done()

