"""Whole runs of the exporter over real HTTP against the simulator, into a real warehouse.

Each test compares what users query (the catalog views) with what the server holds (the
simulator's ground truth), column by column.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb

from exporter.errors import AuthError, ExporterError, PrivilegeError, ReauthorizeError, SitePausedError
from exporter.model.datasets import DATASETS, by_name
from exporter.model.runs import RunOptions, RunReport
from exporter.run.pipeline import export
from exporter.simulator import SiteConfig
from exporter.store.warehouse import Warehouse

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def run(settings: Any, sim: Any, **options: Any) -> Any:
    """One export (``RunOptions`` fields as keywords), at the simulator's current time."""

    async def main() -> Any:
        with Warehouse(settings.warehouse, export=settings.export) as warehouse:
            return await export(settings, RunOptions(now=sim.clock.now(), **options), warehouse=warehouse)

    return asyncio.run(main())


#: Each run first asks every site about itself in one request: its zone, what its zone IDs mean, and
#: whether we are a site admin (three bodies).
SITE_FACTS = {"GetSite": 1, "GetUser": 1, "LstTimeZone": 1}


def landed(settings: Any, dataset: str, site: str = "demo", *, final_only: bool = True) -> dict[tuple, dict]:
    """Rows of a catalog view, keyed by natural key, without lineage columns."""
    from exporter.app.queries import open_catalog

    ds = by_name(dataset)
    con = open_catalog(settings)  # what `webex-exporter query` uses (registers an S3 lake's filesystem)
    try:
        where = "site = ?" + (" AND NOT _preliminary" if final_only else "")
        cursor = con.execute(f"SELECT * FROM {dataset} WHERE {where}", [site])
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, values)) for values in cursor.fetchall()]
    finally:
        con.close()
    out = {}
    for row in rows:
        out[tuple(row[k] for k in ds.natural_key)] = row
    return out


def truth(sim: Any, dataset: str, site: str = "demo") -> dict[tuple, dict]:
    ds = by_name(dataset)
    return {tuple(r[k] for k in ds.natural_key): r for r in sim.ground_truth(site, dataset)}


def assert_equal_to_ground_truth(settings: Any, sim: Any, dataset: str, site: str = "demo") -> int:
    ds = by_name(dataset)
    expected, got = truth(sim, dataset, site), landed(settings, dataset, site)
    assert set(got) == set(expected), f"{dataset}: missing {len(set(expected) - set(got))}, extra {len(set(got) - set(expected))}"
    for key, want in expected.items():
        row = got[key]
        for column in ds.columns:
            value = row[column.name]
            if column.type == "json" and value is not None:
                value = json.loads(value)
            assert value == want[column.name], f"{dataset} {key} {column.name}: {value!r} != {want[column.name]!r}"
    return len(expected)


def test_every_dataset_lands_exactly_the_ground_truth(sim_factory, make_settings):
    sim = sim_factory(
        sites=(
            SiteConfig("demo", return_scheduled_pmr_switch=True, unpadded_date_fraction=0.3),
            SiteConfig("paris", default_time_zone_id=23, return_scheduled_pmr_switch=True, scale=0.5),
        ),
        days=6,
    )
    settings = make_settings(sim, sites=("demo", "paris"))
    # The Paris site's history without timeZoneID comes in Paris time: say so, and ask in Tokyo time.
    settings = dataclasses.replace(settings, sites=(
        settings.sites[0],
        dataclasses.replace(settings.sites[1], unlabeled_time_zone_id=23, time_zone_id=49),
    ))
    report = run(settings, sim)
    assert report.exit_code == 0, report.summary()
    counted = 0
    for site in ("demo", "paris"):
        for ds in DATASETS:
            counted += assert_equal_to_ground_truth(settings, sim, ds.name, site)
    assert counted > 300


def test_rerun_of_the_same_range_changes_nothing(simulator, make_settings):
    settings = make_settings(simulator)
    run(settings, simulator)
    before = {ds.name: landed(settings, ds.name) for ds in DATASETS}
    report = run(settings, simulator, backfill=True)
    assert report.exit_code == 0
    after = {ds.name: landed(settings, ds.name) for ds in DATASETS}
    for name in before:
        assert after[name].keys() == before[name].keys()
        for key, row in before[name].items():
            assert {k: v for k, v in after[name][key].items() if not k.startswith("_")} == {
                k: v for k, v in row.items() if not k.startswith("_")
            }


