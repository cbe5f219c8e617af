"""The validation toolkit: a checker that collects every problem instead of stopping at the first,
and the checks shared by several sections (URLs, crontab expressions, spelling hints)."""

from __future__ import annotations

import difflib
import ipaddress
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from .settings import bounded_fields, bounds

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_Settings = TypeVar("_Settings", bound="DataclassInstance")


class Checker:
    """Collects problems instead of stopping at the first one; each is ``"<key>: <rule>"``."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, key: str, message: str) -> None:
        """Record that ``key`` breaks a rule (``message`` says which, and the value found)."""
        self.problems.append(f"{key}: {message}")

    def table(self, data: Any, key: str) -> dict[str, Any]:
        """``data`` as a TOML table (``{}`` when absent or not a table, the latter a problem)."""
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.fail(key, f"must be a table, got {type(data).__name__}")
            return {}
        return data

    def unknown(self, data: dict[str, Any], key: str, allowed: set[str]) -> None:
        """Report each key of ``data`` not in ``allowed``, with the closest allowed spelling."""
        for name in sorted(set(data) - allowed):
            hint = closest(name, allowed)
            self.fail(f"{key}.{name}" if key else name, "unknown key" + (f" (did you mean {hint!r}?)" if hint else ""))

    def integer(self, data: dict[str, Any], name: str, key: str, default: int, *, low: int, high: int) -> int:
        """``data[name]`` as an integer in ``low..high``; ``default`` when absent or invalid."""
        value = data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"{key}.{name}", f"must be an integer, got {value!r}")
            return default
        if not low <= value <= high:
            self.fail(f"{key}.{name}", f"must be between {low} and {high}, got {value}")
            return default
        return value

    def number(self, data: dict[str, Any], name: str, key: str, default: float, *, low: float, high: float) -> float:
        """``data[name]`` as a number in ``low..high``; ``default`` when absent or invalid."""
        value = data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(f"{key}.{name}", f"must be a number, got {value!r}")
            return default
        if not low <= value <= high:
            self.fail(f"{key}.{name}", f"must be between {low} and {high}, got {value}")
            return default
        return float(value)

    def bounded(self, data: dict[str, Any], cls: type[Any], name: str, key: str, default: int) -> int:
        """``data[name]`` as an integer within the bounds field ``name`` of ``cls`` declares."""
        low, high = bounds(cls, name)
        return self.integer(data, name, key, default, low=int(low), high=int(high))

    def read_bounded(self, data: dict[str, Any], key: str, base: _Settings) -> _Settings:
        """``base`` with every plain bounded field of its class read from ``data`` (absent or invalid
        keys keep ``base``'s value): an integer field (its default is an int) must be given as an
        integer, a float one as any number."""
        values: dict[str, int | float] = {}
        for f in bounded_fields(type(base)):
            default = getattr(base, f.name)
            low, high = f.metadata["min"], f.metadata["max"]
            if isinstance(default, float):
                values[f.name] = self.number(data, f.name, key, default, low=low, high=high)
            else:
                values[f.name] = self.integer(data, f.name, key, default, low=low, high=high)
        return replace(base, **values)

    def string(self, data: dict[str, Any], name: str, key: str, default: str | None) -> str | None:
        """``data[name]`` as a string; ``default`` when absent or not a string."""
        value = data.get(name, default)
        if value is not None and not isinstance(value, str):
            self.fail(f"{key}.{name}", f"must be a string, got {value!r}")
            return default
        return value

    def boolean(self, data: dict[str, Any], name: str, key: str, default: bool) -> bool:
        """``data[name]`` as true/false; ``default`` when absent or not a boolean."""
        value = data.get(name, default)
        if not isinstance(value, bool):
            self.fail(f"{key}.{name}", f"must be true or false, got {value!r}")
            return default
        return value


def closest(name: str, allowed: set[str]) -> str | None:
    """The allowed spelling ``name`` was most likely meant to be, if one is close enough."""
    match = difflib.get_close_matches(name, sorted(allowed), n=1, cutoff=0.75)
    return match[0] if match else None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(c: Checker, url: str | None, key: str) -> None:
    """An http(s) URL with a host; plain http only for loopback (the simulator)."""
    if not url:
        c.fail(key, "missing (the site's XML API URL, e.g. https://acme.webex.com/WBXService/XMLService)")
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        c.fail(key, f"not a URL: {url!r}")
    elif parts.scheme == "http" and not _is_loopback(parts.hostname):
        c.fail(key, "plain http is allowed only for loopback (the simulator); use https")


def check_cron(c: Checker, expression: str, key: str) -> None:
    """A crontab expression APScheduler accepts."""
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError as exc:
        c.fail(key, f"not a valid crontab expression ({exc})")
