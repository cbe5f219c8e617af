"""Reading the config: the TOML file, the secrets file it names, and the environment, into one
validated :class:`~exporter.config.settings.Settings` (or one ``ConfigError`` listing every problem)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .checks import Checker
from .sections import (
    export_settings,
    observability_settings,
    schedule_settings,
    throttle_settings,
    timezone_overrides,
    warehouse_settings,
)
from .settings import DEFAULT_CONFIG_PATH, Settings, ThrottleSettings, toml_keys
from .sites import site_settings

#: Top-level keys that are no field of Settings: ``throttle`` is folded into each site's own and
#: ``secrets_file`` only says where the secrets come from.
_INPUT_ONLY_KEYS = {"throttle", "secrets_file"}


def _secrets(c: Checker, data: dict[str, Any], base_dir: Path | None) -> dict[str, Any]:
    """The secrets file ``secrets_file`` names, parsed (``{}`` when none is named)."""
    secrets_file = c.string(data, "secrets_file", "secrets_file", None)
    if not secrets_file:
        return {}
    path = Path(os.path.expanduser(secrets_file))
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        c.fail("secrets_file", f"{path} does not exist")
    except (OSError, tomllib.TOMLDecodeError) as exc:
        c.fail("secrets_file", f"cannot read {path}: {exc}")
    return {}


def parse_settings(
    data: dict[str, Any],
    *,
    env: dict[str, str] | None = None,
    source: str = "<memory>",
    base_dir: Path | None = None,
) -> Settings:
    """Validate a parsed TOML document; raise one :class:`ConfigError` listing every problem."""
    env = dict(os.environ) if env is None else env
    c = Checker()
    c.unknown(data, "", toml_keys(Settings) | _INPUT_ONLY_KEYS)
    secrets = _secrets(c, data, base_dir)
    throttle = throttle_settings(c, c.table(data.get("throttle"), "throttle"), "throttle", ThrottleSettings())
    sites = site_settings(c, data.get("sites"), throttle, env, secrets)
    export = export_settings(c, c.table(data.get("export"), "export"))
    warehouse = warehouse_settings(c, c.table(data.get("warehouse"), "warehouse"), base_dir)
    observability = observability_settings(c, c.table(data.get("observability"), "observability"))
    overrides = timezone_overrides(c, c.table(data.get("timezones"), "timezones"))
    simulator = c.table(data.get("simulator"), "simulator")
    schedule = schedule_settings(c, c.table(data.get("schedule"), "schedule"))
    if c.problems:
        raise ConfigError(c.problems)
    return Settings(
        sites=tuple(sites),
        export=export,
        warehouse=warehouse,
        schedule=schedule,
        observability=observability,
        timezone_overrides=overrides,
        simulator=simulator,
        source=source,
    )


def load_settings(path: str | os.PathLike[str] = DEFAULT_CONFIG_PATH, *, env: dict[str, str] | None = None) -> Settings:
    """Read and validate a config file; relative paths in it are relative to the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return parse_settings(data, env=env, source=str(path), base_dir=path.resolve().parent)
