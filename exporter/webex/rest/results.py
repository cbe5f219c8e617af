"""What a REST listing returns: :class:`RestFetch` (one window's typed rows, its cost, whether it
could be verified)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from ...model.counters import Counters

__all__ = ["REST_THROTTLE_CAUSE", "RestFetch"]

#: The one cause a listing reports its throttles under, whatever the answer (429 or 423): what the
#: runs table and the metrics have always shown for REST.  The client's own counters
#: (``client.stats``) keep the real ``http429`` / ``http423``.
REST_THROTTLE_CAUSE = "rest 429"


@dataclass(slots=True)
class RestFetch(Counters):
    """What listing one window produced.

    ``table`` is in ``decode.rest_schema(dataset)``: every row the listing returned.  The
    :class:`~exporter.model.counters.Counters` are what this fetch cost: ``pages``, ``requests``,
    ``retries`` and throttles (under :data:`REST_THROTTLE_CAUSE`), a fan-out's including its parent
    listing unless that came from the cache (``cached`` fetches cost nothing); and the rows'
    ``unknown_elements`` (undeclared fields) and ``bad_values``.  ``verified`` is False when no
    walk could be shown complete (``problem`` says why; the rows are then the union of every
    walk).  ``parents``: parent ids a fan-out asked about; ``not_found``: of those, the ones the
    server answered 404 (nothing to list)."""

    dataset: str
    start: datetime
    end: datetime
    table: pa.Table
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