def test_late_rows_are_picked_up_by_the_lookback(simulator, make_settings):
    settings = make_settings(simulator)
    run(settings, simulator)
    count = len(landed(settings, "meeting_usage"))
    # Two meetings from two days ago show up on the server only now (history is late).
    added = simulator.add_late_rows("demo", "meeting_usage", 2, start=NOW - timedelta(days=2, hours=3),
                                    end=NOW - timedelta(days=2))
    assert len(added) == 2
    simulator.clock.advance(3600)
    report = run(settings, simulator)
    assert report.exit_code == 0
    assert len(landed(settings, "meeting_usage")) == count + 2
    assert_equal_to_ground_truth(settings, simulator, "meeting_usage")


def test_a_revised_record_replaces_the_old_version(simulator, make_settings):
    settings = make_settings(simulator)
    run(settings, simulator)
    old = sorted(landed(settings, "meeting_usage").values(), key=lambda r: r["meeting_start_time"])[-1]
    simulator.revise_record("demo", "meeting_usage", (old["conf_id"],), {"duration": 999, "conf_name": "revised 團隊"})
    simulator.clock.advance(60)
    run(settings, simulator)
    rows = landed(settings, "meeting_usage")
    assert rows[(old["conf_id"],)]["duration"] == 999
    assert rows[(old["conf_id"],)]["conf_name"] == "revised 團隊"
    assert_equal_to_ground_truth(settings, simulator, "meeting_usage")


def test_bad_credentials_stop_only_that_site(sim_factory, make_settings, tmp_path):
    sim = sim_factory(sites=(SiteConfig("demo"), SiteConfig("other", users={"admin": "another-password"})))
    settings = make_settings(sim, sites=("demo", "other"))
    report = run(settings, sim)
    assert report.exit_code == 3
    assert "other" in report.site_errors and "AuthError" in report.site_errors["other"]
    assert issubclass(report.site_error_types["other"], AuthError) and "demo" not in report.site_error_types
    assert "sim-password" not in report.site_errors["other"]
    assert_equal_to_ground_truth(settings, sim, "meeting_usage", "demo")
    # exactly one AuthenticateUser was tried for the refused site: no retries that could lock it
    assert sim.stats()["requests_by_operation"].get("AuthenticateUser", 0) == 2


def test_exit_code_follows_the_exception_class_not_its_message():
    """3 means "a site refused our credentials", decided by the class that stopped the site: an
    ``AuthError`` subclass whose message names no class, yes; an error whose text merely starts
    with "AuthError", no."""

    class TokenRevoked(ReauthorizeError):
        def __str__(self) -> str:
            return "the grant was revoked"

    def report(kind: type[BaseException], message: str) -> RunReport:
        return RunReport("r1", NOW, site_errors={"acme": message}, site_error_types={"acme": kind})

    assert report(TokenRevoked, f"{TokenRevoked()}").exit_code == 3
    assert report(PrivilegeError, "not a site admin").exit_code == 3
    assert report(SitePausedError, "AuthError: the text of a backup notice").exit_code == 1
    assert report(ExporterError, "AuthError-ish text").exit_code == 1
    assert RunReport("r1", NOW, site_errors={"acme": "AuthError: text only"}).exit_code == 1
    assert RunReport("r1", NOW).exit_code == 0


def test_a_failed_window_is_recorded_and_retried_next_run(simulator, make_settings):
    settings = make_settings(simulator, window_hours=24)
    settings = dataclasses.replace(settings, sites=(dataclasses.replace(
        settings.sites[0], datasets=("meeting_usage",),
        throttle=dataclasses.replace(settings.sites[0].throttle, max_attempts=1),
    ),))
    simulator.queue_fault("http5xx", count=50, operation="LstmeetingusageHistory")
    first = run(settings, simulator)
    assert first.exit_code == 1
    (outcome,) = first.outcomes
    assert outcome.windows_failed >= 1 and outcome.errors
    with Warehouse(settings.warehouse, export=settings.export) as warehouse:
        assert warehouse.state("demo", "meeting_usage").failed_windows
    simulator.set_faults(queue=())
    second = run(settings, simulator)
    assert second.exit_code == 0, second.summary()
    assert_equal_to_ground_truth(settings, simulator, "meeting_usage")
    with Warehouse(settings.warehouse, export=settings.export) as warehouse:
        assert not warehouse.state("demo", "meeting_usage").failed_windows


