"""Reading request documents: the security context and each bodyContent's operation.

Tolerant the way the real service is: the root may omit the ``serv`` namespace, children may or
may not be prefixed, element names are matched without regard to case (``hostWebexID`` in the
seed samples vs ``hostWebExID`` in the schema), and xsi:type may be
``java:com.webex.service.binding.<service>.<Op>`` or just ``<service>.<Op>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from lxml import etree

from ...errors import ParseError
from ...records.xmlsafe import local_name, parse_xml

__all__ = ["Refusal", "Body", "Envelope", "read_envelope", "children", "child", "text_of", "operation_name"]

_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_SECURITY_FIELDS = ("siteName", "webExID", "email", "password", "sessionTicket", "webExAccessToken", "siteID",
                    "partnerID")


class Refusal(Exception):
    """A FAILURE answer for one bodyContent (or the whole request): exceptionID and reason."""

    def __init__(self, exception_id: str, reason: str) -> None:
        super().__init__(f"{exception_id}: {reason}")
        self.exception_id = exception_id
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Body:
    """One bodyContent: its element and the operation its xsi:type names (as written)."""

    element: etree._Element
    operation: str


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed request: security context fields (present ones only) and the bodies in order."""

    security: dict[str, str]
    bodies: tuple[Body, ...]

    @property
    def site_name(self) -> str:
        """The siteName of the security context ("" when missing)."""
        return self.security.get("siteName", "")


def children(element: etree._Element) -> dict[str, list[etree._Element]]:
    """Child elements by lower-cased local name, in document order."""
    out: dict[str, list[etree._Element]] = {}
    for kid in element:
        name = local_name(kid.tag)
        if name:
            out.setdefault(name.lower(), []).append(kid)
    return out


def child(element: etree._Element | None, name: str) -> etree._Element | None:
    """The first child called ``name`` (any namespace, any case), or None."""
    if element is None:
        return None
    low = name.lower()
    for kid in element:
        if local_name(kid.tag).lower() == low:
            return kid
    return None


def text_of(element: etree._Element | None) -> str | None:
    """Stripped text of an element; None when the element is missing."""
    if element is None:
        return None
    return (element.text or "").strip()


def operation_name(xsi_type: str) -> str:
    """``java:com.webex.service.binding.history.X`` or ``history.X`` -> ``X``."""
    value = xsi_type.strip()
    if ":" in value:
        value = value.split(":", 1)[1]
    return value.rsplit(".", 1)[-1]


def _elements(parent: etree._Element | None, name: str) -> Iterable[etree._Element]:
    return [] if parent is None else children(parent).get(name.lower(), [])


_SERV_DECLARATION = b' xmlns:serv="http://www.webex.com/schemas/2002/06/service"'
_ROOT = re.compile(rb"<serv:message\b")


def _parse(data: bytes) -> etree._Element:
    try:
        return parse_xml(data, what="request")
    except ParseError:
        # Cisco's own samples write <serv:message> but declare only xsi; the service takes them.
        if b"xmlns:serv" in data or not _ROOT.search(data):
            raise
        return parse_xml(_ROOT.sub(lambda m: m.group(0) + _SERV_DECLARATION, data, count=1), what="request")


def read_envelope(data: bytes) -> Envelope:
    """Parse a request; :class:`~exporter.errors.ParseError` when it is not usable XML."""
    root = _parse(data)
    security: dict[str, str] = {}
    context = child(child(root, "header"), "securityContext")
    if context is not None:
        for field in _SECURITY_FIELDS:
            value = text_of(child(context, field))
            if value:
                security[field] = value
    bodies = tuple(
        Body(element, operation_name(element.get(_XSI_TYPE, "")))
        for element in _elements(child(root, "body"), "bodyContent")
    )
    return Envelope(security, bodies)
