"""Listing one time window completely: every record the server holds for it, or a loud failure.

The first page gives ``matchingRecords/total``; every other ``startFrom`` is then known, so the
remaining pages are requested concurrently (several pages per HTTP request as separate
``bodyContent``), as fast as the site's throttle allows.  A listing is accepted only when it is
*consistent*: every page reports the same ``total`` and echoes the ``startFrom`` we asked for,
and the distinct records (by the dataset's natural key) number exactly ``total``.  Otherwise
the window is listed again (rows moved while we paged), a bounded number of times, then fails
with :class:`IncompleteListingError`.  Windows holding more than ``max_window_records`` are
split in halves first.  Every loop here is bounded: pages per scan = ceil(total / page size),
scans = 1 + ``max_rescans``, split depth <= ``MAX_SPLIT_DEPTH``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from . import parse
from .batching import FIRST, REST, batcher_for
from .client import RequestStats, WebexClient, run_all
from .config import SiteSettings
from .datasets import Dataset
from .errors import ExporterError, IncompleteListingError
from .protocol import Body, BodyResponse, list_body, scope_zone
from .windows import Window

__all__ = ["WindowFetch", "Probe", "fetch_window", "probe_window", "dedupe", "DEFAULT_MAX_RESCANS",
           "MAX_SPLIT_DEPTH", "new_listing_age"]

log = logging.getLogger(__name__)

#: Times a window is listed again after an inconsistent scan before it fails.
DEFAULT_MAX_RESCANS = 3
#: Halvings of one window at most (a day becomes ~21 s): bounds the recursion.
MAX_SPLIT_DEPTH = 12

PageCallback = Callable[[int, int, int], None]

#: Listings in the order they started: the batcher sends an older listing's pages first.
_LISTING_AGES = itertools.count(1)


def new_listing_age() -> int:
    """A listing's place in line: listings that share one (a window's final and preliminary
    history) are served as one, before every listing that started later."""
    return next(_LISTING_AGES)


@dataclass(slots=True)
class WindowFetch:
    """What listing one window produced.

    ``table`` is in ``parse.arrow_schema(dataset)``, one row per distinct natural key;
    ``total`` is the server's count (the sum over parts when the window was split).
    """

    dataset: str
    window: Window
    table: pa.Table
    total: int
    preliminary: bool = False
    pages: int = 0  # list pages received, rescans included
    requests: int = 0  # HTTP requests sent
    retries: int = 0
    throttles: int = 0
    throttles_by_cause: Counter[str] = field(default_factory=Counter)
    throttle_wait_seconds: float = 0.0
    unknown_elements: Counter[str] = field(default_factory=Counter)
    bad_values: Counter[str] = field(default_factory=Counter)
    ambiguous_times: Counter[str] = field(default_factory=Counter)  # fall-back-hour wall times, by column
    rescans: int = 0
    splits: int = 0
    duplicates: int = 0  # rows dropped because their natural key was already listed

    @property
    def records(self) -> int:
        """Rows in ``table``."""
        return self.table.num_rows


@dataclass(slots=True)
class _Page:
    """One page as received: what we asked, what came back (without its XML), its typed rows.

    ``answer`` is kept without ``records``/``content``: those elements pin the response's whole
    lxml tree, and a dense window would otherwise hold the trees of all its pages until it ends.
    """

    start_from: int
    answer: BodyResponse
    table: pa.Table
    count: int  # records the page held


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
) -> WindowFetch:
    """List every record of ``dataset`` in ``window`` (see the module docstring).

    ``zone`` is the zone of the scope and of the returned times; by default the site's
    ``time_zone_id`` zone when the dataset sends ``timeZoneID``, else its
    ``unlabeled_time_zone_id`` zone.  ``on_page(done_pages, known_pages, page_records)`` is
    called after each page.  ``age`` (from :func:`new_listing_age`; a new one by default) orders
    this listing's pages against other listings'.  When the listing fails or is cancelled,
    ``on_failure`` gets what it cost (a ``WindowFetch`` without rows: requests, pages, rescans)
    before the error propagates, so failed windows count in the run's figures too.  ``first``: a
    probe of this same window (final history), used as the listing's first page.  Raises
    :class:`IncompleteListingError`, other ``WindowFailedError``\\ s, ``AuthError``,
    ``SitePausedError``, or a ``RetryableError`` whose attempts are used up.
    """
    if zone is None:
        zone = scope_zone(dataset, time_zone_id=site.time_zone_id, unlabeled_time_zone_id=site.unlabeled_time_zone_id)
    lister = _Lister(client, dataset, site, zone, preliminary, max_window_records, on_page, max_rescans,
                     new_listing_age() if age is None else age)  # fmt: skip
    if first is not None and first.window == window and not preliminary:
        lister.probe = first
    try:
        return await lister.window(window, depth=0)
    except (ExporterError, asyncio.CancelledError):
        if on_failure is not None and lister.lost is not None:
            on_failure(lister.lost)
        raise


@dataclass(frozen=True, slots=True)
class Probe:
    """The first page of ``window``, asked for before the window is planned: its ``total``, and
    the page itself, which a listing of that same window uses instead of asking again."""

    window: Window
    total: int  # 0 when the server answered 000015
    answer: BodyResponse


async def probe_window(
    client: WebexClient,
    dataset: Dataset,
    window: Window,
    *,
    site: SiteSettings,
    zone: ZoneInfo | None = None,
    stats: RequestStats | None = None,
) -> Probe:
    """``matchingRecords/total`` for ``window``, from its first page (one body, batched with
    other bodies).  The body is exactly a listing's first page, so when the window turns out to
    be small enough to list whole, :func:`fetch_window` (``first=``) starts from it: one round
    trip and one body fewer."""
    if zone is None:
        zone = scope_zone(dataset, time_zone_id=site.time_zone_id, unlabeled_time_zone_id=site.unlabeled_time_zone_id)
    body = _page_body(dataset, window, 1, site=site, zone=zone, preliminary=False)
    (answer,) = await batcher_for(client, dataset.api_group).call([body], stats=stats, priority=(FIRST, 0))
    if answer.empty:
        return Probe(window, 0, answer)
    if answer.total is None:
        raise IncompleteListingError(f"site {site.name}, {dataset.name} {window}: the answer has no matchingRecords/total")
    return Probe(window, answer.total, answer)


def _page_body(dataset: Dataset, window: Window, start_from: int, *, site: SiteSettings, zone: ZoneInfo,
               preliminary: bool) -> Body:  # fmt: skip
    """The body asking for one listing page (typed by the decoder for ``site``)."""
    return list_body(dataset, window, start_from=start_from, maximum_num=site.throttle.page_size,
                     time_zone_id=site.time_zone_id, zone=zone, preliminary=preliminary,
                     typed_for_site=site.name)  # fmt: skip


class _Lister:
    """The state of one ``fetch_window`` call, shared by the parts of a split window."""

    def __init__(
        self,
        client: WebexClient,
        dataset: Dataset,
        site: SiteSettings,
        zone: ZoneInfo,
        preliminary: bool,
        max_window_records: int,
        on_page: PageCallback | None,
        max_rescans: int,
        age: int,
    ) -> None:
        self.client = client
        self.dataset = dataset
        self.site = site
        self.zone = zone
        self.preliminary = preliminary
        self.max_window_records = max(1, max_window_records)
        self.on_page = on_page
        self.max_rescans = max(0, max_rescans)
        self.page_size = site.throttle.page_size
        self.schema = parse.arrow_schema(dataset)
        self.done_pages = 0
        self.known_pages = 0
        self.age = age
        self.lost: WindowFetch | None = None  # what failed attempts cost, split halves included
        self.probe: Probe | None = None  # the whole window's first page, already fetched

    # ------------------------------------------------------------------------------- windows

    async def window(self, window: Window, *, depth: int) -> WindowFetch:
        """List ``window`` (splitting it when it is too big) until a scan is consistent.  When
        that fails, what the attempt cost (requests, pages, rescans) is added to ``self.lost``."""
        stats = RequestStats()
        fetch = WindowFetch(self.dataset.name, window, self.schema.empty_table(), 0, preliminary=self.preliminary)
        try:
            return await self._list(window, depth, fetch, stats)
        except (ExporterError, asyncio.CancelledError):
            self._add_stats(fetch, stats)
            self._lose(fetch)
            raise

    def _lose(self, fetch: WindowFetch) -> None:
        """Count what a listing (or a split half) that will not be returned cost."""
        if self.lost is None:
            self.lost = WindowFetch(self.dataset.name, fetch.window, self.schema.empty_table(), 0,
                                    preliminary=self.preliminary)  # fmt: skip
        _add_counts(self.lost, fetch)

    async def _list(self, window: Window, depth: int, fetch: WindowFetch, stats: RequestStats) -> WindowFetch:
        union: pa.Table | None = None  # clean scans that reported the same total, oldest first
        union_total: int | None = None
        while True:
            first = await self._page(window, 1, fetch, stats)
            total = 0 if first.answer.empty else first.answer.total
            if total is None:
                raise IncompleteListingError(self._where(window, "the first page has no matchingRecords/total"))
            if total > self.max_window_records and window.can_split() and depth < MAX_SPLIT_DEPTH:
                log.info("%s: %d records exceed max_window_records=%d; splitting in halves",
                         self._where(window), total, self.max_window_records)  # fmt: skip
                parts = await run_all((self.window(half, depth=depth + 1) for half in window.split()),
                                      discarded=self._lose)  # a half listed in full beside a failed one  # fmt: skip
                return self._combine(window, fetch, stats, parts)
            self.known_pages += max(1, math.ceil(total / self.page_size))
            self._progress(first)
            scan, problem = await self._scan(window, first, total, fetch, stats)
            if problem is None:
                latest, dropped = dedupe(scan, self.dataset.natural_key)
                if latest.num_rows == total:
                    return self._finish(fetch, stats, latest, total, dropped)
                union = pa.concat_tables([union, scan]) if union is not None and union_total == total else scan
                union_total = total
                merged, dropped = dedupe(union, self.dataset.natural_key)
                if merged.num_rows == total:  # an unstable server order, healed by scans together
                    return self._finish(fetch, stats, merged, total, dropped)
                problem = f"{latest.num_rows} distinct records for total {total}"
            if fetch.rescans >= self.max_rescans:
                raise IncompleteListingError(self._where(
                    window, f"listing still inconsistent after {fetch.rescans} rescans: {problem}"
                ))  # fmt: skip
            fetch.rescans += 1
            log.warning("%s: %s; listing the window again (rescan %d/%d)", self._where(window), problem,
                        fetch.rescans, self.max_rescans)  # fmt: skip

    async def _scan(
        self, window: Window, first: _Page, total: int, fetch: WindowFetch, stats: RequestStats
    ) -> tuple[pa.Table, str | None]:
        """All pages after the first; the scan's rows and the first inconsistency (None: clean)."""
        got = first.count
        step = self.page_size
        if not first.answer.empty and 0 < got < min(self.page_size, total):
            step = got  # the server pages smaller than we asked (its own cap): follow its page size
        problem = self._check(first, total, expected=min(step, total))
        if problem is not None:
            return first.table, problem
        starts = list(range(1 + step, total + 1, step))
        batch = max(1, self.client.bodies_per_request)
        groups = [starts[i : i + batch] for i in range(0, len(starts), batch)]
        pages = await run_all(self._pages(window, group, fetch, stats) for group in groups)
        tables = [first.table]
        for page in (p for group in pages for p in group):
            problem = problem or self._check(page, total, expected=min(step, total - page.start_from + 1))
            tables.append(page.table)
        return pa.concat_tables(tables), problem

    def _check(self, page: _Page, total: int, *, expected: int) -> str | None:
        """Why this page makes the scan inconsistent, or None."""
        answer = page.answer
        if answer.empty:
            return f"page startFrom={page.start_from} came back empty (000015), total {total}" if total else None
        if answer.total != total:
            return f"total changed from {total} to {answer.total} during the listing"
        if answer.start_from is not None and answer.start_from != page.start_from:
            return f"asked for startFrom={page.start_from}, the server answered startFrom={answer.start_from}"
        got = page.count
        if answer.returned is not None and answer.returned != got:
            return f"page startFrom={page.start_from} says returned={answer.returned} but holds {got} records"
        if got != expected:
            return f"page startFrom={page.start_from} holds {got} records, expected {expected}"
        return None

    # ------------------------------------------------------------------------------- pages

    async def _page(self, window: Window, start_from: int, fetch: WindowFetch, stats: RequestStats) -> _Page:
        probe, self.probe = self.probe, None  # the first call's: the top window's first scan; a rescan asks again
        if probe is not None:
            return self._received(window, [1], [probe.answer], fetch, report=False)[0]
        (page,) = await self._pages(window, [start_from], fetch, stats, report=False, priority=FIRST)
        return page

    async def _pages(
        self, window: Window, starts: Sequence[int], fetch: WindowFetch, stats: RequestStats, *, report: bool = True,
        priority: int = REST,
    ) -> list[_Page]:
        """Request the pages at ``starts`` in one call (one HTTP request, several bodyContent).  A
        first page goes before other pages (it unlocks a whole listing); the rest go oldest
        listing first, so listings finish, and land, one after another."""
        bodies = [_page_body(self.dataset, window, start, site=self.site, zone=self.zone, preliminary=self.preliminary)
                  for start in starts]  # fmt: skip
        answers = await batcher_for(self.client, self.dataset.api_group).call(bodies, stats=stats,
                                                                               priority=(priority, self.age))
        return self._received(window, starts, answers, fetch, report=report)

    def _received(
        self, window: Window, starts: Sequence[int], answers: Sequence[BodyResponse], fetch: WindowFetch, *,
        report: bool,
    ) -> list[_Page]:
        """The typed pages of ``answers`` (to the bodies asking for ``starts``), counted in ``fetch``."""
        pages = []
        for start, answer in zip(starts, answers, strict=True):
            parsed = answer.parsed
            if parsed is None:  # typed by the client already unless the body asked otherwise
                parsed = parse.parse_records(self.dataset, answer.records, site=self.site.name, zone=self.zone,
                                             preliminary=self.preliminary)  # fmt: skip
            fetch.unknown_elements.update(parsed.unknown_elements)
            fetch.bad_values.update(parsed.bad_values)
            fetch.ambiguous_times.update(parsed.ambiguous_times)
            fetch.pages += 1
            # Drop the XML: the typed table is all we keep (see _Page).
            page = _Page(start, dataclasses.replace(answer, records=[], content=None, parsed=None), parsed.table,
                         parsed.table.num_rows)
            pages.append(page)
            if report:
                self._progress(page)
        return pages

    def _progress(self, page: _Page) -> None:
        self.done_pages += 1
        if self.on_page is not None:
            self.on_page(self.done_pages, max(self.known_pages, self.done_pages), page.count)

    # ------------------------------------------------------------------------------- results

    def _finish(
        self, fetch: WindowFetch, stats: RequestStats, table: pa.Table, total: int, dropped: int
    ) -> WindowFetch:
        fetch.table = table
        fetch.total = total
        fetch.duplicates += dropped
        self._add_stats(fetch, stats)
        return fetch

    def _combine(
        self, window: Window, fetch: WindowFetch, stats: RequestStats, parts: list[WindowFetch]
    ) -> WindowFetch:
        self._add_stats(fetch, stats)
        fetch.table = pa.concat_tables([fetch.table] + [p.table for p in parts])
        fetch.total = sum(p.total for p in parts)
        fetch.splits += 1
        for part in parts:
            _add_counts(fetch, part)
        return fetch

    @staticmethod
    def _add_stats(fetch: WindowFetch, stats: RequestStats) -> None:
        fetch.requests += stats.requests
        fetch.retries += stats.retries
        fetch.throttles += stats.throttled
        fetch.throttles_by_cause.update(stats.throttles)
        fetch.throttle_wait_seconds += stats.throttle_wait_seconds

    def _where(self, window: Window, what: str = "") -> str:
        kind = "preliminary " if self.preliminary else ""
        text = f"site {self.site.name}, {kind}{self.dataset.name} {window}"
        return f"{text}: {what}" if what else text


