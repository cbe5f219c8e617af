"""Typed parsing: Webex record elements -> one Arrow table in the dataset's declared schema.

``parse_records`` turns the record elements of one response page (``history:meetingAttendeeHistory``,
``ep:session``, ..., in any namespace or none) into a table of exactly ``arrow_schema(dataset)``.
Nothing is lost and nothing raises for bad data:

* Children are matched by local name through :func:`~exporter.model.naming.column_name`, so ``MeetingUUID``
  and ``meetingUUID`` both land in ``meeting_uuid`` and the schema's ``totalCallInTolllfreeMinutes``
  lands in ``total_call_in_tollfree_minutes``.  Children of declared containers (``trackingCode``,
  ``assistService``, ``source``) are flattened into their columns; a ``json`` column (``regQandA``,
  repeated) becomes a JSON list with one object per occurrence (``[{"regQ": "..", "regA": ".."}]``).
* Unknown elements (every API release adds some) are kept in ``extra``, a JSON object keyed by element
  local name (nested elements become nested objects, attributes ``"@name"``, repeated names lists)
  and counted in ``ParsedPage.unknown_elements``.
* A value that does not fit its column's type becomes null there, is kept raw (as sent) in ``extra``
  under its element name and is counted in ``ParsedPage.bad_values``.  So is a declared leaf that
  arrives as a structure (element children), and a repeated single-valued element (first one wins).

Typing rules (decisions, tested in ``tests/test_parse.py``):

* Missing element -> null.  Empty element (``<a/>``, ``<a></a>``): ``""`` in a ``str`` column, null in
  a typed one (not a bad value).  Whitespace-only text counts as empty for typed columns; ``str``
  values are kept exactly as sent.
* ``int``: optional sign and ASCII decimal digits, surrounding white space tolerated, must fit int64.
  Hex, ``1_000``, ``1.0`` and non-ASCII digits are bad values.
* ``float``: decimal with optional exponent, or ``INF``/``-INF``/``NaN`` (any case); white space tolerated.
* ``bool``: ``true``/``false``/``1``/``0`` (XML Schema's boolean lexical space), any case, white space
  tolerated.
* ``timestamp``: ``MM/DD/YYYY HH:MM:SS`` 24-hour, fields may be unpadded (``9/29/2019 2:4:3``), calendar
  checked (no Feb 30, no second 60).  It is wall time in the request's ``zone`` and becomes UTC with
  that zone's rules for that date.  An ambiguous wall time (the repeated hour when clocks fall back)
  means its *first* occurrence, i.e. the earlier instant (Python's ``fold=0``); it is a valid value and
  only counted in ``ParsedPage.ambiguous_times``.  A nonexistent wall time (inside the spring-forward
  gap) cannot come from a correct clock: it is shifted forward by the gap (read with the offset in
  force before the gap, ``02:30`` -> ``03:30`` daylight time, again ``fold=0``), counted in
  ``bad_values`` and, because the column cannot give the text back, also kept raw in ``extra``.
  Year 1-9999; a value whose UTC instant leaves that range is a bad value.

Attributes of declared elements (``xsi:nil``) are ignored; mixed content in a declared leaf
(``<a>x<b/>y</a>``) keeps only its leading text.

Speed (see ``bench/parse_bench.py``): one Python pass over the records groups them by their tuple
of child tags (a page's records nearly always share one) and collects child texts with C-level
maps, so no Python code runs per child; columns are strided slices of that list.  Each column is
then typed by vectorised ``pyarrow.compute`` kernels for the values a cheap check vouches for, and
by the exact per-value Python rules (the definition) only for the rest.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache, partial
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
from lxml import etree

from ..model.datasets import Column, Dataset
from ..model.naming import column_name
from .xmlsafe import local_name

__all__ = [
    "ParsedPage",
    "WEBEX_TIME_FORMAT",
    "arrow_schema",
    "format_webex_time",
    "local_to_utc",
    "parse_records",
    "parse_webex_time",
]

#: The wire format of dates, zero-padded as we send them (servers may omit the padding).
WEBEX_TIME_FORMAT = "%m/%d/%Y %H:%M:%S"

_ARROW_TYPES: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "str": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "json": pa.string(),
}


@dataclass(slots=True)
class ParsedPage:
    """One page of records as a typed table plus what did not fit.

    ``unknown_elements``: element local name (``parent/child`` inside a declared container) ->
    occurrences.  ``bad_values``: column name -> values that did not fit its type (kept raw in
    ``extra``).  ``ambiguous_times``: column name -> fall-back-hour wall times read as their first
    occurrence (valid values, reported for visibility only).
    """

    table: pa.Table
    unknown_elements: Counter[str] = field(default_factory=Counter)
    bad_values: Counter[str] = field(default_factory=Counter)
    ambiguous_times: Counter[str] = field(default_factory=Counter)


@lru_cache(maxsize=None)
def arrow_schema(dataset: Dataset) -> pa.Schema:
    """Declared columns in declared order, then ``site`` (not null), ``extra`` (JSON), ``_preliminary``."""
    fields = [pa.field(c.name, _ARROW_TYPES[c.type]) for c in dataset.columns]
    fields += [
        pa.field("site", pa.string(), nullable=False),
        pa.field("extra", pa.string()),  # JSON object of unknown elements and raw bad values; null if none
        pa.field("_preliminary", pa.bool_()),
    ]
    return pa.schema(fields)


# --------------------------------------------------------------------------------------------------
# Single values: the request side and tests


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


def _local_to_utc_checked(naive: datetime, zone: ZoneInfo) -> tuple[datetime, str]:
    """:func:`local_to_utc` plus what kind of wall time it was: ``ok``, ``ambiguous``, ``nonexistent``."""
    utc = local_to_utc(naive, zone)
    if utc.astimezone(zone).replace(tzinfo=None) != naive:
        return utc, "nonexistent"
    if naive.replace(tzinfo=zone, fold=1).utcoffset() != naive.replace(tzinfo=zone).utcoffset():
        return utc, "ambiguous"
    return utc, "ok"


# --------------------------------------------------------------------------------------------------
# The plan: how each child tag of a record is handled (cached per dataset and per tag)

_LEAF, _CONTAINER, _JSON, _UNKNOWN, _DUPLICATE, _IGNORE = range(6)
_MAX_CACHED_TAGS = 4096  # a hostile server could invent unlimited tag names; stop caching past this


@dataclass(frozen=True, slots=True)
class _Container:
    """A declared parent element (``trackingCode``) and its child columns, by normalised name."""

    element: str
    children: dict[str, int]  # column_name(child element) -> column index


class _Plan:
    """Everything about a dataset that does not depend on the page, plus learned tag lookups."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.schema = arrow_schema(dataset)
        self.columns: tuple[Column, ...] = dataset.columns
        self.leaves: dict[str, int] = {}
        self.jsons: dict[str, int] = {}
        self.containers: dict[str, _Container] = {}
        for index, column in enumerate(dataset.columns):
            key = column_name(column.element)
            if column.parent is not None:
                container = self.containers.setdefault(
                    column_name(column.parent), _Container(column.parent, {})
                )
                container.children[key] = index
            elif column.type == "json":
                self.jsons[key] = index
            else:
                self.leaves[key] = index
        self.tags: dict[Any, tuple[int, Any, str]] = {}  # tag -> (kind, payload, local name)
        self.container_signatures: dict[tuple[str, tuple[Any, ...]], _ContainerSignature] = {}
        self.signatures: dict[tuple[Any, ...], _Signature] = {}

    def classify(self, tag: Any) -> tuple[int, Any, str]:
        """What a record child with this tag is: (kind, payload, local name)."""
        found = self.tags.get(tag)
        if found is not None:
            return found
        local = local_name(tag)
        if not local:  # comments, processing instructions
            found = (_IGNORE, None, "")
        else:
            key = column_name(local)
            if key in self.leaves:
                found = (_LEAF, self.leaves[key], local)
            elif key in self.containers:
                found = (_CONTAINER, self.containers[key], local)
            elif key in self.jsons:
                found = (_JSON, self.jsons[key], local)
            else:
                found = (_UNKNOWN, None, local)
        if len(self.tags) < _MAX_CACHED_TAGS:
            self.tags[tag] = found
        return found

    def container_signature(self, container: _Container, tags: tuple[Any, ...]) -> _ContainerSignature:
        """The handling of a container whose children have exactly these tags, in this order."""
        key = (container.element, tags)
        found = self.container_signatures.get(key)
        if found is None:
            found = _ContainerSignature(self, container, tags)
            if len(self.container_signatures) < _MAX_CACHED_TAGS:
                self.container_signatures[key] = found
        return found

    def signature(self, tags: tuple[Any, ...]) -> _Signature:
        """The handling of a record whose children have exactly these tags, in this order."""
        found = self.signatures.get(tags)
        if found is None:
            found = _Signature(self, tags)
            if len(self.signatures) < _MAX_CACHED_TAGS:
                self.signatures[tags] = found
        return found


