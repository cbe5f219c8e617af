"""The call batcher over real HTTP: full requests from many callers' bodies, each caller gets its
own answers, first pages before the rest, and one caller's failure stays its own."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from source_fixtures import NOW, simulated

from exporter.errors import ApiError
from exporter.model.datasets import by_name
from exporter.model.windows import Window
from exporter.webex.batching import FIRST, REST, batcher_for
from exporter.webex.client import LIST_GROUP
from exporter.webex.protocol import Body, list_body

DATASET = by_name("meeting_usage")
WINDOW = Window(NOW - timedelta(days=3), NOW - timedelta(days=1))


def pages(*starts: int) -> list[Body]:
    """List bodies for one-record pages at ``starts`` (each answer echoes its startFrom)."""
    return [list_body(DATASET, WINDOW, start_from=s, maximum_num=1, time_zone_id=20) for s in starts]


def test_callers_bodies_fill_every_request_and_come_back_to_their_caller() -> None:
    """Four callers of six bodies each, ten bodies per request: three requests (10, 10, 4), not
    four part-empty ones; every caller's answers are its own pages, in its order."""

    async def main() -> None:
        async with simulated(bodies_per_request=10) as (sim, client, _site):
            batcher = batcher_for(client, LIST_GROUP)
            callers = [list(range(1 + 6 * k, 7 + 6 * k)) for k in range(4)]
            answers = await asyncio.gather(*(batcher.call(pages(*starts)) for starts in callers))
            assert sim.stats()["requests"] == 3
            for starts, got in zip(callers, answers, strict=True):
                assert [a.start_from for a in got] == starts and all(a.success for a in got)

    asyncio.run(main())


def test_first_pages_go_before_queued_pages_of_older_listings() -> None:
    """One request at a time, two bodies each: a first page queued after four pages of another
    listing still leaves in the first request, and is answered first."""

    async def main() -> None:
        async with simulated(bodies_per_request=2, max_concurrency=1) as (_sim, client, _site):
            batcher = batcher_for(client, LIST_GROUP)
            finished: list[str] = []

            async def call(name: str, starts: list[int], priority: tuple[int, int]) -> None:
                answers = await batcher.call(pages(*starts), priority=priority)
                assert [a.start_from for a in answers] == starts
                finished.append(name)

            rest = asyncio.create_task(call("rest", [2, 3, 4, 5], (REST, 1)))
            first = asyncio.create_task(call("first", [1], (FIRST, 2)))
            await asyncio.gather(rest, first)
            assert finished == ["first", "rest"]

    asyncio.run(main())


def test_a_failing_body_fails_only_its_own_caller() -> None:
    """A caller whose body the server refuses (unknown operation) gets the ApiError; the caller
    that shared its request gets its answers."""

    async def main() -> None:
        async with simulated(bodies_per_request=10) as (_sim, client, _site):
            batcher = batcher_for(client, LIST_GROUP)
            bogus = Body("java:com.webex.service.binding.history.LstNoSuchHistory", label="LstNoSuchHistory probe")
            good, bad = await asyncio.gather(batcher.call(pages(1, 2, 3)), batcher.call([bogus]),
                                             return_exceptions=True)
            assert not isinstance(good, BaseException) and [a.start_from for a in good] == [1, 2, 3]
            assert isinstance(bad, ApiError)

    asyncio.run(main())


def test_a_caller_cancelled_during_a_failed_shared_request_is_not_sent_again() -> None:
    """Two callers share a request that fails (one body is refused).  The one cancelled while it
    was in flight is not resent on its own; the other is, and gets its ApiError.  Every request
    the server saw is counted once, in the callers' stats."""
    from exporter.model.counters import Counters

    async def main() -> None:
        async with simulated(bodies_per_request=10) as (sim, client, _site):
            sim.set_faults(latency_ms=150)
            batcher = batcher_for(client, LIST_GROUP)
            bogus = Body("java:com.webex.service.binding.history.LstNoSuchHistory", label="LstNoSuchHistory probe")
            stats_a, stats_b = Counters(), Counters()
            a = asyncio.create_task(batcher.call(pages(1, 2, 3), stats=stats_a))
            b = asyncio.create_task(batcher.call([bogus], stats=stats_b))
            for _ in range(5000):  # until the shared request is on its way (its answer takes 150 ms)
                if client.stats.requests:
                    break
                await asyncio.sleep(0.001)
            assert client.stats.requests == 1
            a.cancel()
            with pytest.raises(ApiError):
                await b
            with pytest.raises(asyncio.CancelledError):
                await a
            stats = sim.stats()
            assert stats["requests"] == 2 and stats["bodies"] == 4 + 1, stats  # shared, then the bogus body alone
            assert (stats_a.requests, stats_b.requests) == (0, 2)  # the shared one to b, still waiting

    asyncio.run(main())


@pytest.mark.parametrize("bodies", [1, 25])
def test_any_number_of_bodies_is_answered_in_order(bodies: int) -> None:
    """More bodies than one request holds are split over requests and put back in order."""

    async def main() -> None:
        async with simulated(bodies_per_request=10) as (sim, client, _site):
            answers = await batcher_for(client, LIST_GROUP).call(pages(*range(1, bodies + 1)))
            assert [a.start_from for a in answers] == list(range(1, bodies + 1))
            assert sim.stats()["requests"] == -(-bodies // 10)

    asyncio.run(main())


def test_callers_of_a_request_that_stops_the_site_each_get_their_own_error() -> None:
    """Credentials refused on a shared request stop the site for every caller in it; each gets
    its own AuthError, so the context one caller attaches (its window) is not another's."""
    from exporter.errors import AuthError

    async def main() -> None:
        async with simulated(bodies_per_request=10, password="wrong-password") as (sim, client, _site):
            batcher = batcher_for(client, LIST_GROUP)
            first, second = await asyncio.gather(batcher.call(pages(1, 2)), batcher.call(pages(3)),
                                                 return_exceptions=True)
            assert isinstance(first, AuthError) and isinstance(second, AuthError)
            assert sim.stats()["requests"] == 1  # one shared request, never retried
            assert first is not second and str(first) == str(second)
            first.add_context(window=WINDOW)
            assert second.window is None

    asyncio.run(main())
