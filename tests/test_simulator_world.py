"""Generated data: deterministic, unique natural keys, the variety real sites have, and fast enough."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest

from exporter.model.datasets import DATASETS, by_name
from exporter.model.timezones import TIME_ZONES
from exporter.simulator import Simulator, SimulatorConfig, SiteConfig
from exporter.simulator.data.selection import Selection


def everything(sim: Simulator, site: str = "demo") -> dict[str, list[dict]]:
    return {d.name: sim.ground_truth(site, d.name) for d in DATASETS}


@pytest.fixture(scope="module")
def rich() -> Simulator:
    """Two sites, a week, enough sessions to use every zone; the clock moved so all history is visible."""
    config = SimulatorConfig.small(
        sites=(SiteConfig("demo", return_scheduled_pmr_switch=True, unpadded_date_fraction=0.5),
               SiteConfig("other", scale=0.5)),
        days=7, meetings_per_day=30, attendees_per_meeting=6, late_fraction=0.0,
    )
    sim = Simulator(config)
    return sim


def test_same_seed_same_world_other_seed_other_world() -> None:
    a, b = Simulator(SimulatorConfig.small()), Simulator(SimulatorConfig.small())
    assert everything(a) == everything(b)
    c = Simulator(SimulatorConfig.small(seed=99))
    assert everything(c)["meeting_usage"] != everything(a)["meeting_usage"]


@pytest.mark.parametrize("dataset", [d.name for d in DATASETS])
def test_natural_keys_are_unique_per_site(rich: Simulator, dataset: str) -> None:
    ds = by_name(dataset)
    for site in ("demo", "other"):
        rows = rich.ground_truth(site, dataset)
        assert rows
        keys = Counter(tuple(r[k] for k in ds.natural_key) for r in rows)
        assert keys.most_common(1)[0][1] == 1


def test_the_world_has_the_variety_of_real_sites(rich: Simulator) -> None:
    data = everything(rich)
    sessions, usage, attendees = data["scheduled_sessions"], data["meeting_usage"], data["meeting_attendees"]
    assert {s["time_zone_id"] for s in sessions} == {tz.id for tz in TIME_ZONES}  # all 62 zones
    names = {s["conf_name"] for s in sessions}
    assert any("團隊會議" in n for n in names) and any("Ærøskøbing" in n for n in names)
    assert any("&" in n for n in names) and any("<" in n for n in names) and "" in names
    assert any("Zoë" in a["name"] for a in attendees)
    assert any(a["address2"] == "" for a in attendees) and any(a["email"] is None for a in attendees)
    assert any(s["is_recurring"] for s in sessions) and any(s["is_scheduled_pmr"] for s in sessions)
    assert any(s["is_audio_only"] for s in sessions) and any(u["meeting_type"] == "AUO" for u in usage)
    assert any(s["status"] == "INPROGRESS" for s in sessions)
    assert any(u["meeting_start_time"].date() != u["meeting_end_time"].date() for u in usage)  # past midnight
    series = Counter(u["session_key"] for u in usage)
    assert series.most_common(1)[0][1] > 1  # recurring meetings share their meeting number
    rejoins = Counter((a["conf_id"], a["name"], a["email"]) for a in attendees)
    assert rejoins.most_common(1)[0][1] > 1  # left and came back
    assert any(u["meeting_uuid"] is None for u in usage) and any(u["meeting_uuid"] for u in usage)
    qa = [a["reg_q_and_a"] for a in data["event_attendees"] if a["reg_q_and_a"]]
    assert qa and all(set(item) == {"regQ", "regA"} for answers in qa for item in answers)
    other = rich.ground_truth("other", "meeting_usage")
    assert 0 < len(other) < len(usage)  # scale 0.5
    assert not {u["conf_id"] for u in other} & {u["conf_id"] for u in usage}


def test_audio_only_sessions_are_listed_only_when_asked(rich: Simulator) -> None:
    with_audio = rich.store.select("demo", Selection("meeting_usage", audio_only=True))
    without = rich.store.select("demo", Selection("meeting_usage", audio_only=False))
    assert len(without) < len(with_audio) == len(rich.ground_truth("demo", "meeting_usage"))


def test_generation_and_rendering_are_fast() -> None:
    config = SimulatorConfig.small(days=2, meetings_per_day=500, attendees_per_meeting=10, late_fraction=0.0)
    sim = Simulator(config)
    began = time.perf_counter()
    rows = sim.store.select("demo", Selection("meeting_attendees"))
    elapsed = time.perf_counter() - began
    assert len(rows) > 5_000  # ~16k generated over three world days, the rest not visible yet
    assert elapsed < 5.0  # typically ~0.4 s; generous for slow, shared machines
    from exporter.simulator.xmlapi.timefmt import WireZone

    writer, zone = sim.operations.writers["meeting_attendees"], WireZone(4)
    began = time.perf_counter()
    for rec in rows[:500]:
        writer.write(sim.store.present("meeting_attendees", rec, 0), zone)
    assert time.perf_counter() - began < 0.5


def test_sites_differ_in_default_zone(rich: Simulator) -> None:
    assert rich.store.site("other").default_time_zone_id == 20
    assert rich.clock.now() - timedelta(days=8) < rich.ground_truth("other", "meeting_usage")[0]["meeting_start_time"]
