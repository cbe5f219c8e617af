"""Meeting instances and their participants as REST items: ``/meetings`` (one meeting instance
per Meeting Center usage row, listed as ended ``meetings_delay_seconds`` after it ends) and
``/meetingParticipants`` (the instance's attendee rows grouped by person, e-mail else name, one
device per row: a rejoin is a second device).  Participants are live data (no history delay).
"""

from __future__ import annotations

import math
from typing import Any

from ...model.timezones import TIME_ZONES
from ..data.records import Record, mix
from ..data.world import RECORD_BASE
from ..site_config import SiteConfig
from .ids import instance_id, org_id, person_id, scheduled_meeting_id, series_id, site_hash, uuid_from
from .index import RestIndex
from .wire import PLACEHOLDER, Time

__all__ = ["MeetingItems"]

_IANA = {tz.label: tz.iana for tz in TIME_ZONES}
_PMR_KEYS = range(600_000_000, 700_000_000)  # meeting numbers of Personal Rooms (data.people.Host.pmr_key)


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


class MeetingItems(RestIndex):
    """Meeting instance and participant items of one simulator's store."""

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
