"""One dataset's run on one site (:class:`DatasetRun`): its windows planned from the state,
contiguous runs probed and packed into listings of about ``PACK_ROWS`` rows, each listing
fetched and landed, a failed pack narrowed to the windows it cannot prove, and memory bounded
by the rows fetched but not yet landed (:class:`RowBudget`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from ..config import SiteSettings
from ..errors import IncompleteListingError, OperationRetiredError
from ..model.counters import Counters
from ..model.dataset_spec import Dataset
from ..model.runs import DatasetOutcome
from ..model.windows import Window
from ..obs.logs import event
from ..records.identity import content_columns, content_hashes
from ..store.state import REST_SWITCH_NOTE
from ..webex.client import WebexClient
from ..webex.paging import probe_window
from ..webex.window_fetch import Probe
from .context import DatasetScope, RunContext, first_leaf
from .landing import land, progress_key
from .planning import CursorPlan, contiguous_runs, pack_windows, plan_dataset_windows
from .rest_export import REST_SIDE_ERRORS, export_rest_dataset, rest_side_failed
from .site_setup import zone_for
from .window_fetch import WINDOW_ERRORS, export_window, is_recent

if TYPE_CHECKING:
    from ..store.state import DatasetState
    from ..webex.rest.client import RestClient

__all__ = ["DatasetRun", "RowBudget", "export_dataset"]

#: Windows of one dataset listed at the same time.  Requests stay bounded by the site's throttle;
#: more windows in flight let their small first pages share HTTP requests (see ``batching.py``).
WINDOWS_IN_FLIGHT = 16
#: Rows of one dataset fetched but not committed yet (they wait for a group commit), as estimated
#: from the probe; a window of unknown size counts as ``UNLANDED_ROWS / WINDOWS_UNLANDED``.
UNLANDED_ROWS = 160_000
WINDOWS_UNLANDED = 16
#: Rows one listing gathers when neighbouring windows are packed into it.  Every listing ends in a
#: part-filled page, so one-day windows of 550 meetings cost two pages for 1.1 pages of data; one
#: listing of ~20,000 rows wastes half a page in forty.  Capped by ``export.max_window_records``.
PACK_ROWS = 20_000


async def export_dataset(
    ctx: RunContext, client: WebexClient, site: SiteSettings, dataset: Dataset, outcome: DatasetOutcome,
    state: DatasetState, rest: RestClient | None = None,
) -> None:
    """Export one dataset of a site through the XML API: plan its windows from ``state``, list
    and land them (:class:`DatasetRun`), and when its operation answers retired, switch an
    ``auto`` site to REST or mark the dataset unavailable."""
    # Windows landed unverified are listed again like failed ones, while the server still holds
    # all of them (a day's margin: a listing cut short by the server's purge must not verify one).
    margin = ctx.now - timedelta(days=ctx.settings.export.retention_days - 1)
    retry = list(state.failed_windows) + [w for w in state.unverified_windows
                                          if w.start >= margin and w not in state.failed_windows]
    windows, advances = plan_dataset_windows(
        ctx.settings, ctx.options, state.cursor, retry, ctx.now, state.resume_done, dataset
    )
    outcome.windows_planned = len(windows)
    outcome.cursor = state.cursor
    if not windows:
        return
    tracker = ctx.progress.dataset(site.name, dataset.name, windows=len(windows))
    failed = set(retry)
    planned = [w for w in windows if w not in failed]
    cursor_plan = CursorPlan(planned, state.cursor, advances, ctx.settle_limit)
    gate = asyncio.Semaphore(WINDOWS_IN_FLIGHT)
    job = DatasetRun(DatasetScope(ctx, site, dataset, outcome, tracker, cursor_plan), client, gate)

    retired: OperationRetiredError | None = None
    try:
        async with asyncio.TaskGroup() as group:
            for window in (w for w in windows if w in failed):
                group.create_task(job.one(window), name=f"window:{site.name}:{dataset.name}:{window}")
            for run in contiguous_runs(planned):
                group.create_task(job.cover(run), name=f"window:{site.name}:{dataset.name}:probe")
    except* OperationRetiredError as caught:  # the dataset's boundary: it carries site and dataset on
        retired = first_leaf(caught).add_context(site=site.name, dataset=dataset.name)
    tracker.done()
    if retired is None:
        return
    if site.source == "auto" and rest is not None and dataset.rest is not None:
        await _switch_to_rest(ctx, rest, site, dataset, outcome, retired)
        return
    message = (f"{retired} The Meetings XML API is past its end of life: {dataset.name} is skipped this run. "
               f"Export it from the Webex REST APIs (source = 'auto' or 'rest'), or remove it from this "
               "site's datasets.")
    outcome.unavailable = message
    event("dataset unavailable: operation retired", level=logging.ERROR, site=site.name, dataset=dataset.name,
          operation=retired.operation, error=message)
    await asyncio.to_thread(ctx.warehouse.mark_unavailable, site.name, dataset.name, message)


async def _switch_to_rest(ctx: RunContext, rest: RestClient, site: SiteSettings, dataset: Dataset, outcome: DatasetOutcome,
                          exc: OperationRetiredError) -> None:
    """An ``auto`` site's XML operation answered retired: from now on this dataset comes from
    REST, starting where XML stopped (its cursor), said once in the log and kept in ``status``."""
    state = await asyncio.to_thread(ctx.warehouse.state, site.name, dataset.name)
    since = state.cursor
    event("XML operation retired: switching to the REST APIs", level=logging.WARNING, site=site.name, dataset=dataset.name,
          operation=dataset.operation, endpoint=dataset.rest.path if dataset.rest else None,
          from_=since.isoformat() if since else None, error=str(exc))
    try:
        await rest.check_scopes([dataset])
        await export_rest_dataset(ctx, rest, site, dataset, outcome, state, not_before=since)
    except REST_SIDE_ERRORS as failed:  # only this dataset: the site's XML datasets go on
        rest_side_failed(site, outcome, failed)
    # The switch is noted either way (the XML operation is retired): the next run goes to REST.
    note = f"{REST_SWITCH_NOTE} ({dataset.rest.path if dataset.rest else ''})"
    if since is not None:
        # REST never lists before the switch: its rows do not match XML's (another identity), so
        # the same meeting would land twice.  What that costs is said, not hidden: late changes to
        # the XML lookback, and XML windows still failed, are no longer picked up.
        note += (f" from {since.isoformat()}; late changes before it (the XML lookback, "
                 f"{state.lookback_days} days) and {len(state.failed_windows)} failed XML window(s) are no "
                 "longer listed")
    await asyncio.to_thread(ctx.warehouse.mark_unavailable, site.name, dataset.name, note, rest_switched_at=since)


class RowBudget:
    """Rows fetched but not yet landed, as estimated before fetching; a holder waits while the
    rows already held plus its own would pass ``capacity`` (one larger than it all still goes,
    alone).  Checking and taking happen without an await between them (one event loop), and
    giving back never waits, so a cancelled holder cannot keep its rows."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.held = 0
        self._waiters: list[asyncio.Future[None]] = []

    @contextlib.asynccontextmanager
    async def hold(self, rows: float) -> AsyncIterator[None]:
        """Hold about ``rows`` rows of the budget while the block runs (waiting until they fit)."""
        weight = min(max(1, math.ceil(rows)), self.capacity)
        while self.held + weight > self.capacity:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        self.held += weight
        try:
            yield
        finally:
            self.held -= weight
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:  # each looks again; those that still do not fit wait again
                if not waiter.done():
                    waiter.set_result(None)


