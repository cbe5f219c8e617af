"""The world's records as Webex REST items: the same sessions, attendees and recordings the XML
API serves (:mod:`..data.store`), seen through the REST endpoints.

- ``/meetingReports/usage``: one item per session row (meeting usage, training, event, support
  sessions), with the values shown now (revisions included);
- ``/meetingReports/attendees``: the session's attendee rows, twins and all;
- ``/meetings``: one meeting instance per Meeting Center usage row;
- ``/meetingParticipants``: the instance's attendee rows grouped by person (e-mail, else name),
  one device per row (a rejoin is a second device);
- ``/recordingReport/accessSummary`` / ``accessDetail``: the recordings, and one access row per
  view and per download, so the detail rows always add up to the summary's counters.

Items are logical (:mod:`.wire`): the wire quirks are added by the API, ground truth lands
these values as they are.  Availability: a report row needs its XML history visible *and* the
session ended ``report_delay_hours`` (+ jitter) ago; an instance is listed as ended
``meetings_delay_seconds`` after it ends; participants are live data (no history delay).
"""

from __future__ import annotations

import math
import zlib
from typing import Any, Callable

from ...model.timezones import TIME_ZONES
from ..data import pools
from ..data.records import Record, mix
from ..data.selection import Selection
from ..data.world import DAY, RECORD_BASE
from ..site_config import SiteConfig
from .ids import (
    instance_id,
    org_id,
    person_id,
    recording_id,
    scheduled_meeting_id,
    series_id,
    site_hash,
    uuid_from,
)
from .index import ATTENDEES_OF, SERVICE_TYPES, SESSION_DATASETS, SESSION_OF, RestIndex
from .wire import PLACEHOLDER, Time

__all__ = ["RestWorld", "TRACKING_NAMES"]

#: Names of tracking codes 1..10 as a site admin set them up.
TRACKING_NAMES = ("Department", "Division", "Project", "Cost center", "Region", "Product", "Campaign", "Team",
                  "Program", "Customer")
_IANA = {tz.label: tz.iana for tz in TIME_ZONES}
_PMR_KEYS = range(600_000_000, 700_000_000)  # meeting numbers of Personal Rooms (data.people.Host.pmr_key)
#: REST usage total -> the session column it comes from.
_TOTALS = (
    ("totalPeopleMinutes", "total_people_minutes"), ("totalCallInMinutes", "total_call_in_minutes"),
    ("totalCallOutDomestic", "total_call_out_domestic"),
    ("totalCallInTollFreeMinutes", "total_call_in_tollfree_minutes"),
    ("totalCallOutInternational", "total_call_out_international"), ("totalVoipMinutes", "total_voip_minutes"),
    ("totalParticipants", "total_participants"), ("totalParticipantsVoip", "total_participants_voip"),
    ("totalParticipantsCallIn", "total_participants_call_in"),
    ("totalParticipantsCallOut", "total_participants_call_out"), ("peakAttendee", "peak_attendee"),
)


def _row_hash(seed: int, rec: Record, n: int) -> int:
    """A hash of a record's content (equal records, e.g. exact twins, hash alike)."""
    return mix(seed, 5, zlib.crc32(repr(rec[:n]).encode("utf-8")))


def _device_type(agent: str | None, dial_in: bool) -> str:
    if dial_in:
        return "phone"
    a = (agent or "").upper()
    for word, kind in (("WEBEX APP", "webex_app_windows"), ("WINDOWS", "webex_meeting_center_windows"),
                       ("MAC", "webex_meeting_center_mac"), ("ANDROID", "webex_mobile_android"),
                       ("IOS", "webex_mobile_ios")):
        if word in a:
            return kind
    return "webex_web_app"


