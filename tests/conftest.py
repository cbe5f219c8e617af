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
