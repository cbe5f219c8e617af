"""Simulator configuration: frozen dataclasses built from Python, a TOML table or CLI options.

``SimulatorConfig.from_dict`` validates a whole table (a profile file, or the ``[simulator]`` table of
the exporter's ``config.toml``) and reports every problem at once as one :class:`ConfigError`.
Fault knobs live in :class:`FaultSettings`, which can also be replaced while the server runs.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import ConfigError
from ..model.datasets import DATASETS
from ..model.timezones import TIME_ZONES
from .rest.config import RestConfig, SiteRest

__all__ = [
    "FAULT_KINDS",
    "ENCODINGS",
    "QueuedFault",
    "FaultSettings",
    "SiteConfig",
    "SimulatorConfig",
    "load_profile",
    "profile_path",
]

#: Every fault a request can be given, by rate or from the one-shot queue.
FAULT_KINDS = (
    "reset",  # close the connection without a response
    "http5xx",  # HTTP 5xx (status from FaultSettings.http5xx_status), plain-text body
    "http403",  # HTTP 403 Forbidden
    "http429",  # HTTP 429 Too Many Requests with Retry-After
    "throttle",  # SUCCESS-looking HTTP 200 carrying FAILURE 000045 for this request only
    "truncate",  # HTTP 200 with the first part of the XML only
    "malformed",  # HTTP 200 with XML that is not well-formed
    "gsb_backup",  # this response says gsbStatus BACKUP
    "mutate_add",  # after answering a list page, add a row to the listed window
    "mutate_remove",  # after answering a list page, remove a row of that page from the store
)
ENCODINGS = ("UTF-8", "ISO-8859-1")
#: What rate limits count.
RATE_LIMIT_UNITS = ("requests", "bodies")

DEFAULT_USERS = (("admin", "sim-password"),)

#: 000053's reason; ``{number}`` becomes ``body_content_limit + 1`` (a template without it publishes no number).
DEFAULT_BODY_CONTENT_LIMIT_REASON = "BodyContent count in request must be less than {number}"

#: Every operation the simulator answers (lower-cased): what ``retired_operations`` may name.
OPERATIONS = frozenset(
    {d.operation.lower() for d in DATASETS}
    | {d.preliminary_operation.lower() for d in DATASETS if d.preliminary_operation}
    | {"authenticateuser", "getsite", "getapiversion", "lsttimezone", "getuser"}
)


def _pairs(value: Any) -> tuple[tuple[Any, Any], ...]:
    """A mapping or a sequence of pairs as a sorted-by-insertion tuple of pairs (hashable, frozen)."""
    if isinstance(value, Mapping):
        return tuple((k, v) for k, v in value.items())
    return tuple((k, v) for k, v in value)


@dataclass(frozen=True, slots=True)
class QueuedFault:
    """``count`` next requests (of ``operation`` when given) get fault ``kind``."""

    kind: str
    count: int = 1
    operation: str | None = None


@dataclass(frozen=True, slots=True)
class FaultSettings:
    """Every fault knob.  Zero / empty means off; all of them can change while the server runs.

    Rates are probabilities per request drawn from an RNG seeded by the simulator seed, so a given
    request sequence always gets the same faults.  ``rate_limit_per_minute`` applies to every API
    group unless ``rate_limits`` names the group (``meeting_list``, ``user``, ``general``).
    ``rate_limit_unit`` says what those limits count (``requests``, or ``bodies``: bodyContent
    elements) in a sliding window of ``rate_limit_window_seconds``.
    """

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    rate_limit_per_minute: int = 0
    rate_limits: tuple[tuple[str, int], ...] = ()
    throttle_cooldown_seconds: float = 60.0
    rate_limit_unit: str = "requests"
    rate_limit_window_seconds: float = 60.0
    rates: tuple[tuple[str, float], ...] = ()
    queue: tuple[QueuedFault, ...] = ()
    retry_after_seconds: int = 1
    http5xx_status: int = 503
    gsb_backup_seconds: float = 0.0
    gsb_backup_requests: int = 0
    encoding: str = "UTF-8"
    schema_drift_fraction: float = 0.0
    capital_uuid_fraction: float = 0.0
    #: REST requests per access token in the sliding window (0: unlimited); past it HTTP 429.
    rest_rate_limit_per_minute: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate_limits", _pairs(self.rate_limits))
        object.__setattr__(self, "rates", _pairs(self.rates))
        object.__setattr__(
            self,
            "queue",
            tuple(q if isinstance(q, QueuedFault) else QueuedFault(**q) for q in self.queue),
        )
        problems = _fault_problems(self)
        if problems:
            raise ConfigError(problems)

    def rate(self, kind: str) -> float:
        """The probability of fault ``kind`` per request."""
        return dict(self.rates).get(kind, 0.0)

    def limit_for(self, group: str) -> int:
        """Requests per minute allowed for an API group (0: unlimited)."""
        return dict(self.rate_limits).get(group, self.rate_limit_per_minute)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, key: str = "faults") -> FaultSettings:
        """Build from a TOML table: ``rates`` and ``rate_limits`` are tables, ``queue`` an array of tables."""
        problems: list[str] = []
        allowed = {f.name for f in dataclasses.fields(cls)}
        for name in sorted(set(data) - allowed):
            problems.append(f"{key}.{name}: unknown key")
        if problems:
            raise ConfigError(problems)
        values = dict(data)
        if "queue" in values:
            values["queue"] = tuple(QueuedFault(**q) if isinstance(q, Mapping) else q for q in values["queue"])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"{key}: {exc}") from None
        except ConfigError as exc:
            raise ConfigError([f"{key}.{p}" for p in exc.problems]) from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-friendly dict that ``from_dict`` reads back."""
        out = dataclasses.asdict(self)
        out["rates"] = dict(self.rates)
        out["rate_limits"] = dict(self.rate_limits)
        out["queue"] = [dataclasses.asdict(q) for q in self.queue]
        return out


