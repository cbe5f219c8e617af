"""Errors carry whom they happened to (site, dataset, window), attached once at the run's
boundaries; the CLI's one line names what its message does not; the exit code comes from the type."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import pickle
from datetime import datetime, timezone
from typing import Any

import click
import pytest
from click.testing import CliRunner

from exporter.app.cli.boundary import EXIT_AUTH, EXIT_CONFIG, EXIT_PARTIAL, error_boundary
from exporter.errors import (
    ApiError,
    AuthError,
    ConfigError,
    ExporterError,
    IncompleteListingError,
    MissingScopeError,
    OperationRetiredError,
    RestRequestError,
    SitePausedError,
    ThrottledError,
    TransportError,
    WindowFailedError,
)
from exporter.model.runs import RunOptions
from exporter.model.windows import Window
from exporter.run import landing, window_fetch
from exporter.run.pipeline import export
from exporter.simulator import SiteConfig
from exporter.store.warehouse import Warehouse

WINDOW = Window(datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 3, 2, tzinfo=timezone.utc))
OTHER = Window(datetime(2026, 3, 2, tzinfo=timezone.utc), datetime(2026, 3, 3, tzinfo=timezone.utc))


# --------------------------------------------------------------------------------- the attributes


def test_an_error_starts_with_no_context():
    exc = TransportError("connection reset")
    assert (exc.site, exc.dataset, exc.window) == (None, None, None)
    assert exc.context == {}
    assert exc.where() == ""


def test_the_root_takes_context_as_keywords():
    exc = ExporterError("boom", site="demo", dataset="meeting_usage", window=WINDOW)
    assert exc.args == ("boom",)
    assert exc.context == {"site": "demo", "dataset": "meeting_usage", "window": "[2026-03-01T00:00:00Z, 2026-03-02T00:00:00Z)"}


def test_add_context_returns_the_same_exception_with_its_type_and_args():
    exc = ApiError("000015", "no record", operation="LstmeetingusageHistory")
    same = exc.add_context(site="demo", dataset="meeting_usage", window=WINDOW)
    assert same is exc and type(same) is ApiError
    assert same.args == ("Webex error 000015 in LstmeetingusageHistory: no record",)
    assert (same.exception_id, same.reason, same.operation) == ("000015", "no record", "LstmeetingusageHistory")
    assert (same.site, same.dataset, same.window) == ("demo", "meeting_usage", WINDOW)


def test_add_context_fills_only_what_is_unset():
    exc = WindowFailedError("short").add_context(window=WINDOW)
    exc.add_context(site="demo", dataset="meeting_usage", window=OTHER)  # an outer boundary knows less
    assert exc.window is WINDOW  # the inner one stays
    assert (exc.site, exc.dataset) == ("demo", "meeting_usage")
    exc.add_context(site="other")
    assert exc.site == "demo"
    exc.add_context()  # nothing given: nothing changes
    assert exc.context["site"] == "demo"


def test_context_lists_only_the_set_fields_in_order():
    assert AuthError("refused").add_context(site="demo").context == {"site": "demo"}
    exc = TransportError("reset").add_context(window=WINDOW, site="demo")
    assert list(exc.context) == ["site", "window"]


def test_every_subclass_constructor_still_works_and_takes_context():
    made = [
        ConfigError(["a: bad", "b: bad"]),
        TransportError("reset", delay=1.0),
        ThrottledError("slow down", delay=60.0, cause="000045"),
        SitePausedError("backup", delay=30.0),
        MissingScopeError("scopes", missing={"meeting_usage": ("meeting:admin_schedule_read",)}),
        OperationRetiredError("gone", operation="LstmeetingusageHistory", exception_id="000088"),
        ApiError("000015", "no record"),
        RestRequestError(400, "bad from", operation="/meetings", tracking_id="t-1"),
        IncompleteListingError("moved", doubtful=frozenset({1})),
    ]
    for exc in made:
        assert exc.context == {}, type(exc)
        assert exc.add_context(site="demo") is exc and exc.context == {"site": "demo"}
    assert made[0].problems == ["a: bad", "b: bad"]
    rest = made[7]
    assert isinstance(rest, RestRequestError) and (rest.status, rest.tracking_id) == (400, "t-1")


def test_raising_after_add_context_keeps_the_traceback():
    def fail() -> None:
        raise TransportError("reset")

    with pytest.raises(TransportError) as caught:
        try:
            fail()
        except TransportError as exc:
            exc.add_context(site="demo")
            raise
    assert caught.value.site == "demo"
    assert caught.traceback[-1].name == "fail"  # where it was raised, not where context was added


def test_context_survives_pickling_for_errors_built_from_a_message():
    exc = pickle.loads(pickle.dumps(TransportError("reset").add_context(site="demo", dataset="meeting_usage")))
    assert exc.context == {"site": "demo", "dataset": "meeting_usage"}


def test_where_names_only_what_the_message_does_not_mention():
    assert AuthError("site demo: refused").add_context(site="demo").where() == ""
    exc = TransportError("reset").add_context(site="demo", dataset="meeting_usage")
    assert exc.where() == "site demo, dataset meeting_usage"
    exc = TransportError("meeting_usage: reset").add_context(site="demo", dataset="meeting_usage", window=WINDOW)
    assert exc.where() == "site demo, window [2026-03-01T00:00:00Z, 2026-03-02T00:00:00Z)"


# --------------------------------------------------------------------------------- the CLI line


def _command(exc: ExporterError) -> click.Command:
    @click.command()
    @click.option("--debug", is_flag=True)
    @error_boundary
    def fails(debug: bool) -> None:
        raise exc

    return fails


def test_the_cli_line_names_the_site_and_dataset_its_message_does_not():
    exc = AuthError("credentials refused").add_context(site="demo", dataset="meeting_usage")
    result = CliRunner().invoke(_command(exc), [])
    assert result.exit_code == EXIT_AUTH
    assert result.output.strip() == "error: site demo, dataset meeting_usage: credentials refused"


def test_the_cli_line_is_unchanged_without_context_or_when_the_message_names_it():
    result = CliRunner().invoke(_command(ConfigError("sites[0].url: missing")), [])
    assert (result.exit_code, result.output.strip()) == (EXIT_CONFIG, "error: sites[0].url: missing")
    exc = AuthError("site demo: credentials refused").add_context(site="demo")
    result = CliRunner().invoke(_command(exc), [])
    assert (result.exit_code, result.output.strip()) == (EXIT_AUTH, "error: site demo: credentials refused")


def test_the_exit_code_comes_from_the_type_not_the_context_or_text():
    exc = WindowFailedError("AuthError: looks like one").add_context(site="demo")
    result = CliRunner().invoke(_command(exc), [])
    assert result.exit_code == EXIT_PARTIAL


def test_the_cli_line_is_redacted(monkeypatch):
    from exporter.obs import logs

    monkeypatch.setattr(logs, "_SECRETS", set())  # registered for this test only
    logs.register_secret("hunter2-secret")
    exc = AuthError("refused hunter2-secret").add_context(site="demo")
    result = CliRunner().invoke(_command(exc), [])
    assert "hunter2-secret" not in result.output and "site demo" in result.output


# --------------------------------------------------------------------------------- end to end


def _run(settings: Any, sim: Any) -> Any:
    async def main() -> Any:
        with Warehouse(settings.warehouse, export=settings.export) as warehouse:
            return await export(settings, RunOptions(now=sim.clock.now()), warehouse=warehouse)

    return asyncio.run(main())


def test_a_failed_window_carries_its_site_dataset_and_window(simulator, make_settings, monkeypatch, caplog):
    """Through the real simulator: HTTP 5xx on every listing, one attempt each; each window's
    failure is recorded and logged with its site, dataset and window, and the exception that
    failed it carries them too."""
    settings = make_settings(simulator, window_hours=24)
    settings = dataclasses.replace(settings, sites=(dataclasses.replace(
        settings.sites[0], datasets=("meeting_usage",),
        throttle=dataclasses.replace(settings.sites[0].throttle, max_attempts=1),
    ),))
    simulator.queue_fault("http5xx", count=50, operation="LstmeetingusageHistory")
    failures: list[tuple[Window, ExporterError]] = []
    real = landing.record_failed_window

    async def spy(scope: Any, window: Window, exc: ExporterError) -> None:
        await real(scope, window, exc)
        failures.append((window, exc))

    monkeypatch.setattr(window_fetch, "record_failed_window", spy)
    caplog.set_level(logging.INFO, logger="exporter")
    report = _run(settings, simulator)

    assert report.exit_code == 1 and failures
    with Warehouse(settings.warehouse, export=settings.export) as warehouse:
        recorded = set(warehouse.state("demo", "meeting_usage").failed_windows)
    assert {window for window, _ in failures} <= recorded
    for window, exc in failures:
        assert isinstance(exc, TransportError)
        assert (exc.site, exc.dataset) == ("demo", "meeting_usage")
        assert exc.window == window  # its own: a batched request's callers each get their own error
    logged = [r.__dict__["fields"] for r in caplog.records if r.getMessage() == "window failed"]
    assert {(f["site"], f["dataset"]) for f in logged} == {("demo", "meeting_usage")}
    assert {f["window"] for f in logged} == {str(w) for w, _ in failures}


def test_a_site_stopped_by_bad_credentials_is_logged_with_its_site(sim_factory, make_settings, caplog):
    sim = sim_factory(sites=(SiteConfig("demo"), SiteConfig("other", users={"admin": "another-password"})))
    settings = make_settings(sim, sites=("demo", "other"))
    caplog.set_level(logging.INFO, logger="exporter")
    report = _run(settings, sim)
    assert report.exit_code == 3 and set(report.site_errors) == {"other"}
    stopped = [r.__dict__["fields"] for r in caplog.records if r.getMessage() == "site stopped"]
    assert [f["site"] for f in stopped] == ["other"]
    assert stopped[0]["error"].startswith("AuthError: ") and "another-password" not in str(stopped[0])
    assert "sim-password" not in str(stopped[0])
