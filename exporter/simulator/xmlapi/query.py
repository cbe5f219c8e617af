"""A list request's bodyContent -> :class:`ListRequest` (selection, paging, zone), or a Refusal.

Scopes are inclusive at both ends with one-second resolution, in the zone the request names
(``timeZoneID``, inside ``dateScope`` for LstsummarySession) or, for operations that take no zone,
the site's default zone.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from ...model import webex_codes as codes
from ...model.dataset_spec import Dataset
from ...model.timezones import TIME_ZONES
from ..data.records import order_column
from ..data.selection import Filter, Selection
from ..site_config import SiteConfig
from .request import Refusal, child, children, text_of
from .timefmt import BadWireTime, WireZone

__all__ = ["ListRequest", "parse_list", "DEFAULT_MAXIMUM", "MAXIMUM_CAP", "MAX_ORDER_PAIRS"]

DEFAULT_MAXIMUM = 50
MAXIMUM_CAP = 500
MAX_ORDER_PAIRS = 3  # orderBy/orderAD pairs a request may carry
_OPEN_LOW, _OPEN_HIGH = -(2**62), 2**62

#: Where the end-time scope of each dataset lives: (container, start element, end element).
END_SCOPES = {
    "scheduled_sessions": ("dateScope", "endDateStart", "endDateEnd"),
    "recording_access": None,
}
_HISTORY_END_SCOPE = ("endTimeScope", "sessionEndTimeStart", "sessionEndTimeEnd")

#: Filter elements: lower-cased element -> (candidate columns, comparison, value type).
FILTERS = {
    "confid": (("conf_id",), "eq", int),
    "sessionkey": (("session_key", "meeting_key"), "eq", int),
    "meetingkey": (("meeting_key", "session_key"), "eq", int),
    "confname": (("conf_name",), "prefix", str),
    "hostwebexid": (("host_webex_id", "user_name"), "ieq", str),
    "hostemail": (("host_email",), "ieq", str),
    "recordname": (("record_name",), "prefix", str),
    "meetinguuid": (("meeting_uuid",), "ieq", str),
}
_PRELIMINARY_FILTERS = ("confid", "confname", "sessionkey")


@dataclass(frozen=True, slots=True)
class ListRequest:
    """A parsed list request.  ``tie_columns`` are the columns the listing is ordered by: those of
    the request's orderBy pairs, or the registry order's for a request without one."""

    selection: Selection
    start_from: int
    maximum_num: int
    zone: WireZone
    pmr_column: bool
    tie_columns: tuple[str, ...] = ()


def _int(text: str | None, what: str) -> int:
    try:
        return int(text or "")
    except ValueError:
        raise Refusal(codes.INVALID_ARGUMENT, f"{what} must be an integer, got {text!r}") from None


def _bool(text: str | None, what: str) -> bool:
    low = (text or "").lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0", ""):
        return False
    raise Refusal(codes.INVALID_ARGUMENT, f"{what} must be true or false, got {text!r}")


def _zone_id(text: str | None, default: int) -> int:
    if text in (None, "", "-1"):
        return default
    value = _int(text, "timeZoneID")
    if not 0 <= value < len(TIME_ZONES):
        raise Refusal(codes.INVALID_ARGUMENT, f"timeZoneID {value} is not a Webex time zone (0-61)")
    return value


def _scope(body: etree._Element, spec: tuple[str, str, str] | None, zone: WireZone) -> tuple[int, int] | None:
    if spec is None:
        return None
    container = child(body, spec[0])
    if container is None:
        return None
    bounds = []
    for name, open_value in ((spec[1], _OPEN_LOW), (spec[2], _OPEN_HIGH)):
        value = text_of(child(container, name))
        if not value:
            bounds.append(open_value)
            continue
        try:
            bounds.append(zone.parse(value))
        except BadWireTime as exc:
            raise Refusal(codes.INVALID_ARGUMENT, f"{name}: {exc}") from None
    if bounds == [_OPEN_LOW, _OPEN_HIGH]:
        return None
    return bounds[0], bounds[1]


def _list(body: etree._Element, container: str, item: str) -> list[etree._Element]:
    holder = child(body, container)
    return [] if holder is None else children(holder).get(item.lower(), [])


def _column(ds: Dataset, candidates: tuple[str, ...]) -> str | None:
    names = ds.column_by_name
    return next((name for name in candidates if name in names), None)


def _order(body: etree._Element, ds: Dataset) -> tuple[tuple[str, bool], ...]:
    """The request's (column, descending) pairs, as written (up to three)."""
    order = child(body, "order")
    if order is None:
        return ()
    pairs: list[tuple[str, bool]] = []
    for kid in order:
        name = (kid.tag.rpartition("}")[2] if isinstance(kid.tag, str) else "").lower()
        value = (kid.text or "").strip().upper()
        if name == "orderby":
            column = order_column(ds, value)
            if column is None:
                raise Refusal(codes.INVALID_ARGUMENT, f"orderBy {value!r} is not valid for {ds.operation}")
            pairs.append((column, False))
        elif name == "orderad" and pairs:
            if value not in ("ASC", "DESC"):
                raise Refusal(codes.INVALID_ARGUMENT, f"orderAD must be ASC or DESC, got {value!r}")
            pairs[-1] = (pairs[-1][0], value == "DESC")
    if len(pairs) > MAX_ORDER_PAIRS:
        raise Refusal(codes.INVALID_ARGUMENT,
                      f"at most {MAX_ORDER_PAIRS} orderBy elements are allowed, got {len(pairs)}")
    return tuple((c, d) for c, d in pairs)


