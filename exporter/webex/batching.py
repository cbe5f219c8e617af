"""Coalescing page requests from concurrent listings into shared HTTP requests.

One-day windows usually fit on one page, so without help every window costs one HTTP request,
and a backfill of 11 datasets × 90 days is ~1,000 requests per site - which is what the request
budget, not the data, makes slow.  The Webex XML API takes several ``bodyContent`` elements per
request, so :class:`CallBatcher` gathers the bodies that concurrent listings (other windows, other
datasets of the same site and API group) submit within a few milliseconds and sends them together,
up to the client's current ``bodies_per_request`` (which itself adapts on ``000053``).

Batches fill because the batcher sends a batch only when the site's request budget could let a
request leave now (``GroupThrottle.ready_in``) and a concurrency slot is free; meanwhile new bodies
queue up, so each request leaves as full as the queue allows.  (Flushing eagerly would send each
body alone, every one of them then waiting for budget inside the client.)  A caller's bodies may
be split over two requests, so no request leaves part-empty while bodies wait.

Order: callers pass a priority; lower goes first, ties in arrival order.  Listings ask for their
first page with :data:`FIRST` (it unlocks all their other pages) and for the rest with
:data:`REST` plus their own age, so the oldest listing finishes first and lands early instead of
every listing finishing together at the end.

Isolation: if a combined request fails, every waiting caller's bodies are sent again on their own, so one
window's ``ApiError`` never fails the windows that happened to share its request.  Site-level
errors (auth, GSB pause) are raised to every caller, as they would be anyway.
"""

from __future__ import annotations

import asyncio
import copy
import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import FatalSiteError, SitePausedError
from ..model.counters import Counters
from .client import WebexClient
from .protocol import Body, BodyResponse

__all__ = ["FIRST", "REST", "CallBatcher", "batcher_for", "DEFAULT_LINGER_SECONDS"]

#: How long the first body of a batch waits for company.  Small against any network round trip.
DEFAULT_LINGER_SECONDS = 0.003
#: Priority classes (the first item of a priority tuple): probes and first pages, then the rest.
FIRST, REST = 0, 1

Priority = tuple[int, int]