class _Signature:
    """For one sequence of child tags: which position feeds which column, and what needs Python."""

    __slots__ = ("leaves", "specials")

    def __init__(self, plan: _Plan, tags: tuple[Any, ...]) -> None:
        leaves: dict[int, tuple[int, str]] = {}  # column index -> (position, local name); first wins
        specials: list[tuple[int, int, Any, str]] = []  # (position, kind, payload, local name)
        for position, tag in enumerate(tags):
            kind, payload, local = plan.classify(tag)
            if kind == _LEAF and payload in leaves:
                kind = _DUPLICATE
            if kind == _LEAF:
                leaves[payload] = (position, local)
            elif kind != _IGNORE:
                specials.append((position, kind, payload, local))
        self.leaves = leaves
        self.specials = tuple(specials)


class _ContainerSignature:
    """For one sequence of tags inside a declared container: which child feeds which column."""

    __slots__ = ("leaves", "others")

    def __init__(self, plan: _Plan, container: _Container, tags: tuple[Any, ...]) -> None:
        # (position, column index, local name, is str, spelled unlike the declaration)
        leaves: list[tuple[int, int, str, bool, bool]] = []
        others: list[tuple[int, int | None, str]] = []  # unknown (index None) or repeated children
        seen: set[int] = set()
        for position, tag in enumerate(tags):
            local = local_name(tag)
            if not local:
                continue  # comments, processing instructions
            index = container.children.get(column_name(local))
            if index is None or index in seen:
                others.append((position, index, local))
                continue
            seen.add(index)
            column = plan.columns[index]
            leaves.append((position, index, local, column.type == "str", local != column.element))
        self.leaves = tuple(leaves)
        self.others = tuple(others)


