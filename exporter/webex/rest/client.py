"""The Webex REST client of one site: OAuth bearer tokens, the site's request budget, paging.

``await client.fetch_window(dataset, start, end)`` lists one window of a dataset's
:class:`~exporter.model.datasets.RestListing` to its end and returns a :class:`RestFetch` (a typed
table by :mod:`.decode`, counters, and whether the listing could be verified):

* a top-level listing asks ``path?siteUrl=&from=&to=&max=<max_page>&<params>`` and follows
  ``Link: rel="next"`` (:mod:`.links`: ``max=null`` stripped, lost parameters re-added, another
  host refused) until a page has no next link or no items;
* a fan-out listing (``parent``) lists the parent's window first (kept for the client's lifetime:
  a run exporting both asks once) and then each distinct parent id, concurrently within the budget;
* a listing keyed by ids that serves one id on two pages (data moved while paging, so another row
  may have been skipped) is walked again, a bounded number of times; if no walk is clean, the
  fetch comes back ``verified=False`` with every row any walk saw and a ``problem`` text; rows are
  never dropped.

Every request waits for the site's REST budget (:mod:`exporter.webex.throttle`, API group ``rest``:
Webex publishes no numbers, so the site's throttle settings apply), on the event loop's clock;
answers are classified by :mod:`.classify` and acted on: cool-downs (429/423, ``Retry-After``
honoured; one above ``max_retry_after_seconds`` stops the site for the run), backoff with jitter
(5xx, resets, timeouts, JSON cut short; a 504 halves ``max``), one token refresh on a 401.

What the client refuses, whatever the server says: follow a redirect or a next link to another
origin (the request carries the bearer token), skip TLS verification (aiohttp's default context),
read more than ``throttle.max_response_bytes`` (decompressed by us, bounded), or sleep longer than
``max_retry_after_seconds``.  This module is the one place where aiohttp's and asyncio's
exceptions become :mod:`exporter.errors` (for the token endpoint's requests too).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode, urlsplit, urlunsplit

import aiohttp
import pyarrow as pa

from ...config import Secret, SiteSettings
from ...errors import (
    AuthError,
    CertificateError,
    ConfigError,
    DamagedResponseError,
    EndpointError,
    ExporterError,
    FatalSiteError,
    MissingScopeError,
    OperationRetiredError,
    ParseError,
    RedirectError,
    RestRequestError,
    RetryAfterTooLongError,
    ThrottledError,
    TransportError,
    WindowRangeError,
)
from ...model.dataset_spec import Dataset, RestListing
from ...model.datasets import by_name
from ...records import identity
from ..backoff import backoff_delay
from ..gather import run_all
from ..http_body import network_error, read_body
from ..stats import RequestStats, StatsSink
from ..throttle import SiteThrottle
from .classify import RawReply, RestOutcome, RestVerdict, classify_rest
from .decode import DecodedPage, decode_items, rest_schema
from .links import next_link, repair_next_url
from .oauth import TokenEndpoint, TokenManager, check_scopes
from .tokens import Tokens, TokenStore, reauthorize_hint, seed_from_authorization_code, seed_from_refresh_token

__all__ = [
    "RestClient",
    "RestFetch",
    "RestStats",
    "REST_GROUP",
    "DEFAULT_MAX_REWALKS",
    "MAX_PAGES_PER_WALK",
    "MEETINGS_LIST_CAP",
    "format_time",
    "seed_tokens",
]

log = logging.getLogger(__name__)

#: The API group of every REST request in the site's throttle.
REST_GROUP = "rest"
#: Times a listing is walked again after a walk that served one id on two pages.
DEFAULT_MAX_REWALKS = 2
#: Pages one walk follows at most (100 per page: a million rows); more means a next-link loop.
MAX_PAGES_PER_WALK = 10_000
#: ``/meetings`` lists at most this many instances per query, "even if pagination is enabled".
MEETINGS_LIST_CAP = 10_000
#: Error answers are read up to this many bytes (their message and trackingId are short).
_ERROR_BODY_LIMIT = 64 * 1024
_ACCEPT = {"Accept": "application/json", "Accept-Encoding": "gzip, deflate"}


def format_time(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC: how ``from``/``to`` are sent."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class RestStats(RequestStats):
    """:class:`~exporter.webex.stats.RequestStats` plus the pages read.  ``auth_requests`` counts the
    401s answered by renewing the access token (the token endpoint's own requests are
    ``client.endpoint.requests``)."""

    pages: int = 0

    def add(self, other: RequestStats) -> None:
        """Add ``other``'s counts to these."""
        RequestStats.add(self, other)
        self.pages += getattr(other, "pages", 0)


