"""Compact record storage: one tuple per record, in the dataset's column order, plus four slots.

A stored record is ``(*column_values, visible_at, preliminary_at, flags, extra)``.  Timestamps are
int POSIX seconds (UTC), JSON columns hold Python lists, ``extra`` is None or a dict of additional
elements a record carries (schema drift added by a mutation).  Tuples keep 500k-row stores small and
fast to filter; :class:`Layout` knows where everything is for one dataset.
"""

from __future__ import annotations

from datetime import datetime, timezone
from operator import itemgetter
from typing import Any, Mapping

from ...model.dataset_spec import Dataset

__all__ = ["Record", "Layout", "AUDIO_ONLY", "PMR", "END_COLUMNS", "order_column", "default_order", "mix", "total_key"]

#: A stored record.  Its values' types follow the dataset's columns (known only at run time from the
#: :class:`Layout`: int seconds, str, float, bool, JSON lists, the extra dict), so the element type is Any.
Record = tuple[Any, ...]

AUDIO_ONLY = 1  # listed only when the request says inclAudioOnly=true
PMR = 2  # a scheduled Personal Room meeting: listed only with returnScheduledPMR (and the site switch)

#: The column an end-time scope filters on, per dataset (None: no end scope).
END_COLUMNS = {
    "meeting_usage": "meeting_end_time",
    "meeting_attendees": "leave_time",
    "training_sessions": "session_end_time",
    "training_attendees": "end_time",
    "event_sessions": "session_end_time",
    "event_attendees": "end_time",
    "support_sessions": "session_end_time",
    "support_attendees": "end_time",
    "access_anywhere": "end_time",
    "recording_access": None,
    "scheduled_sessions": None,  # start_time + duration minutes
}


#: orderBy keyword -> candidate columns (the first the dataset has is used; "@start": its start column).
ORDER_COLUMNS = {
    "STARTTIME": ("@start",), "SESSIONSTARTTIME": ("@start",), "UPLOADTIME": ("creation_time",),
    "CONFNAME": ("conf_name", "record_name"), "CONFID": ("conf_id",), "RECORDID": ("record_id",),
    "RECORDNAME": ("record_name",), "HOSTWEBEXID": ("host_webex_id", "user_name"), "HOSTNAME": ("host_name",),
    "SESSIONKEY": ("session_key", "meeting_key"), "ATTENDEENAME": ("attendee_name", "name"),
    "NAME": ("attendee_name", "name"), "COMPANY": ("company",), "COUNTRY": ("country",), "STATE": ("state",),
    "CITY": ("city",), "TOTALATTENDEE": ("total_attendee", "total_participants"),
    "TOTALINVITED": ("total_invited",), "TOTALREGISTERED": ("total_registered",),
    "ASSISTREQUEST": ("assist_request",), "ASSISTCONFIRM": ("assist_confirm",),
    **{f"TRACKINGCODE{i}": (f"tracking_code{i}",) for i in range(1, 11)},
}


_MASK = (1 << 64) - 1


def mix(*values: int) -> int:
    """A well-spread 64-bit hash of some ints (splitmix64 steps): per-record choices that follow from
    content, not position or a random stream, so equal records always get equal choices."""
    x = 0x9E3779B97F4A7C15
    for v in values:
        x = ((x ^ (v & _MASK)) * 0xBF58476D1CE4E5B9) & _MASK
        x ^= x >> 31
        x = (x * 0x94D049BB133111EB) & _MASK
        x ^= x >> 29
    return x


def _total_value(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, (list, dict)):
        return (2, repr(value))
    return (1, value)


def total_key(rec: Record) -> tuple[tuple[int, Any], ...]:
    """A total order over whole records (None first, JSON and extras by their text): breaks ties
    between records equal in (start, natural key), so even twins have one stored order."""
    return tuple(map(_total_value, rec))


def order_column(dataset: Dataset, keyword: str) -> str | None:
    """The column an ``orderBy`` keyword sorts on for ``dataset`` (None: not valid there)."""
    names = dataset.column_by_name
    for candidate in ORDER_COLUMNS.get(keyword.upper(), ()):
        if candidate == "@start":
            return dataset.start_column
        if candidate in names:
            return candidate
    return None


def default_order(dataset: Dataset) -> tuple[tuple[str, bool], ...]:
    """The dataset's registry order as (column, descending) pairs; () when it is the stored order."""
    order = tuple((order_column(dataset, by) or dataset.start_column, ad.upper() == "DESC") for by, ad in dataset.order)
    return () if order == ((dataset.start_column, False),) else order


