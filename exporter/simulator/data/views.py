"""How a stored record is shown now: status fields, revisions and recording counters follow the
clock (functions of the record and the time), preliminary history blanks some fields, extras and
schema drift, and a record as a typed dict."""

from __future__ import annotations

from datetime import datetime, timezone
from operator import itemgetter
from typing import Any, Callable

from ..config import SimulatorConfig
from ..site_config import SiteConfig
from . import pools
from .records import Layout, Record, mix
from .world import DAY

__all__ = ["RecordViews", "REVISED_DATASETS", "REVISED_COLUMNS"]

_PRELIMINARY_BLANK = ("trackingCode", "assistService")  # preliminary history carries basic data only
#: Session datasets whose rows ``revision_fraction`` revises days after the session, and the columns.
REVISED_DATASETS = ("meeting_usage", "training_sessions", "event_sessions", "support_sessions")
REVISED_COLUMNS = ("duration", "total_people_minutes", "total_participants")


class RecordViews:
    """The presentation half of the store: what a response shows for a stored record now."""

    def __init__(self, config: SimulatorConfig, layouts: dict[str, Layout]) -> None:
        self.config = config
        self.layouts = layouts
        self._blank = {
            name: tuple(i for i, c in enumerate(lay.dataset.columns) if c.parent in _PRELIMINARY_BLANK)
            for name, lay in self.layouts.items()
        }
        # Changes that follow the clock (present-time functions of a record): revisions, counters.
        # dataset -> ((column index, position in _deltas), ...)
        self._revised = {
            name: tuple((self.layouts[name].index[c], k) for k, c in enumerate(REVISED_COLUMNS)
                        if c in self.layouts[name].index)
            for name in REVISED_DATASETS
        } if config.revision_fraction else {}
        self._growth = config.recording_growth_days * DAY

    def present(self, dataset: str, rec: Record, now: int, *, preliminary: bool = False,
                pmr_column: bool = False) -> list[Any]:
        """The column values a response shows for ``rec`` now (status fields follow the clock)."""
        lay = self.layouts[dataset]
        values = list(rec[: lay.n])
        if dataset == "scheduled_sessions":
            ix = lay.index
            actual, end = values[ix["actual_start_time"]], lay.end_of(rec)
            running = actual is not None and end is not None and actual <= now < end
            values[ix["status"]] = "INPROGRESS" if running else "NOT_INPROGRESS"
            values[ix["host_joined"]] = values[ix["participants_joined"]] = running
            if actual is not None and actual > now:
                values[ix["actual_start_time"]] = None
            if not pmr_column:
                values[ix["is_scheduled_pmr"]] = None
        revised = self._revised.get(dataset)
        if revised:
            at = self._revision(lay, rec)
            if at is not None and now >= at[0]:
                deltas = _deltas(at[1])
                for i, k in revised:
                    if values[i] is not None:
                        values[i] += deltas[k]
        if self._growth and dataset == "recording_access":
            self._grow(lay, rec, values, now)
        if preliminary:
            for i in self._blank[dataset]:
                values[i] = None
        return values

    def _revision(self, lay: Layout, rec: Record) -> tuple[int, int] | None:
        """(when, hash) if the session row is one ``revision_fraction`` revises, else None."""
        c = self.config
        h = mix(c.seed, 1, rec[lay.key[0]])
        if h % 1_000_000 >= c.revision_fraction * 1_000_000:
            return None
        low, high = c.revision_delay_seconds
        return rec[lay.end_index()] + low + (h >> 20) % (high - low + 1), h

    def recording_growth(self, rec: Record) -> tuple[int, int, int]:
        """How a recording's counters grow: (seconds of growth after creation, views a day, downloads
        every three days).  After ``e`` seconds (at most the first) there are ``e * views // DAY``
        more views and ``e * downloads // (3 * DAY)`` more downloads."""
        h = mix(self.config.seed, 2, rec[self.layouts["recording_access"].key[0]])
        return self._growth, 1 + h % 8, 1 + (h >> 8) % 3

    def _grow(self, lay: Layout, rec: Record, values: list[Any], now: int) -> None:
        """Recording counters keep growing for ``recording_growth_days`` after creation."""
        ix = lay.index
        growth, per_day, per_3_days = self.recording_growth(rec)
        elapsed = min(max(now - rec[lay.start], 0), growth)
        views, downloads = ix["viewed"], ix["downloaded"]
        if values[views] is not None:
            values[views] += elapsed * per_day // DAY  # 1..8 more views a day
        if values[downloads] is not None:
            values[downloads] += elapsed * per_3_days // (3 * DAY)  # one more every 1..3 days

    def value_getter(self, dataset: str, column: str, now: int) -> Callable[[Record], Any]:
        """``rec -> the value of column shown now`` (a revised column follows the clock)."""
        lay = self.layouts[dataset]
        i = lay.index[column]
        if i not in {j for j, _ in self._revised.get(dataset, ())}:
            return itemgetter(i)
        return lambda rec: self.present(dataset, rec, now)[i]

    def extras(self, dataset: str, rec: Record, drift_fraction: float) -> dict[str, str]:
        """Elements outside the registry a record carries: stored ones plus schema drift."""
        lay = self.layouts[dataset]
        stored = rec[lay.extra]
        out = dict(stored) if stored else {}
        if drift_fraction:
            h = (rec[lay.key[0]] * 1_103_515_245 + rec[lay.start] * 12_345) % 10_007
            if h < drift_fraction * 10_007:
                name, choices = pools.DRIFT_ELEMENTS[h % len(pools.DRIFT_ELEMENTS)]
                out[name] = choices[h % len(choices)]
        return out

    def as_dict(self, site: SiteConfig, dataset: str, rec: Record, now: int, *, preliminary: bool = False,
                pmr_column: bool = False, drift_fraction: float = 0.0) -> dict[str, Any]:
        """One record as column name -> typed value, plus ``site`` and ``extra``."""
        lay = self.layouts[dataset]
        values = self.present(dataset, rec, now, preliminary=preliminary, pmr_column=pmr_column)
        out: dict[str, Any] = {}
        for name, type_, value in zip(lay.names, lay.types, values):
            if type_ == "timestamp" and value is not None:
                value = datetime.fromtimestamp(value, timezone.utc)
            elif type_ == "json" and value is not None:
                value = [dict(item) for item in value]
            out[name] = value
        out["site"] = site.name
        out["extra"] = self.extras(dataset, rec, drift_fraction)
        return out


def _deltas(h: int) -> tuple[int, int, int]:
    """How a revision changes duration, total_people_minutes and total_participants."""
    minutes, people = 1 + (h >> 44) % 20, 1 + (h >> 56) % 3
    return minutes, minutes * people, people
