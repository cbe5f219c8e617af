"""The Prometheus endpoint: counters from run reports, a health check, no secrets."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import aiohttp

from exporter.app.metrics import Metrics
from exporter.model.runs import DatasetOutcome, RunReport


def test_metrics_and_health_endpoints():
    async def main() -> tuple[str, dict]:
        metrics = Metrics(warehouse=None)
        port = await metrics.start("127.0.0.1", 0)
        outcome = DatasetOutcome("acme", "meeting_usage", windows_committed=3, records=120, requests=7, retries=2,
                                 cursor=datetime.now(timezone.utc) - timedelta(hours=2))
        outcome.throttles_by_cause.update({"000045": 2, "http429": 1})
        metrics.observe_run(RunReport("r1", datetime.now(timezone.utc), outcomes=[outcome]))
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    text = await response.text()
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    health = await response.json()
        finally:
            await metrics.stop()
        return text, health

    text, health = asyncio.run(main())
    assert 'webex_exporter_records_total{dataset="meeting_usage",site="acme"} 120.0' in text
    assert 'webex_exporter_throttles_total{cause="000045",dataset="meeting_usage",site="acme"} 2.0' in text
    assert 'webex_exporter_throttles_total{cause="http429",dataset="meeting_usage",site="acme"} 1.0' in text
    assert 'webex_exporter_runs_total{dataset="meeting_usage",outcome="ok",site="acme"} 1.0' in text
    lag = [line for line in text.splitlines() if line.startswith("webex_exporter_lag_seconds{")][0]
    assert 7000 < float(lag.split()[-1]) < 7300
    assert "webex_exporter_last_success_timestamp_seconds" in text
    assert health["status"] == "ok"


def test_unverified_windows_and_a_retired_dataset_are_alertable():
    """An unverified landing and a dataset the site no longer serves are counted, not 'ok'."""
    metrics = Metrics(warehouse=None)
    shaky = DatasetOutcome("acme", "meeting_attendees", windows_committed=2, windows_unverified=1, records=9)
    gone = DatasetOutcome("acme", "access_anywhere", unavailable="site acme: the site no longer serves it")
    metrics.observe_run(RunReport("r1", datetime.now(timezone.utc), outcomes=[shaky, gone]))
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    assert 'webex_exporter_windows_unverified_total{dataset="meeting_attendees",site="acme"} 1.0' in text
    assert 'webex_exporter_dataset_unavailable{dataset="access_anywhere",site="acme"} 1.0' in text
    assert 'webex_exporter_runs_total{dataset="access_anywhere",outcome="unavailable",site="acme"} 1.0' in text
    assert 'webex_exporter_runs_total{dataset="meeting_attendees",outcome="partial",site="acme"} 1.0' in text
    assert 'last_success_timestamp_seconds{dataset="access_anywhere"' not in text


def test_a_site_that_refuses_our_credentials_is_down_not_ok(sim_factory, make_settings):
    """A wrong password: every dataset of the site reads 'refused' (runs table, metrics), no
    fresh last-success timestamp, the site gauge is 0 and /healthz answers 503 naming the site;
    the next good run brings it back."""
    import dataclasses

    from exporter.config import Secret
    from exporter.model.runs import RunOptions
    from exporter.run.pipeline import export
    from exporter.store.warehouse import Warehouse

    sim = sim_factory()
    settings = make_settings(sim)
    wrong = dataclasses.replace(settings, sites=(dataclasses.replace(settings.sites[0], password=Secret("nope"),
                                                                     datasets=("meeting_usage",)),))

    async def main() -> tuple[str, int, dict, int]:
        metrics = Metrics(warehouse=None)
        port = await metrics.start("127.0.0.1", 0)
        try:
            with Warehouse(wrong.warehouse, export=wrong.export) as warehouse:
                report = await export(wrong, RunOptions(now=sim.clock.now()), warehouse=warehouse)
            assert report.exit_code == 3 and [o.outcome for o in report.outcomes] == ["refused"]
            metrics.observe_run(report)
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    text = await response.text()
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    failing, failing_status = await response.json(), response.status
                good = dataclasses.replace(wrong, sites=(dataclasses.replace(wrong.sites[0], password=settings.sites[0].password),))
                with Warehouse(good.warehouse, export=good.export) as warehouse:
                    metrics.observe_run(await export(good, RunOptions(now=sim.clock.now()), warehouse=warehouse))
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    healthy = response.status
        finally:
            await metrics.stop()
        return text, failing_status, failing, healthy

    text, failing_status, failing, healthy = asyncio.run(main())
    assert 'webex_exporter_runs_total{dataset="meeting_usage",outcome="refused",site="demo"} 1.0' in text
    assert 'webex_exporter_site_up{site="demo"} 0.0' in text
    assert "webex_exporter_last_success_timestamp_seconds{" not in text
    assert failing_status == 503 and failing["status"] == "failing" and "AuthError" in failing["sites"]["demo"]
    assert "nope" not in str(failing)  # the secret never shows
    assert healthy == 200
