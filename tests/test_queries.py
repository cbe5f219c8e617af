"""The report library in exporter/app/queries/: each query against an answer computed by hand (in Python, from
the simulator's ground truth) on a small known data set, and every query on an empty warehouse."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from datetime import datetime, timezone

import pytest

from exporter.app.queries import load_queries, run_query
from exporter.model.runs import RunOptions
from exporter.run.pipeline import export
from exporter.store.warehouse import Warehouse

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A small simulator world exported once: (settings, ground truth by dataset)."""
    from conftest import exporter_settings_dict

    from exporter.config import parse_settings
    from exporter.simulator import SimulatorConfig, run_in_thread

    root = tmp_path_factory.mktemp("queries") / "warehouse"
    with run_in_thread(SimulatorConfig.small(days=5, meetings_per_day=9, attendees_per_meeting=4)) as sim:
        settings = parse_settings(exporter_settings_dict(sim.url, str(root)), env={"WEBEX_TEST_PW": "sim-password"})

        async def main() -> None:
            with Warehouse(settings.warehouse, export=settings.export) as warehouse:
                report = await export(settings, RunOptions(now=sim.clock.now()), warehouse=warehouse)
                assert report.exit_code == 0, report.summary()

        asyncio.run(main())
        truth = {name: sim.ground_truth("demo", name) for name in (
            "meeting_usage", "meeting_attendees", "access_anywhere", "scheduled_sessions", "training_sessions",
            "training_attendees", "event_sessions", "event_attendees",
        )}
    return settings, truth


def rows(settings, name, *params):
    columns, values = run_query(settings, name, tuple(params))
    return [dict(zip(columns, v)) for v in values]


def test_meetings_per_day(exported):
    settings, truth = exported
    expected = defaultdict(lambda: [0, 0, 0])
    for m in truth["meeting_usage"]:
        day = m["meeting_start_time"].date()
        expected[day][0] += 1
        expected[day][1] += m["total_participants"] or 0
        expected[day][2] += m["duration"] or 0
    got = {r["day"]: [r["meetings"], r["participants"], r["meeting_minutes"]] for r in rows(settings, "meetings_per_day")}
    assert got == dict(expected)


def test_top_hosts_and_usage_by_month(exported):
    settings, truth = exported
    per_host = Counter(m["host_webex_id"] for m in truth["meeting_usage"])
    top = rows(settings, "top_hosts", "limit=3")
    assert len(top) == 3
    assert [r["meetings"] for r in top] == sorted(per_host.values(), reverse=True)[:3]
    assert all(per_host[r["host_webex_id"]] == r["meetings"] for r in top)
    minutes = defaultdict(int)
    for m in truth["meeting_usage"]:
        minutes[(m["meeting_start_time"].strftime("%Y-%m"), m["host_webex_id"])] += m["duration"] or 0
    got = {(r["month"], r["host_webex_id"]): r["meeting_minutes"] for r in rows(settings, "usage_minutes_by_host_month")}
    assert got == dict(minutes)


def test_meeting_size_distribution_and_duration_by_type(exported):
    settings, truth = exported

    def bucket(n):
        if n is None:
            return "unknown"
        for limit, name in ((2, "01: 1-2"), (5, "02: 3-5"), (10, "03: 6-10"), (25, "04: 11-25"), (100, "05: 26-100")):
            if n <= limit:
                return name
        return "06: over 100"

    expected = Counter(bucket(m["total_participants"]) for m in truth["meeting_usage"])
    got = {r["size_bucket"]: r["meetings"] for r in rows(settings, "meeting_size_distribution")}
    assert got == dict(expected)
    assert sum(r["percent"] for r in rows(settings, "meeting_size_distribution")) == pytest.approx(100, abs=0.5)
    by_type = defaultdict(list)
    for m in truth["meeting_usage"]:
        by_type[m["meeting_type"] or "unknown"].append(m["duration"])
    got = {r["meeting_type"]: (r["meetings"], r["average_minutes"]) for r in rows(settings, "average_duration_by_meeting_type")}
    assert got == {t: (len(d), round(sum(d) / len(d), 1)) for t, d in by_type.items()}


