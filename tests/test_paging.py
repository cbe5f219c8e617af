"""fetch_window over the real simulator: complete, typed, consistent listings, or a loud failure."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from source_fixtures import NOW, assert_equals_truth, sim_config, simulated, truth_in

from exporter.errors import IncompleteListingError
from exporter.model.datasets import DATASETS, by_name
from exporter.model.windows import Window
from exporter.records.arrow_schema import arrow_schema
from exporter.simulator import SiteConfig
from exporter.webex.paging import DEFAULT_MAX_RESCANS, fetch_window

#: Two days that end a day before "now": whole UTC days, so window edges cut through the data.
WINDOW = Window(NOW - timedelta(days=3), NOW - timedelta(days=1))


@pytest.mark.parametrize("dataset", DATASETS, ids=[d.name for d in DATASETS])
def test_every_dataset_equals_the_ground_truth(dataset) -> None:  # type: ignore[no-untyped-def]
    """Small pages (7) and batches (3 per request) over a window whose scope is written on
    Los Angeles wall time (datasets that send timeZoneID) or on the site's own zone (Shanghai,
    for datasets whose times are unlabeled): every record, every typed column, nothing else."""
    config = sim_config(sites=(SiteConfig("demo", default_time_zone_id=45, return_scheduled_pmr_switch=True),))

    async def main() -> None:
        async with simulated(config, page_size=7, bodies_per_request=3, time_zone_id=4,
                             unlabeled_time_zone_id=45) as (sim, client, site):
            pages: list[tuple[int, int, int]] = []
            fetch = await fetch_window(client, dataset, WINDOW, site=site, max_window_records=100_000,
                                       on_page=lambda *args: pages.append(args))
            truth = truth_in(sim, dataset, WINDOW)
            assert truth, "the simulated window should hold records"
            assert fetch.table.schema == arrow_schema(dataset)
            assert fetch.total == len(truth) == fetch.table.num_rows
            assert_equals_truth(fetch.table, truth, dataset)
            ideal_pages = -(-len(truth) // 7)
            assert fetch.pages == ideal_pages and fetch.rescans == 0
            assert fetch.requests == 1 + -(-(ideal_pages - 1) // 3)  # first page alone, then batches of 3
            assert [p[0] for p in pages] == list(range(1, ideal_pages + 1))
            assert pages[-1][1] == ideal_pages and sum(p[2] for p in pages) == len(truth)
            assert set(fetch.table.column("site").to_pylist()) == {"demo"}

    asyncio.run(main())


def test_an_empty_window_is_an_empty_table_not_an_error() -> None:
    async def main() -> None:
        async with simulated() as (sim, client, site):
            empty = Window(NOW - timedelta(days=80), NOW - timedelta(days=79))
            fetch = await fetch_window(client, by_name("meeting_usage"), empty, site=site, max_window_records=10)
            assert (fetch.total, fetch.table.num_rows, fetch.requests) == (0, 0, 1)
            assert fetch.table.schema == arrow_schema(by_name("meeting_usage"))
            assert sim.stats()["exceptions"] == {"000015": 1}

    asyncio.run(main())


def test_a_window_over_max_window_records_is_split_and_still_complete() -> None:
    dataset = by_name("meeting_attendees")

    async def main() -> None:
        async with simulated(page_size=50) as (sim, client, site):
            truth = truth_in(sim, dataset, WINDOW)
            fetch = await fetch_window(client, dataset, WINDOW, site=site, max_window_records=60)
            assert fetch.splits >= 2 and fetch.total == len(truth)
            assert_equals_truth(fetch.table, truth, dataset)

    asyncio.run(main())


@pytest.mark.parametrize("kind", ["mutate_add", "mutate_remove"])
def test_rows_moving_during_the_listing_cause_a_rescan_that_ends_complete(kind: str) -> None:
    """The simulator adds (or removes) a row of the window right after answering a page, so the
    later pages shift: the total check notices, the window is listed again, and the result is
    exactly what the server holds afterwards."""
    dataset = by_name("meeting_usage")

    async def main() -> None:
        async with simulated(page_size=5, bodies_per_request=2) as (sim, client, site):
            sim.queue_fault(kind, 1, operation=dataset.operation)
            fetch = await fetch_window(client, dataset, WINDOW, site=site, max_window_records=10_000)
            assert sim.stats()["faults"] == {kind: 1}
            assert fetch.rescans == 1
            truth = truth_in(sim, dataset, WINDOW)
            assert fetch.total == len(truth)
            assert_equals_truth(fetch.table, truth, dataset)
            pages = -(-len(truth) // 5)
            assert fetch.pages <= 2 * (pages + 1)  # one scan, then one rescan: nothing unbounded

    asyncio.run(main())


def test_a_listing_that_never_holds_lands_unverified_with_every_row_it_saw() -> None:
    """Rows keep arriving while the window is listed: after the bounded rescans the listing is
    returned unverified (not dropped), holding every row the server ever showed; a packed
    listing (``land_unverified=False``) fails loudly instead, so its windows are listed alone."""
    dataset = by_name("meeting_usage")

    async def main() -> None:
        async with simulated(page_size=5, bodies_per_request=2) as (sim, client, site):
            sim.queue_fault("mutate_add", 1000, operation=dataset.operation)
            fetch = await fetch_window(client, dataset, WINDOW, site=site, max_window_records=10_000)
            assert not fetch.verified and f"after {DEFAULT_MAX_RESCANS} rescans" in (fetch.problem or "")
            assert fetch.problem and fetch.rescans == DEFAULT_MAX_RESCANS
            pages = -(-len(truth_in(sim, dataset, WINDOW)) // 5)
            # Every scan is bounded by ceil(total/page) pages; scans by 1 + max_rescans.
            assert sim.stats()["requests"] <= (DEFAULT_MAX_RESCANS + 1) * (pages + 5)
            seen = set(fetch.table.column("conf_id").to_pylist())
            before = {r["conf_id"] for r in truth_in(sim, dataset, WINDOW)}
            assert len(seen) >= fetch.total - 5  # the union of the scans, not one short scan

            with pytest.raises(IncompleteListingError, match="after 0 rescans") as caught:
                await fetch_window(client, dataset, WINDOW, site=site, max_window_records=10_000, max_rescans=0,
                                   land_unverified=False)
            assert "meeting_usage" in str(caught.value) and str(WINDOW) in str(caught.value)
            assert before

    asyncio.run(main())


def test_preliminary_history_uses_the_preliminary_operation() -> None:
    dataset = by_name("meeting_usage")

    async def main() -> None:
        async with simulated() as (sim, client, site):
            fetch = await fetch_window(client, dataset, WINDOW, site=site, preliminary=True, max_window_records=10_000)
            assert sim.stats()["requests_by_operation"] == {"LstmeetingusagePreliminaryHistory": fetch.requests}
            assert fetch.preliminary and set(fetch.table.column("_preliminary").to_pylist()) <= {True}
            truth = [r for r in sim.ground_truth("demo", dataset.name, preliminary=True)
                     if WINDOW.contains(r[dataset.start_column])]
            assert fetch.total == len(truth)

    asyncio.run(main())


def test_a_listing_cancelled_midway_reports_what_it_cost() -> None:
    """Small pages, one body per request, a split window: cancelled after a few requests, the
    listing hands ``on_failure`` every request it sent (split halves included) and every page it
    received, so a run that is stopped still counts them."""
    dataset = by_name("meeting_attendees")

    async def main() -> None:
        async with simulated(page_size=5, bodies_per_request=1, max_concurrency=2) as (sim, client, site):
            sim.set_faults(latency_ms=20)
            costs = []
            listing = asyncio.create_task(fetch_window(client, dataset, WINDOW, site=site, max_window_records=30,
                                                       on_failure=costs.append))
            for _ in range(5000):
                if client.stats.requests >= 6:
                    break
                await asyncio.sleep(0.001)
            listing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await listing
            (cost,) = costs
            assert cost.requests == client.stats.requests >= 6  # the top window's and its halves'
            # Every answer that came back is counted; at most the 2 requests in flight were not answered.
            for _ in range(5000):
                if sim.stats()["requests"] == client.stats.requests:
                    break
                await asyncio.sleep(0.001)
            assert sim.stats()["bodies"] - 2 <= cost.pages <= sim.stats()["bodies"]

    asyncio.run(main())


def test_a_server_that_pages_smaller_than_asked_is_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    """We ask for 500 per page; this server caps pages at 7 (its ``MAXIMUM_CAP`` lowered): the
    short first page sets the step, every record still arrives, in ceil(total / 7) pages."""
    from exporter.simulator.xmlapi import query

    monkeypatch.setattr(query, "MAXIMUM_CAP", 7)
    dataset = by_name("meeting_usage")

    async def main() -> None:
        async with simulated(page_size=500) as (sim, client, site):
            fetch = await fetch_window(client, dataset, WINDOW, site=site, max_window_records=10_000)
            truth = truth_in(sim, dataset, WINDOW)
            assert_equals_truth(fetch.table, truth, dataset)
            assert fetch.pages == -(-len(truth) // 7) and fetch.rescans == 0

    asyncio.run(main())
