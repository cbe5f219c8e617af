"""One exception tree for the whole exporter, grouped by what the caller does.

    ExporterError                      root: anything the exporter raises on purpose
    ├── ConfigError                    bad configuration; fix the file, nothing to retry
    ├── RetryableError                 try the same request again after a pause
    │   ├── TransportError             connection reset, timeout, truncated body, HTTP 5xx, other TLS failures
    │   └── ThrottledError             000045, HTTP 403/429: cool down (>= 60 s or Retry-After)
    ├── SitePausedError                pause the whole site for a while; stop it for this run
    │   └── RetryAfterTooLongError     the server asked for a wait above max_retry_after_seconds
    ├── FatalSiteError                 stop this site now, never retry (retries lock accounts)
    │   ├── SiteUnreachableError       the site's first request of the run got no answer at all
    │   ├── AuthError                  bad credentials, expired/invalid ticket or token
    │   │   ├── PrivilegeError         signed in, but not as a site admin (history would be partial)
    │   │   │   └── MissingScopeError  REST: the token lacks scopes (or a 403): names datasets and scopes
    │   │   └── ReauthorizeError       REST: no stored tokens, or the refresh token was refused or
    │   │                              expired: run ``webex-exporter auth --site X``
    │   ├── EndpointError              the URL does not lead to a Webex we may send credentials to
    │   │   ├── RedirectError          a 3xx answer (never followed: the request carries credentials)
    │   │   ├── CertificateError       TLS certificate or hostname verification failed
    │   │   └── ForeignLinkError       REST: a next link to another scheme/host/port (the bearer token
    │   │                              would go there)
    │   └── TokenStoreError            REST: the token file cannot be read, written or locked safely
    ├── OperationRetiredError          the site no longer serves this operation (REST: 404/410 on the
    │                                  endpoint): skip the dataset
    ├── WindowFailedError              give up on this time window; record it and retry next run
    │   ├── ApiError                   any other FAILURE exceptionID (carries code and reason)
    │   │   └── RestRequestError       REST: HTTP 400 (or another 4xx): Webex's message and trackingId
    │   ├── BodyContentLimitError      000053: too many bodyContent elements (carries the limit)
    │   ├── IncompleteListingError     distinct records != total, or the listing moved too often
    │   └── WindowRangeError           REST: a window longer than the listing allows, or older than
    │                                  its reach (the plan is wrong; asking would be refused)
    ├── ParseError                     an answer that can never be read: not XML from its first bytes,
    │   │                              a DTD, over the size limit (before or after decompression), not a
    │   │                              Webex message; fail the window at once (asking again gets the same)
    │   └── DamagedResponseError       cut short, or garbled after a good start: resent like a
    │                                  TransportError (which it becomes once max_attempts is used up)
    └── WarehouseError                 landing or catalog failure; committed data stays intact

Every error can say whom it happened to: ``site``, ``dataset`` and ``window`` (all optional,
keyword-only on the root's constructor, None when unknown).  They are not filled at each
``raise``: the run attaches them once, at the boundary where they are known
(:meth:`ExporterError.add_context`, which fills only what is still unset and returns the same
exception, so ``raise exc.add_context(site=...)`` keeps its type, args and traceback): where one
site's run stops (``run/pipeline.py``), where a dataset's run catches (``run/dataset_run.py``) and
where a window's listing fails (``run/window_fetch.py``, ``run/landing.py``, ``run/rest_export.py``).
:attr:`ExporterError.context` gives the set fields as strings (for log fields and the runs and
failures records); the CLI prints the ones a message does not already mention.  The context holds
names and bounds only, never credentials.  The batcher gives each caller of a shared request its
own instance, but one exception can still fail several windows (a packed listing): the first
boundary's window stays on it, so a window's own boundary logs and records its own window, not
``exc.window``.

The exit code comes from the type alone (``app/cli/boundary.py``), never from the message.

Foreign exceptions (aiohttp, asyncio, lxml, duckdb, pyarrow) are translated into these at one
boundary per layer: ``client.py`` for the network, ``xmlsafe.py`` for XML, ``lake.py`` and
``catalog.py`` for storage; ``rest/client.py`` for the REST source's network.  Nothing here
imports from the rest of the package.

REST answers reuse the XML types where the caller does the same thing: ``TransportError`` (5xx,
resets, timeouts), ``ThrottledError`` (429, 423), ``RetryAfterTooLongError``, ``RedirectError``,
``CertificateError``, ``ParseError`` (not JSON, too large) and ``DamagedResponseError`` (JSON cut
short), ``OperationRetiredError`` (404/410 on an endpoint).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, Self

__all__ = [
    "ApiError",
    "AuthError",
    "BodyContentLimitError",
    "CertificateError",
    "ConfigError",
    "DamagedResponseError",
    "EndpointError",
    "ExporterError",
    "FatalSiteError",
    "ForeignLinkError",
    "IncompleteListingError",
    "MissingScopeError",
    "OperationRetiredError",
    "ParseError",
    "PrivilegeError",
    "ReauthorizeError",
    "RedirectError",
    "RestRequestError",
    "RetryAfterTooLongError",
    "RetryableError",
    "SitePausedError",
    "SiteUnreachableError",
    "ThrottledError",
    "TokenStoreError",
    "TransportError",
    "WarehouseError",
    "WindowFailedError",
    "WindowRangeError",
    "WindowBounds",
]


class WindowBounds(Protocol):
    """What an error's context needs of a window: a ``model.windows.Window`` (not imported: nothing
    here imports from the rest of the package), shown by ``str()`` as ``[start, end)``."""

    @property
    def start(self) -> datetime:
        """Inclusive start (UTC)."""
        ...

    @property
    def end(self) -> datetime:
        """Exclusive end (UTC)."""
        ...


class ExporterError(Exception):
    """Root of every error the exporter raises on purpose.

    ``site``, ``dataset`` and ``window`` say whom it happened to (None: not known, or not attached
    yet); see :meth:`add_context`.  Class attributes as well, so that a subclass whose constructor
    does not pass them on still has them."""

    site: str | None = None
    dataset: str | None = None
    window: WindowBounds | None = None

    def __init__(
        self, *args: object, site: str | None = None, dataset: str | None = None, window: WindowBounds | None = None
    ) -> None:
        super().__init__(*args)
        self.site = site
        self.dataset = dataset
        self.window = window

    def add_context(
        self, *, site: str | None = None, dataset: str | None = None, window: WindowBounds | None = None
    ) -> Self:
        """Fill whichever of ``site``, ``dataset``, ``window`` is still unset (an inner boundary
        knew better) and return this same exception: ``raise exc.add_context(site=name)``."""
        if self.site is None:
            self.site = site
        if self.dataset is None:
            self.dataset = dataset
        if self.window is None:
            self.window = window
        return self

    @property
    def context(self) -> dict[str, str]:
        """The set context fields, ``site``, ``dataset``, ``window`` (as ``[start, end)``), in that
        order: log fields and record columns (``event(..., **exc.context)``)."""
        fields = {"site": self.site, "dataset": self.dataset,
                  "window": None if self.window is None else str(self.window)}
        return {key: value for key, value in fields.items() if value is not None}

    def where(self) -> str:
        """The context its message does not already mention, for a one-line report
        (``"site demo, dataset meeting_usage"``); empty when there is none."""
        message = str(self)
        return ", ".join(f"{key} {value}" for key, value in self.context.items() if value not in message)


class ConfigError(ExporterError):
    """The configuration is invalid; ``problems`` lists every problem found, each naming its key."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            super().__init__(self.problems[0])
        else:
            super().__init__(f"{len(self.problems)} configuration problems:\n  " + "\n  ".join(self.problems))