def test_join_client_mix_and_audio_minutes(exported):
    settings, truth = exported
    expected = Counter((a["client_agent"] or "unknown") for a in truth["meeting_attendees"])
    got = {r["client_agent"]: r["joins"] for r in rows(settings, "join_client_mix")}
    assert got == dict(expected)
    voip = sum(m["total_voip_minutes"] or 0 for m in truth["meeting_usage"])
    call_in = sum(m["total_call_in_minutes"] or 0 for m in truth["meeting_usage"])
    audio = rows(settings, "audio_minutes_mix")
    assert sum(r["voip_minutes"] for r in audio) == voip
    assert sum(r["call_in_minutes"] for r in audio) == call_in


def test_peak_concurrent_meetings(exported):
    settings, truth = exported
    edges = []
    for m in truth["meeting_usage"]:
        if m["meeting_start_time"] and m["meeting_end_time"]:
            edges += [(m["meeting_start_time"], 1), (m["meeting_end_time"], -1)]
    peak, running = defaultdict(int), 0
    for moment, delta in sorted(edges):  # ends (-1) sort before starts at the same instant
        running += delta
        peak[moment.date()] = max(peak[moment.date()], running)
    got = {r["day"]: r["peak_concurrent_meetings"] for r in rows(settings, "peak_concurrent_meetings")}
    assert got == {d: p for d, p in peak.items() if d in got}
    assert max(got.values()) == max(peak.values())


def test_inactive_hosts(exported):
    settings, truth = exported
    last = {}
    for m in truth["meeting_usage"]:
        last[m["host_webex_id"]] = max(last.get(m["host_webex_id"], m["meeting_start_time"]), m["meeting_start_time"])
    newest = max(last.values())
    got = {r["host_webex_id"] for r in rows(settings, "inactive_hosts", "days=1")}
    assert got == {h for h, t in last.items() if (newest - t).total_seconds() > 86400}


def test_access_anywhere_and_scheduled_pmrs(exported):
    settings, truth = exported
    per_user = Counter((a["user_name"], a["computer_name"], a["client_ip"]) for a in truth["access_anywhere"])
    got = {(r["user_name"], r["computer_name"], r["client_ip"]): r["sessions"] for r in rows(settings, "access_anywhere_usage")}
    assert got == dict(per_user)
    pmrs = {s["conf_id"] for s in truth["scheduled_sessions"] if s["is_scheduled_pmr"]}
    assert pmrs, "the small world should schedule some PMR meetings"
    assert {r["conf_id"] for r in rows(settings, "scheduled_pmrs")} == pmrs


def test_registration_to_attendance(exported):
    settings, truth = exported
    attended = Counter(a["conf_id"] for a in truth["training_attendees"] if (a["participant_type"] or "") != "HOST")
    got = {r["conf_id"]: r["attended"] for r in rows(settings, "registration_to_attendance") if r["kind"] == "training"}
    assert got == {s["conf_id"]: attended.get(s["conf_id"], 0) for s in truth["training_sessions"]}


def test_data_freshness(exported):
    settings, truth = exported
    got = {r["dataset"]: r for r in rows(settings, "data_freshness")}
    assert got["meeting_usage"]["rows_landed"] >= len(truth["meeting_usage"])
    assert got["meeting_usage"]["last_outcome"] == "ok"
    assert got["meeting_usage"]["failed_windows"] == 0


def test_every_query_runs_on_an_empty_warehouse(tmp_path):
    from conftest import exporter_settings_dict

    from exporter.config import parse_settings

    settings = parse_settings(exporter_settings_dict("http://127.0.0.1:9/x", str(tmp_path / "w")), env={"WEBEX_TEST_PW": "x"})
    with Warehouse(settings.warehouse, export=settings.export):
        pass
    for name in load_queries():
        columns, values = run_query(settings, name)
        assert columns and values == [], name


def test_every_query_documents_its_question_and_example():
    queries = load_queries()
    assert len(queries) >= 13
    for query in queries.values():
        assert query.question, query.name
        assert query.example.startswith(f"webex-exporter query {query.name}"), query.name


def test_a_typo_in_sql_is_a_usage_error_with_duckdbs_hint(exported):
    from exporter.errors import ConfigError

    settings = exported[0] if isinstance(exported, tuple) else exported
    with pytest.raises(ConfigError) as caught:
        run_query(settings, "select count(*) from meetng_usage")
    assert 'Did you mean "meeting_usage"' in str(caught.value)
    with pytest.raises(ConfigError, match="did you mean 'top_hosts'"):
        run_query(settings, "top_host")
