"""Request counters: what requests cost (sent, retried, throttled, waited), for metrics and
progress.  The XML and the REST client both keep them; :class:`StatsSink` lets one request count
for several holders at once (the client, a fetch, the caller)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .throttle import Permit

__all__ = ["RequestStats", "StatsSink"]


@dataclass(slots=True)
class RequestStats:
    """Counters for metrics and progress (a client keeps one; a caller may pass its own)."""

    requests: int = 0  # HTTP POSTs sent
    bodies: int = 0  # bodyContent elements sent
    retries: int = 0  # resends after transient failures, pauses and ticket renewals
    throttles: Counter[str] = field(default_factory=Counter)  # throttle answers by cause
    # Wall-clock seconds of cool-downs and site pauses these requests caused (each counted once,
    # however many requests sat them out together).
    throttle_wait_seconds: float = 0.0
    budget_wait_seconds: float = 0.0  # request-seconds spent waiting for our own request budget
    pauses: int = 0
    auth_requests: int = 0

    @property
    def throttled(self) -> int:
        """Throttle answers of every cause."""
        return sum(self.throttles.values())

    def add(self, other: RequestStats) -> None:
        """Add ``other``'s counts to these."""
        for name in ("requests", "bodies", "retries", "pauses", "auth_requests"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.throttle_wait_seconds += other.throttle_wait_seconds
        self.budget_wait_seconds += other.budget_wait_seconds
        self.throttles.update(other.throttles)


class StatsSink:
    """Fan one update out to several counters (the client's, a fetch's, the caller's); a
    counter a target lacks (``pages`` on plain :class:`RequestStats`) is skipped for it."""

    def __init__(self, *targets: RequestStats | None) -> None:
        self.targets = [t for t in targets if t is not None]

    def bump(self, name: str, amount: float = 1) -> None:
        """Add ``amount`` to the counter ``name`` of every target that has it."""
        for t in self.targets:
            if hasattr(t, name):
                setattr(t, name, getattr(t, name) + amount)

    def throttle(self, cause: str) -> None:
        """Count one throttle answer of ``cause``."""
        for t in self.targets:
            t.throttles[cause] += 1

    def permit(self, permit: Permit) -> None:
        """Count the time ``permit`` waited for our own request budget."""
        self.bump("budget_wait_seconds", permit.waited_budget)