@lru_cache(maxsize=None)
def _plan(dataset: Dataset) -> _Plan:
    return _Plan(dataset)


# --------------------------------------------------------------------------------------------------
# Element -> JSON (unknown elements, json columns)


def _element_json(element: etree._Element) -> Any:
    """Text for a leaf without attributes; otherwise an object of ``@attr``, ``#text`` and children."""
    kids = element[:]
    attributes = element.keys()
    if not kids and not attributes:
        return element.text or ""
    obj: dict[str, Any] = {f"@{local_name(name)}": element.get(name) for name in attributes}
    text = element.text
    if text and (not kids or not text.isspace()):
        obj["#text"] = text
    for kid in kids:
        tag = kid.tag
        if isinstance(tag, str):  # not a comment or processing instruction
            _add(obj, local_name(tag), _element_json(kid))
    return obj


def _add(obj: dict[str, Any], key: str, value: Any) -> None:
    """Set ``obj[key]``; a repeated key collects its values in a list, in arrival order.
    (Values are only ever strings or objects, so a list is always one we made.)"""
    if key not in obj:
        obj[key] = value
    elif isinstance(obj[key], list):
        obj[key].append(value)
    else:
        obj[key] = [obj[key], value]


# --------------------------------------------------------------------------------------------------
# One page

_TAG, _TEXT = attrgetter("tag"), attrgetter("text")


@dataclass(slots=True)
class _Group:
    """The records of a page that share one tag tuple: their rows and texts (row-major, flat)."""

    signature: _Signature
    width: int
    rows: list[int] = field(default_factory=list)
    texts: list[str | None] = field(default_factory=list)

    def column(self, position: int) -> list[str | None]:
        """The texts at ``position`` in every record of the group (a C-level strided slice)."""
        return self.texts[position :: self.width]


