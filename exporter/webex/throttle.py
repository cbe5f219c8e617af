"""How fast we may talk to a site: a request budget and adaptive concurrency per API group.

Webex limits requests per minute per (site, API group) and answers past the limit with 000045
and a 60-second block.  Every task of a site shares one :class:`SiteThrottle`; each API group
gets a :class:`GroupThrottle` made of

* a :class:`RateBudget`: at most ``limit`` requests in any ``period`` seconds (a sliding-window
  cap), evenly spaced while we run on the configured rate (a leaky bucket, GCRA);
* an :class:`AdaptiveConcurrency` limit (AIMD): starts at ``max_concurrency``, halves when the
  server throttles us, grows by about one per round trip of successes;
* a cool-down: a throttle answer blocks the whole group until it ends.

When the server throttles us although we kept to the configured rate, that rate is too high
for this site.  The group then *learns* the real limit: the server let ``K`` requests through in
the last ``period`` and refused the next one, so it allows about ``K`` per period; from then on
the group keeps to ``0.9 K`` per period and never goes back above it, so a long export trips the
limit at most once.  The server's block resets its count (Webex: a 60 s block, as long as its
window), so the learned budget starts afresh when the block ends and may be spent in a burst.
``K`` below :data:`MIN_EVIDENCE` teaches nothing (a handful of requests is no evidence of a
per-minute limit); such throttles only cool down and halve concurrency.

A server may count ``bodyContent`` elements rather than requests.  One trip cannot tell the two
apart, so the first teaches the request limit only (keeping to bodies too would slow a
request-counting server whenever later requests carry more bodies than those before the trip).
A trip *while the group already keeps to a learned limit* shows that requests are not all the
server counts: if the requests that got through carried more than one body each, the group
then also keeps to :data:`LEARNED_MARGIN` x the bodies that got through in the period (a
:class:`BodyBudget`), however full later requests are.  So a body-counting server is tripped at
most twice, a request-counting one at most once.

Cool-downs lengthen while the server keeps throttling: without a ``Retry-After`` the group
waits ``cooldown_seconds``, doubled for every further episode without a success in between,
capped at ``max_retry_after_seconds``; a success resets it.  A ``Retry-After`` is the server's
own choice and is used as it is (the client refuses one above ``max_retry_after_seconds``).

A site-wide pause (GSB backup) blocks every group.  All time is the event loop's clock
(``loop.time()``, ``asyncio.sleep``): tests drive it with a virtual clock and never sleep.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from ..config import ThrottleSettings
from ..obs.logs import event
from .budgets import AdaptiveConcurrency, BodyBudget, RateBudget

__all__ = ["GroupThrottle", "SiteThrottle", "Permit", "LEARNED_MARGIN", "MIN_EVIDENCE"]


#: Fraction of the observed server limit we keep to after a throttle.
LEARNED_MARGIN = 0.9
#: Fewest requests in the last period for a throttle to teach us the server's limit.
MIN_EVIDENCE = 20


def _now() -> float:
    return asyncio.get_running_loop().time()


@dataclass(slots=True)
class Permit:
    """One granted request: when it was sent (loop time) and how long it waited."""

    group: str
    sent_at: float = 0.0
    bodies: int = 1
    waited_budget: float = 0.0
    waited_blocked: float = 0.0
    waited_concurrency: float = 0.0

    @property
    def waited(self) -> float:
        """Total seconds between asking and sending."""
        return self.waited_budget + self.waited_blocked + self.waited_concurrency


class GroupThrottle:
    """Budget, adaptive concurrency and cool-down of one (site, API group)."""

    def __init__(self, site: SiteThrottle, name: str, settings: ThrottleSettings, *, period: float = 60.0) -> None:
        self.site = site
        self.name = name
        self.settings = settings
        self.budget = RateBudget(settings.requests_per_minute, period=period)
        #: Learned when requests alone proved not to be what the server counts (module docstring).
        self.body_budget: BodyBudget | None = None
        self.concurrency = AdaptiveConcurrency(settings.max_concurrency)
        self.blocked_until = -math.inf
        self.trips = 0  # throttle episodes (several answers to one burst count once)
        self.throttle_answers = 0
        self.learned_limit: float | None = None
        self.learned_body_limit: int | None = None
        #: Throttle episodes since the last success (each doubles our own cool-down).
        self.streak = 0
        #: The cool-down the last throttle answer set (seconds).
        self.cooldown = settings.cooldown_seconds
        self._reacted_at = -math.inf
        #: (sent_at, bodies) of recent requests: the evidence a body budget is learned from.
        self._sent: deque[tuple[float, int]] = deque()
        self._evidence_since = -math.inf

    async def _wait_unblocked(self, permit: Permit) -> bool:
        """Sleep out a cool-down or site pause; True if there was one."""
        waited = False
        while True:
            now = _now()
            until = max(self.blocked_until, self.site.paused_until)
            if until <= now:
                return waited
            await asyncio.sleep(until - now)
            permit.waited_blocked += _now() - now
            waited = True

    def _reserve(self, now: float, bodies: int) -> float:
        """Book the request (and its bodies, once a body budget is learned); the wait."""
        if self.body_budget is None:
            return self.budget.reserve(now)
        # Both at the same instant: the later of the two budgets decides when it leaves.
        wait = max(self.budget.peek(now), self.body_budget.peek(now, bodies))
        at = now + wait
        extra = self.budget.reserve(at)
        self.body_budget.reserve(at, bodies)
        return wait + extra

    @asynccontextmanager
    async def slot(self, bodies: int = 1) -> AsyncIterator[Permit]:
        """Wait until a request carrying ``bodies`` bodyContent elements may be sent (cool-down
        over, concurrency slot, budget), then yield its :class:`Permit`; the slot is held until
        the block exits."""
        permit = Permit(self.name, bodies=max(1, bodies))
        started = _now()
        await self.concurrency.acquire()
        permit.waited_concurrency = _now() - started
        try:
            while True:
                await self._wait_unblocked(permit)
                now = _now()
                delay = self._reserve(now, permit.bodies)
                if delay > 0:
                    await asyncio.sleep(delay)
                    permit.waited_budget += _now() - now
                # A throttle may have arrived while we waited for our turn: look again.
                if not await self._wait_unblocked(permit):
                    break
            permit.sent_at = _now()
            self._sent.append((permit.sent_at, permit.bodies))
            while self._sent and self._sent[0][0] < permit.sent_at - 2 * self.budget.period:
                self._sent.popleft()
            yield permit
        finally:
            self.concurrency.release()

    def ready_in(self, bodies: int | None = None) -> float:
        """Seconds until a request of ``bodies`` (default: a full batch) could leave (cool-down,
        site pause, budgets); books nothing."""
        now = _now()
        blocked = max(self.blocked_until, self.site.paused_until) - now
        wait = max(0.0, blocked, self.budget.peek(now))
        if self.body_budget is not None:
            full = bodies if bodies is not None else self.settings.bodies_per_request
            wait = max(wait, self.body_budget.peek(now, full))
        return wait

    def report_success(self, permit: Permit) -> None:
        """The request was answered without throttling: grow concurrency; one sent after the last
        throttle reaction ends the streak of doubling cool-downs."""
        self.concurrency.increase()
        if permit.sent_at > self._reacted_at:
            self.streak = 0

    def own_cooldown(self) -> float:
        """Our cool-down for the current streak: ``cooldown_seconds`` x 2^(streak - 1), at most
        ``max_retry_after_seconds`` (but never below ``cooldown_seconds``)."""
        base = max(0.0, self.settings.cooldown_seconds)
        cap = max(base, self.settings.max_retry_after_seconds)
        return min(cap, base * 2.0 ** min(max(self.streak - 1, 0), 62))

    def report_throttle(self, permit: Permit, delay: float | None, cause: str) -> bool:
        """The server throttled the request sent under ``permit``: block the group for ``delay``
        seconds (the server's Retry-After; None: our own cool-down, which doubles while the
        server keeps throttling) and, once per episode, halve concurrency and learn the server's
        limit (see the module docstring).  Returns True when this answer started a new episode (a
        "trip"); :attr:`cooldown` is the cool-down it set."""
        now = _now()
        self.throttle_answers += 1
        new_episode = permit.sent_at > self._reacted_at
        if new_episode:
            self.streak += 1
        if delay is None:
            delay = self.own_cooldown()
        self.cooldown = max(0.0, delay)
        self.blocked_until = max(self.blocked_until, now + self.cooldown)
        if not new_episode:
            return False  # sent before we reacted: part of the episode we already handled
        self._reacted_at = now
        self.trips += 1
        self.concurrency.decrease()
        start = permit.sent_at - self.budget.period
        let_through = self.budget.count_since(start, before=permit.sent_at)
        bodies = sum(n for at, n in self._sent if max(start, self._evidence_since) <= at < permit.sent_at)
        learned = math.floor(let_through * LEARNED_MARGIN)
        forget = False
        if self.learned_limit is not None and bodies > let_through and bodies >= MIN_EVIDENCE:
            # Tripped although we keep to a learned request limit: the server counts bodies.
            body_limit = max(1, math.floor(bodies * LEARNED_MARGIN))
            if self.body_budget is None or body_limit < self.body_budget.limit:
                self.learned_body_limit = body_limit
                self.body_budget = BodyBudget(body_limit, period=self.budget.period)
                forget = True
        if let_through >= MIN_EVIDENCE and learned < self.budget.limit:
            self.learned_limit = float(learned)
            self.budget.set_limit(learned, burst=learned)
            forget = True
        if forget:
            self.budget.forget()
            if self.body_budget is not None:
                self.body_budget.forget()
            self._evidence_since = now
        event(
            "throttled; cooling down", level=logging.WARNING, site=self.site.name, api_group=self.name, cause=cause,
            requests=let_through, bodies=bodies, period_seconds=round(self.budget.period),
            cooldown_seconds=round(self.cooldown, 1), request_limit=int(self.budget.limit),
            body_limit=self.body_budget.limit if self.body_budget else None, concurrency=self.concurrency.slots,
        )
        return True


class SiteThrottle:
    """Everything that limits one site's requests, shared by all its tasks."""

    def __init__(self, name: str, settings: ThrottleSettings, *, period: float = 60.0) -> None:
        self.name = name
        self.settings = settings
        self.period = period
        self.paused_until = -math.inf
        self._groups: dict[str, GroupThrottle] = {}

    def group(self, api_group: str) -> GroupThrottle:
        """The throttle of one API group (created on first use)."""
        group = self._groups.get(api_group)
        if group is None:
            group = self._groups[api_group] = GroupThrottle(self, api_group, self.settings, period=self.period)
        return group

    @property
    def groups(self) -> dict[str, GroupThrottle]:
        """The groups used so far, by name."""
        return dict(self._groups)

    def slot(self, api_group: str, bodies: int = 1) -> AbstractAsyncContextManager[Permit]:
        """``async with site.slot(group) as permit:`` (see :meth:`GroupThrottle.slot`)."""
        return self.group(api_group).slot(bodies)

    def pause(self, seconds: float, reason: str) -> None:
        """Block every group of the site for ``seconds`` (GSB backup)."""
        until = _now() + max(0.0, seconds)
        if until > self.paused_until:
            event("pausing the site", level=logging.WARNING, site=self.name, seconds=round(seconds), reason=reason)
            self.paused_until = until
