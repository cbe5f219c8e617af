"""REST ground truth: what a complete REST export of a dataset lands now, row by row.

Rows are keyed by the dataset's REST columns (``RestField.column``) plus its ``carry`` columns
and ``site``.  Values are typed as the exporter lands them, from the *logical* items (so no wire
quirk leaks in): timestamps as aware UTC datetimes (the ``1970-01-01`` placeholder as None),
ints, bools, str (``lower`` fields lower-cased; a JSON bool landing in an XML str column becomes
``"true"`` / ``"false"``), JSON fields as compact sorted JSON text of the value written in UTC.
A missing field is None.  A fan-out dataset holds the children of the parent's ground truth; an
exploded one has a row per array element (one row, element columns None, for an empty array).
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Iterator, Mapping

from ...model.dataset_spec import Dataset
from ...model.datasets import by_name
from ..data.records import Record
from ..data.world import DAY
from ..site_config import SiteConfig
from .index import ATTENDEES_OF, SESSION_DATASETS
from .items import RestWorld
from .wire import UTC_ZONE, Time, dumps, to_wire

__all__ = ["RestTruth", "land", "land_value"]


def land_value(value: Any, type_: str, *, lower: bool = False) -> Any:
    """One logical value as it lands in a column of ``type_``."""
    if value is None:
        return None
    if type_ == "str" and value.__class__ is str:
        return value.lower() if lower else value
    if type_ == "int" and value.__class__ is int:
        return value
    if isinstance(value, Time):
        if value.placeholder:
            return None
        if type_ == "timestamp":
            return datetime.fromtimestamp(value.ts, timezone.utc)
        value = UTC_ZONE.format(value)
    if type_ == "json":
        return dumps(to_wire(value, UTC_ZONE))
    if type_ == "int":
        return int(value)
    if type_ == "float":
        return float(value)
    if type_ == "bool":
        return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "y", "yes", "1")
    if isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return text.lower() if lower else text


_Field = tuple[str, str, str, bool]


@lru_cache(maxsize=64)
def _plan(name: str) -> tuple[tuple[_Field, ...], tuple[_Field, ...], str | None]:
    """(top-level fields, exploded-element fields, explode) as (path, column, landed type, lower)."""
    ds = by_name(name)
    assert ds.rest is not None
    declared = ds.column_by_name
    explode = ds.rest.explode
    prefix = f"{explode}." if explode else None
    top, inner = [], []
    for f in ds.rest.fields:
        type_ = declared[f.column].type if f.column in declared else f.type
        if prefix and f.path.startswith(prefix):
            inner.append((f.path[len(prefix):], f.column, type_, f.lower))
        else:
            top.append((f.path, f.column, type_, f.lower))
    return tuple(top), tuple(inner), explode


def land(ds: Dataset, item: Mapping[str, Any], carry: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The rows one logical item of ``ds`` lands as (several for an exploded array)."""
    top, inner, explode = _plan(ds.name)
    get = item.get
    base = {column: land_value(get(path), type_, lower=lower) for path, column, type_, lower in top}
    if carry:
        base.update(carry)
    if not explode:
        return [base]
    rows = []
    for element in item.get(explode) or [None]:
        row = dict(base)
        for path, column, type_, lower in inner:
            row[column] = land_value(element.get(path) if element else None, type_, lower=lower)
        rows.append(row)
    return rows


class RestTruth:
    """Ground truth of every REST dataset, from the same items the endpoints serve."""

    def __init__(self, world: RestWorld) -> None:
        self.world = world

    def rows(self, site: SiteConfig, dataset: str, now: int) -> list[dict[str, Any]]:
        """What a complete REST export of ``dataset`` at ``site`` lands now (in the API's order)."""
        ds = by_name(dataset)
        if ds.rest is None:
            raise KeyError(f"{dataset} has no REST listing")
        out = []
        for item, carry in self._items(site, ds, now):
            for row in land(ds, item, carry):
                row["site"] = site.name
                out.append(row)
        return out

    def _items(self, site: SiteConfig, ds: Dataset, now: int) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        assert ds.rest is not None
        if ds.rest.parent is None:
            for _rec, item in self._top(site, ds, now):
                yield item, {}
            return
        parent = by_name(ds.rest.parent)
        for rec, item in self._top(site, parent, now):
            landed = land(parent, item)[0]
            carry = {child: landed[column] for column, child in ds.rest.carry}
            for child in self._children(site, ds, parent, rec, now):
                yield child, carry

    def _top(self, site: SiteConfig, ds: Dataset, now: int) -> Iterator[tuple[Record, dict[str, Any]]]:
        """(record, item) of a top-level listing over its whole reach."""
        w = self.world
        assert ds.rest is not None
        reach, end = now - ds.rest.reach_days * DAY, now + 1
        if ds.name in SESSION_DATASETS.values():
            for rec in w.usage_rows(site, ds.name, reach, end, now):
                yield rec, w.usage_item(site, ds.name, rec, now)
        elif ds.name == "meeting_instances":
            for rec in w.instance_rows(site, reach, end, "ended", now):
                yield rec, w.instance_item(site, rec, now)
        elif ds.name == "recording_access":
            for rec in w.recording_rows(site, reach, end, None, now):
                yield rec, w.recording_item(site, rec, now)
        else:  # pragma: no cover - every top-level REST listing is handled above
            raise KeyError(f"no REST ground truth for {ds.name}")

    def _children(self, site: SiteConfig, ds: Dataset, parent: Dataset, rec: Record,
                  now: int) -> Iterator[dict[str, Any]]:
        """The items a fan-out listing gets for one parent record."""
        w = self.world
        if ds.name in ATTENDEES_OF.values():
            for row in w.attendee_rows(site, parent.name, rec, now):
                yield w.attendee_item(site, ds.name, rec, row)
        elif ds.name == "meeting_participants":
            yield from w.participants(site, rec, now)
        elif ds.name == "recording_access_details":
            yield from w.access_details(site, rec, now)
        else:  # pragma: no cover
            raise KeyError(f"no REST ground truth for {ds.name}")
