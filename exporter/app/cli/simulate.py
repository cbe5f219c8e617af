"""Trying the exporter without a Webex site: ``demo`` (a whole export against the built-in
simulator) and ``simulate`` (the simulator alone, until Ctrl-C)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ...errors import ConfigError
from .boundary import error_boundary
from .options import common_options

__all__ = ["demo", "simulate"]


@click.command()
@common_options
@click.option("--keep/--fresh", default=False, help="Keep what an earlier demo landed (default: start fresh).")
@error_boundary
def demo(config_path: Path, debug: bool, keep: bool) -> None:
    """Run the whole exporter against the built-in simulator and show what landed.

    Starts the simulator on a free loopback port, exports every dataset into the configured
    warehouse (default ./warehouse), prints row counts per table and an example query.

    \b
    Example:
      webex-exporter demo
    """
    from ..demo import run_demo

    sys.exit(run_demo(config_path, fresh=not keep, debug=debug))


@click.command()
@common_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address (keep it on loopback).")
@click.option("--port", type=int, default=None, help="Port (default: [simulator].port from the config, else 8765).")
@click.option("--profile", default=None, help="Built-in profile name or path to a TOML profile.")
@click.option("--seed", type=int, default=None, help="Random seed for the generated history.")
@click.option("--days", type=int, default=None, help="Days of history to generate.")
@click.option("--meetings-per-day", type=int, default=None, help="Meetings per day per site.")
@click.option("--attendees-per-meeting", type=int, default=None, help="Average attendees per meeting.")
@click.option("--latency-ms", type=float, default=None, help="Added latency per request.")
@click.option("--rate-limit", "rate_limit_per_minute", type=int, default=None, help="Requests per minute per API group, then 000045.")
@click.option("--fault", "faults", multiple=True, metavar="KIND=RATE", help="Random fault rate, e.g. http500=0.05 (repeatable).")
@click.option("--encoding", type=click.Choice(["UTF-8", "ISO-8859-1"]), default=None, help="Response encoding.")
@error_boundary
def simulate(config_path: Path, debug: bool, **options: Any) -> None:
    """Run the Webex XML API simulator (a real HTTP server on loopback) until Ctrl-C.

    Point the exporter at it with the default config.toml; it prints its URL and demo credentials.

    \b
    Example:
      webex-exporter simulate --port 8765 --latency-ms 300 --rate-limit 600 --fault http500=0.02
    """
    from ...simulator import cli_main

    simulator_table: dict[str, Any] = {}
    if config_path.exists():
        import tomllib

        try:
            simulator_table = tomllib.loads(config_path.read_text(encoding="utf-8")).get("simulator", {})
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: not valid TOML ({exc})") from None
    if options.get("port") is None:
        options["port"] = int(simulator_table.get("port", 8765))
    if options.get("profile") is None:
        options["profile"] = simulator_table.get("profile", "default")
    cli_main(**options)
