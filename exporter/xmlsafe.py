"""Hardened XML parsing: the one place lxml turns bytes into a tree.

Refuses what an XML API response never needs and an attacker would use: a DOCTYPE (entity
expansion bombs, external entities), network access, and documents over a size limit.  The
declared encoding (UTF-8, ISO-8859-1, ...) is honoured because lxml is given raw bytes.
lxml's own exceptions are translated into :class:`~exporter.errors.ParseError` here.
"""

from __future__ import annotations

import re

from lxml import etree

from .errors import ParseError

__all__ = ["parse_xml", "DEFAULT_MAX_BYTES", "local_name"]

#: Largest document accepted (a 500-record page is well under 2 MiB).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)


def _parser() -> etree.XMLParser:
    # A fresh parser per call keeps this safe to use from several threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, what: str = "document") -> etree._Element:
    """Parse ``data`` into its root element, or raise a specific :class:`ParseError`."""
    if not data or data.isspace():  # isspace stops at the first other byte; strip() would copy it all
        raise ParseError(f"{what} is empty")
    if len(data) > max_bytes:
        raise ParseError(f"{what} is {len(data)} bytes, over the {max_bytes}-byte limit")
    # A DOCTYPE can only stand before the root element; look in the prolog only.
    head = data[: data.find(b">", data.find(b"<", data.find(b"?>") + 1 if data.startswith(b"<?") else 0)) + 1 or 4096]
    if _DOCTYPE.search(head) or _DOCTYPE.search(data[:4096]):
        raise ParseError(f"{what} has a DOCTYPE declaration; refused (entity expansion / external entities)")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        repaired = _nbsp_in_tags_to_spaces(data)
        if repaired is None:
            raise ParseError(f"{what} is not well-formed XML: {exc}") from None
        try:
            root = etree.fromstring(repaired, _parser())
        except etree.XMLSyntaxError:
            raise ParseError(f"{what} is not well-formed XML: {exc}") from None
    except (ValueError, LookupError) as exc:  # e.g. unknown encoding in the declaration
        raise ParseError(f"{what} cannot be decoded: {exc}") from None
    if root is None:
        raise ParseError(f"{what} has no root element")
    return root


_TAG = re.compile(rb"<[^<>]*>")
_NBSP_UTF8 = b"\xc2\xa0"


def _nbsp_in_tags_to_spaces(data: bytes) -> bytes | None:
    """Documents copied from Webex's HTML pages indent attributes with U+00A0, which XML does not
    count as white space.  Turn NBSP *inside tags* into spaces (text content is left alone);
    None when there is nothing to repair.  Only tried after a strict parse failed."""
    if _NBSP_UTF8 not in data:
        return None
    return _TAG.sub(lambda m: m.group(0).replace(_NBSP_UTF8, b" "), data)


def local_name(tag: object) -> str:
    """``{namespace}name`` -> ``name``; comments and other non-element nodes give ``""``."""
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]
