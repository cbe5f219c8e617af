"""Configuration: ``config.toml`` -> frozen, validated :class:`Settings`.

The whole file is validated at start and every problem is reported at once, each naming its key
(``sites[1].url: not a URL``).  Secrets never live in the file: a site names an environment
variable (``password_env``, ``access_token_env``) or a separate secrets file; the values are held
in :class:`Secret`, whose ``repr`` and ``str`` are masked.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from .errors import ConfigError
from .model.datasets import ALL_DATASETS as REGISTRY
from .model.datasets import DATASETS
from .model.timezones import DEFAULT_REQUEST_TIME_ZONE_ID, TIME_ZONES

__all__ = [
    "Secret",
    "SiteSettings",
    "ThrottleSettings",
    "ExportSettings",
    "WarehouseSettings",
    "ScheduleSettings",
    "ObservabilitySettings",
    "Settings",
    "load_settings",
    "parse_settings",
    "DEFAULT_CONFIG_PATH",
]

DEFAULT_CONFIG_PATH = Path("config.toml")
DEFAULT_REQUESTS_PER_MINUTE = 240
DEFAULT_MAX_CONCURRENCY = 8
DEFAULT_PAGE_SIZE = 500
DEFAULT_BODIES_PER_REQUEST = 10
DEFAULT_COOLDOWN_SECONDS = 60.0
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_BACKOFF_BASE_SECONDS = 0.5
DEFAULT_BACKOFF_MAX_SECONDS = 60.0
DEFAULT_REQUEST_TIMEOUT_SECONDS = 120.0
DEFAULT_GSB_PAUSE_SECONDS = 300.0
#: The longest wait a server may ask for (Retry-After) before the site is stopped for the run;
#: also the cap of cool-downs that double while the server keeps throttling.
DEFAULT_MAX_RETRY_AFTER_SECONDS = 900.0
#: Largest answer accepted, counted after decompression (the XML parser refuses more anyway).
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
DEFAULT_WINDOW_HOURS = 24
DEFAULT_LOOKBACK_DAYS = 3
#: Lookback per dataset unless ``export.lookback_days`` is set: what Webex keeps revising.
#: Session usage is revised and late attendees arrive up to a week after a meeting; recording
#: access counters (viewed, downloaded) keep growing for weeks after the recording is made.
DEFAULT_DATASET_LOOKBACK_DAYS: dict[str, int] = {
    "meeting_usage": 7, "meeting_attendees": 7, "training_sessions": 7, "training_attendees": 7,
    "event_sessions": 7, "event_attendees": 7, "support_sessions": 7, "support_attendees": 7,
    "access_anywhere": 7, "recording_access": 30,
    "meeting_instances": 7, "meeting_participants": 7, "recording_access_details": 30,
}
DEFAULT_RETENTION_DAYS = 90
DEFAULT_SETTLE_HOURS = 0
DEFAULT_MAX_WINDOW_RECORDS = 50_000
DEFAULT_GAP_WARNING_DAYS = 75
DEFAULT_SCHEDULED_AHEAD_DAYS = 30
ALL_DATASETS = tuple(d.name for d in REGISTRY)
#: What a site exports when its config does not say, by source.
DEFAULT_DATASETS: dict[str, tuple[str, ...]] = {
    "xml": tuple(d.name for d in DATASETS),
    "rest": tuple(d.name for d in REGISTRY if "rest" in d.sources),
    "auto": ALL_DATASETS,
}
DEFAULT_REST_BASE_URL = "https://webexapis.com/v1"
DEFAULT_REST_TOKEN_URL = "https://webexapis.com/v1/access_token"
#: Where a site's rotating OAuth tokens live unless ``[sites.rest] token_file`` says: outside the
#: repository and the warehouse, owner-only.
DEFAULT_TOKEN_DIR = "~/.config/webex-exporter/tokens"

AuthMethod = Literal["password", "ticket", "token"]
#: Which API a site is exported through: the XML API, the REST APIs, or XML until the site
#: answers that an operation is retired and REST from then on.
SourceKind = Literal["xml", "rest", "auto"]


class Secret:
    """A secret value that never shows itself in logs, errors or reprs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The actual value; call only where it goes on the wire."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    """How hard we may push one site (per API group) and how we back off."""

    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    page_size: int = DEFAULT_PAGE_SIZE
    bodies_per_request: int = DEFAULT_BODIES_PER_REQUEST
    cooldown_seconds: float = DEFAULT_COOLDOWN_SECONDS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_base_seconds: float = DEFAULT_BACKOFF_BASE_SECONDS
    backoff_max_seconds: float = DEFAULT_BACKOFF_MAX_SECONDS
    request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS
    gsb_pause_seconds: float = DEFAULT_GSB_PAUSE_SECONDS
    #: A Retry-After above this stops the site for the run (no sleeping for hours); doubling
    #: cool-downs never exceed it.
    max_retry_after_seconds: float = DEFAULT_MAX_RETRY_AFTER_SECONDS
    #: An answer larger than this (after decompression) is refused, reading stops there.
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES


@dataclass(frozen=True, slots=True)
class RestSettings:
    """How a site is reached through the Webex REST APIs (an OAuth integration).

    The integration's client secret comes from ``client_secret_env`` or the secrets file; its
    refresh token lives in ``token_file`` (owner-only), which the exporter rewrites atomically
    on every refresh because Webex hands out a new refresh token each time."""

    base_url: str = DEFAULT_REST_BASE_URL
    token_url: str = DEFAULT_REST_TOKEN_URL
    #: The ``siteUrl`` parameter, e.g. ``acme.webex.com``.
    site_url: str = ""
    client_id: str = ""
    client_secret: Secret | None = None
    token_file: str = ""
    #: ``/meetings`` lists at most this many instances per query ("even if pagination is
    #: enabled"); a listing that reaches it is listed again in halves.
    meetings_list_cap: int = 10_000


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """One Webex site: where it is, who we are there, and what to export from it."""

    name: str
    url: str
    site_name: str
    auth: AuthMethod
    webex_id: str
    password: Secret | None
    access_token: Secret | None
    datasets: tuple[str, ...]
    preliminary: bool
    time_zone_id: int
    #: Zone of times from operations that take no timeZoneID; None: ask the site (GetSite).
    unlabeled_time_zone_id: int | None
    throttle: ThrottleSettings
    #: Export with an account that is not a site admin (Webex then lists only its own sessions).
    allow_non_admin: bool = False
    #: exceptionIDs that mean "this operation is retired on this site" (UNCONFIRMED default).
    retired_exception_ids: tuple[str, ...] = ()
    #: What is missing to sign in (no password / token found), or None; see Settings.require_secrets.
    missing_secret: str | None = None
    source: SourceKind = "xml"
    #: REST access (required for source "rest" and "auto"), else None.
    rest: RestSettings | None = None


@dataclass(frozen=True, slots=True)
class ExportSettings:
    """Windows, lookback and retention rules shared by all sites."""

    window_hours: int = DEFAULT_WINDOW_HOURS
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    retention_days: int = DEFAULT_RETENTION_DAYS
    settle_hours: int = DEFAULT_SETTLE_HOURS
    max_window_records: int = DEFAULT_MAX_WINDOW_RECORDS
    gap_warning_days: int = DEFAULT_GAP_WARNING_DAYS
    scheduled_ahead_days: int = DEFAULT_SCHEDULED_AHEAD_DAYS
    #: Processes that parse large responses; None = "auto" (the usable cores, at most 4), 0 = none.
    parse_workers: int | None = None
    #: (dataset, days) lookbacks that differ from ``lookback_days``.
    dataset_lookback_days: tuple[tuple[str, int], ...] = tuple(DEFAULT_DATASET_LOOKBACK_DAYS.items())

    def lookback_for(self, dataset: str) -> int:
        """Days before the cursor that every run lists again for ``dataset``."""
        return dict(self.dataset_lookback_days).get(dataset, self.lookback_days)


@dataclass(frozen=True, slots=True)
class WarehouseSettings:
    """Where the Parquet lake and the DuckDB catalog live."""

    root: str = "warehouse"
    catalog: str = "warehouse/webex.duckdb"
    row_group_size: int = 128 * 1024
    compact_min_files: int = 8
    s3_endpoint_url: str | None = None
    s3_region: str | None = None


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    """When ``serve`` runs each (site, dataset) job: an interval or a cron expression."""

    interval_seconds: int | None = 86_400
    cron: str | None = None
    jitter_seconds: int = 0
    misfire_grace_seconds: int = 3_600
    per_dataset: tuple[tuple[str, int | None, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class ObservabilitySettings:
    """Logs and metrics."""

    log_format: Literal["auto", "text", "json"] = "auto"
    log_level: str = "info"
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole validated configuration."""

    sites: tuple[SiteSettings, ...]
    export: ExportSettings = field(default_factory=ExportSettings)
    warehouse: WarehouseSettings = field(default_factory=WarehouseSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    observability: ObservabilitySettings = field(default_factory=ObservabilitySettings)
    timezone_overrides: tuple[tuple[int, str], ...] = ()
    simulator: dict[str, Any] = field(default_factory=dict)
    source: str = "<memory>"

    def site(self, name: str) -> SiteSettings:
        """The site called ``name``; ``ConfigError`` names the known ones."""
        for site in self.sites:
            if site.name == name:
                return site
        raise ConfigError(f"--site {name}: no such site; configured: {', '.join(s.name for s in self.sites)}")

    def require_secrets(self, names: Iterable[str] | None = None) -> None:
        """Raise ``ConfigError`` naming every key whose secret is missing, for the sites called
        ``names`` (default: all): what a command that signs in to them needs, and no more."""
        wanted = set(names) if names is not None else {s.name for s in self.sites}
        problems = [s.missing_secret for s in self.sites if s.name in wanted and s.missing_secret]
        if problems:
            raise ConfigError(problems)


# --------------------------------------------------------------------------- validation helpers


class _Checker:
    """Collects problems instead of stopping at the first one."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")

    def table(self, data: Any, key: str) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.fail(key, f"must be a table, got {type(data).__name__}")
            return {}
        return data

    def unknown(self, data: dict[str, Any], key: str, allowed: set[str]) -> None:
        for name in sorted(set(data) - allowed):
            hint = _closest(name, allowed)
            self.fail(f"{key}.{name}" if key else name, "unknown key" + (f" (did you mean {hint!r}?)" if hint else ""))

    def integer(self, data: dict[str, Any], name: str, key: str, default: int, *, low: int, high: int) -> int:
        value = data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"{key}.{name}", f"must be an integer, got {value!r}")
            return default
        if not low <= value <= high:
            self.fail(f"{key}.{name}", f"must be between {low} and {high}, got {value}")
            return default
        return value

    def number(self, data: dict[str, Any], name: str, key: str, default: float, *, low: float, high: float) -> float:
        value = data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(f"{key}.{name}", f"must be a number, got {value!r}")
            return default
        if not low <= value <= high:
            self.fail(f"{key}.{name}", f"must be between {low} and {high}, got {value}")
            return default
        return float(value)

    def string(self, data: dict[str, Any], name: str, key: str, default: str | None) -> str | None:
        value = data.get(name, default)
        if value is not None and not isinstance(value, str):
            self.fail(f"{key}.{name}", f"must be a string, got {value!r}")
            return default
        return value

    def boolean(self, data: dict[str, Any], name: str, key: str, default: bool) -> bool:
        value = data.get(name, default)
        if not isinstance(value, bool):
            self.fail(f"{key}.{name}", f"must be true or false, got {value!r}")
            return default
        return value


def _closest(name: str, allowed: set[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(name, sorted(allowed), n=1, cutoff=0.75)
    return match[0] if match else None


_SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_THROTTLE_KEYS = {
    "requests_per_minute", "max_concurrency", "page_size", "bodies_per_request", "cooldown_seconds",
    "max_attempts", "backoff_base_seconds", "backoff_max_seconds", "request_timeout_seconds",
    "gsb_pause_seconds", "max_retry_after_seconds", "max_response_bytes",
}


def _throttle(c: _Checker, data: dict[str, Any], key: str, base: ThrottleSettings) -> ThrottleSettings:
    c.unknown(data, key, _THROTTLE_KEYS)
    settings = ThrottleSettings(
        requests_per_minute=c.integer(data, "requests_per_minute", key, base.requests_per_minute, low=1, high=100_000),
        max_concurrency=c.integer(data, "max_concurrency", key, base.max_concurrency, low=1, high=256),
        page_size=c.integer(data, "page_size", key, base.page_size, low=1, high=500),
        bodies_per_request=c.integer(data, "bodies_per_request", key, base.bodies_per_request, low=1, high=100),
        cooldown_seconds=c.number(data, "cooldown_seconds", key, base.cooldown_seconds, low=0, high=3600),
        max_attempts=c.integer(data, "max_attempts", key, base.max_attempts, low=1, high=100),
        backoff_base_seconds=c.number(data, "backoff_base_seconds", key, base.backoff_base_seconds, low=0, high=600),
        backoff_max_seconds=c.number(data, "backoff_max_seconds", key, base.backoff_max_seconds, low=0, high=3600),
        request_timeout_seconds=c.number(
            data, "request_timeout_seconds", key, base.request_timeout_seconds, low=0.1, high=3600
        ),
        gsb_pause_seconds=c.number(data, "gsb_pause_seconds", key, base.gsb_pause_seconds, low=0, high=86_400),
        max_retry_after_seconds=c.number(
            data, "max_retry_after_seconds", key, base.max_retry_after_seconds, low=1, high=86_400
        ),
        max_response_bytes=c.integer(
            data, "max_response_bytes", key, base.max_response_bytes, low=64 * 1024, high=DEFAULT_MAX_RESPONSE_BYTES
        ),
    )
    named = {"cooldown_seconds", "max_retry_after_seconds"} & data.keys()  # a site's inherited values were checked
    if named and settings.cooldown_seconds > settings.max_retry_after_seconds:
        c.fail(f"{key}.max_retry_after_seconds", f"must be at least cooldown_seconds ({settings.cooldown_seconds:g}): "
               "cool-downs double up to it")
    return settings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(c: _Checker, url: str | None, key: str) -> None:
    if not url:
        c.fail(key, "missing (the site's XML API URL, e.g. https://acme.webex.com/WBXService/XMLService)")
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        c.fail(key, f"not a URL: {url!r}")
    elif parts.scheme == "http" and not _is_loopback(parts.hostname):
        c.fail(key, "plain http is allowed only for loopback (the simulator); use https")


def _secret(
    c: _Checker, data: dict[str, Any], name: str, key: str, env: dict[str, str], secrets: dict[str, Any], site: str
) -> Secret | None:
    """A secret from the variable named by ``<name>_env`` or from the secrets file's [sites.<site>]."""
    if name in data:
        c.fail(f"{key}.{name}", f"secrets may not be written in the config file; use {name}_env or secrets_file")
    env_name = c.string(data, f"{name}_env", key, None)
    if env_name:
        value = env.get(env_name)
        if value:
            return Secret(value)
    from_file = secrets.get("sites", {}).get(site, {}).get(name)
    if isinstance(from_file, str) and from_file:
        return Secret(from_file)
    return None


def _sites(c: _Checker, raw: Any, throttle: ThrottleSettings, env: dict[str, str], secrets: dict[str, Any]) -> list[SiteSettings]:
    if raw is None:
        c.fail("sites", "missing: configure at least one [[sites]] entry")
        return []
    if not isinstance(raw, list):
        c.fail("sites", "must be an array of tables ([[sites]])")
        return []
    sites: list[SiteSettings] = []
    seen: set[str] = set()
    allowed = {
        "name", "url", "site_name", "auth", "webex_id", "password", "password_env", "access_token",
        "access_token_env", "datasets", "preliminary", "time_zone_id", "unlabeled_time_zone_id", "throttle",
        "allow_non_admin", "retired_exception_ids", "source", "rest",
    }
    for index, entry in enumerate(raw):
        key = f"sites[{index}]"
        data = c.table(entry, key)
        c.unknown(data, key, allowed)
        name = c.string(data, "name", key, None) or ""
        if not _SITE_NAME.match(name):
            c.fail(f"{key}.name", f"must be 1-63 letters, digits, '.', '_' or '-', got {name!r}")
        elif name in seen:
            c.fail(f"{key}.name", f"duplicate site name {name!r}")
        seen.add(name)
        source = c.string(data, "source", key, "xml")
        if source not in ("xml", "rest", "auto"):
            c.fail(f"{key}.source", f"must be 'xml', 'rest' or 'auto', got {source!r}")
            source = "xml"
        uses_xml = source in ("xml", "auto")
        url = c.string(data, "url", key, None)
        if uses_xml or url:
            _check_url(c, url, f"{key}.url")
        auth = c.string(data, "auth", key, "password")
        if auth not in ("password", "ticket", "token"):
            c.fail(f"{key}.auth", f"must be 'password', 'ticket' or 'token', got {auth!r}")
        webex_id = c.string(data, "webex_id", key, None) or ""
        if not webex_id and uses_xml:
            c.fail(f"{key}.webex_id", "missing (the Webex user the exporter signs in as)")
        password = _secret(c, data, "password", key, env, secrets, name)
        token = _secret(c, data, "access_token", key, env, secrets, name)
        rest, rest_missing = _rest(c, data.get("rest"), f"{key}.rest", source, name, env, secrets)
        # A missing secret is not a config error: read-only commands need none, and a run needs
        # only those of the sites it runs (Settings.require_secrets).
        missing = rest_missing
        if not uses_xml:
            pass
        elif auth in ("password", "ticket") and password is None:
            missing = (f"{key}.password_env: site {name!r}, auth '{auth}' needs a password: set the environment "
                       f"variable {data.get('password_env') or '(password_env not set)'} or put it in the secrets file")
        if auth == "token" and token is None:
            missing = (f"{key}.access_token_env: site {name!r}, auth 'token' needs an access token: set the "
                       f"environment variable {data.get('access_token_env') or '(access_token_env not set)'} or "
                       "put it in the secrets file")
        datasets = data.get("datasets", list(DEFAULT_DATASETS[source]))
        if not isinstance(datasets, list) or not all(isinstance(d, str) for d in datasets):
            c.fail(f"{key}.datasets", "must be a list of dataset names")
            datasets = []
        for d in datasets:
            if d not in ALL_DATASETS:
                hint = _closest(d, set(ALL_DATASETS))
                c.fail(f"{key}.datasets", f"unknown dataset {d!r}" + (f" (did you mean {hint!r}?)" if hint else ""))
        zone = c.integer(data, "time_zone_id", key, DEFAULT_REQUEST_TIME_ZONE_ID, low=0, high=len(TIME_ZONES) - 1)
        unlabeled = (c.integer(data, "unlabeled_time_zone_id", key, DEFAULT_REQUEST_TIME_ZONE_ID, low=0,
                               high=len(TIME_ZONES) - 1) if "unlabeled_time_zone_id" in data else None)
        retired = data.get("retired_exception_ids", [])
        if not isinstance(retired, list) or not all(isinstance(r, str) and r.strip() for r in retired):
            c.fail(f"{key}.retired_exception_ids", 'must be a list of exceptionID strings, e.g. ["000080"]')
            retired = []
        site_throttle = _throttle(c, c.table(data.get("throttle"), f"{key}.throttle"), f"{key}.throttle", throttle)
        sites.append(
            SiteSettings(
                name=name,
                url=url or "",
                site_name=c.string(data, "site_name", key, name) or name,
                auth=auth if auth in ("password", "ticket", "token") else "password",  # type: ignore[arg-type]
                webex_id=webex_id,
                password=password,
                access_token=token,
                datasets=tuple(d for d in datasets if d in ALL_DATASETS),
                preliminary=c.boolean(data, "preliminary", key, False),
                time_zone_id=zone,
                unlabeled_time_zone_id=unlabeled,
                throttle=site_throttle,
                allow_non_admin=c.boolean(data, "allow_non_admin", key, False),
                retired_exception_ids=tuple(r.strip() for r in retired),
                missing_secret=missing,
                source=source,  # type: ignore[arg-type]
                rest=rest,
            )
        )
        if source == "xml":
            rest_only = [d for d in datasets if d in _REST_ONLY]
            if rest_only:
                c.fail(f"{key}.datasets", f"{', '.join(rest_only)}: only the REST APIs list these; "
                                          "set source = 'rest' or 'auto' and configure [sites.rest]")
        if source == "rest":
            no_rest = [d for d in datasets if d in _XML_ONLY]
            if no_rest:
                c.fail(f"{key}.datasets", f"{', '.join(no_rest)}: the REST APIs have no equivalent; "
                                          "list them with source = 'xml' or 'auto'")
    return sites


_REST_ONLY = {d.name for d in REGISTRY if d.sources == ("rest",)}
_XML_ONLY = {d.name for d in REGISTRY if d.sources == ("xml",)}


def _rest(
    c: _Checker, raw: Any, key: str, source: str, site: str, env: dict[str, str], secrets: dict[str, Any]
) -> tuple[RestSettings | None, str | None]:
    """``[sites.rest]``: the settings (None when not configured) and what secret is missing."""
    if raw is None:
        if source != "xml":
            c.fail(key, f"missing: source = {source!r} needs a [sites.rest] table (client_id, client_secret_env, "
                        "site_url); see README 'REST source'")
        return None, None
    data = c.table(raw, key)
    c.unknown(data, key, {"base_url", "token_url", "site_url", "client_id", "client_secret_env", "client_secret",
                          "token_file", "meetings_list_cap"})
    base_url = c.string(data, "base_url", key, DEFAULT_REST_BASE_URL) or DEFAULT_REST_BASE_URL
    token_url = c.string(data, "token_url", key, DEFAULT_REST_TOKEN_URL) or DEFAULT_REST_TOKEN_URL
    for name, value in (("base_url", base_url), ("token_url", token_url)):
        _check_url(c, value, f"{key}.{name}")
    site_url = c.string(data, "site_url", key, None) or ""
    if not site_url:
        c.fail(f"{key}.site_url", "missing (the Webex site the reports are for, e.g. 'acme.webex.com')")
    elif "/" in site_url or "://" in site_url:
        c.fail(f"{key}.site_url", f"a host name like 'acme.webex.com', not a URL: {site_url!r}")
    client_id = c.string(data, "client_id", key, None) or ""
    if not client_id:
        c.fail(f"{key}.client_id", "missing (the integration's Client ID from developer.webex.com)")
    secret = _secret(c, data, "client_secret", key, env, secrets, site)
    token_file = c.string(data, "token_file", key, None) or f"{DEFAULT_TOKEN_DIR}/{site}.json"
    missing = None
    if secret is None:
        missing = (f"{key}.client_secret_env: site {site!r} needs its integration's client secret: set the "
                   f"environment variable {data.get('client_secret_env') or '(client_secret_env not set)'} or put "
                   "client_secret in the secrets file")
    cap = c.integer(data, "meetings_list_cap", key, 10_000, low=1, high=1_000_000)
    settings = RestSettings(base_url=base_url.rstrip("/"), token_url=token_url, site_url=site_url,
                            client_id=client_id, client_secret=secret, token_file=token_file,
                            meetings_list_cap=cap)
    return settings, missing


def _schedule(c: _Checker, data: dict[str, Any]) -> ScheduleSettings:
    key = "schedule"
    c.unknown(data, key, {"interval_seconds", "cron", "jitter_seconds", "misfire_grace_seconds", "datasets"})
    cron = c.string(data, "cron", key, None)
    interval = None if cron else c.integer(data, "interval_seconds", key, 86_400, low=1, high=31 * 86_400)
    if cron:
        _check_cron(c, cron, f"{key}.cron")
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
            _check_cron(c, sub_cron, f"{sub_key}.cron")
        sub_interval = None if sub_cron else c.integer(sub, "interval_seconds", sub_key, interval or 86_400, low=1, high=31 * 86_400)
        per.append((name, sub_interval, sub_cron))
    return ScheduleSettings(
        interval_seconds=interval,
        cron=cron,
        jitter_seconds=c.integer(data, "jitter_seconds", key, 0, low=0, high=86_400),
        misfire_grace_seconds=c.integer(data, "misfire_grace_seconds", key, 3_600, low=1, high=7 * 86_400),
        per_dataset=tuple(per),
    )


def _check_cron(c: _Checker, expression: str, key: str) -> None:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError as exc:
        c.fail(key, f"not a valid crontab expression ({exc})")


def parse_settings(
    data: dict[str, Any],
    *,
    env: dict[str, str] | None = None,
    source: str = "<memory>",
    base_dir: Path | None = None,
) -> Settings:
    """Validate a parsed TOML document; raise one :class:`ConfigError` listing every problem."""
    env = dict(os.environ) if env is None else env
    c = _Checker()
    c.unknown(data, "", {"sites", "export", "warehouse", "throttle", "schedule", "observability", "timezones",
                         "simulator", "secrets_file"})
    secrets: dict[str, Any] = {}
    secrets_file = c.string(data, "secrets_file", "secrets_file", None)
    if secrets_file:
        path = Path(os.path.expanduser(secrets_file))
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        try:
            secrets = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            c.fail("secrets_file", f"{path} does not exist")
        except (OSError, tomllib.TOMLDecodeError) as exc:
            c.fail("secrets_file", f"cannot read {path}: {exc}")
    throttle = _throttle(c, c.table(data.get("throttle"), "throttle"), "throttle", ThrottleSettings())
    sites = _sites(c, data.get("sites"), throttle, env, secrets)

    export_raw = c.table(data.get("export"), "export")
    c.unknown(export_raw, "export", {"window_hours", "lookback_days", "retention_days", "settle_hours",
                                     "max_window_records", "gap_warning_days", "scheduled_ahead_days",
                                     "parse_workers", "dataset_lookback_days"})
    # An explicit lookback_days applies to every dataset; else each dataset has its own default.
    lookbacks = {} if "lookback_days" in export_raw else dict(DEFAULT_DATASET_LOOKBACK_DAYS)
    for name, days in c.table(export_raw.get("dataset_lookback_days"), "export.dataset_lookback_days").items():
        if name not in ALL_DATASETS:
            hint = _closest(name, set(ALL_DATASETS))
            c.fail(f"export.dataset_lookback_days.{name}", "unknown dataset" + (f" (did you mean {hint!r}?)" if hint else ""))
            continue
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 90:
            c.fail(f"export.dataset_lookback_days.{name}", f"must be a whole number of days 0..90, got {days!r}")
            continue
        lookbacks[name] = days
    export = ExportSettings(
        window_hours=c.integer(export_raw, "window_hours", "export", DEFAULT_WINDOW_HOURS, low=1, high=24 * 31),
        lookback_days=c.integer(export_raw, "lookback_days", "export", DEFAULT_LOOKBACK_DAYS, low=0, high=90),
        retention_days=c.integer(export_raw, "retention_days", "export", DEFAULT_RETENTION_DAYS, low=1, high=3650),
        settle_hours=c.integer(export_raw, "settle_hours", "export", DEFAULT_SETTLE_HOURS, low=0, high=24 * 14),
        max_window_records=c.integer(export_raw, "max_window_records", "export", DEFAULT_MAX_WINDOW_RECORDS, low=1, high=10_000_000),
        gap_warning_days=c.integer(export_raw, "gap_warning_days", "export", DEFAULT_GAP_WARNING_DAYS, low=1, high=3650),
        scheduled_ahead_days=c.integer(
            export_raw, "scheduled_ahead_days", "export", DEFAULT_SCHEDULED_AHEAD_DAYS, low=0, high=366
        ),
        parse_workers=_parse_workers(c, export_raw.get("parse_workers", "auto")),
        dataset_lookback_days=tuple(sorted(lookbacks.items())),
    )
    if export.gap_warning_days >= export.retention_days:
        c.fail("export.gap_warning_days", f"must be below export.retention_days ({export.retention_days})")

    wh = c.table(data.get("warehouse"), "warehouse")
    c.unknown(wh, "warehouse", {"root", "catalog", "row_group_size", "compact_min_files", "s3_endpoint_url", "s3_region"})
    root = c.string(wh, "root", "warehouse", "warehouse") or "warehouse"
    catalog = c.string(wh, "catalog", "warehouse", None) or (str(Path(root) / "webex.duckdb") if "://" not in root else "warehouse/webex.duckdb")
    if "://" in root and not root.startswith("s3://"):
        c.fail("warehouse.root", f"must be a local path or an s3:// URI, got {root!r}")
    if base_dir is not None:
        if "://" not in root and not Path(root).is_absolute():
            root = str(base_dir / root)
        if not Path(catalog).is_absolute():
            catalog = str(base_dir / catalog)
    warehouse = WarehouseSettings(
        root=root,
        catalog=catalog,
        row_group_size=c.integer(wh, "row_group_size", "warehouse", 128 * 1024, low=1_000, high=10_000_000),
        compact_min_files=c.integer(wh, "compact_min_files", "warehouse", 8, low=2, high=10_000),
        s3_endpoint_url=c.string(wh, "s3_endpoint_url", "warehouse", None),
        s3_region=c.string(wh, "s3_region", "warehouse", None),
    )

    obs_raw = c.table(data.get("observability"), "observability")
    c.unknown(obs_raw, "observability", {"log_format", "log_level", "metrics_port", "metrics_host"})
    log_format = c.string(obs_raw, "log_format", "observability", "auto")
    if log_format not in ("auto", "text", "json"):
        c.fail("observability.log_format", f"must be 'auto', 'text' or 'json', got {log_format!r}")
        log_format = "auto"
    level = (c.string(obs_raw, "log_level", "observability", "info") or "info").lower()
    if level not in ("debug", "info", "warning", "error"):
        c.fail("observability.log_level", f"must be debug, info, warning or error, got {level!r}")
        level = "info"
    port = obs_raw.get("metrics_port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535):
        c.fail("observability.metrics_port", f"must be a port number 0-65535, got {port!r}")
        port = None
    host = c.string(obs_raw, "metrics_host", "observability", "127.0.0.1") or "127.0.0.1"
    observability = ObservabilitySettings(log_format=log_format, log_level=level, metrics_port=port, metrics_host=host)  # type: ignore[arg-type]

    tz_raw = c.table(data.get("timezones"), "timezones")
    c.unknown(tz_raw, "timezones", {"overrides"})
    overrides: list[tuple[int, str]] = []
    for zone_id, iana in c.table(tz_raw.get("overrides"), "timezones.overrides").items():
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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

    simulator = c.table(data.get("simulator"), "simulator")
    schedule = _schedule(c, c.table(data.get("schedule"), "schedule"))
    if c.problems:
        raise ConfigError(c.problems)
    return Settings(
        sites=tuple(sites),
        export=export,
        warehouse=warehouse,
        schedule=schedule,
        observability=observability,
        timezone_overrides=tuple(overrides),
        simulator=simulator,
        source=source,
    )


def _parse_workers(c: _Checker, value: object) -> int | None:
    if value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 64:
        c.fail("export.parse_workers", f'must be "auto" or an integer between 0 and 64, got {value!r}')
        return None
    return value


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
