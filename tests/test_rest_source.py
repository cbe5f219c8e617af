"""The REST source end to end (issue #14): real HTTP to the simulator's REST API on loopback,
real Parquet, a real DuckDB catalog, compared row for row with the simulator's ground truth."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import stat
import tomllib
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
from cli_helpers import cli, run_and_kill

from exporter.config import parse_settings
from exporter.model.datasets import by_name
from exporter.model.runs import RunOptions
from exporter.run.pipeline import export
from exporter.simulator import SimulatorConfig
from exporter.store.warehouse import Warehouse

SECRET_ENV = {"WEBEX_TEST_CLIENT_SECRET": "sim-client-secret"}


def rest_config(path: Path, sim: Any, *, site: str = "demo", source: str = "rest", datasets: tuple[str, ...] = (),
                extra: str = "") -> Path:
    """A config.toml with one site exported through the simulator's REST API."""
    lines = ["[[sites]]", f'name = "{site}"', f'source = "{source}"']
    if source != "rest":
        lines += [f'url = "{sim.url}"', f'site_name = "{site}"', 'auth = "ticket"', 'webex_id = "admin"',
                  'password_env = "WEBEX_TEST_PW"']
    if datasets:
        lines.append("datasets = [" + ", ".join(f'"{d}"' for d in datasets) + "]")
    lines += [
        "[sites.rest]", f'base_url = "{sim.rest_url}"', f'token_url = "{sim.rest_token_url}"',
        f'site_url = "{site}.webex.com"', 'client_id = "sim-client"', 'client_secret_env = "WEBEX_TEST_CLIENT_SECRET"',
        f'token_file = "{path.parent / "tokens" / (site + ".json")}"', "",
        "[throttle]", "requests_per_minute = 6000", "cooldown_seconds = 0.2", "backoff_base_seconds = 0.01",
        "backoff_max_seconds = 0.05", "request_timeout_seconds = 10", "",
        "[warehouse]", f'root = "{path.parent / "warehouse"}"', f'catalog = "{path.parent / "warehouse" / "webex.duckdb"}"',
        "",
    ]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, float):
        return round(value, 6)
    return value


def rest_truth(sim: Any, site: str, dataset: str) -> tuple[list[str], Counter]:
    rows = sim.rest_ground_truth(site, dataset)
    columns = sorted({k for r in rows for k in r}) or [f.column for f in by_name(dataset).rest.fields]
    return columns, Counter(tuple(_canonical(r.get(c)) for c in columns) for r in rows)


def assert_rest_catalog_equals_truth(catalog: Path, sim: Any, site: str, dataset: str) -> int:
    columns, want = rest_truth(sim, site, dataset)
    con = duckdb.connect(str(catalog), read_only=True)
    try:
        rows = con.sql(f"SELECT * FROM {dataset} WHERE site = '{site}' AND source = 'rest'").to_arrow_table().to_pylist()
    finally:
        con.close()
    got = Counter(tuple(_canonical(r.get(c)) for c in columns) for r in rows)
    missing, extra = want - got, got - want
    assert not missing and not extra, (f"{site}/{dataset}: {sum(missing.values())} missing, {sum(extra.values())} "
                                       f"extra of {sum(want.values())}; e.g. {list(missing)[:1]} / {list(extra)[:1]}")
    return sum(want.values())


