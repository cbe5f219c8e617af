"""The building blocks of a group's throttle (:mod:`exporter.webex.throttle`): a request budget
(sliding-window cap, evenly spaced), a budget of bodyContent elements, and an adaptive (AIMD)
concurrency limit."""

from __future__ import annotations

import asyncio
import math
from collections import deque

__all__ = ["RateBudget", "BodyBudget", "AdaptiveConcurrency"]


def _now() -> float:
    return asyncio.get_running_loop().time()


class RateBudget:
    """At most ``limit`` requests in any ``period`` seconds, evenly spaced (``period / limit``
    apart), with up to ``burst`` requests at once.  ``reserve(now)`` books the next free slot and
    returns how long to wait for it; booked slots count even if the caller then gives up, which
    only errs on the slow side."""

    def __init__(self, limit: float, *, period: float = 60.0, burst: int = 1) -> None:
        if limit <= 0 or period <= 0 or burst < 1:
            raise ValueError(f"bad budget: limit={limit} period={period} burst={burst}")
        self.period = period
        self.burst = burst
        self._tat = -math.inf  # GCRA theoretical arrival time
        self._booked: deque[float] = deque()
        self.limit = float(limit)

    @property
    def interval(self) -> float:
        """Seconds between evenly spaced requests."""
        return self.period / self.limit

    def set_limit(self, limit: float, *, burst: int | None = None) -> None:
        """Change the rate (and the burst); bookings already made keep counting against the cap."""
        self.limit = max(1.0, float(limit))
        if burst is not None:
            self.burst = max(1, burst)

    def forget(self) -> None:
        """Drop the booking history: the server's count starts afresh (after its block)."""
        self._booked.clear()
        self._tat = -math.inf

    def count_since(self, moment: float, *, before: float | None = None) -> int:
        """Booked requests in ``[moment, before)`` (``before`` open-ended when ``None``)."""
        return sum(1 for t in self._booked if t >= moment and (before is None or t < before))

    def peek(self, now: float) -> float:
        """How long a request made at ``now`` would wait, without booking anything."""
        booked = [t for t in self._booked if t > now - self.period]
        tau = (self.burst - 1) * self.interval
        send_at = max(now, max(self._tat, now) - tau)
        cap = int(self.limit)
        if len(booked) >= cap:
            send_at = max(send_at, booked[-cap] + self.period + 1e-3)
        return send_at - now

    def reserve(self, now: float) -> float:
        """Book the earliest allowed send time at or after ``now``; return the wait in seconds."""
        while self._booked and self._booked[0] <= now - self.period:
            self._booked.popleft()
        tau = (self.burst - 1) * self.interval
        tat = max(self._tat, now)
        send_at = max(now, tat - tau)
        cap = int(self.limit)
        if len(self._booked) >= cap:
            # Hard cap: the request `cap` bookings back must have left the period.  The tiny
            # epsilon keeps "exactly one period later" outside a server's closed window.
            send_at = max(send_at, self._booked[-cap] + self.period + 1e-3)
        self._tat = max(tat, send_at) + self.interval
        self._booked.append(send_at)
        return send_at - now


class BodyBudget:
    """At most ``limit`` bodyContent elements in any ``period`` seconds, booked per request
    (a request of ``n`` bodies books ``n``; one larger than the whole limit books the limit, so
    it can still leave).  Learned budgets may be spent in a burst, so there is no spacing."""

    def __init__(self, limit: int, *, period: float = 60.0) -> None:
        if limit < 1 or period <= 0:
            raise ValueError(f"bad body budget: limit={limit} period={period}")
        self.limit = int(limit)
        self.period = period
        self._booked: deque[tuple[float, int]] = deque()

    def _send_at(self, now: float, bodies: int) -> float:
        need = min(max(1, bodies), self.limit)
        used = 0
        for at, weight in reversed(self._booked):
            if at <= now - self.period:
                break
            used += weight
            if used + need > self.limit:
                # Everything from this booking back must have left the period first.
                return max(now, at + self.period + 1e-3)
        return now

    def peek(self, now: float, bodies: int) -> float:
        """How long a request of ``bodies`` made at ``now`` would wait, without booking it."""
        return self._send_at(now, bodies) - now

    def reserve(self, now: float, bodies: int) -> float:
        """Book ``bodies`` at the earliest time at or after ``now`` they fit; return the wait."""
        while self._booked and self._booked[0][0] <= now - self.period:
            self._booked.popleft()
        send_at = self._send_at(now, bodies)
        self._booked.append((send_at, min(max(1, bodies), self.limit)))
        return send_at - now

    def forget(self) -> None:
        """Drop the booking history (the server's count starts afresh after its block)."""
        self._booked.clear()


class AdaptiveConcurrency:
    """An AIMD concurrency limit: ``acquire()``/``release()`` like a semaphore whose size halves
    on :meth:`decrease` and grows by ``1/limit`` per success (about +1 per round trip)."""

    def __init__(self, maximum: int, *, minimum: int = 1, start: int | None = None) -> None:
        if not 1 <= minimum <= maximum:
            raise ValueError(f"bad concurrency bounds: minimum={minimum} maximum={maximum}")
        self.maximum = maximum
        self.minimum = minimum
        self.limit = float(start if start is not None else maximum)
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def slots(self) -> int:
        """Requests allowed in flight now."""
        return max(self.minimum, int(self.limit))

    async def acquire(self) -> None:
        """Wait for a free slot."""
        while self.in_flight >= self.slots:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:  # cancelled while queued, or right after being woken
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                else:
                    self._wake()  # we were woken but will not take the slot: pass it on
                raise
        self.in_flight += 1

    def release(self) -> None:
        """Free a slot."""
        self.in_flight -= 1
        self._wake()

    def increase(self) -> None:
        """Additive increase after a success."""
        self.limit = min(float(self.maximum), self.limit + 1.0 / max(self.limit, 1.0))
        self._wake()

    def decrease(self) -> None:
        """Multiplicative decrease after a throttle."""
        self.limit = max(float(self.minimum), self.limit / 2.0)

    def _wake(self) -> None:
        free = self.slots - self.in_flight
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1
