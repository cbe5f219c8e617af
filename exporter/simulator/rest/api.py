"""The simulated Webex REST APIs under ``/v1/`` (same server, world, clock and faults as the XML API).

Routes: ``GET /v1/meetingReports/usage``, ``/v1/meetingReports/attendees``, ``/v1/meetings``
(``meetingType=meeting``), ``/v1/meetingParticipants``, ``/v1/recordingReport/accessSummary``,
``/v1/recordingReport/accessDetail``, ``/v1/meetingPreferences/sites``, ``/v1/people/me``;
``POST /v1/access_token`` and ``GET /v1/authorize`` (OAuth).  Every request goes through the
same gate: latency, the fault queue and rates (operation ``rest:<path>`` or ``rest``), then the
bearer token (401), its rate limit (429 + Retry-After), its scopes (403), then the endpoint's
validation (400) and lookups (404).  Lists answer ``{"items": [...]}`` pages with a
``Link: <...>; rel="next"`` header while more remain; errors answer Webex's JSON body.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Sequence

from aiohttp import web

from ..clock import SimClock
from ..config import SimulatorConfig
from ..data.records import Record, mix
from ..data.world import DAY
from ..faults import FaultState, reset_connection
from ..site_config import SiteConfig
from ..stats import Stats
from .ids import org_id, parse_instance_id, parse_recording_id, person_id, series_id
from .items import ATTENDEES_OF, SESSION_DATASETS, RestWorld
from .oauth import AccessToken, RestTokens
from .wire import UTC_ZONE, RestError, TrackingIds, Zone, error_body, to_wire, zone_named

__all__ = ["RestApi", "REST_PREFIX", "REST_FAULT_KINDS", "ENDPOINTS"]

REST_PREFIX = "/v1"
#: The fault kinds that apply to REST requests (GSB and between-page mutations are XML matters).
REST_FAULT_KINDS = frozenset({"reset", "http403", "http429", "http5xx", "throttle", "truncate", "malformed"})
_TRANSPORT = {"reset", "http403", "http429", "http5xx", "throttle"}
#: Endpoint -> (scopes, any of which lets a token in; None: any valid token).
ENDPOINTS: dict[str, tuple[str, ...] | None] = {
    "/meetingReports/usage": ("meeting:admin_config_read",),
    "/meetingReports/attendees": ("meeting:admin_config_read",),
    "/meetings": ("meeting:admin_schedule_read",),
    "/meetingParticipants": ("meeting:admin_participants_read",),
    "/recordingReport/accessSummary": ("meeting:admin_recordings_read",),
    "/recordingReport/accessDetail": ("meeting:admin_recordings_read",),
    "/meetingPreferences/sites": ("meeting:admin_preferences_read", "meeting:preferences_read"),
    "/people/me": None,
}
_MEETING_STATES = ("active", "scheduled", "ready", "lobby", "inProgress", "ended", "missed", "expired")
_FORBIDDEN = ("The server understood the request, but refused to fulfill it because the access token is "
              "missing required scopes or the user is missing required roles or licenses.")
_NOT_FOUND = "The requested resource could not be found."
_TOO_MANY = ("Too many requests have been sent in a given amount of time and the request has been rate limited. "
             "A Retry-After header should be present that specifies how many seconds you need to wait before a "
             "successful request can be made.")
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass(slots=True)
class _Ctx:
    """One request as a handler sees it."""

    request: web.Request
    token: AccessToken | None
    now: int
    zone: Zone
    form: Mapping[str, str] = field(default_factory=dict)

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.query


@dataclass(slots=True)
class _Reply:
    body: Any
    items: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200


def _bad(description: str) -> RestError:
    return RestError(400, "The request could not be understood by the server due to malformed syntax.", description)


class RestApi:
    """The REST routes of one simulator."""

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

    def mount(self, app: web.Application) -> None:
        """Add the ``/v1/`` routes to ``app``."""
        get = {
            "/meetingReports/usage": self.usage, "/meetingReports/attendees": self.attendees,
            "/meetings": self.meetings, "/meetingParticipants": self.participants,
            "/recordingReport/accessSummary": self.access_summary,
            "/recordingReport/accessDetail": self.access_detail, "/meetingPreferences/sites": self.sites,
            "/people/me": self.people_me,
        }
        for path, handler in get.items():
            app.router.add_get(REST_PREFIX + path, self._route(path, handler, ENDPOINTS[path]))
        app.router.add_post(REST_PREFIX + "/access_token", self._route("/access_token", self.access_token, None,
                                                                       auth=False))
        app.router.add_get(REST_PREFIX + "/authorize", self._route("/authorize", self.authorize, None, auth=False))
        app.router.add_route("*", REST_PREFIX + "/{tail:.*}", self._route("/(unknown)", self.unknown, None, auth=False))

    # ------------------------------------------------------------------ the gate

    def _route(self, path: str, handler: Callable[[_Ctx], _Reply], scopes: Sequence[str] | None, *,
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
                ctx = _Ctx(request, token, self.clock.now_ts(), self._zone(request), fields)
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
            raise _bad(f"Invalid timezone header {name!r}: not an IANA time zone") from None

    def _error(self, error: RestError, tracking: str) -> web.Response:
        self.counters.rest_response(error.status)
        body = json.dumps(error_body(error, tracking), ensure_ascii=False)
        headers = {"TrackingID": tracking, **error.headers}
        return web.Response(text=body, status=error.status, content_type="application/json", headers=headers)

    def _respond(self, reply: _Reply, tracking: str, fault: str | None) -> web.StreamResponse:
        headers = {"TrackingID": tracking, **reply.headers}
        if reply.status in (301, 302, 303, 307):
            self.counters.rest_response(reply.status)
            return web.Response(status=reply.status, headers=headers)
        payload = json.dumps(reply.body, ensure_ascii=False).encode("utf-8")
        if fault == "truncate":
            self.counters.fault(fault)
            payload = payload[: max(1, len(payload) * 3 // 5)]
        elif fault == "malformed":
            self.counters.fault(fault)
            payload = payload.replace(b"{", b"{<<broken ", 1)
        self.counters.rest_response(reply.status, reply.items)
        return web.Response(body=payload, status=reply.status, headers=headers, content_type="application/json",
                            charset="utf-8")

    # ------------------------------------------------------------------ shared parameter handling

    def _site(self, ctx: _Ctx, *, required: bool) -> SiteConfig:
        assert ctx.token is not None
        url = ctx.query.get("siteUrl", "").strip()
        if not url:
            if required:
                raise _bad("siteUrl is required")
            return ctx.token.site
        site = self._by_url.get(url.lower())
        if site is None:
            raise RestError(404, _NOT_FOUND, f"Site {url!r} not found")
        if site.name != ctx.token.site.name:
            raise RestError(403, _FORBIDDEN, f"The user is not an administrator of site {url!r}")
        return site

    def _time(self, ctx: _Ctx, name: str) -> float | None:
        text = ctx.query.get(name)
        if text is None or not text.strip():
            return None
        try:
            return ctx.zone.parse(text)
        except ValueError:
            raise _bad(f"{name} must be an ISO 8601 date and time, got {text!r}") from None

    def _window(self, ctx: _Ctx, *, max_days: int | None, reach_days: int | None) -> tuple[float, float]:
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
            raise _bad("from cannot be after to")
        if max_days is not None and hi - lo > max_days * DAY:
            raise _bad(f"The interval between from and to cannot exceed {max_days} days")
        if reach_days is not None and lo < ctx.now - reach_days * DAY:
            raise _bad(f"from cannot be earlier than {reach_days} days ago")
        return lo, hi

    def _max(self, ctx: _Ctx, limit: int) -> int:
        text = ctx.query.get("max")
        if text is None:
            return 10
        try:
            value = int(text)
        except ValueError:
            raise _bad(f"max must be a positive integer, got {text!r}") from None
        if value <= 0:
            raise _bad(f"max must be a positive integer, got {text!r}")
        return min(value, limit)

    def _cursor_sign(self, offset: int) -> int:
        return mix(self.config.seed, 51, offset) & 0xFFFFFFFF

    def _offset(self, ctx: _Ctx) -> int:
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
            raise _bad(f"Invalid cursor {text!r}") from None
        return offset

    def _page(self, ctx: _Ctx, rows: Sequence[Any], build: Callable[[Any], dict[str, Any]], *, limit: int) -> _Reply:
        """One page of ``rows`` (``max``, ``cursor``), built into wire items, with a next link."""
        size = self._max(ctx, limit)
        offset = self._offset(ctx)
        items = [build(r) for r in rows[offset : offset + size]]
        reply = _Reply({"items": items}, len(items))
        if offset + size < len(rows):
            reply.headers["Link"] = f'<{self._next_url(ctx, size, offset + size)}>; rel="next"'
        return reply

    def _next_url(self, ctx: _Ctx, size: int, offset: int) -> str:
        drops = set(self.rest.next_link_drops) | {"max", "cursor"}
        params = [(k, v) for k, v in ctx.query.items() if k not in drops]
        params.append(("max", "null" if self.rest.next_link_max_null else str(size)))
        sign = self._cursor_sign(offset)
        params.append(("cursor", base64.urlsafe_b64encode(f"{offset}:{sign:08x}".encode()).decode().rstrip("=")))
        return str(ctx.request.url.with_query(params))

    # ------------------------------------------------------------------ report endpoints

    def usage(self, ctx: _Ctx) -> _Reply:
        """``GET /v1/meetingReports/usage``."""
        site = self._site(ctx, required=True)
        service = ctx.query.get("serviceType", "MeetingCenter")
        dataset = SESSION_DATASETS.get(service)
        if dataset is None:
            raise _bad(f"serviceType must be one of {', '.join(SESSION_DATASETS)}, got {service!r}")
        lo, hi = self._window(ctx, max_days=30, reach_days=90)
        rows = self.world.usage_rows(site, dataset, lo, hi, ctx.now)
        return self._page(ctx, rows, lambda r: to_wire(self.world.usage_item(site, dataset, r, ctx.now), ctx.zone),
                          limit=1000)

    def attendees(self, ctx: _Ctx) -> _Reply:
        """``GET /v1/meetingReports/attendees`` (by meetingId, else meetingNumber, else meetingTitle)."""
        site = self._site(ctx, required=True)
        lo, hi = self._window(ctx, max_days=30, reach_days=90)
        q, now, w = ctx.query, ctx.now, self.world
        meeting_id, number, title = q.get("meetingId"), q.get("meetingNumber"), q.get("meetingTitle")
        rows: list[tuple[str, Record, Record]]
        if meeting_id:
            parsed = parse_instance_id(meeting_id)
            if parsed is None:
                raise _bad("Only ended meeting instance IDs are supported for meetingId")
            hit = w.session(site, parsed[1], now)
            if hit is None or series_id(site.name, hit[1][w.store.layouts[hit[0]].index["session_key"]]) != parsed[0]:
                raise RestError(404, _NOT_FOUND, f"Meeting {meeting_id!r} not found")
            dataset, rec = hit
            start = rec[w.store.layouts[dataset].start]
            inside = lo <= start < hi
            rows = [(ATTENDEES_OF[dataset], rec, r) for r in w.attendee_rows(site, dataset, rec, now)] if inside else []
        elif number:
            rows = w.attendee_groups(site, lo, hi, now, lambda v: str(v["session_key"]) == number.strip())
        elif title:
            rows = w.attendee_groups(site, lo, hi, now, lambda v: v["conf_name"] == title)
        else:
            raise _bad("At least one of meetingId, meetingNumber and meetingTitle should be specified")
        return self._page(ctx, rows, lambda row: self._attendee_wire(site, row, ctx.zone), limit=1000)

    def _attendee_wire(self, site: SiteConfig, row: tuple[str, Record, Record], zone: Zone) -> dict[str, Any]:
        """An attendee item as Webex writes it: meetingNumber now a number, now a string;
        participantType now ``ATTENDEE``, now ``attendee`` (chosen by the row's content)."""
        dataset, session, rec = row
        item: dict[str, Any] = to_wire(self.world.attendee_item(site, dataset, session, rec), zone)
        h = self.world.row_hash(dataset, rec)
        if h % 1000 < self.rest.meeting_number_int_fraction * 1000 and item.get("meetingNumber", "").isdigit():
            item["meetingNumber"] = int(item["meetingNumber"])
        if (h >> 10) % 1000 < self.rest.participant_type_upper_fraction * 1000 and "participantType" in item:
            item["participantType"] = item["participantType"].upper()
        return item

    # ------------------------------------------------------------------ meetings and participants

    def meetings(self, ctx: _Ctx) -> _Reply:
        """``GET /v1/meetings?meetingType=meeting`` (ended and in-progress instances only)."""
        q = ctx.query
        meeting_type = q.get("meetingType", "meetingSeries")
        if meeting_type != "meeting":
            if meeting_type in ("meetingSeries", "scheduledMeeting"):
                raise _bad(f"meetingType={meeting_type} is not simulated: the simulator lists meeting instances "
                           "(meetingType=meeting) only")
            raise _bad(f"meetingType must be meetingSeries, scheduledMeeting or meeting, got {meeting_type!r}")
        state = q.get("state")
        if state is not None and state not in _MEETING_STATES:
            raise _bad(f"state must be one of {', '.join(_MEETING_STATES)}, got {state!r}")
        site = self._site(ctx, required=False)
        lo, hi = self._window(ctx, max_days=None, reach_days=None)
        if state not in (None, "ended", "inProgress"):
            rows: list[Record] = []
        else:
            rows = self.world.instance_rows(site, lo, hi, state, ctx.now, q.get("hostEmail") or None)
            rows = rows[: self.rest.meetings_list_cap]  # "a maximum of 10000 meeting instances can be listed"
        return self._page(ctx, rows, lambda r: to_wire(self.world.instance_item(site, r, ctx.now), ctx.zone),
                          limit=100)

    def participants(self, ctx: _Ctx) -> _Reply:
        """``GET /v1/meetingParticipants?meetingId=<instance id>``."""
        assert ctx.token is not None
        meeting_id = ctx.query.get("meetingId", "").strip()
        if not meeting_id:
            raise _bad("meetingId is required")
        site, w = ctx.token.site, self.world
        lay = w.store.layouts["meeting_usage"]
        parsed = parse_instance_id(meeting_id)
        hit = w.session(site, parsed[1], ctx.now) if parsed else None
        # Only Meeting Center sessions are meeting instances ("/meetings covers the Meetings product").
        if (parsed is None or hit is None or hit[0] != "meeting_usage" or hit[1][lay.start] > ctx.now
                or series_id(site.name, hit[1][lay.index["session_key"]]) != parsed[0]):
            raise RestError(404, _NOT_FOUND, f"Meeting {meeting_id!r} not found")
        items = w.participants(site, hit[1], ctx.now)
        return self._page(ctx, items, lambda item: to_wire(item, ctx.zone), limit=100)

    # ------------------------------------------------------------------ recordings

    def _owner_filter(self, ctx: _Ctx, site: SiteConfig) -> tuple[bool, str | None]:
        """(everyone?, owner webExID) from ``hostEmail``: ``all``, an e-mail, or absent (the caller)."""
        wanted = ctx.query.get("hostEmail", "").strip()
        if wanted.lower() == "all":
            return True, None
        if not wanted:
            admin = self.world.admin(site)
            return False, admin.webex_id.lower() if admin else ""
        host = next((h for h in self.world.store.world.hosts.get(site.name, ()) if h.email.lower() == wanted.lower()),
                    None)
        return False, host.webex_id.lower() if host else ""

    def access_summary(self, ctx: _Ctx) -> _Reply:
        """``GET /v1/recordingReport/accessSummary`` (``hostEmail=all`` for every host's recordings)."""
        site = self._site(ctx, required=False)
        lo, hi = self._window(ctx, max_days=90, reach_days=365)
        everyone, owner = self._owner_filter(ctx, site)
        rows = self.world.recording_rows(site, lo, hi, None if everyone else owner, ctx.now)
        return self._page(ctx, rows, lambda r: to_wire(self.world.recording_item(site, r, ctx.now), ctx.zone),
                          limit=100)

    def access_detail(self, ctx: _Ctx) -> _Reply:
        """``GET /v1/recordingReport/accessDetail?recordingId=``."""
        text = ctx.query.get("recordingId", "").strip()
        if not text:
            raise _bad("recordingId is required")
        site = self._site(ctx, required=False)
        record_id = parse_recording_id(text, site.name)
        rec = self.world.recording(site, record_id, ctx.now) if record_id is not None else None
        everyone, owner = self._owner_filter(ctx, site)
        if rec is None or not (everyone or self.world.recording_owner(site, rec) == owner):
            raise RestError(404, _NOT_FOUND, f"Recording {text!r} not found")
        items = self.world.access_details(site, rec, ctx.now)
        return self._page(ctx, items, lambda item: to_wire(item, ctx.zone), limit=100)

    # ------------------------------------------------------------------ small endpoints

    def sites(self, ctx: _Ctx) -> _Reply:
        """``GET /v1/meetingPreferences/sites``: the token's site, as the default."""
        assert ctx.token is not None
        return _Reply({"sites": [{"siteUrl": ctx.token.site.site_url, "default": True}]})

    def people_me(self, ctx: _Ctx) -> _Reply:
        """``GET /v1/people/me``: the admin who authorized the integration."""
        assert ctx.token is not None
        site = ctx.token.site
        admin = self.world.admin(site)
        if admin is None:
            raise RestError(404, _NOT_FOUND, "No such person")
        return _Reply({"id": person_id(site.name, admin.webex_id), "emails": [admin.email],
                       "displayName": admin.name, "firstName": admin.first, "lastName": admin.last,
                       "orgId": org_id(site.name), "type": "person"})

    def access_token(self, ctx: _Ctx) -> _Reply:
        """``POST /v1/access_token`` (form-encoded)."""
        return _Reply(self.tokens.exchange(ctx.form, ctx.request.headers.get("Authorization")))

    def authorize(self, ctx: _Ctx) -> _Reply:
        """``GET /v1/authorize``: consent at once and redirect with a code."""
        return _Reply(None, status=302, headers={"Location": self.tokens.authorize_redirect(ctx.query)})

    def unknown(self, ctx: _Ctx) -> _Reply:
        """Any other ``/v1/`` path."""
        raise RestError(404, _NOT_FOUND, f"No such endpoint: {ctx.request.method} {ctx.request.path}")