class RestWorld(RestIndex):
    """REST items of one simulator's store (thread-safe; indexes cached per store version and day)."""

    # ------------------------------------------------------------------ usage reports

    def usage_rows(self, site: SiteConfig, dataset: str, lo: float, hi: float, now: int) -> list[Record]:
        """Session rows of ``dataset`` starting in ``[lo, hi)`` whose report is out, newest first."""
        first, last = math.ceil(lo), math.ceil(hi) - 1
        if last < first:
            return []
        rows = self.store.select(site, Selection(dataset, start_range=(first, last), audio_only=True), now)
        return [r for r in reversed(rows) if self.report_time(dataset, r) <= now]

    def usage_item(self, site: SiteConfig, dataset: str, rec: Record, now: int) -> dict[str, Any]:
        """One ``/meetingReports/usage`` item."""
        lay = self.store.layouts[dataset]
        v = dict(zip(lay.names, self.store.present(dataset, rec, now)))
        start, end = v[lay.names[lay.start]], v[lay.names[lay.end_index()]]  # meeting_* or session_*
        host = self.host(site, v.get("host_webex_id"))
        totals = {path: v.get(column) for path, column in _TOTALS}
        if dataset == "support_sessions":  # the XML support history carries fewer totals
            peak, minutes = v.get("peak_attendee") or 0, v.get("total_people_minutes") or 0
            totals.update(totalParticipants=peak, totalParticipantsVoip=peak, totalVoipMinutes=minutes)
        h = mix(self.config.seed, 22, v["conf_id"])
        participants = totals["totalParticipants"] or 0
        registered = v.get("total_registered", v.get("source_count"))
        invited = v.get("total_invited")
        codes = [{"name": TRACKING_NAMES[i], "value": v.get(f"tracking_code{i + 1}")} for i in range(10)
                 if v.get(f"tracking_code{i + 1}") is not None]
        return {
            "meetingId": instance_id(site.name, v["session_key"], v["conf_id"]),
            "meetingNumber": str(v["session_key"]),
            "meetingTitle": v["conf_name"],
            "start": Time(start),
            "end": Time(end),
            "duration": v["duration"],
            "scheduledType": "webinar" if dataset == "event_sessions" else "meeting",
            "hostDisplayName": v.get("host_name") or (host.name if host else None),
            "hostEmail": v.get("host_email"),
            **{path: value or 0 for path, value in totals.items()},
            "totalRegistered": registered or 0,
            "totalInvitee": invited if invited is not None else participants + h % 4,
            "serviceType": SERVICE_TYPES[dataset],
            "trackingCodes": codes,
        }

    # ------------------------------------------------------------------ attendee reports

    def session(self, site: SiteConfig, conf_id: int, now: int) -> tuple[str, Record] | None:
        """(session dataset, record) of a confID inside retention, or None."""
        hit = self.sessions(site, now).get(conf_id)
        if hit is None or hit[1][self.store.layouts[hit[0]].start] < self._cutoff(now):
            return None
        return hit

    def attendee_rows(self, site: SiteConfig, dataset: str, rec: Record, now: int) -> list[Record]:
        """A session's visible attendee report rows, by joinedTime descending (ties: stored order)."""
        if self.report_time(dataset, rec) > now:
            return []
        attendees = ATTENDEES_OF[dataset]
        lay = self.store.layouts[attendees]
        conf = rec[self.store.layouts[dataset].index["conf_id"]]
        rows = [r for r in self._attendee_index(site, attendees, now).get(conf, ()) if r[lay.visible] <= now]
        return sorted(rows, key=lambda r: r[lay.start], reverse=True)

    def attendee_groups(self, site: SiteConfig, lo: float, hi: float, now: int,
                        match: Callable[[dict[str, Any]], bool]) -> list[tuple[str, Record, Record]]:
        """``(attendee dataset, session record, row)`` of every session starting in ``[lo, hi)`` that
        ``match`` (given the session's values) accepts: groups by their newest join, descending."""
        groups: list[tuple[int, list[tuple[str, Record, Record]]]] = []
        for dataset in SESSION_DATASETS.values():
            lay = self.store.layouts[dataset]
            for rec in self.store.raw_rows(site, dataset, math.ceil(lo), math.ceil(hi) - 1, now):
                if rec[lay.start] >= hi or not match(dict(zip(lay.names, rec[: lay.n]))):
                    continue
                rows = self.attendee_rows(site, dataset, rec, now)
                if rows:
                    join = self.store.layouts[ATTENDEES_OF[dataset]].start
                    groups.append((rows[0][join], [(ATTENDEES_OF[dataset], rec, r) for r in rows]))
        groups.sort(key=lambda g: g[0], reverse=True)
        return [row for _, rows in groups for row in rows]

    def attendee_item(self, site: SiteConfig, dataset: str, session: Record, rec: Record) -> dict[str, Any]:
        """One ``/meetingReports/attendees`` item (``dataset``: the attendee dataset of ``rec``)."""
        lay = self.store.layouts[dataset]
        v = dict(zip(lay.names, rec[: lay.n]))
        s_lay = self.store.layouts[SESSION_OF[dataset]]
        sv = {name: session[s_lay.index[name]] for name in ("session_key", "conf_id", "conf_name")}
        h = _row_hash(self.config.seed, rec, lay.n)
        registered, invited = v.get("registered"), v.get("invited")
        return {
            "meetingId": instance_id(site.name, sv["session_key"], sv["conf_id"]),
            "meetingNumber": str(sv["session_key"]),
            "meetingTitle": v.get("conf_name", sv["conf_name"]),
            "displayName": v.get("name", v.get("attendee_name")),
            "email": v.get("email", v.get("attendee_email")),
            "joinedTime": Time(rec[lay.start]),
            "leftTime": Time(rec[lay.end_index()]),  # leave_time or end_time
            "duration": v["duration"],
            "participantType": (v.get("participant_type") or "ATTENDEE").lower(),
            "ipAddress": v.get("ip_address"),
            "clientAgent": v.get("client_agent"),
            "company": v.get("company"),
            "phoneNumber": v.get("phone_number", v.get("phone")),
            "address1": v.get("address1"),
            "address2": v.get("address2"),
            "city": v.get("city"),
            "state": v.get("state"),
            "country": v.get("country"),
            "zipCode": v.get("zip_code", v.get("zip")),
            "registered": registered == "Y" if registered is not None else h % 10 == 0,
            "invited": invited == "Y" if invited is not None else (h >> 8) % 10 < 4,
        }

    def row_hash(self, dataset: str, rec: Record) -> int:
        """The content hash the wire quirks of a row are chosen by."""
        return _row_hash(self.config.seed, rec, self.store.layouts[dataset].n)

    # ------------------------------------------------------------------ meeting instances

    def instance_rows(self, site: SiteConfig, lo: float, hi: float, state: str | None, now: int,
                      host_email: str | None = None) -> list[Record]:
        """Meeting Center sessions starting in ``[lo, hi)`` in ``state`` (``ended``, ``inProgress``;
        None: both), by start ascending.  No cap here: :class:`RestApi` cuts the listing."""
        first, last = math.ceil(lo), math.ceil(hi) - 1
        if last < first:
            return []
        lay = self.store.layouts["meeting_usage"]
        email = lay.index["host_email"]
        out = []
        for rec in self.store.raw_rows(site, "meeting_usage", first, last, now):
            got = self._instance_state(rec, now)
            if got is None or (state is not None and got != state):
                continue
            if host_email is not None and (rec[email] or "").lower() != host_email.lower():
                continue
            out.append(rec)
        return out

    def instance_item(self, site: SiteConfig, rec: Record, now: int) -> dict[str, Any]:
        """One ``/meetings`` item (``meetingType=meeting``)."""
        lay = self.store.layouts["meeting_usage"]
        v = dict(zip(lay.names, rec[: lay.n]))
        key, conf = v["session_key"], v["conf_id"]
        series = series_id(site.name, key)
        ident = instance_id(site.name, key, conf)
        state = self._instance_state(rec, now) or "ended"
        ended = state == "ended"
        h = mix(self.config.seed, 23, conf)
        recorded = (RECORD_BASE + conf % 10**14) in self._recording_index(site, now)
        breakouts = self._breakouts(site, conf)
        host = self.host(site, v["host_webex_id"])
        audio_only = v.get("meeting_type") == "AUO"
        item: dict[str, Any] = {
            "id": ident,
            "meetingSeriesId": series,
            "scheduledMeetingId": None if key in _PMR_KEYS else scheduled_meeting_id(series, v["meeting_start_time"]),
            # Not returned for ended instances (Meetings overview, attribute availability table).
            "meetingNumber": None if ended else str(key),
            "title": v["conf_name"],
            "agenda": "Agenda: status, risks & next steps" if h % 10 < 3 else None,
            "meetingType": "meeting",
            "state": state,
            "timezone": _IANA.get(v.get("timezone") or "", "UTC"),
            "start": Time(v["meeting_start_time"]),
            "end": Time(v["meeting_end_time"]),
            "hostUserId": person_id(site.name, host.webex_id) if host else None,
            "hostDisplayName": v["host_name"],
            "hostEmail": v["host_email"],
            "siteUrl": site.site_url,
            "webLink": f"https://{site.site_url}/{site.name.lower()}/j.php?MTID=m{series}",
            "scheduledType": "meeting",
            "sessionTypeId": 16 if audio_only else 3,
        }
        if ended:
            item.update({
                "hasChat": h >> 4 & 1 == 1, "hasRecording": recorded,
                "hasTranscription": recorded and h >> 5 & 3 != 0, "hasSummary": recorded and h >> 7 & 1 == 1,
                "hasClosedCaption": h >> 8 & 3 == 0, "hasPolls": h >> 10 & 7 == 0, "hasQA": h >> 13 & 7 == 0,
                "hasSlido": h >> 16 & 7 == 0,
            })
        item["integrationTags"] = [f"{mix(h, 24):016x}{mix(h, 25):016x}"] if h >> 19 & 15 == 0 else None
        item["enabledBreakoutSessions"] = breakouts
        if breakouts:
            item["links"] = [{"rel": "breakoutSessions", "href": f"/v1/meetings/{ident}/breakoutSessions",
                              "method": "GET"}]
        return item

    def _breakouts(self, site: SiteConfig, conf_id: int) -> bool:
        return mix(site_hash(site.name), 41, conf_id) % 10 == 0

    # ------------------------------------------------------------------ participants

    def participants(self, site: SiteConfig, rec: Record, now: int) -> list[dict[str, Any]]:
        """The ``/meetingParticipants`` items of a Meeting Center session, by first join."""
        lay = self.store.layouts["meeting_usage"]
        v = dict(zip(lay.names, rec[: lay.n]))
        conf, start, end = v["conf_id"], v["meeting_start_time"], v["meeting_end_time"]
        a_lay = self.store.layouts["meeting_attendees"]
        ix = a_lay.index
        rows = [r for r in self._attendee_index(site, "meeting_attendees", now).get(conf, ()) if r[a_lay.start] <= now]
        rows.sort(key=lambda r: r[a_lay.start])  # stable: ties keep the stored order
        people: dict[str, list[Record]] = {}
        for r in rows:
            email, name = r[ix["email"]], r[ix["name"]]
            people.setdefault(email.lower() if email else f"name:{name}", []).append(r)
        ident = instance_id(site.name, v["session_key"], conf)
        sh = site_hash(site.name)
        ended = now >= end
        window = self.rest.left_placeholder_minutes * 60
        recent = ended and window and now - end < window
        breakouts = self._breakouts(site, conf)
        out = []
        for n, joins in enumerate(people.values(), 1):
            first = joins[0]
            devices = []
            for k, r in enumerate(joins):
                join, leave = r[ix["join_time"]], r[ix["leave_time"]]
                dial = r[ix["ip_address"]] is None
                unknown = recent or (not ended and leave > now)
                dh = mix(sh, 43, conf, n, k)
                devices.append({
                    "correlationId": uuid_from(sh, 44, conf, n, k),
                    "deviceType": _device_type(r[ix["client_agent"]], dial),
                    "audioType": "pstn" if dial else ("inactive" if dh % 10 == 0 else "voip"),
                    "joinedTime": Time(join, ms=True),
                    "leftTime": PLACEHOLDER if unknown else Time(leave, ms=True),
                    "durationSecond": 0 if unknown else leave - join,
                    "callType": ("callBack" if dh >> 8 & 3 == 0 else "callIn") if dial else None,
                })
            host = any(r[ix["participant_type"]] == "HOST" for r in joins)
            ph = mix(sh, 45, conf, n)
            joined = min(r[ix["join_time"]] for r in joins)
            left = max(r[ix["leave_time"]] for r in joins)
            unknown = recent or (not ended and left > now)
            item: dict[str, Any] = {
                "id": f"{ident}_{n}",
                "orgId": None if ended else org_id(site.name),
                "host": host,
                "coHost": not host and ph % 20 == 0,
                "spaceModerator": False,
                "email": first[ix["email"]] or None,
                "displayName": first[ix["name"]],
                "invitee": host or (ph >> 5) % 10 < 4,
                "muted": (ph >> 9) % 3 == 0,
                "meetingStartTime": Time(start),
                "video": "off" if all(d["audioType"] == "pstn" for d in devices) or (ph >> 12) % 4 == 0 else "on",
                "state": "end" if ended or not unknown else "joined",
                "joinedTime": Time(joined),
                "leftTime": PLACEHOLDER if unknown else Time(left),
                "siteUrl": site.site_url,
                "meetingId": ident,
                "hostEmail": v["host_email"],
                "devices": devices,
                "sourceId": "cisco" if (ph >> 15) % 7 == 0 else None,
            }
            if breakouts and not host and (ph >> 18) % 2 == 0 and left - joined > 240 and not unknown:
                number = 1 + (ph >> 20) % 3
                b_join = joined + 60
                item["breakoutSessionsAttended"] = [{
                    "id": uuid_from(sh, 46, conf, number), "name": f"Breakout session {number}",
                    "joinedTime": Time(b_join), "leftTime": Time(b_join + (left - joined) // 2),
                }]
            out.append(item)
        return out

    # ------------------------------------------------------------------ recordings

    def recording_rows(self, site: SiteConfig, lo: float, hi: float, owner: str | None, now: int) -> list[Record]:
        """Recordings created in ``[lo, hi)`` whose report is out (only ``owner``'s, a lower-cased
        webExID, unless None), newest first."""
        first, last = math.ceil(lo), math.ceil(hi) - 1
        if last < first:
            return []
        rows = self.store.select(site, Selection("recording_access", start_range=(first, last)), now)
        key = self.store.layouts["recording_access"].key[0]
        return [r for r in reversed(rows) if self.report_time("recording_access", r) <= now
                and (owner is None or self._owner(site, r[key]) == owner)]

    def recording(self, site: SiteConfig, record_id: int, now: int) -> Record | None:
        """A recording whose report is out, by XML recordID, or None."""
        rec = self._recording_index(site, now).get(record_id)
        lay = self.store.layouts["recording_access"]
        if rec is None or rec[lay.visible] > now or self.report_time("recording_access", rec) > now:
            return None
        return rec if rec[lay.start] >= self._cutoff(now) else None

    def recording_owner(self, site: SiteConfig, rec: Record) -> str | None:
        """The lower-cased webExID of the host whose session left the recording."""
        return self._owner(site, rec[self.store.layouts["recording_access"].key[0]])

    def recording_item(self, site: SiteConfig, rec: Record, now: int) -> dict[str, Any]:
        """One ``/recordingReport/accessSummary`` item."""
        lay = self.store.layouts["recording_access"]
        v = dict(zip(lay.names, self.store.present("recording_access", rec, now)))
        host = self.host(site, self.recording_owner(site, rec))
        return {
            "recordingId": recording_id(site.name, v["record_id"]),
            "topic": v["record_name"],
            "timeRecorded": Time(v["creation_time"]),
            "siteUrl": site.site_url,
            "hostEmail": host.email if host else None,
            "viewCount": v["viewed"] or 0,
            "downloadCount": v["downloaded"] or 0,
        }

    def access_details(self, site: SiteConfig, rec: Record, now: int) -> list[dict[str, Any]]:
        """``/recordingReport/accessDetail`` items of a recording, newest first: one per view (the
        stored count spread between creation and visibility, then each growth view when the counter
        grew) and one per download, so they add up to the summary's counters now."""
        lay = self.store.layouts["recording_access"]
        record_id, created = rec[lay.index["record_id"]], rec[lay.start]
        base_views, base_downloads = rec[lay.index["viewed"]] or 0, rec[lay.index["downloaded"]] or 0
        span = max(1, rec[lay.visible] - created)
        growth, per_day, per_3_days = self.store.recording_growth(rec)
        elapsed = min(max(now - created, 0), growth)
        accesses: list[tuple[int, bool]] = []  # (time, download?)
        accesses += [(created + (k + 1) * span // (base_views + 1), False) for k in range(base_views)]
        accesses += [(created + (2 * k + 1) * span // (2 * base_downloads + 2), True) for k in range(base_downloads)]
        accesses += [(created + -(-j * DAY // per_day), False) for j in range(1, elapsed * per_day // DAY + 1)]
        accesses += [(created + -(-j * 3 * DAY // per_3_days), True)
                     for j in range(1, elapsed * per_3_days // (3 * DAY) + 1)]
        accesses = sorted((a for a in accesses if a[0] <= now), key=lambda a: (-a[0], a[1]))
        h = mix(self.config.seed, 26, record_id)
        viewers = 1 + h % 7
        topic = rec[lay.index["record_name"]]
        rid = recording_id(site.name, record_id)
        out = []
        for k, (when, download) in enumerate(accesses):
            person = mix(h, 27, when, download) % viewers
            first, last, a_first, a_last = pools.PEOPLE[((h >> 8) + person) % len(pools.PEOPLE)]
            domain = pools.DOMAINS[(h >> 16) % len(pools.DOMAINS)]
            out.append({
                "recordingId": rid, "topic": topic, "name": f"{first} {last}",
                "email": f"{a_first}.{a_last}@{domain}", "accessTime": Time(when),
                "viewed": not download, "downloaded": download,
            })
        return out
