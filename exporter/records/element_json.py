"""Element -> JSON: how unknown elements, raw bad values and ``json`` columns are kept (nested
elements as objects, attributes as ``"@name"``, repeated names as lists)."""

from __future__ import annotations

from typing import Any

from lxml import etree

from .xmlsafe import local_name


def element_json(element: etree._Element) -> Any:
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
            add_value(obj, local_name(tag), element_json(kid))
    return obj


def add_value(obj: dict[str, Any], key: str, value: Any) -> None:
    """Set ``obj[key]``; a repeated key collects its values in a list, in arrival order.
    (Values are only ever strings or objects, so a list is always one we made.)"""
    if key not in obj:
        obj[key] = value
    elif isinstance(obj[key], list):
        obj[key].append(value)
    else:
        obj[key] = [obj[key], value]
