"""Fault knobs: :class:`FaultSettings` (frozen, replaceable while the server runs), :class:`QueuedFault`
and the fault kinds.  The live state (queue, rates, windows) is :mod:`.faults`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import ConfigError
from .tables import build_table

__all__ = ["FAULT_KINDS", "ENCODINGS", "RATE_LIMIT_UNITS", "QueuedFault", "FaultSettings", "frozen_pairs"]

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
def frozen_pairs(value: Any) -> tuple[tuple[Any, Any], ...]:
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
        object.__setattr__(self, "rate_limits", frozen_pairs(self.rate_limits))
        object.__setattr__(self, "rates", frozen_pairs(self.rates))
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
        def queue(entries: Any) -> tuple[Any, ...]:
            return tuple(QueuedFault(**q) if isinstance(q, Mapping) else q for q in entries)

        return build_table(cls, data, key, convert={"queue": queue})

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
