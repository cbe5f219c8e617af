"""Records per (site, dataset), indexed by start time; listings, ground truth and mutations.

Each (site, dataset) keeps one list per UTC day of record start, sorted by (start, natural key,
whole record), so a time scope is a couple of bisects and the default order needs no sorting.
Natural keys need not be unique: twins (equal keys, maybe equal in every field) are stored side
by side in one deterministic order.  Days are generated on first use.  A listing (the filtered,
ordered records a request pages through) is cached until the store changes or the clock reaches
the next moment a row appears or expires, so paging a 50k-row window costs one filter pass, not
one per page.  Revisions and recording counters are applied when a record is presented (:mod:`.views`): they are
functions of the record and the clock.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Mapping, Sequence

from ...model.datasets import by_name
from ..clock import SimClock
from ..config import SimulatorConfig
from ..site_config import SiteConfig
from .records import AUDIO_ONLY, PMR, Layout, Record, coerce, default_order
from .selection import Selection, predicate_of
from .views import RecordViews
from .world import DAY, World, layouts

__all__ = ["Store"]

_CACHE_SIZE = 64
_LATE_BASE = 9_000_000_000_000_000_000  # keys of rows added after generation (never collide)


@dataclass(slots=True)
class _Listing:
    rows: list[Record]
    version: int
    days: tuple[int, int, int]
    since: int
    until: int


@dataclass(slots=True)
class _SiteState:
    index: int
    config: SiteConfig
    late_counter: int = 0
    generated: set[int] = field(default_factory=set)


class Store(RecordViews):
    """All simulated records; thread-safe (HTTP handlers and test threads share it)."""

    def __init__(self, config: SimulatorConfig, clock: SimClock) -> None:
        super().__init__(config, layouts())
        self.clock = clock
        anchor = clock.now_ts()
        self.first_day = anchor // DAY - config.days + 1
        self.world = World(config, self.layouts, anchor)
        self._sites = {s.name.lower(): _SiteState(i, s) for i, s in enumerate(config.sites)}
        self._buckets: dict[tuple[str, str], dict[int, list[Record]]] = defaultdict(dict)
        self._versions: dict[tuple[str, str], int] = defaultdict(int)
        self._cache: OrderedDict[tuple[str, Selection], _Listing] = OrderedDict()
        self._lock = threading.RLock()
    # ------------------------------------------------------------------ generation

    def site(self, name: str) -> SiteConfig:
        """The configured site called ``name`` (case-insensitive); KeyError names the known ones."""
        try:
            return self._sites[name.lower()].config
        except KeyError:
            raise KeyError(f"unknown site {name!r}; known: {', '.join(s.name for s in self.config.sites)}") from None

    def _world_day(self, state: _SiteState, day: int, now: int) -> None:
        if day in state.generated or not self.first_day <= day <= now // DAY + 1:
            return
        state.generated.add(day)
        touched = set()
        for dataset, rows in self.world.generate(state.index, state.config, day).items():
            lay = self.layouts[dataset]
            buckets = self._buckets[(state.config.name, dataset)]
            start = lay.start
            for rec in rows:
                d = rec[start] // DAY
                buckets.setdefault(d, []).append(rec)
                touched.add((dataset, d))
        for dataset, d in touched:
            self.layouts[dataset].sort(self._buckets[(state.config.name, dataset)][d])

    def _bucket(self, state: _SiteState, dataset: str, day: int, now: int) -> list[Record]:
        # Rows starting on `day` come from sessions starting that day or the day before.
        self._world_day(state, day - 1, now)
        self._world_day(state, day, now)
        return self._buckets[(state.config.name, dataset)].setdefault(day, [])

    def _state(self, site: str | SiteConfig) -> _SiteState:
        name = site.name if isinstance(site, SiteConfig) else site
        self.site(name)
        return self._sites[name.lower()]

    # ------------------------------------------------------------------ listing

    def select(self, site: str | SiteConfig, sel: Selection, now: int | None = None) -> list[Record]:
        """The records a request with ``sel`` lists now, in response order (do not modify)."""
        now = self.clock.now_ts() if now is None else now
        with self._lock:
            state = self._state(site)
            lay = self.layouts[sel.dataset]
            cutoff = now - self.config.retention_days * DAY
            lo, hi = cutoff, None
            if sel.start_range and not sel.any_of:
                lo, hi = max(lo, sel.start_range[0]), sel.start_range[1]
            days = (max(self.first_day, lo // DAY), now // DAY + 2 if hi is None else min(now // DAY + 2, hi // DAY))
            key = (state.config.name, sel)
            # Today decides which world days exist (sessions are generated up to tomorrow).
            span = (*days, now // DAY)
            version = self._versions[(state.config.name, sel.dataset)]
            hit = self._cache.get(key)
            if hit and hit.version == version and hit.days == span and hit.since <= now < hit.until:
                self._cache.move_to_end(key)
                return hit.rows
            rows, until = self._filter(state, lay, sel, days, lo, hi, now)
            self._cache[key] = _Listing(rows, version, span, now, until)
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
            return rows

    def raw_rows(self, site: str | SiteConfig, dataset: str, lo: int | None = None, hi: int | None = None,
                 now: int | None = None) -> list[Record]:
        """Every stored record of ``dataset`` starting in ``[lo, hi]`` and inside retention, visible
        or not (the REST side applies its own availability), in stored order (a new list)."""
        now = self.clock.now_ts() if now is None else now
        with self._lock:
            state = self._state(site)
            start = self.layouts[dataset].start
            cutoff = now - self.config.retention_days * DAY
            lo = cutoff if lo is None else max(lo, cutoff)
            last = now // DAY + 2 if hi is None else min(now // DAY + 2, hi // DAY)
            out: list[Record] = []
            for day in range(max(self.first_day, lo // DAY), last + 1):
                for rec in self._bucket(state, dataset, day, now):
                    if rec[start] >= lo and (hi is None or rec[start] <= hi):
                        out.append(rec)
            return out

    def version(self, site: str | SiteConfig, dataset: str) -> int:
        """A number that changes whenever records of ``dataset`` at ``site`` are added, revised or removed."""
        return self._versions[(self._state(site).config.name, dataset)]

    def _filter(self, state: _SiteState, lay: Layout, sel: Selection, days: tuple[int, int], lo: int,
                hi: int | None, now: int) -> tuple[list[Record], int]:
        slot = lay.preliminary if sel.preliminary else lay.visible
        mask = (0 if sel.audio_only else AUDIO_ONLY) | (0 if sel.pmr else PMR)
        flags = lay.flags
        predicate = predicate_of(lay, sel, now, self.world.owners.get(state.config.name, {}))
        start_of = itemgetter(lay.start)
        rows: list[Record] = []
        next_change = 2**62
        for day in range(days[0], days[1] + 1):
            bucket = self._bucket(state, sel.dataset, day, now)
            if not bucket:
                continue
            i0 = bisect_left(bucket, lo, key=start_of) if lo // DAY == day else 0
            i1 = bisect_right(bucket, hi, key=start_of) if hi is not None and hi // DAY == day else len(bucket)
            for k in range(i0, i1):
                rec = bucket[k]
                if rec[slot] > now:
                    if rec[slot] < next_change:
                        next_change = rec[slot]
                    continue
                if rec[flags] & mask or (predicate is not None and not predicate(rec)):
                    continue
                rows.append(rec)
        if sel.order:
            # Pair by pair from the last: a stable sort keeps the stored order for rows tied in all pairs.
            for column, descending in reversed(sel.order):
                i = lay.index[column]
                blank = "" if lay.types[i] == "str" else 0
                get = self.value_getter(sel.dataset, column, now)
                rows.sort(key=lambda r: ((v := get(r)) is not None, blank if v is None else v), reverse=descending)
            revised = {i for i, _ in self._revised.get(sel.dataset, ())}
            if any(lay.index[column] in revised for column, _ in sel.order):
                # The order follows revisions, so the listing lasts until the next one.
                for rec in rows:
                    at = self._revision(lay, rec)
                    if at is not None and now < at[0] < next_change:
                        next_change = at[0]
        if rows:
            # The oldest row expires when the retention cut-off passes its start.
            oldest = min(map(start_of, rows)) if sel.order else rows[0][lay.start]
            next_change = min(next_change, oldest + self.config.retention_days * DAY + 1)
        if any(f.op == "status" for f in sel.requires):
            next_change = now + 1  # status changes with the clock: never reuse
        return rows, next_change

    def ground_truth(self, site: str | SiteConfig, dataset: str, *, preliminary: bool = False,
                     drift_fraction: float = 0.0, now: int | None = None) -> list[dict[str, Any]]:
        """What a listing of ``dataset`` as the exporter requests it returns now, as typed dicts.

        The request is the registry's (``request_extras`` applied: audio-only sessions included,
        scheduled PMRs when the site switch is on), over all time, in the registry's order, as a
        site admin sees it.  Twins are repeated (equal dicts for exact twins).  An operation the
        site has retired lists nothing: its ground truth is ``[]``.
        """
        now = self.clock.now_ts() if now is None else now
        config = self._state(site).config
        ds = by_name(dataset)
        pmr = dataset == "scheduled_sessions" and config.return_scheduled_pmr_switch
        sel = Selection(dataset, preliminary=preliminary and ds.preliminary_operation is not None, pmr=pmr,
                        order=default_order(ds))
        operation = ds.preliminary_operation if sel.preliminary else ds.operation
        if config.is_retired(operation or ds.operation):
            return []
        rows = self.select(config, sel, now)
        return [self.as_dict(config, dataset, r, now, preliminary=sel.preliminary, pmr_column=pmr,
                             drift_fraction=drift_fraction) for r in rows]

    # ------------------------------------------------------------------ mutations

    def _touch(self, site: str, dataset: str) -> None:
        self._versions[(site, dataset)] += 1

    def add_rows(self, site: str | SiteConfig, dataset: str, count: int = 1, *, start: int | None = None,
                 end: int | None = None, visible_at: int | None = None,
                 templates: Sequence[Record] | None = None) -> list[Record]:
        """Add ``count`` new rows (copies of existing ones with fresh keys), visible at ``visible_at``.

        Rows start inside ``[start, end]`` (default: where the copied rows start).  Late-arriving
        history looks exactly like this to a client: rows appear in a window already exported.
        """
        now = self.clock.now_ts()
        with self._lock:
            state = self._state(site)
            lay = self.layouts[dataset]
            if templates is None:
                templates = self.select(state.config, Selection(dataset, audio_only=True, pmr=True), now)
                if start is not None or end is not None:
                    lo, hi = start or 0, end if end is not None else 2**62
                    inside = [r for r in templates if lo <= r[lay.start] <= hi]
                    templates = inside or templates
            if not templates:
                raise LookupError(f"no {dataset} rows at site {state.config.name} to copy from")
            added = []
            owners = self.world.owners.setdefault(state.config.name, {})
            for n in range(count):
                template = templates[(n * 7919) % len(templates)]
                state.late_counter += 1
                rec = self._fresh_copy(lay, state, template, start, end, now if visible_at is None else visible_at)
                bucket = self._bucket(state, dataset, rec[lay.start] // DAY, now)
                bucket.insert(bisect_right(bucket, lay.stored_key(rec), key=lay.stored_key), rec)
                owner = owners.get(template[lay.key[0]])
                if owner is not None:  # a copied session or recording keeps its host
                    owners.setdefault(rec[lay.key[0]], owner)
                added.append(rec)
            self._touch(state.config.name, dataset)
            return added

    def _fresh_copy(self, lay: Layout, state: _SiteState, template: Record, start: int | None, end: int | None,
                    visible_at: int) -> Record:
        values = list(template)
        n = state.late_counter
        key_names = lay.dataset.natural_key
        unique = _LATE_BASE + state.index * 10**12 + n
        values[lay.key[0]] = unique  # conf_id / record_id: a new session, or...
        if len(key_names) > 1:
            # ...for attendee-like keys keep the session and add a new person.
            values[lay.key[0]] = template[lay.key[0]]
            values[lay.key[1]] = f"Late Attendee {n}" if lay.types[lay.key[1]] == "str" else n
            if lay.types[lay.key[2]] == "str":
                values[lay.key[2]] = f"late{n}@example.com"
        old = template[lay.start]
        new = old
        if start is not None and not start <= old <= (end if end is not None else 2**62):
            new = start
        if new != old:
            for i, type_ in enumerate(lay.types):
                if type_ == "timestamp" and values[i] is not None:
                    values[i] += new - old
        values[lay.visible] = visible_at
        values[lay.preliminary] = visible_at
        return tuple(values)

    def _find(self, state: _SiteState, lay: Layout, dataset: str, key: Mapping[str, Any] | Sequence[Any],
              now: int) -> tuple[list[Record], int]:
        """The first record (in stored order) with natural ``key``: twins share a key."""
        if isinstance(key, Mapping):
            key = [key[name] for name in lay.dataset.natural_key]
        wanted = tuple(coerce(lay.types[i], v) for i, v in zip(lay.key, key))
        if lay.start in lay.key:
            start = wanted[lay.key.index(lay.start)]
            days = [start // DAY]
        else:
            days = list(range(self.first_day, now // DAY + 3))
        for day in days:
            bucket = self._bucket(state, dataset, day, now)
            for i, rec in enumerate(bucket):
                if lay.natural_key(rec) == wanted:
                    return bucket, i
        raise LookupError(f"no {dataset} record with key {wanted!r} at site {state.config.name}")

    def revise(self, site: str | SiteConfig, dataset: str, key: Mapping[str, Any] | Sequence[Any],
               changes: Mapping[str, Any]) -> Record:
        """Change column values of one record (found by natural key); returns the new record."""
        now = self.clock.now_ts()
        with self._lock:
            state = self._state(site)
            lay = self.layouts[dataset]
            bucket, i = self._find(state, lay, dataset, key, now)
            rec = lay.replace(bucket.pop(i), changes)
            target = self._bucket(state, dataset, rec[lay.start] // DAY, now)
            target.insert(bisect_right(target, lay.stored_key(rec), key=lay.stored_key), rec)
            self._touch(state.config.name, dataset)
            return rec

    def discard(self, site: str | SiteConfig, dataset: str, rec: Record) -> Record:
        """Delete exactly ``rec`` (a stored record, as a listing holds it; one of twins); returns it."""
        now = self.clock.now_ts()
        with self._lock:
            state = self._state(site)
            lay = self.layouts[dataset]
            bucket = self._bucket(state, dataset, rec[lay.start] // DAY, now)
            try:
                i = bucket.index(rec)
            except ValueError:
                raise LookupError(f"no such {dataset} record at site {state.config.name}") from None
            bucket.pop(i)
            self._touch(state.config.name, dataset)
            return rec

    def remove(self, site: str | SiteConfig, dataset: str, key: Mapping[str, Any] | Sequence[Any]) -> Record:
        """Delete one record (found by natural key: of twins, the first in stored order); returns it."""
        now = self.clock.now_ts()
        with self._lock:
            state = self._state(site)
            lay = self.layouts[dataset]
            bucket, i = self._find(state, lay, dataset, key, now)
            rec = bucket.pop(i)
            self._touch(state.config.name, dataset)
            return rec
