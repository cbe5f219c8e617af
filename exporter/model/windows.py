"""Time windows: the unit the exporter lists, checks for completeness and commits.

A :class:`Window` is ``[start, end)`` in UTC with one-second resolution (the wire's resolution),
so consecutive windows tile time without overlap and every record belongs to exactly one window.
Window boundaries sit on a UTC grid (multiples of ``hours`` from midnight) so that the same
window is asked for again on the next run and failed windows can be recorded by their bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = ["Window", "plan_windows", "clamp_to_retention", "RETENTION_MARGIN"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SECOND = timedelta(seconds=1)

#: How far inside the retention horizon we stay: the server drops data continuously, and a
#: request that names a time just past its horizon can fail or come back short.
RETENTION_MARGIN = timedelta(minutes=10)


def _utc(value: datetime, what: str) -> datetime:
    """``value`` as an aware UTC datetime truncated to the second; naive times are refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(timezone.utc).replace(microsecond=0)


@dataclass(frozen=True, slots=True, order=True)
class Window:
    """``[start, end)`` in UTC: start inclusive, end exclusive, whole seconds, start < end."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start, end = _utc(self.start, "Window.start"), _utc(self.end, "Window.end")
        if not start < end:
            raise ValueError(f"empty window: start {start.isoformat()} is not before end {end.isoformat()}")
        # Frozen dataclass: normalise through object.__setattr__ (the documented idiom).
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def duration(self) -> timedelta:
        """``end - start``."""
        return self.end - self.start

    @property
    def last_second(self) -> datetime:
        """The inclusive end as the wire wants it: ``end - 1 s``."""
        return self.end - _SECOND

    def can_split(self) -> bool:
        """True when both halves would still hold at least one whole second."""
        return self.duration >= 2 * _SECOND

    def split(self) -> tuple[Window, Window]:
        """Two halves on a whole second; ``ValueError`` for a one-second window."""
        if not self.can_split():
            raise ValueError(f"window {self} is one second long and cannot be split")
        half = timedelta(seconds=int(self.duration.total_seconds()) // 2)
        middle = self.start + half
        return Window(self.start, middle), Window(middle, self.end)

    def contains(self, moment: datetime) -> bool:
        """Whether an aware ``moment`` falls inside ``[start, end)``."""
        return self.start <= moment < self.end

    def __str__(self) -> str:
        return f"[{_iso(self.start)}, {_iso(self.end)})"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def plan_windows(start: datetime, end: datetime, hours: int) -> list[Window]:
    """Windows covering ``[start, end)`` whose inner boundaries are UTC multiples of ``hours``
    counted from midnight (from the Unix epoch, which is a midnight: for ``hours`` dividing 24
    that is every day's midnight).  The first and last windows are clipped to ``start`` and
    ``end`` so nothing outside the asked range is listed; an empty range gives ``[]``.
    """
    if hours < 1:
        raise ValueError(f"window hours must be >= 1, got {hours}")
    start, end = _utc(start, "start"), _utc(end, "end")
    if start >= end:
        return []
    step = timedelta(hours=hours)
    # First grid boundary strictly after start.
    boundary = _EPOCH + ((start - _EPOCH) // step + 1) * step
    windows: list[Window] = []
    cursor = start
    while cursor < end:
        upper = min(boundary, end)
        windows.append(Window(cursor, upper))
        cursor, boundary = upper, boundary + step
    return windows


def clamp_to_retention(
    start: datetime, now: datetime, retention_days: int, *, margin: timedelta = RETENTION_MARGIN
) -> datetime:
    """``start``, or the oldest moment still safely inside the server's retention if ``start``
    is older: never ask for data past ``now - retention_days`` (plus ``margin``)."""
    if retention_days < 1:
        raise ValueError(f"retention_days must be >= 1, got {retention_days}")
    horizon = _utc(now, "now") - timedelta(days=retention_days) + margin
    # Round the horizon up to a whole second so the result stays inside retention.
    if horizon.microsecond:
        horizon = horizon.replace(microsecond=0) + _SECOND
    return max(_utc(start, "start"), horizon)
