"""Fall-back-hour wall times without a zone label, over real HTTP on a New York site: a row whose
duration settles which occurrence its start or end means lands at the true instants; a row with
both times inside the repeated hour keeps the first occurrence and is counted as ambiguous."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
from source_fixtures import make_site, sim_config

from exporter.model.datasets import by_name
from exporter.model.timezones import zoneinfo_for
from exporter.model.windows import Window
from exporter.simulator import Simulator
from exporter.webex.client import WebexClient
from exporter.webex.paging import fetch_window

NEW_YORK = 11  # timeZoneID of America/New_York: clocks fall back at 2026-11-01 06:00 UTC
SECOND_HOUR = Window(datetime(2026, 11, 1, 6, tzinfo=timezone.utc), datetime(2026, 11, 1, 7, tzinfo=timezone.utc))
NOW = datetime(2026, 11, 3, 12, tzinfo=timezone.utc)


def test_the_rows_duration_tells_which_occurrence_a_fall_back_time_means() -> None:
    dataset = by_name("meeting_attendees")
    config = sim_config(now=NOW, days=5, meetings_per_day=200)
    config = dataclasses.replace(config, sites=tuple(dataclasses.replace(s, default_time_zone_id=NEW_YORK)
                                                     for s in config.sites))
    window = Window(datetime(2026, 10, 31, tzinfo=timezone.utc), datetime(2026, 11, 2, tzinfo=timezone.utc))

    async def main() -> tuple[Any, list[dict[str, Any]]]:
        async with Simulator(config) as sim:
            site = make_site(sim.url, time_zone_id=NEW_YORK, unlabeled_time_zone_id=NEW_YORK)
            async with aiohttp.ClientSession() as session:
                fetched = await fetch_window(WebexClient(site, session), dataset, window, site=site,
                                             zone=zoneinfo_for(NEW_YORK), max_window_records=100_000)
            truth = [r for r in sim.ground_truth("demo", dataset.name) if window.contains(r["join_time"])]
            return fetched, truth

    fetched, truth = asyncio.run(main())
    landed = {(r["conf_id"], r["name"], r["join_time"], r["leave_time"]) for r in fetched.table.to_pylist()}
    want = {(r["conf_id"], r["name"], r["join_time"], r["leave_time"]) for r in truth}
    assert len(landed) == len(want) > 1000

    def second_hour(t: datetime) -> bool:
        return SECOND_HOUR.contains(t)

    # Rows with exactly one time in the repeated hour's second occurrence: their duration decides.
    settled = {r for r in want if second_hour(r[2]) != second_hour(r[3])}
    assert settled and settled <= landed
    # Rows with both times there cannot be told apart: first occurrence (an hour early), counted.
    hour = timedelta(hours=1)
    undecidable = want - landed
    assert all(second_hour(r[2]) and second_hour(r[3]) for r in undecidable), sorted(undecidable)[:3]
    assert {(c, n, j - hour, leave - hour) for c, n, j, leave in undecidable} == landed - want
    assert fetched.ambiguous_times["join_time"] >= len(undecidable) > 0
