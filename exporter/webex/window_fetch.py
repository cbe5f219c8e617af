"""What listing one window produces (:class:`WindowFetch`: its typed rows, what it cost, whether it
was verified) and the probe of a window's first page asked before the window is planned."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

from ..model.windows import Window
from .protocol import BodyResponse

__all__ = ["WindowFetch", "Probe", "add_counts"]


@dataclass(slots=True)
class WindowFetch:
    """What listing one window produced.

    ``table`` is in ``arrow_schema(dataset)`` (records/arrow_schema.py), every row the listing returned (twins
    included); ``total`` is the server's count (the sum over parts when the window was split).
    ``verified`` is False when no scan could be verified complete; ``problem`` says why.
    """

    dataset: str
    window: Window
    table: pa.Table
    total: int
    preliminary: bool = False
    pages: int = 0  # list pages received, rescans included
    requests: int = 0  # HTTP requests sent
    retries: int = 0
    throttles: int = 0
    throttles_by_cause: Counter[str] = field(default_factory=Counter)
    throttle_wait_seconds: float = 0.0
    unknown_elements: Counter[str] = field(default_factory=Counter)
    bad_values: Counter[str] = field(default_factory=Counter)
    ambiguous_times: Counter[str] = field(default_factory=Counter)  # fall-back-hour wall times, by column
    rescans: int = 0
    splits: int = 0
    bridge_pages: int = 0  # pages asked to check rows repeated across a page boundary
    verified: bool = True
    problem: str | None = None

    @property
    def records(self) -> int:
        """Rows in ``table``."""
        return int(self.table.num_rows)

@dataclass(frozen=True, slots=True)
class Probe:
    """The first page of ``window``, asked for before the window is planned: its ``total``, and
    the page itself, which a listing of that same window uses instead of asking again."""

    window: Window
    total: int  # 0 when the server answered 000015
    answer: BodyResponse


def add_counts(into: WindowFetch, other: WindowFetch) -> None:
    """Add ``other``'s counters (not its rows) to ``into``'s."""
    for name in ("pages", "requests", "retries", "throttles", "rescans", "splits", "bridge_pages"):
        setattr(into, name, getattr(into, name) + getattr(other, name))
    into.throttle_wait_seconds += other.throttle_wait_seconds
    into.throttles_by_cause.update(other.throttles_by_cause)
    into.unknown_elements.update(other.unknown_elements)
    into.bad_values.update(other.bad_values)
    into.ambiguous_times.update(other.ambiguous_times)
