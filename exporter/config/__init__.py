"""Configuration: ``config.toml`` -> frozen, validated :class:`Settings`.

The whole file is validated at start and every problem is reported at once, each naming its key
(``sites[1].url: not a URL``).  Secrets never live in the file: a site names an environment
variable (``password_env``, ``access_token_env``) or a separate secrets file; the values are held
in :class:`Secret`, whose ``repr`` and ``str`` are masked.

The package: :mod:`.settings` (the dataclasses, each key's default and bounds declared once),
:mod:`.load` (file, secrets file, environment -> Settings), :mod:`.sections` and :mod:`.sites`
(the rules per table), :mod:`.checks` (the problem collector and shared checks).  This module is
the package's public face.
"""

from .load import load_settings, parse_settings
from .settings import (
    ALL_DATASETS,
    DEFAULT_CONFIG_PATH,
    DEFAULT_DATASETS,
    AuthMethod,
    ExportSettings,
    ObservabilitySettings,
    RestSettings,
    ScheduleSettings,
    Secret,
    Settings,
    SiteSettings,
    SourceKind,
    ThrottleSettings,
    WarehouseSettings,
)

__all__ = [
    "Secret",
    "SiteSettings",
    "RestSettings",
    "ThrottleSettings",
    "ExportSettings",
    "WarehouseSettings",
    "ScheduleSettings",
    "ObservabilitySettings",
    "Settings",
    "AuthMethod",
    "SourceKind",
    "ALL_DATASETS",
    "DEFAULT_DATASETS",
    "load_settings",
    "parse_settings",
    "DEFAULT_CONFIG_PATH",
]
