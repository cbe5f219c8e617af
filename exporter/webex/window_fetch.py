"""What listing one window produces (:class:`WindowFetch`: its typed rows, what it cost, whether it
was verified) and the probe of a window's first page asked before the window is planned."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from ..model.counters import Counters
from ..model.windows import Window
from .protocol import BodyResponse

__all__ = ["WindowFetch", "Probe"]


@dataclass(slots=True)
class WindowFetch(Counters):
    """What listing one window produced.

    ``table`` is in ``arrow_schema(dataset)`` (records/arrow_schema.py), every row the listing returned (twins
    included); ``total`` is the server's count (the sum over parts when the window was split).
    The :class:`~exporter.model.counters.Counters` are what the listing cost and what its pages
    held, rescans, split halves and bridge pages included.
    ``verified`` is False when no scan could be verified complete; ``problem`` says why.
    """

    dataset: str
    window: Window
    table: pa.Table
    total: int
    preliminary: bool = False
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

