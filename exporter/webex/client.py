"""The Webex XML API client: one site, one HTTP session, every request through the throttle.

``await client.call(bodies, api_group)`` sends the bodies (several ``bodyContent`` per HTTP
request, up to the site's limit), classifies every answer (:mod:`exporter.webex.classify`) and acts on
it: cool-downs after throttling, backoff with jitter after transient failures, a site-wide pause
while the site runs on its backup, one re-authentication when the session ticket expired, smaller
batches after 000053, and an immediate stop on refused credentials (retries lock accounts).

This is the one place where aiohttp and asyncio exceptions become :mod:`exporter.errors`.
Secrets (password, access token, session ticket) live in :class:`~exporter.config.Secret` and are
scrubbed from any server text we repeat, so they never reach an exception, a log or a repr.

What the client refuses to do, whatever the server says:

* follow a redirect (every request carries the password or a ticket): a 3xx stops the site with
  a :class:`~exporter.errors.RedirectError` naming the target; nothing is sent to it;
* trust a certificate that fails verification: a :class:`~exporter.errors.CertificateError`
  stops the site after one attempt (other TLS failures are retried, their cause kept);
* read more than ``throttle.max_response_bytes``, counted as the body is decompressed (we do
  the decompression ourselves, bounded): a bomb costs one request and a bounded amount of memory;
* sleep longer than ``throttle.max_retry_after_seconds`` because a server asked: such a
  ``Retry-After`` stops the site for the run (:class:`~exporter.errors.RetryAfterTooLongError`),
  and nothing is sent to the site until that time has passed;
* resend an answer that can never be read (not XML, a DTD, too large): the window fails at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import ssl
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import aiohttp

from ..config import Secret, SiteSettings
from ..errors import (
    ApiError,
    AuthError,
    BodyContentLimitError,
    CertificateError,
    DamagedResponseError,
    ExporterError,
    FatalSiteError,
    OperationRetiredError,
    ParseError,
    RedirectError,
    RetryAfterTooLongError,
    SitePausedError,
    ThrottledError,
    TransportError,
)
from .backoff import backoff_delay
from .classify import DEFAULT_CODES, CodeTable, Outcome, Verdict, classify, redirect_target
from .decoding import ResponseDecoder
from .protocol import Body, BodyResponse, authenticate_body, build_request
from .throttle import Permit, SiteThrottle

if TYPE_CHECKING:  # batching imports this module: a runtime import would be circular
    from .batching import CallBatcher

__all__ = ["WebexClient", "RequestStats", "run_all", "USER_GROUP", "LIST_GROUP", "RENEW_FRACTION", "MAX_GSB_PAUSES"]

log = logging.getLogger(__name__)

LIST_GROUP = "meeting_list"  # Webex throttles per API group: list operations
USER_GROUP = "user"  # AuthenticateUser belongs to the user operations
#: Renew the session ticket after this share of its timeToLive (the brief: at 80-90%).
RENEW_FRACTION = 0.85
#: GSB backup pauses one request sits through before the site is given up for this run.
MAX_GSB_PAUSES = 3
DEFAULT_TICKET_TTL = 5400.0
#: Only the encodings we decompress ourselves, with a bound (aiohttp's own decoding is off).
_HEADERS = {"Content-Type": "text/xml; charset=utf-8", "Accept": "text/xml", "Accept-Encoding": "gzip, deflate"}
_READ_CHUNK = 64 * 1024

T = TypeVar("T")


@dataclass(slots=True)
class RequestStats:
    """Counters for metrics and progress (a client keeps one; a caller may pass its own)."""

    requests: int = 0  # HTTP POSTs sent
    bodies: int = 0  # bodyContent elements sent
    retries: int = 0  # resends after transient failures, pauses and ticket renewals
    throttles: Counter[str] = field(default_factory=Counter)  # throttle answers by cause
    # Wall-clock seconds of cool-downs and site pauses these requests caused (each counted once,
    # however many requests sat them out together).
    throttle_wait_seconds: float = 0.0
    budget_wait_seconds: float = 0.0  # request-seconds spent waiting for our own request budget
    pauses: int = 0
    auth_requests: int = 0

    @property
    def throttled(self) -> int:
        """Throttle answers of every cause."""
        return sum(self.throttles.values())

    def add(self, other: RequestStats) -> None:
        """Add ``other``'s counts to these."""
        for name in ("requests", "bodies", "retries", "pauses", "auth_requests"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.throttle_wait_seconds += other.throttle_wait_seconds
        self.budget_wait_seconds += other.budget_wait_seconds
        self.throttles.update(other.throttles)


class StatsSink:
    """Fan one update out to several counters (the client's, a fetch's, the caller's); a
    counter a target lacks (``pages`` on plain :class:`RequestStats`) is skipped for it."""

    def __init__(self, *targets: RequestStats | None) -> None:
        self.targets = [t for t in targets if t is not None]

    def bump(self, name: str, amount: float = 1) -> None:
        for t in self.targets:
            if hasattr(t, name):
                setattr(t, name, getattr(t, name) + amount)

    def throttle(self, cause: str) -> None:
        for t in self.targets:
            t.throttles[cause] += 1

    def permit(self, permit: Permit) -> None:
        self.bump("budget_wait_seconds", permit.waited_budget)


@dataclass(slots=True)
class _Reply:
    """One HTTP exchange: status (None: no response), headers, parsed bodies or the failure."""

    status: int | None
    headers: Mapping[str, str]
    answer: list[BodyResponse] | BaseException | None


@dataclass(slots=True)
class _Attempts:
    """What one batch has been through so far (each kind has its own bound)."""

    failures: int = 0
    throttles: int = 0
    pauses: int = 0
    reauthenticated: bool = False


#: Which answer in a batch decides first: never retry on refused credentials, never split a
#: batch the server refused whole, fail the window before waiting on anything.
_PRIORITY = {
    Outcome.ENDPOINT_FATAL: 0, Outcome.AUTH_FATAL: 0, Outcome.REAUTH: 1, Outcome.BODYCONTENT_LIMIT: 2,
    Outcome.RETIRED: 3, Outcome.WINDOW_FATAL: 3, Outcome.UNREADABLE: 3, Outcome.THROTTLED: 4, Outcome.PAUSE: 5,
    Outcome.RETRY: 6, Outcome.EMPTY: 7, Outcome.OK: 8,
}


class WebexClient:
    """A client for one Webex site (see the module docstring).

    ``throttle`` is the site's shared :class:`SiteThrottle` (one is made when omitted);
    ``clock`` returns seconds and times ticket renewal (default: the event loop's clock; tests
    pass the simulator's clock to move time without sleeping).  ``decoder`` parses responses
    (default: inline, on the event loop; the pipeline shares one with worker processes).
    """

    def __init__(
        self,
        site: SiteSettings,
        session: aiohttp.ClientSession,
        *,
        throttle: SiteThrottle | None = None,
        clock: Callable[[], float] | None = None,
        codes: CodeTable = DEFAULT_CODES,
        rng: random.Random | None = None,
        decoder: ResponseDecoder | None = None,
    ) -> None:
        self.site = site
        self.decoder = decoder or ResponseDecoder(0)
        self.throttle = throttle or SiteThrottle(site.name, site.throttle)
        self.stats = RequestStats()
        self._session = session
        self._clock = clock
        self._codes = codes
        self._rng = rng or random.Random()
        self._bodies_per_request = site.throttle.bodies_per_request
        self._ticket: Secret | None = None
        self._renew_at = float("-inf")
        self._auth_lock = asyncio.Lock()
        self._fatal: FatalSiteError | None = None
        #: A Retry-After above max_retry_after_seconds: nothing is sent before this loop time.
        self._held_until = float("-inf")
        self._held_message = ""
        parts = urlsplit(site.url)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            port = None
        self._endpoint = f"{parts.hostname}:{port}"
        #: One ``batching.CallBatcher`` per API group, made by ``batching.batcher_for``.
        self.batchers: dict[str, CallBatcher] = {}

    def __repr__(self) -> str:
        return f"WebexClient(site={self.site.name!r}, auth={self.site.auth!r}, url={self.site.url!r})"

    @property
    def bodies_per_request(self) -> int:
        """How many bodyContent elements one request may carry (lowered after 000053)."""
        return self._bodies_per_request

    @property
    def ticket_renew_at(self) -> float:
        """When (on ``clock``) the current session ticket will be renewed; -inf without one."""
        return self._renew_at

    # ----------------------------------------------------------------------------- public API

    async def call(
        self, bodies: Sequence[Body], api_group: str = LIST_GROUP, *, stats: RequestStats | None = None
    ) -> list[BodyResponse]:
        """Send ``bodies`` and return one :class:`BodyResponse` per body, in order.

        Empty lists (000015) come back with ``empty=True``.  Raises :class:`AuthError` or an
        :class:`~exporter.errors.EndpointError` (a redirect, a failed certificate check; never
        retried), :class:`ApiError` / :class:`BodyContentLimitError` / :class:`ParseError` (an
        answer that can never be read; fail the window), :class:`SitePausedError` (its
        :class:`RetryAfterTooLongError` too), or :class:`TransportError` / :class:`ThrottledError`
        once ``max_attempts`` is used up.
        """
        if not bodies:
            return []
        sink = StatsSink(self.stats, stats)
        return await self._call_chunks(list(bodies), api_group, sink)

    async def authenticate(self) -> None:
        """Get a session ticket now (auth ``ticket`` / ``token``; a no-op for ``password``)."""
        await self._credentials(StatsSink(self.stats), force=True)

    # ----------------------------------------------------------------------------- auth

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def _credentials(self, sink: StatsSink, *, force: bool = False) -> Secret | None:
        """The session ticket to send (renewed when due), or None for password auth."""
        self._raise_if_dead()
        if self.site.auth == "password":
            return None
        if not force and self._ticket is not None and self._now() < self._renew_at:
            return self._ticket
        stale = self._ticket
        async with self._auth_lock:
            self._raise_if_dead()
            # Someone else renewed while we waited for the lock: use theirs.
            if self._ticket is not stale or (not force and self._ticket is not None and self._now() < self._renew_at):
                return self._ticket
            await self._exchange_ticket(sink)
            return self._ticket

    async def _exchange_ticket(self, sink: StatsSink) -> None:
        token = self.site.access_token if self.site.auth == "token" else None
        started = self._now()
        sink.bump("auth_requests")
        (answer,) = await self._call_batch([authenticate_body(token)], USER_GROUP, sink, authenticating=True)
        ticket = answer.text("sessionTicket")
        if not ticket:
            raise self._die(AuthError(f"site {self.site.name}: AuthenticateUser returned no sessionTicket"))
        try:
            ttl = float(answer.text("timeToLive") or DEFAULT_TICKET_TTL)
        except ValueError:
            ttl = DEFAULT_TICKET_TTL
        self._ticket = Secret(ticket)
        # Timed from when we asked, not when the answer came: errs on the early side.
        self._renew_at = started + max(ttl, 0.0) * RENEW_FRACTION
        log.info("site %s: session ticket obtained (%s auth), renewing in %.0f s", self.site.name, self.site.auth,
                 self._renew_at - started)

    def _raise_if_dead(self) -> None:
        if self._fatal is not None:
            # A fresh instance per caller: one shared exception would collect every caller's traceback.
            raise type(self._fatal)(str(self._fatal))
        left = self._held_until - asyncio.get_running_loop().time()
        if left > 0:
            raise RetryAfterTooLongError(self._held_message, delay=left)

    def _hold(self, verdict: Verdict, wait: float) -> RetryAfterTooLongError:
        """The server asked for a wait above our limit: stop the site for this run rather than
        sleep; nothing is sent to it before that time (a later run in ``serve`` asks again)."""
        limit = self.site.throttle.max_retry_after_seconds
        self._held_until = max(self._held_until, asyncio.get_running_loop().time() + wait)
        self._held_message = (f"site {self.site.name}: the server asked us to wait {wait:.0f} s ({verdict.code}, "
                              f"Retry-After), more than max_retry_after_seconds = {limit:g}; stopping this site for "
                              "this run")
        log.error("%s", self._held_message)
        return RetryAfterTooLongError(self._held_message, delay=wait)

    def _die(self, error: FatalSiteError) -> FatalSiteError:
        """Remember a fatal error: every later call on this client raises it without sending."""
        self._fatal = error
        log.error("%s", error)
        return error

    # ----------------------------------------------------------------------------- sending

    async def _call_chunks(self, bodies: list[Body], api_group: str, sink: StatsSink) -> list[BodyResponse]:
        size = max(1, self._bodies_per_request)
        chunks = [bodies[i : i + size] for i in range(0, len(bodies), size)]
        parts = await run_all(self._call_batch(chunk, api_group, sink) for chunk in chunks)
        return [response for part in parts for response in part]

    async def _call_batch(
        self, bodies: list[Body], api_group: str, sink: StatsSink, *, authenticating: bool = False
    ) -> list[BodyResponse]:
        """Send one batch until every body has a usable answer or a bound is reached.  Bodies
        answered OK are kept; only the others are sent again."""
        results: list[BodyResponse | None] = [None] * len(bodies)
        pending = list(range(len(bodies)))
        attempts = _Attempts()
        group = self.throttle.group(api_group)
        while pending:
            batch = [bodies[i] for i in pending]
            ticket = None if authenticating else await self._credentials(sink)
            payload = build_request(self.site, batch, ticket=ticket)
            async with group.slot(len(batch)) as permit:
                sink.permit(permit)
                sink.bump("requests")
                sink.bump("bodies", len(batch))
                reply = await self._post(payload, batch)
            verdicts = self._verdicts(reply, len(batch))
            # The most serious answer decides what happens to the request as a whole.
            position = min(range(len(verdicts)), key=lambda i: _PRIORITY[verdicts[i].outcome])
            verdict, body = verdicts[position], batch[position]
            outcome = verdict.outcome
            if outcome is Outcome.ENDPOINT_FATAL:
                raise self._endpoint_error(verdict)
            if outcome is Outcome.AUTH_FATAL or (
                outcome is Outcome.REAUTH and (authenticating or ticket is None or attempts.reauthenticated)
            ):
                raise self._die(AuthError(
                    f"site {self.site.name}: credentials refused by {body.operation} ({verdict.code}"
                    f"{': ' + self._scrub(verdict.reason) if verdict.reason else ''}); auth '{self.site.auth}' for "
                    f"webex_id {self.site.webex_id!r}. Not retried: retries can lock the account. Fix the credentials."
                ))
            if outcome is Outcome.BODYCONTENT_LIMIT:
                answers = await self._shrink_batches(verdict, batch, api_group, sink)
                for index, answer in zip(pending, answers, strict=True):
                    results[index] = answer
                return _complete(results)
            if outcome is Outcome.RETIRED:
                raise OperationRetiredError(
                    f"site {self.site.name}: the site no longer serves {body.operation} ({verdict.code}: "
                    f"{self._scrub(verdict.reason)})", operation=body.operation, exception_id=verdict.code,
                )
            if outcome is Outcome.WINDOW_FATAL:
                raise ApiError(verdict.code, self._scrub(verdict.reason), operation=body.label or body.operation)
            if outcome is Outcome.UNREADABLE:
                what = body.label or body.operation
                raise ParseError(f"site {self.site.name}: {what}: {self._scrub(verdict.reason)}; not asked again "
                                 "(the same request gets the same answer)")
            still = []
            for offset, (index, each) in enumerate(zip(pending, verdicts, strict=True)):
                if each.outcome in (Outcome.OK, Outcome.EMPTY):
                    answer = reply.answer[offset]  # type: ignore[index]  # an OK verdict comes from a list answer
                    if each.outcome is Outcome.EMPTY:
                        answer = dataclasses.replace(answer, empty=True)
                    results[index] = answer
                else:
                    still.append(index)
            pending = still
            if not pending:
                group.report_success(permit)
                break
            await self._before_resend(verdict, body, permit, ticket, attempts, sink)
        return _complete(results)

    async def _before_resend(
        self, verdict: Verdict, body: Body, permit: Permit, ticket: Secret | None, attempts: _Attempts, sink: StatsSink
    ) -> None:
        """React to a transient answer (re-auth, throttle, pause, retry), or raise when its bound
        is reached.  Waiting for cool-downs and pauses happens in the throttle's next slot."""
        settings = self.site.throttle
        what = body.label or body.operation
        outcome = verdict.outcome
        if verdict.retry_after is not None and verdict.retry_after > settings.max_retry_after_seconds:
            raise self._hold(verdict, verdict.retry_after)
        if outcome is Outcome.REAUTH:
            attempts.reauthenticated = True
            sink.bump("retries")
            log.warning("site %s: session ticket refused (%s); re-authenticating once", self.site.name, verdict.code)
            if self._ticket is ticket:
                self._renew_at = float("-inf")  # due now; _credentials renews it under its lock
        elif outcome is Outcome.THROTTLED:
            attempts.throttles += 1
            sink.throttle(verdict.cause)
            group = self.throttle.group(permit.group)
            blocked = max(group.blocked_until, asyncio.get_running_loop().time())
            # The server's Retry-After as it is; without one our cool-down, doubling while it lasts.
            group.report_throttle(permit, verdict.retry_after, verdict.cause)
            delay = group.cooldown
            sink.bump("throttle_wait_seconds", max(0.0, group.blocked_until - blocked))
            if attempts.throttles >= settings.max_attempts:
                raise ThrottledError(
                    f"site {self.site.name}: {what} throttled {attempts.throttles} times in a row ({verdict.cause}); "
                    "giving up for now",
                    delay=delay, cause=verdict.cause,
                )
        elif outcome is Outcome.PAUSE:
            attempts.pauses += 1
            delay = verdict.delay if verdict.delay is not None else settings.gsb_pause_seconds
            if attempts.pauses > MAX_GSB_PAUSES:
                raise SitePausedError(f"site {self.site.name} still answers from its backup (gsbStatus BACKUP) after "
                                      f"{MAX_GSB_PAUSES} pauses of {delay:.0f} s; stopping the site for this run",
                                      delay=delay)
            sink.bump("pauses")
            sink.bump("retries")
            paused = max(self.throttle.paused_until, asyncio.get_running_loop().time())
            self.throttle.pause(delay, "gsbStatus BACKUP")
            sink.bump("throttle_wait_seconds", max(0.0, self.throttle.paused_until - paused))
        else:  # Outcome.RETRY
            attempts.failures += 1
            if attempts.failures >= settings.max_attempts:
                reason = f" {self._scrub(verdict.reason)}" if verdict.reason else ""
                raise TransportError(f"site {self.site.name}: {what} failed {attempts.failures} times; last: "
                                     f"{verdict.code}{reason}")
            sink.bump("retries")
            if verdict.delay is not None:  # the server's Retry-After, within our backoff cap
                pause = min(verdict.delay, max(settings.backoff_max_seconds, 0.0))
            else:
                pause = backoff_delay(attempts.failures, base=settings.backoff_base_seconds,
                                      cap=settings.backoff_max_seconds, rng=self._rng)
            log.info("site %s: %s failed (%s), retry %d of %d in %.2f s", self.site.name, what, verdict.code,
                     attempts.failures, settings.max_attempts - 1, pause)
            await asyncio.sleep(pause)

    async def _shrink_batches(
        self, verdict: Verdict, batch: list[Body], api_group: str, sink: StatsSink
    ) -> list[BodyResponse]:
        """000053: resend ``batch`` in batches the server accepts, and remember the limit: the one
        its reason names, or, when no usable number can be read (a reason in another language,
        or none), half the batch, down to one body per request."""
        limit = verdict.limit
        if limit is None or limit < 1 or limit >= len(batch):
            if len(batch) <= 1:
                raise BodyContentLimitError(
                    f"site {self.site.name}: the server refused a request with a single bodyContent as too many "
                    f"({verdict.code}: {self._scrub(verdict.reason)})",
                    limit=limit,
                )
            log.warning("site %s: the server refused %d bodyContent per request (000053) without a limit we can "
                        "read (%r); halving", self.site.name, len(batch), self._scrub(verdict.reason))
            limit = max(1, len(batch) // 2)
        if limit < self._bodies_per_request:
            log.warning("site %s: the server allows at most %d bodyContent per request (000053); adapting",
                        self.site.name, limit)
            self._bodies_per_request = limit
        size = min(limit, self._bodies_per_request)
        chunks = [batch[i : i + size] for i in range(0, len(batch), size)]
        parts = await run_all(self._call_batch(chunk, api_group, sink) for chunk in chunks)
        return [response for part in parts for response in part]

    def _verdicts(self, reply: _Reply, count: int) -> list[Verdict]:
        """One verdict per body of the batch."""
        def judge(body: BodyResponse | BaseException | None) -> Verdict:
            return classify(reply.status, reply.headers, body, cooldown_seconds=self.site.throttle.cooldown_seconds,
                            gsb_pause_seconds=self.site.throttle.gsb_pause_seconds, codes=self._codes)

        answer = reply.answer
        if not isinstance(answer, list):
            return [judge(answer)] * count
        verdicts = [judge(body) for body in answer]
        if len(verdicts) == count:
            return verdicts
        # A request-level failure answers once for the whole request (bad credentials, 000053).
        if len(verdicts) == 1 and verdicts[0].outcome not in (Outcome.OK, Outcome.EMPTY):
            return verdicts * count
        mismatch = DamagedResponseError(f"{len(answer)} answers for {count} bodyContent elements")
        return [judge(mismatch)] * count

    async def _post(self, payload: bytes, batch: list[Body]) -> _Reply:
        """One HTTP POST; network failures come back as an error in the reply (status None).
        Redirects are not followed; the body is read (and decompressed) up to the size limit."""
        timeout = aiohttp.ClientTimeout(total=self.site.throttle.request_timeout_seconds)
        try:
            async with self._session.post(self.site.url, data=payload, headers=_HEADERS, timeout=timeout,
                                          allow_redirects=False, auto_decompress=False) as response:
                status, headers = response.status, response.headers
                if not 200 <= status < 300:
                    return _Reply(status, headers, None)  # the body is not read: nothing in it is used
                try:
                    data = await _read_body(response, self.site.throttle.max_response_bytes)
                except ParseError as exc:
                    return _Reply(status, headers, exc)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return _Reply(None, {}, self._network_error(exc))
        answer: list[BodyResponse] | BaseException = await self.decoder.decode(data, batch)
        return _Reply(status, headers, answer)

    def _network_error(self, exc: BaseException) -> ExporterError:
        return network_error(exc, self._endpoint, self._scrub)

    def _endpoint_error(self, verdict: Verdict) -> FatalSiteError:
        """A redirect or a failed certificate check: stop the site, one attempt, never retried."""
        url = redirect_target(self.site.url)
        reason = self._scrub(verdict.reason)
        if verdict.cause == "redirect":
            error: FatalSiteError = RedirectError(
                f"site {self.site.name}: {url} answered {reason}; redirects are never followed (every request "
                "carries credentials). Not retried: fix the site's url."
            )
        else:
            error = CertificateError(f"site {self.site.name}: {reason}; not retried: the server is not who {url} "
                                     "says (fix the url or the trust store)")
        log.error("%s", error)
        return error

    def _scrub(self, text: str) -> str:
        """``text`` with every secret we hold masked (servers sometimes echo what they got)."""
        for secret in (self.site.password, self.site.access_token, self._ticket):
            if secret is not None and secret.reveal():
                text = text.replace(secret.reveal(), "***")
        return text


def _complete(results: list[BodyResponse | None]) -> list[BodyResponse]:
    """The answers once every body has one (the loops above guarantee it)."""
    missing = sum(r is None for r in results)
    if missing:  # a bug, not a server condition: say so rather than return a short list
        raise AssertionError(f"{missing} of {len(results)} bodies got no answer")
    return results  # type: ignore[return-value]  # checked just above: no None left


async def _read_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, decompressed as it arrives, or a :class:`ParseError` as soon as it passes
    ``limit`` bytes (compressed or not): a bomb never expands in memory, and is not retried."""
    coding = response.headers.get("Content-Encoding", "")
    codings = [c.strip().lower() for c in coding.split(",") if c.strip() and c.strip().lower() != "identity"]
    if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
        raise ParseError(f"answer has Content-Encoding {coding[:60]!r}, which we did not ask for")
    inflate = _Inflate(limit) if codings else None
    out = bytearray()
    raw = 0
    async for chunk in response.content.iter_chunked(_READ_CHUNK):
        raw += len(chunk)
        if raw > limit:
            raise ParseError(f"answer larger than {limit} bytes{' (compressed)' if inflate else ''}; not read further")
        if inflate is None:
            out += chunk
        elif inflate.feed(chunk, out):
            break  # the compressed stream ended; anything after it is not part of the answer
    return bytes(out)


class _Inflate:
    """gzip / zlib / raw deflate, decompressed with a bound on the output."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._z = zlib.decompressobj(wbits=zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
        self._raw = False

    def feed(self, data: bytes, out: bytearray) -> bool:
        """Decompress ``data`` into ``out`` (at most ``limit`` bytes in all); True at the stream's end."""
        while data:
            try:
                piece = self._z.decompress(data, self.limit + 1 - len(out))
            except zlib.error as exc:
                if not out and not self._raw:
                    self._z = zlib.decompressobj(wbits=-zlib.MAX_WBITS)  # "deflate" sent without its zlib header
                    self._raw = True
                    continue
                if not out:  # not compressed the way Content-Encoding says, from its first byte
                    raise ParseError(f"answer is not the gzip/deflate its Content-Encoding says: {exc}") from None
                raise DamagedResponseError(f"compressed answer is corrupt: {exc}") from None
            out += piece
            if len(out) > self.limit:
                raise ParseError(f"answer larger than {self.limit} bytes after decompression; not read further")
            if self._z.eof:
                return True
            data = self._z.unconsumed_tail
        return False


def network_error(exc: BaseException, where: str, scrub: Callable[[str], str]) -> ExporterError:
    """A network failure (aiohttp, ssl, OS) as our error, for the XML and the REST client alike:
    a failed certificate check is a :class:`CertificateError` (never retried), anything else a
    :class:`TransportError`; ``scrub`` takes secrets out of the text."""
    if isinstance(exc, aiohttp.ServerFingerprintMismatch):
        return CertificateError(f"TLS: certificate fingerprint mismatch for {where}")
    cert = exc.certificate_error if isinstance(exc, aiohttp.ClientConnectorCertificateError) else exc
    if isinstance(cert, ssl.SSLCertVerificationError):
        detail = cert.verify_message or cert.reason or str(cert)
        return CertificateError(scrub(f"TLS: certificate verify failed ({detail}) for {where}"))
    if isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError)):
        cause = getattr(exc, "os_error", None) or exc
        detail = getattr(cause, "reason", None) or str(cause) or type(cause).__name__
        return TransportError(scrub(f"TLS: {str(detail)[:200]} for {where}"))
    if isinstance(exc, TimeoutError):
        return TransportError(f"request to {where} timed out")
    return TransportError(scrub(_describe(exc)))