@dataclass(slots=True)
class DatasetRun:
    """The windows of one (site, dataset) in one run: which listing covers which windows, and
    what happens when one fails."""

    scope: DatasetScope
    client: WebexClient
    gate: asyncio.Semaphore
    unlanded: RowBudget = field(default_factory=lambda: RowBudget(UNLANDED_ROWS))

    async def one(
        self, window: Window, rows: float | None = None, *, parts: list[Window] | None = None, first: Probe | None = None
    ) -> None:
        """List (at most ``WINDOWS_IN_FLIGHT`` at once) and land ``window``, expected to hold about
        ``rows`` rows; at most ``UNLANDED_ROWS`` are fetched but not yet committed, which bounds
        memory.  ``parts``: the planned windows a packed listing covers; when the pack fails they
        are listed one by one, so a failure stays as small as a window.  ``first``: the probe of
        this very window, its listing's first page."""
        expected = rows if rows is not None else UNLANDED_ROWS / WINDOWS_UNLANDED
        failure: Exception | None = None
        async with self.unlanded.hold(expected):
            if self.scope.ctx.stop.is_set():
                return
            try:
                await export_window(self.scope, self.client, window, gate=self.gate, record_failure=not parts,
                                    first=first)
                return
            except WINDOW_ERRORS as exc:
                failure = exc
                event("packed listing failed; keeping the windows it proves, listing the others one by one",
                      level=logging.WARNING, site=self.scope.site.name, dataset=self.scope.dataset.name, window=str(window),
                      windows=len(parts or ()), error=f"{type(exc).__name__}: {exc}")
        # Only a pack gets here (a single window records its own failure); its budget is given back,
        # and its pages and records leave the progress counts (its windows count them again).
        self.scope.tracker.forget(progress_key(window))
        parts = parts or []
        again = await self._keep_what_the_pack_proves(window, parts, failure)
        await asyncio.gather(*(self.one(part, expected / len(parts)) for part in again))

    async def _keep_what_the_pack_proves(self, pack: Window, parts: list[Window], failure: Exception) -> list[Window]:
        """Land the windows of a failed pack that its last scan holds completely; return the rest.

        A window is proven when its own total, asked now (one record per body, all windows in a
        request or two), equals the scan's rows that start in it, and none of those rows is one
        the scan held on two pages.  Rows the pack scan cannot place in a window (no start, or a
        start outside the pack), preliminary history, or a scan that is not there: nothing is
        kept, every window is listed again.  So a pack with one bad day costs that day again,
        not the whole pack."""
        rows = failure.rows if isinstance(failure, IncompleteListingError) else None
        recent = bool(self.scope.site.preliminary and self.scope.dataset.preliminary_operation and is_recent(self.scope.ctx, pack))
        if not isinstance(rows, pa.Table) or recent or len(parts) < 2 or self.scope.ctx.stop.is_set():
            return parts
        start = rows.column(self.scope.dataset.start_column)
        if start.null_count or (rows.num_rows and (pc.min(start).as_py() < pack.start or pc.max(start).as_py() >= pack.end)):
            return parts
        doubtful = failure.doubtful if isinstance(failure, IncompleteListingError) else frozenset()
        hashes = content_hashes(rows, content_columns(self.scope.dataset, rows)).to_pylist() if doubtful else []
        stats = Counters()  # the probes' requests
        zone = zone_for(self.scope.ctx, self.scope.site, self.scope.dataset)
        try:
            probes = await asyncio.gather(*(probe_window(self.client, self.scope.dataset, part, site=self.scope.site, zone=zone,
                                                         stats=stats, maximum_num=1) for part in parts))
        except WINDOW_ERRORS:
            return parts
        finally:
            self.scope.outcome.add(stats)
        self.scope.outcome.pages += len(parts)  # one (one-record) page each
        again = []
        for part, probe in zip(parts, probes, strict=True):
            inside = pc.and_(pc.greater_equal(start, pa.scalar(part.start, start.type)),
                             pc.less(start, pa.scalar(part.end, start.type)))
            table = rows.filter(inside)
            shaky = doubtful and any(h in doubtful for h, keep in zip(hashes, inside.to_pylist(), strict=True) if keep)
            if table.num_rows != probe.total or shaky:
                again.append(part)
                continue
            await land(self.scope, part, table)
            event("window committed", site=self.scope.site.name, dataset=self.scope.dataset.name, window=str(part),
                  records=table.num_rows, total=probe.total, pages=0, requests=0, from_pack=str(pack))
        return again

    async def cover(self, run: list[Window]) -> None:
        """Land a contiguous run of planned windows with as few listings as its size allows.

        The run's first page gives its ``total`` (a probe): 0 lands the run as one empty commit;
        otherwise consecutive windows are packed into listings of about ``PACK_ROWS`` rows (by
        the run's average), since every listing pays for a part-filled last page.  A run small
        enough for one listing starts from the probe's page.  Recent windows that also need
        preliminary history are packed apart from older ones.  When the probe fails, the windows
        are listed one by one, each failing or landing on its own.
        """
        if self.scope.ctx.stop.is_set():
            return
        if len(run) == 1:
            await self.one(run[0])
            return
        whole = Window(run[0].start, run[-1].end)
        stats = Counters()  # the probes' requests
        try:
            probe = await probe_window(self.client, self.scope.dataset, whole, site=self.scope.site,
                                       zone=zone_for(self.scope.ctx, self.scope.site, self.scope.dataset), stats=stats)
        except WINDOW_ERRORS:
            probe = None
        self.scope.outcome.add(stats)
        if probe is None:
            await asyncio.gather(*(self.one(w) for w in run))
            return
        total = probe.total
        average = total / len(run)
        wants_preliminary = bool(self.scope.site.preliminary and self.scope.dataset.preliminary_operation)
        older = [w for w in run if not (wants_preliminary and is_recent(self.scope.ctx, w))]
        recent = run[len(older) :]
        target = max(1, min(PACK_ROWS, self.scope.ctx.settings.export.max_window_records))
        listings = []
        probe_used = False
        for part in (older, recent):
            if not part:
                continue
            if total == 0 and part is older:
                listings.append(self._land_empty(Window(part[0].start, part[-1].end), len(part), stats))
                continue
            for pack in pack_windows(part, average * len(part), target):
                span = pack[0] if len(pack) == 1 else Window(pack[0].start, pack[-1].end)
                reuse = span == whole  # the run is one listing: it starts from the probe's page
                probe_used = probe_used or reuse
                listings.append(self.one(span, average * len(pack), parts=pack if len(pack) > 1 else None,
                                         first=probe if reuse else None))
        if not probe_used:
            self.scope.outcome.pages += 1  # a page received all the same
        await asyncio.gather(*listings)

    async def _land_empty(self, window: Window, probed: int, stats: Counters) -> None:
        await land(self.scope, window, None)
        event("window committed", site=self.scope.site.name, dataset=self.scope.dataset.name, window=str(window), records=0,
              total=0, pages=0, requests=stats.requests, probed=probed)
