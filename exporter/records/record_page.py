"""One page being parsed: the pass over its records (grouped by their tuple of child tags), the
columns of texts, what did not fit (``extra``, counters) and the assembled table.  The typing of
each column is :mod:`exporter.records.converters`'s."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
from lxml import etree

from ..model.dataset_spec import Column
from ..model.naming import column_name
from .arrow_schema import ARROW_TYPES
from .converters import CONVERTERS
from .element_json import add_value, element_json
from .fall_back import resolve_fall_back
from .tag_plan import KIND_CONTAINER, KIND_JSON, KIND_UNKNOWN, Container, Signature, TagPlan
from .value_rules import BAD
from .webex_time import local_to_utc_checked, parse_webex_time
from .xmlsafe import local_name

_TAG, _TEXT = attrgetter("tag"), attrgetter("text")


@dataclass(slots=True)
class _Group:
    """The records of a page that share one tag tuple: their rows and texts (row-major, flat)."""

    signature: Signature
    width: int
    rows: list[int] = field(default_factory=list)
    texts: list[str | None] = field(default_factory=list)

    def column(self, position: int) -> list[str | None]:
        """The texts at ``position`` in every record of the group (a C-level strided slice)."""
        return self.texts[position :: self.width]


class RecordPage:
    """The mutable state of one ``parse_records`` call."""

    def __init__(self, plan: TagPlan, records: Sequence[etree._Element], zone: ZoneInfo) -> None:
        self.plan = plan
        self.records = records
        self.zone = zone
        self.n = len(records)
        self.extras: dict[int, dict[str, Any]] = {}
        self.unknown: Counter[str] = Counter()
        self.bad: Counter[str] = Counter()
        self.ambiguous: Counter[str] = Counter()
        #: Ambiguous wall times (fall-back hour): column -> row -> their second occurrence.
        self.second: dict[int, dict[int, datetime]] = {}
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
            if kind == KIND_CONTAINER:
                self.container(row, kid, payload, local)
            elif kind == KIND_JSON:
                column = self.side_column(payload)
                if column[row] is None:
                    column[row] = []
                column[row].append(element_json(kid))
            elif kind == KIND_UNKNOWN:
                add_value(self.extra(row), local, element_json(kid))
                self.unknown[local] += 1
            else:  # KIND_DUPLICATE: the column already has this row's first occurrence
                add_value(self.extra(row), local, element_json(kid))
                self.bad[self.plan.columns[payload].name] += 1

    def container(self, row: int, element: etree._Element, container: Container, local: str) -> None:
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
                    add_value(nested, child_local, element_json(kid))
                    continue
                if text is None:
                    text = "" if is_str else None
            column = self.side_column(index)
            if column[row] is not None:
                # The container came twice in this record: the first non-empty value wins.
                self.bad[self.plan.columns[index].name] += 1
                add_value(nested, child_local, "" if text is None else text)
                continue
            column[row] = text
            if unusual:
                self.names[(index, row)] = child_local
        for position, other_index, child_local in shape.others:
            if other_index is None:
                self.unknown[f"{local}/{child_local}"] += 1
            else:  # repeated inside one container
                self.bad[self.plan.columns[other_index].name] += 1
            add_value(nested, child_local, element_json(kids[position]))
        text = element.text
        if text and not text.isspace():  # a container that turned into a leaf: keep its text
            add_value(nested, "#text", text)
            self.unknown[f"{local}/#text"] += 1
        if nested:
            self.merge_nested(row, local, nested)

    def merge_nested(self, row: int, local: str, nested: dict[str, Any]) -> None:
        """Put ``nested`` under ``extra[local]``, merging with what an earlier occurrence left there."""
        extra = self.extra(row)
        if isinstance(extra.get(local), dict):
            for key, value in nested.items():
                add_value(extra[local], key, value)
        else:
            add_value(extra, local, nested)

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
        add_value(self.extra(row), local, element_json(element))
        self.bad[self.plan.columns[index].name] += 1

    # --- typing --------------------------------------------------------------------------------

    def typed(self, index: int, texts: pa.Array) -> pa.Array:
        """Convert one column of texts to its type; bad values nulled, kept raw and counted."""
        column = self.plan.columns[index]
        if column.type == "str":
            return texts
        converter = CONVERTERS[column.type]
        return converter(self, index, texts)

    def reject(self, index: int, row: int, raw: str) -> None:
        """Record a value that did not fit column ``index``: raw in extra, counted."""
        column = self.plan.columns[index]
        name = self.names.get((index, row)) or self.spelling(row, column)
        if column.parent is None:
            add_value(self.extra(row), name, raw)
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
        None, blank text is empty (None), otherwise ``parse(row, text)``; its ``BAD`` rejects."""
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
                if value is BAD:
                    self.reject(index, row, text)
                    value = None
            out.append(value)
        return out

    def time_value(self, index: int, row: int, text: str) -> Any:
        """One timestamp by the exact rules (see module docstring), or ``BAD``."""
        try:
            naive = parse_webex_time(text)
            utc, kind = local_to_utc_checked(naive, self.zone)
        except (ValueError, OverflowError):
            return BAD
        if kind == "ambiguous":  # read as the first occurrence unless the row says otherwise (build)
            self.second.setdefault(index, {})[row] = naive.replace(tzinfo=self.zone, fold=1).astimezone(timezone.utc)
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
            arrow_type = ARROW_TYPES[column.type]
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
        for index, rows in resolve_fall_back(arrays, self.plan.span, self.second).items():
            self.ambiguous[self.plan.columns[index].name] += len(rows)
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