class _Page:
    """The mutable state of one ``parse_records`` call."""

    def __init__(self, plan: _Plan, records: Sequence[etree._Element], zone: ZoneInfo) -> None:
        self.plan = plan
        self.records = records
        self.zone = zone
        self.n = len(records)
        self.extras: dict[int, dict[str, Any]] = {}
        self.unknown: Counter[str] = Counter()
        self.bad: Counter[str] = Counter()
        self.ambiguous: Counter[str] = Counter()
        self.side: dict[int, list[Any]] = {}  # container and json columns, filled per row in Python
        self.names: dict[tuple[int, int], str] = {}  # (column, row) -> container child spelling, if unusual
        self.is_str = [c.type == "str" for c in plan.columns]

    def extra(self, row: int) -> dict[str, Any]:
        """The row's extra object, created on first use."""
        found = self.extras.get(row)
        if found is None:
            found = self.extras[row] = {}
        return found

    def side_column(self, index: int) -> list[Any]:
        """A full-length Python list for a column filled outside the fast path."""
        found = self.side.get(index)
        if found is None:
            found = self.side[index] = [None] * self.n
        return found

    # --- the per-record pass -------------------------------------------------------------------

    def collect(self) -> list[_Group]:
        """Group records by their children's tags, collecting texts; specials handled as they come.

        The hot loop of the parser: per record, one slice and two C-level maps (no Python code
        runs per child); a page's records nearly always share one tag tuple."""
        groups: dict[tuple[Any, ...], _Group] = {}
        signature = self.plan.signature
        last_tags: tuple[Any, ...] | None = None
        group: _Group | None = None
        for row, record in enumerate(self.records):
            kids = record[:]
            tags = tuple(map(_TAG, kids))
            if tags != last_tags:  # comparing to the previous record is cheaper than hashing
                group = groups.get(tags)
                if group is None:
                    group = groups[tags] = _Group(signature(tags), len(tags))
                last_tags = tags
            assert group is not None
            group.rows.append(row)
            group.texts.extend(map(_TEXT, kids))
            if group.signature.specials:
                self.specials(row, kids, group.signature.specials)
        return list(groups.values())

    def specials(self, row: int, kids: list[etree._Element], specials: tuple[tuple[int, int, Any, str], ...]) -> None:
        """Children the fast path does not take: containers, json, unknown and repeated elements."""
        for position, kind, payload, local in specials:
            kid = kids[position]
            if kind == _CONTAINER:
                self.container(row, kid, payload, local)
            elif kind == _JSON:
                column = self.side_column(payload)
                if column[row] is None:
                    column[row] = []
                column[row].append(_element_json(kid))
            elif kind == _UNKNOWN:
                _add(self.extra(row), local, _element_json(kid))
                self.unknown[local] += 1
            else:  # _DUPLICATE: the column already has this row's first occurrence
                _add(self.extra(row), local, _element_json(kid))
                self.bad[self.plan.columns[payload].name] += 1

    def container(self, row: int, element: etree._Element, container: _Container, local: str) -> None:
        """Flatten a declared container's children into their columns; keep the rest nested in extra."""
        kids = element[:]
        shape = self.plan.container_signature(container, tuple(map(_TAG, kids)))
        texts = list(map(_TEXT, kids))
        nested: dict[str, Any] = {}
        for position, index, child_local, is_str, unusual in shape.leaves:
            text = texts[position]
            if text is None or text.isspace():
                kid = kids[position]
                if len(kid):  # a structure where a leaf was declared
                    self.bad[self.plan.columns[index].name] += 1
                    _add(nested, child_local, _element_json(kid))
                    continue
                if text is None:
                    text = "" if is_str else None
            column = self.side_column(index)
            if column[row] is not None:
                # The container came twice in this record: the first non-empty value wins.
                self.bad[self.plan.columns[index].name] += 1
                _add(nested, child_local, "" if text is None else text)
                continue
            column[row] = text
            if unusual:
                self.names[(index, row)] = child_local
        for position, other_index, child_local in shape.others:
            if other_index is None:
                self.unknown[f"{local}/{child_local}"] += 1
            else:  # repeated inside one container
                self.bad[self.plan.columns[other_index].name] += 1
            _add(nested, child_local, _element_json(kids[position]))
        text = element.text
        if text and not text.isspace():  # a container that turned into a leaf: keep its text
            _add(nested, "#text", text)
            self.unknown[f"{local}/#text"] += 1
        if nested:
            self.merge_nested(row, local, nested)

    def merge_nested(self, row: int, local: str, nested: dict[str, Any]) -> None:
        """Put ``nested`` under ``extra[local]``, merging with what an earlier occurrence left there."""
        extra = self.extra(row)
        if isinstance(extra.get(local), dict):
            for key, value in nested.items():
                _add(extra[local], key, value)
        else:
            _add(extra, local, nested)

    # --- columns of texts ----------------------------------------------------------------------

    def text_columns(self, groups: list[_Group]) -> dict[int, pa.Array]:
        """Leaf column index -> string array over the page in record order, structures set aside.

        A declared leaf may arrive with element children (a newer API's structure): its text is
        None (compact) or blank (pretty-printed).  None is seen here; blank str values by one
        vectorised check in :meth:`unblank`; blank typed values when typing (:meth:`per_value`)."""
        if len(groups) == 1:  # the common case: columns straight from strided slices
            (group,) = groups
            arrays = {}
            for index, (position, local) in group.signature.leaves.items():
                array = pa.array(group.column(position), pa.string())
                if array.null_count:
                    array = pa.array(self.unstructure(index, local, position, group), pa.string())
                arrays[index] = array
        else:  # records of several shapes: scatter each group's texts into full-length columns
            columns: dict[int, list[str | None]] = {}
            for group in groups:
                for index, (position, local) in group.signature.leaves.items():
                    values = group.column(position)
                    if None in values:
                        values = self.unstructure(index, local, position, group)
                    full = columns.get(index)
                    if full is None:
                        full = columns[index] = [None] * self.n
                    for row, value in zip(group.rows, values):
                        full[row] = value
            arrays = {index: pa.array(values, pa.string()) for index, values in columns.items()}
        self.unblank(arrays)
        return arrays

    def unstructure(self, index: int, local: str, position: int, group: _Group) -> list[str | None]:
        """The group's texts at ``position`` with None (no text) sorted out: an element with
        children is set aside as a structure; an empty element is ``""`` in a str column."""
        is_str = self.is_str[index]
        values = group.column(position)
        for k, text in enumerate(values):
            if text is None:
                row = group.rows[k]
                kid = self.records[row][position]
                if len(kid):
                    self.reject_structure(index, row, local, kid)
                elif is_str:
                    values[k] = ""
        return values

    def unblank(self, arrays: dict[int, pa.Array]) -> None:
        """Blank str values that are really pretty-printed structures: null them, keep them."""
        str_arrays = [array for index, array in arrays.items() if self.is_str[index]]
        if not str_arrays or not pc.any(pc.utf8_is_space(pa.concat_arrays(str_arrays))).as_py():
            return
        for index, array in arrays.items():
            if not self.is_str[index]:
                continue
            rows = pc.indices_nonzero(pc.fill_null(pc.utf8_is_space(array), False)).to_pylist()
            structured = [row for row in rows if self.blank_structure(index, row)]
            if structured:
                values = array.to_pylist()
                for row in structured:
                    values[row] = None
                arrays[index] = pa.array(values, pa.string())

    def reject_structure(self, index: int, row: int, local: str, element: etree._Element) -> None:
        """A declared leaf that came with element children: kept as JSON in extra, counted."""
        _add(self.extra(row), local, _element_json(element))
        self.bad[self.plan.columns[index].name] += 1

    # --- typing --------------------------------------------------------------------------------

    def typed(self, index: int, texts: pa.Array) -> pa.Array:
        """Convert one column of texts to its type; bad values nulled, kept raw and counted."""
        column = self.plan.columns[index]
        if column.type == "str":
            return texts
        converter = _CONVERTERS[column.type]
        return converter(self, index, texts)

    def reject(self, index: int, row: int, raw: str) -> None:
        """Record a value that did not fit column ``index``: raw in extra, counted."""
        column = self.plan.columns[index]
        name = self.names.get((index, row)) or self.spelling(row, column)
        if column.parent is None:
            _add(self.extra(row), name, raw)
        else:
            self.merge_nested(row, column.parent, {name: raw})
        self.bad[column.name] += 1

    def leaf(self, row: int, column: Column) -> etree._Element | None:
        """The record's first element for a top-level column, found by scanning (rare paths only)."""
        if column.parent is None:
            key = column_name(column.element)
            for kid in self.records[row]:
                local = local_name(kid.tag)
                if local and column_name(local) == key:
                    return kid
        return None

    def blank_structure(self, index: int, row: int) -> bool:
        """Whether a blank value is a pretty-printed structure (``<a>\\n <b>1</b>\\n</a>``); if so,
        it is set aside.  (Container children were already sorted out in :meth:`container`.)"""
        kid = self.leaf(row, self.plan.columns[index])
        if kid is None or not len(kid):
            return False
        self.reject_structure(index, row, local_name(kid.tag), kid)
        return True

    def spelling(self, row: int, column: Column) -> str:
        """How this row's record spells a column's element (``MeetingUUID``?)."""
        kid = self.leaf(row, column)
        return column.element if kid is None else local_name(kid.tag)

    def per_value(
        self, index: int, texts: pa.Array, parse: Callable[[int, str], Any], rows: Sequence[int] | None = None
    ) -> list[Any]:
        """The exact, slow path: values for ``rows`` (default: all), in that order.  Null stays
        None, blank text is empty (None), otherwise ``parse(row, text)``; its ``_BAD`` rejects."""
        if rows is None:
            rows, raw = range(self.n), texts.to_pylist()
        else:
            raw = texts.take(pa.array(rows, pa.int64())).to_pylist()
        out: list[Any] = []
        for row, text in zip(rows, raw):
            if text is None:
                value = None
            elif not text or text.isspace():
                value = None
                self.blank_structure(index, row)
            else:
                value = parse(row, text)
                if value is _BAD:
                    self.reject(index, row, text)
                    value = None
            out.append(value)
        return out

    def time_value(self, index: int, row: int, text: str) -> Any:
        """One timestamp by the exact rules (see module docstring), or ``_BAD``."""
        try:
            utc, kind = _local_to_utc_checked(parse_webex_time(text), self.zone)
        except (ValueError, OverflowError):
            return _BAD
        if kind == "ambiguous":
            self.ambiguous[self.plan.columns[index].name] += 1
        elif kind == "nonexistent":
            # Kept (shifted forward) so the record keeps its time, but reported and kept raw.
            self.reject(index, row, text)
        return utc

    def build(self, preliminary: bool, site: str) -> pa.Table:
        """Collect, type and assemble the table."""
        groups = self.collect()
        texts = self.text_columns(groups)
        arrays: list[pa.Array] = []
        for index, column in enumerate(self.plan.columns):
            arrow_type = _ARROW_TYPES[column.type]
            if column.type == "json":
                arrays.append(self.json_column(index))
                continue
            column_texts = texts.get(index)
            if column_texts is None and index in self.side:
                column_texts = pa.array(self.side[index], pa.string())
            if column_texts is None:
                arrays.append(pa.nulls(self.n, arrow_type))
            else:
                arrays.append(self.typed(index, column_texts))
        arrays.append(pa.repeat(pa.scalar(site, pa.string()), self.n))
        arrays.append(self.extra_column())
        arrays.append(pa.repeat(pa.scalar(preliminary, pa.bool_()), self.n))
        return pa.Table.from_arrays(arrays, schema=self.plan.schema)

    def json_column(self, index: int) -> pa.Array:
        """A json column: each row's occurrences as a JSON list, null when there were none."""
        values = self.side.get(index)
        if values is None:
            return pa.nulls(self.n, pa.string())
        return pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in values], pa.string())

    def extra_column(self) -> pa.Array:
        """``extra`` as JSON objects, null for rows with nothing extra."""
        if not self.extras:
            return pa.nulls(self.n, pa.string())
        values: list[str | None] = [None] * self.n
        for row, obj in self.extras.items():
            if obj:
                values[row] = json.dumps(obj, ensure_ascii=False)
        return pa.array(values, pa.string())


