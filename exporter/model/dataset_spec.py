"""What a dataset is: the types the registry is written in.

A :class:`Dataset` says how to ask for a window of records (operation, time scope, order, fixed
request elements), how to find them in the response (record element), and what they become
(typed columns, natural key, the column that places a record in a window and a partition);
:class:`RestListing` says how the REST APIs list the same records.  The datasets themselves are
:mod:`exporter.model.datasets`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Column",
    "ColumnType",
    "Dataset",
    "TimeScope",
    "LINEAGE_COLUMNS",
    "RestField",
    "RestListing",
    "SOURCE_COLUMN",
]

ColumnType = Literal["int", "float", "bool", "str", "timestamp", "json"]

#: Columns every landed row carries besides the declared ones (filled by the exporter).
LINEAGE_COLUMNS = ("site", "extra", "_preliminary", "_commit")
#: Which API a landed row came from: "xml" (files landed before REST existed lack the column and
#: read as "xml") or "rest".
SOURCE_COLUMN = "source"


@dataclass(frozen=True, slots=True)
class Column:
    """One typed output column, read from ``element`` (inside ``parent`` when nested)."""

    name: str
    type: ColumnType
    element: str
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class TimeScope:
    """Where a window goes in the request: ``<container><start>..</start><end>..</end></container>``.

    ``zone_inside`` puts ``timeZoneID`` inside the container (LstsummarySession's dateScope).
    """

    container: str
    start: str
    end: str
    zone_inside: bool = False


@dataclass(frozen=True, slots=True)
class RestField:
    """One JSON field of a REST item and the column it lands in.

    ``path`` is the field name in the item (``devices.correlationId``: inside the exploded array
    element).  When ``column`` is also a declared XML column of the dataset the value lands
    there, converted to that column's type; otherwise it is a REST-only column of ``type``."""

    path: str
    column: str
    type: ColumnType
    #: Lower-case the value (``participantType`` comes as ``ATTENDEE`` and as ``host``).
    lower: bool = False


@dataclass(frozen=True, slots=True)
class RestListing:
    """How the Webex REST APIs list a dataset (see ``../shared/webex-rest-api.md``).

    A top-level listing asks ``path`` with ``from``/``to`` (ISO 8601, UTC, the ``timezone: UTC``
    header) for one window of at most ``window_days`` that starts no earlier than ``reach_days``
    ago, ``max`` = ``max_page``, and follows ``Link: rel="next"`` to the end.  A fan-out listing
    (``parent`` set) first lists the parent dataset for the same window and then asks ``path``
    once per distinct parent ``parent_id`` value (as request parameter ``id_param``), copying the
    parent's ``carry`` columns into each row (they place the row in its window)."""

    path: str
    fields: tuple[RestField, ...]
    #: REST identity columns; a row's identity is site + these + ``_occurrence``.
    key: tuple[str, ...]
    params: tuple[tuple[str, str], ...] = ()
    max_page: int = 100
    window_days: int = 30
    reach_days: int = 90
    scopes: tuple[str, ...] = ()
    parent: str | None = None
    parent_id: str = ""
    id_param: str = ""
    carry: tuple[tuple[str, str], ...] = ()
    #: Array field of the item: one row per element (its fields are ``<explode>.<name>``); an item
    #: whose array is empty or missing gives one row with those columns null.
    explode: str | None = None
    #: A fan-out call also sends the window's ``from``/``to`` (the attendee report wants them).
    child_time_range: bool = False
    #: Which part of this mapping the published spec leaves open (logged once per run).
    unconfirmed: str = ""


@dataclass(frozen=True, slots=True)
class Dataset:
    """One Webex list operation and the table its records land in."""

    name: str
    operation: str
    service: str
    response_type: str
    record_element: str
    columns: tuple[Column, ...]
    natural_key: tuple[str, ...]
    start_column: str
    time_scope: TimeScope
    #: ``orderBy``/``orderAD`` pairs (at most three): the start time first, then tie-breakers the
    #: operation's schema allows, so rows tied on time keep their order between page requests.
    order: tuple[tuple[str, str], ...]
    sends_time_zone_id: bool
    api_group: str = "meeting_list"
    request_extras: tuple[tuple[str, str], ...] = ()
    preliminary_operation: str | None = None
    matching_records_first: bool = False
    #: Lists sessions that have not happened yet (scheduled meetings): plan windows past now.
    looks_ahead: bool = False
    #: How the REST APIs list this dataset (None: no REST equivalent, e.g. Access Anywhere).
    rest: RestListing | None = None
    #: False for datasets only the REST APIs have (no XML operation behind them).
    xml: bool = True

    @property
    def sources(self) -> tuple[str, ...]:
        """The APIs that can list this dataset: ``("xml",)``, ``("rest",)`` or both."""
        return (("xml",) if self.xml else ()) + (("rest",) if self.rest else ())

    @property
    def rest_columns(self) -> tuple[Column, ...]:
        """Columns only the REST source fills (declared by :attr:`rest`, not by the XML schema)."""
        if self.rest is None:
            return ()
        declared = {c.name for c in self.columns}
        seen: set[str] = set()
        out = []
        for f in self.rest.fields:
            if f.column not in declared and f.column not in seen:
                seen.add(f.column)
                out.append(Column(f.column, f.type, f.path))
        if self.rest.parent:  # columns copied from the parent row (they place the row in a window)
            from .datasets import by_name  # the registry is built from these types: import it late

            parent = {c.name: c for c in by_name(self.rest.parent).all_columns}
            for source, target in self.rest.carry:
                if target not in declared and target not in seen:
                    seen.add(target)
                    out.append(Column(target, parent[source].type, f"(parent {source})"))
        return tuple(out)

    @property
    def all_columns(self) -> tuple[Column, ...]:
        """Every typed column of the dataset's table: the XML schema's, then the REST-only ones."""
        return self.columns + self.rest_columns

    @property
    def identity_columns(self) -> tuple[str, ...]:
        """The key columns a row's identity is built from (before ``site`` and ``_occurrence``):
        the XML natural key, then the REST key's columns not in it.  A row fills the key of its
        source; the other source's key columns are null, so the two never collide."""
        rest_key = self.rest.key if self.rest else ()
        return self.natural_key + tuple(k for k in rest_key if k not in self.natural_key)

    @property
    def xsi_type(self) -> str:
        """The request ``bodyContent`` xsi:type, e.g. ``java:com.webex.service.binding.history.X``."""
        return f"java:com.webex.service.binding.{self.service}.{self.operation}"

    @property
    def column_by_name(self) -> dict[str, Column]:
        """Columns keyed by name (small; rebuilt on demand)."""
        return {c.name: c for c in self.columns}

    @property
    def timestamp_columns(self) -> tuple[str, ...]:
        """Names of the columns that hold times."""
        return tuple(c.name for c in self.columns if c.type == "timestamp")
