"""The Webex XML wire format, as pure functions: request envelopes in, ``BodyResponse`` out.

No I/O and no policy here: :mod:`exporter.webex.client` decides when to send and what a response means
(:mod:`exporter.webex.classify`).  A request is ``serv:message`` with a ``header/securityContext`` and a
``body`` of one or more ``bodyContent xsi:type=...``; the response pairs ``serv:header/serv:response[i]``
with ``serv:body/serv:bodyContent[i]`` (see ../shared/webex-xml-api.md sections 1 and 4).

Secrets travel inside request trees as :class:`~exporter.config.Secret` and are revealed only while
serialising, so a :class:`Body` or an exception that mentions one never shows the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from lxml import etree

from ..config import Secret, SiteSettings
from ..errors import ParseError
from ..model.dataset_spec import Dataset
from ..model.timezones import DEFAULT_REQUEST_TIME_ZONE_ID, zoneinfo_for
from ..model.windows import Window
from ..records.parse import ParsedPage
from ..records.webex_time import format_webex_time
from ..records.xmlsafe import local_name, parse_xml

__all__ = [
    "AUTHENTICATE_USER",
    "SERV_NS",
    "XSI_NS",
    "Body",
    "BodyResponse",
    "Node",
    "RecordSpec",
    "authenticate_body",
    "build_request",
    "list_body",
    "operation_xsi_type",
    "parse_response",
    "scope_zone",
]

SERV_NS = "http://www.webex.com/schemas/2002/06/service"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
AUTHENTICATE_USER = "java:com.webex.service.binding.user.AuthenticateUser"

#: One request element: ``(name, text)`` or ``(name, (child, ...))``.  A ``serv:`` prefix on the
#: name puts the element in the service namespace (``listControl`` children, as in the seeds).
Node = tuple[str, str | Secret | tuple["Node", ...]]


@dataclass(frozen=True, slots=True)
class RecordSpec:
    """How to type the records of one list body: the dataset, the site name for the lineage
    column, the zone the response's times are in, and whether the operation is preliminary."""

    dataset: str
    site: str
    zone: ZoneInfo
    preliminary: bool = False


@dataclass(frozen=True, slots=True)
class Body:
    """One ``bodyContent``: its ``xsi:type``, child elements, and the record element its response
    lists (``None`` for non-list operations such as AuthenticateUser).  With ``parse_as``, the
    records are typed as soon as the response is parsed (see ``decoding.py``)."""

    xsi_type: str
    children: tuple[Node, ...] = ()
    record_element: str | None = None
    label: str = ""  # e.g. "LstmeetingusageHistory startFrom=501": for messages, never secret
    parse_as: RecordSpec | None = None

    @property
    def operation(self) -> str:
        """The operation name, the last dotted part of ``xsi_type``."""
        return self.xsi_type.rpartition(".")[2]

    def __repr__(self) -> str:
        # Children may hold a Secret (masked anyway) and are long; the label says what matters.
        return f"Body({self.label or self.operation!r})"


@dataclass(frozen=True, slots=True)
class BodyResponse:
    """One ``serv:response`` and its ``bodyContent``.

    ``total``, ``returned`` and ``start_from`` come from ``matchingRecords`` wherever it stands
    (first in some responses, last in others); ``None`` when the response has none.  ``records``
    are the direct children of ``bodyContent`` named like the body's record element; once typed
    (``parsed``, a :class:`~exporter.records.parse.ParsedPage`), they are dropped.
    """

    result: str
    reason: str = ""
    exception_id: str = ""
    gsb_status: str = ""
    total: int | None = None
    returned: int | None = None
    start_from: int | None = None
    records: list[etree._Element] = field(default_factory=list, repr=False)
    response_type: str = ""
    content: etree._Element | None = field(default=None, repr=False, compare=False)
    empty: bool = False  # set by the client when the answer means "no records" (000015)
    parsed: ParsedPage | None = field(default=None, repr=False, compare=False)

    @property
    def record_count(self) -> int:
        """How many records the body listed."""
        return len(self.records) if self.parsed is None else self.parsed.table.num_rows

    @property
    def success(self) -> bool:
        """``result`` is ``SUCCESS``."""
        return self.result == "SUCCESS"

    def text(self, name: str) -> str | None:
        """Text of the first element called ``name`` (local name) inside ``bodyContent``."""
        if self.content is None:
            return None
        for element in self.content.iter():
            if local_name(element.tag) == name:
                return (element.text or "").strip()
        return None


# --------------------------------------------------------------------------- building requests


