"""Paging through any listing yields every ground-truth record exactly once, with its values."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

import aiohttp
import pytest

from exporter.model.dataset_spec import Dataset
from exporter.model.datasets import DATASETS, by_name
from exporter.simulator import probe

CTX = probe.security("demo", webex_id="admin", password="sim-password")


async def page_through(url: str, ds: Dataset, *, page_size: int, **body: Any) -> tuple[list[dict], set[int], int]:
    """All records of a listing, page by page; (records, totals seen, requests sent)."""
    zone_id = body.get("zone_id", 20) if ds.sends_time_zone_id else 20
    records: list[dict] = []
    totals: set[int] = set()
    requests = 0
    async with aiohttp.ClientSession() as http:
        start_from = 1
        while True:
            data = probe.envelope([probe.list_body(ds, start_from=start_from, maximum=page_size, **body)], CTX)
            status, _, raw = await probe.post(http, url, data)
            requests += 1
            assert status == 200
            reply = probe.read_reply(raw, ds.record_element)[0]
            if reply.result == "FAILURE":
                assert reply.exception_id == "000015", reply.reason
                break
            assert reply.start_from == start_from
            assert reply.returned == len(reply.records) <= min(page_size, 500)
            totals.add(reply.total)
            records.extend(probe.record_values(ds, r, zone_id) for r in reply.records)
            start_from += reply.returned
            if start_from > reply.total:
                break
    return records, totals, requests


def _expected(truth: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "site"} for row in truth]


def _key(ds: Dataset, row: dict) -> tuple:
    return tuple(row[k] for k in ds.natural_key)


@pytest.mark.parametrize("dataset", [d.name for d in DATASETS])
def test_paging_yields_each_ground_truth_record_once(simulator: Any, dataset: str) -> None:
    ds = by_name(dataset)
    truth = simulator.ground_truth("demo", dataset)
    assert truth, "the small world has rows for every dataset"
    records, totals, requests = asyncio.run(page_through(simulator.url, ds, page_size=7))
    assert totals == {len(truth)}
    assert len({_key(ds, r) for r in records}) == len(records) == len(truth)
    assert records == _expected(truth)  # same values, same (default) order
    assert requests == -(-len(truth) // 7)


@pytest.mark.parametrize("dataset", [d.name for d in DATASETS if d.preliminary_operation])
def test_preliminary_paging_matches_preliminary_ground_truth(simulator: Any, dataset: str) -> None:
    ds = by_name(dataset)
    truth = simulator.ground_truth("demo", dataset, preliminary=True)
    final = simulator.ground_truth("demo", dataset)
    # Preliminary rows show up minutes after a session, final history only later.
    assert {_key(ds, r) for r in final} <= {_key(ds, r) for r in truth}
    records, _totals, _ = asyncio.run(page_through(simulator.url, ds, page_size=9, preliminary=True,
                                                  start=datetime(2026, 3, 1, tzinfo=timezone.utc)))
    assert records == _expected(truth)
    assert all(r.get("tracking_code1") is None for r in records)  # basic data only


def test_times_come_in_the_requested_zone_across_dst(simulator: Any) -> None:
    # 2026-03-08 is the US switch to daylight time: zone 4 (San Jose) is -8 h before it, -7 h after.
    ds = by_name("meeting_usage")
    truth = simulator.ground_truth("demo", "meeting_usage")
    records, _, _ = asyncio.run(page_through(simulator.url, ds, page_size=50, zone_id=4))
    assert records == _expected(truth)
    early = truth[0]["meeting_start_time"]
    assert early < datetime(2026, 3, 8, 10, tzinfo=timezone.utc)  # some rows before the switch


def test_scope_filters_on_the_start_column_inclusively(simulator: Any) -> None:
    ds = by_name("meeting_attendees")
    truth = simulator.ground_truth("demo", "meeting_attendees")
    first, last = truth[3]["join_time"], truth[-4]["join_time"]
    records, _, _ = asyncio.run(page_through(simulator.url, ds, page_size=11, start=first, end=last))
    expected = [r for r in _expected(truth) if first <= r["join_time"] <= last]
    assert records == expected and records[0]["join_time"] == first and records[-1]["join_time"] == last


@pytest.mark.parametrize(
    ("dataset", "order", "column", "descending"),
    [
        ("meeting_usage", [("CONFNAME", "DESC")], "conf_name", True),
        ("meeting_usage", [("HOSTWEBEXID", "ASC"), ("STARTTIME", "DESC")], "host_webex_id", False),
        ("support_sessions", [("CONFID", "ASC")], "conf_id", False),
        ("recording_access", [("RECORDID", "DESC")], "record_id", True),
        ("event_attendees", [("ATTENDEENAME", "ASC")], "attendee_name", False),
    ],
)
def test_orders_page_deterministically(simulator: Any, dataset: str, order: list, column: str, descending: bool) -> None:
    ds = by_name(dataset)
    truth = simulator.ground_truth("demo", dataset)
    records, _, _ = asyncio.run(page_through(simulator.url, ds, page_size=4, order=order))
    assert sorted(map(repr, records)) == sorted(map(repr, _expected(truth)))
    values = [r[column] for r in records]
    assert values == sorted(values, reverse=descending)
    again, _, _ = asyncio.run(page_through(simulator.url, ds, page_size=5, order=order))
    assert again == records  # ties broken by natural key: the same sequence whatever the page size


def test_maximum_num_defaults_to_50_and_is_capped_at_500(sim_factory: Any) -> None:
    sim = sim_factory(meetings_per_day=80, attendees_per_meeting=4)
    ds = by_name("meeting_attendees")
    total = len(sim.ground_truth("demo", "meeting_attendees"))
    assert total > 500

    async def main() -> tuple[int | None, int | None]:
        async with aiohttp.ClientSession() as http:
            big = probe.list_body(ds, maximum=2000)
            default = probe.list_body(ds).replace("<serv:maximumNum>50</serv:maximumNum>", "")
            _, _, a = await probe.post(http, sim.url, probe.envelope([big], CTX))
            _, _, b = await probe.post(http, sim.url, probe.envelope([default], CTX))
            return probe.read_reply(a)[0].returned, probe.read_reply(b)[0].returned

    assert asyncio.run(main()) == (500, 50)


def test_list_method_or_matches_any_scope(simulator: Any) -> None:
    ds = by_name("access_anywhere")
    truth = simulator.ground_truth("demo", "access_anywhere")
    a, b = truth[0], truth[-1]
    more = (f"<endTimeScope><sessionEndTimeStart>{_wire(b['end_time'])}</sessionEndTimeStart>"
            f"<sessionEndTimeEnd>{_wire(b['end_time'])}</sessionEndTimeEnd></endTimeScope>")
    both, _, _ = asyncio.run(page_through(simulator.url, ds, page_size=10, start=a["start_time"],
                                          end=a["start_time"], list_method="OR", more=more))
    only_a, _, _ = asyncio.run(page_through(simulator.url, ds, page_size=10, start=a["start_time"],
                                            end=a["start_time"], list_method="AND", more=more))
    assert [r["conf_id"] for r in both] == [a["conf_id"], b["conf_id"]]
    assert only_a == []  # AND: no row both starts at a's start and ends at b's end


def _wire(when: datetime) -> str:
    return when.strftime("%m/%d/%Y %H:%M:%S")
