"""The clients of a run (or of ``serve``'s lifetime): one HTTP session and one client per site,
and the parse workers they share.  Used by :mod:`exporter.run.pipeline` and by ``check``
(:mod:`exporter.webex.site_check`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp

from ..config import SiteSettings
from ..errors import AuthError
from .classify import DEFAULT_CODES
from .client import WebexClient
from .decoding import ResponseDecoder, auto_workers
from .rest.client import RestClient
from .site_facts import SiteFacts
from .throttle import SiteThrottle

__all__ = ["ClientPool"]


class ClientPool:
    """One HTTP session and one :class:`~exporter.webex.client.WebexClient` per site, created on first
    use, and the response decoder (parse workers) they all share.  A run owns a pool for its
    duration; ``serve`` keeps one for its lifetime so that every scheduled job of a site shares
    that site's request budget and session ticket."""

    def __init__(self, parse_workers: int | None = 0) -> None:
        self._clients: dict[str, WebexClient] = {}
        self._rest_clients: dict[str, RestClient] = {}
        self._sessions: list[aiohttp.ClientSession] = []
        self._lock = asyncio.Lock()
        #: Shared by every site: parse worker processes (``export.parse_workers``; None = auto).
        self.decoder = ResponseDecoder(auto_workers() if parse_workers is None else parse_workers)
        #: What each site said about itself, and when (event-loop time): asked once per run, or
        #: once per ``SITE_FACTS_TTL_SECONDS`` for a ``serve`` that keeps the pool.
        self.site_facts: dict[str, tuple[float, SiteFacts]] = {}

    async def client(self, site: SiteSettings) -> WebexClient:
        """The client for ``site`` (created once).  One a fatal error stopped is replaced (each run
        asks again: a certificate or a redirect may be fixed by now), keeping its request budget,
        unless the site refused our credentials: those stay refused, retries can lock the account."""
        async with self._lock:
            old = self._clients.get(site.name)
            if old is not None and old.stopped_by is not None and not isinstance(old.stopped_by, AuthError):
                del self._clients[site.name]
            if site.name not in self._clients:
                timeout = aiohttp.ClientTimeout(total=site.throttle.request_timeout_seconds)
                connector = aiohttp.TCPConnector(limit=max(site.throttle.max_concurrency, 1))
                session = aiohttp.ClientSession(timeout=timeout, connector=connector)
                self._sessions.append(session)
                codes = DEFAULT_CODES.with_retired(site.retired_exception_ids)
                throttle = old.throttle if old is not None else SiteThrottle(site.name, site.throttle)
                self._clients[site.name] = WebexClient(site, session, throttle=throttle, decoder=self.decoder,
                                                       codes=codes)
            return self._clients[site.name]

    async def rest_client(self, site: SiteSettings, *, wall: Callable[[], float] | None = None) -> RestClient:
        """The REST client for ``site`` (created once; its own HTTP session).  ``wall``: the clock
        token expiries and the APIs' reach are judged by (a run given ``now`` passes it).  One a
        fatal error stopped is replaced: the next run reads the token file again (``auth`` may
        have stored new tokens meanwhile, which ``serve`` must pick up without a restart)."""
        async with self._lock:
            old = self._rest_clients.get(site.name)
            if old is not None and old.stopped_by is not None:
                del self._rest_clients[site.name]
                await old.close()
            if site.name not in self._rest_clients:
                self._rest_clients[site.name] = RestClient(site, wall=wall)
            return self._rest_clients[site.name]

    def throttle_wait(self, site: str) -> float:
        """Seconds the site's requests spent waiting on throttles so far (for progress)."""
        client = self._clients.get(site)
        return client.stats.throttle_wait_seconds if client is not None else 0.0

    async def close(self) -> None:
        """Stop every client's batched requests, close every session and stop the parse workers."""
        for client in list(self._clients.values()):
            for batcher in list(client.batchers.values()):
                await batcher.close()
        for rest in list(self._rest_clients.values()):
            await rest.close()
        for session in self._sessions:
            await session.close()
        self._sessions.clear()
        self._clients.clear()
        self._rest_clients.clear()
        await asyncio.to_thread(self.decoder.close)
