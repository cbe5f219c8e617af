"""Shared helpers for the source-side tests (protocol, client, throttle, paging).

``run_virtual(coro)`` runs a coroutine on an event loop whose clock is virtual: when nothing is
ready, the loop jumps its clock to the next timer instead of sleeping, so code that waits on
``loop.time()`` / ``asyncio.sleep`` for minutes finishes instantly and deterministically.  It
has no real I/O (no sockets): use it for throttle logic, not for HTTP.
"""

from __future__ import annotations

import asyncio
import json
import selectors
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, TypeVar

import aiohttp
import pyarrow as pa
import pytest

from exporter.config import Secret, SiteSettings, ThrottleSettings
from exporter.model.dataset_spec import Dataset
from exporter.model.windows import Window
from exporter.simulator import Simulator, SimulatorConfig
from exporter.webex.client import WebexClient

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    """A selector that, instead of blocking for ``timeout``, advances the loop's virtual clock."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualClockLoop | None = None

    def select(self, timeout: float | None = None):  # type: ignore[no-untyped-def]
        events = super().select(0)
        if events:
            return events
        if timeout is None:
            raise RuntimeError("virtual loop would block forever: nothing scheduled (a deadlock in the test?)")
        if timeout > 0 and self.loop is not None:
            self.loop.virtual_now += timeout
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time (see the module docstring)."""

    def __init__(self) -> None:
        selector = _JumpingSelector()
        self.virtual_now = 1000.0
        super().__init__(selector)
        selector.loop = self

    def time(self) -> float:  # noqa: D102 - asyncio API
        return self.virtual_now


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a fresh :class:`VirtualClockLoop`."""
    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        return runner.run(coro)


def make_site(
    url: str = "http://127.0.0.1:1/WBXService/XMLService",
    *,
    name: str = "demo",
    site_name: str | None = None,
    auth: str = "password",
    webex_id: str = "admin",
    password: str | None = "sim-password",
    access_token: str | None = None,
    time_zone_id: int = 20,
    unlabeled_time_zone_id: int = 20,
    **throttle: Any,
) -> SiteSettings:
    """A SiteSettings for tests; keyword arguments not named above go to ThrottleSettings."""
    # Fast by default: no budget to speak of, short cool-downs and backoff.
    defaults: dict[str, Any] = {"requests_per_minute": 60_000, "cooldown_seconds": 0.2, "backoff_base_seconds": 0.01,
                                "backoff_max_seconds": 0.05, "gsb_pause_seconds": 0.1,
                                "request_timeout_seconds": 10.0}
    defaults.update(throttle)
    return SiteSettings(
        name=name,
        url=url,
        site_name=site_name or name,
        auth=auth,  # type: ignore[arg-type]
        webex_id=webex_id,
        password=Secret(password) if password is not None else None,
        access_token=Secret(access_token) if access_token is not None else None,
        datasets=(),
        preliminary=False,
        time_zone_id=time_zone_id,
        unlabeled_time_zone_id=unlabeled_time_zone_id,
        throttle=ThrottleSettings(**defaults),
    )


# --------------------------------------------------------------------------- simulator helpers

NOW = datetime(2026, 7, 15, 12, 0, 0, tzinfo=timezone.utc)  # far from any DST change of the zones used


def sim_config(**overrides: Any) -> SimulatorConfig:
    """A small, deterministic simulated world (frozen clock at :data:`NOW`)."""
    values: dict[str, Any] = {"seed": 5, "days": 3, "meetings_per_day": 30, "attendees_per_meeting": 4, "now": NOW}
    values.update(overrides)
    return SimulatorConfig(**values)


@asynccontextmanager
async def simulated(
    config: SimulatorConfig | None = None, **site: Any
) -> AsyncIterator[tuple[Simulator, WebexClient, SiteSettings]]:
    """A running simulator, a SiteSettings pointing at it (``make_site(**site)``) and a client."""
    async with Simulator(config or sim_config()) as sim:
        settings = make_site(sim.url, **site)
        async with aiohttp.ClientSession() as session:
            yield sim, WebexClient(settings, session), settings


def truth_in(sim: Simulator, dataset: Dataset, window: Window, *, site: str = "demo") -> list[dict[str, Any]]:
    """The simulator's ground truth for ``dataset`` restricted to records starting in ``window``."""
    rows = sim.ground_truth(site, dataset.name)
    return [r for r in rows if r.get(dataset.start_column) is not None and window.contains(r[dataset.start_column])]


def assert_equals_truth(table: pa.Table, truth: list[dict[str, Any]], dataset: Dataset) -> None:
    """``table`` holds exactly the ``truth`` records: same natural keys, every column equal (typed)."""
    key = dataset.natural_key
    ours = {tuple(row[k] for k in key): row for row in table.to_pylist()}
    assert len(ours) == table.num_rows, "duplicate natural keys in the fetched table"
    theirs = {tuple(row.get(k) for k in key): row for row in truth}
    missing, unexpected = theirs.keys() - ours.keys(), ours.keys() - theirs.keys()
    assert not missing and not unexpected, (
        f"{dataset.name}: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
    )
    for k, expected in theirs.items():
        got = ours[k]
        for column in dataset.columns:
            want, have = expected.get(column.name), got[column.name]
            if column.type == "json" and have is not None:
                have = json.loads(have)
            if column.type == "float" and want is not None and have is not None:
                assert have == pytest.approx(want), (dataset.name, k, column.name)
            else:
                assert have == want, (dataset.name, k, column.name, have, want)
        assert got["site"] == expected.get("site", got["site"])
        assert (json.loads(got["extra"]) if got["extra"] else {}) == (expected.get("extra") or {}), (dataset.name, k)