def test_preliminary_rows_give_way_to_final_history(sim_factory, make_settings):
    sim = sim_factory(history_delay_seconds=6 * 3600, preliminary_delay_seconds=60)
    settings = make_settings(sim)
    settings = dataclasses.replace(settings, sites=(dataclasses.replace(
        settings.sites[0], preliminary=True, datasets=("meeting_usage",)),))
    run(settings, sim)
    everything = landed(settings, "meeting_usage", final_only=False)
    preliminary = {k for k, r in everything.items() if r["_preliminary"]}
    assert preliminary, "sessions that ended in the last 6 hours should be known only preliminarily"
    sim.clock.advance(7 * 3600)  # final history arrives for them (except late rows, still to come)
    run(settings, sim)
    everything = landed(settings, "meeting_usage", final_only=False)
    now_final = [k for k in preliminary if k in truth(sim, "meeting_usage")]
    assert now_final
    assert all(not everything[k]["_preliminary"] for k in now_final)
    assert_equal_to_ground_truth(settings, sim, "meeting_usage")


def preliminary_meeting_usage_on_pages_of_4(sim_factory: Any, make_settings: Any) -> tuple[Any, Any]:
    """A simulator whose final history lags 6 hours, and settings exporting meeting_usage with
    preliminary history, 4 records per page (so a recent day needs a few pages of each)."""
    sim = sim_factory(history_delay_seconds=6 * 3600, preliminary_delay_seconds=60)
    settings = make_settings(sim)
    site = settings.sites[0]
    site = dataclasses.replace(site, preliminary=True, datasets=("meeting_usage",),
                               throttle=dataclasses.replace(site.throttle, page_size=4))
    return sim, dataclasses.replace(settings, sites=(site,))


def test_a_recent_window_lists_final_and_preliminary_history_together(sim_factory, make_settings):
    sim, settings = preliminary_meeting_usage_on_pages_of_4(sim_factory, make_settings)
    now = sim.clock.now()
    since = now - timedelta(hours=20)
    final_rows = {k for k, r in truth(sim, "meeting_usage").items() if r["meeting_start_time"] >= since}
    assert 4 < len(final_rows) <= 40, len(final_rows)  # final history needs 2-10 pages of 4
    sim.reset_stats()
    report = run(settings, sim, since=since, until=now, backfill=True)
    assert report.exit_code == 0, report.summary()
    stats = sim.stats()
    assert stats["requests_by_operation"] == {"AuthenticateUser": 1, "LstmeetingusageHistory": 2,
                                              "LstmeetingusagePreliminaryHistory": 2, **SITE_FACTS}, stats
    # Sign-in; what the site says about itself; the probe (the final listing's first page); the final listing's second page with
    # the preliminary listing's first; its second.  Listed one after the other, the preliminary
    # listing's first page waited for the final listing and took a request of its own (6).
    assert stats["requests"] == 5, stats
    everything = landed(settings, "meeting_usage", final_only=False)
    assert any(r["_preliminary"] for r in everything.values())
    final = {k for k, r in everything.items() if not r["_preliminary"]}
    assert final == final_rows


