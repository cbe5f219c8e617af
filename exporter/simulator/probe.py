"""Hand-made requests and a loose response reader, for poking a simulator (tests, debugging).

Not the exporter's protocol layer: these helpers build exactly what you tell them (including
wrong things), so tests can send what a broken client would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

import aiohttp
from lxml import etree

from ..model.dataset_spec import Dataset
from ..records.xmlsafe import local_name, parse_xml
from .xmlapi.render import escape
from .xmlapi.timefmt import WireZone

__all__ = ["security", "envelope", "body", "list_body", "Reply", "read_reply", "record_values", "post"]

_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_SERV = "http://www.webex.com/schemas/2002/06/service"


def security(site: str, *, webex_id: str | None = None, password: str | None = None, ticket: str | None = None,
             token: str | None = None) -> str:
    """A securityContext element with the fields given."""
    fields = [("siteName", site), ("webExID", webex_id), ("password", password), ("sessionTicket", ticket),
              ("webExAccessToken", token)]
    inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields if v is not None)
    return f"<securityContext>{inner}</securityContext>"


def envelope(bodies: Sequence[str], context: str, *, declare_serv: bool = True) -> bytes:
    """A request document; ``declare_serv=False`` omits the serv namespace as Cisco's samples do."""
    serv = f' xmlns:serv="{_SERV}"' if declare_serv else ""
    root = "serv:message" if declare_serv else "message"
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns:xsi="{_XSI}"{serv}><header>{context}</header>'
            f"<body>{''.join(bodies)}</body></{root}>").encode("utf-8")


def body(xsi_type: str, inner: str = "") -> str:
    """A bodyContent of type ``xsi_type`` (e.g. ``java:com.webex.service.binding.site.GetSite``)."""
    return f'<bodyContent xsi:type="{xsi_type}">{inner}</bodyContent>'


def list_body(ds: Dataset, *, start: datetime | None = None, end: datetime | None = None, zone_id: int = 20,
              start_from: int = 1, maximum: int = 50, preliminary: bool = False, list_method: str = "AND",
              order: Sequence[tuple[str, str]] | None = None, extras: bool = True, prefixed_control: bool = True,
              more: str = "") -> str:
    """A list bodyContent as the exporter would send it (scope inclusive; times in ``zone_id``)."""
    zone = WireZone(zone_id)
    p = "serv:" if prefixed_control else ""
    parts = [f"<listControl><{p}startFrom>{start_from}</{p}startFrom><{p}maximumNum>{maximum}</{p}maximumNum>"
             f"<{p}listMethod>{list_method}</{p}listMethod></listControl>"]
    for by, ad in ds.order if order is None else order:
        parts.append(f"<order><orderBy>{by}</orderBy><orderAD>{ad}</orderAD></order>")
    if len(parts) > 2:  # several pairs go in one <order>
        pairs = "".join(p[7:-8] for p in parts[1:])
        parts = [parts[0], f"<order>{pairs}</order>"]
    scope = ds.time_scope
    if start is not None or end is not None:
        inner = ""
        if start is not None:
            inner += f"<{scope.start}>{zone.format(int(start.timestamp()))}</{scope.start}>"
        if end is not None:
            inner += f"<{scope.end}>{zone.format(int(end.timestamp()))}</{scope.end}>"
        if scope.zone_inside:
            inner += f"<timeZoneID>{zone_id}</timeZoneID>"
        parts.append(f"<{scope.container}>{inner}</{scope.container}>")
    if ds.sends_time_zone_id and not scope.zone_inside:
        parts.append(f"<timeZoneID>{zone_id}</timeZoneID>")
    if extras:
        parts.extend(f"<{k}>{v}</{k}>" for k, v in ds.request_extras)
    parts.append(more)
    operation = ds.preliminary_operation if preliminary else ds.operation
    return body(f"java:com.webex.service.binding.{ds.service}.{operation}", "".join(parts))


@dataclass
class Reply:
    """One answered bodyContent, read loosely."""

    result: str
    exception_id: str = ""
    reason: str = ""
    gsb_status: str = ""
    xsi_type: str = ""
    total: int | None = None
    returned: int | None = None
    start_from: int | None = None
    records: list[etree._Element] = field(default_factory=list)
    content: etree._Element | None = None


def read_reply(data: bytes, record_element: str | None = None) -> list[Reply]:
    """Parse a response into one :class:`Reply` per bodyContent (records by local name)."""
    root = parse_xml(data, what="response")
    ns = {"serv": _SERV}
    responses = root.findall("serv:header/serv:response", ns)
    contents = root.findall("serv:body/serv:bodyContent", ns)
    replies = []
    for response, content in zip(responses, contents):
        reply = Reply(
            result=response.findtext("serv:result", "", ns),
            exception_id=response.findtext("serv:exceptionID", "", ns),
            reason=response.findtext("serv:reason", "", ns),
            gsb_status=response.findtext("serv:gsbStatus", "", ns),
            xsi_type=content.get(f"{{{_XSI}}}type", ""),
            content=content,
        )
        for kid in content:
            name = local_name(kid.tag)
            if name == "matchingRecords":
                reply.total = int(kid.findtext("serv:total", "0", ns))
                reply.returned = int(kid.findtext("serv:returned", "0", ns))
                reply.start_from = int(kid.findtext("serv:startFrom", "0", ns))
            elif record_element is None or name == record_element:
                reply.records.append(kid)
        replies.append(reply)
    return replies


def record_values(ds: Dataset, record: etree._Element, zone_id: int = 20) -> dict[str, Any]:
    """A record element as column -> typed value (timestamps UTC via ``zone_id``), plus ``extra``.

    Missing elements are None, present-but-empty string elements are "" (what the wire says).
    """
    zone = WireZone(zone_id)
    by_element = {(c.parent, c.element.lower()): c for c in ds.columns}
    out: dict[str, Any] = {c.name: None for c in ds.columns}
    extra: dict[str, str] = {}

    def take(parent: str | None, element: etree._Element) -> None:
        name = local_name(element.tag)
        column = by_element.get((parent, name.lower()))
        if column is None:
            if parent is None and len(element) and any((name, local_name(k.tag).lower()) in by_element for k in element):
                for kid in element:
                    take(name, kid)
            else:
                extra[name] = element.text or ""
            return
        text = element.text or ""
        if column.type == "json":
            out[column.name] = (out[column.name] or []) + [{local_name(k.tag): k.text or "" for k in element}]
        elif column.type == "int":
            out[column.name] = int(text)
        elif column.type == "float":
            out[column.name] = float(text)
        elif column.type == "bool":
            out[column.name] = text.strip().lower() == "true"
        elif column.type == "timestamp":
            out[column.name] = datetime.fromtimestamp(zone.parse(text), timezone.utc)
        else:
            out[column.name] = text

    for kid in record:
        take(None, kid)
    out["extra"] = extra
    return out


async def post(session: aiohttp.ClientSession, url: str, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """POST a request document; (HTTP status, headers, body bytes)."""
    async with session.post(url, data=data, headers={"Content-Type": "text/xml"}) as response:
        return response.status, dict(response.headers), await response.read()
