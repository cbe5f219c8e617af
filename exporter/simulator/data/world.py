"""Deterministic data: every record of a site-day is a function of (seed, site name, day).

A *world day* is the sessions that start on one UTC day; it yields rows for every dataset (a
meeting gives a usage row, attendee rows, a scheduled-session row and maybe a recording).  Rows
may start on the next day (attendees joining after midnight, recordings created after a late
meeting), which the store accounts for.  Twins (``twin_fraction``, ``near_twin_fraction``) are
added last, from a random stream of their own, so every other row is the same with or without them.  Generation is lazy, a day at a time, so a 90-day world of
500k attendee rows costs nothing until asked for and a few seconds when it is.
"""

from __future__ import annotations

import random

from ...model.datasets import DATASETS
from ...model.timezones import TIME_ZONES
from ..config import SimulatorConfig
from ..site_config import SiteConfig
from . import pools
from .people import ATTENDEE_DATASETS, AttendeeSlots, Host, RowTemplates, attendee_profiles, site_hosts, whole_minutes
from .records import AUDIO_ONLY, PMR, Layout, Record, mix
from .twins import Twins

__all__ = ["World", "DAY", "layouts"]

DAY = 86_400
CONF_BASE = 141_000_000_000_000_000  # confIDs look like the seed's 141672157056861215
RECORD_BASE = 5_000_000_000
_LABELS = {tz.id: tz.label for tz in TIME_ZONES}
#: One attendance span: (name, email, join, leave, minutes, dial_in, host).
_Span = tuple[str, str | None, int, int, int, bool, bool]


class _Session:
    """One session being generated (plain attributes; never stored)."""

    __slots__ = ("kind", "conf_id", "session_key", "conf_name", "host", "zone", "start", "end", "minutes",
                 "uuid", "flags", "recurring", "series_key", "tracking", "assist", "meeting_type")

    kind: str
    conf_id: int
    session_key: int
    conf_name: str
    host: Host
    zone: int  # a TIME_ZONES index
    start: int
    end: int
    minutes: int
    uuid: str | None
    flags: int
    recurring: bool
    series_key: int
    tracking: list[str | None]  # tracking codes 1-10
    assist: tuple[str | None, str | None]  # (assist request, assist confirm)
    meeting_type: str


