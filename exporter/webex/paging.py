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
import dataclasses
import itertools
import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pyarrow as pa

from ..config import SiteSettings
from ..errors import ExporterError, IncompleteListingError
from ..model.dataset_spec import Dataset
from ..model.windows import Window
from ..records import identity, parse
from ..records.arrow_schema import arrow_schema
from .batching import FIRST, REST, batcher_for
from .client import WebexClient
from .gather import run_all
from .protocol import Body, BodyResponse, list_body, scope_zone
from .stats import RequestStats

__all__ = ["WindowFetch", "Probe", "fetch_window", "probe_window", "DEFAULT_MAX_RESCANS", "MAX_SPLIT_DEPTH",
           "new_listing_age"]

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

    ``table`` is in ``parse.arrow_schema(dataset)``, every row the listing returned (twins
    included); ``total`` is the server's count (the sum over parts when the window was split).
    ``verified`` is False when no scan could be verified complete; ``problem`` says why.
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
    bridge_pages: int = 0  # pages asked to check rows repeated across a page boundary
    verified: bool = True
    problem: str | None = None

    @property
    def records(self) -> int:
        """Rows in ``table``."""
        return int(self.table.num_rows)


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
    maximum_num: int | None = None,
) -> Probe:
    """``matchingRecords/total`` for ``window``, from its first page (one body, batched with
    other bodies).  The body is exactly a listing's first page, so when the window turns out to
    be small enough to list whole, :func:`fetch_window` (``first=``) starts from it: one round
    trip and one body fewer.  ``maximum_num``: ask for fewer records (1: just the total)."""
    if zone is None:
        zone = scope_zone(dataset, time_zone_id=site.time_zone_id, unlabeled_time_zone_id=site.unlabeled_time_zone_id)
    body = _page_body(dataset, window, 1, site=site, zone=zone, preliminary=False, maximum_num=maximum_num)
    (answer,) = await batcher_for(client, dataset.api_group).call([body], stats=stats, priority=(FIRST, 0))
    if answer.empty:
        return Probe(window, 0, answer)
    if answer.total is None:
        raise IncompleteListingError(f"site {site.name}, {dataset.name} {window}: the answer has no matchingRecords/total")
    return Probe(window, answer.total, answer)