# --------------------------------------------------------------------------------------------------
# Converters: a vectorised fast path for the values a cheap check vouches for; the exact per-value
# Python path (the definition of each type) for the rest, patched in with replace_with_mask.

_BAD = object()
_INT_LOOSE = re.compile(r"\s*([+-]?[0-9]+)\s*")
_INT_FAST = r"^-?[0-9]{1,18}$"  # at most 18 digits: cannot overflow int64
_FLOAT_LOOSE = re.compile(
    r"\s*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity)|nan)\s*", re.IGNORECASE
)
_FLOAT_FAST = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_BOOLS = {"true": True, "false": False, "1": True, "0": False}
_BOOL_WIRE = pa.array(["true", "false", "1", "0"])
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


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
    page: _Page,
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


def _parse_int(_row: int, text: str) -> Any:
    match = _INT_LOOSE.fullmatch(text)
    if match is None:
        return _BAD
    value = int(match.group(1))
    return value if _INT64_MIN <= value <= _INT64_MAX else _BAD


def _to_int(page: _Page, index: int, texts: pa.Array) -> pa.Array:
    if _only_bytes(texts, b"-0123456789") and (done := _cast_or_none(texts, pa.int64())) is not None:
        return done
    ok = pc.match_substring_regex(texts, _INT_FAST)
    return _patch(page, index, texts, ok, lambda t: pc.cast(t, pa.int64()), _parse_int, pa.int64())


