"""Counting one request for several holders at once (:class:`StatsSink`): the client's counters, a
fetch's, the caller's.  The counters themselves are :class:`exporter.model.counters.Counters`."""

from __future__ import annotations

from collections import Counter

from ..model.counters import Counters
from .throttle import Permit

__all__ = ["StatsSink"]


class StatsSink:
    """Fan one update out to several counters (the client's, a fetch's, the caller's)."""

    def __init__(self, *targets: Counters | None) -> None:
        self.targets = [t for t in targets if t is not None]

    def add(self, counts: Counters) -> None:
        """Add ``counts`` (e.g. ``Counters(requests=1)``) to every target."""
        for t in self.targets:
            t.add(counts)

    def throttle(self, cause: str) -> None:
        """Count one throttle answer of ``cause``."""
        self.add(Counters(throttles_by_cause=Counter({cause: 1})))

    def permit(self, permit: Permit) -> None:
        """Count the time ``permit`` waited for our own request budget."""
        self.add(Counters(budget_wait_seconds=permit.waited_budget))
