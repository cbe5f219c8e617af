"""Response XML, built as text: the shapes of the seed samples, fast enough for 500-record pages.

Every element is prefixed; the root declares ``serv``, ``com`` and the services the bodies use;
each ``serv:bodyContent`` declares ``xmlns:xsi`` itself and names its type; a FAILURE carries
``result, reason, gsbStatus, exceptionID`` and an empty ``<serv:bodyContent/>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from ...model.dataset_spec import Dataset
from .timefmt import WireZone

__all__ = ["NAMESPACES", "escape", "BodyXml", "success", "failure", "envelope", "RecordWriter", "list_content"]

NAMESPACES = {
    "serv": "http://www.webex.com/schemas/2002/06/service",
    "com": "http://www.webex.com/schemas/2002/06/common",
    "history": "http://www.webex.com/schemas/2002/06/service/history",
    "ep": "http://www.webex.com/schemas/2002/06/service/ep",
    "meet": "http://www.webex.com/schemas/2002/06/service/meeting",
    "use": "http://www.webex.com/schemas/2002/06/service/user",
    "site": "http://www.webex.com/schemas/2002/06/service/site",
}
_ROOT_ORDER = ("serv", "com", "history", "ep", "meet", "use", "site")
_XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


def escape(text: str) -> str:
    """XML text escaping (``&``, ``<``, ``>``)."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


@dataclass(frozen=True, slots=True)
class BodyXml:
    """One answered bodyContent: its header ``serv:response`` and its ``serv:bodyContent``."""

    ok: bool
    content: str  # the serv:bodyContent element
    prefixes: tuple[str, ...] = ()
    reason: str = ""
    exception_id: str = ""


def success(xsi_type: str, inner: str, prefixes: Iterable[str]) -> BodyXml:
    """A SUCCESS body of type ``xsi_type`` holding ``inner``."""
    return BodyXml(True, f'<serv:bodyContent {_XSI} xsi:type="{xsi_type}">{inner}</serv:bodyContent>',
                   tuple(prefixes))


def failure(exception_id: str, reason: str, prefixes: Iterable[str] = ()) -> BodyXml:
    """A FAILURE body."""
    return BodyXml(False, "<serv:bodyContent/>", tuple(prefixes), reason, exception_id)


def envelope(bodies: Sequence[BodyXml], *, gsb_status: str = "PRIMARY") -> str:
    """The whole response document (without the XML declaration)."""
    used = {"serv", "com"}
    for body in bodies:
        used.update(body.prefixes)
    declared = " ".join(f'xmlns:{p}="{NAMESPACES[p]}"' for p in _ROOT_ORDER if p in used)
    header = []
    for body in bodies:
        if body.ok:
            header.append(f"<serv:response><serv:result>SUCCESS</serv:result>"
                          f"<serv:gsbStatus>{gsb_status}</serv:gsbStatus></serv:response>")
        else:
            header.append(f"<serv:response><serv:result>FAILURE</serv:result><serv:reason>{escape(body.reason)}"
                          f"</serv:reason><serv:gsbStatus>{gsb_status}</serv:gsbStatus>"
                          f"<serv:exceptionID>{body.exception_id}</serv:exceptionID></serv:response>")
    return (f"<serv:message {declared}>\n<serv:header>{''.join(header)}</serv:header>\n"
            f"<serv:body>{''.join(b.content for b in bodies)}</serv:body>\n</serv:message>\n")


_EXPRESSIONS = {"str": "esc(v)", "timestamp": "fmt(v, unpadded)", "bool": "('true' if v else 'false')",
                "int": "str(v)", "float": "str(v)"}


#: A compiled record writer: (values, format a timestamp, unpadded, capital MeetingUUID, extras) -> XML.
_Write = Callable[[Sequence[Any], Callable[[int, bool], str], bool, bool, dict[str, str] | None], str]


