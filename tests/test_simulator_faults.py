"""Every fault knob, shown by its effect on real HTTP exchanges."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from exporter.errors import ConfigError, ParseError
from exporter.model import webex_codes as codes
from exporter.model.datasets import by_name
from exporter.records.xmlsafe import parse_xml
from exporter.simulator import FaultSettings, SimulatorConfig, probe

USAGE = by_name("meeting_usage")
CTX = probe.security("demo", webex_id="admin", password="sim-password")
LIST = probe.envelope([probe.list_body(USAGE, maximum=5)], CTX)
AUTH = probe.envelope([probe.body("user.AuthenticateUser")], CTX)


def exchange(url: str, *documents: bytes) -> list[tuple[int, dict, bytes] | Exception]:
    """POST each document; a transport failure is returned in place of the answer."""

    async def main() -> list:
        out: list = []
        async with aiohttp.ClientSession() as http:
            for doc in documents:
                try:
                    out.append(await probe.post(http, url, doc))
                except aiohttp.ClientError as exc:
                    out.append(exc)
        return out

    return asyncio.run(main())


def codes_of(url: str, *documents: bytes) -> list[str]:
    """The first body's result per request: "SUCCESS" or the exceptionID."""
    out = []
    for status, _, data in exchange(url, *documents):  # type: ignore[misc]
        assert status == 200
        reply = probe.read_reply(data)[0]
        out.append(reply.exception_id or reply.result)
    return out


def test_latency_is_fixed_plus_seeded_jitter(sim_factory: Any) -> None:
    sim = sim_factory(faults=FaultSettings(latency_ms=150, latency_jitter_ms=50))
    began = time.monotonic()
    exchange(sim.url, LIST)
    assert 0.15 <= time.monotonic() - began < 5
    same_seed = [sim_factory().faults for _ in range(2)]
    for state in same_seed:
        state.replace(FaultSettings(latency_ms=10, latency_jitter_ms=100))
    assert [state.latency() for _ in range(5) for state in same_seed[:1]] == \
        [state.latency() for _ in range(5) for state in same_seed[1:]]


def test_rate_limit_throttles_with_000045_then_cools_down(sim_factory: Any) -> None:
    sim = sim_factory(faults=FaultSettings(rate_limit_per_minute=3, throttle_cooldown_seconds=0.3,
                                           rate_limits={"user": 1}))
    assert codes_of(sim.url, LIST, LIST, LIST, LIST, LIST) == ["SUCCESS"] * 3 + [codes.RATE_LIMITED] * 2
    # Another API group has its own budget.
    assert codes_of(sim.url, AUTH, AUTH) == ["SUCCESS", codes.RATE_LIMITED]
    time.sleep(0.35)
    assert codes_of(sim.url, LIST) == ["SUCCESS"]  # the cool-down is over: a fresh budget
    assert sim.stats()["throttled"] == 3


@pytest.mark.parametrize(("kind", "status"), [("http403", 403), ("http429", 429), ("http5xx", 502)])
def test_http_error_faults(sim_factory: Any, kind: str, status: int) -> None:
    sim = sim_factory(faults=FaultSettings(http5xx_status=502, retry_after_seconds=7))
    sim.queue_fault(kind, count=2, operation="LstmeetingusageHistory")
    answers = exchange(sim.url, AUTH, LIST, LIST, LIST)
    assert [a[0] for a in answers] == [200, status, status, 200]  # type: ignore[index]
    if kind == "http429":
        assert answers[1][1]["Retry-After"] == "7"  # type: ignore[index]
    assert sim.stats()["faults"] == {kind: 2}


def test_connection_reset(simulator: Any) -> None:
    simulator.queue_fault("reset")
    first, second = exchange(simulator.url, LIST, LIST)
    assert isinstance(first, (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError))
    assert second[0] == 200  # type: ignore[index]


@pytest.mark.parametrize("kind", ["truncate", "malformed"])
def test_broken_bodies_come_with_status_200(simulator: Any, kind: str) -> None:
    simulator.queue_fault(kind)
    broken, fine = exchange(simulator.url, LIST, LIST)
    assert broken[0] == 200 and broken[1]["Content-Type"].startswith("text/xml")  # type: ignore[index]
    with pytest.raises(ParseError):
        parse_xml(broken[2])  # type: ignore[index]
    if kind == "truncate":
        assert fine[2].startswith(broken[2])  # type: ignore[index]
    parse_xml(fine[2])  # type: ignore[index]


def test_throttle_fault_answers_000045_once(simulator: Any) -> None:
    simulator.queue_fault("throttle")
    assert codes_of(simulator.url, LIST, LIST) == [codes.RATE_LIMITED, "SUCCESS"]


def test_gsb_backup_for_n_requests_and_for_a_period(sim_factory: Any) -> None:
    sim = sim_factory(faults=FaultSettings(gsb_backup_requests=2))

    def statuses() -> list[tuple[str, str, int]]:
        out = []
        for _, _, data in exchange(sim.url, LIST, LIST, LIST):  # type: ignore[misc]
            reply = probe.read_reply(data, USAGE.record_element)[0]
            out.append((reply.result, reply.gsb_status, len(reply.records)))
        return out

    # BACKUP still serves the data (a read replica); a client should pause the site anyway.
    assert statuses() == [("SUCCESS", "BACKUP", 5)] * 2 + [("SUCCESS", "PRIMARY", 5)]
    sim.set_faults(gsb_backup_seconds=0.3)
    assert {s[1] for s in statuses()} == {"BACKUP"}
    time.sleep(0.35)
    assert {s[1] for s in statuses()} == {"PRIMARY"}


