"""Time: history delay, late rows, retention, in-progress sessions, mutations, the clock controls."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp

from exporter.model.datasets import by_name
from exporter.simulator import probe

CTX = probe.security("demo", webex_id="admin", password="sim-password")
NOW = datetime(2026, 3, 10, 12, tzinfo=timezone.utc)


def keys(sim: Any, dataset: str, **kw: Any) -> set[int]:
    return {r["conf_id"] for r in sim.ground_truth("demo", dataset, **kw)}


def listed_total(sim: Any, dataset: str, start: datetime, end: datetime) -> int:
    ds = by_name(dataset)

    async def main() -> int:
        async with aiohttp.ClientSession() as http:
            _, _, data = await probe.post(http, sim.url, probe.envelope([probe.list_body(ds, start=start, end=end)], CTX))
        reply = probe.read_reply(data)[0]
        return reply.total if reply.result == "SUCCESS" else 0

    return asyncio.run(main())


def running_session(sim: Any) -> dict:
    return next(r for r in sim.ground_truth("demo", "scheduled_sessions") if r["status"] == "INPROGRESS")


def test_history_appears_a_delay_after_the_session_ends(sim_factory: Any) -> None:
    sim = sim_factory(late_fraction=0.0)
    live = running_session(sim)
    end = live["start_time"] + timedelta(minutes=live["duration"])
    assert live["conf_id"] not in keys(sim, "meeting_usage") | keys(sim, "meeting_usage", preliminary=True)
    sim.clock.set(end + timedelta(seconds=59))
    assert live["conf_id"] not in keys(sim, "meeting_usage", preliminary=True)
    sim.clock.set(end + timedelta(seconds=60))  # preliminary_delay_seconds
    assert live["conf_id"] in keys(sim, "meeting_usage", preliminary=True)
    sim.clock.set(end + timedelta(seconds=599))
    assert live["conf_id"] not in keys(sim, "meeting_usage")
    assert listed_total(sim, "meeting_usage", live["start_time"], live["start_time"]) == 0
    sim.clock.set(end + timedelta(seconds=600))  # history_delay_seconds
    assert live["conf_id"] in keys(sim, "meeting_usage")
    assert listed_total(sim, "meeting_usage", live["start_time"], live["start_time"]) == 1


def test_in_progress_sessions_follow_the_clock(simulator: Any) -> None:
    live = running_session(simulator)
    assert live["host_joined"] and live["actual_start_time"] <= NOW
    simulator.clock.advance(live["duration"] * 60)
    after = next(r for r in simulator.ground_truth("demo", "scheduled_sessions") if r["conf_id"] == live["conf_id"])
    assert after["status"] == "NOT_INPROGRESS" and not after["host_joined"]
    future = [r for r in simulator.ground_truth("demo", "scheduled_sessions") if r["start_time"] > NOW + timedelta(hours=2)]
    assert future and all(r["actual_start_time"] is None for r in future)


def test_late_rows_arrive_in_windows_already_listed(sim_factory: Any) -> None:
    sim = sim_factory(late_fraction=0.5, late_extra_seconds=2 * 86_400, meetings_per_day=20)
    day = (NOW - timedelta(days=1)).replace(hour=0)
    before = listed_total(sim, "meeting_attendees", day, day + timedelta(hours=12))
    sim.clock.advance(2 * 86_400)
    after = listed_total(sim, "meeting_attendees", day, day + timedelta(hours=12))
    assert after > before > 0  # the same past window, listed again, has grown


def test_retention_drops_rows_older_than_the_limit(sim_factory: Any) -> None:
    sim = sim_factory(retention_days=2)
    cutoff = NOW - timedelta(days=2)
    rows = sim.ground_truth("demo", "meeting_attendees")
    assert rows and min(r["join_time"] for r in rows) >= cutoff
    oldest_day = cutoff.replace(hour=0, minute=0)
    assert listed_total(sim, "meeting_attendees", oldest_day, cutoff + timedelta(hours=6)) > 0
    sim.clock.advance(6 * 3600 + 1)
    assert listed_total(sim, "meeting_attendees", oldest_day, cutoff + timedelta(hours=6)) == 0


def test_clock_control_endpoint(simulator: Any) -> None:
    async def main() -> list[dict]:
        async with aiohttp.ClientSession() as http:
            url = simulator.base_url + "/_sim/clock"
            out = []
            for payload in ({"advance_seconds": 90}, {"now": "2026-03-11T00:00:00Z"}, {"frozen": False}):
                async with http.post(url, json=payload) as r:
                    out.append(await r.json())
            async with http.get(url) as r:
                out.append(await r.json())
            return out

    advanced, moved, running, read = asyncio.run(main())
    assert advanced == {"now": "2026-03-10T12:01:30+00:00", "frozen": True}
    assert moved["now"] == "2026-03-11T00:00:00+00:00"
    assert running["frozen"] is False and read["now"] >= "2026-03-11T00:00:00"


def test_mutations_from_python_and_http(simulator: Any) -> None:
    day = NOW - timedelta(days=1)
    added = simulator.add_late_rows("demo", "meeting_usage", 2, start=day, end=day + timedelta(hours=6))
    assert len(added) == 2 and all(day <= r["meeting_start_time"] <= day + timedelta(hours=6) for r in added)
    truth = keys(simulator, "meeting_usage")
    assert {r["conf_id"] for r in added} <= truth
    revised = simulator.revise_record("demo", "meeting_usage", {"conf_id": added[0]["conf_id"]},
                                      {"conf_name": "Renamed & <revised>", "duration": 999})
    assert (revised["conf_name"], revised["duration"]) == ("Renamed & <revised>", 999)

    async def main() -> list[tuple[int, dict]]:
        async with aiohttp.ClientSession() as http:
            out = []
            for payload in (
                {"action": "remove", "site": "demo", "dataset": "meeting_usage", "key": {"conf_id": added[1]["conf_id"]}},
                {"action": "add_late_rows", "site": "demo", "dataset": "meeting_attendees", "count": 1},
                {"action": "explode"},
            ):
                async with http.post(simulator.base_url + "/_sim/mutate", json=payload) as r:
                    out.append((r.status, await r.json()))
            async with http.get(simulator.base_url + "/_sim/ground-truth",
                                params={"site": "demo", "dataset": "meeting_usage"}) as r:
                out.append((r.status, await r.json()))
            return out

    removed, attendee, bad, truth_json = asyncio.run(main())
    assert removed[0] == 200 and bad[0] == 400
    assert attendee[1]["added"][0]["name"].startswith("Late Attendee")
    conf_ids = {r["conf_id"] for r in truth_json[1]}
    assert added[0]["conf_id"] in conf_ids and added[1]["conf_id"] not in conf_ids
    row = next(r for r in truth_json[1] if r["conf_id"] == added[0]["conf_id"])
    assert row["conf_name"] == "Renamed & <revised>" and row["site"] == "demo" and row["extra"] == {}
    assert row["meeting_start_time"].endswith("+00:00")


def test_ground_truth_endpoint_rejects_unknown_names(simulator: Any) -> None:
    async def main() -> list[int]:
        async with aiohttp.ClientSession() as http:
            statuses = []
            for params in ({"site": "nope", "dataset": "meeting_usage"}, {"site": "demo", "dataset": "nope"},
                           {"site": "demo", "dataset": "event_attendees", "preliminary": "true"}):
                async with http.get(simulator.base_url + "/_sim/ground-truth", params=params) as r:
                    statuses.append(r.status)
            return statuses

    assert asyncio.run(main()) == [404, 404, 200]
