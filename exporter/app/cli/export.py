"""Exporting: ``run`` (once now), ``backfill`` (everything the server still holds) and ``serve``
(the scheduled background service)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .boundary import error_boundary
from .options import common_options, load_command_settings, parse_when, selection_options

if TYPE_CHECKING:
    from ...config import Settings
    from ...model.runs import RunOptions

__all__ = ["run", "backfill", "serve"]


def _export_and_exit(settings: Settings, options: RunOptions) -> None:
    """Check the selection, run one export, print its summary, exit with its code."""
    from ...run.pipeline import run_once
    from ...run.planning import validate_options

    validate_options(settings, options)
    report = run_once(settings, options)
    click.echo(report.summary())
    sys.exit(report.exit_code)


@click.command()
@common_options
@selection_options
@click.option("--since", help="Start of the range (UTC, YYYY-MM-DD[THH:MM]); default: cursor minus lookback.")
@click.option("--until", help="End of the range (UTC); default: now.")
@error_boundary
def run(config_path: Path, debug: bool, sites: tuple[str, ...], datasets: tuple[str, ...], since: str | None, until: str | None) -> None:
    """Export once now: every due window of the chosen sites and datasets.

    Windows from (cursor - lookback) up to now, plus windows that failed before. Commits window by
    window, so an interrupted run loses nothing and resumes where it stopped.

    \b
    Example:
      webex-exporter run --site demo --dataset meeting_usage --since 2026-11-01 --until 2026-11-08
    """
    from ...model.runs import RunOptions

    settings = load_command_settings(config_path, debug)
    _export_and_exit(settings, RunOptions(
        sites=sites or None, datasets=datasets or None,
        since=parse_when(since, "--since"), until=parse_when(until, "--until"),
    ))


@click.command()
@common_options
@selection_options
@error_boundary
def backfill(config_path: Path, debug: bool, sites: tuple[str, ...], datasets: tuple[str, ...]) -> None:
    """Export everything the server still holds (the 90-day retention) for the chosen sites/datasets.

    Windows already committed are fetched again and merged by natural key (no duplicates).

    \b
    Example:
      webex-exporter backfill --site demo
    """
    from ...model.runs import RunOptions

    settings = load_command_settings(config_path, debug)
    _export_and_exit(settings, RunOptions(sites=sites or None, datasets=datasets or None, backfill=True))


@click.command()
@common_options
@error_boundary
def serve(config_path: Path, debug: bool) -> None:
    """Run as a background service: one scheduled job per site and dataset.

    No overlapping runs of a job, a lock so two exporters never write one warehouse, and a clean
    stop on SIGTERM/SIGINT (the window in flight is dropped, committed work stays).

    \b
    Example:
      webex-exporter serve --config /etc/webex-exporter/config.toml
    """
    from ..scheduler import serve as serve_forever

    settings = load_command_settings(config_path, debug)
    sys.exit(asyncio.run(serve_forever(settings)))
