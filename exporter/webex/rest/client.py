"""The Webex REST client of one site: OAuth bearer tokens, the site's request budget, paging.

``await client.fetch_window(dataset, start, end)`` lists one window of a dataset's
:class:`~exporter.model.dataset_spec.RestListing` to its end and returns a :class:`RestFetch` (a typed
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
import logging
import random
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from urllib.parse import urlsplit

import aiohttp

from ...config import Secret, SiteSettings
from ...errors import ConfigError
from ...model.counters import Counters
from ...model.dataset_spec import Dataset
from ...obs.logs import event
from ..site_stop import SiteStop
from ..throttle import SiteThrottle
from .listing import RestListings
from .oauth import TokenEndpoint, TokenManager
from .results import RestFetch
from .scopes import check_scopes
from .tokens import Tokens, TokenStore, seed_from_authorization_code, seed_from_refresh_token

__all__ = ["RestClient", "DEFAULT_MAX_REWALKS", "seed_tokens"]


#: Times a listing is walked again after a walk that served one id on two pages.
DEFAULT_MAX_REWALKS = 2


class RestClient(RestListings):
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
        #: Every request's cost; ``auth_requests`` counts the 401s answered by renewing the access
        #: token (the token endpoint's own requests are ``endpoint.requests``).
        self.stats = Counters()
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
        self._stop = SiteStop(site.name)
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
        return await self._from_tokens(self.tokens.scopes())

    async def check_scopes(self, datasets: Iterable[Dataset]) -> None:
        """Raise :class:`MissingScopeError` naming the datasets whose scopes the token lacks (a
        no-op, logged, when the grant did not list its scopes)."""
        wanted = [d for d in datasets if d.rest is not None]
        granted = await self.scopes()
        if not granted:
            event("the token's grant did not list its scopes; not checked", level=logging.WARNING, site=self.site.name)
            return
        check_scopes(granted, wanted, site=self.site.name)


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
