"""REST identifiers of world records: deterministic, shaped like Cisco's, and (where the server must
find the record again) reversible by the simulator alone.

- meeting series: 32 hex from (site, meetingNumber), so a recurring series' instances share it;
- meeting instance: ``{series}_I_{digits}``, the digits an invertible scramble of the XML confID
  (the REST client is told not to parse ids, and cannot: only the simulator knows the scramble);
- participant: ``{instance}_{n}``; device ``correlationId``: a UUID from the join;
- recording: 32 hex, an invertible scramble of (site, XML recordID);
- people: ``hostUserId`` is base64 ``ciscospark://us/PEOPLE/<uuid>`` without padding, as Webex writes it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime, timezone
from functools import lru_cache

from ..data.records import mix

__all__ = [
    "site_hash",
    "series_id",
    "instance_id",
    "parse_instance_id",
    "scheduled_meeting_id",
    "recording_id",
    "parse_recording_id",
    "uuid_from",
    "person_id",
    "org_id",
]

_DIGITS = 10**18  # 18 digits, as Cisco's examples have
_LATE = 9 * 10**18  # confIDs of rows added after generation start here (store._LATE_BASE) ...
_LOW = 10**17  # ... and fold below this; generated confIDs are all above it (world.CONF_BASE)
_SPAN = _DIGITS - _LOW  # folded confIDs are below 9e17
_HALF = 10**9  # the digit scramble is a four-round Feistel network on two 9-digit halves
_HEX = 2**128
_H_MUL = 0x2545F4914F6CDD1D_9E3779B97F4A7C15 | 1
_H_ADD = 0x853C49E6748FEA9B_DA942042E4DD58B5
_H_INV = pow(_H_MUL, -1, _HEX)
_INSTANCE = re.compile(r"^([0-9a-f]{32})_I_([0-9]{18})$")
_RECORDING = re.compile(r"^[0-9a-f]{32}$")


def _round(value: int, k: int) -> int:
    return mix(0x5EED, k, value) % _HALF


def _feistel(x: int) -> int:
    hi, lo = divmod(x, _HALF)
    for k in range(4):
        hi, lo = lo, (hi + _round(lo, k)) % _HALF
    return hi * _HALF + lo


def _unfeistel(y: int) -> int:
    hi, lo = divmod(y, _HALF)
    for k in reversed(range(4)):
        hi, lo = (lo - _round(hi, k)) % _HALF, hi
    return hi * _HALF + lo


def _scramble(x: int) -> int:
    """A bijection of [0, 9e17) onto the 18-digit numbers [1e17, 1e18) (cycle walking)."""
    y = _feistel(x)
    while y >= _SPAN:
        y = _feistel(y)
    return y + _LOW


def _unscramble(y: int) -> int:
    x = _unfeistel(y - _LOW)
    while x >= _SPAN:
        x = _unfeistel(x)
    return x


@lru_cache(maxsize=4096)
def site_hash(site: str) -> int:
    """A stable 32-bit number for a site name (any case)."""
    return int.from_bytes(hashlib.blake2b(site.lower().encode(), digest_size=4).digest(), "big")


@lru_cache(maxsize=1 << 16)
def series_id(site: str, meeting_number: int) -> str:
    """The meeting series id (32 hex) of a site's meeting number."""
    h = site_hash(site)
    return f"{mix(h, 11, meeting_number):016x}{mix(h, 12, meeting_number):016x}"


@lru_cache(maxsize=1 << 16)
def instance_id(site: str, meeting_number: int, conf_id: int) -> str:
    """The meeting instance id of one session (``{series}_I_{digits}``)."""
    folded = conf_id - _LATE if conf_id >= _LATE else conf_id
    return f"{series_id(site, meeting_number)}_I_{_scramble(folded % _SPAN)}"


def parse_instance_id(text: str) -> tuple[str, int] | None:
    """``(series, confID)`` of an instance id, or None when ``text`` has not that form."""
    match = _INSTANCE.match(text or "")
    if not match:
        return None
    digits = int(match.group(2))
    if digits < _LOW:
        return None
    folded = _unscramble(digits)
    return match.group(1), folded + _LATE if folded < _LOW else folded


def scheduled_meeting_id(series: str, start: int) -> str:
    """``{series}_{UTC start yyyymmddThhmmssZ}``: the occurrence an instance belongs to."""
    return f"{series}_{datetime.fromtimestamp(start, timezone.utc):%Y%m%dT%H%M%SZ}"


def recording_id(site: str, record_id: int) -> str:
    """The REST recording id (32 hex) of an XML recordID at a site."""
    x = (site_hash(site) << 64) | (record_id & (2**64 - 1))
    return f"{(x * _H_MUL + _H_ADD) % _HEX:032x}"


def parse_recording_id(text: str, site: str) -> int | None:
    """The XML recordID of a REST recording id of ``site``, or None (not that form, other site)."""
    if not _RECORDING.match(text or ""):
        return None
    x = ((int(text, 16) - _H_ADD) * _H_INV) % _HEX
    if x >> 64 != site_hash(site):
        return None
    return x & (2**64 - 1)


def uuid_from(*values: int) -> str:
    """A version-4-shaped UUID that is a function of ``values``."""
    hi, lo = mix(*values, 1), mix(*values, 2)
    hi = (hi & ~(0xF << 12)) | (4 << 12)  # version 4
    lo = (lo & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    h = f"{hi:016x}{lo:016x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _text_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.lower().encode(), digest_size=8).digest(), "big")


def person_id(site: str, webex_id: str) -> str:
    """A person's REST id: base64 ``ciscospark://us/PEOPLE/<uuid>``, unpadded."""
    raw = f"ciscospark://us/PEOPLE/{uuid_from(site_hash(site), _text_hash(webex_id))}".encode()
    return base64.b64encode(raw).decode().rstrip("=")


def org_id(site: str) -> str:
    """The organization UUID a site belongs to."""
    return uuid_from(site_hash(site), 77)
