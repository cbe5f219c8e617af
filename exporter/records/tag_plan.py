"""The plan: how each child tag of a record is handled, cached per dataset and per tag tuple.

A record's children are matched to declared columns by local name (``column_name``); the plan
learns, per tag and per sequence of tags, which position feeds which column and which children
need Python (containers, json columns, unknown and repeated elements)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..model.dataset_spec import Column, Dataset
from ..model.naming import column_name
from .arrow_schema import arrow_schema
from .fall_back import span_columns
from .xmlsafe import local_name

KIND_LEAF, KIND_CONTAINER, KIND_JSON, KIND_UNKNOWN, KIND_DUPLICATE, KIND_IGNORE = range(6)
_MAX_CACHED_TAGS = 4096  # a hostile server could invent unlimited tag names; stop caching past this


@dataclass(frozen=True, slots=True)
class Container:
    """A declared parent element (``trackingCode``) and its child columns, by normalised name."""

    element: str
    children: dict[str, int]  # column_name(child element) -> column index


class TagPlan:
    """Everything about a dataset that does not depend on the page, plus learned tag lookups."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.schema = arrow_schema(dataset)
        self.columns: tuple[Column, ...] = dataset.columns
        #: (start, end, duration) column indexes, to tell fall-back-hour times apart (fall_back.py).
        self.span = span_columns(dataset)
        self.leaves: dict[str, int] = {}
        self.jsons: dict[str, int] = {}
        self.containers: dict[str, Container] = {}
        for index, column in enumerate(dataset.columns):
            key = column_name(column.element)
            if column.parent is not None:
                container = self.containers.setdefault(
                    column_name(column.parent), Container(column.parent, {})
                )
                container.children[key] = index
            elif column.type == "json":
                self.jsons[key] = index
            else:
                self.leaves[key] = index
        self.tags: dict[Any, tuple[int, Any, str]] = {}  # tag -> (kind, payload, local name)
        self.container_signatures: dict[tuple[str, tuple[Any, ...]], ContainerSignature] = {}
        self.signatures: dict[tuple[Any, ...], Signature] = {}

    def classify(self, tag: Any) -> tuple[int, Any, str]:
        """What a record child with this tag is: (kind, payload, local name)."""
        found = self.tags.get(tag)
        if found is not None:
            return found
        local = local_name(tag)
        if not local:  # comments, processing instructions
            found = (KIND_IGNORE, None, "")
        else:
            key = column_name(local)
            if key in self.leaves:
                found = (KIND_LEAF, self.leaves[key], local)
            elif key in self.containers:
                found = (KIND_CONTAINER, self.containers[key], local)
            elif key in self.jsons:
                found = (KIND_JSON, self.jsons[key], local)
            else:
                found = (KIND_UNKNOWN, None, local)
        if len(self.tags) < _MAX_CACHED_TAGS:
            self.tags[tag] = found
        return found

    def container_signature(self, container: Container, tags: tuple[Any, ...]) -> ContainerSignature:
        """The handling of a container whose children have exactly these tags, in this order."""
        key = (container.element, tags)
        found = self.container_signatures.get(key)
        if found is None:
            found = ContainerSignature(self, container, tags)
            if len(self.container_signatures) < _MAX_CACHED_TAGS:
                self.container_signatures[key] = found
        return found

    def signature(self, tags: tuple[Any, ...]) -> Signature:
        """The handling of a record whose children have exactly these tags, in this order."""
        found = self.signatures.get(tags)
        if found is None:
            found = Signature(self, tags)
            if len(self.signatures) < _MAX_CACHED_TAGS:
                self.signatures[tags] = found
        return found


class Signature:
    """For one sequence of child tags: which position feeds which column, and what needs Python."""

    __slots__ = ("leaves", "specials")

    def __init__(self, plan: TagPlan, tags: tuple[Any, ...]) -> None:
        leaves: dict[int, tuple[int, str]] = {}  # column index -> (position, local name); first wins
        specials: list[tuple[int, int, Any, str]] = []  # (position, kind, payload, local name)
        for position, tag in enumerate(tags):
            kind, payload, local = plan.classify(tag)
            if kind == KIND_LEAF and payload in leaves:
                kind = KIND_DUPLICATE
            if kind == KIND_LEAF:
                leaves[payload] = (position, local)
            elif kind != KIND_IGNORE:
                specials.append((position, kind, payload, local))
        self.leaves = leaves
        self.specials = tuple(specials)


class ContainerSignature:
    """For one sequence of tags inside a declared container: which child feeds which column."""

    __slots__ = ("leaves", "others")

    def __init__(self, plan: TagPlan, container: Container, tags: tuple[Any, ...]) -> None:
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
def plan_for(dataset: Dataset) -> TagPlan:
    return TagPlan(dataset)
