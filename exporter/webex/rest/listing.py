"""Listing one window of a REST dataset: a top-level listing followed along its next links
(asked once per window for the client's lifetime), a fan-out listing asked per distinct parent
id, and walked again (bounded) when a walk serves one id on two pages; see
:mod:`exporter.webex.rest.client`."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import pyarrow as pa

from ...errors import EndpointError, OperationRetiredError, WindowRangeError
from ...model.counters import Counters
from ...model.dataset_spec import Dataset, RestListing
from ...model.datasets import by_name
from ...obs.logs import event
from ...records import identity
from ..gather import run_all
from ..stats import StatsSink
from .decode import DecodedPage, decode_items, rest_schema
from .links import next_link, repair_next_url
from .pages import RestPages
from .results import REST_THROTTLE_CAUSE, RestFetch

__all__ = ["RestListings", "MAX_PAGES_PER_WALK", "MEETINGS_LIST_CAP", "format_time"]


#: Pages one walk follows at most (100 per page: a million rows); more means a next-link loop.
MAX_PAGES_PER_WALK = 10_000
#: ``/meetings`` lists at most this many instances per query, "even if pagination is enabled".
MEETINGS_LIST_CAP = 10_000


def format_time(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC: how ``from``/``to`` are sent."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class _Walk:
    """One walk of a listing from its first page along its next links."""

    pages: list[DecodedPage] = field(default_factory=list)
    #: The server's 404 (its words), when it answered one.
    not_found: str = ""
    problem: str | None = None

    def table(self, dataset: Dataset) -> pa.Table:
        tables = [p.table for p in self.pages if p.table.num_rows]
        return pa.concat_tables(tables) if tables else rest_schema(dataset).empty_table()

    def counters(self) -> tuple[Counter[str], Counter[str], Counter[str]]:
        unknown: Counter[str] = Counter()
        bad: Counter[str] = Counter()
        placeholders: Counter[str] = Counter()
        for page in self.pages:
            unknown.update(page.unknown_fields)
            bad.update(page.bad_values)
            placeholders.update(page.placeholders)
        return unknown, bad, placeholders


@dataclass(slots=True)
class _Listing:
    """One listing (a top-level window, or one parent id of a fan-out), after its walks."""

    table: pa.Table
    unknown: Counter[str]
    bad: Counter[str]
    placeholders: Counter[str]
    walks: int
    verified: bool = True
    problem: str | None = None
    not_found: str = ""


def _max_counters(counters: Iterable[Counter[str]]) -> Counter[str]:
    out: Counter[str] = Counter()
    for counter in counters:
        for key, value in counter.items():
            out[key] = max(out[key], value)
    return out


def _is_id_keyed(listing: RestListing) -> bool:
    """A listing whose key is made of ids: one id is one row, so an id on two pages is a repeat."""
    return bool(listing.key) and all(k.endswith("_id") for k in listing.key)


def _url_key(url: str) -> tuple[Any, ...]:
    """What makes two URLs ask the same page, however their queries are spelled or ordered."""
    parts = urlsplit(url)
    return (parts.scheme.lower(), parts.netloc.lower(), parts.path,
            tuple(sorted(parse_qsl(parts.query, keep_blank_values=True))))


def _reported_throttles(count: int) -> Counter[str]:
    """``count`` throttles as a listing reports them: all under :data:`REST_THROTTLE_CAUSE`."""
    return Counter({REST_THROTTLE_CAUSE: count}) if count else Counter()


def _link_values(headers: Mapping[str, str]) -> list[str]:
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return list(getall("Link", []))
    value = next((v for k, v in headers.items() if k.lower() == "link"), None)
    return [value] if value else []


class RestListings(RestPages):
    """Window listings of one site's REST client (see the module docstring)."""

    stats: Counters
    max_rewalks: int
    max_page: int | None
    _wall: Callable[[], float]
    _cache: dict[tuple[str, datetime, datetime], asyncio.Future[RestFetch]]

    async def fetch_window(
        self, dataset: Dataset, start: datetime, end: datetime, *, stats: Counters | None = None
    ) -> RestFetch:
        """List ``[start, end)`` of ``dataset`` through its REST listing (module docstring).

        Raises :class:`WindowRangeError` for a window the listing cannot serve, and what the
        answers mean (:mod:`.classify`): ``AuthError`` / ``ReauthorizeError`` /
        ``MissingScopeError`` / ``EndpointError`` (stop the site; the client then refuses every
        call), ``RetryAfterTooLongError``, ``OperationRetiredError`` (404/410: the endpoint is
        unavailable), ``RestRequestError`` / ``ParseError`` (the window fails), and
        ``TransportError`` / ``ThrottledError`` once ``max_attempts`` is used up."""
        listing = self._listing_of(dataset)
        start, end = self._check_window(dataset, start, end)
        if listing.parent:
            return await self._fan_out(dataset, start, end, stats)
        return await self._top_cached(dataset, start, end, stats)

    # ----------------------------------------------------------------------------- windows

    def _listing_of(self, dataset: Dataset) -> RestListing:
        if dataset.rest is None:
            raise ValueError(f"dataset {dataset.name} has no REST listing")
        return dataset.rest

    def _check_window(self, dataset: Dataset, start: datetime, end: datetime) -> tuple[datetime, datetime]:
        listing = self._listing_of(dataset)
        for name, value in (("start", start), ("end", end)):
            if value.tzinfo is None or value.utcoffset() is None:
                raise WindowRangeError(f"{dataset.name}: window {name} must be timezone-aware, got {value.isoformat()}")
        start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
        span = f"{format_time(start)}..{format_time(end)}"
        if not start < end:
            raise WindowRangeError(f"{dataset.name}: empty window {span}")
        if end - start > timedelta(days=listing.window_days):
            raise WindowRangeError(f"{dataset.name}: window {span} is {end - start} long; {listing.path} lists at most "
                                   f"{listing.window_days} days per request (split the window)")
        reach = datetime.fromtimestamp(self._wall(), timezone.utc) - timedelta(days=listing.reach_days)
        if start < reach:
            raise WindowRangeError(f"{dataset.name}: window {span} starts before {format_time(reach)}; {listing.path} "
                                   f"reaches back {listing.reach_days} days only")
        return start, end

    def _page_size(self, listing: RestListing) -> str:
        return str(listing.max_page if self.max_page is None else max(1, min(listing.max_page, self.max_page)))

    def _url(self, path: str, params: Sequence[tuple[str, str]]) -> str:
        return f"{self.rest.base_url}{path}?{urlencode(list(params), quote_via=quote, safe='')}"

    # ----------------------------------------------------------------------------- listings

    async def _top_cached(self, dataset: Dataset, start: datetime, end: datetime,
                          stats: Counters | None) -> RestFetch:
        """A top-level listing, asked once per (dataset, window) for the client's lifetime: a
        second caller gets the first's rows, marked ``cached`` and costing nothing."""
        key = (dataset.name, start, end)
        waiting = self._cache.get(key)
        if waiting is not None:
            result = await asyncio.shield(waiting)
            # The rows (and what they held) again, at no cost.
            cached = dataclasses.replace(result, cached=True, placeholders=Counter(result.placeholders))
            cached.reset()
            cached.unknown_elements.update(result.unknown_elements)
            cached.bad_values.update(result.bad_values)
            return cached
        future: asyncio.Future[RestFetch] = asyncio.get_running_loop().create_future()
        self._cache[key] = future
        try:
            result = await self._top(dataset, start, end, stats)
        except BaseException as exc:
            self._cache.pop(key, None)
            if isinstance(exc, Exception):
                future.set_exception(exc)
                future.exception()  # retrieved: nobody may be waiting
            else:
                future.cancel()
            raise
        future.set_result(result)
        return result

    async def _top(self, dataset: Dataset, start: datetime, end: datetime, stats: Counters | None) -> RestFetch:
        listing = self._listing_of(dataset)
        local = Counters()
        sink = StatsSink(self.stats, local, stats)
        params = [("siteUrl", self.rest.site_url), ("from", format_time(start)), ("to", format_time(end)),
                  ("max", self._page_size(listing)), *listing.params]
        done = await self._list(dataset, params, None, listing.path, sink)
        if done.not_found:
            raise self._retired(dataset, "http404", done.not_found)
        return RestFetch(
            dataset=dataset.name, start=start, end=end, table=done.table, pages=local.pages, requests=local.requests,
            retries=local.retries, throttles_by_cause=_reported_throttles(local.throttles),
            throttle_wait_seconds=local.throttle_wait_seconds, unknown_elements=done.unknown,
            bad_values=done.bad,
            placeholders=done.placeholders, verified=done.verified, problem=done.problem, walks=done.walks,
        )

    async def _fan_out(self, dataset: Dataset, start: datetime, end: datetime, stats: Counters | None) -> RestFetch:
        listing = self._listing_of(dataset)
        parent_dataset = by_name(listing.parent or "")
        parent = await self.fetch_window(parent_dataset, start, end, stats=stats)
        local = Counters(pages=parent.pages, requests=parent.requests, retries=parent.retries,
                         throttle_wait_seconds=parent.throttle_wait_seconds)
        sink = StatsSink(self.stats, local, stats)
        # Distinct parent ids in the parent's order, each with its first row's carry values.
        wanted = [listing.parent_id, *(source for source, _ in listing.carry)]
        missing = [c for c in wanted if c not in parent.table.column_names]
        if missing:
            raise AssertionError(f"{dataset.name}: the parent {parent_dataset.name} has no column {missing}")
        rows = parent.table.select(wanted).to_pylist()
        parents: dict[str, dict[str, Any]] = {}
        for row in rows:
            value = row[listing.parent_id]
            if value is None or value == "" or str(value) in parents:
                continue
            parents[str(value)] = {target: row[source] for source, target in listing.carry}
        gate = asyncio.Semaphore(max(1, self.site.throttle.max_concurrency) * 2)
        base = [("siteUrl", self.rest.site_url)]
        if listing.child_time_range:
            base += [("from", format_time(start)), ("to", format_time(end))]

        async def child(parent_id: str, carry: dict[str, Any]) -> _Listing:
            async with gate:
                params = [(listing.id_param, parent_id), *base, ("max", self._page_size(listing)), *listing.params]
                return await self._list(dataset, params, carry, f"{listing.path} {listing.id_param}={parent_id}", sink)

        results = await run_all(child(i, c) for i, c in parents.items())
        not_found = sum(bool(r.not_found) for r in results)
        if len(results) >= 2 and not_found == len(results):
            raise self._retired(dataset, "http404", f"{results[0].not_found}, and so for all {len(results)} "
                                                    f"{listing.id_param}s")
        if not_found:
            event("parent ids answered 404 (nothing to list)", site=self.site.name, dataset=dataset.name,
                  not_found=not_found, parents=len(results), id_param=listing.id_param)
        tables = [r.table for r in results if r.table.num_rows]
        table = pa.concat_tables(tables) if tables else rest_schema(dataset).empty_table()
        problems = [r.problem for r in results if r.problem]
        if not parent.verified:
            problems.insert(0, f"its parent listing {parent_dataset.name} is unverified ({parent.problem})")
        problem = None
        if problems:
            problem = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        unknown: Counter[str] = Counter()
        bad: Counter[str] = Counter()
        placeholders: Counter[str] = Counter()
        for r in results:
            unknown.update(r.unknown)
            bad.update(r.bad)
            placeholders.update(r.placeholders)
        return RestFetch(
            dataset=dataset.name, start=start, end=end, table=table, pages=local.pages, requests=local.requests,
            retries=local.retries, throttles_by_cause=_reported_throttles(local.throttles + parent.throttles),
            throttle_wait_seconds=local.throttle_wait_seconds,
            unknown_elements=unknown,
            bad_values=bad, placeholders=placeholders, verified=not problems, problem=problem,
            walks=sum(r.walks for r in results), parents=len(results), not_found=not_found,
        )

    async def _list(self, dataset: Dataset, params: list[tuple[str, str]], carry: dict[str, Any] | None, what: str,
                    sink: StatsSink) -> _Listing:
        """Walk one listing; again (bounded) while a walk serves one id on two pages."""
        listing = self._listing_of(dataset)
        first = self._url(listing.path, params)
        walks: list[_Walk] = []
        problem = None
        for attempt in range(1 + self.max_rewalks):
            walk = await self._walk(dataset, first, params, carry, what, sink)
            walks.append(walk)
            if walk.not_found:
                empty = rest_schema(dataset).empty_table()
                return _Listing(empty, Counter(), Counter(), Counter(), len(walks), not_found=walk.not_found)
            problem = walk.problem or self._repeats(dataset, walk)
            if problem is None:
                table = walk.table(dataset)
                unknown, bad, placeholders = walk.counters()
                if listing.path == "/meetings" and table.num_rows >= self.rest.meetings_list_cap:
                    capped = (f"{what}: {table.num_rows} rows, the most /meetings lists per query; some may be cut "
                              "(shorten the window)")
                    return _Listing(table, unknown, bad, placeholders, len(walks), verified=False, problem=capped)
                return _Listing(table, unknown, bad, placeholders, len(walks))
            if attempt < self.max_rewalks:
                event("listing incomplete; listing it again", level=logging.WARNING, site=self.site.name, listing=what,
                      problem=problem, rewalk=attempt + 1, rewalks=self.max_rewalks)
        columns = [n for n in rest_schema(dataset).names if n not in ("site", "_preliminary")]
        table = identity.union_by_content([w.table(dataset) for w in walks], columns)
        counters = [w.counters() for w in walks]
        text = f"{what}: {problem} in each of {len(walks)} walks; landed unverified with every row seen"
        event("listing incomplete in every walk; landed unverified with every row seen", level=logging.WARNING,
              site=self.site.name, listing=what, problem=problem, walks=len(walks))
        return _Listing(table, _max_counters(c[0] for c in counters), _max_counters(c[1] for c in counters),
                        _max_counters(c[2] for c in counters), len(walks), verified=False, problem=text)

    def _repeats(self, dataset: Dataset, walk: _Walk) -> str | None:
        """Why a walk of an id-keyed listing is not complete (an id on two pages), or None."""
        listing = self._listing_of(dataset)
        if not _is_id_keyed(listing) or len(walk.pages) < 2:
            return None
        first_page: dict[tuple[Any, ...], int] = {}
        repeated: list[tuple[Any, ...]] = []
        for number, page in enumerate(walk.pages, 1):
            keys = set(zip(*(page.table.column(k).to_pylist() for k in listing.key), strict=True))
            for key in keys:
                seen = first_page.setdefault(key, number)
                if seen != number:
                    repeated.append(key)
        if not repeated:
            return None
        example = ", ".join(f"{k}={v}" for k, v in zip(listing.key, repeated[0], strict=True))
        return (f"{len(repeated)} row(s) served on two pages with the same {', '.join(listing.key)} (e.g. {example}): "
                "the data moved while paging, so others may have been skipped")

    async def _walk(self, dataset: Dataset, url: str, params: list[tuple[str, str]], carry: dict[str, Any] | None,
                    what: str, sink: StatsSink) -> _Walk:
        """From the first page along the next links until no next link or an empty page."""
        walk = _Walk()
        seen = {_url_key(url)}
        while True:
            document, headers, asked = await self._page(url, what, sink)
            if not isinstance(document, dict):
                walk.not_found = document or "http404"
                return walk
            sink.add(Counters(pages=1))
            items = document["items"]
            if not items:
                return walk
            walk.pages.append(decode_items(dataset, items, site=self.site.name, carry=carry))
            target = next_link(_link_values(headers))
            if target is None:
                return walk
            try:
                url = repair_next_url(target, request_url=asked, base_url=self.rest.base_url, first_params=params)
            except EndpointError as exc:
                raise self._stop.die(type(exc)(f"site {self.site.name}: {what}: {exc}")) from None
            if _url_key(url) in seen:
                walk.problem = f"the next link of page {len(walk.pages)} leads back to an earlier page"
                return walk
            if len(walk.pages) >= MAX_PAGES_PER_WALK:
                walk.problem = f"still a next link after {MAX_PAGES_PER_WALK} pages"
                return walk
            seen.add(_url_key(url))

    def _retired(self, dataset: Dataset, code: str, said: str) -> OperationRetiredError:
        listing = self._listing_of(dataset)
        return self._retired_path(listing.path, code, said)
