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
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp

from ..config import Secret, SiteSettings
from ..errors import (
    ApiError,
    AuthError,
    CertificateError,
    DamagedResponseError,
    ExporterError,
    FatalSiteError,
    OperationRetiredError,
    ParseError,
    RedirectError,
)
from ..model.counters import Counters
from .classify import DEFAULT_CODES, CodeTable, Outcome, Verdict, classify, redirect_target
from .decoding import ResponseDecoder
from .gather import run_all
from .http_body import network_error, read_body
from .protocol import Body, BodyResponse, build_request
from .resend import Attempts, Resender
from .site_stop import SiteStop
from .stats import StatsSink
from .throttle import SiteThrottle

if TYPE_CHECKING:  # batching imports this module: a runtime import would be circular
    from .batching import CallBatcher

__all__ = ["WebexClient", "LIST_GROUP"]


LIST_GROUP = "meeting_list"  # Webex throttles per API group: list operations
#: Only the encodings we decompress ourselves, with a bound (aiohttp's own decoding is off).
_HEADERS = {"Content-Type": "text/xml; charset=utf-8", "Accept": "text/xml", "Accept-Encoding": "gzip, deflate"}

@dataclass(slots=True)
class _Reply:
    """One HTTP exchange: status (None: no response), headers, parsed bodies or the failure."""

    status: int | None
    headers: Mapping[str, str]
    answer: list[BodyResponse] | BaseException | None


#: Which answer in a batch decides first: never retry on refused credentials, never split a
#: batch the server refused whole, fail the window before waiting on anything.
_PRIORITY = {
    Outcome.ENDPOINT_FATAL: 0, Outcome.AUTH_FATAL: 0, Outcome.REAUTH: 1, Outcome.BODYCONTENT_LIMIT: 2,
    Outcome.RETIRED: 3, Outcome.WINDOW_FATAL: 3, Outcome.UNREADABLE: 3, Outcome.THROTTLED: 4, Outcome.PAUSE: 5,
    Outcome.RETRY: 6, Outcome.EMPTY: 7, Outcome.OK: 8,
}


class WebexClient(Resender):
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
        self.stats = Counters()
        self._session = session
        self._clock = clock
        self._codes = codes
        self._rng = rng or random.Random()
        self._bodies_per_request = site.throttle.bodies_per_request
        self._ticket: Secret | None = None
        self._renew_at = float("-inf")
        self._auth_lock = asyncio.Lock()
        self._stop = SiteStop(site.name)
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
        self, bodies: Sequence[Body], api_group: str = LIST_GROUP, *, stats: Counters | None = None
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
        attempts = Attempts()
        group = self.throttle.group(api_group)
        while pending:
            batch = [bodies[i] for i in pending]
            ticket = None if authenticating else await self._credentials(sink)
            payload = build_request(self.site, batch, ticket=ticket)
            async with group.slot(len(batch)) as permit:
                sink.permit(permit)
                sink.add(Counters(requests=1, bodies=len(batch)))
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
                raise self._stop.die(AuthError(
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
                    data = await read_body(response, self.site.throttle.max_response_bytes)
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
        return self._stop.die(error)  # remembered like refused credentials: nothing more is sent

def _complete(results: list[BodyResponse | None]) -> list[BodyResponse]:
    """The answers once every body has one (the loops above guarantee it)."""
    missing = sum(r is None for r in results)
    if missing:  # a bug, not a server condition: say so rather than return a short list
        raise AssertionError(f"{missing} of {len(results)} bodies got no answer")
    return results  # type: ignore[return-value]  # checked just above: no None left