def operation_xsi_type(dataset: Dataset, *, preliminary: bool = False) -> str:
    """The request ``xsi:type`` for a dataset, or for its preliminary variant."""
    if not preliminary:
        return dataset.xsi_type
    if dataset.preliminary_operation is None:
        raise ValueError(f"dataset {dataset.name} has no preliminary operation")
    return f"java:com.webex.service.binding.{dataset.service}.{dataset.preliminary_operation}"


def scope_zone(dataset: Dataset, *, time_zone_id: int, unlabeled_time_zone_id: int | None,
               overrides: tuple[tuple[int, str], ...] = ()) -> ZoneInfo:
    """The zone a dataset's scope and returned times are in: the requested ``timeZoneID`` when
    the dataset sends one, else the site's zone for unlabeled times."""
    zone_id = time_zone_id if dataset.sends_time_zone_id else unlabeled_time_zone_id
    if zone_id is None:  # not settled from the site (the pipeline asks GetSite): GMT
        zone_id = DEFAULT_REQUEST_TIME_ZONE_ID
    return zoneinfo_for(zone_id, overrides)


def list_body(
    dataset: Dataset,
    window: Window,
    *,
    start_from: int,
    maximum_num: int,
    time_zone_id: int | None,
    zone: ZoneInfo | None = None,
    preliminary: bool = False,
    typed_for_site: str | None = None,
) -> Body:
    """A list request for one page of ``window``.

    The window ``[s, e)`` is sent as ``s`` .. ``e - 1 s`` (the wire is inclusive, one-second
    resolution), written in ``zone``.  ``timeZoneID`` is sent only when the dataset sends one
    (inside the scope container when ``time_scope.zone_inside``); ``zone`` defaults to that ID's
    zone and must be given for datasets whose times are unlabeled.  With ``typed_for_site``, the
    answer's records come back typed, with that site name in their lineage column.
    """
    if start_from < 1:
        raise ValueError(f"startFrom counts from 1, got {start_from}")
    if not 1 <= maximum_num <= 500:
        raise ValueError(f"maximumNum must be 1..500, got {maximum_num}")
    send_zone = dataset.sends_time_zone_id and time_zone_id is not None
    if zone is None:
        if not send_zone:
            raise ValueError(f"{dataset.name}: no timeZoneID is sent, so the scope zone must be given")
        zone = zoneinfo_for(time_zone_id)
    scope = dataset.time_scope
    scope_children: list[Node] = [
        (scope.start, format_webex_time(window.start, zone)),
        (scope.end, format_webex_time(window.last_second, zone)),
    ]
    if send_zone and scope.zone_inside:
        scope_children.append(("timeZoneID", str(time_zone_id)))
    order: list[Node] = []
    for by, direction in dataset.order:
        order += [("orderBy", by), ("orderAD", direction)]
    children: list[Node] = [
        (
            "listControl",
            (
                ("serv:startFrom", str(start_from)),
                ("serv:maximumNum", str(maximum_num)),
                ("serv:listMethod", "AND"),
            ),
        ),
        ("order", tuple(order)),
        (scope.container, tuple(scope_children)),
        *dataset.request_extras,
    ]
    if send_zone and not scope.zone_inside:
        children.append(("timeZoneID", str(time_zone_id)))
    xsi_type = operation_xsi_type(dataset, preliminary=preliminary)
    return Body(
        xsi_type=xsi_type,
        children=tuple(children),
        record_element=dataset.record_element,
        label=f"{xsi_type.rpartition('.')[2]} {window} startFrom={start_from}",
        parse_as=None if typed_for_site is None else RecordSpec(dataset.name, typed_for_site, zone, preliminary),
    )


def authenticate_body(access_token: Secret | None = None) -> Body:
    """AuthenticateUser: empty (the password in securityContext is exchanged for a ticket) or
    carrying an ``accessToken`` to exchange."""
    children: tuple[Node, ...] = (("accessToken", access_token),) if access_token is not None else ()
    return Body(AUTHENTICATE_USER, children, label="AuthenticateUser")