def test_iso_8859_1_round_trips_chinese_text(sim_factory: Any) -> None:
    sim = sim_factory(faults=FaultSettings(encoding="ISO-8859-1"), meetings_per_day=30)
    truth = {r["conf_id"]: r for r in sim.ground_truth("demo", "meeting_usage")}
    (_status, headers, data), = exchange(sim.url, probe.envelope([probe.list_body(USAGE, maximum=500)], CTX))  # type: ignore[misc]
    assert headers["Content-Type"] == "text/xml; charset=ISO-8859-1"
    assert data.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
    assert "團隊會議".encode() not in data and b"&#22296;&#38538;&#26371;&#35696;" in data
    records = [probe.record_values(USAGE, r) for r in probe.read_reply(data, USAGE.record_element)[0].records]
    names = {r["conf_name"] for r in records}
    assert any("團隊會議" in n for n in names) and any("Ærøskøbing" in n for n in names)
    assert all(r["conf_name"] == truth[r["conf_id"]]["conf_name"] for r in records)


def test_schema_drift_adds_unknown_elements_and_capital_uuid(simulator: Any) -> None:
    simulator.set_faults(schema_drift_fraction=1.0, capital_uuid_fraction=1.0)
    (_, _, data), = exchange(simulator.url, probe.envelope([probe.list_body(USAGE, maximum=500)], CTX))  # type: ignore[misc]
    assert b"<history:meetingUUID>" not in data and b"<history:MeetingUUID>" in data
    records = [probe.record_values(USAGE, r) for r in probe.read_reply(data, USAGE.record_element)[0].records]
    truth = simulator.ground_truth("demo", "meeting_usage")
    assert all(r["extra"] for r in records)
    assert records == [{k: v for k, v in t.items() if k != "site"} for t in truth]  # extra included
    simulator.set_faults(schema_drift_fraction=0.0)
    assert all(not t["extra"] for t in simulator.ground_truth("demo", "meeting_usage"))


@pytest.mark.parametrize(("kind", "change"), [("mutate_add", 1), ("mutate_remove", -1)])
def test_rows_added_or_removed_between_pages(simulator: Any, kind: str, change: int) -> None:
    before = len(simulator.ground_truth("demo", "meeting_usage"))
    page = [probe.envelope([probe.list_body(USAGE, maximum=3, start_from=start)], CTX) for start in (1, 4)]
    simulator.queue_fault(kind, operation="LstmeetingusageHistory")
    first, second = (probe.read_reply(a[2])[0] for a in exchange(simulator.url, *page))  # type: ignore[index]
    assert first.total == before and second.total == before + change
    assert len(simulator.ground_truth("demo", "meeting_usage")) == before + change


def test_fault_rates_are_seeded_and_deterministic(sim_factory: Any) -> None:
    settings = FaultSettings(rates={"http5xx": 0.3, "http403": 0.2})
    runs = []
    for _ in range(2):
        sim = sim_factory(faults=settings)
        runs.append([a[0] for a in exchange(sim.url, *[LIST] * 12)])  # type: ignore[index]
    assert runs[0] == runs[1]
    assert {200, 503} <= set(runs[0])
    other = sim_factory(SimulatorConfig.small(seed=8, faults=settings))
    assert [a[0] for a in exchange(other.url, *[LIST] * 12)] != runs[0]  # type: ignore[index]


def test_faults_control_endpoint(simulator: Any) -> None:
    async def main() -> tuple[dict, dict, dict]:
        async with aiohttp.ClientSession() as http:
            url = simulator.base_url + "/_sim/faults"
            async with http.post(url, json={"enqueue": [{"kind": "http5xx", "count": 1}],
                                            "encoding": "ISO-8859-1", "rates": {"reset": 0.0}}) as r:
                set_ = await r.json()
            async with http.post(url, json={"rates": {"bogus": 1}}) as r:
                bad = await r.json()
                assert r.status == 400
            status, _, _ = await probe.post(http, simulator.url, LIST)
            assert status == 503
            async with http.get(simulator.base_url + "/_sim/stats") as r:
                return set_, bad, await r.json()

    set_, bad, stats = asyncio.run(main())
    assert set_["queue"] == [{"kind": "http5xx", "count": 1, "operation": None}] and set_["encoding"] == "ISO-8859-1"
    assert "bogus" in bad["error"]
    assert stats["faults"] == {"http5xx": 1} and stats["requests_by_operation"] == {"LstmeetingusageHistory": 1}


def test_fault_settings_are_validated() -> None:
    with pytest.raises(ConfigError) as caught:
        FaultSettings.from_dict({"rates": {"meteor": 0.5, "reset": 2}, "encoding": "KOI8-R", "latency": 5})
    assert "faults.latency: unknown key" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        FaultSettings(rates={"meteor": 0.5, "reset": 2}, encoding="KOI8-R")
    text = str(caught.value)
    assert "rates.meteor" in text and "rates.reset" in text and "encoding" in text