def test_a_window_whose_preliminary_listing_fails_still_counts_every_request(sim_factory, make_settings):
    """Preliminary history keeps moving, so its listing never verifies: the packed listing fails,
    and the window, listed alone, lands unverified (flagged, not lost); what every listing cost,
    the failed pack's included, is in the run's figures."""
    sim, settings = preliminary_meeting_usage_on_pages_of_4(sim_factory, make_settings)
    now = sim.clock.now()
    sim.queue_fault("mutate_add", count=100, operation="LstmeetingusagePreliminaryHistory")
    sim.reset_stats()
    report = run(settings, sim, since=now - timedelta(hours=20), until=now, backfill=True)
    (outcome,) = report.outcomes
    assert outcome.windows_unverified >= 1 and "inconsistent" in outcome.errors[0], outcome
    assert outcome.windows_failed == 0 and outcome.outcome == "partial"
    stats = sim.stats()
    # All but the site's facts and the sign-in that came with them (not a dataset's).
    assert outcome.requests == stats["requests"] - 2, (outcome, stats)
    assert outcome.pages == stats["bodies"] - 1 - len(SITE_FACTS), (outcome, stats)  # and the sign-in


def test_empty_and_sparse_stretches_cost_few_requests(sim_factory, make_settings):
    sim = sim_factory(days=5)
    settings = make_settings(sim)
    settings = dataclasses.replace(settings, sites=(dataclasses.replace(settings.sites[0], datasets=("recording_access",)),))
    report = run(settings, sim)  # first run: 90 days of one-day windows, only the last 5 hold data
    (outcome,) = report.outcomes
    assert outcome.windows_planned >= 90
    assert outcome.requests <= 8, outcome  # probes instead of ~90 listings
    assert outcome.windows_committed < 20
    assert_equal_to_ground_truth(settings, sim, "recording_access")


def meeting_usage_on_pages_of_20(settings: Any) -> Any:
    """``settings`` exporting meeting_usage only, 20 records per page (small pages, many of them)."""
    site = settings.sites[0]
    throttle = dataclasses.replace(site.throttle, page_size=20)
    return dataclasses.replace(settings, sites=(dataclasses.replace(site, datasets=("meeting_usage",), throttle=throttle),))