class World:
    """Generates the records of one site-day for every dataset."""

    def __init__(self, config: SimulatorConfig, layouts: dict[str, Layout], anchor_ts: int) -> None:
        self.config = config
        self.layouts = layouts
        self.anchor_ts = anchor_ts  # the clock at start: an in-progress meeting is placed around it
        self.hosts = {site.name: site_hosts(index, site) for index, site in enumerate(config.sites)}
        #: Per site: conf_id / record_id -> the lower-cased webExID of the session's host.
        self.owners: dict[str, dict[int, str]] = {site.name: {} for site in config.sites}
        self._owners: dict[int, str] = {}
        self._guests: dict[tuple[int, int], tuple[str, str | None]] = {}
        online, dial = attendee_profiles(self.config.seed)
        self._slots = {name: AttendeeSlots(layouts[name]) for name in ATTENDEE_DATASETS}
        # Attendee rows start as a copy of a profile's row template: a list copy, not a dict build.
        self._bases: dict[str, RowTemplates] = {
            name: tuple([list(layouts[name].build(p, 0, 0)) for p in profiles] for profiles in (online, dial))
            for name in ATTENDEE_DATASETS
        }
        self._twin_rows = Twins(config, layouts, self._slots, self._bases)

    # ------------------------------------------------------------------ one day

    def generate(self, site_index: int, site: SiteConfig, day: int) -> dict[str, list[Record]]:
        """Every record of the sessions starting on UTC ``day`` (days since 1970-01-01)."""
        c = self.config
        rng = random.Random(f"{c.seed}|{site.name}|{day}")
        out: dict[str, list[Record]] = {name: [] for name in self.layouts}
        self._owners = owners = self.owners.setdefault(site.name, {})
        seq = 0
        for kind in ("meeting", "training", "event", "support"):
            count = round(c.per_day(kind) * site.scale)
            for i in range(count):
                s = self._session(rng, site_index, site, day, seq, kind, i)
                seq += 1
                owners[s.conf_id] = s.host.webex_id.lower()
                self._emit(rng, s, out)
        if day == self.anchor_ts // DAY and c.meetings_per_day:
            # One meeting is always running when the simulator starts (LstsummarySession INPROGRESS).
            s = self._session(rng, site_index, site, day, seq, "meeting", 1)
            # Kept inside the anchor day: a world day only holds sessions that start on it.
            s.start, s.end = max(day * DAY, self.anchor_ts - 1200), self.anchor_ts + 6000
            s.minutes = whole_minutes(s.end - s.start)
            # A plain meeting, listed whatever the request's audio-only / PMR flags say.
            s.flags, s.meeting_type, s.conf_name = 0, "MC", pools.MEETING_NAMES[0]
            seq += 1
            owners[s.conf_id] = s.host.webex_id.lower()
            self._emit(rng, s, out)
        for _ in range(round(c.per_day("access_anywhere") * site.scale)):
            self._access_anywhere(rng, site_index, site, day, seq, out)
            seq += 1
        if c.twin_fraction or c.near_twin_fraction:
            # A stream of its own: the rows above stay exactly what they are without twins.
            self._twin_rows.add(random.Random(f"{c.seed}|{site.name}|{day}|twins"), out)
        return out

    def _session(self, rng: random.Random, site_index: int, site: SiteConfig, day: int, seq: int,
                 kind: str, i: int) -> _Session:
        hosts = self.hosts[site.name]
        s = _Session()
        s.kind = kind
        s.conf_id = CONF_BASE + site_index * 10**14 + day * 10**6 + seq
        s.host = hosts[rng.randrange(len(hosts))]
        s.zone = (day * 7 + seq) % len(TIME_ZONES)  # cycles through all 62 zones
        if rng.random() < 0.08:
            start = day * DAY + rng.randint(22 * 3600 + 1800, DAY - 1)  # runs past midnight
        else:
            start = day * DAY + rng.randint(0, 22 * 3600)
        seconds = rng.choice((900, 1800, 1800, 2700, 3600, 3600, 5400, 7200)) + rng.randint(-120, 300)
        if rng.random() < 0.01:
            seconds = rng.randint(4, 10) * 3600  # a marathon
        s.start, s.end = start, start + seconds
        s.minutes = whole_minutes(seconds)
        s.uuid = None if rng.random() < 0.05 else f"{rng.getrandbits(128):032x}"
        s.flags = 0
        s.recurring = False
        s.series_key = 0
        s.session_key = 800_000_000 + rng.randrange(100_000_000)
        s.meeting_type = {"meeting": "MC", "training": "TC", "event": "EC", "support": "SC"}[kind]
        if kind == "meeting":
            roll = rng.random()
            if roll < 0.30:
                r = rng.randrange(len(pools.SERIES_NAMES))
                s.conf_name = pools.SERIES_NAMES[r]
                s.host = hosts[r % len(hosts)]
                s.session_key = s.series_key = 700_000_000 + site_index * 1000 + r
                s.recurring = True
            elif roll < 0.40:
                s.conf_name = f"{s.host.name}'s Personal Room"
                s.session_key = s.host.pmr_key
                s.flags = PMR
            elif roll < 0.45:
                s.conf_name = "Audio bridge & dial-in"
                s.flags = AUDIO_ONLY
                s.meeting_type = "AUO"
            else:
                s.conf_name = pools.MEETING_NAMES[rng.randrange(len(pools.MEETING_NAMES))]
        elif kind == "training":
            s.conf_name = pools.TRAINING_NAMES[i % len(pools.TRAINING_NAMES)]
        elif kind == "event":
            s.conf_name = pools.EVENT_NAMES[i % len(pools.EVENT_NAMES)]
        else:
            s.conf_name = pools.SUPPORT_NAMES[i % len(pools.SUPPORT_NAMES)].format(n=seq)
        codes: list[str | None] = [None] * 10
        if rng.random() < 0.5:
            codes[0] = pools.TRACKING_CODES[rng.randrange(len(pools.TRACKING_CODES))]
            codes[1] = "" if rng.random() < 0.5 else None
        s.tracking = codes
        s.assist = (pools.ASSIST_REQUESTS[rng.randrange(6)], pools.ASSIST_CONFIRMS[rng.randrange(3)]) \
            if rng.random() < 0.3 else (None, None)
        return s

    # ------------------------------------------------------------------ rows

    def _visibility(self, rng: random.Random, end: int) -> tuple[int, int]:
        c = self.config
        visible = end + c.history_delay_seconds
        if c.late_fraction and rng.random() < c.late_fraction:
            visible += c.late_extra_seconds + self._jitter(end)
        return visible, end + c.preliminary_delay_seconds

    def _jitter(self, *content: int) -> int:
        """Extra delay of a late row, 0..late_extra_jitter_seconds, from its content (no rng draw)."""
        jitter = self.config.late_extra_jitter_seconds
        return mix(self.config.seed, *content) % (jitter + 1) if jitter else 0

    def _emit(self, rng: random.Random, s: _Session, out: dict[str, list[Record]]) -> None:
        """The rows of one session in every dataset it feeds."""
        people = self._attendees(rng, s)
        visible, prelim = self._visibility(rng, s.end)
        row_visible = s.end + self.config.history_delay_seconds
        dial = [p for p in people if p[5]]
        minutes = sum(p[4] for p in people)
        dial_minutes = sum(p[4] for p in dial)
        distinct = len({(p[0], p[1]) for p in people})
        tracking = {f"tracking_code{i + 1}": code for i, code in enumerate(s.tracking)}
        totals = {
            "total_people_minutes": minutes, "total_call_in_minutes": dial_minutes,
            "total_call_in_tollfree_minutes": dial_minutes // 3, "total_call_out_domestic": 0,
            "total_call_out_international": 0, "total_voip_minutes": minutes - dial_minutes,
            "total_participants": distinct, "total_participants_voip": distinct - len(dial),
            "total_participants_call_in": len(dial), "total_participants_call_out": 0,
            "peak_attendee": max(0, distinct - rng.randint(0, max(0, distinct // 3))),
        }
        common = {
            "session_key": s.session_key, "conf_name": s.conf_name, "conf_id": s.conf_id,
            "duration": s.minutes, "host_webex_id": s.host.webex_id, "host_name": s.host.name,
            "host_email": s.host.email, "user_id": s.host.user_id, "meeting_uuid": s.uuid,
            "assist_request": s.assist[0], "assist_confirm": s.assist[1], "meeting_type": s.meeting_type,
            **tracking, **totals,
        }
        kind = s.kind
        if kind == "meeting":
            lay = self.layouts["meeting_usage"]
            out["meeting_usage"].append(lay.build({
                **common, "meeting_start_time": s.start, "meeting_end_time": s.end,
                "timezone": _LABELS[s.zone], "toll_call_in_international": dial_minutes // 5,
                "tollfree_call_in_international": 0}, visible, prelim, s.flags & AUDIO_ONLY))
            self._center_attendees("meeting_attendees", rng, s, people, out, row_visible, prelim)
            if not s.flags & AUDIO_ONLY and rng.random() < self.config.recording_fraction:
                self._recording(rng, s, out)
        elif kind == "training":
            lay = self.layouts["training_sessions"]
            out["training_sessions"].append(lay.build({
                **common, "session_start_time": s.start, "session_end_time": s.end,
                "total_attendee": distinct, "total_registered": distinct + rng.randint(0, 5),
                "total_invited": distinct + rng.randint(0, 20), "timezone": s.zone}, visible, prelim))
            self._center_attendees("training_attendees", rng, s, people, out, row_visible, prelim)
        elif kind == "event":
            lay = self.layouts["event_sessions"]
            out["event_sessions"].append(lay.build({
                **common, "session_start_time": s.start, "session_end_time": s.end, "timezone": s.zone,
                "lead_source_id": pools.LEAD_SOURCES[rng.randrange(len(pools.LEAD_SOURCES))],
                "source_count": distinct, "avg_lead_score": round(rng.uniform(0, 10), 2),
                "toll_call_in_international": dial_minutes // 5,
                "tollfree_call_in_international": 0}, visible, prelim))
            self._center_attendees("event_attendees", rng, s, people, out, row_visible, prelim)
        else:
            lay = self.layouts["support_sessions"]
            out["support_sessions"].append(lay.build({
                **common, "session_start_time": s.start, "session_end_time": s.end,
                "timezone": s.zone}, visible, prelim))
            self._center_attendees("support_attendees", rng, s, people, out, row_visible, prelim)
        self._scheduled(rng, s, out)

    def _attendees(self, rng: random.Random, s: _Session) -> list[_Span]:
        """Attendance spans ``(name, email, join, leave, minutes, dial_in, host)``: the host first, then
        guests; some dial in, some leave and come back (a second row for the same person)."""
        r = rng.random
        mean = self.config.attendees_per_meeting
        lo, hi = mean // 2, mean + (mean - mean // 2)
        count = lo + int(r() * (hi - lo + 1)) if mean else 0
        start, end = s.start, s.end
        third = max(1, (end - start) // 3)
        audio_only = bool(s.flags & AUDIO_ONLY)
        rows: list[_Span] = []
        for j in range(count):
            if j == 0:
                rows.append((s.host.name, s.host.email, start, end, whole_minutes(end - start), audio_only, True))
                continue
            dial_in = audio_only or r() < 0.12
            name, email = self._guest(int(r() * len(pools.PEOPLE)), j, dial_in)
            join = start + int(r() * third)
            leave = join + 30 + int(r() * max(1, end - join - 30))
            rows.append((name, email, join, leave, whole_minutes(leave - join), dial_in, False))
            if leave + 120 < end and r() < 0.08:
                back = leave + 30 + int(r() * (end - leave - 90))
                rows.append((name, email, back, end, whole_minutes(end - back), dial_in, False))
        return rows

    def _guest(self, person: int, j: int, dial_in: bool) -> tuple[str, str | None]:
        """A guest's display name and e-mail; cached, so a million rows share a few thousand strings."""
        key = (-1 if dial_in else person, j)
        hit = self._guests.get(key)
        if hit is None:
            if dial_in:
                hit = (f"Call-in User {j}", None)
            else:
                first, last, a_first, a_last = pools.PEOPLE[person]
                hit = (f"{first} {last}", f"{a_first}.{a_last}{j}@{pools.DOMAINS[j % len(pools.DOMAINS)]}")
            self._guests[key] = hit
        return hit

    def _center_attendees(self, dataset: str, rng: random.Random, s: _Session, people: list[_Span],
                          out: dict[str, list[Record]], visible: int, prelim: int) -> None:
        """Attendee rows of ``dataset`` (meeting, training, event or support attendees)."""
        r = rng.random
        online, dial = self._bases[dataset]
        sl = self._slots[dataset]
        rows = out[dataset]
        late_fraction, late_extra = self.config.late_fraction, self.config.late_extra_seconds
        flags = s.flags & AUDIO_ONLY
        for name, email, join, leave, minutes, dial_in, host in people:
            pool = dial if dial_in else online
            row = pool[int(r() * len(pool))].copy()
            row[sl.key] = s.session_key
            if sl.conf_name is not None:
                row[sl.conf_name] = s.conf_name
            row[sl.name] = name
            row[sl.email] = email
            row[sl.join] = join
            row[sl.leave] = leave
            row[sl.duration] = minutes
            row[sl.ptype] = "HOST" if host else "ATTENDEE"
            row[sl.conf_id] = s.conf_id
            row[sl.uuid] = s.uuid
            if sl.voip is not None:
                row[sl.voip] = 0 if dial_in else minutes
            if sl.registered is not None and sl.invited is not None:  # both or neither
                row[sl.registered] = "Y" if r() < 0.7 else "N"
                row[sl.invited] = "Y" if r() < 0.4 else "N"
            if sl.lead is not None:  # event attendees
                lead_source, lead_score, qa = sl.lead
                row[lead_source] = pools.LEAD_SOURCES[int(r() * len(pools.LEAD_SOURCES))]
                row[lead_score] = round(r() * 10, 1)
                answers = [{"regQ": pools.REG_QUESTIONS[k], "regA": pools.REG_ANSWERS[int(r() * len(pools.REG_ANSWERS))]}
                           for k in range(int(r() * 4))]
                row[qa] = answers or None
            row[sl.visible] = visible + late_extra + self._jitter(s.conf_id, join) \
                if late_fraction and r() < late_fraction else visible
            row[sl.preliminary] = prelim
            row[sl.flags] = flags
            rows.append(tuple(row))

    def _recording(self, rng: random.Random, s: _Session, out: dict[str, list[Record]]) -> None:
        lay = self.layouts["recording_access"]
        created = s.end + rng.randint(120, 1800)
        visible, prelim = self._visibility(rng, created)
        record_id = RECORD_BASE + s.conf_id % 10**14
        self._owners[record_id] = s.host.webex_id.lower()
        out["recording_access"].append(lay.build({
            "record_id": record_id, "record_name": f"{s.conf_name} (recording)",
            "creation_time": created, "registered": rng.randint(0, 5), "downloaded": rng.randint(0, 10),
            "viewed": rng.randint(0, 40), "time_zone_id": s.zone}, visible, prelim))

    def _scheduled(self, rng: random.Random, s: _Session, out: dict[str, list[Record]]) -> None:
        lay = self.layouts["scheduled_sessions"]
        service, session_type = {"meeting": ("MeetingCenter", 3), "training": ("TrainingCenter", 11),
                                 "event": ("EventCenter", 9), "support": ("SupportCenter", 10)}[s.kind]
        if s.flags & AUDIO_ONLY:
            session_type = 16
        h = s.host
        out["scheduled_sessions"].append(lay.build({
            "session_key": s.session_key, "meeting_uuid": s.uuid, "conf_name": s.conf_name,
            "session_type": session_type, "service_type": service, "host_webex_id": h.webex_id,
            "host_first_name": h.first, "host_last_name": h.last, "other_host_webex_id": h.webex_id,
            "time_zone_id": s.zone, "time_zone": _LABELS[s.zone], "start_time": s.start,
            # Planned actual start; the store shows it only once the clock has passed it.
            "actual_start_time": s.start + rng.randint(0, 300),
            "open_time": rng.choice((0, 5, 10, 15)), "duration": s.minutes,
            "list_status": rng.choice(("PUBLIC", "PUBLIC", "PRIVATE", "UNLISTED")), "host_email": h.email,
            "password_req": rng.random() < 0.8, "conf_id": s.conf_id, "registration": s.kind == "event",
            "is_recurring": s.recurring, "alt_host": rng.random() < 0.1, "host_type": "1019001",
            "audio_status": None, "is_audio_only": bool(s.flags & AUDIO_ONLY), "is_tc_single_recurrence": False,
            "is_allow_jbh": rng.random() < 0.5, "is_cet_meeting": True, "is_exception": False,
            "is_next_upcoming_instance": False, "series_meeting_key": s.series_key, "recurrence_id": 0,
            "is_scheduled_pmr": bool(s.flags & PMR), "is_private_meeting": rng.random() < 0.05,
        }, s.start - 7 * DAY, s.start - 7 * DAY, s.flags))

    def _access_anywhere(self, rng: random.Random, site_index: int, site: SiteConfig, day: int, seq: int,
                         out: dict[str, list[Record]]) -> None:
        lay = self.layouts["access_anywhere"]
        host = self.hosts[site.name][rng.randrange(len(self.hosts[site.name]))]
        start = day * DAY + rng.randint(0, DAY - 60)
        end = start + rng.randint(60, 4 * 3600)
        visible, prelim = self._visibility(rng, end)
        out["access_anywhere"].append(lay.build({
            "conf_id": CONF_BASE + site_index * 10**14 + day * 10**6 + seq, "user_name": host.webex_id,
            "computer_name": f"{rng.randint(1000, 9999)}_{host.webex_id}",
            "client_ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            "start_time": start, "end_time": end, "duration": whole_minutes(end - start)}, visible, prelim))


def layouts() -> dict[str, Layout]:
    """A fresh layout per dataset."""
    return {d.name: Layout(d) for d in DATASETS}
