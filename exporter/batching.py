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
body alone, every one of them then waiting for budget inside the client.)

Isolation: if a combined request fails, every caller's bodies are sent again on their own, so one
window's ``ApiError`` never fails the windows that happened to share its request.  Site-level
errors (auth, GSB pause) are raised to every caller, as they would be anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from .client import RequestStats, WebexClient
from .errors import FatalSiteError, SitePausedError
from .protocol import Body, BodyResponse

__all__ = ["CallBatcher", "batcher_for", "DEFAULT_LINGER_SECONDS"]

#: How long the first body of a batch waits for company.  Small against any network round trip.
DEFAULT_LINGER_SECONDS = 0.003


@dataclass(slots=True)
class _Waiter:
    bodies: list[Body]
    stats: RequestStats | None
    future: asyncio.Future[list[BodyResponse]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class CallBatcher:
    """Batches :meth:`WebexClient.call` for one (client, API group)."""

    def __init__(self, client: WebexClient, api_group: str, *, linger: float = DEFAULT_LINGER_SECONDS) -> None:
        self.client = client
        self.api_group = api_group
        self.linger = linger
        self._queue: list[_Waiter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._dispatcher: asyncio.Task[None] | None = None
        self._slot_freed = asyncio.Event()
        self._next_send_at = float("-inf")
        self.max_in_flight = max(1, client.site.throttle.max_concurrency)
        #: Requests that carried bodies of more than one caller (for tests and metrics).
        self.shared_requests = 0

    async def call(self, bodies: Sequence[Body], *, stats: RequestStats | None = None) -> list[BodyResponse]:
        """Answers for ``bodies``, in order, sent together with other callers' bodies when possible."""
        capacity = max(1, self.client.bodies_per_request)
        if len(bodies) >= capacity:  # already a full request: nothing to gain by waiting
            return await self.client.call(bodies, self.api_group, stats=stats)
        waiter = _Waiter(list(bodies), stats)
        self._queue.append(waiter)
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())
        return await waiter.future

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
            # The client books the budget only once its task runs, so pace by our own last send too.
            delay = max(group.ready_in(), self._next_send_at - loop.time())
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            self._send(self._take_batch())
            self._next_send_at = loop.time() + group.budget.interval

    def _take_batch(self) -> list[_Waiter]:
        capacity = max(1, self.client.bodies_per_request)
        batch: list[_Waiter] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].bodies) <= capacity):
            waiter = self._queue.pop(0)
            batch.append(waiter)
            size += len(waiter.bodies)
        return batch

    def _send(self, batch: list[_Waiter]) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(batch))
        self._tasks.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slot_freed.set()

    async def _deliver(self, batch: list[_Waiter]) -> None:
        live = [w for w in batch if not w.future.done()]  # a caller may have been cancelled
        if not live:
            return
        if len(live) == 1:
            await self._deliver_alone(live[0])
            return
        stats = RequestStats()
        bodies = [body for waiter in live for body in waiter.bodies]
        try:
            answers = await self.client.call(bodies, self.api_group, stats=stats)
        except (FatalSiteError, SitePausedError) as exc:
            for waiter in live:
                _settle(waiter, exception=exc)
            return
        except Exception:
            # Isolate: each caller's own bodies, alone, decide its own fate.
            await asyncio.gather(*(self._deliver_alone(w) for w in live))
            return
        except asyncio.CancelledError:
            for waiter in live:
                waiter.future.cancel()
            raise
        self.shared_requests += stats.requests
        # The shared request is accounted to the first caller; the others rode along for free.
        if live[0].stats is not None:
            live[0].stats.add(stats)
        offset = 0
        for waiter in live:
            _settle(waiter, result=answers[offset : offset + len(waiter.bodies)])
            offset += len(waiter.bodies)

    async def _deliver_alone(self, waiter: _Waiter) -> None:
        try:
            answers = await self.client.call(waiter.bodies, self.api_group, stats=waiter.stats)
        except asyncio.CancelledError:
            waiter.future.cancel()
            raise
        except Exception as exc:
            _settle(waiter, exception=exc)
            return
        _settle(waiter, result=answers)


def _settle(waiter: _Waiter, *, result: list[BodyResponse] | None = None, exception: BaseException | None = None) -> None:
    if waiter.future.done():
        return
    if exception is not None:
        waiter.future.set_exception(exception)
    else:
        waiter.future.set_result(result or [])


def batcher_for(client: WebexClient, api_group: str) -> CallBatcher:
    """The client's batcher for ``api_group`` (one per client and group, created on first use)."""
    batchers = client.batchers
    if api_group not in batchers:
        batchers[api_group] = CallBatcher(client, api_group)
    return batchers[api_group]
