"""The REST wire format: times in the request's ``timezone`` header, JSON items, Webex error bodies.

Items are built as *logical* dicts (:mod:`.items`): plain JSON values, with times as
:class:`Time` (POSIX seconds; ``ms`` for the fields Webex writes with milliseconds) and the
``1970-01-01T00:00:00.000Z`` "not yet known" value as :data:`PLACEHOLDER`.  :func:`to_wire`
turns them into what goes out (None-valued fields are left out, as Webex omits them);
ground truth lands the same logical values without any wire quirk.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..data.records import mix

__all__ = ["Time", "PLACEHOLDER", "PLACEHOLDER_TEXT", "Zone", "UTC_ZONE", "zone_named", "to_wire",
           "RestError", "error_body", "TrackingIds", "dumps"]

PLACEHOLDER_TEXT = "1970-01-01T00:00:00.000Z"


@dataclass(frozen=True, slots=True)
class Time:
    """A time field: POSIX seconds; ``ms`` writes ``.000`` before the offset (participant devices)."""

    ts: int
    ms: bool = False
    placeholder: bool = False


#: "Not known yet": the leave time of a participant of a meeting that has only just ended.
PLACEHOLDER = Time(0, ms=True, placeholder=True)


class Zone:
    """Formats POSIX seconds as ISO 8601 in one IANA zone, with its offset (``Z`` for +00:00)."""

    __slots__ = ("name", "zone", "_offsets")

    def __init__(self, name: str) -> None:
        self.name = name
        self.zone = ZoneInfo(name)
        self._offsets: dict[int, int] = {}

    def offset(self, ts: int) -> int:
        """The zone's UTC offset in seconds at ``ts``."""
        quarter = ts // 900  # zones change offset on quarter hours
        off = self._offsets.get(quarter)
        if off is None:
            delta = datetime.fromtimestamp(quarter * 900, timezone.utc).astimezone(self.zone).utcoffset()
            off = self._offsets[quarter] = int(delta.total_seconds()) if delta else 0
        return off

    def format(self, t: Time) -> str:
        """``2023-01-18T10:26:30+08:00`` (``.000`` with ``ms``; ``Z`` when the offset is zero)."""
        if t.placeholder:
            return PLACEHOLDER_TEXT
        off = self.offset(t.ts)
        local = datetime.fromtimestamp(t.ts + off, timezone.utc)
        text = f"{local:%Y-%m-%dT%H:%M:%S}" + (".000" if t.ms else "")
        if not off:
            return text + "Z"
        sign = "-" if off < 0 else "+"
        hours, minutes = divmod(abs(off) // 60, 60)
        return f"{text}{sign}{hours:02d}:{minutes:02d}"

    def parse(self, text: str) -> float:
        """An ISO 8601 request time (a time without offset is in this zone) -> POSIX seconds."""
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        return value.timestamp()


_ZONES: dict[str, Zone] = {}
_ZONES_LOCK = threading.Lock()


def zone_named(name: str) -> Zone:
    """The :class:`Zone` for an IANA name (cached); ValueError when there is no such zone."""
    with _ZONES_LOCK:
        zone = _ZONES.get(name)
        if zone is None:
            try:
                zone = Zone(name)
            except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
                raise ValueError(f"unknown time zone {name!r}") from exc
            _ZONES[name] = zone
        return zone


UTC_ZONE = zone_named("UTC")


def to_wire(value: Any, zone: Zone) -> Any:
    """A logical value as JSON: times formatted in ``zone``, None-valued dict fields left out."""
    if isinstance(value, Time):
        return zone.format(value)
    if isinstance(value, Mapping):
        return {k: to_wire(v, zone) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [to_wire(v, zone) for v in value]
    return value


def dumps(value: Any) -> str:
    """Compact JSON with sorted keys: how JSON columns land (``tracking_codes``, ``breakout_sessions``)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


class RestError(Exception):
    """An error answer: HTTP ``status`` with Webex's JSON body (``message``, ``errors``, ``trackingId``);
    ``fields`` adds body fields (OAuth's ``error`` / ``error_description``), ``headers`` headers."""

    def __init__(self, status: int, message: str, description: str | None = None, *,
                 headers: Mapping[str, str] | None = None,
                 fields: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.description = description or message
        self.headers = dict(headers or {})
        self.fields = dict(fields or {})


def error_body(error: RestError, tracking_id: str) -> dict[str, Any]:
    """The JSON body Webex sends with an error status."""
    return {**error.fields, "message": error.message, "errors": [{"description": error.description}],
            "trackingId": tracking_id}


class TrackingIds:
    """``ROUTER_<uuid>`` tracking ids, one per response, deterministic from the seed (thread-safe)."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._count = itertools.count(1)
        self._lock = threading.Lock()

    def next(self) -> str:
        """The next tracking id."""
        with self._lock:
            n = next(self._count)
        hi, lo = mix(self._seed, 31, n), mix(self._seed, 32, n)
        h = f"{hi:016x}{lo:016x}"
        return f"ROUTER_{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}".upper()
