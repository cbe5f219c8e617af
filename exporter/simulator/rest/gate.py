"""The gate every ``/v1/`` request passes (latency, faults, token, rate limit, scopes), the
request context and reply of a handler, and the shared parameter handling: site, times and
windows, ``max``, cursors, paging and next links."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Sequence

from aiohttp import web

from ..clock import SimClock
from ..config import SimulatorConfig
from ..data.records import mix
from ..data.world import DAY
from ..faults import FaultState, damage_body, reset_connection
from ..site_config import SiteConfig
from ..stats import Stats
from .items import RestWorld
from .oauth import AccessToken, RestTokens
from .wire import UTC_ZONE, RestError, TrackingIds, Zone, error_body, zone_named

__all__ = ["RestGate", "Ctx", "Reply", "bad", "REST_PREFIX", "REST_FAULT_KINDS", "NOT_FOUND"]

REST_PREFIX = "/v1"
#: The fault kinds that apply to REST requests (GSB and between-page mutations are XML matters).
REST_FAULT_KINDS = frozenset({"reset", "http403", "http429", "http5xx", "throttle", "truncate", "malformed"})
_TRANSPORT = {"reset", "http403", "http429", "http5xx", "throttle"}
_FORBIDDEN = ("The server understood the request, but refused to fulfill it because the access token is "
              "missing required scopes or the user is missing required roles or licenses.")
NOT_FOUND = "The requested resource could not be found."
_TOO_MANY = ("Too many requests have been sent in a given amount of time and the request has been rate limited. "
             "A Retry-After header should be present that specifies how many seconds you need to wait before a "
             "successful request can be made.")
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass(slots=True)
class Ctx:
    """One request as a handler sees it."""

    request: web.Request
    token: AccessToken | None
    now: int
    zone: Zone
    form: Mapping[str, str] = field(default_factory=dict)

    @property
    def query(self) -> Mapping[str, str]:
        """The URL query."""
        return self.request.query


@dataclass(slots=True)
class Reply:
    """What a handler answers: the JSON body, items counted, headers and status."""

    body: Any
    items: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200


def bad(description: str) -> RestError:
    """A 400 with ``description``."""
    return RestError(400, "The request could not be understood by the server due to malformed syntax.", description)


class RestGate:
    """The request handling shared by every REST route (the routes themselves: :class:`.api.RestApi`)."""

    def __init__(self, config: SimulatorConfig, clock: SimClock, faults: FaultState, counters: Stats,
                 tokens: RestTokens, world: RestWorld) -> None:
        self.config = config
        self.rest = config.rest
        self.clock = clock
        self.faults = faults
        self.counters = counters
        self.tokens = tokens
        self.world = world
        self.tracking = TrackingIds(config.seed)
        self._by_url = {s.site_url: s for s in config.sites}

    # ------------------------------------------------------------------ the gate

    def _route(self, path: str, handler: Callable[[Ctx], Reply], scopes: Sequence[str] | None, *,
               auth: bool = True) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        endpoint = f"rest:{path}"

        async def serve(request: web.Request) -> web.StreamResponse:
            delay = self.faults.latency()
            if delay:
                await asyncio.sleep(delay)
            self.counters.rest_request(endpoint)
            tracking = self.tracking.next()
            fault = self.faults.draw([endpoint, "rest"], REST_FAULT_KINDS)
            if fault == "reset":
                self.counters.fault(fault)
                reset_connection(request)
                return web.Response()
            try:
                if fault in _TRANSPORT:
                    self.counters.fault(fault)
                    raise self._fault_error(fault)
                form = dict(await request.post()) if request.method == "POST" else {}
                token = None
                if auth:
                    token = self.tokens.check(request.headers.get("Authorization"))
                    retry = self.faults.rest_throttled(token.value)
                    if retry is not None:
                        raise RestError(429, _TOO_MANY, headers={"Retry-After": str(retry)})
                    if scopes is not None and not set(scopes) & set(token.scopes):
                        raise RestError(403, _FORBIDDEN, f"The access token lacks the scope {' or '.join(scopes)}")
                fields = {k: str(v) for k, v in form.items()}
                ctx = Ctx(request, token, self.clock.now_ts(), self._zone(request), fields)
                reply = handler(ctx)
            except RestError as exc:
                return self._error(exc, tracking)
            return self._respond(reply, tracking, fault)

        return serve

    def _fault_error(self, fault: str) -> RestError:
        settings = self.faults.settings
        if fault == "http403":
            return RestError(403, _FORBIDDEN, "Forbidden")
        if fault in ("http429", "throttle"):
            return RestError(429, _TOO_MANY, headers={"Retry-After": str(settings.retry_after_seconds)})
        status = settings.http5xx_status
        return RestError(status, _REASONS.get(status, "Server Error"), "Please try again later.")

    def _zone(self, request: web.Request) -> Zone:
        name = request.headers.get("timezone", "").strip()
        if not name:
            return UTC_ZONE
        try:
            return zone_named(name)
        except ValueError:
            raise bad(f"Invalid timezone header {name!r}: not an IANA time zone") from None

    def _error(self, error: RestError, tracking: str) -> web.Response:
        self.counters.rest_response(error.status)
        body = json.dumps(error_body(error, tracking), ensure_ascii=False)
        headers = {"TrackingID": tracking, **error.headers}
        return web.Response(text=body, status=error.status, content_type="application/json", headers=headers)

    def _respond(self, reply: Reply, tracking: str, fault: str | None) -> web.StreamResponse:
        headers = {"TrackingID": tracking, **reply.headers}
        if reply.status in (301, 302, 303, 307):
            self.counters.rest_response(reply.status)
            return web.Response(status=reply.status, headers=headers)
        payload = json.dumps(reply.body, ensure_ascii=False).encode("utf-8")
        if fault in ("truncate", "malformed"):
            self.counters.fault(fault)
            payload = damage_body(payload, fault, keep_at_least=1, after=b"{", junk=b"<<broken ")
        self.counters.rest_response(reply.status, reply.items)
        return web.Response(body=payload, status=reply.status, headers=headers, content_type="application/json",
                            charset="utf-8")

    # ------------------------------------------------------------------ shared parameter handling

    def _site(self, ctx: Ctx, *, required: bool) -> SiteConfig:
        assert ctx.token is not None
        url = ctx.query.get("siteUrl", "").strip()
        if not url:
            if required:
                raise bad("siteUrl is required")
            return ctx.token.site
        site = self._by_url.get(url.lower())
        if site is None:
            raise RestError(404, NOT_FOUND, f"Site {url!r} not found")
        if site.name != ctx.token.site.name:
            raise RestError(403, _FORBIDDEN, f"The user is not an administrator of site {url!r}")
        return site

    def _time(self, ctx: Ctx, name: str) -> float | None:
        text = ctx.query.get(name)
        if text is None or not text.strip():
            return None
        try:
            return ctx.zone.parse(text)
        except ValueError:
            raise bad(f"{name} must be an ISO 8601 date and time, got {text!r}") from None

    def _window(self, ctx: Ctx, *, max_days: int | None, reach_days: int | None) -> tuple[float, float]:
        """``[from, to)`` with Webex's defaults (7 days) and limits (interval, lookback on the sim clock)."""
        lo, hi = self._time(ctx, "from"), self._time(ctx, "to")
        week = 7 * DAY
        if lo is None and hi is None:
            lo, hi = ctx.now - week, float(ctx.now)
        elif lo is None:
            assert hi is not None
            lo = hi - week
        elif hi is None:
            hi = lo + week
        if lo > hi:
            raise bad("from cannot be after to")
        if max_days is not None and hi - lo > max_days * DAY:
            raise bad(f"The interval between from and to cannot exceed {max_days} days")
        if reach_days is not None and lo < ctx.now - reach_days * DAY:
            raise bad(f"from cannot be earlier than {reach_days} days ago")
        return lo, hi

    def _max(self, ctx: Ctx, limit: int) -> int:
        text = ctx.query.get("max")
        if text is None:
            return 10
        try:
            value = int(text)
        except ValueError:
            raise bad(f"max must be a positive integer, got {text!r}") from None
        if value <= 0:
            raise bad(f"max must be a positive integer, got {text!r}")
        return min(value, limit)

    def _cursor_sign(self, offset: int) -> int:
        return mix(self.config.seed, 51, offset) & 0xFFFFFFFF

    def _offset(self, ctx: Ctx) -> int:
        text = ctx.query.get("cursor")
        if text is None:
            return 0
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            offset_text, _, sign = raw.partition(":")
            offset = int(offset_text)
            if offset < 0 or int(sign, 16) != self._cursor_sign(offset):
                raise ValueError
        except ValueError:
            raise bad(f"Invalid cursor {text!r}") from None
        return offset

    def _page(self, ctx: Ctx, rows: Sequence[Any], build: Callable[[Any], dict[str, Any]], *, limit: int) -> Reply:
        """One page of ``rows`` (``max``, ``cursor``), built into wire items, with a next link."""
        size = self._max(ctx, limit)
        offset = self._offset(ctx)
        items = [build(r) for r in rows[offset : offset + size]]
        reply = Reply({"items": items}, len(items))
        if offset + size < len(rows):
            reply.headers["Link"] = f'<{self._next_url(ctx, size, offset + size)}>; rel="next"'
        return reply

    def _next_url(self, ctx: Ctx, size: int, offset: int) -> str:
        drops = set(self.rest.next_link_drops) | {"max", "cursor"}
        params = [(k, v) for k, v in ctx.query.items() if k not in drops]
        params.append(("max", "null" if self.rest.next_link_max_null else str(size)))
        sign = self._cursor_sign(offset)
        params.append(("cursor", base64.urlsafe_b64encode(f"{offset}:{sign:08x}".encode()).decode().rstrip("=")))
        return str(ctx.request.url.with_query(params))
