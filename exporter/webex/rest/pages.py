"""One REST page: a GET repeated until it has a usable answer, within the site's budget:
cool-downs (429/423), backoff with jitter (5xx, resets, timeouts, JSON cut short; a 504 halves
``max``), one token refresh on a 401, and the answers that stop the site or fail the window."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from ...config import Secret
from ...errors import (
    AuthError,
    FatalSiteError,
    MissingScopeError,
    ParseError,
    RestRequestError,
    RetryAfterTooLongError,
    ThrottledError,
    TransportError,
)
from ...model.counters import Counters
from ...obs.logs import event
from ..backoff import backoff_delay
from ..stats import StatsSink
from ..throttle import SiteThrottle
from .classify import RestOutcome, classify_rest
from .connection import ACCEPT, RestConnection
from .tokens import reauthorize_hint

_T = TypeVar("_T")

__all__ = ["RestPages", "REST_GROUP"]


#: The API group of every REST request in the site's throttle.
REST_GROUP = "rest"


def _halve_max(url: str) -> str:
    """``url`` with its ``max`` halved (at least 1): a 504 asks for a smaller page."""
    parts = urlsplit(url)
    segments = []
    for segment in parts.query.split("&"):
        key, _, value = segment.partition("=")
        if unquote_plus(key) == "max" and value.isdigit() and int(value) > 1:
            segment = f"{key}={int(value) // 2}"
        segments.append(segment)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(segments), parts.fragment))


class RestPages(RestConnection):
    """Page requests of one site's REST client (see the module docstring)."""

    throttle: SiteThrottle
    _rng: random.Random

    async def _page(self, url: str, what: str, sink: StatsSink) -> tuple[dict[str, Any] | str, Mapping[str, str], str]:
        """GET one page until it has a usable answer: (document, headers, the URL that answered);
        instead of the document, what the server said when it answered 404."""
        settings = self.site.throttle
        group = self.throttle.group(REST_GROUP)
        failures = throttles = 0
        renewed = False
        while True:
            self._stop.check()
            token = await self._access_token()
            async with group.slot() as permit:
                sink.permit(permit)
                self._stop.check()  # a hold may have begun while we waited for the budget
                sink.add(Counters(requests=1))
                reply = await self._exchange("GET", url, {**ACCEPT, "Authorization": f"Bearer {token.reveal()}",
                                                          "timezone": "UTC"})
            verdict = classify_rest(reply.status, reply.headers, reply.body, cooldown_seconds=settings.cooldown_seconds,
                                    max_retry_after_seconds=settings.max_retry_after_seconds)
            outcome = verdict.outcome
            if outcome is RestOutcome.OK:
                group.report_success(permit)
                return verdict.document, reply.headers, url
            said = self._scrub(verdict.describe())
            if outcome is RestOutcome.EXPIRED:
                if renewed:
                    raise self._stop.die(AuthError(
                        f"site {self.site.name}: {what}: the server refused a freshly refreshed access token ({said}); "
                        f"{reauthorize_hint(self.site.name)}"))
                renewed = True
                sink.add(Counters(retries=1, auth_requests=1))
                event("access token refused; refreshing it once", site=self.site.name, request=what, reason=said)
                await self._from_tokens(self.tokens.renew(token))
                continue
            if outcome is RestOutcome.THROTTLED:
                throttles += 1
                sink.throttle(verdict.code)
                blocked = max(group.blocked_until, asyncio.get_running_loop().time())
                group.report_throttle(permit, verdict.retry_after, verdict.code)
                sink.add(Counters(throttle_wait_seconds=max(0.0, group.blocked_until - blocked)))
                if throttles >= settings.max_attempts:
                    raise ThrottledError(f"site {self.site.name}: {what} throttled {throttles} times in a row "
                                         f"({said}); giving up for now", delay=group.cooldown,
                                         cause=verdict.code)
                continue  # the next slot waits for the cool-down
            if outcome is RestOutcome.HOLD:
                raise self._stop.hold(verdict.delay or 0.0, verdict.code, self.site.throttle.max_retry_after_seconds,
                                       what=what)
            if outcome is RestOutcome.RETRY:
                failures += 1
                if failures >= settings.max_attempts:
                    raise TransportError(f"site {self.site.name}: {what} failed {failures} times; last: {said}")
                sink.add(Counters(retries=1))
                if verdict.halve_page:
                    url = _halve_max(url)
                if verdict.delay is not None:  # the server's Retry-After, within our backoff cap
                    pause = min(verdict.delay, max(settings.backoff_max_seconds, 0.0))
                else:
                    pause = backoff_delay(failures, base=settings.backoff_base_seconds,
                                          cap=settings.backoff_max_seconds, rng=self._rng)
                event("request failed; retrying", site=self.site.name, request=what, reason=said, retry=failures,
                      retries=settings.max_attempts - 1, seconds=round(pause, 2))
                await asyncio.sleep(pause)
                continue
            if outcome is RestOutcome.NOT_FOUND:
                return said, reply.headers, url
            if outcome is RestOutcome.GONE:
                raise self._retired_path(what, verdict.code, said)
            if outcome is RestOutcome.FORBIDDEN:
                raise self._stop.die(MissingScopeError(
                    f"site {self.site.name}: {what} was refused ({said}): the token lacks a scope this endpoint needs, "
                    "or the user who authorized it lacks the admin role. Fix the integration's scopes or the user's "
                    f"roles, then {reauthorize_hint(self.site.name)}"))
            if outcome is RestOutcome.BAD_REQUEST:
                raise RestRequestError(verdict.status or 400, self._scrub(verdict.message), operation=what,
                                       tracking_id=verdict.tracking_id)
            if outcome is RestOutcome.ENDPOINT:
                raise self._endpoint_error(verdict, what, said)
            raise ParseError(f"site {self.site.name}: {what}: {said}; not asked again (the same request gets the same "
                             "answer)")

    async def _access_token(self) -> Secret:
        return await self._from_tokens(self.tokens.access_token())

    async def _from_tokens(self, call: Awaitable[_T]) -> _T:
        """What the token manager answers.  What stops it stops this client: a fatal error is kept,
        and a Retry-After above our limit from the token endpoint is held like any other (a
        ``serve`` that keeps this client asks it nothing before then)."""
        try:
            return await call
        except FatalSiteError as exc:
            raise self._stop.die(exc) from None
        except RetryAfterTooLongError as exc:
            raise self._stop.hold(exc.delay or 0.0, "Retry-After", self.site.throttle.max_retry_after_seconds,
                                  what=f"the token endpoint {self.rest.token_url}") from None