@dataclass(slots=True)
class _Waiter:
    """One caller's bodies, answered together once every part of them is."""

    bodies: list[Body]
    stats: Counters | None
    answers: list[BodyResponse | None] = field(init=False)
    taken: int = 0  # bodies already put into a batch
    unanswered: int = field(init=False)
    future: asyncio.Future[list[BodyResponse]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def __post_init__(self) -> None:
        self.answers = [None] * len(self.bodies)
        self.unanswered = len(self.bodies)


@dataclass(slots=True)
class _Part:
    """``waiter.bodies[start:end]``, riding in one batch."""

    waiter: _Waiter
    start: int
    end: int

    @property
    def bodies(self) -> list[Body]:
        return self.waiter.bodies[self.start : self.end]

    def answered(self, answers: Sequence[BodyResponse]) -> None:
        waiter = self.waiter
        waiter.answers[self.start : self.end] = answers
        waiter.unanswered -= self.end - self.start
        if waiter.unanswered == 0 and not waiter.future.done():
            waiter.future.set_result(waiter.answers)  # type: ignore[arg-type]  # none unanswered: no None left

    def failed(self, exception: BaseException) -> None:
        if not self.waiter.future.done():
            self.waiter.future.set_exception(exception)


class CallBatcher:
    """Batches :meth:`WebexClient.call` for one (client, API group)."""

    def __init__(self, client: WebexClient, api_group: str, *, linger: float = DEFAULT_LINGER_SECONDS) -> None:
        self.client = client
        self.api_group = api_group
        self.linger = linger
        self._queue: list[tuple[Priority, int, _Waiter]] = []  # a heap
        self._arrivals = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()
        self._dispatcher: asyncio.Task[None] | None = None
        self._slot_freed = asyncio.Event()
        self._next_send_at = float("-inf")
        self.max_in_flight = max(1, client.site.throttle.max_concurrency)
        #: Requests that carried bodies of more than one caller (for tests and metrics).
        self.shared_requests = 0

    async def call(
        self, bodies: Sequence[Body], *, stats: Counters | None = None, priority: Priority = (REST, 0)
    ) -> list[BodyResponse]:
        """Answers for ``bodies``, in order, sent together with other callers' bodies when possible
        (lower ``priority`` first)."""
        if not bodies:
            return []
        waiter = _Waiter(list(bodies), stats)
        heapq.heappush(self._queue, (priority, next(self._arrivals), waiter))
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())
        return await waiter.future

    async def close(self) -> None:
        """Stop sending: cancel the dispatcher and the requests in flight, and every caller still
        waiting (a run closes its clients once its windows are done or dropped, and a request
        left running would only fail on its closed session and be retried)."""
        tasks = [t for t in (self._dispatcher, *self._tasks) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, _, waiter in self._queue:
            if not waiter.future.done():
                waiter.future.cancel()
        self._queue.clear()

    async def _dispatch(self) -> None:
        """Send queued bodies, one batch each time the budget and a concurrency slot allow."""
        loop = asyncio.get_running_loop()
        group = self.client.throttle.group(self.api_group)
        # A short linger gathers the bodies of windows that start in the same instant.
        await asyncio.sleep(self.linger)
        while self._queue:
            if len(self._tasks) >= self.max_in_flight:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            # The client books the budget only once its task runs, so pace by our own last send too:
            # evenly, or B times faster while the budget allows a burst of B (after a throttle the
            # learned budget may be spent at once), which still leaves each request time to book.
            delay = max(group.ready_in(), self._next_send_at - loop.time())
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            batch = self._take_batch()
            if batch:
                self._send(batch)
                self._next_send_at = loop.time() + group.budget.interval / max(1, group.budget.burst)

    def _take_batch(self) -> list[_Part]:
        """Up to ``bodies_per_request`` bodies from the front of the queue, splitting the last
        caller's bodies if they do not all fit."""
        room = max(1, self.client.bodies_per_request)
        batch: list[_Part] = []
        while self._queue and room:
            waiter = self._queue[0][2]
            if waiter.future.done():  # its caller was cancelled
                heapq.heappop(self._queue)
                continue
            take = min(room, len(waiter.bodies) - waiter.taken)
            batch.append(_Part(waiter, waiter.taken, waiter.taken + take))
            waiter.taken += take
            room -= take
            if waiter.taken == len(waiter.bodies):
                heapq.heappop(self._queue)
        return batch

    def _send(self, batch: list[_Part]) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(batch))
        self._tasks.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slot_freed.set()

    async def _deliver(self, batch: list[_Part]) -> None:
        live = [p for p in batch if not p.waiter.future.done()]  # a caller may have been cancelled
        if not live:
            return
        if len(live) == 1:
            await self._deliver_alone(live[0])
            return
        stats = Counters()
        bodies = [body for part in live for body in part.bodies]
        try:
            answers = await self.client.call(bodies, self.api_group, stats=stats)
        except (FatalSiteError, SitePausedError) as exc:
            self._account(live, stats)
            # Each caller its own instance: callers attach their own context (window) to it.
            for index, part in enumerate(live):
                part.failed(exc if index == 0 else copy.copy(exc))
            return
        except Exception:
            self._account(live, stats)
            # Isolate: each caller's own bodies, alone, decide its own fate (callers cancelled
            # meanwhile need nothing sent again).
            await asyncio.gather(*(self._deliver_alone(p) for p in live if not p.waiter.future.done()))
            return
        except asyncio.CancelledError:
            for part in live:
                part.waiter.future.cancel()
            raise
        self._account(live, stats)
        offset = 0
        for part in live:
            size = part.end - part.start
            part.answered(answers[offset : offset + size])
            offset += size

    def _account(self, live: list[_Part], stats: Counters) -> None:
        """Count a shared request (its retries too, answered or failed) once: to the first caller
        that is still waiting, or the first at all; the others rode along for free."""
        self.shared_requests += stats.requests
        part = next((p for p in live if not p.waiter.future.done()), live[0])
        if part.waiter.stats is not None:
            part.waiter.stats.add(stats)

    async def _deliver_alone(self, part: _Part) -> None:
        try:
            answers = await self.client.call(part.bodies, self.api_group, stats=part.waiter.stats)
        except asyncio.CancelledError:
            part.waiter.future.cancel()
            raise
        except Exception as exc:
            part.failed(exc)
            return
        part.answered(answers)


def batcher_for(client: WebexClient, api_group: str) -> CallBatcher:
    """The client's batcher for ``api_group`` (one per client and group, created on first use)."""
    batchers = client.batchers
    if api_group not in batchers:
        batchers[api_group] = CallBatcher(client, api_group)
    return batchers[api_group]
