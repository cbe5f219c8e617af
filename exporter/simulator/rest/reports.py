"""The session reports as REST items: ``/meetingReports/usage`` (one item per session row of
meeting usage, training, event and support sessions, with the values shown now, revisions
included) and ``/meetingReports/attendees`` (the session's attendee rows, twins and all).

A report row needs its XML history visible *and* the session ended ``report_delay_hours``
(+ jitter) ago (:meth:`.index.RestIndex.report_time`).
"""

from __future__ import annotations

import math
import zlib
from typing import Any, Callable

from ..data.records import Record, mix
from ..data.selection import Selection
from ..site_config import SiteConfig
from .ids import instance_id
from .index import ATTENDEES_OF, SERVICE_TYPES, SESSION_DATASETS, SESSION_OF, RestIndex
from .wire import Time

__all__ = ["ReportItems", "TRACKING_NAMES"]

#: Names of tracking codes 1..10 as a site admin set them up.
TRACKING_NAMES = ("Department", "Division", "Project", "Cost center", "Region", "Product", "Campaign", "Team",
                  "Program", "Customer")
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


class ReportItems(RestIndex):
    """Usage and attendee report items of one simulator's store."""

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
