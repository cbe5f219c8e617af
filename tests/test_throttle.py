"""The throttle on a virtual event-loop clock: budgets, AIMD concurrency, cool-downs, learning.

Every test runs on ``run_virtual``: minutes of waiting take microseconds, and times are exact.
"""

from __future__ import annotations

import asyncio
from collections import deque

import pytest
from source_fixtures import run_virtual

from exporter.config import ThrottleSettings
from exporter.webex.budgets import AdaptiveConcurrency, RateBudget
from exporter.webex.throttle import GroupThrottle, SiteThrottle


def now() -> float:
    return asyncio.get_running_loop().time()


def max_in_any_window(times: list[float], period: float) -> int:
    """The most requests in any half-open span of ``period`` seconds."""
    times = sorted(times)
    best, left = 0, 0
    for right, t in enumerate(times):
        while times[left] <= t - period:
            left += 1
        best = max(best, right - left + 1)
    return best


def test_rate_budget_spaces_requests_evenly_and_caps_each_period() -> None:
    budget = RateBudget(6, period=60)
    waits = [budget.reserve(100.0) for _ in range(8)]
    assert waits == pytest.approx([0, 10, 20, 30, 40, 50, 60.001, 70.001], abs=1e-6)
    burst = RateBudget(6, period=60, burst=3)
    assert [round(burst.reserve(0.0), 3) for _ in range(5)] == [0, 0, 0, 10, 20]


def test_lowering_the_rate_respects_requests_already_sent() -> None:
    budget = RateBudget(100, period=60)
    for _ in range(10):  # ten requests in the first 5.4 seconds
        budget.reserve(budget._booked[-1] + budget.interval if budget._booked else 0.0)
    budget.set_limit(5)
    # Five of the ten already stand inside the period: the next may go only when they left it.
    wait = budget.reserve(6.0)
    assert 6.0 + wait >= 60.0 + budget._booked[-6] - 1e-9


def test_group_slots_keep_the_budget_under_concurrency() -> None:
    async def main() -> tuple[list[float], int]:
        site = SiteThrottle("s", ThrottleSettings(requests_per_minute=30, max_concurrency=4))
        sent: list[float] = []
        peak = 0

        async def request() -> None:
            nonlocal peak
            async with site.slot("meeting_list") as permit:
                sent.append(permit.sent_at)
                peak = max(peak, site.group("meeting_list").concurrency.in_flight)
                await asyncio.sleep(0.5)  # server latency

        await asyncio.gather(*(request() for _ in range(100)))
        return sent, peak

    sent, peak = run_virtual(main())
    assert peak <= 4
    assert max_in_any_window(sent, 60.0) <= 30
    assert sent[-1] - sent[0] == pytest.approx(99 * 2.0, rel=0.01)  # evenly spaced: 2 s apart


def test_a_throttle_blocks_the_whole_group_but_not_other_groups() -> None:
    async def main() -> dict[str, float]:
        site = SiteThrottle("s", ThrottleSettings(requests_per_minute=6000, max_concurrency=8))
        group = site.group("meeting_list")
        async with site.slot("meeting_list") as permit:
            pass
        started = now()
        assert group.report_throttle(permit, 60.0, "000045") is True
        times: dict[str, float] = {}

        async def send(name: str, api_group: str) -> None:
            async with site.slot(api_group) as p:
                times[name] = p.sent_at - started
                assert p.waited_blocked == pytest.approx(times[name], abs=0.02) or api_group != "meeting_list"

        await asyncio.gather(send("list", "meeting_list"), send("user", "user"))
        return times

    times = run_virtual(main())
    assert times["list"] >= 60.0
    assert times["user"] < 1.0


def test_one_episode_of_throttle_answers_counts_as_one_trip_and_halves_concurrency_once() -> None:
    async def main() -> tuple[int, int, int]:
        site = SiteThrottle("s", ThrottleSettings(requests_per_minute=6000, max_concurrency=8))
        group = site.group("meeting_list")
        permits = []
        for _ in range(4):  # four requests in flight when the server starts throttling
            async with group.slot() as permit:
                permits.append(permit)
        trips = [group.report_throttle(p, 5.0, "000045") for p in permits]
        assert trips == [True, False, False, False]
        slots_after_first = group.concurrency.slots
        async with group.slot() as later:  # sent after the cool-down: a new episode if throttled
            pass
        group.report_throttle(later, 5.0, "000045")
        return group.trips, slots_after_first, group.concurrency.slots

    trips, after_first, after_second = run_virtual(main())
    assert (trips, after_first, after_second) == (2, 4, 2)


def test_aimd_concurrency_grows_back_slowly() -> None:
    limit = AdaptiveConcurrency(8)
    limit.decrease()
    limit.decrease()
    assert limit.slots == 2
    limit.increase()
    limit.increase()
    assert limit.slots == 2  # 2.9: additive, not multiplicative
    limit.increase()
    assert limit.slots == 3  # +1 after about one "round" (the current limit) of successes
    for _ in range(100):
        limit.increase()
    assert limit.slots == 8  # never above the configured maximum
    for _ in range(10):
        limit.decrease()
    assert limit.slots == 1  # never below one


