"""The shared tables: ``[throttle]``, ``[export]``, ``[warehouse]``, ``[schedule]``,
``[observability]`` and ``[timezones]``.  Allowed keys, defaults and bounds come from the settings
dataclasses; what is written here is only the rules a field's metadata cannot say."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, get_args

from ..model.timezones import TIME_ZONES
from .checks import Checker, check_cron, closest
from .settings import (
    ALL_DATASETS,
    DEFAULT_DATASET_LOOKBACK_DAYS,
    LOG_LEVELS,
    ExportSettings,
    LogFormat,
    ObservabilitySettings,
    ScheduleSettings,
    ThrottleSettings,
    WarehouseSettings,
    bounds,
    toml_keys,
)


def throttle_settings(c: Checker, data: dict[str, Any], key: str, base: ThrottleSettings) -> ThrottleSettings:
    """A throttle table; keys it leaves out keep ``base``'s values (a site's start from the top level's)."""
    c.unknown(data, key, toml_keys(ThrottleSettings))
    settings = c.read_bounded(data, key, base)
    named = {"cooldown_seconds", "max_retry_after_seconds"} & data.keys()  # a site's inherited values were checked
    if named and settings.cooldown_seconds > settings.max_retry_after_seconds:
        c.fail(f"{key}.max_retry_after_seconds", f"must be at least cooldown_seconds ({settings.cooldown_seconds:g}): "
               "cool-downs double up to it")
    return settings


def export_settings(c: Checker, data: dict[str, Any]) -> ExportSettings:
    """``[export]``: windows, lookbacks (one for all datasets, or each dataset's own), retention."""
    c.unknown(data, "export", toml_keys(ExportSettings))
    # An explicit lookback_days applies to every dataset; else each dataset has its own default.
    lookbacks = {} if "lookback_days" in data else dict(DEFAULT_DATASET_LOOKBACK_DAYS)
    low, high = bounds(ExportSettings, "dataset_lookback_days")
    for name, days in c.table(data.get("dataset_lookback_days"), "export.dataset_lookback_days").items():
        if name not in ALL_DATASETS:
            hint = closest(name, set(ALL_DATASETS))
            c.fail(f"export.dataset_lookback_days.{name}", "unknown dataset" + (f" (did you mean {hint!r}?)" if hint else ""))
            continue
        if isinstance(days, bool) or not isinstance(days, int) or not low <= days <= high:
            c.fail(f"export.dataset_lookback_days.{name}", f"must be a whole number of days {low}..{high}, got {days!r}")
            continue
        lookbacks[name] = days
    defaults = ExportSettings()
    export = replace(
        c.read_bounded(data, "export", defaults),
        parse_workers=_parse_workers(c, data.get("parse_workers", "auto")),
        dataset_lookback_days=tuple(sorted(lookbacks.items())),
    )
    if export.gap_warning_days >= export.retention_days:
        c.fail("export.gap_warning_days", f"must be below export.retention_days ({export.retention_days})")
    return export


def _parse_workers(c: Checker, value: object) -> int | None:
    if value == "auto":
        return None
    low, high = bounds(ExportSettings, "parse_workers")
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        c.fail("export.parse_workers", f'must be "auto" or an integer between {low} and {high}, got {value!r}')
        return None
    return value


def warehouse_settings(c: Checker, data: dict[str, Any], base_dir: Path | None) -> WarehouseSettings:
    """``[warehouse]``: a local or s3:// lake root and the catalog file; relative paths are taken
    relative to ``base_dir`` (the config file's folder) when given."""
    c.unknown(data, "warehouse", toml_keys(WarehouseSettings))
    defaults = WarehouseSettings()
    root = c.string(data, "root", "warehouse", defaults.root) or defaults.root
    catalog = c.string(data, "catalog", "warehouse", None) or (
        str(Path(root) / "webex.duckdb") if "://" not in root else defaults.catalog
    )
    if "://" in root and not root.startswith("s3://"):
        c.fail("warehouse.root", f"must be a local path or an s3:// URI, got {root!r}")
    if base_dir is not None:
        if "://" not in root and not Path(root).is_absolute():
            root = str(base_dir / root)
        if not Path(catalog).is_absolute():
            catalog = str(base_dir / catalog)
    return replace(
        c.read_bounded(data, "warehouse", defaults),
        root=root,
        catalog=catalog,
        s3_endpoint_url=c.string(data, "s3_endpoint_url", "warehouse", None),
        s3_region=c.string(data, "s3_region", "warehouse", None),
    )


