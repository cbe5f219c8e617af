"""The settings dataclasses: every config key's default, bounds and meaning, declared once.

A field's ``metadata`` carries what validation needs beyond the default: ``min``/``max`` (inclusive
bounds of a number), ``doc`` (what the key means), ``keys`` (the TOML keys it is read from when
they are not just the field's name; ``()`` for a field no TOML key sets) and ``own_check`` (a
bounded key that also takes another form, checked by its section's own code).  Validation
(:mod:`exporter.config.checks`, :mod:`exporter.config.sections`, :mod:`exporter.config.sites`)
reads the allowed keys, defaults and bounds from here instead of declaring them again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from ..errors import ConfigError
from ..model.datasets import ALL_DATASETS as REGISTRY
from ..model.datasets import DATASETS
from ..model.timezones import TIME_ZONES

DEFAULT_CONFIG_PATH = Path("config.toml")
#: Largest answer accepted, counted after decompression (the XML parser refuses more anyway).
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: Lookback per dataset unless ``export.lookback_days`` is set: what Webex keeps revising.
#: Session usage is revised and late attendees arrive up to a week after a meeting; recording
#: access counters (viewed, downloaded) keep growing for weeks after the recording is made.
DEFAULT_DATASET_LOOKBACK_DAYS: dict[str, int] = {
    "meeting_usage": 7, "meeting_attendees": 7, "training_sessions": 7, "training_attendees": 7,
    "event_sessions": 7, "event_attendees": 7, "support_sessions": 7, "support_attendees": 7,
    "access_anywhere": 7, "recording_access": 30,
    "meeting_instances": 7, "meeting_participants": 7, "recording_access_details": 30,
}
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
#: The highest Webex timeZoneID (the table is indexed from 0).
LAST_TIME_ZONE_ID = len(TIME_ZONES) - 1

AuthMethod = Literal["password", "ticket", "token"]
#: Which API a site is exported through: the XML API, the REST APIs, or XML until the site
#: answers that an operation is retired and REST from then on.
SourceKind = Literal["xml", "rest", "auto"]
LogFormat = Literal["auto", "text", "json"]

_T = TypeVar("_T", int, float)


def bounded(default: _T, low: _T, high: _T, doc: str) -> _T:
    """A number field whose TOML key must lie in ``low..high`` (inclusive)."""
    return field(default=default, metadata={"min": low, "max": high, "doc": doc})




def toml_keys(cls: type[Any]) -> set[str]:
    """The TOML keys a settings table accepts: its fields' names, or their ``keys`` metadata."""
    return {key for f in fields(cls) for key in f.metadata.get("keys", (f.name,))}


def bounds(cls: type[Any], name: str) -> tuple[float, float]:
    """The inclusive ``(min, max)`` declared on field ``name`` of ``cls``."""
    f = _field(cls, name)
    return f.metadata["min"], f.metadata["max"]


def bounded_fields(cls: type[Any]) -> list[Field[Any]]:
    """The fields of ``cls`` whose value is a plain bounded number, in declaration order (not those
    marked ``own_check``: their key takes another form too, and their section checks it)."""
    return [f for f in fields(cls) if "min" in f.metadata and not f.metadata.get("own_check")]


def default_of(cls: type[Any], name: str) -> Any:
    """The dataclass default of field ``name`` (a factory's product for mutable defaults)."""
    f = _field(cls, name)
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    raise KeyError(f"{cls.__name__}.{name} has no default")


