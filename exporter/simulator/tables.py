"""Building the simulator's frozen config dataclasses from TOML tables, one way for all of them:
a table (or an instance already), no unknown keys, nested tables converted first, and every
error a :class:`~exporter.errors.ConfigError` that names its key."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..errors import ConfigError

__all__ = ["build_table"]

T = TypeVar("T")


def build_table(cls: type[T], data: object, key: str, *, convert: Mapping[str, Callable[[Any], Any]] | None = None) -> T:
    """``cls(**data)`` for the table at ``key``: its values named in ``convert`` pass through
    their converter first (a nested table, an array of tables); a problem raised by ``cls``
    itself is reported under ``key``."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{key}: must be a table, got {data!r}")
    allowed = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]  # every caller passes a dataclass
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError([f"{key}.{name}: unknown key" for name in unknown])
    values = dict(data)
    for name, converter in (convert or {}).items():
        if name in values:
            values[name] = converter(values[name])
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    except ConfigError as exc:
        raise ConfigError([f"{key}.{p}" for p in exc.problems]) from None
