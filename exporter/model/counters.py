"""What fetching cost and what the fetched rows held, counted once: :class:`Counters`.

The clients' request counters, one window's listing (XML ``WindowFetch``, REST ``RestFetch``) and
a dataset's outcome in a run all hold these same counters and sum them into one another with
:meth:`Counters.add`, which adds every field by its type.  A new counter is one line here."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields

__all__ = ["Counters"]


@dataclass(slots=True, kw_only=True)
class Counters:
    """Fetch-cost and row-quality counters.  Keyword-only, so a class that carries them
    (``WindowFetch(Counters)``, ``DatasetOutcome(Counters)``) keeps its own positional fields."""

    pages: int = 0  # list pages received, rescans and bridge pages included
    requests: int = 0  # HTTP requests sent
    bodies: int = 0  # XML bodyContent elements sent
    retries: int = 0  # resends after transient failures, pauses and ticket/token renewals
    auth_requests: int = 0  # ticket exchanges (XML) or 401s answered by renewing the token (REST)
    pauses: int = 0  # site pauses sat out (XML GSB answers)
    #: Throttle answers by cause (``000045``, ``http429``; REST listings report ``rest 429``).
    throttles_by_cause: Counter[str] = field(default_factory=Counter)
    # Wall-clock seconds of cool-downs and site pauses these requests caused (each counted once,
    # however many requests sat them out together).
    throttle_wait_seconds: float = 0.0
    budget_wait_seconds: float = 0.0  # request-seconds spent waiting for our own request budget
    rescans: int = 0  # listings of a window asked again because a scan was inconsistent
    splits: int = 0  # windows split in halves because they held too many records
    bridge_pages: int = 0  # pages asked to check rows repeated across a page boundary
    unknown_elements: Counter[str] = field(default_factory=Counter)  # undeclared elements/fields, by name
    bad_values: Counter[str] = field(default_factory=Counter)  # values that did not fit their column, by column
    ambiguous_times: Counter[str] = field(default_factory=Counter)  # fall-back-hour wall times, by column

    @property
    def throttles(self) -> int:
        """Throttle answers of every cause."""
        return sum(self.throttles_by_cause.values())

    def add(self, other: Counters) -> None:
        """Add ``other``'s counters to these: numbers are added, by-name counts updated.  Only
        the fields declared here are summed, never a subclass's own (a fetch's rows, an
        outcome's windows)."""
        for f in _FIELDS:
            mine = getattr(self, f.name)
            if isinstance(mine, Counter):
                mine.update(getattr(other, f.name))
            else:
                setattr(self, f.name, mine + getattr(other, f.name))

    def reset(self) -> None:
        """Every counter back to zero, each by-name count a new object (so a copy made with
        ``dataclasses.replace`` no longer shares them with its original)."""
        blank = Counters()
        for f in _FIELDS:
            setattr(self, f.name, getattr(blank, f.name))


_FIELDS = fields(Counters)  # what add() and reset() walk: the counters declared above, not a subclass's