def test_site_pause_blocks_every_group() -> None:
    async def main() -> list[float]:
        site = SiteThrottle("s", ThrottleSettings(requests_per_minute=6000))
        site.pause(300.0, "gsbStatus BACKUP")
        started = now()
        sent = []
        for api_group in ("meeting_list", "user", "general"):
            async with site.slot(api_group) as permit:
                sent.append(permit.sent_at - started)
        return sent

    assert all(t >= 300.0 for t in run_virtual(main()))


class FakeRateLimitedServer:
    """A server-side rate limit: at most ``limit`` accepted requests per ``period`` (sliding),
    then every request is refused for ``cooldown`` seconds.  ``clears`` starts a fresh count
    when the block ends (the simulator; Webex's 60 s block outlasts its 60 s window anyway)."""

    def __init__(self, limit: int, *, period: float = 60.0, cooldown: float = 60.0, clears: bool = True) -> None:
        self.limit, self.period, self.cooldown, self.clears = limit, period, cooldown, clears
        self.seen: deque[float] = deque()
        self.blocked_until = float("-inf")
        self.trips = 0
        self.requests = 0

    def answer(self, at: float) -> bool:
        self.requests += 1
        if at < self.blocked_until:
            return False
        if self.blocked_until > float("-inf") and self.clears:
            self.seen.clear()
            self.blocked_until = float("-inf")
        while self.seen and self.seen[0] <= at - self.period:
            self.seen.popleft()
        if len(self.seen) >= self.limit:
            self.trips += 1
            self.blocked_until = at + self.cooldown
            return False
        self.seen.append(at)
        return True


async def listing(server: FakeRateLimitedServer, site: SiteThrottle, requests: int, *, workers: int = 6,
                  cooldown: float, latency: float = 0.05) -> None:
    """``requests`` list pages fetched by ``workers`` tasks, each resent after a throttle."""
    group = site.group("meeting_list")
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            while True:
                async with group.slot() as permit:
                    await asyncio.sleep(latency)
                    accepted = server.answer(permit.sent_at)
                if accepted:
                    group.report_success(permit)
                    break
                group.report_throttle(permit, cooldown, "000045")

    await asyncio.gather(*(worker() for _ in range(workers)))


@pytest.mark.parametrize(
    "server_limit, cooldown, clears",
    [(30, 0.5, True), (100, 1.0, True), (240, 2.0, True), (30, 60.0, False), (200, 60.0, False)],
)
def test_a_long_listing_trips_an_unknown_server_limit_at_most_once(server_limit: int, cooldown: float,
                                                                   clears: bool) -> None:
    """Configured for 10x what the server allows, 600 requests trip the limit once; the learned
    budget holds for the rest of the listing and keeps close to the server's limit."""

    async def main() -> tuple[FakeRateLimitedServer, GroupThrottle, float]:
        server = FakeRateLimitedServer(server_limit, cooldown=cooldown, clears=clears)
        site = SiteThrottle("s", ThrottleSettings(requests_per_minute=server_limit * 10, max_concurrency=6))
        started = now()
        await listing(server, site, 600, cooldown=cooldown)
        return server, site.group("meeting_list"), now() - started

    server, group, elapsed = run_virtual(main())
    assert server.trips == 1 and group.trips == 1
    assert server.requests <= 600 + 6  # only the requests in flight during the one episode are resent
    assert group.learned_limit == int(server_limit * 0.9)
    # Throughput after the trip: within ~15% of the server's own limit (0.9 of it, bursty).
    ideal_minutes = 600 / server_limit
    assert elapsed / 60 <= ideal_minutes / 0.9 * 1.05 + cooldown / 60 + 1


def test_a_lone_throttle_after_a_few_requests_teaches_nothing() -> None:
    """A 000045 after 5 requests is no evidence of a per-minute limit: cool down, halve the
    concurrency, keep the configured budget (a misread here would crawl for the whole run)."""

    async def main() -> GroupThrottle:
        site = SiteThrottle("s", ThrottleSettings(requests_per_minute=600, max_concurrency=8))
        group = site.group("meeting_list")
        for _ in range(5):
            async with group.slot() as permit:
                pass
        group.report_throttle(permit, 1.0, "000045")
        return group

    group = run_virtual(main())
    assert group.learned_limit is None and group.budget.limit == 600 and group.concurrency.slots == 4


def test_a_cancelled_waiter_does_not_strand_the_others() -> None:
    """A task woken for a free slot but cancelled before taking it hands the slot on."""

    async def main() -> int:
        limit = AdaptiveConcurrency(1)
        await limit.acquire()
        first = asyncio.ensure_future(limit.acquire())
        second = asyncio.ensure_future(limit.acquire())
        await asyncio.sleep(0)
        limit.release()  # wakes `first` ...
        first.cancel()  # ... which is cancelled before it runs
        await asyncio.wait_for(second, timeout=5)
        return limit.in_flight

    assert run_virtual(main()) == 1