def _fault_problems(f: FaultSettings) -> list[str]:
    problems = []
    for name in ("latency_ms", "latency_jitter_ms", "throttle_cooldown_seconds", "gsb_backup_seconds"):
        if getattr(f, name) < 0:
            problems.append(f"{name}: must be >= 0")
    for name in ("rate_limit_per_minute", "retry_after_seconds", "gsb_backup_requests", "rest_rate_limit_per_minute"):
        value = getattr(f, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            problems.append(f"{name}: must be an integer >= 0, got {value!r}")
    if f.rate_limit_unit not in RATE_LIMIT_UNITS:
        problems.append(f"rate_limit_unit: must be one of {', '.join(RATE_LIMIT_UNITS)}, got {f.rate_limit_unit!r}")
    if not isinstance(f.rate_limit_window_seconds, (int, float)) or not f.rate_limit_window_seconds > 0:
        problems.append(f"rate_limit_window_seconds: must be > 0, got {f.rate_limit_window_seconds!r}")
    for group, limit in f.rate_limits:
        if not isinstance(limit, int) or limit < 0:
            problems.append(f"rate_limits.{group}: must be an integer >= 0, got {limit!r}")
    for kind, rate in f.rates:
        if kind not in FAULT_KINDS:
            problems.append(f"rates.{kind}: unknown fault kind (known: {', '.join(FAULT_KINDS)})")
        elif not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            problems.append(f"rates.{kind}: must be a probability 0..1, got {rate!r}")
    for index, q in enumerate(f.queue):
        if q.kind not in FAULT_KINDS:
            problems.append(f"queue[{index}].kind: unknown fault kind {q.kind!r} (known: {', '.join(FAULT_KINDS)})")
        if not isinstance(q.count, int) or q.count < 1:
            problems.append(f"queue[{index}].count: must be an integer >= 1")
    if not 500 <= f.http5xx_status <= 599:
        problems.append(f"http5xx_status: must be 500..599, got {f.http5xx_status}")
    if f.encoding.upper() not in ENCODINGS:
        problems.append(f"encoding: must be one of {', '.join(ENCODINGS)}, got {f.encoding!r}")
    for name in ("schema_drift_fraction", "capital_uuid_fraction"):
        if not 0 <= getattr(f, name) <= 1:
            problems.append(f"{name}: must be 0..1")
    return problems


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """One simulated Webex site: its users (webex_id -> password), tokens and switches.

    ``access_tokens`` maps a token to the webex_id it signs in as (a list of tokens means the first
    user).  ``scale`` multiplies the per-day session counts, so sites differ in size.
    ``unpadded_date_fraction`` is the share of records whose dates are written unpadded
    (``9/29/2019 2:4:3``), as real servers sometimes do.
    ``non_admin_users`` are users (webExIDs of ``users``) who are ordinary hosts, not site admins:
    signed in as one, a listing silently holds only that user's own data.
    ``retired_operations`` are operation names (any case) answered with FAILURE 000080 and
    given no ground truth.
    ``rest`` is how the REST APIs address the site (``siteUrl``, initial refresh token, scopes).
    """

    name: str
    users: tuple[tuple[str, str], ...] = DEFAULT_USERS
    access_tokens: tuple[tuple[str, str], ...] = ()
    default_time_zone_id: int = 20
    return_scheduled_pmr_switch: bool = False
    unpadded_date_fraction: float = 0.0
    scale: float = 1.0
    hosts: int = 12
    non_admin_users: tuple[str, ...] = ()
    retired_operations: tuple[str, ...] = ()
    rest: SiteRest = SiteRest()

    def __post_init__(self) -> None:
        object.__setattr__(self, "users", _pairs(self.users))
        if not isinstance(self.rest, SiteRest):
            object.__setattr__(self, "rest", SiteRest.from_dict(self.rest))
        for name in ("non_admin_users", "retired_operations"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, tuple(value))
        # A profile gives a table (token -> user) or a list of tokens (signing in as the first user).
        tokens: Mapping[str, str] | Iterable[str] | Iterable[tuple[str, str]] = self.access_tokens
        if not isinstance(tokens, Mapping) and all(isinstance(t, str) for t in tokens):
            first = self.users[0][0] if self.users else ""
            tokens = [(t, first) for t in tokens if isinstance(t, str)]  # all are: the filter narrows the type
        object.__setattr__(self, "access_tokens", _pairs(tokens))

    @property
    def users_dict(self) -> dict[str, str]:
        """Users as webex_id -> password."""
        return dict(self.users)

    def is_admin(self, webex_id: str) -> bool:
        """False for the ``non_admin_users`` (case-insensitive), True for every other user."""
        return webex_id.lower() not in {u.lower() for u in self.non_admin_users}

    @property
    def site_url(self) -> str:
        """The ``siteUrl`` the REST APIs know the site by (``<name>.webex.com`` unless configured)."""
        return self.rest.url_for(self.name)

    def is_retired(self, operation: str) -> bool:
        """True when ``operation`` (any case) is one of the site's ``retired_operations``."""
        return operation.lower() in {o.lower() for o in self.retired_operations}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, key: str = "sites[0]") -> SiteConfig:
        """Build from a ``[[sites]]`` table; unknown keys are errors."""
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError([f"{key}.{name}: unknown key" for name in unknown])
        if "rest" in data:
            data = {**data, "rest": SiteRest.from_dict(data["rest"], key=f"{key}.rest")}
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"{key}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-friendly dict."""
        out = dataclasses.asdict(self)
        out["users"] = dict(self.users)
        out["access_tokens"] = dict(self.access_tokens)
        out["non_admin_users"] = list(self.non_admin_users)
        out["retired_operations"] = list(self.retired_operations)
        out["rest"] = self.rest.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """The whole simulated world and its behaviour.

    Per site and day there are ``meetings_per_day`` Meeting Center meetings (times the site's
    ``scale``) with about ``attendees_per_meeting`` attendee rows each; training, event, support and
    Access Anywhere sessions default to a tenth of that each.  History becomes visible
    ``history_delay_seconds`` after a session ends (``late_fraction`` of rows another
    ``late_extra_seconds`` later), preliminary history ``preliminary_delay_seconds`` after.
    ``now`` fixes (and freezes) the clock; ``freeze_clock`` overrides the freezing.
    ``body_content_limit`` is the largest number of bodyContent elements a request may carry;
    more get 000053 with ``body_content_limit_reason`` (``{number}``: the limit + 1).

    Realism knobs, all off by default (the data is then exactly what it was without them):
    ``twin_fraction`` of attendee and Access Anywhere rows get an exact twin (``call_in_twin_share``
    of those as a pair of ``Call-in User_<n>`` rows), ``near_twin_fraction`` get a row with the same
    natural key but other device fields; ``unstable_tie_order`` lets rows tied in the order change
    places between requests where a page boundary cuts them; ``recording_growth_days`` keeps
    recording counters growing that many days; ``revision_fraction`` of session rows are revised
    ``revision_delay_seconds`` (a (low, high) range) after the session ends;
    ``late_extra_jitter_seconds`` spreads the late rows' extra delay.
    ``rest`` holds the REST APIs' settings (OAuth integration, availability, paging quirks).
    """

    seed: int = 1
    sites: tuple[SiteConfig, ...] = (SiteConfig("demo"),)
    days: int = 7
    meetings_per_day: int = 20
    attendees_per_meeting: int = 5
    training_per_day: int | None = None
    events_per_day: int | None = None
    support_per_day: int | None = None
    access_anywhere_per_day: int | None = None
    recording_fraction: float = 0.25
    history_delay_seconds: int = 3600
    preliminary_delay_seconds: int = 300
    late_fraction: float = 0.02
    late_extra_seconds: int = 86_400
    retention_days: int = 90
    ticket_ttl_seconds: int = 5400
    body_content_limit: int = 10
    lockout_after_failures: int = 0
    faults: FaultSettings = field(default_factory=FaultSettings)
    now: datetime | None = None
    freeze_clock: bool | None = None
    body_content_limit_reason: str = DEFAULT_BODY_CONTENT_LIMIT_REASON
    twin_fraction: float = 0.0
    near_twin_fraction: float = 0.0
    call_in_twin_share: float = 0.5
    unstable_tie_order: bool = False
    late_extra_jitter_seconds: int = 0
    recording_growth_days: int = 0
    revision_fraction: float = 0.0
    revision_delay_seconds: tuple[int, int] = (4 * 86_400, 6 * 86_400)
    rest: RestConfig = field(default_factory=RestConfig)

    def __post_init__(self) -> None:
        sites = tuple(s if isinstance(s, SiteConfig) else SiteConfig(**s) for s in self.sites)
        object.__setattr__(self, "sites", sites)
        if isinstance(self.rest, Mapping):
            object.__setattr__(self, "rest", RestConfig.from_dict(self.rest))
        if isinstance(self.revision_delay_seconds, list):
            object.__setattr__(self, "revision_delay_seconds", tuple(self.revision_delay_seconds))
        if isinstance(self.faults, Mapping):
            object.__setattr__(self, "faults", FaultSettings.from_dict(self.faults))
        if isinstance(self.now, str):
            object.__setattr__(self, "now", _parse_iso(self.now))
        if self.now is not None and self.now.tzinfo is None:
            object.__setattr__(self, "now", self.now.replace(tzinfo=timezone.utc))
        problems = _config_problems(self)
        if problems:
            raise ConfigError(problems)

    @classmethod
    def small(cls, **changes: Any) -> SimulatorConfig:
        """A tiny deterministic world for tests: site ``demo`` (admin / sim-password, token
        ``sim-token``, scheduled-PMR switch on), 3 days, frozen clock at 2026-03-10 12:00 UTC,
        history visible 10 minutes after a session ends."""
        base = cls(
            seed=7,
            sites=(SiteConfig("demo", access_tokens=(("sim-token", "admin"),), return_scheduled_pmr_switch=True),),
            days=3,
            meetings_per_day=6,
            attendees_per_meeting=3,
            history_delay_seconds=600,
            preliminary_delay_seconds=60,
            late_fraction=0.1,
            late_extra_seconds=86_400,
            now=datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc),
        )
        return dataclasses.replace(base, **changes) if changes else base

    def site(self, name: str) -> SiteConfig | None:
        """The site called ``name`` (case-insensitive, like Webex site names), or None."""
        for site in self.sites:
            if site.name.lower() == name.lower():
                return site
        return None

    def per_day(self, kind: str) -> int:
        """Sessions per site-day of ``kind`` (meeting, training, event, support, access_anywhere)."""
        if kind == "meeting":
            return self.meetings_per_day
        explicit: int | None = getattr(self, {"training": "training_per_day", "event": "events_per_day",
                                  "support": "support_per_day",
                                  "access_anywhere": "access_anywhere_per_day"}[kind])
        if explicit is not None:
            return explicit
        return (self.meetings_per_day + 9) // 10

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SimulatorConfig:
        """Build from a TOML table (profile file or ``[simulator]``); every problem reported at once."""
        problems: list[str] = []
        allowed = {f.name for f in dataclasses.fields(cls)} | {"profile"}
        for name in sorted(set(data) - allowed):
            problems.append(f"{name}: unknown key")
        values = {k: v for k, v in data.items() if k in allowed and k != "profile"}
        sites = []
        for index, raw in enumerate(values.get("sites", [])):
            try:
                sites.append(SiteConfig.from_dict(raw, key=f"sites[{index}]"))
            except ConfigError as exc:
                problems.extend(exc.problems)
        if "sites" in values:
            values["sites"] = tuple(sites)
        if "faults" in values:
            try:
                values["faults"] = FaultSettings.from_dict(values["faults"])
            except ConfigError as exc:
                problems.extend(exc.problems)
                values.pop("faults")
        if "rest" in values:
            try:
                values["rest"] = RestConfig.from_dict(values["rest"])
            except ConfigError as exc:
                problems.extend(exc.problems)
                values.pop("rest")
        if problems:
            raise ConfigError(problems)
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (``now`` as ISO text)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["sites"] = [s.to_dict() for s in self.sites]
        out["faults"] = self.faults.to_dict()
        out["now"] = self.now.isoformat() if self.now else None
        out["revision_delay_seconds"] = list(self.revision_delay_seconds)
        out["rest"] = self.rest.to_dict()
        return out


