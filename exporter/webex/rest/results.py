"""What a REST listing returns: :class:`RestFetch` (one window's typed rows, its cost, whether it
could be verified) and :class:`RestStats` (request counters plus pages)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from ..stats import RequestStats

__all__ = ["RestFetch", "RestStats"]


@dataclass(slots=True)
class RestStats(RequestStats):
    """:class:`~exporter.webex.stats.RequestStats` plus the pages read.  ``auth_requests`` counts the
    401s answered by renewing the access token (the token endpoint's own requests are
    ``client.endpoint.requests``)."""

    pages: int = 0

    def add(self, other: RequestStats) -> None:
        """Add ``other``'s counts to these."""
        RequestStats.add(self, other)
        self.pages += getattr(other, "pages", 0)


@dataclass(slots=True)
class RestFetch:
    """What listing one window produced.

    ``table`` is in ``decode.rest_schema(dataset)``: every row the listing returned.  ``pages``,
    ``requests``, ``retries``, ``throttles`` are what this fetch cost (a fan-out's include its
    parent listing unless that came from the cache; ``cached`` fetches cost nothing).
    ``verified`` is False when no walk could be shown complete (``problem`` says why; the rows
    are then the union of every walk).  ``parents``: parent ids a fan-out asked about;
    ``not_found``: of those, the ones the server answered 404 (nothing to list)."""

    dataset: str
    start: datetime
    end: datetime
    table: pa.Table
    pages: int = 0
    requests: int = 0
    retries: int = 0
    throttles: int = 0
    unknown_fields: Counter[str] = field(default_factory=Counter)
    bad_values: Counter[str] = field(default_factory=Counter)
    placeholders: Counter[str] = field(default_factory=Counter)
    verified: bool = True
    problem: str | None = None
    walks: int = 0
    parents: int = 0
    not_found: int = 0
    cached: bool = False

    @property
    def rows(self) -> int:
        """Rows in the table."""
        return int(self.table.num_rows)
