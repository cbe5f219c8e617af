"""The recordings as REST items: ``/recordingReport/accessSummary`` (one item per recording) and
``accessDetail`` (one access row per view and per download, so the detail rows always add up to
the summary's counters).
"""

from __future__ import annotations

import math
from typing import Any

from ..data import pools
from ..data.records import Record, mix
from ..data.selection import Selection
from ..data.world import DAY
from ..site_config import SiteConfig
from .ids import recording_id
from .index import RestIndex
from .wire import Time

__all__ = ["RecordingItems"]


class RecordingItems(RestIndex):
    """Recording summary and access-detail items of one simulator's store."""

    # ------------------------------------------------------------------ recordings

    def recording_rows(self, site: SiteConfig, lo: float, hi: float, owner: str | None, now: int) -> list[Record]:
        """Recordings created in ``[lo, hi)`` whose report is out (only ``owner``'s, a lower-cased
        webExID, unless None), newest first."""
        first, last = math.ceil(lo), math.ceil(hi) - 1
        if last < first:
            return []
        rows = self.store.select(site, Selection("recording_access", start_range=(first, last)), now)
        key = self.store.layouts["recording_access"].key[0]
        return [r for r in reversed(rows) if self.report_time("recording_access", r) <= now
                and (owner is None or self._owner(site, r[key]) == owner)]

    def recording(self, site: SiteConfig, record_id: int, now: int) -> Record | None:
        """A recording whose report is out, by XML recordID, or None."""
        rec = self._recording_index(site, now).get(record_id)
        lay = self.store.layouts["recording_access"]
        if rec is None or rec[lay.visible] > now or self.report_time("recording_access", rec) > now:
            return None
        return rec if rec[lay.start] >= self._cutoff(now) else None

    def recording_owner(self, site: SiteConfig, rec: Record) -> str | None:
        """The lower-cased webExID of the host whose session left the recording."""
        return self._owner(site, rec[self.store.layouts["recording_access"].key[0]])

    def recording_item(self, site: SiteConfig, rec: Record, now: int) -> dict[str, Any]:
        """One ``/recordingReport/accessSummary`` item."""
        lay = self.store.layouts["recording_access"]
        v = dict(zip(lay.names, self.store.present("recording_access", rec, now)))
        host = self.host(site, self.recording_owner(site, rec))
        return {
            "recordingId": recording_id(site.name, v["record_id"]),
            "topic": v["record_name"],
            "timeRecorded": Time(v["creation_time"]),
            "siteUrl": site.site_url,
            "hostEmail": host.email if host else None,
            "viewCount": v["viewed"] or 0,
            "downloadCount": v["downloaded"] or 0,
        }

    def access_details(self, site: SiteConfig, rec: Record, now: int) -> list[dict[str, Any]]:
        """``/recordingReport/accessDetail`` items of a recording, newest first: one per view (the
        stored count spread between creation and visibility, then each growth view when the counter
        grew) and one per download, so they add up to the summary's counters now."""
        lay = self.store.layouts["recording_access"]
        record_id, created = rec[lay.index["record_id"]], rec[lay.start]
        base_views, base_downloads = rec[lay.index["viewed"]] or 0, rec[lay.index["downloaded"]] or 0
        span = max(1, rec[lay.visible] - created)
        growth, per_day, per_3_days = self.store.recording_growth(rec)
        elapsed = min(max(now - created, 0), growth)
        accesses: list[tuple[int, bool]] = []  # (time, download?)
        accesses += [(created + (k + 1) * span // (base_views + 1), False) for k in range(base_views)]
        accesses += [(created + (2 * k + 1) * span // (2 * base_downloads + 2), True) for k in range(base_downloads)]
        accesses += [(created + -(-j * DAY // per_day), False) for j in range(1, elapsed * per_day // DAY + 1)]
        accesses += [(created + -(-j * 3 * DAY // per_3_days), True)
                     for j in range(1, elapsed * per_3_days // (3 * DAY) + 1)]
        accesses = sorted((a for a in accesses if a[0] <= now), key=lambda a: (-a[0], a[1]))
        h = mix(self.config.seed, 26, record_id)
        viewers = 1 + h % 7
        topic = rec[lay.index["record_name"]]
        rid = recording_id(site.name, record_id)
        out = []
        for k, (when, download) in enumerate(accesses):
            person = mix(h, 27, when, download) % viewers
            first, last, a_first, a_last = pools.PEOPLE[((h >> 8) + person) % len(pools.PEOPLE)]
            domain = pools.DOMAINS[(h >> 16) % len(pools.DOMAINS)]
            out.append({
                "recordingId": rid, "topic": topic, "name": f"{first} {last}",
                "email": f"{a_first}.{a_last}@{domain}", "accessTime": Time(when),
                "viewed": not download, "downloaded": download,
            })
        return out