@dataclass(slots=True)
class RestFetch:
    """What listing one window produced.

    ``table`` is in ``decode.rest_schema(dataset)``: every row the listing returned.  ``pages``,
    ``requests``, ``retries``, ``throttles`` are what this fetch cost (a fan-out's include its
    parent listing unless that came from the cache; ``cached`` fetches cost nothing).
    ``verified`` is False when no walk could be shown complete (``problem`` says why; the rows
    are then the union of every walk).  ``parents``: parent ids a fan-out asked about;
    ``not_found``: of those, the ones the server answered 404 (nothing to list)."""

    dataset: str
    start: datetime
    end: datetime
    table: pa.Table
    pages: int = 0
    requests: int = 0
    retries: int = 0
    throttles: int = 0
    unknown_fields: Counter[str] = field(default_factory=Counter)
    bad_values: Counter[str] = field(default_factory=Counter)
    placeholders: Counter[str] = field(default_factory=Counter)
    verified: bool = True
    problem: str | None = None
    walks: int = 0
    parents: int = 0
    not_found: int = 0
    cached: bool = False

    @property
    def rows(self) -> int:
        """Rows in the table."""
        return int(self.table.num_rows)


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


def _halve_max(url: str) -> str:
    """``url`` with its ``max`` halved (at least 1): a 504 asks for a smaller page."""
    parts = urlsplit(url)
    segments = []
    for segment in parts.query.split("&"):
        key, _, value = segment.partition("=")
        if unquote_plus(key) == "max" and value.isdigit() and int(value) > 1:
            segment = f"{key}={int(value) // 2}"
        segments.append(segment)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(segments), parts.fragment))


def _url_key(url: str) -> tuple[Any, ...]:
    """What makes two URLs ask the same page, however their queries are spelled or ordered."""
    parts = urlsplit(url)
    return (parts.scheme.lower(), parts.netloc.lower(), parts.path,
            tuple(sorted(parse_qsl(parts.query, keep_blank_values=True))))


def _link_values(headers: Mapping[str, str]) -> list[str]:
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return list(getall("Link", []))
    value = next((v for k, v in headers.items() if k.lower() == "link"), None)
    return [value] if value else []


