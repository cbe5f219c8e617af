"""Simulator configuration: frozen dataclasses built from Python, a TOML table or CLI options.

``SimulatorConfig.from_dict`` validates a whole table (a profile file, or the ``[simulator]`` table of
the exporter's ``config.toml``) and reports every problem at once as one :class:`ConfigError`.
Fault knobs live in :class:`.fault_settings.FaultSettings` (replaceable while the server runs), each
site's in :class:`.site_config.SiteConfig`.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError
from ..model.datasets import DATASETS
from ..model.timezones import TIME_ZONES
from .fault_settings import FaultSettings
from .rest.config import RestConfig
from .site_config import SiteConfig

__all__ = ["SimulatorConfig", "load_profile", "profile_path", "OPERATIONS"]


#: 000053's reason; ``{number}`` becomes ``body_content_limit + 1`` (a template without it publishes no number).
DEFAULT_BODY_CONTENT_LIMIT_REASON = "BodyContent count in request must be less than {number}"

#: Every operation the simulator answers (lower-cased): what ``retired_operations`` may name.
OPERATIONS = frozenset(
    {d.operation.lower() for d in DATASETS}
    | {d.preliminary_operation.lower() for d in DATASETS if d.preliminary_operation}
    | {"authenticateuser", "getsite", "getapiversion", "lsttimezone", "getuser"}
)


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