def _describe(exc: BaseException) -> str:
    """A short, secret-free description of a network failure."""
    if isinstance(exc, TimeoutError):
        return "request timed out"
    text = str(exc) or exc.__class__.__name__
    return f"{type(exc).__name__}: {text[:200]}"


async def run_all(coroutines: Iterable[Awaitable[T]], *, discarded: Callable[[T], None] | None = None) -> list[T]:
    """Await all, in order; on the first failure cancel the rest and raise that failure alone
    (a fatal site error wins over others).  Unlike ``TaskGroup`` this never raises an
    ``ExceptionGroup``, so callers keep catching plain exception classes.  When it raises, the
    results that had come in are passed to ``discarded`` (say, to count what they cost)."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    if not tasks:
        return []
    interrupted: BaseException | None = None  # we were cancelled ourselves
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException as exc:
        interrupted, failures = exc, []
    else:
        failures = [t.exception() for t in done if not t.cancelled() and t.exception() is not None]
        if not failures:
            return [t.result() for t in tasks]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if discarded is not None:
        for task in tasks:
            if not task.cancelled() and task.exception() is None:
                discarded(task.result())
    if interrupted is not None:
        raise interrupted
    failures.sort(key=lambda e: 0 if isinstance(e, FatalSiteError) else 1 if isinstance(e, SitePausedError) else 2)
    raise failures[0]  # type: ignore[misc]  # an interrupted wait raised above: failures are exceptions