class RecordWriter:
    """Writes one dataset's records: nested parents, repeated JSON groups, drift, unpadded dates.

    The column plan is compiled once into straight-line Python (one ``if`` per column, tags as
    constants), because rendering 500-record pages is the simulator's hot path.  The generated
    source only ever contains element names from the dataset registry.
    """

    def __init__(self, dataset: Dataset, prefix: str) -> None:
        self.prefix = prefix
        grouped: list[tuple[str | None, list[tuple[int, str, str]]]] = []
        for i, column in enumerate(dataset.columns):
            if grouped and column.parent and grouped[-1][0] == column.parent:
                grouped[-1][1].append((i, column.element, column.type))
            else:
                grouped.append((column.parent, [(i, column.element, column.type)]))
        self._write = self._compile(dataset, grouped)

    def _tags(self, element: str) -> tuple[str, str]:
        return f"<{self.prefix}:{element}>", f"</{self.prefix}:{element}>"

    def _compile(self, dataset: Dataset, grouped: list[tuple[str | None, list[tuple[int, str, str]]]]) -> _Write:
        record_open, record_close = self._tags(dataset.record_element)
        src = ["def write(values, fmt, unpadded, capital, extra):", f"    out = [{record_open!r}]", "    a = out.append"]
        for n, (parent, columns) in enumerate(grouped):
            target = "a"
            if parent is not None:
                src += ["    sub = []", "    b = sub.append"]
                target = "b"
            for i, element, type_ in columns:
                o, c = self._tags(element)
                src += [f"    v = values[{i}]", "    if v is not None:"]
                if type_ == "json":
                    src.append(f"        {target}(json_text(v, {o!r}, {c!r}))")
                    continue
                expr = _EXPRESSIONS[type_]
                if element == "meetingUUID":
                    co, cc = self._tags("MeetingUUID")
                    src.append(f"        {target}(({co!r} + {expr} + {cc!r}) if capital else ({o!r} + {expr} + {c!r}))")
                else:
                    src.append(f"        {target}({o!r} + {expr} + {c!r})")
            if parent is not None:
                po, pc = self._tags(parent)
                src.append(f"    if sub: a({po!r} + ''.join(sub) + {pc!r})")
            if n == 0:
                # Unknown elements early in the record, where a strict parser would trip over them.
                src.append("    if extra: a(extra_text(extra))")
        src += [f"    a({record_close!r})", "    return ''.join(out)"]
        namespace: dict[str, Any] = {"esc": escape, "json_text": self._json, "extra_text": self._extra}
        exec(compile("\n".join(src), f"<record writer {dataset.name}>", "exec"), namespace)
        write: _Write = namespace["write"]
        return write

    def _json(self, items: list[dict[str, Any]], open_: str, close: str) -> str:
        p = self.prefix
        return "".join(open_ + "".join(f"<{p}:{k}>{escape(str(v))}</{p}:{k}>" for k, v in item.items()) + close
                       for item in items)

    def _extra(self, extra: dict[str, str]) -> str:
        p = self.prefix
        return "".join(f"<{p}:{k}>{escape(v)}</{p}:{k}>" for k, v in extra.items())

    def write(self, values: Sequence[Any], zone: WireZone, *, unpadded: bool = False,
              extra: dict[str, str] | None = None, capital_uuid: bool = False) -> str:
        """One record element (``None`` values are left out, as the service omits them)."""
        return self._write(values, zone.format, unpadded, capital_uuid, extra)


def list_content(prefix: str, records: Sequence[str], *, total: int, start_from: int,
                 matching_first: bool) -> str:
    """The inside of a list response: records and ``matchingRecords`` (first or last)."""
    matching = (f"<{prefix}:matchingRecords><serv:total>{total}</serv:total><serv:returned>{len(records)}"
                f"</serv:returned><serv:startFrom>{start_from}</serv:startFrom></{prefix}:matchingRecords>")
    body = "\n".join(records)
    return f"{matching}\n{body}" if matching_first else f"{body}\n{matching}"
