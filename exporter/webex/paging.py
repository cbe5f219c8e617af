"""Listing one time window completely: every record the server holds for it, verified, or landed
and flagged when it cannot be verified.

The first page gives ``matchingRecords/total``; every other ``startFrom`` is then known, so the
remaining pages are requested concurrently (several pages per HTTP request as separate
``bodyContent``), as fast as the site's throttle allows.  A scan is *consistent* when every page
reports the same ``total``, echoes the ``startFrom`` we asked for and holds the rows it should;
the rows of a consistent scan then number exactly ``total``.  Rows are never dropped for sharing
a natural key: exact twins are real records (see :mod:`exporter.records.identity`).

One thing a consistent scan cannot show by itself: when the server's order among tied rows moves
between two requests, one row can be served on both sides of a page boundary and a tied row on
neither.  Rows with equal content on two pages are therefore checked with a *bridge page*, a page
that starts half a page before the boundary: inside one answer (one ordering) real twins appear
together, a row served twice does not.  A scan that fails a check is listed again, a bounded
number of times; after that the window is returned **unverified** (the union of what its scans
saw, nothing left out) for the caller to land, flag and re-verify later, or, with
``land_unverified=False`` (packed listings), fails with :class:`IncompleteListingError` so the
caller can list its windows one by one.  Windows holding more than ``max_window_records`` are
split in halves first.  Every loop here is bounded: pages per scan = ceil(total / page size) plus
one bridge page per boundary, scans = 1 + ``max_rescans``, split depth <= ``MAX_SPLIT_DEPTH``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import Callable
from zoneinfo import ZoneInfo

import pyarrow as pa

from ..config import SiteSettings
from ..errors import ExporterError, IncompleteListingError
from ..model.counters import Counters
from ..model.dataset_spec import Dataset
from ..model.windows import Window
from ..obs.logs import event
from ..records import identity
from .batching import FIRST, batcher_for
from .bridges import BridgeChecks
from .client import WebexClient
from .gather import run_all
from .page_reader import Page, PageCallback, page_body
from .protocol import scope_zone
from .window_fetch import Probe, WindowFetch

__all__ = ["fetch_window", "probe_window", "DEFAULT_MAX_RESCANS", "MAX_SPLIT_DEPTH", "new_listing_age"]


#: Times a window is listed again after an inconsistent scan before it fails.
DEFAULT_MAX_RESCANS = 3
#: Halvings of one window at most (a day becomes ~21 s): bounds the recursion.
MAX_SPLIT_DEPTH = 12

#: Listings in the order they started: the batcher sends an older listing's pages first.
_LISTING_AGES = itertools.count(1)


def new_listing_age() -> int:
    """A listing's place in line: listings that share one (a window's final and preliminary
    history) are served as one, before every listing that started later."""
    return next(_LISTING_AGES)


async def fetch_window(
    client: WebexClient,
    dataset: Dataset,
    window: Window,
    *,
    site: SiteSettings,
    zone: ZoneInfo | None = None,
    preliminary: bool = False,
    max_window_records: int,
    on_page: PageCallback | None = None,
    max_rescans: int = DEFAULT_MAX_RESCANS,
    age: int | None = None,
    on_failure: Callable[[WindowFetch], None] | None = None,
    first: Probe | None = None,
    land_unverified: bool = True,
) -> WindowFetch:
    """List every record of ``dataset`` in ``window`` (see the module docstring).

    ``zone`` is the zone of the scope and of the returned times; by default the site's
    ``time_zone_id`` zone when the dataset sends ``timeZoneID``, else its
    ``unlabeled_time_zone_id`` zone.  ``on_page(done_pages, known_pages, page_records)`` is
    called after each page.  ``age`` (from :func:`new_listing_age`; a new one by default) orders
    this listing's pages against other listings'.  When the listing fails or is cancelled,
    ``on_failure`` gets what it cost (a ``WindowFetch`` without rows: requests, pages, rescans)
    before the error propagates, so failed windows count in the run's figures too.  ``first``: a
    probe of this same window (final history), used as the listing's first page.  A window that
    cannot be verified after ``max_rescans`` comes back with ``verified=False`` (or, when not
    ``land_unverified``, raises :class:`IncompleteListingError`).  Raises other ``WindowFailedError``\\ s, ``AuthError``,
    ``SitePausedError``, or a ``RetryableError`` whose attempts are used up.
    """
    if zone is None:
        zone = scope_zone(dataset, time_zone_id=site.time_zone_id, unlabeled_time_zone_id=site.unlabeled_time_zone_id)
    lister = _Lister(client, dataset, site, zone, preliminary, max_window_records, on_page, max_rescans,
                     new_listing_age() if age is None else age, land_unverified)
    if first is not None and first.window == window and not preliminary:
        lister.probe = first
    try:
        return await lister.window(window, depth=0)
    except (ExporterError, asyncio.CancelledError):
        if on_failure is not None and lister.lost is not None:
            on_failure(lister.lost)
        raise

async def probe_window(
    client: WebexClient,
    dataset: Dataset,
    window: Window,
    *,
    site: SiteSettings,
    zone: ZoneInfo | None = None,
    stats: Counters | None = None,
    maximum_num: int | None = None,
) -> Probe:
    """``matchingRecords/total`` for ``window``, from its first page (one body, batched with
    other bodies).  The body is exactly a listing's first page, so when the window turns out to
    be small enough to list whole, :func:`fetch_window` (``first=``) starts from it: one round
    trip and one body fewer.  ``maximum_num``: ask for fewer records (1: just the total)."""
    if zone is None:
        zone = scope_zone(dataset, time_zone_id=site.time_zone_id, unlabeled_time_zone_id=site.unlabeled_time_zone_id)
    body = page_body(dataset, window, 1, site=site, zone=zone, preliminary=False, maximum_num=maximum_num)
    (answer,) = await batcher_for(client, dataset.api_group).call([body], stats=stats, priority=(FIRST, 0))
    if answer.empty:
        return Probe(window, 0, answer)
    if answer.total is None:
        raise IncompleteListingError(f"site {site.name}, {dataset.name} {window}: the answer has no matchingRecords/total")
    return Probe(window, answer.total, answer)

class _Lister(BridgeChecks):
    """Listing one window (splitting it, rescanning it) for one ``fetch_window`` call."""

    # ------------------------------------------------------------------------------- windows

    async def window(self, window: Window, *, depth: int) -> WindowFetch:
        """List ``window`` (splitting it when it is too big) until a scan is consistent.  When
        that fails, what the attempt cost (requests, pages, rescans) is added to ``self.lost``."""
        stats = Counters()
        fetch = WindowFetch(self.dataset.name, window, self.schema.empty_table(), 0, preliminary=self.preliminary)
        try:
            return await self._list(window, depth, fetch, stats)
        except (ExporterError, asyncio.CancelledError):
            fetch.add(stats)
            self._lose(fetch)
            raise

    def _lose(self, fetch: WindowFetch) -> None:
        """Count what a listing (or a split half) that will not be returned cost."""
        if self.lost is None:
            self.lost = WindowFetch(self.dataset.name, fetch.window, self.schema.empty_table(), 0,
                                    preliminary=self.preliminary)
        self.lost.add(fetch)

    async def _list(self, window: Window, depth: int, fetch: WindowFetch, stats: Counters) -> WindowFetch:
        scans: list[pa.Table] = []  # every failed scan's rows: an unverified landing keeps them all
        while True:
            first = await self._page(window, 1, fetch, stats)
            total = 0 if first.answer.empty else first.answer.total
            if total is None:
                raise IncompleteListingError(self._where(window, "the first page has no matchingRecords/total"))
            if total > self.max_window_records and window.can_split() and depth < MAX_SPLIT_DEPTH:
                event("window over max_window_records; splitting in halves", listing=self._where(window), records=total,
                      max_window_records=self.max_window_records)
                parts = await run_all((self.window(half, depth=depth + 1) for half in window.split()),
                                      discarded=self._lose)  # a half listed in full beside a failed one
                return self._combine(window, fetch, stats, parts)
            self.known_pages += max(1, math.ceil(total / self.page_size))
            self._progress(first)
            pages, step, problem = await self._scan(window, first, total, fetch, stats)
            if problem is None:
                verified, problem = await self._verify_boundaries(window, pages, step, total, fetch, stats)
                if verified is not None:
                    return self._finish(fetch, stats, verified, total)
            scans.append(pa.concat_tables([p.table for p in pages]))
            if fetch.rescans >= self.max_rescans:
                where = self._where(window, f"listing still inconsistent after {fetch.rescans} rescans: {problem}")
                if not self.land_unverified:
                    columns = identity.content_columns(self.dataset, scans[-1])
                    doubtful = identity.repeated_across_pages([p.table for p in pages], columns,
                                                              self.dataset.natural_key)
                    raise IncompleteListingError(where, rows=scans[-1], doubtful=frozenset(doubtful))
                table = identity.union_by_content(scans, identity.content_columns(self.dataset, scans[-1]))
                event("listing still inconsistent; landing what the scans saw as unverified, to be verified again on "
                      "later runs", level=logging.WARNING, listing=self._where(window), rescans=fetch.rescans,
                      problem=problem, rows=table.num_rows, total=total)
                fetch.verified, fetch.problem = False, f"still inconsistent after {fetch.rescans} rescans: {problem}"
                return self._finish(fetch, stats, table, total)
            fetch.rescans += 1
            event("listing inconsistent; listing the window again", level=logging.WARNING, listing=self._where(window),
                  problem=problem, rescan=fetch.rescans, rescans=self.max_rescans)

    async def _scan(
        self, window: Window, first: Page, total: int, fetch: WindowFetch, stats: Counters
    ) -> tuple[list[Page], int, str | None]:
        """All pages after the first; the scan's pages, the server's page size and the first
        inconsistency (None: clean)."""
        got = first.count
        step = self.page_size
        if not first.answer.empty and 0 < got < min(self.page_size, total):
            step = got  # the server pages smaller than we asked (its own cap): follow its page size
        problem = self._check(first, total, expected=min(step, total))
        if problem is not None:
            return [first], step, problem
        starts = list(range(1 + step, total + 1, step))
        batch = max(1, self.client.bodies_per_request)
        groups = [starts[i : i + batch] for i in range(0, len(starts), batch)]
        pages = [first] + [p for group in await run_all(self._pages(window, g, fetch, stats) for g in groups)
                           for p in group]
        for page in pages[1:]:
            problem = problem or self._check(page, total, expected=min(step, total - page.start_from + 1))
        return pages, step, problem

    # ------------------------------------------------------------------------------- results

    def _finish(self, fetch: WindowFetch, stats: Counters, table: pa.Table, total: int) -> WindowFetch:
        fetch.table = table
        fetch.total = total
        fetch.add(stats)
        return fetch

    def _combine(
        self, window: Window, fetch: WindowFetch, stats: Counters, parts: list[WindowFetch]
    ) -> WindowFetch:
        fetch.add(stats)
        fetch.table = pa.concat_tables([fetch.table] + [p.table for p in parts])
        fetch.total = sum(p.total for p in parts)
        fetch.splits += 1
        for part in parts:
            fetch.add(part)
            if not part.verified:
                fetch.verified = False
                fetch.problem = fetch.problem or f"{part.window}: {part.problem}"
        return fetch

