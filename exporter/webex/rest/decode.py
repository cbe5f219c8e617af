"""Typed decoding: one REST page's JSON ``items`` -> one Arrow table of the dataset's REST columns.

The REST twin of :mod:`exporter.records.parse`, with the same promise: nothing is lost and nothing raises
for bad data.  ``decode_items`` returns a table of exactly :func:`rest_schema` (the columns the
dataset's :class:`~exporter.model.datasets.RestListing` maps, in field order, then its ``carry``
columns, then the lineage columns ``parse.py`` adds: ``site``, ``extra``, ``_preliminary``).

A column's type is the dataset's XML column's type when the field lands in an XML column (so
``meetingNumber`` lands in the int ``session_key``), else the field's own; Arrow types are
``parse.py``'s.  Rules (tested in ``tests/test_rest_decode.py``):

* ``timestamp``: tolerant ISO 8601 (``Z``/``z``, ``+02:00``/``+0200``, fractions of any length,
  ``T`` or a space, the basic form ``20260310T120000Z``) -> UTC; no offset means UTC (every request
  says ``timezone: UTC``).  A date without a time is a bad value.  The placeholder
  ``1970-01-01T00:00:00`` (a participant who has not left yet) becomes null and is counted in
  ``placeholders``; it is not a bad value.
* ``int``: JSON integers in int64, integral floats (``60.0``), and strings by ``parse.py``'s rule
  (``"123456789"``: Webex sends meeting numbers as strings); booleans are bad values.
* ``float``: numbers, and strings by ``parse.py``'s rule.  ``bool``: ``true``/``false``, ``0``/``1``,
  and strings by ``parse.py``'s rule.  An empty string is null in a typed column (not bad).
* ``str``: strings as sent; booleans as ``"true"``/``"false"``; numbers as their JSON text;
  ``lower=True`` fields lower-cased.  An object or array is a bad value.
* ``json``: any value as compact JSON, ``json.dumps(v, separators=(",", ":"), sort_keys=True,
  ensure_ascii=False)`` (non-ASCII kept as is, like ``parse.py``'s json columns and ``extra``).
* ``explode`` (``devices``): one row per element of the array; a missing, null or empty array gives
  one row with those columns null.  A non-array, or an element that is not an object, is a bad
  value (kept in ``extra``).
* Unknown fields (every API release adds some) go to ``extra``, a JSON object keyed by field name
  (inside a mapped object or an exploded element: nested under its name), counted in
  ``unknown_fields`` (``devices.newField``).  A value that does not fit its column becomes null
  there, is kept as sent in ``extra`` at its place, and is counted in ``bad_values`` (by column).
  ``extra`` is written like ``parse.py`` writes it (``json.dumps(obj, ensure_ascii=False)``).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import pyarrow as pa

from ...model.dataset_spec import ColumnType, Dataset, RestListing

# parse.py's single-value rules and Arrow types are the definition for both sources.
from ...model.datasets import by_name

# parse.py's single-value rules and Arrow types are the definition for both sources.
from ...records.arrow_schema import ARROW_TYPES as _ARROW_TYPES
from ...records.value_rules import BAD as _BAD
from ...records.value_rules import parse_bool as _parse_bool
from ...records.value_rules import parse_float as _parse_float
from ...records.value_rules import parse_int as _parse_int

__all__ = [
    "DecodedPage",
    "RestColumn",
    "rest_columns",
    "rest_schema",
    "decode_items",
    "parse_iso_time",
    "json_text",
    "EPOCH_PLACEHOLDER",
]

#: ``1970-01-01T00:00:00Z``: what Webex sends for a time it does not know yet.
EPOCH_PLACEHOLDER = datetime(1970, 1, 1, tzinfo=timezone.utc)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: A date followed by a time (extended or basic form); a bare date is not a timestamp.
_ISO_TIME = re.compile(r"\s*(?:\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}|\d{8}[Tt]\d{4}).*", re.DOTALL)


@dataclass(frozen=True, slots=True)
class RestColumn:
    """One typed column of a REST table: its name, type, and the ``lower`` rule."""

    name: str
    type: ColumnType
    lower: bool = False


@dataclass(slots=True)
class DecodedPage:
    """One page of items as a typed table plus what did not fit.

    ``unknown_fields``: field path -> occurrences.  ``bad_values``: column -> values that did
    not fit (kept in ``extra``).  ``placeholders``: column -> ``1970-01-01T00:00:00`` values
    read as null."""

    table: pa.Table
    unknown_fields: Counter[str] = field(default_factory=Counter)
    bad_values: Counter[str] = field(default_factory=Counter)
    placeholders: Counter[str] = field(default_factory=Counter)


def _listing(dataset: Dataset) -> RestListing:
    if dataset.rest is None:
        raise ValueError(f"dataset {dataset.name} has no REST listing")
    return dataset.rest


def _column_types(dataset: Dataset) -> dict[str, ColumnType]:
    """Every column name the dataset can hold -> its type (XML columns win over REST fields)."""
    types: dict[str, ColumnType] = {c.name: c.type for c in dataset.columns}
    for f in dataset.rest.fields if dataset.rest else ():
        types.setdefault(f.column, f.type)
    return types


@lru_cache(maxsize=None)
def rest_columns(dataset: Dataset) -> tuple[RestColumn, ...]:
    """The typed columns of a REST table: mapped fields (first mapping of a column wins), then
    the ``carry`` columns (typed like the parent's column they copy)."""
    listing = _listing(dataset)
    xml_types = {c.name: c.type for c in dataset.columns}
    out: list[RestColumn] = []
    seen: set[str] = set()
    for f in listing.fields:
        if f.column not in seen:
            seen.add(f.column)
            out.append(RestColumn(f.column, xml_types.get(f.column, f.type), f.lower))
    if listing.carry:
        parent_types = _column_types(by_name(listing.parent or ""))
        for source, target in listing.carry:
            if target not in seen:
                seen.add(target)
                out.append(RestColumn(target, parent_types[source]))
    return tuple(out)


@lru_cache(maxsize=None)
def rest_schema(dataset: Dataset) -> pa.Schema:
    """The REST columns (see :func:`rest_columns`), then ``site`` (not null), ``extra``, ``_preliminary``."""
    fields = [pa.field(c.name, _ARROW_TYPES[c.type]) for c in rest_columns(dataset)]
    fields += [
        pa.field("site", pa.string(), nullable=False),
        pa.field("extra", pa.string()),
        pa.field("_preliminary", pa.bool_()),
    ]
    return pa.schema(fields)


# --------------------------------------------------------------------------------------------------
# Single values


def json_text(value: Any) -> str:
    """The compact, key-sorted JSON of a ``json`` column (non-ASCII as is, like ``parse.py``)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def parse_iso_time(text: str) -> datetime:
    """A tolerant ISO 8601 date-time -> aware UTC datetime (no offset: UTC).  ``ValueError`` for
    anything else, a bare date included."""
    if not isinstance(text, str) or not _ISO_TIME.fullmatch(text):
        raise ValueError(f"not an ISO 8601 date-time: {text!r}")
    value = text.strip()
    if value[-1:] == "z":
        value = value[:-1] + "Z"
    if value[10:11] == "t":
        value = value[:10] + "T" + value[11:]
    if value[8:9] == "t":
        value = value[:8] + "T" + value[9:]
    parsed = datetime.fromisoformat(value)  # ValueError for impossible dates and times
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"out of range: {text!r}") from None


_NULL = object()  # "null here, and not a bad value" (an empty string in a typed column)
_PLACEHOLDER = object()


def _convert(value: Any, kind: ColumnType, lower: bool) -> Any:
    """One JSON value in a column of ``kind``: the typed value, ``_NULL``, ``_PLACEHOLDER`` or ``_BAD``."""
    if kind == "json":
        return json_text(value)
    if kind == "str":
        if isinstance(value, str):
            return value.lower() if lower else value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return json.dumps(value)
        return _BAD
    if isinstance(value, str) and (not value or value.isspace()):
        return _NULL
    if kind == "int":
        if isinstance(value, bool):
            return _BAD
        if isinstance(value, int):
            return value if _INT64_MIN <= value <= _INT64_MAX else _BAD
        if isinstance(value, float):
            ok = math.isfinite(value) and value.is_integer() and _INT64_MIN <= value <= _INT64_MAX
            return int(value) if ok else _BAD
        return _parse_int(0, value) if isinstance(value, str) else _BAD
    if kind == "float":
        if isinstance(value, bool):
            return _BAD
        if isinstance(value, (int, float)):
            return float(value)
        return _parse_float(0, value) if isinstance(value, str) else _BAD
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        return _parse_bool(0, value) if isinstance(value, str) else _BAD
    if kind == "timestamp":
        try:
            parsed = parse_iso_time(value)
        except (ValueError, TypeError):
            return _BAD
        return _PLACEHOLDER if parsed == EPOCH_PLACEHOLDER else parsed
    raise AssertionError(f"unknown column type {kind!r}")


# --------------------------------------------------------------------------------------------------
# The plan: which item field feeds which column


@dataclass(slots=True)
class _Node:
    """A level of the item: field name -> column index (a leaf) or a nested level."""

    leaves: dict[str, int] = field(default_factory=dict)
    nested: dict[str, _Node] = field(default_factory=dict)

    def columns(self) -> list[int]:
        return list(self.leaves.values()) + [i for n in self.nested.values() for i in n.columns()]


class _Plan:
    def __init__(self, dataset: Dataset) -> None:
        listing = _listing(dataset)
        self.columns = rest_columns(dataset)
        self.schema = rest_schema(dataset)
        self.explode = listing.explode
        index = {c.name: i for i, c in enumerate(self.columns)}
        self.carry = {target: index[target] for _, target in listing.carry}
        self.top = _Node()
        self.element = _Node()  # fields of an exploded array's elements
        for f in listing.fields:
            parts = f.path.split(".")
            node = self.top
            if self.explode and parts[0] == self.explode and len(parts) > 1:
                node, parts = self.element, parts[1:]
            for part in parts[:-1]:
                if part in node.leaves:
                    raise ValueError(f"{dataset.name}: {f.path} is both a field and an object")
                node = node.nested.setdefault(part, _Node())
            if parts[-1] in node.nested:
                raise ValueError(f"{dataset.name}: {f.path} is both a field and an object")
            node.leaves.setdefault(parts[-1], index[f.column])
        if self.explode and (self.explode in self.top.leaves or self.explode in self.top.nested):
            raise ValueError(f"{dataset.name}: the exploded array {self.explode} is also a field")


@lru_cache(maxsize=None)
def _plan(dataset: Dataset) -> _Plan:
    return _Plan(dataset)


class _Page:
    """The mutable state of one ``decode_items`` call."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.unknown: Counter[str] = Counter()
        self.bad: Counter[str] = Counter()
        self.placeholders: Counter[str] = Counter()

    def walk(self, obj: Mapping[str, Any], node: _Node, values: dict[int, Any], extra: dict[str, Any],
             prefix: str) -> None:
        """Fill ``values`` (column index -> typed value) from ``obj``; what is unknown or bad
        goes into ``extra`` (nested like the item)."""
        for key, value in obj.items():
            column = node.leaves.get(key)
            if column is not None:
                self.put(column, value, values, extra, key)
                continue
            sub = node.nested.get(key)
            if sub is None:
                if prefix or key != self.plan.explode:
                    extra[key] = value
                    self.unknown[prefix + key] += 1
                continue
            if value is None:
                continue
            if not isinstance(value, dict):  # an object was declared: nothing can be read from this
                extra[key] = value
                for index in sub.columns():
                    self.bad[self.plan.columns[index].name] += 1
                continue
            inner: dict[str, Any] = {}
            self.walk(value, sub, values, inner, f"{prefix}{key}.")
            if inner:
                extra[key] = inner

    def put(self, index: int, value: Any, values: dict[int, Any], extra: dict[str, Any], key: str) -> None:
        if value is None or values.get(index) is not None:
            return
        column = self.plan.columns[index]
        typed = _convert(value, column.type, column.lower)
        if typed is _BAD:
            extra[key] = value
            self.bad[column.name] += 1
        elif typed is _PLACEHOLDER:
            self.placeholders[column.name] += 1
        elif typed is not _NULL:
            values[index] = typed

    def rows(self, item: Any) -> list[tuple[dict[int, Any], dict[str, Any]]]:
        """The rows one item gives: (values, extra) each."""
        values: dict[int, Any] = {}
        extra: dict[str, Any] = {}
        if not isinstance(item, dict):
            self.bad["(item)"] += 1
            return [(values, {"#item": item})]
        self.walk(item, self.plan.top, values, extra, "")
        explode = self.plan.explode
        if not explode:
            return [(values, extra)]
        array = item.get(explode)
        if array is None or array == []:
            return [(values, extra)]
        if not isinstance(array, list):
            for index in self.plan.element.columns():
                self.bad[self.plan.columns[index].name] += 1
            return [(values, {**extra, explode: array})]
        out = []
        for element in array:
            row_values = dict(values)
            row_extra = dict(extra)
            if isinstance(element, dict):
                inner: dict[str, Any] = {}
                self.walk(element, self.plan.element, row_values, inner, f"{explode}.")
                if inner:
                    row_extra[explode] = inner
            else:
                row_extra[explode] = element
                for index in self.plan.element.columns():
                    self.bad[self.plan.columns[index].name] += 1
            out.append((row_values, row_extra))
        return out


def decode_items(
    dataset: Dataset,
    items: Sequence[Any],
    *,
    site: str,
    carry: Mapping[str, Any] | None = None,
    preliminary: bool = False,
) -> DecodedPage:
    """Type one page's ``items`` into a table of exactly ``rest_schema(dataset)``.

    ``carry`` maps the listing's carry columns (child names) to the values every row of this
    page gets (a fan-out page belongs to one parent row; already typed, e.g. a datetime).
    ``site`` fills the lineage column.  Never raises for bad data (module docstring)."""
    plan = _plan(dataset)
    page = _Page(plan)
    rows = [row for item in items for row in page.rows(item)]
    for name, value in (carry or {}).items():
        index = plan.carry.get(name)
        if index is None:
            raise ValueError(f"{dataset.name}: {name!r} is not one of its carry columns {sorted(plan.carry)}")
        for values, _ in rows:
            values[index] = value
    n = len(rows)
    arrays: list[pa.Array] = []
    for index, column in enumerate(plan.columns):
        arrays.append(pa.array([values.get(index) for values, _ in rows], _ARROW_TYPES[column.type]))
    arrays.append(pa.repeat(pa.scalar(site, pa.string()), n))
    arrays.append(pa.array([json.dumps(extra, ensure_ascii=False) if extra else None for _, extra in rows],
                           pa.string()))
    arrays.append(pa.repeat(pa.scalar(preliminary, pa.bool_()), n))
    table = pa.Table.from_arrays(arrays, schema=plan.schema)
    return DecodedPage(table, page.unknown, page.bad, page.placeholders)
