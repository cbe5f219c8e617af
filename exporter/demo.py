"""``demo``: the whole exporter, end to end, against the built-in simulator.

Starts the simulator (profile from ``[simulator]`` in the config) on a free loopback port, points
the configured loopback sites at it, exports every dataset into the configured warehouse, then
compares what landed with the simulator's ground truth and prints an example query.
"""

from __future__ import annotations

import os
import shutil
import time
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from .config import Settings, parse_settings
from .errors import ConfigError

__all__ = ["run_demo", "demo_settings"]

DEMO_PASSWORD_ENV = "WEBEX_SIM_PASSWORD"


def demo_settings(config_path: Path, simulator_url: str, password: str) -> Settings:
    """The config file's settings with every loopback site pointed at ``simulator_url``."""
    try:
        data: dict[str, Any] = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{config_path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML ({exc})") from None
    for site in data.get("sites", []):
        host = urlsplit(str(site.get("url", ""))).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1"):
            site["url"] = simulator_url
    env = dict(os.environ)
    for site in data.get("sites", []):
        name = site.get("password_env")
        if name and not env.get(name):
            env[name] = password
    return parse_settings(data, env=env, source=str(config_path), base_dir=config_path.resolve().parent)


def _clear_warehouse(settings: Settings) -> None:
    """Remove what an earlier demo landed (only the exporter's own files and folders)."""
    from .datasets import DATASETS

    root = Path(settings.warehouse.root)
    if "://" in settings.warehouse.root or not root.exists():
        return
    for name in [d.name for d in DATASETS] + ["_staging", ".webex-exporter"]:
        shutil.rmtree(root / name, ignore_errors=True)
    catalog = Path(settings.warehouse.catalog)
    for path in (catalog, catalog.with_name(catalog.name + ".wal"), catalog.parent / ".webex-exporter"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()


def run_demo(config_path: Path, *, fresh: bool = True, debug: bool = False) -> int:
    """Run the demo; returns the process exit code (0 when every table matches the ground truth)."""
    from .logs import configure_logging
    from .pipeline import RunOptions, run_once
    from .queries import run_query
    from .reporting import format_rows
    from .simulator import load_profile, run_in_thread

    try:
        table = tomllib.loads(config_path.read_text(encoding="utf-8")).get("simulator", {})
    except (FileNotFoundError, tomllib.TOMLDecodeError):
        table = {}
    profile = load_profile(table.get("profile", "default"))
    password = dict(profile.sites[0].users).get("admin", "")
    click.echo(f"starting the Webex XML API simulator (profile {table.get('profile', 'default')!r}) ...")
    with run_in_thread(profile) as sim:
        settings = demo_settings(config_path, sim.url, password)
        configure_logging("text", "debug" if debug else "warning")
        if fresh:
            _clear_warehouse(settings)
        # Freeze the simulated clock: sessions that end while the demo runs would otherwise become
        # visible after the export planned its windows, and the comparison below would be unfair.
        sim.clock.freeze()
        now = sim.clock.now()
        click.echo(f"simulator at {sim.url}; exporting {len(settings.sites)} sites into {settings.warehouse.root} ...")
        began = time.monotonic()
        report = run_once(settings, RunOptions(now=now))
        elapsed = time.monotonic() - began
        click.echo(report.summary())
        click.echo(f"\nexport took {elapsed:.1f} s\n")
        mismatches = _compare_with_ground_truth(settings, sim)
    columns, rows = run_query(settings, "top_hosts", ("limit=5",))
    click.echo("example: webex-exporter query top_hosts --param limit=5")
    click.echo(format_rows(columns, rows, "table"))
    click.echo(f"\nthe catalog is {settings.warehouse.catalog}; try: webex-exporter query \"select * from meeting_usage limit 5\"")
    if mismatches or report.exit_code:
        click.echo(f"\n{mismatches} table(s) differ from the simulator's ground truth", err=True)
        return 1
    return 0


def _compare_with_ground_truth(settings: Settings, sim: Any) -> int:
    """Print landed rows vs the simulator's ground truth per site and dataset; count mismatches."""
    from .datasets import by_name
    from .queries import open_catalog

    connection = open_catalog(settings)
    mismatches = 0
    click.echo(f"{'site':<12} {'dataset':<20} {'landed':>8} {'server':>8}")
    try:
        for site in settings.sites:
            for name in site.datasets:
                by_name(name)
                # Rows, not distinct keys: the server's twins (rows equal in every key field) are records too.
                truth = len(sim.ground_truth(site.site_name, name))
                landed = connection.execute(
                    f"select count(*) from {name} where site = ? and not _preliminary", [site.name]
                ).fetchone()[0]
                mark = "" if landed == truth else "  <-- differs"
                mismatches += bool(mark)
                click.echo(f"{site.name:<12} {name:<20} {landed:>8} {truth:>8}{mark}")
    finally:
        connection.close()
    return mismatches
