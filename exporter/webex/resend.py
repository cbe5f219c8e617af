"""What the XML client does between two sends of a batch: after a transient answer (one
re-authentication, a throttle cool-down, a GSB backup pause, backoff with jitter), each with its
own bound, and after 000053 (too many bodyContent per request: smaller batches, the limit
remembered)."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from ..config import Secret
from ..errors import BodyContentLimitError, SitePausedError, ThrottledError, TransportError
from ..model.counters import Counters
from ..obs.logs import event
from .backoff import backoff_delay
from .classify import Outcome, Verdict
from .gather import run_all
from .protocol import Body, BodyResponse
from .session import SessionKeeper
from .stats import StatsSink
from .throttle import Permit, SiteThrottle

__all__ = ["Resender", "MAX_GSB_PAUSES"]


#: GSB backup pauses one request sits through before the site is given up for this run.
MAX_GSB_PAUSES = 3


@dataclass(slots=True)
class Attempts:
    """What one batch has been through so far (each kind has its own bound)."""

    failures: int = 0
    throttles: int = 0
    pauses: int = 0
    reauthenticated: bool = False


class Resender(SessionKeeper):
    """The reactions between sends (see the module docstring), for
    :class:`~exporter.webex.client.WebexClient`, whose constructor sets the attributes."""

    throttle: SiteThrottle
    _rng: random.Random
    _bodies_per_request: int

    async def _before_resend(
        self, verdict: Verdict, body: Body, permit: Permit, ticket: Secret | None, attempts: Attempts, sink: StatsSink
    ) -> None:
        """React to a transient answer (re-auth, throttle, pause, retry), or raise when its bound
        is reached.  Waiting for cool-downs and pauses happens in the throttle's next slot."""
        settings = self.site.throttle
        what = body.label or body.operation
        outcome = verdict.outcome
        if verdict.retry_after is not None and verdict.retry_after > settings.max_retry_after_seconds:
            raise self._stop.hold(verdict.retry_after, verdict.code, self.site.throttle.max_retry_after_seconds)
        if outcome is Outcome.REAUTH:
            attempts.reauthenticated = True
            sink.add(Counters(retries=1))
            event("session ticket refused; re-authenticating once", level=logging.WARNING, site=self.site.name,
                  code=verdict.code)
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
            sink.add(Counters(throttle_wait_seconds=max(0.0, group.blocked_until - blocked)))
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
            sink.add(Counters(pauses=1, retries=1))
            paused = max(self.throttle.paused_until, asyncio.get_running_loop().time())
            self.throttle.pause(delay, "gsbStatus BACKUP")
            sink.add(Counters(throttle_wait_seconds=max(0.0, self.throttle.paused_until - paused)))
        else:  # Outcome.RETRY
            attempts.failures += 1
            if attempts.failures >= settings.max_attempts:
                reason = f" {self._scrub(verdict.reason)}" if verdict.reason else ""
                raise TransportError(f"site {self.site.name}: {what} failed {attempts.failures} times; last: "
                                     f"{verdict.code}{reason}")
            sink.add(Counters(retries=1))
            if verdict.delay is not None:  # the server's Retry-After, within our backoff cap
                pause = min(verdict.delay, max(settings.backoff_max_seconds, 0.0))
            else:
                pause = backoff_delay(attempts.failures, base=settings.backoff_base_seconds,
                                      cap=settings.backoff_max_seconds, rng=self._rng)
            event("request failed; retrying", site=self.site.name, request=what, reason=verdict.code,
                  retry=attempts.failures, retries=settings.max_attempts - 1, seconds=round(pause, 2),
                  error=self._scrub(verdict.reason) or None)
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
            event("the server refused our bodyContent per request (000053) without a limit we can read; halving",
                  level=logging.WARNING, site=self.site.name, bodies=len(batch), reason=self._scrub(verdict.reason))
            limit = max(1, len(batch) // 2)
        if limit < self._bodies_per_request:
            event("the server limits bodyContent per request (000053); adapting", level=logging.WARNING,
                  site=self.site.name, limit=limit)
            self._bodies_per_request = limit
        size = min(limit, self._bodies_per_request)
        chunks = [batch[i : i + size] for i in range(0, len(batch), size)]
        parts = await run_all(self._call_batch(chunk, api_group, sink) for chunk in chunks)
        return [response for part in parts for response in part]
