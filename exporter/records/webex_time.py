"""Webex wall times, one value at a time: the ``MM/DD/YYYY HH:MM:SS`` wire form both ways, and wall
time in a zone -> UTC with the parser's rules (ambiguous: first occurrence; nonexistent: shifted
forward by the gap).  The request side and the parser's exact per-value path use these."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

__all__ = ["WEBEX_TIME_FORMAT", "format_webex_time", "local_to_utc", "local_to_utc_checked", "parse_webex_time"]

#: The wire format of dates, zero-padded as we send them (servers may omit the padding).
WEBEX_TIME_FORMAT = "%m/%d/%Y %H:%M:%S"


_LOOSE_TIME = re.compile(r"\s*([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})\s+([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})\s*")


def parse_webex_time(text: str) -> datetime:
    """``MM/DD/YYYY HH:MM:SS`` (padded or not, surrounding white space allowed) -> naive datetime.

    Raises ``ValueError`` for anything else, including impossible dates such as ``02/30/2019``.
    """
    match = _LOOSE_TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"not a Webex time (MM/DD/YYYY HH:MM:SS): {text!r}")
    month, day, year, hour, minute, second = map(int, match.groups())
    return datetime(year, month, day, hour, minute, second)


def format_webex_time(dt: datetime, zone: ZoneInfo | None = None) -> str:
    """The zero-padded wire form ``MM/DD/YYYY HH:MM:SS``.

    With ``zone``, ``dt`` must be aware and is first converted to that zone's wall time (what a
    request scope needs); without, ``dt``'s own wall-clock fields are written.
    """
    if zone is not None:
        if dt.tzinfo is None:
            raise ValueError("format_webex_time: a zone was given, so dt must be timezone-aware")
        dt = dt.astimezone(zone)
    # strftime pads %Y only on some platforms; build it by hand so years < 1000 stay 4 digits.
    return f"{dt.month:02d}/{dt.day:02d}/{dt.year:04d} {dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"


def local_to_utc(naive: datetime, zone: ZoneInfo) -> datetime:
    """Wall time in ``zone`` -> aware UTC, with the parser's rules (ambiguous: first occurrence;
    nonexistent: shifted forward by the gap).  Raises ``OverflowError`` outside year 1-9999."""
    return naive.replace(tzinfo=zone).astimezone(timezone.utc)


def local_to_utc_checked(naive: datetime, zone: ZoneInfo) -> tuple[datetime, str]:
    """:func:`local_to_utc` plus what kind of wall time it was: ``ok``, ``ambiguous``, ``nonexistent``."""
    utc = local_to_utc(naive, zone)
    if utc.astimezone(zone).replace(tzinfo=None) != naive:
        return utc, "nonexistent"
    if naive.replace(tzinfo=zone, fold=1).utcoffset() != naive.replace(tzinfo=zone).utcoffset():
        return utc, "ambiguous"
    return utc, "ok"