class RetryableError(ExporterError):
    """The same request may succeed if sent again after ``delay`` seconds (None: use backoff)."""

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class TransportError(RetryableError):
    """Connection reset, timeout, truncated or unreadable body, HTTP 5xx."""


class ThrottledError(RetryableError):
    """The server throttled us (000045, HTTP 403 or 429); ``delay`` is the cool-down."""

    def __init__(self, message: str, *, delay: float, cause: str) -> None:
        super().__init__(message, delay=delay)
        self.cause = cause  # "000045", "http403", "http429": metrics label


class SitePausedError(ExporterError):
    """The site answers from its backup (GSB BACKUP): pause it for ``delay`` seconds."""

    def __init__(self, message: str, *, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


class RetryAfterTooLongError(SitePausedError):
    """The server asked us (``Retry-After``) to wait ``delay`` seconds, more than
    ``throttle.max_retry_after_seconds``: the site is stopped for this run instead of sleeping,
    and the client sends nothing to it until that time has passed."""


class FatalSiteError(ExporterError):
    """Stop all work on this site now and report it; never retried automatically."""


class SiteUnreachableError(FatalSiteError):
    """The site's first request of a run got no answer after all its attempts: stop the site."""


class AuthError(FatalSiteError):
    """Credentials were refused; retrying could lock the account."""


class PrivilegeError(AuthError):
    """The account signs in but is not a site administrator: Webex would list only its own
    sessions, silently.  Refused unless the site's config opts in (``allow_non_admin``)."""


class MissingScopeError(PrivilegeError):
    """The REST token was granted without scopes the configured datasets need (or the server
    answered 403 for missing scope or role).  ``missing`` maps dataset -> the scopes it lacks."""

    def __init__(self, message: str, *, missing: dict[str, tuple[str, ...]] | None = None) -> None:
        super().__init__(message)
        self.missing = dict(missing or {})


class ReauthorizeError(AuthError):
    """The REST integration must be authorized again: no stored tokens, or the token endpoint
    refused the refresh token (``invalid_grant``: expired, revoked, or the authorizing user left).
    The message says how (``webex-exporter auth --site X``); it never holds a token."""


class TokenStoreError(FatalSiteError):
    """The site's token file cannot be read, written, synced or locked safely.  Never retried:
    a rotated refresh token that is not on disk would lock the exporter out."""


class EndpointError(FatalSiteError):
    """The site's URL does not lead to a Webex server we may send credentials to; fix the URL
    (or the trust store).  One attempt, never retried."""


class RedirectError(EndpointError):
    """The server answered 3xx.  Redirects are never followed (the request carries the password
    or ticket); the message names the target without its userinfo or query."""


class CertificateError(EndpointError):
    """TLS certificate or hostname verification failed: the server is not who the URL says."""


class ForeignLinkError(EndpointError):
    """A REST ``Link: rel="next"`` points to another scheme, host or port than the base URL: it
    is not followed (the request would carry our bearer token there); the message names the
    target without its userinfo or query."""


class OperationRetiredError(ExporterError):
    """The site answers that an operation is retired (the Meetings XML API's end of life): the
    dataset is skipped for this run, said once, and shown in ``status``; not a window failure."""

    def __init__(self, message: str, *, operation: str, exception_id: str) -> None:
        super().__init__(message)
        self.operation = operation
        self.exception_id = exception_id


class WindowFailedError(ExporterError):
    """This time window cannot be completed now; it is recorded as failed and retried next run."""


class ApiError(WindowFailedError):
    """A FAILURE response with an exceptionID we do not handle specially."""

    def __init__(self, exception_id: str, reason: str, *, operation: str = "") -> None:
        where = f" in {operation}" if operation else ""
        super().__init__(f"Webex error {exception_id or '(no id)'}{where}: {reason}")
        self.exception_id = exception_id
        self.reason = reason
        self.operation = operation


class RestRequestError(ApiError):
    """A REST request the server refuses as such (HTTP 400, or another 4xx that asking again
    will not change): the window fails with Webex's message; ``status`` and ``tracking_id``
    (what Webex support asks for) are kept."""

    def __init__(self, status: int, message: str, *, operation: str = "", tracking_id: str = "") -> None:
        reason = message + (f" (trackingId {tracking_id})" if tracking_id else "")
        super().__init__(f"http{status}", reason, operation=operation)
        self.status = status
        self.tracking_id = tracking_id


class BodyContentLimitError(WindowFailedError):
    """000053: the request carried too many bodyContent elements; ``limit`` is what the server allows."""

    def __init__(self, message: str, *, limit: int | None) -> None:
        super().__init__(message)
        self.limit = limit


class IncompleteListingError(WindowFailedError):
    """A listing could not be verified complete (its total moved, rows repeated across pages).

    ``rows`` (an Arrow table, when given) is what its last scan received and ``doubtful`` the
    content hashes of rows that scan holds on more than one page: a packed listing's caller
    keeps the windows those rows prove complete instead of listing every one again."""

    def __init__(self, message: str, *, rows: object = None, doubtful: frozenset[int] = frozenset()) -> None:
        super().__init__(message)
        self.rows = rows
        self.doubtful = doubtful


class WindowRangeError(WindowFailedError):
    """A REST window the listing cannot serve: longer than its ``window_days`` or starting
    before ``now - reach_days`` (Webex refuses such requests with a 400).  A planning error."""


class ParseError(ExporterError):
    """The bytes are not an XML document we can read safely (not XML, hostile, too large, not a
    Webex message).  Asking again gets the same answer: the window fails without a retry."""


class DamagedResponseError(ParseError):
    """The answer was damaged on its way: cut short, or garbled after a well-formed start.
    Asking again may succeed, so it is resent (bounded by ``max_attempts``)."""


class WarehouseError(ExporterError):
    """Landing or cataloguing failed; whatever was committed before is untouched."""