def seed(sim: Any, config: Path, site: str = "demo") -> None:
    done = cli("auth", "--site", site, config=config, env=SECRET_ENV, input_text=sim.rest_refresh_token(site) + "\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sim.rest_refresh_token(site) not in done.stdout + done.stderr


def run_in_process(config: Path, sim: Any, **options: Any) -> Any:
    settings = parse_settings(tomllib.loads(config.read_text()), env={**os.environ, **SECRET_ENV,
                                                                      "WEBEX_TEST_PW": "sim-password"})

    async def main() -> Any:
        with Warehouse(settings.warehouse, export=settings.export) as warehouse:
            return await export(settings, RunOptions(now=sim.clock.now(), **options), warehouse=warehouse)

    return asyncio.run(main())


def test_a_rest_backfill_lands_every_rest_dataset_exactly_and_a_rerun_changes_nothing(sim_factory, tmp_path):
    sim = sim_factory(now=datetime.now(timezone.utc).replace(microsecond=0))
    config = rest_config(tmp_path / "config.toml", sim)
    seed(sim, config)
    token_file = tmp_path / "tokens" / "demo.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    first = json.loads(token_file.read_text())["refresh_token"]
    report = run_in_process(config, sim, backfill=True)
    assert report.exit_code == 0, report.summary()
    datasets = [d for d in parse_settings(tomllib.loads(config.read_text()), env=SECRET_ENV).sites[0].datasets]
    assert "meeting_participants" in datasets and "access_anywhere" not in datasets
    catalog = tmp_path / "warehouse" / "webex.duckdb"
    total = sum(assert_rest_catalog_equals_truth(catalog, sim, "demo", d) for d in datasets)
    assert total > 100
    con = duckdb.connect(str(catalog), read_only=True)
    try:
        cursors = dict(con.execute("SELECT dataset, cursor FROM sync_state WHERE site = 'demo'").fetchall())
    finally:
        con.close()
    assert all(cursors.get(d) is not None for d in datasets), cursors  # the cursor moves: next runs list the lookback
    again = run_in_process(config, sim)
    assert again.exit_code == 0, again.summary()
    assert sum(o.requests for o in again.outcomes) < sum(o.requests for o in report.outcomes)
    assert sum(assert_rest_catalog_equals_truth(catalog, sim, "demo", d) for d in datasets) == total
    con = duckdb.connect(str(catalog), read_only=True)
    try:  # one row per device join: correlationId is the per-join identity
        joins = con.execute("SELECT count(*), count(DISTINCT correlation_id), count(DISTINCT participant_id) "
                            "FROM meeting_participants").fetchall()[0]
    finally:
        con.close()
    assert joins[0] == joins[1] >= joins[2] > 0
    # Webex rotates the refresh token on every refresh; the file holds the newest, never the old
    assert json.loads(token_file.read_text())["refresh_token"] != first or first == sim.rest_refresh_token("demo", current=True)


def test_an_auto_site_switches_a_retired_operation_to_rest_once_and_says_so(sim_factory, tmp_path):
    base = SimulatorConfig.small(now=datetime.now(timezone.utc).replace(microsecond=0))
    sim = sim_factory(dataclasses.replace(base, sites=tuple(
        dataclasses.replace(s, retired_operations=("LstmeetingusageHistory",)) for s in base.sites)))
    config = rest_config(tmp_path / "config.toml", sim, source="auto", datasets=("meeting_usage", "event_sessions"))
    seed(sim, config)
    done = cli("run", config=config, env=SECRET_ENV, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    switches = [line for line in done.stderr.splitlines() if "switching to the REST APIs" in line]
    assert len(switches) == 1, switches
    catalog = tmp_path / "warehouse" / "webex.duckdb"
    assert assert_rest_catalog_equals_truth(catalog, sim, "demo", "meeting_usage") > 0
    con = duckdb.connect(str(catalog), read_only=True)
    try:
        sources = dict(con.execute("SELECT dataset, string_agg(DISTINCT source) FROM (SELECT 'meeting_usage' AS dataset, "
                                   "source FROM meeting_usage UNION ALL SELECT 'event_sessions', source FROM "
                                   "event_sessions) GROUP BY dataset").fetchall())
    finally:
        con.close()
    assert sources == {"meeting_usage": "rest", "event_sessions": "xml"}
    status = cli("status", "--format", "json", config=config, env=SECRET_ENV)
    assert status.returncode in (0, 1), status.stderr
    assert "exported through the REST APIs" in status.stdout
    switch_state = _switch_state(catalog)
    asked = sim.stats()["requests_by_operation"].get("LstmeetingusageHistory", 0)
    assert asked >= 1
    assert switch_state[0].startswith("XML operation retired"), switch_state
    assert "no longer listed" not in switch_state[0]  # XML had landed nothing: the switch costs nothing
    # A switch lasts: later runs commit REST windows (the lookback), and neither that nor a third
    # run sends the dataset back to XML or moves the switch point (REST never lists before it).
    for later in ("second", "third"):
        again = cli("run", config=config, env=SECRET_ENV, timeout=180)
        assert again.returncode == 0, later + again.stderr[-3000:]
        assert "switching to the REST APIs" not in again.stderr, later
        assert _switch_state(catalog) == switch_state, later
    assert sim.stats()["requests_by_operation"].get("LstmeetingusageHistory", 0) == asked  # never asked again
    assert_rest_catalog_equals_truth(catalog, sim, "demo", "meeting_usage")


def test_an_auto_sites_unusable_rest_side_fails_only_the_switched_dataset(sim_factory, tmp_path):
    """An auto site whose REST side is not authorized yet (no token file) and one retired XML
    operation: that dataset fails (refused: exit 3, run ``auth``), the site's XML datasets land in
    full; the switch is noted, and once ``auth`` has run, the next run lands it through REST."""
    base = SimulatorConfig.small(now=datetime.now(timezone.utc).replace(microsecond=0))
    sim = sim_factory(dataclasses.replace(base, sites=tuple(
        dataclasses.replace(s, retired_operations=("LstmeetingusageHistory",)) for s in base.sites)))
    xml_datasets = ("event_sessions", "meeting_attendees")
    config = rest_config(tmp_path / "config.toml", sim, source="auto", datasets=("meeting_usage", *xml_datasets))
    report = run_in_process(config, sim, backfill=True)
    outcomes = {o.dataset: o for o in report.outcomes}
    assert report.exit_code == 3 and not report.site_errors, report.summary()
    assert outcomes["meeting_usage"].outcome == "refused", report.summary()
    assert "ReauthorizeError" in outcomes["meeting_usage"].errors[0]
    catalog = tmp_path / "warehouse" / "webex.duckdb"
    con = duckdb.connect(str(catalog), read_only=True)
    try:
        for dataset in xml_datasets:
            assert outcomes[dataset].outcome == "ok", report.summary()
            landed = con.execute(f"SELECT count(*) FROM {dataset} WHERE source = 'xml'").fetchall()[0][0]
            assert landed == len(sim.ground_truth("demo", dataset)) > 0, dataset
    finally:
        con.close()
    assert _switch_state(catalog)[0].startswith("XML operation retired")
    seed(sim, config)
    again = run_in_process(config, sim)
    assert again.exit_code == 0, again.summary()
    assert assert_rest_catalog_equals_truth(catalog, sim, "demo", "meeting_usage") > 0


def test_a_pool_kept_across_runs_picks_up_tokens_stored_by_auth(sim_factory, tmp_path):
    """``serve`` keeps one client pool: a REST site stopped because no tokens were stored yet
    exports on the next run once ``auth`` has stored them, without a restart."""
    from exporter.webex.pool import ClientPool

    sim = sim_factory(now=datetime.now(timezone.utc).replace(microsecond=0))
    config = rest_config(tmp_path / "config.toml", sim, datasets=("meeting_usage",))
    settings = parse_settings(tomllib.loads(config.read_text()), env={**os.environ, **SECRET_ENV})

    async def two_runs() -> list[Any]:
        pool = ClientPool(0)
        reports = []
        try:
            with Warehouse(settings.warehouse, export=settings.export) as warehouse:
                for _ in range(2):
                    reports.append(await export(settings, RunOptions(now=sim.clock.now(), backfill=True),
                                                warehouse=warehouse, clients=pool))
                    if len(reports) == 1:
                        await asyncio.to_thread(seed, sim, config)
        finally:
            await pool.close()
        return reports

    first, second = asyncio.run(two_runs())
    assert first.exit_code == 3 and "ReauthorizeError" in first.site_errors["demo"], first.summary()
    assert second.exit_code == 0, second.summary()
    assert assert_rest_catalog_equals_truth(tmp_path / "warehouse" / "webex.duckdb", sim, "demo", "meeting_usage") > 0


def test_a_switch_after_xml_history_says_what_it_no_longer_lists(sim_factory, tmp_path):
    """XML landed history first; a day later the operation is retired and the auto site switches.
    REST starts at the XML cursor (its rows have another identity: listing earlier would land
    meetings twice), so the lookback before it is no longer listed: status says so."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    first = sim_factory(SimulatorConfig.small(now=now, freeze_clock=True))
    config = rest_config(tmp_path / "config.toml", first, source="auto", datasets=("meeting_usage",))
    seed(first, config)
    assert run_in_process(config, first, backfill=True).exit_code == 0
    base = SimulatorConfig.small(now=now + timedelta(days=1), freeze_clock=True)
    later = sim_factory(dataclasses.replace(base, sites=tuple(
        dataclasses.replace(s, retired_operations=("LstmeetingusageHistory",)) for s in base.sites)))
    config = rest_config(tmp_path / "config.toml", later, source="auto", datasets=("meeting_usage",))
    seed(later, config)
    report = run_in_process(config, later)
    assert report.exit_code == 0, report.summary()
    note, switched_at = _switch_state(tmp_path / "warehouse" / "webex.duckdb")
    assert switched_at is not None and f"from {switched_at.astimezone(timezone.utc).isoformat()}" in note, note
    assert "late changes before it (the XML lookback, 7 days) and 0 failed XML window(s) are no longer listed" in note


def test_a_too_long_retry_after_from_the_token_endpoint_is_held_across_runs(sim_factory, tmp_path):
    """The token endpoint answers 429 with a Retry-After above max_retry_after_seconds: the site
    stops for the run, and a pool kept across runs (``serve``) asks the endpoint nothing more
    before that time."""
    from exporter.webex.pool import ClientPool

    sim = sim_factory(now=datetime.now(timezone.utc).replace(microsecond=0))
    config = rest_config(tmp_path / "config.toml", sim, datasets=("meeting_usage",))
    seed(sim, config)
    settings = parse_settings(tomllib.loads(config.read_text()), env={**os.environ, **SECRET_ENV})
    sim.set_faults(retry_after_seconds=7200)
    sim.queue_fault("http429", 1, "rest:/access_token")
    sim.expire_rest_tokens()  # the stored access token is refused: the run asks the token endpoint

    def asked() -> int:
        return int(sim.stats()["rest_requests_by_endpoint"].get("rest:/access_token", 0))

    async def two_runs() -> list[tuple[Any, int]]:
        pool = ClientPool(0)
        out = []
        try:
            with Warehouse(settings.warehouse, export=settings.export) as warehouse:
                for _ in range(2):
                    report = await export(settings, RunOptions(now=sim.clock.now()), warehouse=warehouse, clients=pool)
                    out.append((report, asked()))
        finally:
            await pool.close()
        return out

    before = asked()
    (first, after_first), (second, after_second) = asyncio.run(two_runs())
    assert "RetryAfterTooLongError" in first.site_errors["demo"] and "7200 s" in first.site_errors["demo"]
    assert after_first == before + 1
    assert "RetryAfterTooLongError" in second.site_errors.get("demo", ""), second.summary()
    assert after_second == after_first  # held: not asked again before the time it named


def _switch_state(catalog: Path) -> tuple[str, Any]:
    con = duckdb.connect(str(catalog), read_only=True)
    try:
        return con.execute("SELECT unavailable, rest_switched_at FROM sync_state "
                           "WHERE site = 'demo' AND dataset = 'meeting_usage'").fetchall()[0]
    finally:
        con.close()


def test_a_rest_backfill_killed_at_random_points_ends_equal_to_ground_truth(sim_factory, tmp_path):
    sim = sim_factory(now=datetime.now(timezone.utc).replace(microsecond=0))
    sim.set_faults(latency_ms=60)  # room to be killed in the middle
    datasets = ("meeting_usage", "meeting_attendees", "meeting_instances", "meeting_participants")
    config = rest_config(tmp_path / "config.toml", sim, datasets=datasets,
                         extra="[export]\nwindow_hours = 24\n")
    seed(sim, config)
    rng = random.Random(20261203)
    killed = sum(run_and_kill("backfill", config, rng, commits=(1, 6), env=SECRET_ENV) for _ in range(3))
    assert killed >= 2, f"only {killed} of 3 backfills were killed"
    final = cli("run", config=config, env=SECRET_ENV, timeout=180)
    assert final.returncode == 0, final.stdout + final.stderr[-3000:]
    for dataset in datasets:
        assert_rest_catalog_equals_truth(tmp_path / "warehouse" / "webex.duckdb", sim, "demo", dataset)


def test_meeting_instances_beyond_the_per_query_cap_are_listed_in_halves(sim_factory, tmp_path):
    """``/meetings`` lists at most N instances per query (10,000 at Webex): a span that reaches
    the cap is listed again in halves until none does, so no instance is cut off."""
    base = SimulatorConfig.small(now=datetime.now(timezone.utc).replace(microsecond=0))
    sim = sim_factory(dataclasses.replace(base, rest=dataclasses.replace(base.rest, meetings_list_cap=4)))
    config = rest_config(tmp_path / "config.toml", sim, datasets=("meeting_instances",))
    text = config.read_text().replace('[sites.rest]\n', '[sites.rest]\nmeetings_list_cap = 4\n')
    config.write_text(text)
    seed(sim, config)
    report = run_in_process(config, sim, backfill=True)
    assert report.exit_code == 0, report.summary()
    total = assert_rest_catalog_equals_truth(tmp_path / "warehouse" / "webex.duckdb", sim, "demo", "meeting_instances")
    assert total >= 4 * 3  # at least three caps' worth: spans over the cap were halved (12 just after midnight UTC)
