"""What a response means: one pure function from (HTTP status, headers, body) to an outcome.

Decisions are made on HTTP status, ``exceptionID`` and ``gsbStatus`` only, never on the English
``reason`` (its wording changes between releases and sites answer in their own language); the
one exception is reading the number out of 000053's "must be less than {n}", which no other field
carries (in any language; when no number can be read the client halves its batches).

Order matters and is deliberate: an endpoint we may not talk to first (a redirect, which is never
followed because every request carries credentials, or a certificate that fails verification),
then auth failures (a retry can lock the account), then throttling (backing off is always safe),
then the backup-site pause (a backup may answer with stale or partial data, even SUCCESS or "no
record found"), then the rest.  An answer that can never be read (not XML, a DTD, over the size
limit) fails the window at once; one damaged on its way (cut short) is resent.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from ..errors import DamagedResponseError, EndpointError, ParseError
from ..model import webex_codes
from .backoff import parse_retry_after
from .protocol import BodyResponse

__all__ = ["Outcome", "Verdict", "CodeTable", "DEFAULT_CODES", "classify", "body_content_limit", "redirect_target"]


class Outcome(enum.Enum):
    """What the caller does next."""

    OK = "ok"  # use the body
    EMPTY = "empty"  # 000015: an empty list, not an error
    THROTTLED = "throttled"  # cool the API group down for ``delay``, then resend
    RETRY = "retry"  # transient: resend after backoff (bounded by max_attempts)
    PAUSE = "pause"  # the site runs on its backup: pause the site ``delay``, then resend
    REAUTH = "reauth"  # the session ticket expired: re-authenticate once, then resend
    AUTH_FATAL = "auth_fatal"  # credentials refused: stop the site, never retry
    ENDPOINT_FATAL = "endpoint_fatal"  # a redirect or a failed certificate check: stop the site, never retry
    BODYCONTENT_LIMIT = "bodycontent_limit"  # 000053: resend in batches of at most ``limit``
    RETIRED = "retired"  # the site no longer serves this operation: skip the dataset
    WINDOW_FATAL = "window_fatal"  # any other failure: fail the window with code and reason
    UNREADABLE = "unreadable"  # an answer that can never be read (not XML, DTD, too large): fail the window, no retry


@dataclass(frozen=True, slots=True)
class Verdict:
    """An outcome with what it needs: the code (exceptionID or ``http503``, ``transport``,
    ``tls``, ``parse``), the server's reason, a delay (cool-down, pause, Retry-After), the 000053
    limit, ``cause``, a short label for metrics, and ``retry_after``: the wait the server itself
    asked for (its ``Retry-After``, whatever the outcome; None without one)."""

    outcome: Outcome
    code: str = ""
    reason: str = ""
    delay: float | None = None
    limit: int | None = None
    cause: str = ""
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class CodeTable:
    """Which exceptionIDs mean what; a site whose server uses other codes extends these sets."""

    empty: frozenset[str] = frozenset({webex_codes.NO_RECORDS})
    throttled: frozenset[str] = frozenset({webex_codes.RATE_LIMITED})
    body_content_limit: frozenset[str] = frozenset({webex_codes.BODY_CONTENT_LIMIT})
    ticket_expired: frozenset[str] = frozenset({webex_codes.TICKET_EXPIRED})
    auth: frozenset[str] = field(default_factory=lambda: webex_codes.AUTH_CODES)
    retired: frozenset[str] = frozenset({webex_codes.OPERATION_RETIRED})

    def with_retired(self, codes: tuple[str, ...]) -> CodeTable:
        """This table, with ``codes`` also meaning "operation retired" (a site's config)."""
        return CodeTable(self.empty, self.throttled, self.body_content_limit, self.ticket_expired, self.auth,
                         self.retired | frozenset(codes)) if codes else self


DEFAULT_CODES = CodeTable()

_LESS_THAN = re.compile(r"less\s+than\s+(\d+)", re.IGNORECASE)
_NUMBER = re.compile(r"\d+")


def classify(
    status: int | None,
    headers: Mapping[str, str] | None,
    body: BodyResponse | BaseException | None,
    *,
    cooldown_seconds: float = 60.0,
    gsb_pause_seconds: float = 300.0,
    codes: CodeTable = DEFAULT_CODES,
    now: datetime | None = None,
) -> Verdict:
    """Classify one body's answer.

    ``status`` is the HTTP status (``None`` when no response arrived); ``body`` is the parsed
    :class:`BodyResponse`, or the exception that prevented one (transport failure, unreadable
    XML), or ``None`` when there was nothing to parse.  ``now`` is only used to read an
    HTTP-date ``Retry-After``.
    """
    retry_after = parse_retry_after((headers or {}).get("Retry-After"), now=now)
    if status is None:
        if isinstance(body, EndpointError):  # certificate or hostname verification failed
            return Verdict(Outcome.ENDPOINT_FATAL, code="tls", reason=str(body), cause="tls")
        reason = (str(body) or type(body).__name__) if isinstance(body, BaseException) else "no response"
        return Verdict(Outcome.RETRY, code="transport", reason=reason, cause="transport")
    if 300 <= status < 400:
        # Never followed: the request carries the password or ticket, and another host's answer
        # would land as this site's data.  The URL is wrong; say where the server points.
        target = redirect_target((headers or {}).get("Location"))
        return Verdict(Outcome.ENDPOINT_FATAL, code=f"http{status}", reason=f"HTTP {status} redirect to {target}",
                       cause="redirect")
    if status in (403, 429):
        # 403 is how Webex throttles GetSessionInfo/GetUserCard (seeds); 429 is HTTP's own.
        return Verdict(Outcome.THROTTLED, code=f"http{status}", delay=_cooldown(retry_after, cooldown_seconds),
                       cause=f"http{status}", retry_after=retry_after)
    if status == 401:
        return Verdict(Outcome.AUTH_FATAL, code="http401", reason="HTTP 401 Unauthorized", cause="auth")
    if status >= 500 or status == 408:
        return Verdict(Outcome.RETRY, code=f"http{status}", delay=retry_after, cause=f"http{status}",
                       retry_after=retry_after)
    if not 200 <= status < 300:
        return Verdict(Outcome.WINDOW_FATAL, code=f"http{status}", reason=f"unexpected HTTP status {status}",
                       cause=f"http{status}")
    if isinstance(body, DamagedResponseError) or (isinstance(body, BaseException) and not isinstance(body, ParseError)):
        return Verdict(Outcome.RETRY, code="parse", reason=str(body)[:300], cause="malformed")
    if isinstance(body, BaseException):  # a ParseError: the same bytes would come back
        return Verdict(Outcome.UNREADABLE, code="parse", reason=str(body)[:300], cause="unreadable")
    if body is None or body.result not in ("SUCCESS", "FAILURE"):
        return Verdict(Outcome.RETRY, code="parse", reason="response without SUCCESS/FAILURE result", cause="malformed")

    code = body.exception_id
    failed = body.result == "FAILURE"
    if failed and code in codes.ticket_expired:
        return Verdict(Outcome.REAUTH, code=code, reason=body.reason, cause="ticket_expired")
    if failed and code in codes.auth:
        return Verdict(Outcome.AUTH_FATAL, code=code, reason=body.reason, cause="auth")
    if failed and code in codes.throttled:
        return Verdict(Outcome.THROTTLED, code=code, reason=body.reason,
                       delay=_cooldown(retry_after, cooldown_seconds), cause=code, retry_after=retry_after)
    if body.gsb_status.upper() == "BACKUP":
        return Verdict(Outcome.PAUSE, code=code or "gsb_backup", reason=body.reason, delay=gsb_pause_seconds,
                       cause="gsb_backup")
    if not failed:
        return Verdict(Outcome.OK)
    if code in codes.empty:
        return Verdict(Outcome.EMPTY, code=code, reason=body.reason)
    if code in codes.retired:
        return Verdict(Outcome.RETIRED, code=code, reason=body.reason, cause="retired")
    if code in codes.body_content_limit:
        # The only place the reason text is read: the limit is in no other field.
        limit = body_content_limit(body.reason)
        return Verdict(Outcome.BODYCONTENT_LIMIT, code=code, reason=body.reason, limit=limit, cause="bodycontent_limit")
    return Verdict(Outcome.WINDOW_FATAL, code=code, reason=body.reason, cause="api_error")


def body_content_limit(reason: str) -> int | None:
    """The most bodyContent a request may carry, read from a 000053 reason in any language:
    "BodyContent count in request must be less than 11" and the zh-TW
    "請求中的 BodyContent 計數必須小於 11" both give 10.  The English "less than {n}" wins; else
    the reason's only number; else (none, or several) None: the caller halves its batches."""
    match = _LESS_THAN.search(reason or "")
    numbers = [match.group(1)] if match else _NUMBER.findall(reason or "")
    if len(numbers) != 1:
        return None
    value = int(numbers[0])  # \d matches any script's digits; int() reads them
    return value - 1 if value > 1 else None


def redirect_target(location: str | None) -> str:
    """Where a redirect points, fit for an error message: the ``Location`` without userinfo,
    query or fragment (either may carry a credential)."""
    if not location or not location.strip():
        return "(no Location header)"
    parts = urlsplit(location.strip())
    host = parts.netloc.rpartition("@")[2]  # drop user:password@
    target = f"{parts.scheme}://{host}{parts.path}" if parts.scheme or host else parts.path
    return target or "(an empty Location)"


def _cooldown(retry_after: float | None, configured: float) -> float:
    """The server's ``Retry-After`` when it sent one, else the configured cool-down."""
    return retry_after if retry_after is not None else configured