def _add_counts(into: WindowFetch, other: WindowFetch) -> None:
    """Add ``other``'s counters (not its rows) to ``into``'s."""
    for name in ("pages", "requests", "retries", "throttles", "rescans", "splits", "duplicates"):
        setattr(into, name, getattr(into, name) + getattr(other, name))
    into.throttle_wait_seconds += other.throttle_wait_seconds
    into.throttles_by_cause.update(other.throttles_by_cause)
    into.unknown_elements.update(other.unknown_elements)
    into.bad_values.update(other.bad_values)
    into.ambiguous_times.update(other.ambiguous_times)


def dedupe(table: pa.Table, key: Sequence[str]) -> tuple[pa.Table, int]:
    """One row per natural ``key`` (the last listed wins: the freshest copy), in listing order;
    also how many rows were dropped.  Null is a key value like any other."""
    if table.num_rows == 0:
        return table, 0
    keys = table.select(list(key))
    # Hash grouping in Arrow's C++: ~100x faster than Python tuples for a 500k-row window.
    if keys.group_by(list(key)).aggregate([]).num_rows == table.num_rows:
        return table, 0
    rows = keys.append_column("_row", pa.array(range(table.num_rows), pa.int64()))
    last = rows.group_by(list(key), use_threads=False).aggregate([("_row", "max")]).column("_row_max")
    keep = last.take(pc.sort_indices(last))  # survivors in listing order
    return table.take(keep), table.num_rows - len(keep)
