"""Shared pytest fixtures.  Each component adds its own under a header comment."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Iterator

import pytest

# --------------------------------------------------------------------------- simulator
# exporter/simulator: a real HTTP Webex XML API simulator on 127.0.0.1, one thread each.


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., Any]]:
    """``sim_factory(config=None, **fields)`` starts a simulator (default: ``SimulatorConfig.small``
    with ``fields`` replaced) in a background thread and returns it (``sim.url``); all are
    stopped when the test ends."""
    from exporter.simulator import SimulatorConfig, run_in_thread

    with contextlib.ExitStack() as stack:

        def start(config: SimulatorConfig | None = None, **fields: Any) -> Any:
            if config is None:
                config = SimulatorConfig.small(**fields)
            elif fields:
                config = dataclasses.replace(config, **fields)
            return stack.enter_context(run_in_thread(config))

        yield start


@pytest.fixture
def simulator(sim_factory: Callable[..., Any]) -> Any:
    """A small simulator: site ``demo`` (admin / sim-password), clock frozen at 2026-03-10 12:00 UTC."""
    return sim_factory()


# --------------------------------------------------------------------------- exporter settings
# Settings for a run of the real exporter against a simulator, landing in a temporary warehouse.


def exporter_settings_dict(url: str, root: str, *, sites: tuple[str, ...] = ("demo",), **export: Any) -> dict:
    """A config.toml-shaped dict pointing every site at ``url`` (password auth via env WEBEX_TEST_PW)."""
    return {
        "sites": [
            {"name": name, "url": url, "site_name": name, "auth": "ticket", "webex_id": "admin",
             "password_env": "WEBEX_TEST_PW"}
            for name in sites
        ],
        "export": export,
        "throttle": {"requests_per_minute": 6000, "cooldown_seconds": 0.2, "backoff_base_seconds": 0.01,
                     "backoff_max_seconds": 0.05, "gsb_pause_seconds": 0.2, "request_timeout_seconds": 10},
        "warehouse": {"root": root, "catalog": f"{root}/webex.duckdb"},
    }


@pytest.fixture
def make_settings(tmp_path: Any) -> Callable[..., Any]:
    """``make_settings(sim, sites=("demo",), data=None, **export)`` -> validated Settings."""
    from exporter.config import parse_settings

    def build(sim: Any, *, sites: tuple[str, ...] = ("demo",), data: dict | None = None, **export: Any) -> Any:
        raw = data or exporter_settings_dict(sim.url, str(tmp_path / "warehouse"), sites=sites, **export)
        return parse_settings(raw, env={"WEBEX_TEST_PW": "sim-password"})

    return build


@pytest.fixture(autouse=True)
def _exporter_logs_reach_caplog() -> Iterator[None]:
    """``configure_logging`` (run in-process by CLI code an earlier test of this worker called)
    sets the ``exporter`` logger's level and stops it propagating, while ``caplog`` listens on the
    root logger: each test starts with the logger propagating at every level again."""
    import logging

    log = logging.getLogger("exporter")
    saved = (log.propagate, log.level)
    log.propagate, log.level = True, logging.NOTSET
    yield
    log.propagate, log.level = saved
