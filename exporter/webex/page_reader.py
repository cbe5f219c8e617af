"""Reading a listing's pages: the bodies asking for them (batched, first pages first, oldest
listing first), the typed rows of each answer counted into the window's fetch, progress, and the
checks that make a scan consistent (same total, the startFrom asked, the rows it should hold)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pyarrow as pa

from ..config import SiteSettings
from ..model.counters import Counters
from ..model.dataset_spec import Dataset
from ..model.windows import Window
from ..records import parse
from ..records.arrow_schema import arrow_schema
from .batching import FIRST, REST, batcher_for
from .client import WebexClient
from .protocol import Body, BodyResponse, list_body
from .window_fetch import Probe, WindowFetch

__all__ = ["PageReader", "Page", "PageCallback", "page_body"]


#: ``on_page(done_pages, known_pages, page_records)``
PageCallback = Callable[[int, int, int], None]


@dataclass(slots=True)
class Page:
    """One page as received: what we asked, what came back (without its XML), its typed rows.

    ``answer`` is kept without ``records``/``content``: those elements pin the response's whole
    lxml tree, and a dense window would otherwise hold the trees of all its pages until it ends.
    """

    start_from: int
    answer: BodyResponse
    table: pa.Table
    count: int  # records the page held

def page_body(dataset: Dataset, window: Window, start_from: int, *, site: SiteSettings, zone: ZoneInfo,
               preliminary: bool, maximum_num: int | None = None) -> Body:
    """The body asking for one listing page (typed by the decoder for ``site``)."""
    return list_body(dataset, window, start_from=start_from, maximum_num=maximum_num or site.throttle.page_size,
                     time_zone_id=site.time_zone_id, zone=zone, preliminary=preliminary,
                     typed_for_site=site.name)


class PageReader:
    """The state of one ``fetch_window`` call, shared by the parts of a split window, and its
    page requests (see the module docstring)."""

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

    # ------------------------------------------------------------------------------- pages

    async def _page(self, window: Window, start_from: int, fetch: WindowFetch, stats: Counters) -> Page:
        probe, self.probe = self.probe, None  # the first call's: the top window's first scan; a rescan asks again
        if probe is not None:
            return self._received(window, [1], [probe.answer], fetch, report=False)[0]
        (page,) = await self._pages(window, [start_from], fetch, stats, report=False, priority=FIRST)
        return page

    async def _pages(
        self, window: Window, starts: Sequence[int], fetch: WindowFetch, stats: Counters, *, report: bool = True,
        priority: int = REST,
    ) -> list[Page]:
        """Request the pages at ``starts`` in one call (one HTTP request, several bodyContent).  A
        first page goes before other pages (it unlocks a whole listing); the rest go oldest
        listing first, so listings finish, and land, one after another."""
        bodies = [page_body(self.dataset, window, start, site=self.site, zone=self.zone, preliminary=self.preliminary)
                  for start in starts]
        answers = await batcher_for(self.client, self.dataset.api_group).call(bodies, stats=stats,
                                                                               priority=(priority, self.age))
        return self._received(window, starts, answers, fetch, report=report)

    def _received(
        self, window: Window, starts: Sequence[int], answers: Sequence[BodyResponse], fetch: WindowFetch, *,
        report: bool,
    ) -> list[Page]:
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
            # Drop the XML: the typed table is all we keep (see Page).
            page = Page(start, dataclasses.replace(answer, records=[], content=None, parsed=None), parsed.table,
                         parsed.table.num_rows)
            pages.append(page)
            if report:
                self._progress(page)
        return pages

    def _progress(self, page: Page) -> None:
        self.done_pages += 1
        if self.on_page is not None:
            self.on_page(self.done_pages, max(self.known_pages, self.done_pages), page.count)

    def _check(self, page: Page, total: int, *, expected: int) -> str | None:
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

    def _where(self, window: Window, what: str = "") -> str:
        kind = "preliminary " if self.preliminary else ""
        text = f"site {self.site.name}, {kind}{self.dataset.name} {window}"
        return f"{text}: {what}" if what else text
