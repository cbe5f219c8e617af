"""A Webex Meetings XML and REST API simulator: deterministic data, real HTTP, controllable faults.

    async with Simulator(SimulatorConfig(seed=1)) as sim:   # sim.url -> http://127.0.0.1:PORT/WBXService/XMLService
        rows = sim.ground_truth("demo", "meeting_usage")
        rest = sim.rest_ground_truth("demo", "meeting_participants")   # sim.rest_url -> http://127.0.0.1:PORT/v1

    with run_in_thread(load_profile("default")) as sim:      # for synchronous code
        ...

``cli_main(**options)`` runs one until Ctrl-C (``webex-exporter simulate``).
"""

from __future__ import annotations

from .cli import cli_main, config_from_options
from .config import SimulatorConfig, load_profile
from .fault_settings import FAULT_KINDS, FaultSettings, QueuedFault
from .rest.config import DEFAULT_SCOPES as REST_SCOPES
from .rest.config import RestConfig, SiteRest
from .server import SERVICE_PATH, Simulator, run_in_thread
from .site_config import SiteConfig

__all__ = [
    "FAULT_KINDS",
    "FaultSettings",
    "QueuedFault",
    "REST_SCOPES",
    "RestConfig",
    "SERVICE_PATH",
    "SimulatorConfig",
    "Simulator",
    "SiteConfig",
    "SiteRest",
    "cli_main",
    "config_from_options",
    "load_profile",
    "run_in_thread",
]
