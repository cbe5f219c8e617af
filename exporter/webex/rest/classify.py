"""What a REST answer means: one pure function from (HTTP status, headers, body bytes) to a verdict.

The REST twin of :mod:`exporter.webex.classify`; the same policy in HTTP terms
(``../shared/webex-rest-api.md`` §3):

=================  ======================================================================
outcome            answers and what the client does
=================  ======================================================================
``ok``             2xx with a JSON object holding an ``items`` list: use it
``throttled``      429, 423: block the site's REST budget for ``Retry-After`` (seconds or an
                   HTTP-date; our cool-down when missing), then resend
``hold``           a ``Retry-After`` above ``max_retry_after_seconds``: stop the site for this run
``retry``          500, 502, 503, 504, 408, resets, timeouts, JSON cut short or garbled after a good
                   start: backoff with jitter, resend (bounded); 504 also suggests halving ``max``
``expired``        401: refresh the access token once, resend; a second 401 is auth-fatal
``forbidden``      403: the token lacks a scope or its user a role: stop the site, with Webex's message
``bad_request``    400 (and other 4xx a resend will not change): the window fails with Webex's
                   message, not retried
``not_found``      404: on a listing endpoint, the endpoint is unavailable (like 410); on one id of
                   a fan-out, that id has nothing to list
``gone``           410 (and 501): the endpoint is retired: the dataset is unavailable
``endpoint``       3xx (never followed: the request carries the bearer token), 451 (another region),
                   a certificate that fails verification: stop the site
``unreadable``     not JSON from its first byte, over the size limit, a 2xx without ``items``: fail
                   the window at once (asking again gets the same)
=================  ======================================================================

Every verdict carries Webex's own words (``message``, ``errors[].description``) and its
``trackingId`` (body or ``TrackingID`` header): support asks for it.  Server text is cut to a few
hundred characters; the client scrubs our secrets from it before it reaches an error or a log.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...errors import DamagedResponseError, EndpointError, ParseError
from ..backoff import parse_retry_after
from ..classify import redirect_target

__all__ = ["RawReply", "RestOutcome", "RestVerdict", "classify_rest", "error_details", "decode_json", "MAX_TEXT"]

#: Most characters of server text repeated in a verdict.
MAX_TEXT = 300


@dataclass(frozen=True, slots=True)
class RawReply:
    """One HTTP exchange as the client saw it: the status (None: no answer), the headers, the
    body bytes (or the error that kept us from reading them), and the URL asked."""

    status: int | None
    headers: Mapping[str, str]
    body: bytes | BaseException | None
    url: str = ""


class RestOutcome(enum.Enum):
    """What the client does next (see the module docstring)."""

    OK = "ok"
    THROTTLED = "throttled"
    HOLD = "hold"
    RETRY = "retry"
    EXPIRED = "expired"
    FORBIDDEN = "forbidden"
    BAD_REQUEST = "bad_request"
    NOT_FOUND = "not_found"
    GONE = "gone"
    ENDPOINT = "endpoint"
    UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class RestVerdict:
    """An outcome and what it needs.

    ``code`` is a short label (``http429``, ``transport``, ``tls``, ``json``) for errors and
    metrics; ``message`` Webex's words (or ours); ``delay`` the wait before a resend (throttle:
    Retry-After or the cool-down; retry: Retry-After or None for backoff); ``retry_after`` what
    the server itself asked for; ``halve_page`` suggests a smaller ``max`` (504); ``document``
    the parsed JSON of an ``ok`` answer."""

    outcome: RestOutcome
    status: int | None = None
    code: str = ""
    message: str = ""
    tracking_id: str = ""
    delay: float | None = None
    retry_after: float | None = None
    halve_page: bool = False
    document: Any = None

    def describe(self) -> str:
        """``http400: <message> (trackingId X)``: fit for an error text."""
        text = self.code + (f": {self.message}" if self.message else "")
        return text + (f" (trackingId {self.tracking_id})" if self.tracking_id else "")


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None and not hasattr(headers, "getall"):  # a plain dict: look case-insensitively
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def decode_json(body: bytes) -> tuple[str, Any]:
    """``("ok", document)``, ``("damaged", reason)`` (JSON cut short or garbled after a good start:
    worth asking again) or ``("unreadable", reason)`` (not JSON from its first byte)."""
    text = body.lstrip()
    if not text:
        return "damaged", "empty answer"
    if text[:1] not in (b"{", b"["):
        return "unreadable", f"not JSON (starts with {text[:20]!r})"
    try:
        return "ok", json.loads(body)
    except RecursionError:
        return "unreadable", "JSON nested too deeply"
    except UnicodeDecodeError as exc:
        return "damaged", f"JSON is not valid UTF-8 ({exc.reason} at byte {exc.start})"
    except json.JSONDecodeError as exc:
        where = "cut short" if exc.pos >= len(body.rstrip()) else "garbled"
        return "damaged", f"JSON {where} at byte {exc.pos} of {len(body)} ({exc.msg})"


def error_details(body: bytes | None, headers: Mapping[str, str] | None = None) -> tuple[str, str]:
    """Webex's error text and trackingId from an error answer (``{"message": .., "errors":
    [{"description": ..}], "trackingId": ..}``, or OAuth's ``error``/``error_description``);
    the ``TrackingID`` header when the body has none.  Empty strings when there are none."""
    message, tracking = "", ""
    document: Any = None
    if body:
        status, document = decode_json(body)
        if status != "ok":
            document = None
            text = body[:MAX_TEXT].decode("utf-8", "replace")
            if text.strip() and not text.lstrip().startswith("<"):  # not an HTML error page
                message = _clip(text)
    if isinstance(document, dict):
        parts: list[str] = []
        for key in ("message", "error_description", "error"):
            value = document.get(key)
            if isinstance(value, str) and value.strip() and value not in parts:
                parts.append(value.strip())
        errors = document.get("errors")
        if isinstance(errors, list):
            for error in errors[:5]:
                described = error.get("description") if isinstance(error, dict) else None
                if isinstance(described, str) and described.strip() and described.strip() not in parts:
                    parts.append(described.strip())
        message = _clip("; ".join(parts))
        value = document.get("trackingId") or document.get("trackingID")
        if isinstance(value, str):
            tracking = _clip(value)
    if not tracking:
        tracking = _clip(_header(headers, "TrackingID") or _header(headers, "trackingId") or "")
    return message, tracking


def classify_rest(
    status: int | None,
    headers: Mapping[str, str] | None,
    body: bytes | BaseException | None,
    *,
    cooldown_seconds: float = 60.0,
    max_retry_after_seconds: float = 900.0,
    expect_items: bool = True,
    now: datetime | None = None,
) -> RestVerdict:
    """Classify one REST answer.

    ``status`` is None when no answer arrived (``body`` is then the error that prevented one: a
    :class:`~exporter.errors.CertificateError`, a ``TransportError``); ``body`` is the bytes read,
    or a :class:`~exporter.errors.ParseError` when they were over the size limit, or a
    :class:`~exporter.errors.DamagedResponseError` when the connection broke while reading.
    ``expect_items``: a 2xx must be a JSON object with an ``items`` list (a listing page).
    ``now`` is only used to read an HTTP-date ``Retry-After``."""
    if status is None:
        if isinstance(body, EndpointError):
            return RestVerdict(RestOutcome.ENDPOINT, code="tls", message=_clip(str(body)))
        reason = (str(body) or type(body).__name__) if isinstance(body, BaseException) else "no response"
        return RestVerdict(RestOutcome.RETRY, code="transport", message=_clip(reason))
    code = f"http{status}"
    raw = body if isinstance(body, bytes) else None
    if 300 <= status < 400:
        target = redirect_target(_header(headers, "Location"))
        return RestVerdict(RestOutcome.ENDPOINT, status, code, f"HTTP {status} redirect to {target}")
    if 200 <= status < 300:
        return _success(status, body, expect_items)
    retry_after = parse_retry_after(_header(headers, "Retry-After"), now=now)
    message, tracking = error_details(raw, headers)
    if status in (429, 423):
        if retry_after is not None and retry_after > max_retry_after_seconds:
            return RestVerdict(RestOutcome.HOLD, status, code, message, tracking, delay=retry_after,
                               retry_after=retry_after)
        delay = retry_after if retry_after is not None else cooldown_seconds
        return RestVerdict(RestOutcome.THROTTLED, status, code, message, tracking, delay=delay,
                           retry_after=retry_after)
    if status == 401:
        return RestVerdict(RestOutcome.EXPIRED, status, code, message or "Unauthorized", tracking)
    if status == 403:
        return RestVerdict(RestOutcome.FORBIDDEN, status, code, message or "Forbidden", tracking)
    if status == 404:
        return RestVerdict(RestOutcome.NOT_FOUND, status, code, message or "Not Found", tracking)
    if status in (410, 501):
        return RestVerdict(RestOutcome.GONE, status, code, message or "Gone", tracking)
    if status == 451:
        return RestVerdict(RestOutcome.ENDPOINT, status, code, message or "Unavailable For Legal Reasons (region)",
                           tracking)
    if status == 408 or status >= 500:
        if retry_after is not None and retry_after > max_retry_after_seconds:
            return RestVerdict(RestOutcome.HOLD, status, code, message, tracking, delay=retry_after,
                               retry_after=retry_after)
        return RestVerdict(RestOutcome.RETRY, status, code, message, tracking, delay=retry_after,
                           retry_after=retry_after, halve_page=status == 504)
    if 400 <= status < 500:
        return RestVerdict(RestOutcome.BAD_REQUEST, status, code, message or f"HTTP {status}", tracking)
    return RestVerdict(RestOutcome.UNREADABLE, status, code, f"unexpected HTTP status {status}", tracking)


def _success(status: int, body: bytes | BaseException | None, expect_items: bool) -> RestVerdict:
    code = f"http{status}"
    if isinstance(body, DamagedResponseError) or (isinstance(body, BaseException) and not isinstance(body, ParseError)):
        return RestVerdict(RestOutcome.RETRY, status, "json", _clip(str(body)))
    if isinstance(body, BaseException):  # a ParseError: over the size limit, or similar
        return RestVerdict(RestOutcome.UNREADABLE, status, "json", _clip(str(body)))
    kind, value = decode_json(body or b"")
    if kind == "damaged":
        return RestVerdict(RestOutcome.RETRY, status, "json", value)
    if kind == "unreadable":
        return RestVerdict(RestOutcome.UNREADABLE, status, "json", value)
    if expect_items and not (isinstance(value, dict) and isinstance(value.get("items"), list)):
        shape = f"keys {sorted(value)[:8]}" if isinstance(value, dict) else type(value).__name__
        return RestVerdict(RestOutcome.UNREADABLE, status, "json", f"a {status} answer without an items list ({shape})")
    return RestVerdict(RestOutcome.OK, status, code, document=value)
