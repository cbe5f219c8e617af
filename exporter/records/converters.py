"""Converters: a column of texts -> its typed Arrow array.

A vectorised fast path for the values a cheap check vouches for; the exact per-value Python path
(:mod:`exporter.records.value_rules`, the definition of each type) for the rest, patched in with
``replace_with_mask``."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from .value_rules import parse_bool, parse_float, parse_int
from .webex_time import WEBEX_TIME_FORMAT

if TYPE_CHECKING:
    from .record_page import RecordPage

_INT_FAST = r"^-?[0-9]{1,18}$"  # at most 18 digits: cannot overflow int64
_FLOAT_FAST = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_BOOL_WIRE = pa.array(["true", "false", "1", "0"])


def _only_bytes(texts: pa.Array, allowed: bytes) -> bool:
    """Every byte of the texts is in ``allowed``: microseconds on the raw data buffer.  Keeps hex
    (``0x1F``, which pc.cast accepts), white space and signs pc.cast rejects off the fast path.
    (Bytes of sliced-away values can only make this more cautious.)"""
    data = texts.buffers()[2]
    return data is None or not data.to_pybytes().translate(None, allowed)


def _cast_or_none(texts: pa.Array, arrow_type: pa.DataType) -> pa.Array | None:
    """``pc.cast``, or None when some text does not convert (``1-2``, int64 overflow, ...)."""
    try:
        return pc.cast(texts, arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _patch(
    page: RecordPage,
    index: int,
    texts: pa.Array,
    ok: pa.Array,
    fast: Callable[[pa.Array], pa.Array],
    parse: Callable[[int, str], Any],
    arrow_type: pa.DataType,
) -> pa.Array:
    """``fast`` on the texts ``ok`` vouches for, ``parse`` (exact, per value) on the other non-null ones."""
    if ok.true_count == len(texts) - texts.null_count:  # the common case: every value vouched for
        return fast(texts)
    slow = pc.and_(pc.is_valid(texts), pc.invert(pc.fill_null(ok, False)))
    values = fast(pc.if_else(slow, pa.scalar(None, pa.string()), texts))
    rows = pc.indices_nonzero(slow).to_pylist()
    redone = pa.array(page.per_value(index, texts, parse, rows), arrow_type)
    return pc.replace_with_mask(values, slow, redone)


def _to_int(page: RecordPage, index: int, texts: pa.Array) -> pa.Array:
    if _only_bytes(texts, b"-0123456789") and (done := _cast_or_none(texts, pa.int64())) is not None:
        return done
    ok = pc.match_substring_regex(texts, _INT_FAST)
    return _patch(page, index, texts, ok, lambda t: pc.cast(t, pa.int64()), parse_int, pa.int64())


def _to_float(page: RecordPage, index: int, texts: pa.Array) -> pa.Array:
    # Within this alphabet pc.cast accepts exactly what value_rules.parse_float does (tested).
    if _only_bytes(texts, b"+-.0123456789eE") and (done := _cast_or_none(texts, pa.float64())) is not None:
        return done
    ok = pc.match_substring_regex(texts, _FLOAT_FAST)
    return _patch(page, index, texts, ok, lambda t: pc.cast(t, pa.float64()), parse_float, pa.float64())


def _to_bool(page: RecordPage, index: int, texts: pa.Array) -> pa.Array:
    ok = pc.is_in(texts, value_set=_BOOL_WIRE)
    return _patch(page, index, texts, ok, _bools_vectorised, parse_bool, pa.bool_())


def _bools_vectorised(texts: pa.Array) -> pa.Array:
    return pc.or_(pc.equal(texts, "true"), pc.equal(texts, "1"))  # null stays null


# A calendar-valid MM/DD/YYYY (padding optional) and a 24-hour time, years 1000-2037.  What passes
# is parsed by pc.strptime + pc.assume_timezone; anything else takes the exact Python path, which is
# the definition.  Why the limits: strptime alone accepts Feb 30 and second 60 and rolls them over;
# pyarrow's zone rules stop at the last transition a TZif file lists (2037) and miss DST after it.
_D31 = r"(?:0?[13578]|1[02])/(?:0?[1-9]|[12][0-9]|3[01])"
_D30 = r"(?:0?[469]|11)/(?:0?[1-9]|[12][0-9]|30)"
_FEB = r"0?2/(?:0?[1-9]|1[0-9]|2[0-8])"
_YEAR = r"(?:1[0-9]{3}|20[0-2][0-9]|203[0-7])"
_LEAP_YEAR = r"(?:1[0-9](?:0[48]|[2468][048]|[13579][26])|1[26]00|20(?:00|0[48]|1[26]|2[048]|3[26]))"
_TIME_FAST = (
    rf"^(?:(?:{_D31}|{_D30}|{_FEB})/{_YEAR}|0?2/29/{_LEAP_YEAR}) (?:[01]?[0-9]|2[0-3]):[0-5]?[0-9]:[0-5]?[0-9]$"
)
_FIXED_ZONES = re.compile(r"(?:Etc/.*|UTC|UCT|GMT|Zulu|Universal|Greenwich)")
_UTC_TYPE = pa.timestamp("us", tz="UTC")


def _to_timestamp(page: RecordPage, index: int, texts: pa.Array) -> pa.Array:
    parse = partial(page.time_value, index)
    key = getattr(page.zone, "key", None)
    if key:
        try:
            ok = pc.match_substring_regex(texts, _TIME_FAST)
            return _patch(page, index, texts, ok, partial(_times_vectorised, page, index, key), parse, _UTC_TYPE)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # pyarrow cannot find this zone (no tz database?): the Python path is always right
    return pa.array(page.per_value(index, texts, parse), _UTC_TYPE)


def _times_vectorised(page: RecordPage, index: int, key: str, texts: pa.Array) -> pa.Array:
    """strptime + assume_timezone.  DST edge rows differ between the two resolutions; redo them."""
    naive = pc.strptime(texts, format=WEBEX_TIME_FORMAT, unit="us")
    if _FIXED_ZONES.fullmatch(key):
        return pc.assume_timezone(naive, timezone=key).cast(_UTC_TYPE)
    first = pc.assume_timezone(naive, timezone=key, ambiguous="earliest", nonexistent="earliest")
    second = pc.assume_timezone(naive, timezone=key, ambiguous="latest", nonexistent="latest")
    utc = first.cast(_UTC_TYPE)
    edge = pc.not_equal(first, second)
    if not edge.true_count:
        return utc
    edge = pc.fill_null(edge, False)
    rows = pc.indices_nonzero(edge).to_pylist()
    redone = pa.array(page.per_value(index, texts, partial(page.time_value, index), rows), _UTC_TYPE)
    return pc.replace_with_mask(utc, edge, redone)


CONVERTERS: dict[str, Callable[[RecordPage, int, pa.Array], pa.Array]] = {
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "timestamp": _to_timestamp,
}