def build_request(site: SiteSettings, bodies: Sequence[Body], *, ticket: Secret | str | None) -> bytes:
    """The request document (UTF-8 bytes) carrying ``bodies`` for ``site``.

    Credential in ``securityContext``: the ``sessionTicket`` when one is given; otherwise the
    password (auth ``password``, and ``ticket`` while exchanging it); for auth ``token`` the
    access token goes in the AuthenticateUser body, or as ``webExAccessToken`` for other bodies.
    """
    if not bodies:
        raise ValueError("a request carries at least one bodyContent")
    root = etree.Element(f"{{{SERV_NS}}}message", nsmap={"serv": SERV_NS, "xsi": XSI_NS})
    context = etree.SubElement(etree.SubElement(root, "header"), "securityContext")
    _text(context, "webExID", site.webex_id)
    exchanging = any(body.xsi_type == AUTHENTICATE_USER for body in bodies)
    if ticket is not None:
        _text(context, "sessionTicket", ticket)
    elif site.auth in ("password", "ticket"):
        if site.password is None:
            raise ValueError(f"site {site.name}: auth {site.auth!r} needs a password")
        _text(context, "password", site.password)
    elif not exchanging:
        if site.access_token is None:
            raise ValueError(f"site {site.name}: auth 'token' needs an access token")
        _text(context, "webExAccessToken", site.access_token)
    _text(context, "siteName", site.site_name)
    body_element = etree.SubElement(root, "body")
    for body in bodies:
        content = etree.SubElement(body_element, "bodyContent")
        content.set(f"{{{XSI_NS}}}type", body.xsi_type)
        _children(content, body.children)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _text(parent: etree._Element, name: str, value: str | Secret) -> None:
    element = etree.SubElement(parent, _qualified(name))
    element.text = value.reveal() if isinstance(value, Secret) else value


def _children(parent: etree._Element, nodes: tuple[Node, ...]) -> None:
    for name, value in nodes:
        if isinstance(value, tuple):
            _children(etree.SubElement(parent, _qualified(name)), value)
        else:
            _text(parent, name, value)


def _qualified(name: str) -> str:
    prefix, _, local = name.rpartition(":")
    if not prefix:
        return name
    if prefix != "serv":
        raise ValueError(f"unknown request prefix in {name!r}")
    return f"{{{SERV_NS}}}{local}"


# --------------------------------------------------------------------------- reading responses


def parse_response(data: bytes, *, record_elements: Sequence[str | None] = ()) -> list[BodyResponse]:
    """One :class:`BodyResponse` per ``serv:response``, in order, each with its ``bodyContent``.

    ``record_elements[i]`` names the record element of the i-th body (local name; ``None`` or
    missing: no records).  Pairing is positional; when a server leaves out the ``bodyContent`` of
    failed bodies, contents are paired with the SUCCESS responses in order.  Raises
    :class:`ParseError` for anything that is not a readable Webex message.
    """
    root = parse_xml(data, what="Webex response")
    if local_name(root.tag) != "message":
        raise ParseError(f"Webex response root is <{local_name(root.tag) or root.tag}>, not <serv:message>")
    headers = [child for child in root if local_name(child.tag) == "header"]
    bodies = [child for child in root if local_name(child.tag) == "body"]
    responses = [r for h in headers for r in h if local_name(r.tag) == "response"]
    contents = [c for b in bodies for c in b if local_name(c.tag) == "bodyContent"]
    if not responses:
        raise ParseError("Webex response has no serv:header/serv:response")
    results = [_child_text(r, "result") for r in responses]
    if len(contents) == len(responses):
        paired: list[etree._Element | None] = list(contents)
    elif len(contents) < len(responses) and len(contents) == results.count("SUCCESS"):
        queue = iter(contents)
        paired = [next(queue) if result == "SUCCESS" else None for result in results]
    else:
        raise ParseError(
            f"Webex response has {len(responses)} serv:response and {len(contents)} bodyContent elements; "
            "cannot pair them"
        )
    out = []
    for index, (response, content) in enumerate(zip(responses, paired, strict=True)):
        record_element = record_elements[index] if index < len(record_elements) else None
        out.append(_body_response(response, content, record_element))
    return out


def _body_response(
    response: etree._Element, content: etree._Element | None, record_element: str | None
) -> BodyResponse:
    total = returned = start_from = None
    records: list[etree._Element] = []
    response_type = ""
    if content is not None:
        response_type = content.get(f"{{{XSI_NS}}}type", "")
        for child in content:
            name = local_name(child.tag)
            if record_element is not None and name == record_element:
                records.append(child)
            elif name == "matchingRecords":
                total = _int(child, "total")
                returned = _int(child, "returned")
                start_from = _int(child, "startFrom")
    return BodyResponse(
        result=_child_text(response, "result"),
        reason=_child_text(response, "reason"),
        exception_id=_child_text(response, "exceptionID"),
        gsb_status=_child_text(response, "gsbStatus"),
        total=total,
        returned=returned,
        start_from=start_from,
        records=records,
        response_type=response_type,
        content=content,
    )


def _child_text(parent: etree._Element, name: str) -> str:
    for child in parent:
        if local_name(child.tag) == name:
            return (child.text or "").strip()
    return ""


def _int(parent: etree._Element, name: str) -> int | None:
    text = _child_text(parent, name)
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ParseError(f"matchingRecords/{name} is not an integer: {text[:40]!r}") from None
