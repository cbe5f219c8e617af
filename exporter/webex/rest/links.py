"""Paging links: the ``Link`` header's ``rel="next"`` (RFC 8288, which obsoletes RFC 5988) and
the repairs Webex's next URLs need.  Pure functions over strings.

Webex pages every list with ``Link: <https://webexapis.com/v1/...&max=100&...>; rel="next"``
(``../shared/webex-rest-api.md`` §3).  The next URL is followed as it is, with three exceptions:

* it has carried an errant ``max=null`` (WebexPythonSDK issue #168): that pair is removed;
* it has dropped parameters of the first request (``siteUrl``, ``from``, ``to``, ``meetingId``,
  ...): every first-request parameter it lacks is added back, so a page never widens the listing
  (a dropped ``siteUrl`` would list the user's default site, a dropped ``from`` the last 7 days);
* it may point anywhere: a next URL to another scheme, host or port than the base URL is refused
  with :class:`~exporter.errors.ForeignLinkError`, because the request carries our bearer token.

The server's own pairs (a cursor, say) are kept byte for byte: the query is edited as raw
``&``-separated segments, never decoded and re-encoded (``+`` in a base64 cursor would turn into
a space).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote_plus, urljoin, urlsplit, urlunsplit

from ...errors import ForeignLinkError
from ..classify import redirect_target

__all__ = [
    "Link",
    "REPAIRED_PARAMS",
    "parse_link_header",
    "next_link",
    "repair_next_url",
    "check_same_origin",
    "same_origin",
]

#: The first-request parameters a next URL has been seen to lose (any first-request parameter it
#: lacks is added back; these are the ones the exporter sends).
REPAIRED_PARAMS = ("siteUrl", "from", "to", "meetingId", "recordingId", "serviceType", "meetingType", "state",
                   "hostEmail", "max")
#: Values of ``max`` that are not a number the server wrote on purpose.
_NULL_MAX = frozenset({"null", "none", "undefined", ""})


@dataclass(frozen=True, slots=True)
class Link:
    """One link of a ``Link`` header: its target (as written) and its parameters (names lower-case;
    ``rels`` is the space-separated ``rel`` value, lower-cased)."""

    url: str
    params: tuple[tuple[str, str], ...] = ()

    @property
    def rels(self) -> frozenset[str]:
        """The relation types, lower-case (``rel="next last"`` has two)."""
        return frozenset(rel.lower() for name, value in self.params if name == "rel" for rel in value.split())


def parse_link_header(values: str | Iterable[str] | None) -> list[Link]:
    """Every link in one or several ``Link`` header values, in order.

    Tolerant: commas and semicolons inside ``<...>`` or inside a quoted parameter value are part
    of it; parameters may be quoted (with ``\\`` escapes) or bare tokens; a piece that is not a
    ``<uri>`` is skipped up to the next top-level comma."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    links: list[Link] = []
    for value in values:
        links.extend(_parse_one(value))
    return links


def _parse_one(text: str) -> list[Link]:
    links: list[Link] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n:
            break
        if text[i] != "<":
            i = _skip_to_comma(text, i)
            continue
        end = text.find(">", i + 1)
        if end < 0:
            break  # an unterminated <uri: nothing usable follows
        url = text[i + 1 : end].strip()
        i = end + 1
        params: list[tuple[str, str]] = []
        while i < n:
            while i < n and text[i] in " \t\r\n":
                i += 1
            if i >= n or text[i] == ",":
                break
            if text[i] != ";":
                i = _skip_to_comma(text, i)
                break
            i += 1
            while i < n and text[i] in " \t":
                i += 1
            start = i
            while i < n and text[i] not in "=;, \t":
                i += 1
            name = text[start:i].lower()
            while i < n and text[i] in " \t":
                i += 1
            value = ""
            if i < n and text[i] == "=":
                i += 1
                while i < n and text[i] in " \t":
                    i += 1
                if i < n and text[i] == '"':
                    value, i = _quoted(text, i)
                else:
                    start = i
                    while i < n and text[i] not in ";,":
                        i += 1
                    value = text[start:i].strip()
            if name:
                params.append((name.rstrip("*"), value))
        links.append(Link(url, tuple(params)))
    return links


def _quoted(text: str, i: int) -> tuple[str, int]:
    """The quoted-string starting at ``text[i] == '"'``: its value and the index after it."""
    out: list[str] = []
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    return "".join(out), i  # unterminated: take what there is


def _skip_to_comma(text: str, i: int) -> int:
    """Index of the next top-level comma (outside ``<>`` and quotes) at or after ``i``."""
    quoted = angled = False
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif angled:
            angled = ch != ">"
        elif ch == '"':
            quoted = True
        elif ch == "<":
            angled = True
        elif ch == ",":
            return i
        i += 1
    return i


def next_link(values: str | Iterable[str] | None) -> str | None:
    """The target of the first ``rel="next"`` link (as written; maybe relative), or None."""
    for link in parse_link_header(values):
        if "next" in link.rels and link.url:
            return link.url
    return None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        return scheme, "", -1  # not a port: matches nothing
    if port is None:
        port = {"https": 443, "http": 80}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def same_origin(url: str, base_url: str) -> bool:
    """``url`` has the scheme, host and port of ``base_url`` (default ports filled in)."""
    mine = _origin(url)
    return bool(mine[1]) and mine == _origin(base_url)


def check_same_origin(url: str, base_url: str, *, what: str = "next link") -> None:
    """Raise :class:`ForeignLinkError` unless ``url`` is on ``base_url``'s scheme, host and port."""
    if not same_origin(url, base_url):
        scheme, host, port = _origin(base_url)
        raise ForeignLinkError(
            f"the server's {what} points to {redirect_target(url)}, not to {scheme}://{host}:{port}; not followed "
            "(the request carries the bearer token). The listing is stopped for this site."
        )


def _split_query(query: str) -> list[str]:
    return [segment for segment in query.split("&") if segment]


def _key_value(segment: str) -> tuple[str, str]:
    key, _, value = segment.partition("=")
    return unquote_plus(key), unquote_plus(value)


def repair_next_url(
    next_url: str,
    *,
    request_url: str,
    base_url: str,
    first_params: Mapping[str, str] | Sequence[tuple[str, str]],
) -> str:
    """The URL to ask for the next page: ``next_url`` resolved against ``request_url`` (the page
    that carried it), refused when off ``base_url``'s origin, without ``max=null``, and with every
    parameter of ``first_params`` (the listing's first request) it lacks added back.  Unchanged
    (byte for byte) when nothing needed repairing."""
    absolute = urljoin(request_url, next_url.strip())
    check_same_origin(absolute, base_url)
    parts = urlsplit(absolute)
    segments = _split_query(parts.query)
    kept = [s for s in segments if not (_key_value(s)[0] == "max" and _key_value(s)[1].strip().lower() in _NULL_MAX)]
    have = {_key_value(s)[0] for s in kept}
    pairs = first_params.items() if isinstance(first_params, Mapping) else first_params
    added = [f"{quote(k, safe='')}={quote(str(v), safe='')}" for k, v in pairs if k not in have]
    if not added and len(kept) == len(segments):
        return absolute
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept + added), parts.fragment))