def _page_body(dataset: Dataset, window: Window, start_from: int, *, site: SiteSettings, zone: ZoneInfo,
               preliminary: bool, maximum_num: int | None = None) -> Body:
    """The body asking for one listing page (typed by the decoder for ``site``)."""
    return list_body(dataset, window, start_from=start_from, maximum_num=maximum_num or site.throttle.page_size,
                     time_zone_id=site.time_zone_id, zone=zone, preliminary=preliminary,
                     typed_for_site=site.name)


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
        land_unverified: bool = True,
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
        self.schema = arrow_schema(dataset)
        self.done_pages = 0
        self.known_pages = 0
        self.age = age
        self.land_unverified = land_unverified
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
                                    preliminary=self.preliminary)
        _add_counts(self.lost, fetch)

    async def _list(self, window: Window, depth: int, fetch: WindowFetch, stats: RequestStats) -> WindowFetch:
        scans: list[pa.Table] = []  # every failed scan's rows: an unverified landing keeps them all
        while True:
            first = await self._page(window, 1, fetch, stats)
            total = 0 if first.answer.empty else first.answer.total
            if total is None:
                raise IncompleteListingError(self._where(window, "the first page has no matchingRecords/total"))
            if total > self.max_window_records and window.can_split() and depth < MAX_SPLIT_DEPTH:
                log.info("%s: %d records exceed max_window_records=%d; splitting in halves",
                         self._where(window), total, self.max_window_records)
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
                log.warning("%s; landing what the scans saw (%d rows for total %d) as unverified, to be "
                            "verified again on later runs", where, table.num_rows, total)
                fetch.verified, fetch.problem = False, f"still inconsistent after {fetch.rescans} rescans: {problem}"
                return self._finish(fetch, stats, table, total)
            fetch.rescans += 1
            log.warning("%s: %s; listing the window again (rescan %d/%d)", self._where(window), problem,
                        fetch.rescans, self.max_rescans)

    async def _scan(
        self, window: Window, first: _Page, total: int, fetch: WindowFetch, stats: RequestStats
    ) -> tuple[list[_Page], int, str | None]:
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

    async def _verify_boundaries(
        self, window: Window, pages: list[_Page], step: int, total: int, fetch: WindowFetch, stats: RequestStats
    ) -> tuple[pa.Table | None, str | None]:
        """Check rows a consistent scan holds on more than one page (see the module docstring).

        Each boundary with such rows gets a bridge page (half a page either side of it, one
        answer, one ordering).  Rows the bridge shows as often as the scan are real twins.  When
        the bridge shows a row fewer times than the scan served it, the bridge's rows replace the
        scan's at the positions it covers, which heals a tie group the boundary cut, provided no
        row then repeats across the new seams.  Returns the (possibly repaired) rows, or None
        and the problem."""
        scan = pa.concat_tables([p.table for p in pages])
        if len(pages) < 2:
            return scan, None
        columns = identity.content_columns(self.dataset, pages[0].table)
        repeated = identity.repeated_across_pages([p.table for p in pages], columns, self.dataset.natural_key)
        if not repeated:
            return scan, None
        boundaries: set[int] = set()
        for where in repeated.values():
            at = sorted(where)
            if at[-1] - at[0] != len(at) - 1:
                return None, (f"equal rows on pages startFrom={pages[at[0]].start_from} and "
                              f"startFrom={pages[at[-1]].start_from}, with pages between them")
            boundaries.update(at[1:])
        bridge_starts = [max(1, pages[b].start_from - step // 2) for b in sorted(boundaries)]
        bridges = await self._pages(window, bridge_starts, fetch, stats, report=False)
        fetch.bridge_pages += len(bridges)
        for bridge in bridges:
            problem = self._check(bridge, total, expected=min(step, total - bridge.start_from + 1))
            if problem is not None:
                return None, f"bridge page: {problem}"
        bridge_counts = [Counter(identity.content_hashes(b.table, columns).to_pylist()) for b in bridges]

        def confirmed(h: int, served: int) -> bool:
            return any(counts[h] >= served for counts in bridge_counts)

        if all(confirmed(h, sum(where.values())) for h, where in repeated.items()):
            return scan, None  # real twins split by a page boundary
        segments, from_bridge = _splice(pages, bridges)
        still = identity.repeated_across_pages(segments, columns, self.dataset.natural_key)
        for h, where in still.items():
            if not confirmed(h, sum(where.values())):
                start = pages[min(repeated[h]) if h in repeated else 0].start_from
                return None, (f"{sum(where.values())} copies of one row around startFrom={start + step} that no single "
                              "answer confirms (the server's order among tied rows moves between requests)")
        log.info("%s: rows served twice around %d page boundaries (unstable order among tied rows); "
                 "healed with %d bridge pages", self._where(window), len(boundaries), from_bridge)
        return pa.concat_tables(segments), None

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
                  for start in starts]
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
                                             preliminary=self.preliminary)
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

    def _finish(self, fetch: WindowFetch, stats: RequestStats, table: pa.Table, total: int) -> WindowFetch:
        fetch.table = table
        fetch.total = total
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
            if not part.verified:
                fetch.verified = False
                fetch.problem = fetch.problem or f"{part.window}: {part.problem}"
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


def _splice(pages: Sequence[_Page], bridges: Sequence[_Page]) -> tuple[list[pa.Table], int]:
    """The scan's rows by position, each bridge's rows in place of the pages' where it covers
    them: consecutive segments, each from one answer; and how many bridges were used."""
    pieces: list[tuple[int, pa.Table]] = []  # (first position, rows)
    covered_to = 0
    spans = []
    for bridge in sorted(bridges, key=lambda b: b.start_from):
        start = max(bridge.start_from, covered_to)
        end = bridge.start_from + bridge.count
        if start < end:
            pieces.append((start, bridge.table.slice(start - bridge.start_from, end - start)))
            spans.append((start, end))
            covered_to = end
    for page in pages:
        at, end = page.start_from, page.start_from + page.count
        for s_start, s_end in spans:
            if at >= end:
                break
            if s_end <= at or s_start >= end:
                continue
            if s_start > at:
                pieces.append((at, page.table.slice(at - page.start_from, s_start - at)))
            at = max(at, s_end)
        if at < end:
            pieces.append((at, page.table.slice(at - page.start_from, end - at)))
    pieces.sort(key=lambda piece: piece[0])
    return [rows for _, rows in pieces if rows.num_rows], len(spans)


def _add_counts(into: WindowFetch, other: WindowFetch) -> None:
    """Add ``other``'s counters (not its rows) to ``into``'s."""
    for name in ("pages", "requests", "retries", "throttles", "rescans", "splits", "bridge_pages"):
        setattr(into, name, getattr(into, name) + getattr(other, name))
    into.throttle_wait_seconds += other.throttle_wait_seconds
    into.throttles_by_cause.update(other.throttles_by_cause)
    into.unknown_elements.update(other.unknown_elements)
    into.bad_values.update(other.bad_values)
    into.ambiguous_times.update(other.ambiguous_times)
