"""Running the simulator from the command line: options (or ``WEBEX_SIM_*`` variables) over a profile.

The lead's click command ``webex-exporter simulate`` passes its options to :func:`cli_main`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import signal
from typing import Any, Callable, Mapping, Sequence

from ..errors import ConfigError
from .config import SimulatorConfig, load_profile
from .fault_settings import QueuedFault
from .server import Simulator
from .site_config import SiteConfig

__all__ = ["cli_main", "config_from_options", "ENV_PREFIX", "DEFAULT_PORT"]

ENV_PREFIX = "WEBEX_SIM_"
_HTTP5XX = re.compile(r"http5\d\d")
DEFAULT_PORT = 8765

#: Option -> type, for reading ``WEBEX_SIM_<OPTION>`` when the option is not given.
_OPTION_TYPES: dict[str, Callable[[str], Any]] = {
    "port": int, "host": str, "profile": str, "seed": int, "sites": str, "days": int,
    "meetings_per_day": int, "attendees_per_meeting": int, "history_delay_seconds": int,
    "latency_ms": float, "latency_jitter_ms": float, "rate_limit_per_minute": int,
    "throttle_cooldown_seconds": float, "fault_rates": str, "rate_limits": str, "fault_queue": str,
    "gsb_backup_seconds": float,
    "gsb_backup_requests": int, "encoding": str, "schema_drift_fraction": float,
    "capital_uuid_fraction": float, "retry_after_seconds": int, "http5xx_status": int, "now": str,
    "rest_rate_limit_per_minute": int,
}
_CONFIG_OPTIONS = ("seed", "days", "meetings_per_day", "attendees_per_meeting", "history_delay_seconds", "now")
_FAULT_OPTIONS = ("latency_ms", "latency_jitter_ms", "rate_limit_per_minute", "throttle_cooldown_seconds",
                  "gsb_backup_seconds", "gsb_backup_requests", "encoding", "schema_drift_fraction",
                  "capital_uuid_fraction", "retry_after_seconds", "http5xx_status",
                  "rest_rate_limit_per_minute")


def _from_env(options: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    out = dict(options)
    for name, type_ in _OPTION_TYPES.items():
        if out.get(name) is None and env.get(ENV_PREFIX + name.upper()):
            raw = env[ENV_PREFIX + name.upper()]
            try:
                out[name] = type_(raw)
            except ValueError:
                raise ConfigError(f"{ENV_PREFIX}{name.upper()}: cannot read {raw!r} as {type_.__name__}") from None
    return out


def _rates(value: str | Sequence[str] | Mapping[str, float]) -> dict[str, float]:
    """``"http5xx=0.05,reset=0.01"`` or ``["http5xx=0.05"]`` or a mapping -> {name: rate}."""
    if isinstance(value, Mapping):
        return {k: float(v) for k, v in value.items()}
    items = value.split(",") if isinstance(value, str) else [p for v in value for p in v.split(",")]
    rates = {}
    for item in filter(None, (i.strip() for i in items)):
        kind, sep, rate = item.partition("=")
        try:
            rates[kind.strip()] = float(rate)
        except ValueError:
            raise ConfigError(f"--fault-rate {item!r}: expected KIND=PROBABILITY, e.g. http5xx=0.05") from None
        if not sep:
            raise ConfigError(f"--fault-rate {item!r}: expected KIND=PROBABILITY, e.g. http5xx=0.05")
    return rates


def _limits(value: str | Sequence[str] | Mapping[str, int]) -> dict[str, int]:
    """``"user=10,meeting_list=60"`` -> {group: requests per minute}."""
    try:
        return {k: int(v) for k, v in _rates(value).items()} if not isinstance(value, Mapping) else dict(value)
    except ConfigError:
        raise ConfigError(f"--rate-limits {value!r}: expected GROUP=REQUESTS_PER_MINUTE, e.g. user=10") from None


def _queue(value: str | Sequence[str]) -> tuple[QueuedFault, ...]:
    """``"http5xx:2:LstmeetingusageHistory,reset"`` -> one-shot faults (KIND[:COUNT[:OPERATION]])."""
    items = value.split(",") if isinstance(value, str) else [p for v in value for p in v.split(",")]
    queue = []
    for item in filter(None, (i.strip() for i in items)):
        kind, _, rest = item.partition(":")
        count, _, operation = rest.partition(":")
        try:
            queue.append(QueuedFault(kind, int(count or 1), operation or None))
        except ValueError:
            raise ConfigError(f"--fault-queue {item!r}: expected KIND[:COUNT[:OPERATION]]") from None
    return tuple(queue)


def config_from_options(*, profile: str | None = None, sites: str | int | Sequence[str] | None = None,
                        fault_rates: str | Sequence[str] | Mapping[str, float] | None = None,
                        rate_limits: str | Sequence[str] | Mapping[str, int] | None = None,
                        fault_queue: str | Sequence[str] | None = None,
                        env: Mapping[str, str] | None = None, **options: Any) -> SimulatorConfig:
    """A config from a profile (default: the bundled ``default``) with CLI options on top.

    ``sites`` is a number of sites (the profile's, then copies of its first site named
    ``<first>4``, ...) or comma-separated names (a name the profile lacks copies its first site:
    users, tokens, switches).
    """
    opts = _from_env({"profile": profile, "sites": sites, "fault_rates": fault_rates, "rate_limits": rate_limits,
                      "fault_queue": fault_queue, **options}, os.environ if env is None else env)
    unknown = sorted(set(opts) - set(_OPTION_TYPES))
    if unknown:
        raise ConfigError([f"{name}: unknown simulator option" for name in unknown])
    config = load_profile(opts.get("profile") or "default")
    changes = {name: opts[name] for name in _CONFIG_OPTIONS if opts.get(name) is not None}
    fault_changes = {name: opts[name] for name in _FAULT_OPTIONS if opts.get(name) is not None}
    if opts.get("fault_rates"):
        rates = _rates(opts["fault_rates"])
        for name in [n for n in rates if _HTTP5XX.fullmatch(n)]:
            # "http503=0.1" is http5xx at that rate, answered with that status.
            rates["http5xx"] = rates.pop(name)
            fault_changes.setdefault("http5xx_status", int(name[4:]))
        fault_changes["rates"] = {**dict(config.faults.rates), **rates}
    if opts.get("rate_limits"):
        fault_changes["rate_limits"] = {**dict(config.faults.rate_limits), **_limits(opts["rate_limits"])}
    if opts.get("fault_queue"):
        fault_changes["queue"] = config.faults.queue + _queue(opts["fault_queue"])
    if fault_changes:
        try:
            changes["faults"] = dataclasses.replace(config.faults, **fault_changes)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None
    if opts.get("sites") is not None:
        changes["sites"] = _sites(config, opts["sites"])
    if not changes:
        return config
    return dataclasses.replace(config, **changes)


def _sites(config: SimulatorConfig, spec: str | int | Sequence[str]) -> tuple[SiteConfig, ...]:
    template = config.sites[0]
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        count = int(spec)
        if count < 1:
            raise ConfigError("sites: at least one site is needed")
        # The profile's own sites first, then copies of its first site.
        names = [s.name for s in config.sites[:count]]
        names += [f"{template.name}{i + 1}" for i in range(len(names), count)]
    else:
        names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    known = {s.name: s for s in config.sites}
    # A copy gets its own siteUrl and refresh token (the defaults follow its name).
    rest = dataclasses.replace(template.rest, site_url="", refresh_token="")
    return tuple(known.get(n) or dataclasses.replace(template, name=n, rest=rest) for n in names)


def banner(sim: Simulator) -> str:
    """What the user needs to point the exporter at a running simulator."""
    c = sim.config
    lines = [
        f"Webex XML API simulator listening on {sim.url} (REST APIs under {sim.rest_url})",
        f"  clock {sim.clock.now().isoformat(timespec='seconds')} ({'frozen' if sim.clock.frozen else 'running'}), "
        f"{c.days} days of data, seed {c.seed}, history visible {c.history_delay_seconds} s after a session ends",
        "  demo credentials (a fake server's test accounts):",
    ]
    for site in c.sites:
        for webex_id, password in site.users:
            role = "" if site.is_admin(webex_id) else " (an ordinary host, not a site admin: sees only its own data)"
            lines.append(f"    site {site.name}: webex_id {webex_id}, password {password}{role}")
        for token, webex_id in site.access_tokens:
            lines.append(f"    site {site.name}: access token {token} (signs in as {webex_id})")
        if site.retired_operations:
            lines.append(f"    site {site.name}: retired (FAILURE 000080): {', '.join(site.retired_operations)}")
        lines.append(f"    site {site.name}: REST siteUrl {site.site_url}, refresh token "
                     f"{sim.rest_refresh_token(site.name)}")
    lines.append("  export them for the exporter's config (password_env / access_token_env), e.g.:")
    passwords = {site.users[0][1] for site in c.sites if site.users}
    if len(passwords) == 1:
        lines.append(f"    export WEBEX_SIM_PASSWORD='{passwords.pop()}'")
    else:
        for site in c.sites:
            variable = "WEBEX_SIM_PASSWORD_" + "".join(ch if ch.isalnum() else "_" for ch in site.name.upper())
            lines.append(f"    export {variable}='{site.users[0][1]}'")
    lines.append(f"  Webex REST APIs at {sim.rest_url} (token URL {sim.rest_token_url}): OAuth client_id "
                 f"{c.rest.client_id}, client_secret {c.rest.client_secret}; refresh tokens "
                 f"{'rotate (persist the new one)' if c.rest.rotate_refresh_tokens else 'are handed out anew'}")
    lines.append(f"  controls: {sim.base_url}/_sim/info, /_sim/stats, /_sim/faults, /_sim/clock, "
                 f"/_sim/ground-truth?site={c.sites[0].name}&dataset=meeting_usage")
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


async def _serve(config: SimulatorConfig, host: str, port: int, echo: Callable[[str], None]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
            pass
    sim = Simulator(config)
    await sim.start(host, port)
    try:
        echo(banner(sim))
        await stop.wait()
    finally:
        await sim.stop()
    echo("simulator stopped")


def cli_main(*, port: int | None = None, host: str | None = None, echo: Callable[[str], None] = print,
             **options: Any) -> int:
    """Run the simulator until Ctrl-C / SIGTERM.  Options as :func:`config_from_options` takes
    (``profile``, ``seed``, ``sites``, ``days``, ``meetings_per_day``, ``attendees_per_meeting``,
    ``history_delay_seconds``, ``latency_ms``, ``latency_jitter_ms``, ``rate_limit_per_minute``,
    ``rate_limits`` (``user=10,...``), ``throttle_cooldown_seconds``, ``fault_rates``
    (``http5xx=0.05,...``), ``fault_queue`` (``KIND[:COUNT[:OPERATION]],...``), ``gsb_backup_seconds``,
    ``gsb_backup_requests``,
    ``encoding``, ``schema_drift_fraction``, ``capital_uuid_fraction``, ``retry_after_seconds``,
    ``http5xx_status``, ``rest_rate_limit_per_minute``, ``now``); unset ones fall back to
    ``WEBEX_SIM_<OPTION>``.  ``faults`` is
    accepted for ``fault_rates``, and a rate for ``http500``..``http599`` means ``http5xx`` with that
    status.  Returns 0."""
    if "faults" in options:  # the click command's repeatable --fault KIND=RATE
        options["fault_rates"] = options.pop("faults") or options.get("fault_rates")
    env_port = os.environ.get(ENV_PREFIX + "PORT")
    port = port if port is not None else int(env_port) if env_port else DEFAULT_PORT
    host = host or os.environ.get(ENV_PREFIX + "HOST") or "127.0.0.1"
    config = config_from_options(**options)
    try:
        asyncio.run(_serve(config, host, port, echo))
    except KeyboardInterrupt:
        echo("simulator stopped")
    return 0
