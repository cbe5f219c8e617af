"""What every command shares: the ``--config``/``--debug`` and ``--site``/``--dataset`` options,
loading the settings (secrets registered for redaction, logging configured) and reading
``--since``/``--until``."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ...errors import ConfigError
from .boundary import F

if TYPE_CHECKING:
    from ...config import Settings

__all__ = ["common_options", "selection_options", "load_command_settings", "parse_when"]


def common_options(func: F) -> F:
    """``--config`` and ``--debug``, shared by every command."""
    func = click.option("--debug", is_flag=True, help="Show full tracebacks and debug logs.")(func)
    func = click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=Path("config.toml"),
        show_default=True,
        envvar="WEBEX_EXPORTER_CONFIG",
        help="Configuration file (env WEBEX_EXPORTER_CONFIG).",
    )(func)
    return func


def selection_options(func: F) -> F:
    """``--site`` and ``--dataset`` (repeatable), shared by run, backfill and status."""
    func = click.option("--dataset", "datasets", multiple=True, help="Only this dataset (repeatable).")(func)
    func = click.option("--site", "sites", multiple=True, help="Only this site (repeatable).")(func)
    return func


def load_command_settings(config_path: Path, debug: bool) -> Settings:
    """The settings of ``config_path``, with their secrets registered for redaction and logging configured."""
    from ...config import load_settings
    from ...obs.logs import configure_logging, register_secret

    settings = load_settings(config_path)
    for site in settings.sites:
        for secret in (site.password, site.access_token, site.rest.client_secret if site.rest else None):
            if secret is not None:
                register_secret(secret.reveal())
    configure_logging(settings.observability.log_format, "debug" if debug else settings.observability.log_level)
    return settings


def parse_when(value: str | None, name: str) -> datetime | None:
    """``--since``/``--until`` (option ``name``) as a UTC time; None when not given."""
    if value is None:
        return None
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{name}: not a date or time: {value!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