def test_dense_days_are_packed_into_few_listings(sim_factory, make_settings):
    """30 meetings a day on pages of 20: one listing per day would cost 2 pages for 1.5 pages of
    data (40 pages for 20 days).  Packed into listings of at most 200 rows (``max_window_records``)
    the days cost about one part-filled page per listing, and land complete."""
    sim = sim_factory(days=20, meetings_per_day=30)
    settings = meeting_usage_on_pages_of_20(make_settings(sim, max_window_records=200))
    now = sim.clock.now()
    since = (now - timedelta(days=20)).replace(hour=0, minute=0, second=0, microsecond=0)
    until = now.replace(hour=0, minute=0, second=0, microsecond=0)
    report = run(settings, sim, since=since, until=until)
    (outcome,) = report.outcomes
    assert outcome.windows_planned == 20 and outcome.windows_failed == 0
    rows = outcome.records
    assert 450 <= rows <= 650
    listings = -(-rows // 200)
    assert outcome.pages <= -(-rows // 20) + listings + 2, outcome  # one part-filled page per listing
    assert outcome.pages < 2 * 20  # what one listing per day costs
    in_range = {k: r for k, r in truth(sim, "meeting_usage").items() if since <= r["meeting_start_time"] < until}
    got = {k: r for k, r in landed(settings, "meeting_usage").items() if since <= r["meeting_start_time"] < until}
    assert got.keys() == in_range.keys()


def test_a_run_small_enough_for_one_listing_starts_from_the_probe(sim_factory, make_settings):
    """Six days of 30 meetings on pages of 20: the probe asks for the range's first page, and the
    one listing of the range uses it: 8 list bodies in 2 requests after sign-in (asking for a
    single record first took 9 bodies in 3 requests: the listing's first page waited for it)."""
    sim = sim_factory(days=6, meetings_per_day=30)
    settings = meeting_usage_on_pages_of_20(make_settings(sim))
    until = sim.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    since = until - timedelta(days=6)
    in_range = {k for k, r in truth(sim, "meeting_usage").items() if since <= r["meeting_start_time"] < until}
    assert 140 < len(in_range) <= 160  # 8 pages
    sim.reset_stats()
    report = run(settings, sim, since=since, until=until)
    assert report.exit_code == 0, report.summary()
    stats = sim.stats()
    assert stats["requests_by_operation"] == {"AuthenticateUser": 1, "LstmeetingusageHistory": 8, **SITE_FACTS}, stats
    assert stats["requests"] == 4, stats
    got = {k for k, r in landed(settings, "meeting_usage").items() if since <= r["meeting_start_time"] < until}
    assert got == in_range


def test_a_failed_pack_leaves_failures_as_small_as_a_window(sim_factory, make_settings):
    """Rows keep moving while every listing runs, so the packed listing of six dense days fails;
    its days are then listed one by one, each verified or landed unverified on its own: what is
    flagged unverified is one-day windows, never the six-day range.  The next run, on a quiet
    server, verifies them all and retires the unverified rows (they may hold rows served twice)."""
    sim = sim_factory(days=6, meetings_per_day=30)
    settings = meeting_usage_on_pages_of_20(make_settings(sim, max_window_records=1000))
    until = sim.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    since = until - timedelta(days=6)
    sim.queue_fault("mutate_add", count=100_000, operation="LstmeetingusageHistory")
    first = run(settings, sim, since=since, until=until)
    (outcome,) = first.outcomes
    assert outcome.windows_planned == 6 and outcome.windows_unverified >= 1, outcome
    assert outcome.windows_failed == 0 and all("inconsistent" in error for error in outcome.errors)
    with Warehouse(settings.warehouse, export=settings.export) as warehouse:
        unverified = warehouse.state("demo", "meeting_usage").unverified_windows
    assert unverified and all(w.end - w.start == timedelta(days=1) for w in unverified), unverified
    sim.set_faults(queue=())
    second = run(settings, sim, since=since, until=until)
    assert second.exit_code == 0, second.summary()
    with Warehouse(settings.warehouse, export=settings.export) as warehouse:
        assert warehouse.state("demo", "meeting_usage").unverified_windows == ()
    with duckdb.connect(str(settings.warehouse.catalog), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM meeting_usage WHERE NOT _verified").fetchall() == [(0,)]
        assert con.sql("SELECT count(*) FROM unverified_windows").fetchall() == [(0,)]
    in_range = {k for k, r in truth(sim, "meeting_usage").items() if since <= r["meeting_start_time"] < until}
    got = {k for k, r in landed(settings, "meeting_usage").items() if since <= r["meeting_start_time"] < until}
    assert got == in_range and len(got) > 100


def test_a_failed_pack_with_one_bad_day_costs_that_day_not_the_pack(sim_factory, make_settings):
    """One row appears while the six-day pack is listed: the pack fails (it is never rescanned),
    its days' totals are asked (six one-record bodies), the five days whose rows the scan holds
    completely land from it, and only the day that changed is listed again."""
    sim = sim_factory(days=6, meetings_per_day=60)
    settings = meeting_usage_on_pages_of_20(make_settings(sim, max_window_records=10_000))
    until = sim.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    since = until - timedelta(days=6)
    in_range = [r for r in truth(sim, "meeting_usage").values() if since <= r["meeting_start_time"] < until]
    pack_pages = -(-len(in_range) // 20)
    day_pages = -(-max(sum(1 for r in in_range if r["meeting_start_time"].date() == d) for d in
                       {r["meeting_start_time"].date() for r in in_range}) // 20) + 1
    sim.queue_fault("mutate_add", count=1, operation="LstmeetingusageHistory")
    sim.reset_stats()
    report = run(settings, sim, since=since, until=until)
    assert report.exit_code == 0, report.summary()
    (outcome,) = report.outcomes
    assert outcome.windows_failed == 0 and outcome.windows_unverified == 0
    bodies = sim.stats()["requests_by_operation"]["LstmeetingusageHistory"]
    # The pack's scan, six totals, one day listed again: far less than every day listed again.
    assert bodies <= pack_pages + 6 + day_pages, (bodies, pack_pages, day_pages)
    assert bodies < 2 * pack_pages + 6
    got = {k for k, r in landed(settings, "meeting_usage").items() if since <= r["meeting_start_time"] < until}
    assert got == {k for k, r in truth(sim, "meeting_usage").items() if since <= r["meeting_start_time"] < until}


def test_a_pack_that_fails_once_is_counted_once_in_progress_and_in_the_run_figures(sim_factory, make_settings):
    """Rows move during the packed listing only (8 requests: its 4 scans of 2, the first page of
    the first being the probe), so it fails and its days are listed one by one.  The progress
    lines show the records that landed, not those of the abandoned pack as well; the run's
    figures count every request the server saw, the failed pack's included."""
    import io

    from exporter.run.progress import Progress

    sim = sim_factory(days=6, meetings_per_day=30)
    settings = meeting_usage_on_pages_of_20(make_settings(sim, max_window_records=1000))
    until = sim.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    since = until - timedelta(days=6)
    sim.queue_fault("mutate_add", count=8, operation="LstmeetingusageHistory")
    sim.reset_stats()
    screen = io.StringIO()

    async def main():
        with Warehouse(settings.warehouse, export=settings.export) as warehouse:
            options = RunOptions(now=sim.clock.now(), since=since, until=until)
            return await export(settings, options, warehouse=warehouse, progress=Progress(screen, width=160))

    report = asyncio.run(main())
    assert report.exit_code == 0, report.summary()
    (outcome,) = report.outcomes
    assert outcome.rescans == 3  # the pack's: it did fail
    stats = sim.stats()
    # All but the site's facts and the sign-in that came with them (not a dataset's).
    assert outcome.requests == stats["requests"] - 2 and outcome.pages == stats["bodies"] - 1 - len(SITE_FACTS)
    got = {k for k, r in landed(settings, "meeting_usage").items() if since <= r["meeting_start_time"] < until}
    from test_progress import last_frame

    (last_line,) = last_frame(screen.getvalue(), 1)
    assert f" {len(got):>9,} rec " in last_line, last_line
    pages = last_line.split(" pages")[0].split()[-1]
    done, known = map(int, pages.split("/"))
    assert done == known < outcome.pages, last_line  # the abandoned pack's pages are not shown as work done


def test_pack_windows_spreads_windows_evenly_over_listings():
    from exporter.model.windows import plan_windows
    from exporter.run.planning import pack_windows

    days = plan_windows(datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 3, 11, tzinfo=timezone.utc), 24)
    assert len(days) == 10
    assert [len(p) for p in pack_windows(days, 10 * 550, 2_000)] == [4, 3, 3]  # ceil(5500 / 2000) = 3
    assert [len(p) for p in pack_windows(days, 100, 2_000)] == [10]
    assert [len(p) for p in pack_windows(days, 10**6, 2_000)] == [1] * 10  # never more listings than windows
    assert [w for p in pack_windows(days, 10 * 550, 2_000) for w in p] == days
    assert pack_windows([], 0, 2_000) == []


def test_secrets_never_reach_the_warehouse(simulator, make_settings, tmp_path):
    settings = make_settings(simulator)
    run(settings, simulator)
    secret = b"sim-password"
    files = [p for p in (tmp_path / "warehouse").rglob("*") if p.is_file()]
    assert len(files) > 10
    assert [p for p in files if secret in p.read_bytes()] == []


def test_the_row_budget_makes_holders_wait_and_always_gets_its_rows_back():
    """A holder that does not fit waits for the rows in use; one larger than the whole budget
    still goes alone; a holder cancelled while holding gives its rows back."""
    import contextlib

    from exporter.run.dataset_run import RowBudget

    async def take(budget: RowBudget, rows: int, log: list[str]) -> None:
        async with budget.hold(rows):
            log.append(f"took {rows}")

    async def main() -> None:
        budget, log = RowBudget(100), []
        async with budget.hold(80):
            waiting = asyncio.create_task(take(budget, 50, log))
            await asyncio.sleep(0)
            assert log == [] and budget.held == 80
        await waiting
        assert log == ["took 50"] and budget.held == 0
        await take(budget, 10_000, log)  # clamped to the capacity: it goes, alone
        assert budget.held == 0

        async def hold_forever() -> None:
            async with budget.hold(60):
                await asyncio.Event().wait()

        holder = asyncio.create_task(hold_forever())
        await asyncio.sleep(0)
        assert budget.held == 60
        holder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await holder
        assert budget.held == 0

    asyncio.run(main())