class Layout:
    """Where each value of a dataset's stored record lives, and how records sort."""

    __slots__ = ("dataset", "names", "types", "index", "n", "start", "end", "key", "key_is_str",
                 "visible", "preliminary", "flags", "extra", "duration", "_fast_key", "_probe")

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.names = tuple(c.name for c in dataset.columns)
        self.types = tuple(c.type for c in dataset.columns)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.n = n = len(self.names)
        self.start = self.index[dataset.start_column]
        end = END_COLUMNS.get(dataset.name)
        self.end = self.index[end] if end else None
        self.duration = self.index.get("duration")
        self.key = tuple(self.index[k] for k in dataset.natural_key)
        self.key_is_str = tuple(self.types[i] == "str" for i in self.key)
        self.visible, self.preliminary, self.flags, self.extra = n, n + 1, n + 2, n + 3
        self._fast_key = itemgetter(self.start, *self.key)
        self._probe = itemgetter(self.start, self.key[0])

    def build(self, values: Mapping[str, Any], visible_at: int, preliminary_at: int, flags: int = 0,
              extra: dict[str, str] | None = None) -> Record:
        """A stored record from column values (missing columns are None)."""
        return (*map(values.get, self.names), visible_at, preliminary_at, flags, extra)

    def sort_key(self, rec: Record) -> tuple[Any, ...]:
        """Start time, then natural key: the default listing order (ties: :meth:`stored_key`)."""
        return (rec[self.start], *("" if rec[i] is None else rec[i] for i in self.key))

    def stored_key(self, rec: Record) -> tuple[tuple[Any, ...], tuple[tuple[int, Any], ...]]:
        """The stored order, total even for equal natural keys: start, natural key, whole record."""
        return (self.sort_key(rec), total_key(rec))

    def sort(self, rows: list[Record]) -> None:
        """Sort in place by :meth:`stored_key`, fast when no None meets a value in a key column and
        natural keys are unique (only runs of equal keys are sorted again, by the whole record)."""
        try:
            rows.sort(key=self._fast_key)  # C-level key: most of the cost of sorting a fresh day
        except TypeError:  # None compared with a string: fall back to the None-safe key
            rows.sort(key=self.sort_key)
        probe, sort_key = self._probe, self.sort_key
        tied = [k for k in range(1, len(rows))
                if probe(rows[k]) == probe(rows[k - 1]) and sort_key(rows[k]) == sort_key(rows[k - 1])]
        k = 0
        while k < len(tied):
            first = last = tied[k]
            while k + 1 < len(tied) and tied[k + 1] == last + 1:
                k += 1
                last = tied[k]
            rows[first - 1 : last + 1] = sorted(rows[first - 1 : last + 1], key=total_key)
            k += 1

    def natural_key(self, rec: Record) -> tuple[Any, ...]:
        """The natural key values of a record."""
        return tuple(rec[i] for i in self.key)

    def end_index(self) -> int:
        """Where the end column is, for datasets that have one (sessions, attendees)."""
        if self.end is None:
            raise LookupError(f"{self.dataset.name} has no end column")
        return self.end

    def end_of(self, rec: Record) -> int | None:
        """The record's end time (scheduled sessions: start plus planned minutes)."""
        if self.end is not None:
            end: int | None = rec[self.end]
            return end
        if self.dataset.name == "scheduled_sessions" and self.duration is not None:
            planned: int = rec[self.start] + 60 * (rec[self.duration] or 0)
            return planned
        return None

    def replace(self, rec: Record, changes: Mapping[str, Any]) -> Record:
        """A copy of ``rec`` with column values (and ``_visible_at`` / ``_extra``) replaced."""
        values = list(rec)
        for name, value in changes.items():
            if name == "_visible_at":
                values[self.visible] = int(value)
            elif name == "_extra":
                values[self.extra] = dict(value) if value else None
            else:
                i = self.index[name]
                values[i] = coerce(self.types[i], value)
        return tuple(values)


def coerce(type_: str, value: Any) -> Any:
    """A Python/JSON value as stored for a column type (timestamps become POSIX seconds)."""
    if value is None:
        return None
    if type_ == "timestamp":
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
            return int(value.timestamp())
        return int(value)
    if type_ == "int":
        return int(value)
    if type_ == "float":
        return float(value)
    if type_ == "bool":
        return bool(value)
    return value