class RestClient:
    """The REST client of one site (see the module docstring).

    ``session`` is shared when given (the caller closes it); otherwise the client makes one and
    :meth:`close` closes it.  ``throttle`` is the site's :class:`SiteThrottle` (shared with its
    XML client when the site uses both; the REST requests are their own API group).  ``store``
    defaults to the site's ``rest.token_file``.  ``wall`` is the wall clock token expiries and the
    reach of a window are judged by (tests pass the simulator's); every wait is on the event loop.
    ``max_page`` caps every listing's ``max`` (smaller pages; tests use it to page a lot)."""

    def __init__(
        self,
        site: SiteSettings,
        session: aiohttp.ClientSession | None = None,
        *,
        throttle: SiteThrottle | None = None,
        store: TokenStore | None = None,
        wall: Callable[[], float] | None = None,
        rng: random.Random | None = None,
        max_rewalks: int = DEFAULT_MAX_REWALKS,
        max_page: int | None = None,
    ) -> None:
        if site.rest is None:
            raise ConfigError(f"site {site.name}: no [sites.rest] table: the REST source is not configured")
        self.site = site
        self.rest = site.rest
        self.throttle = throttle or SiteThrottle(site.name, site.throttle)
        self.stats = RestStats()
        self.max_rewalks = max(0, max_rewalks)
        #: Items per page asked at most (default: each listing's ``max_page``).
        self.max_page = max_page
        self._session = session
        self._own_session = session is None
        self._wall = wall or time.time
        self._rng = rng or random.Random()
        self.store = store or TokenStore(self.rest.token_file, site=site.name, wall=self._wall)
        self.endpoint = TokenEndpoint(self.rest, self._post_form, site=site.name, settings=site.throttle, rng=self._rng)
        self.tokens = TokenManager(self.store, self.endpoint, site=site.name, wall=self._wall)
        self._fatal: FatalSiteError | None = None
        self._held_until = -math.inf
        self._held_message = ""
        self._cache: dict[tuple[str, datetime, datetime], asyncio.Future[RestFetch]] = {}
        parts = urlsplit(self.rest.base_url)
        self._endpoint = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"

    def __repr__(self) -> str:
        return f"RestClient(site={self.site.name!r}, base_url={self.rest.base_url!r}, site_url={self.rest.site_url!r})"

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def forget(self, dataset: Dataset | None = None) -> None:
        """Drop cached listings (of ``dataset``, or all): the next fetch asks the server again."""
        for key in [k for k in self._cache if dataset is None or k[0] == dataset.name]:
            if self._cache[key].done():
                del self._cache[key]

    async def close(self) -> None:
        """Close the HTTP session if the client made it; forget cached parent listings."""
        self._cache.clear()
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    # ----------------------------------------------------------------------------- public API

    async def scopes(self) -> set[str]:
        """The scopes granted to the stored token (as its last grant said; empty if it did not)."""
        try:
            return await self.tokens.scopes()
        except FatalSiteError as exc:
            raise self._die(exc) from None

    async def check_scopes(self, datasets: Iterable[Dataset]) -> None:
        """Raise :class:`MissingScopeError` naming the datasets whose scopes the token lacks (a
        no-op, logged, when the grant did not list its scopes)."""
        wanted = [d for d in datasets if d.rest is not None]
        granted = await self.scopes()
        if not granted:
            log.warning("site %s: the token's grant did not list its scopes; not checked", self.site.name)
            return
        check_scopes(granted, wanted, site=self.site.name)

    async def fetch_window(
        self, dataset: Dataset, start: datetime, end: datetime, *, stats: RequestStats | None = None
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
                          stats: RequestStats | None) -> RestFetch:
        """A top-level listing, asked once per (dataset, window) for the client's lifetime: a
        second caller gets the first's rows, marked ``cached`` and costing nothing."""
        key = (dataset.name, start, end)
        waiting = self._cache.get(key)
        if waiting is not None:
            result = await asyncio.shield(waiting)
            return dataclasses.replace(result, pages=0, requests=0, retries=0, throttles=0, cached=True,
                                       unknown_fields=Counter(result.unknown_fields),
                                       bad_values=Counter(result.bad_values),
                                       placeholders=Counter(result.placeholders))
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

    async def _top(self, dataset: Dataset, start: datetime, end: datetime, stats: RequestStats | None) -> RestFetch:
        listing = self._listing_of(dataset)
        local = RestStats()
        sink = StatsSink(self.stats, local, stats)
        params = [("siteUrl", self.rest.site_url), ("from", format_time(start)), ("to", format_time(end)),
                  ("max", self._page_size(listing)), *listing.params]
        done = await self._list(dataset, params, None, listing.path, sink)
        if done.not_found:
            raise self._retired(dataset, "http404", done.not_found)
        return RestFetch(
            dataset=dataset.name, start=start, end=end, table=done.table, pages=local.pages, requests=local.requests,
            retries=local.retries, throttles=local.throttled, unknown_fields=done.unknown, bad_values=done.bad,
            placeholders=done.placeholders, verified=done.verified, problem=done.problem, walks=done.walks,
        )

    async def _fan_out(self, dataset: Dataset, start: datetime, end: datetime, stats: RequestStats | None) -> RestFetch:
        listing = self._listing_of(dataset)
        parent_dataset = by_name(listing.parent or "")
        parent = await self.fetch_window(parent_dataset, start, end, stats=stats)
        local = RestStats(pages=parent.pages, requests=parent.requests, retries=parent.retries)
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
            log.info("site %s: %s: %d of %d %ss answered 404 (nothing to list)", self.site.name, dataset.name,
                     not_found, len(results), listing.id_param)
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
            retries=local.retries, throttles=local.throttled + parent.throttles, unknown_fields=unknown,
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
                log.warning("site %s: %s: %s; listing it again (%d of %d)", self.site.name, what, problem,
                            attempt + 1, self.max_rewalks)
        columns = [n for n in rest_schema(dataset).names if n not in ("site", "_preliminary")]
        table = identity.union_by_content([w.table(dataset) for w in walks], columns)
        counters = [w.counters() for w in walks]
        text = f"{what}: {problem} in each of {len(walks)} walks; landed unverified with every row seen"
        log.warning("site %s: %s", self.site.name, text)
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
            sink.bump("pages")
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
                raise self._die(type(exc)(f"site {self.site.name}: {what}: {exc}")) from None
            if _url_key(url) in seen:
                walk.problem = f"the next link of page {len(walk.pages)} leads back to an earlier page"
                return walk
            if len(walk.pages) >= MAX_PAGES_PER_WALK:
                walk.problem = f"still a next link after {MAX_PAGES_PER_WALK} pages"
                return walk
            seen.add(_url_key(url))

    # ----------------------------------------------------------------------------- one page

    async def _page(self, url: str, what: str, sink: StatsSink) -> tuple[dict[str, Any] | str, Mapping[str, str], str]:
        """GET one page until it has a usable answer: (document, headers, the URL that answered);
        instead of the document, what the server said when it answered 404."""
        settings = self.site.throttle
        group = self.throttle.group(REST_GROUP)
        failures = throttles = 0
        renewed = False
        while True:
            self._raise_if_dead()
            token = await self._access_token()
            async with group.slot() as permit:
                sink.permit(permit)
                self._raise_if_dead()  # a hold may have begun while we waited for the budget
                sink.bump("requests")
                reply = await self._exchange("GET", url, {**_ACCEPT, "Authorization": f"Bearer {token.reveal()}",
                                                          "timezone": "UTC"})
            verdict = classify_rest(reply.status, reply.headers, reply.body, cooldown_seconds=settings.cooldown_seconds,
                                    max_retry_after_seconds=settings.max_retry_after_seconds)
            outcome = verdict.outcome
            if outcome is RestOutcome.OK:
                group.report_success(permit)
                return verdict.document, reply.headers, url
            said = self._scrub(verdict.describe())
            if outcome is RestOutcome.EXPIRED:
                if renewed:
                    raise self._die(AuthError(
                        f"site {self.site.name}: {what}: the server refused a freshly refreshed access token ({said}); "
                        f"{reauthorize_hint(self.site.name)}"))
                renewed = True
                sink.bump("retries")
                sink.bump("auth_requests")
                log.info("site %s: %s: access token refused (%s); refreshing it once", self.site.name, what, said)
                try:
                    await self.tokens.renew(token)
                except FatalSiteError as exc:
                    raise self._die(exc) from None
                continue
            if outcome is RestOutcome.THROTTLED:
                throttles += 1
                sink.throttle(verdict.code)
                blocked = max(group.blocked_until, asyncio.get_running_loop().time())
                group.report_throttle(permit, verdict.retry_after, verdict.code)
                sink.bump("throttle_wait_seconds", max(0.0, group.blocked_until - blocked))
                if throttles >= settings.max_attempts:
                    raise ThrottledError(f"site {self.site.name}: {what} throttled {throttles} times in a row "
                                         f"({said}); giving up for now", delay=group.cooldown,
                                         cause=verdict.code)
                continue  # the next slot waits for the cool-down
            if outcome is RestOutcome.HOLD:
                raise self._hold(verdict, what)
            if outcome is RestOutcome.RETRY:
                failures += 1
                if failures >= settings.max_attempts:
                    raise TransportError(f"site {self.site.name}: {what} failed {failures} times; last: {said}")
                sink.bump("retries")
                if verdict.halve_page:
                    url = _halve_max(url)
                if verdict.delay is not None:  # the server's Retry-After, within our backoff cap
                    pause = min(verdict.delay, max(settings.backoff_max_seconds, 0.0))
                else:
                    pause = backoff_delay(failures, base=settings.backoff_base_seconds,
                                          cap=settings.backoff_max_seconds, rng=self._rng)
                log.info("site %s: %s failed (%s), retry %d of %d in %.2f s", self.site.name, what, said, failures,
                         settings.max_attempts - 1, pause)
                await asyncio.sleep(pause)
                continue
            if outcome is RestOutcome.NOT_FOUND:
                return said, reply.headers, url
            if outcome is RestOutcome.GONE:
                raise self._retired_path(what, verdict.code, said)
            if outcome is RestOutcome.FORBIDDEN:
                raise self._die(MissingScopeError(
                    f"site {self.site.name}: {what} was refused ({said}): the token lacks a scope this endpoint needs, "
                    "or the user who authorized it lacks the admin role. Fix the integration's scopes or the user's "
                    f"roles, then {reauthorize_hint(self.site.name)}"))
            if outcome is RestOutcome.BAD_REQUEST:
                raise RestRequestError(verdict.status or 400, self._scrub(verdict.message), operation=what,
                                       tracking_id=verdict.tracking_id)
            if outcome is RestOutcome.ENDPOINT:
                raise self._endpoint_error(verdict, what, said)
            raise ParseError(f"site {self.site.name}: {what}: {said}; not asked again (the same request gets the same "
                             "answer)")

    async def _access_token(self) -> Secret:
        try:
            return await self.tokens.access_token()
        except FatalSiteError as exc:
            raise self._die(exc) from None

    # ----------------------------------------------------------------------------- failures

    def _retired(self, dataset: Dataset, code: str, said: str) -> OperationRetiredError:
        listing = self._listing_of(dataset)
        return self._retired_path(listing.path, code, said)

    def _retired_path(self, what: str, code: str, said: str) -> OperationRetiredError:
        message = (f"site {self.site.name}: {what} is not available ({said}): the endpoint is retired or this site "
                   "cannot use it; the dataset is skipped")
        log.warning("%s", message)
        return OperationRetiredError(message, operation=what.split(" ")[0], exception_id=code)

    def _endpoint_error(self, verdict: RestVerdict, what: str, said: str) -> FatalSiteError:
        if verdict.code == "tls":
            error: FatalSiteError = CertificateError(
                f"site {self.site.name}: {said}; not retried: the server is not who {self.rest.base_url} says (fix "
                "base_url or the trust store)")
        elif verdict.status is not None and 300 <= verdict.status < 400:
            error = RedirectError(f"site {self.site.name}: {what} answered {said}; redirects are never followed "
                                  "(every request carries the bearer token). Not retried: fix [sites.rest] "
                                  "base_url.")
        else:
            error = EndpointError(f"site {self.site.name}: {what} answered {said}; this site's data lives elsewhere "
                                  "(another region?): fix [sites.rest] base_url")
        return self._die(error)

    def _raise_if_dead(self) -> None:
        if self._fatal is not None:
            raise type(self._fatal)(str(self._fatal))
        left = self._held_until - asyncio.get_running_loop().time()
        if left > 0:
            raise RetryAfterTooLongError(self._held_message, delay=left)

    def _hold(self, verdict: RestVerdict, what: str) -> RetryAfterTooLongError:
        """A Retry-After above our limit: stop the site for this run rather than sleep; nothing
        is sent before that time (a later run in ``serve`` asks again)."""
        wait = verdict.delay or 0.0
        limit = self.site.throttle.max_retry_after_seconds
        self._held_until = max(self._held_until, asyncio.get_running_loop().time() + wait)
        self._held_message = (f"site {self.site.name}: {what}: the server asked us to wait {wait:.0f} s "
                              f"({verdict.code}, Retry-After), more than max_retry_after_seconds = {limit:g}; "
                              "stopping this site for this run")
        log.error("%s", self._held_message)
        return RetryAfterTooLongError(self._held_message, delay=wait)

    def _die(self, error: FatalSiteError) -> FatalSiteError:
        """Remember a fatal error: every later call raises it without sending anything."""
        if self._fatal is None:
            self._fatal = error
            log.error("%s", error)
        return error

    def _scrub(self, text: str) -> str:
        """``text`` with every secret we hold masked (servers sometimes echo what they got)."""
        for secret in (*self.tokens.secrets(), self.rest.client_secret):
            if secret is not None and secret.reveal():
                text = text.replace(secret.reveal(), "***")
        return text

    # ----------------------------------------------------------------------------- HTTP

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()  # TLS verified with the default context
        return self._session

    async def _post_form(self, url: str, form: Mapping[str, str]) -> RawReply:
        """One form-encoded POST (the token endpoint's requests)."""
        headers = {**_ACCEPT, "Content-Type": "application/x-www-form-urlencoded"}
        return await self._exchange("POST", url, headers, urlencode(dict(form)).encode())

    async def _exchange(self, method: str, url: str, headers: Mapping[str, str], data: bytes | None = None) -> RawReply:
        """One HTTP request; network failures come back as an error in the reply (status None).
        Redirects are not followed; the body is read (and decompressed) up to the size limit."""
        settings = self.site.throttle
        timeout = aiohttp.ClientTimeout(total=settings.request_timeout_seconds)
        try:
            async with self._http().request(method, url, headers=dict(headers), data=data, timeout=timeout,
                                            allow_redirects=False, auto_decompress=False) as response:
                status, answer_headers = response.status, response.headers
                ok = 200 <= status < 300
                body: bytes | BaseException
                try:
                    body = await read_body(response, settings.max_response_bytes if ok else _ERROR_BODY_LIMIT)
                except DamagedResponseError as exc:
                    body = exc
                except ParseError as exc:
                    body = exc if ok else b""  # an error page too large to read: its status says enough
                return RawReply(status, answer_headers, body, url)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return RawReply(None, {}, self._network_error(exc), url)

    def _network_error(self, exc: BaseException) -> ExporterError:
        return network_error(exc, self._endpoint, self._scrub)


# --------------------------------------------------------------------------------------------------
# The ``auth`` command's side


async def seed_tokens(
    site: SiteSettings,
    *,
    refresh_token: Secret | None = None,
    code: Secret | None = None,
    redirect_uri: str = "",
    session: aiohttp.ClientSession | None = None,
    wall: Callable[[], float] | None = None,
) -> Tokens:
    """Authorize ``site`` for the REST source: store its first tokens in its token file, from a
    refresh token (``refresh_token``) or an authorization code (``code`` + ``redirect_uri``).
    Returns what was stored (secrets masked in any repr)."""
    if (refresh_token is None) == (code is None):
        raise ValueError("seed_tokens: give either refresh_token or code")
    client = RestClient(site, session, wall=wall)
    try:
        if refresh_token is not None:
            return await seed_from_refresh_token(client.store, client.endpoint, refresh_token)
        if not redirect_uri:
            raise ValueError("seed_tokens: an authorization code needs the redirect_uri it was issued for")
        assert code is not None
        return await seed_from_authorization_code(client.store, client.endpoint, code, redirect_uri)
    finally:
        await client.close()

