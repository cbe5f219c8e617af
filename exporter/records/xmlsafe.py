"""Hardened XML parsing: the one place lxml turns bytes into a tree.

Refuses what an XML API response never needs and an attacker would use: any DTD (a DOCTYPE,
with or without an internal subset of ENTITY declarations: expansion bombs, external entities),
network and file access, and documents over a size limit.  The check is made on what the parser
saw, not on a byte prefix, so a DOCTYPE after a long comment or in a UTF-16 document is refused
like any other; nothing is ever expanded (``resolve_entities=False``) and nothing is ever loaded
(every external reference, DTD or parameter entity, is answered by a resolver that returns
nothing and marks the document as refused).  The declared encoding (UTF-8, ISO-8859-1, UTF-16
with a BOM...) is honoured because lxml is given raw bytes.

A document that fails to parse is told apart (by feeding it to a tree-less parser): *cut short*
(every byte was a valid prefix) or *garbled after a well-formed start* is a
:class:`~exporter.errors.DamagedResponseError` (asking again may succeed); not XML from its
first bytes, an HTML page, a DTD, an undeclared entity, an undecodable encoding or a size over
the limit is a plain :class:`~exporter.errors.ParseError` (asking again gets the same answer).
lxml's own exceptions are translated here.
"""

from __future__ import annotations

import re

from lxml import etree

from ..errors import DamagedResponseError, ParseError

__all__ = ["parse_xml", "DEFAULT_MAX_BYTES", "local_name"]

#: Largest document accepted (a 500-record page is well under 2 MiB).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class _RefuseExternal(etree.Resolver):  # type: ignore[misc]  # lxml ships no stubs, so Resolver is Any
    """Answers every external reference (DTD, entity, parameter entity) with nothing, so lxml's
    default loader never opens a file or a URL, and remembers that one was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = False

    # Untyped like lxml itself (no stubs): the arguments are whatever lxml passes.
    def resolve(self, system_url, public_id, context):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN201
        self.asked = True
        return self.resolve_string("", context)


def _parser(resolver: _RefuseExternal, **options: object) -> etree.XMLParser:
    # A fresh parser per call keeps this safe to use from several threads.
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
        **options,
    )
    parser.resolvers.add(resolver)
    return parser


def _dtd_refused(what: str, root: str | None) -> ParseError:
    page = " (it is an HTML page: is the URL right?)" if (root or "").lower() == "html" else ""
    return ParseError(f"{what} has a DOCTYPE declaration; refused (no DTD, entity or external reference is "
                      f"accepted){page}")


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, what: str = "document") -> etree._Element:
    """Parse ``data`` into its root element, or raise a specific :class:`ParseError`
    (:class:`DamagedResponseError` when the document was cut short or garbled after a good start)."""
    if not data or data.isspace():  # isspace stops at the first other byte; strip() would copy it all
        raise DamagedResponseError(f"{what} is empty")
    if len(data) > max_bytes:
        raise ParseError(f"{what} is {len(data)} bytes, over the {max_bytes}-byte limit")
    resolver = _RefuseExternal()
    try:
        try:
            root = etree.fromstring(data, _parser(resolver))
        except etree.XMLSyntaxError as exc:
            repaired = _nbsp_in_tags_to_spaces(data)
            if repaired is None:
                raise _diagnose(data, exc, what) from None
            try:
                root = etree.fromstring(repaired, _parser(resolver))
            except etree.XMLSyntaxError as again:
                raise _diagnose(repaired, again, what) from None
    except (ValueError, LookupError) as exc:  # e.g. unknown encoding in the declaration
        raise ParseError(f"{what} cannot be decoded: {exc}") from None
    if root is None:
        raise ParseError(f"{what} has no root element")
    info = root.getroottree().docinfo
    if resolver.asked or info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise _dtd_refused(what, local_name(root.tag))
    return root


class _Probe:
    """A parser target that builds nothing: notes whether a DOCTYPE and a root element were seen."""

    def __init__(self) -> None:
        self.saw_doctype = False
        self.root: str | None = None  # the root element's local name, once it began

    def doctype(self, *_: object) -> None:
        self.saw_doctype = True

    def start(self, tag: object, *_: object) -> None:
        if self.root is None:
            self.root = local_name(tag)

    def end(self, *_: object) -> None:
        pass

    def data(self, *_: object) -> None:
        pass

    def comment(self, *_: object) -> None:
        pass

    def pi(self, *_: object) -> None:
        pass

    def close(self) -> None:
        return None


#: libxml2's XML_ERR_UNDECLARED_ENTITY.
_UNDECLARED_ENTITY = 26


def _diagnose(data: bytes, exc: etree.XMLSyntaxError, what: str) -> ParseError:
    """Why ``data`` did not parse (``exc``): fed to a parser that builds no tree, a document whose
    every byte is accepted and only the end is missing was cut short; one that goes wrong after
    its root element began was garbled on the way (both :class:`DamagedResponseError`); one with a
    DOCTYPE, an HTML page, or one that is not XML from its first bytes is refused for good
    (:class:`ParseError`)."""
    probe, resolver = _Probe(), _RefuseExternal()
    parser = _parser(resolver, target=probe)
    cut_short = False
    try:
        parser.feed(data)
    except etree.XMLSyntaxError:
        pass
    except (ValueError, LookupError) as error:
        return ParseError(f"{what} cannot be decoded: {error}")
    else:
        try:
            parser.close()
        except etree.XMLSyntaxError:
            cut_short = True
    if probe.saw_doctype or resolver.asked:
        return _dtd_refused(what, probe.root)
    if exc.code == _UNDECLARED_ENTITY:  # no DTD declares it: the same every time it is asked
        return ParseError(f"{what} refers to an undeclared entity (not well-formed XML: {exc})")
    if probe.root is not None and probe.root.lower() == "html":  # an error or login page: the URL is wrong
        return ParseError(f"{what} is an HTML page, not an XML answer (not well-formed XML: {exc}): {_head(data)}")
    if cut_short:
        return DamagedResponseError(f"{what} is cut short (not well-formed XML: {exc})")
    if probe.root is not None:
        return DamagedResponseError(f"{what} is not well-formed XML: {exc}")
    return ParseError(f"{what} is not XML from its first bytes (not well-formed XML: {exc}): {_head(data)}")


def _head(data: bytes) -> str:
    """The first bytes of a document, printable, for an error message."""
    text = data[:60].decode("utf-8", "replace")
    return repr(text + ("..." if len(data) > 60 else ""))


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