def _field(cls: type[Any], name: str) -> Field[Any]:
    for f in fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no field {name!r}")


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

    requests_per_minute: int = bounded(240, 1, 100_000, "requests per minute per API group")
    max_concurrency: int = bounded(8, 1, 256, "requests in flight at once")
    page_size: int = bounded(500, 1, 500, "records asked for per page (Webex's maximum is 500)")
    bodies_per_request: int = bounded(10, 1, 100, "bodyContent elements per XML request")
    cooldown_seconds: float = bounded(60.0, 0, 3600, "pause after the site throttles us")
    max_attempts: int = bounded(8, 1, 100, "tries per request")
    backoff_base_seconds: float = bounded(0.5, 0, 600, "first retry delay, doubled per attempt")
    backoff_max_seconds: float = bounded(60.0, 0, 3600, "longest retry delay")
    request_timeout_seconds: float = bounded(120.0, 0.1, 3600, "seconds one request may take")
    gsb_pause_seconds: float = bounded(300.0, 0, 86_400, "pause after a GSB (global site backup) answer")
    #: A Retry-After above this stops the site for the run (no sleeping for hours); doubling
    #: cool-downs never exceed it.
    max_retry_after_seconds: float = bounded(900.0, 1, 86_400, "longest Retry-After honoured")
    #: An answer larger than this (after decompression) is refused, reading stops there.
    max_response_bytes: int = bounded(DEFAULT_MAX_RESPONSE_BYTES, 64 * 1024, DEFAULT_MAX_RESPONSE_BYTES,
                                      "largest answer accepted, after decompression")


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
    #: ``client_secret`` is an accepted key only so that writing it is refused with a reason.
    client_secret: Secret | None = field(default=None, metadata={"keys": ("client_secret", "client_secret_env")})
    token_file: str = ""
    #: ``/meetings`` lists at most this many instances per query ("even if pagination is
    #: enabled"); a listing that reaches it is listed again in halves.
    meetings_list_cap: int = bounded(10_000, 1, 1_000_000, "most instances one /meetings listing returns")


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """One Webex site: where it is, who we are there, and what to export from it."""

    name: str
    url: str
    site_name: str
    auth: AuthMethod
    webex_id: str
    #: ``password`` (``access_token``) is an accepted key only so that writing the secret in the file
    #: is refused with a reason; the value comes from the variable ``password_env`` names.
    password: Secret | None = field(metadata={"keys": ("password", "password_env")})
    access_token: Secret | None = field(metadata={"keys": ("access_token", "access_token_env")})
    datasets: tuple[str, ...]
    preliminary: bool
    time_zone_id: int = field(metadata={"min": 0, "max": LAST_TIME_ZONE_ID, "doc": "zone of the times we send"})
    #: Zone of times from operations that take no timeZoneID; None: ask the site (GetSite).
    unlabeled_time_zone_id: int | None = field(metadata={"min": 0, "max": LAST_TIME_ZONE_ID, "doc": "zone of unlabeled times"})
    throttle: ThrottleSettings
    #: Export with an account that is not a site admin (Webex then lists only its own sessions).
    allow_non_admin: bool = False
    #: exceptionIDs that mean "this operation is retired on this site" (UNCONFIRMED default).
    retired_exception_ids: tuple[str, ...] = ()
    #: What is missing to sign in (no password / token found), or None; see Settings.require_secrets.
    missing_secret: str | None = field(default=None, metadata={"keys": ()})
    source: SourceKind = "xml"
    #: REST access (required for source "rest" and "auto"), else None.
    rest: RestSettings | None = None


@dataclass(frozen=True, slots=True)
class ExportSettings:
    """Windows, lookback and retention rules shared by all sites."""

    window_hours: int = bounded(24, 1, 24 * 31, "hours one request window covers")
    lookback_days: int = bounded(3, 0, 90, "days before the cursor every run lists again")
    retention_days: int = bounded(90, 1, 3650, "days of history Webex keeps")
    settle_hours: int = bounded(0, 0, 24 * 14, "hours before now that are not exported yet")
    max_window_records: int = bounded(50_000, 1, 10_000_000, "records above which a window is split")
    gap_warning_days: int = bounded(75, 1, 3650, "age at which an unexported gap is warned about")
    scheduled_ahead_days: int = bounded(30, 0, 366, "days of scheduled meetings listed ahead")
    #: Processes that parse large responses; None = "auto" (the usable cores, at most 4), 0 = none.
    parse_workers: int | None = field(default=None, metadata={"min": 0, "max": 64, "own_check": True})
    #: (dataset, days) lookbacks that differ from ``lookback_days``.
    dataset_lookback_days: tuple[tuple[str, int], ...] = field(
        default=tuple(DEFAULT_DATASET_LOOKBACK_DAYS.items()), metadata={"min": 0, "max": 90, "own_check": True}
    )

    def lookback_for(self, dataset: str) -> int:
        """Days before the cursor that every run lists again for ``dataset``."""
        return dict(self.dataset_lookback_days).get(dataset, self.lookback_days)


@dataclass(frozen=True, slots=True)
class WarehouseSettings:
    """Where the Parquet lake and the DuckDB catalog live."""

    root: str = "warehouse"
    catalog: str = "warehouse/webex.duckdb"
    row_group_size: int = bounded(128 * 1024, 1_000, 10_000_000, "rows per Parquet row group")
    compact_min_files: int = bounded(8, 2, 10_000, "files in a partition before it is compacted")
    s3_endpoint_url: str | None = None
    s3_region: str | None = None


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    """When ``serve`` runs each (site, dataset) job: an interval or a cron expression."""

    interval_seconds: int | None = field(default=86_400, metadata={"min": 1, "max": 31 * 86_400, "own_check": True})
    cron: str | None = None
    jitter_seconds: int = bounded(0, 0, 86_400, "random delay added to each job")
    misfire_grace_seconds: int = bounded(3_600, 1, 7 * 86_400, "how late a job may still start")
    per_dataset: tuple[tuple[str, int | None, str | None], ...] = field(default=(), metadata={"keys": ("datasets",)})


#: ``observability.log_level`` values, quietest last.
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True)
class ObservabilitySettings:
    """Logs and metrics."""

    log_format: LogFormat = "auto"
    log_level: str = "info"
    metrics_port: int | None = field(default=None, metadata={"min": 0, "max": 65535, "own_check": True})
    metrics_host: str = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole validated configuration."""

    sites: tuple[SiteSettings, ...]
    export: ExportSettings = field(default_factory=ExportSettings)
    warehouse: WarehouseSettings = field(default_factory=WarehouseSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    observability: ObservabilitySettings = field(default_factory=ObservabilitySettings)
    timezone_overrides: tuple[tuple[int, str], ...] = field(default=(), metadata={"keys": ("timezones",)})
    simulator: dict[str, Any] = field(default_factory=dict)
    source: str = field(default="<memory>", metadata={"keys": ()})

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
