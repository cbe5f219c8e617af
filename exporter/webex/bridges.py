"""Verifying a consistent scan's page boundaries with bridge pages (see :mod:`exporter.webex.paging`):
rows with equal content on two pages are real twins when one answer (a page straddling the
boundary) shows them together; a tie group the boundary cut is healed by splicing the bridge's
rows in; anything else is a problem for a rescan."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pyarrow as pa

from ..model.counters import Counters
from ..model.windows import Window
from ..obs.logs import event
from ..records import identity
from .page_reader import Page, PageReader
from .window_fetch import WindowFetch

__all__ = ["BridgeChecks"]



class BridgeChecks(PageReader):
    """The boundary checks of one ``fetch_window`` call (see the module docstring)."""

    async def _verify_boundaries(
        self, window: Window, pages: list[Page], step: int, total: int, fetch: WindowFetch, stats: Counters
    ) -> tuple[pa.Table | None, str | None]:
        """Check rows a consistent scan holds on more than one page (see the module docstring).

        Each boundary with such rows gets a bridge page (half a page either side of it, one
        answer, one ordering).  Rows the bridge shows as often as the scan are real twins.  When
        the bridge shows a row fewer times than the scan served it, the bridge's rows replace the
        scan's at the positions it covers, which heals a tie group the boundary cut, provided no
        row then repeats across the new seams.  Returns the (possibly repaired) rows, or None
        and the problem."""
        scan = pa.concat_tables([p.table for p in pages])
        if len(pages) < 2:
            return scan, None
        columns = identity.content_columns(self.dataset, pages[0].table)
        repeated = identity.repeated_across_pages([p.table for p in pages], columns, self.dataset.natural_key)
        if not repeated:
            return scan, None
        boundaries: set[int] = set()
        for where in repeated.values():
            at = sorted(where)
            if at[-1] - at[0] != len(at) - 1:
                return None, (f"equal rows on pages startFrom={pages[at[0]].start_from} and "
                              f"startFrom={pages[at[-1]].start_from}, with pages between them")
            boundaries.update(at[1:])
        bridge_starts = [max(1, pages[b].start_from - step // 2) for b in sorted(boundaries)]
        bridges = await self._pages(window, bridge_starts, fetch, stats, report=False)
        fetch.bridge_pages += len(bridges)
        for bridge in bridges:
            problem = self._check(bridge, total, expected=min(step, total - bridge.start_from + 1))
            if problem is not None:
                return None, f"bridge page: {problem}"
        bridge_counts = [Counter(identity.content_hashes(b.table, columns).to_pylist()) for b in bridges]

        def confirmed(h: int, served: int) -> bool:
            return any(counts[h] >= served for counts in bridge_counts)

        if all(confirmed(h, sum(where.values())) for h, where in repeated.items()):
            return scan, None  # real twins split by a page boundary
        segments, from_bridge = _splice(pages, bridges)
        still = identity.repeated_across_pages(segments, columns, self.dataset.natural_key)
        for h, where in still.items():
            if not confirmed(h, sum(where.values())):
                start = pages[min(repeated[h]) if h in repeated else 0].start_from
                return None, (f"{sum(where.values())} copies of one row around startFrom={start + step} that no single "
                              "answer confirms (the server's order among tied rows moves between requests)")
        event("rows served twice around page boundaries (unstable order among tied rows); healed with bridge pages",
              listing=self._where(window), boundaries=len(boundaries), bridge_pages=from_bridge)
        return pa.concat_tables(segments), None


def _splice(pages: Sequence[Page], bridges: Sequence[Page]) -> tuple[list[pa.Table], int]:
    """The scan's rows by position, each bridge's rows in place of the pages' where it covers
    them: consecutive segments, each from one answer; and how many bridges were used."""
    pieces: list[tuple[int, pa.Table]] = []  # (first position, rows)
    covered_to = 0
    spans = []
    for bridge in sorted(bridges, key=lambda b: b.start_from):
        start = max(bridge.start_from, covered_to)
        end = bridge.start_from + bridge.count
        if start < end:
            pieces.append((start, bridge.table.slice(start - bridge.start_from, end - start)))
            spans.append((start, end))
            covered_to = end
    for page in pages:
        at, end = page.start_from, page.start_from + page.count
        for s_start, s_end in spans:
            if at >= end:
                break
            if s_end <= at or s_start >= end:
                continue
            if s_start > at:
                pieces.append((at, page.table.slice(at - page.start_from, s_start - at)))
            at = max(at, s_end)
        if at < end:
            pieces.append((at, page.table.slice(at - page.start_from, end - at)))
    pieces.sort(key=lambda piece: piece[0])
    return [rows for _, rows in pieces if rows.num_rows], len(spans)