def observability_settings(c: Checker, data: dict[str, Any]) -> ObservabilitySettings:
    """``[observability]``: log format and level, and where metrics are served (if anywhere)."""
    key = "observability"
    c.unknown(data, key, toml_keys(ObservabilitySettings))
    defaults = ObservabilitySettings()
    log_format = c.string(data, "log_format", key, defaults.log_format)
    if log_format not in get_args(LogFormat):
        c.fail("observability.log_format", f"must be 'auto', 'text' or 'json', got {log_format!r}")
        log_format = defaults.log_format
    level = (c.string(data, "log_level", key, defaults.log_level) or defaults.log_level).lower()
    if level not in LOG_LEVELS:
        c.fail("observability.log_level", f"must be debug, info, warning or error, got {level!r}")
        level = defaults.log_level
    port = data.get("metrics_port")
    low, high = bounds(ObservabilitySettings, "metrics_port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not low <= port <= high):
        c.fail("observability.metrics_port", f"must be a port number {low}-{high}, got {port!r}")
        port = None
    host = c.string(data, "metrics_host", key, defaults.metrics_host) or defaults.metrics_host
    return ObservabilitySettings(
        log_format=log_format,  # type: ignore[arg-type]  # one of LogFormat's values: checked above
        log_level=level,
        metrics_port=port,
        metrics_host=host,
    )


def timezone_overrides(c: Checker, data: dict[str, Any]) -> tuple[tuple[int, str], ...]:
    """``[timezones.overrides]``: Webex timeZoneID -> the IANA zone to use for it instead."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    c.unknown(data, "timezones", {"overrides"})
    overrides: list[tuple[int, str]] = []
    for zone_id, iana in c.table(data.get("overrides"), "timezones.overrides").items():
        key = f"timezones.overrides.{zone_id}"
        if not str(zone_id).isdigit() or not 0 <= int(zone_id) < len(TIME_ZONES):
            c.fail(key, "not a Webex timeZoneID (0-61)")
            continue
        try:
            ZoneInfo(str(iana))
        except (ZoneInfoNotFoundError, ValueError):
            c.fail(key, f"unknown IANA time zone {iana!r}")
            continue
        overrides.append((int(zone_id), str(iana)))
    return tuple(overrides)


def schedule_settings(c: Checker, data: dict[str, Any]) -> ScheduleSettings:
    """``[schedule]``: an interval or a cron expression for every job, and per-dataset exceptions."""
    key = "schedule"
    c.unknown(data, key, toml_keys(ScheduleSettings))
    defaults = ScheduleSettings()
    default_interval = defaults.interval_seconds or 86_400
    cron = c.string(data, "cron", key, None)
    interval = None if cron else c.bounded(data, ScheduleSettings, "interval_seconds", key, default_interval)
    if cron:
        check_cron(c, cron, f"{key}.cron")
    per: list[tuple[str, int | None, str | None]] = []
    for name, sub in c.table(data.get("datasets"), f"{key}.datasets").items():
        sub_key = f"{key}.datasets.{name}"
        if name not in ALL_DATASETS:
            c.fail(sub_key, "unknown dataset")
            continue
        sub = c.table(sub, sub_key)
        c.unknown(sub, sub_key, {"interval_seconds", "cron"})
        sub_cron = c.string(sub, "cron", sub_key, None)
        if sub_cron:
            check_cron(c, sub_cron, f"{sub_key}.cron")
        sub_interval = (None if sub_cron else
                        c.bounded(sub, ScheduleSettings, "interval_seconds", sub_key, interval or default_interval))
        per.append((name, sub_interval, sub_cron))
    return replace(
        c.read_bounded(data, key, defaults),
        interval_seconds=interval,
        cron=cron,
        per_dataset=tuple(per),
    )
