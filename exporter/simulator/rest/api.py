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

from typing import Any

from aiohttp import web

from ..data.records import Record
from ..site_config import SiteConfig
from .gate import NOT_FOUND, REST_PREFIX, Ctx, Reply, RestGate, bad
from .ids import org_id, parse_instance_id, parse_recording_id, person_id, series_id
from .index import ATTENDEES_OF, SESSION_DATASETS
from .wire import RestError, Zone, to_wire

__all__ = ["RestApi", "ENDPOINTS"]

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


class RestApi(RestGate):
    """The REST routes of one simulator."""

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

    # ------------------------------------------------------------------ report endpoints

    def usage(self, ctx: Ctx) -> Reply:
        """``GET /v1/meetingReports/usage``."""
        site = self._site(ctx, required=True)
        service = ctx.query.get("serviceType", "MeetingCenter")
        dataset = SESSION_DATASETS.get(service)
        if dataset is None:
            raise bad(f"serviceType must be one of {', '.join(SESSION_DATASETS)}, got {service!r}")
        lo, hi = self._window(ctx, max_days=30, reach_days=90)
        rows = self.world.usage_rows(site, dataset, lo, hi, ctx.now)
        return self._page(ctx, rows, lambda r: to_wire(self.world.usage_item(site, dataset, r, ctx.now), ctx.zone),
                          limit=1000)

    def attendees(self, ctx: Ctx) -> Reply:
        """``GET /v1/meetingReports/attendees`` (by meetingId, else meetingNumber, else meetingTitle)."""
        site = self._site(ctx, required=True)
        lo, hi = self._window(ctx, max_days=30, reach_days=90)
        q, now, w = ctx.query, ctx.now, self.world
        meeting_id, number, title = q.get("meetingId"), q.get("meetingNumber"), q.get("meetingTitle")
        rows: list[tuple[str, Record, Record]]
        if meeting_id:
            parsed = parse_instance_id(meeting_id)
            if parsed is None:
                raise bad("Only ended meeting instance IDs are supported for meetingId")
            hit = w.session(site, parsed[1], now)
            if hit is None or series_id(site.name, hit[1][w.store.layouts[hit[0]].index["session_key"]]) != parsed[0]:
                raise RestError(404, NOT_FOUND, f"Meeting {meeting_id!r} not found")
            dataset, rec = hit
            start = rec[w.store.layouts[dataset].start]
            inside = lo <= start < hi
            rows = [(ATTENDEES_OF[dataset], rec, r) for r in w.attendee_rows(site, dataset, rec, now)] if inside else []
        elif number:
            rows = w.attendee_groups(site, lo, hi, now, lambda v: str(v["session_key"]) == number.strip())
        elif title:
            rows = w.attendee_groups(site, lo, hi, now, lambda v: v["conf_name"] == title)
        else:
            raise bad("At least one of meetingId, meetingNumber and meetingTitle should be specified")
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

    def meetings(self, ctx: Ctx) -> Reply:
        """``GET /v1/meetings?meetingType=meeting`` (ended and in-progress instances only)."""
        q = ctx.query
        meeting_type = q.get("meetingType", "meetingSeries")
        if meeting_type != "meeting":
            if meeting_type in ("meetingSeries", "scheduledMeeting"):
                raise bad(f"meetingType={meeting_type} is not simulated: the simulator lists meeting instances "
                           "(meetingType=meeting) only")
            raise bad(f"meetingType must be meetingSeries, scheduledMeeting or meeting, got {meeting_type!r}")
        state = q.get("state")
        if state is not None and state not in _MEETING_STATES:
            raise bad(f"state must be one of {', '.join(_MEETING_STATES)}, got {state!r}")
        site = self._site(ctx, required=False)
        lo, hi = self._window(ctx, max_days=None, reach_days=None)
        if state not in (None, "ended", "inProgress"):
            rows: list[Record] = []
        else:
            rows = self.world.instance_rows(site, lo, hi, state, ctx.now, q.get("hostEmail") or None)
            rows = rows[: self.rest.meetings_list_cap]  # "a maximum of 10000 meeting instances can be listed"
        return self._page(ctx, rows, lambda r: to_wire(self.world.instance_item(site, r, ctx.now), ctx.zone),
                          limit=100)

    def participants(self, ctx: Ctx) -> Reply:
        """``GET /v1/meetingParticipants?meetingId=<instance id>``."""
        assert ctx.token is not None
        meeting_id = ctx.query.get("meetingId", "").strip()
        if not meeting_id:
            raise bad("meetingId is required")
        site, w = ctx.token.site, self.world
        lay = w.store.layouts["meeting_usage"]
        parsed = parse_instance_id(meeting_id)
        hit = w.session(site, parsed[1], ctx.now) if parsed else None
        # Only Meeting Center sessions are meeting instances ("/meetings covers the Meetings product").
        if (parsed is None or hit is None or hit[0] != "meeting_usage" or hit[1][lay.start] > ctx.now
                or series_id(site.name, hit[1][lay.index["session_key"]]) != parsed[0]):
            raise RestError(404, NOT_FOUND, f"Meeting {meeting_id!r} not found")
        items = w.participants(site, hit[1], ctx.now)
        return self._page(ctx, items, lambda item: to_wire(item, ctx.zone), limit=100)

    # ------------------------------------------------------------------ recordings

    def _owner_filter(self, ctx: Ctx, site: SiteConfig) -> tuple[bool, str | None]:
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

    def access_summary(self, ctx: Ctx) -> Reply:
        """``GET /v1/recordingReport/accessSummary`` (``hostEmail=all`` for every host's recordings)."""
        site = self._site(ctx, required=False)
        lo, hi = self._window(ctx, max_days=90, reach_days=365)
        everyone, owner = self._owner_filter(ctx, site)
        rows = self.world.recording_rows(site, lo, hi, None if everyone else owner, ctx.now)
        return self._page(ctx, rows, lambda r: to_wire(self.world.recording_item(site, r, ctx.now), ctx.zone),
                          limit=100)

    def access_detail(self, ctx: Ctx) -> Reply:
        """``GET /v1/recordingReport/accessDetail?recordingId=``."""
        text = ctx.query.get("recordingId", "").strip()
        if not text:
            raise bad("recordingId is required")
        site = self._site(ctx, required=False)
        record_id = parse_recording_id(text, site.name)
        rec = self.world.recording(site, record_id, ctx.now) if record_id is not None else None
        everyone, owner = self._owner_filter(ctx, site)
        if rec is None or not (everyone or self.world.recording_owner(site, rec) == owner):
            raise RestError(404, NOT_FOUND, f"Recording {text!r} not found")
        items = self.world.access_details(site, rec, ctx.now)
        return self._page(ctx, items, lambda item: to_wire(item, ctx.zone), limit=100)

    # ------------------------------------------------------------------ small endpoints

    def sites(self, ctx: Ctx) -> Reply:
        """``GET /v1/meetingPreferences/sites``: the token's site, as the default."""
        assert ctx.token is not None
        return Reply({"sites": [{"siteUrl": ctx.token.site.site_url, "default": True}]})

    def people_me(self, ctx: Ctx) -> Reply:
        """``GET /v1/people/me``: the admin who authorized the integration."""
        assert ctx.token is not None
        site = ctx.token.site
        admin = self.world.admin(site)
        if admin is None:
            raise RestError(404, NOT_FOUND, "No such person")
        return Reply({"id": person_id(site.name, admin.webex_id), "emails": [admin.email],
                       "displayName": admin.name, "firstName": admin.first, "lastName": admin.last,
                       "orgId": org_id(site.name), "type": "person"})

    def access_token(self, ctx: Ctx) -> Reply:
        """``POST /v1/access_token`` (form-encoded)."""
        return Reply(self.tokens.exchange(ctx.form, ctx.request.headers.get("Authorization")))

    def authorize(self, ctx: Ctx) -> Reply:
        """``GET /v1/authorize``: consent at once and redirect with a code."""
        return Reply(None, status=302, headers={"Location": self.tokens.authorize_redirect(ctx.query)})

    def unknown(self, ctx: Ctx) -> Reply:
        """Any other ``/v1/`` path."""
        raise RestError(404, NOT_FOUND, f"No such endpoint: {ctx.request.method} {ctx.request.path}")
