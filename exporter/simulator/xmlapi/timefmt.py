"""Wire dates: ``MM/DD/YYYY HH:MM:SS`` in a Webex zone, both ways, fast enough for 500-row pages."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from ...model.timezones import zoneinfo_for

__all__ = ["WireZone", "parse_wire_time", "BadWireTime"]

_WIRE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s+(\d{1,2}):(\d{1,2}):(\d{1,2})\s*$")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class BadWireTime(ValueError):
    """A request date that is not ``MM/DD/YYYY HH:MM:SS`` or names no real time."""


class WireZone:
    """Formats POSIX seconds as local wire text in one Webex zone (offsets cached per hour)."""

    __slots__ = ("zone_id", "zone", "_offsets", "_dates", "_times")

    def __init__(self, zone_id: int) -> None:
        self.zone_id = zone_id
        self.zone: ZoneInfo = zoneinfo_for(zone_id)
        self._offsets: dict[int, int] = {}
        # Text of local days and times of day, cached: a page repeats few days and many rows share
        # seconds-of-day, and formatting dominates rendering otherwise.  Unpadded keys are negative.
        self._dates: dict[int, str] = {}
        self._times: dict[int, str] = {}

    def offset(self, ts: int) -> int:
        """UTC offset in seconds at ``ts`` (DST included)."""
        hour = ts // 3600  # every zone in the table changes offset on an hour boundary
        off = self._offsets.get(hour)
        if off is None:
            delta = datetime.fromtimestamp(hour * 3600, timezone.utc).astimezone(self.zone).utcoffset()
            off = self._offsets[hour] = int(delta.total_seconds()) if delta else 0
        return off

    def format(self, ts: int, unpadded: bool = False) -> str:
        """``ts`` as local wire text; ``unpadded`` drops leading zeros as some servers do."""
        days, secs = divmod(ts + self.offset(ts), 86_400)
        day_key, time_key = (~days, ~secs) if unpadded else (days, secs)
        day = self._dates.get(day_key)
        if day is None:
            d = date.fromordinal(_EPOCH_ORDINAL + days)
            day = f"{d.month}/{d.day}/{d.year} " if unpadded else f"{d.month:02d}/{d.day:02d}/{d.year:04d} "
            self._dates[day_key] = day
        clock = self._times.get(time_key)
        if clock is None:
            h, rem = divmod(secs, 3600)
            m, s = divmod(rem, 60)
            clock = f"{h}:{m}:{s}" if unpadded else f"{h:02d}:{m:02d}:{s:02d}"
            self._times[time_key] = clock
        return day + clock

    def parse(self, text: str) -> int:
        """Local wire text -> POSIX seconds (ambiguous local times take the first occurrence)."""
        return parse_wire_time(text, self.zone)


def parse_wire_time(text: str, zone: ZoneInfo) -> int:
    """Parse ``M/D/YYYY H:M:S`` (padded or not) in ``zone`` into POSIX seconds."""
    match = _WIRE.match(text or "")
    if not match:
        raise BadWireTime(f"{text!r} is not MM/DD/YYYY HH:MM:SS")
    month, day, year, hour, minute, second = map(int, match.groups())
    try:
        local = datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError as exc:
        raise BadWireTime(f"{text!r}: {exc}") from None
    return int(local.timestamp())