def _registry_columns(ds: Dataset) -> tuple[str, ...]:
    return tuple(order_column(ds, by) or ds.start_column for by, _ in ds.order)


def parse_list(body: etree._Element, ds: Dataset, *, preliminary: bool, site: SiteConfig,
               zones: dict[int, WireZone]) -> ListRequest:
    """Read one list bodyContent for dataset ``ds``; ``zones`` caches formatters per zone id."""
    kids = children(body)
    zone_id = site.default_time_zone_id
    if ds.sends_time_zone_id:
        holder = child(body, ds.time_scope.container) if ds.time_scope.zone_inside else body
        zone_id = _zone_id(text_of(child(holder, "timeZoneID")), site.default_time_zone_id)
    zone = zones.get(zone_id) or zones.setdefault(zone_id, WireZone(zone_id))

    scope = ds.time_scope
    start_range = _scope(body, (scope.container, scope.start, scope.end), zone)
    end_spec = END_SCOPES.get(ds.name, _HISTORY_END_SCOPE)
    end_range = _scope(body, end_spec, zone)

    filters = []
    for element, (candidates, op, type_) in FILTERS.items():
        column = _column(ds, candidates)
        value = text_of(kids[element][0]) if element in kids else None
        if column is None or not value:
            continue
        filters.append(Filter(column, op, _int(value, element) if type_ is int else value))

    if preliminary and ds.name.startswith("event_") and start_range is None \
            and not any(text_of(kids[f][0]) for f in _PRELIMINARY_FILTERS if f in kids):
        raise Refusal(codes.PRELIMINARY_FILTER_REQUIRED,
                      "At least one filter by confID, confName, sessionKey, and startTime is required")

    requires = []
    audio_only = True
    pmr = False
    if ds.name.startswith("meeting_"):
        audio_only = _bool(text_of(child(body, "inclAudioOnly")), "inclAudioOnly")
    if ds.name == "scheduled_sessions":
        services = [text_of(e) for e in _list(body, "serviceTypes", "serviceType")]
        types = {_int(text_of(e), "sessionType") for e in _list(body, "sessionTypes", "sessionType")}
        if services:
            requires.append(Filter("service_type", "in", frozenset(services)))
            audio_only = 16 in types  # service types filter audio-only sessions out unless asked for
        if types:
            requires.append(Filter("session_type", "in", frozenset(types)))
        status = text_of(child(body, "status"))
        if status:
            if status.upper() not in ("INPROGRESS", "NOT_INPROGRESS"):
                raise Refusal(codes.INVALID_ARGUMENT, f"status must be INPROGRESS or NOT_INPROGRESS, got {status!r}")
            requires.append(Filter("status", "status", status.upper()))
        pmr = site.return_scheduled_pmr_switch and _bool(text_of(child(body, "returnScheduledPMR")),
                                                         "returnScheduledPMR")

    control = child(body, "listControl")
    start_from = _int(text_of(child(control, "startFrom")) or "1", "startFrom")
    maximum = _int(text_of(child(control, "maximumNum")) or str(DEFAULT_MAXIMUM), "maximumNum")
    if maximum < 1:
        raise Refusal(codes.INVALID_ARGUMENT, f"maximumNum must be at least 1, got {maximum}")
    method = (text_of(child(control, "listMethod")) or "AND").upper()
    if method not in ("AND", "OR"):
        raise Refusal(codes.INVALID_ARGUMENT, f"listMethod must be AND or OR, got {method!r}")

    order = _order(body, ds)
    selection = Selection(
        dataset=ds.name,
        preliminary=preliminary,
        start_range=start_range,
        end_range=end_range,
        filters=tuple(filters),
        requires=tuple(requires),
        any_of=method == "OR",
        # Start time ascending is the stored order (ties by natural key): no sort needed.
        order=() if order == ((ds.start_column, False),) else order,
        audio_only=audio_only,
        pmr=pmr,
    )
    ties = tuple(c for c, _ in order) or _registry_columns(ds)
    return ListRequest(selection, max(1, start_from), min(maximum, MAXIMUM_CAP), zone, pmr, ties)