def _parse_float(_row: int, text: str) -> Any:
    match = _FLOAT_LOOSE.fullmatch(text)
    return _BAD if match is None else float(match.group(1))


def _to_float(page: _Page, index: int, texts: pa.Array) -> pa.Array:
    # Within this alphabet pc.cast accepts exactly what _FLOAT_LOOSE does (tested).
    if _only_bytes(texts, b"+-.0123456789eE") and (done := _cast_or_none(texts, pa.float64())) is not None:
        return done
    ok = pc.match_substring_regex(texts, _FLOAT_FAST)
    return _patch(page, index, texts, ok, lambda t: pc.cast(t, pa.float64()), _parse_float, pa.float64())


def _parse_bool(_row: int, text: str) -> Any:
    return _BOOLS.get(text.strip().lower(), _BAD)


def _to_bool(page: _Page, index: int, texts: pa.Array) -> pa.Array:
    ok = pc.is_in(texts, value_set=_BOOL_WIRE)
    return _patch(page, index, texts, ok, _bools_vectorised, _parse_bool, pa.bool_())


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


def _to_timestamp(page: _Page, index: int, texts: pa.Array) -> pa.Array:
    parse = partial(page.time_value, index)
    key = getattr(page.zone, "key", None)
    if key:
        try:
            ok = pc.match_substring_regex(texts, _TIME_FAST)
            return _patch(page, index, texts, ok, partial(_times_vectorised, page, index, key), parse, _UTC_TYPE)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # pyarrow cannot find this zone (no tz database?): the Python path is always right
    return pa.array(page.per_value(index, texts, parse), _UTC_TYPE)


def _times_vectorised(page: _Page, index: int, key: str, texts: pa.Array) -> pa.Array:
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


_CONVERTERS: dict[str, Callable[[_Page, int, pa.Array], pa.Array]] = {
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "timestamp": _to_timestamp,
}


# --------------------------------------------------------------------------------------------------


def parse_records(
    dataset: Dataset,
    records: Sequence[etree._Element],
    *,
    site: str,
    zone: ZoneInfo,
    preliminary: bool = False,
) -> ParsedPage:
    """Type one page of record elements into a table of exactly ``arrow_schema(dataset)``.

    ``zone`` is the zone the response's times are in (the request's ``timeZoneID`` or the site's
    default, see docs/contracts.md); ``site`` and ``preliminary`` fill the lineage columns.  Never
    raises for bad data: see the module docstring for what happens to unknown and bad values.
    """
    page = _Page(_plan(dataset), records, zone)
    table = page.build(preliminary, site)
    return ParsedPage(table, page.unknown, page.bad, page.ambiguous)