def _parse_iso(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"now: not an ISO-8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _config_problems(c: SimulatorConfig) -> list[str]:
    problems = []
    ints = {"days": (1, 3650), "meetings_per_day": (0, 1_000_000), "attendees_per_meeting": (0, 10_000),
            "history_delay_seconds": (0, 30 * 86_400), "preliminary_delay_seconds": (0, 86_400),
            "late_extra_seconds": (0, 30 * 86_400), "retention_days": (1, 3650),
            "ticket_ttl_seconds": (1, 30 * 86_400), "body_content_limit": (1, 1000),
            "lockout_after_failures": (0, 1000)}
    for name, (low, high) in ints.items():
        value = getattr(c, name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append(f"{name}: must be an integer {low}..{high}, got {value!r}")
    for name in ("training_per_day", "events_per_day", "support_per_day", "access_anywhere_per_day"):
        value = getattr(c, name)
        if value is not None and (not isinstance(value, int) or value < 0):
            problems.append(f"{name}: must be an integer >= 0, got {value!r}")
    for name in ("late_fraction", "recording_fraction", "twin_fraction", "near_twin_fraction", "call_in_twin_share",
                 "revision_fraction"):
        value = getattr(c, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            problems.append(f"{name}: must be 0..1")
    twins = (c.twin_fraction, c.near_twin_fraction)
    if all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in twins) and sum(twins) > 1:
        problems.append("twin_fraction + near_twin_fraction: must be at most 1")
    for name, (low, high) in (("late_extra_jitter_seconds", (0, 30 * 86_400)), ("recording_growth_days", (0, 3650))):
        value = getattr(c, name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append(f"{name}: must be an integer {low}..{high}, got {value!r}")
    if not isinstance(c.unstable_tie_order, bool):
        problems.append(f"unstable_tie_order: must be true or false, got {c.unstable_tie_order!r}")
    if not isinstance(c.body_content_limit_reason, str) or not c.body_content_limit_reason.strip():
        problems.append(f"body_content_limit_reason: must be a non-empty text, got {c.body_content_limit_reason!r}")
    delay = c.revision_delay_seconds
    if not (isinstance(delay, tuple) and len(delay) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in delay)
            and 0 <= delay[0] <= delay[1] <= 365 * 86_400):
        problems.append(f"revision_delay_seconds: must be [low, high] integers with 0 <= low <= high <= 31536000, "
                        f"got {delay!r}")
    if not c.sites:
        problems.append("sites: at least one site is needed")
    names = [s.name.lower() for s in c.sites]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"sites: duplicate site name {name!r}")
    for what, values in (("rest.site_url", [s.site_url for s in c.sites]),
                         ("rest.refresh_token", [s.rest.token_for(s.name) for s in c.sites])):
        for value in sorted({v for v in values if values.count(v) > 1}):
            problems.append(f"sites: two sites share {what} {value!r}")
    for index, site in enumerate(c.sites):
        if not site.name:
            problems.append(f"sites[{index}].name: must not be empty")
        if not 0 <= site.default_time_zone_id < len(TIME_ZONES):
            problems.append(f"sites[{index}].default_time_zone_id: must be a Webex timeZoneID 0..61")
        if not 0 <= site.unpadded_date_fraction <= 1:
            problems.append(f"sites[{index}].unpadded_date_fraction: must be 0..1")
        if site.scale < 0 or site.hosts < 1:
            problems.append(f"sites[{index}]: scale must be >= 0 and hosts >= 1")
        logins = {u.lower() for u, _ in site.users}
        for _token, user in site.access_tokens:
            if user.lower() not in logins:
                problems.append(f"sites[{index}].access_tokens: token for unknown user {user!r}")
        for name, known, what in (("non_admin_users", logins, "user"), ("retired_operations", OPERATIONS, "operation")):
            value = getattr(site, name)
            if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
                problems.append(f"sites[{index}].{name}: must be a list of names, got {value!r}")
                continue
            for item in value:
                if item.lower() not in known:
                    problems.append(f"sites[{index}].{name}: unknown {what} {item!r}")
    return problems


def profile_path(name_or_path: str | Path) -> Path:
    """A bundled profile by name (``default``, ``faults``) or a path to a TOML file."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        return path
    bundled = resources.files("exporter.simulator") / "profiles" / f"{name_or_path}.toml"
    return Path(str(bundled))


def load_profile(name_or_path: str | Path) -> SimulatorConfig:
    """Read a profile (bundled name or TOML path) into a :class:`SimulatorConfig`."""
    path = profile_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"simulator profile {name_or_path!r}: no such file ({path})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"simulator profile {path}: not valid TOML ({exc})") from None
    data = data.get("simulator", data)
    try:
        return SimulatorConfig.from_dict(data)
    except ConfigError as exc:
        raise ConfigError([f"{path}: {p}" for p in exc.problems]) from None
