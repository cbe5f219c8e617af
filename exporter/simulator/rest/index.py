"""The REST side's cached lookups of the store: sessions by confID, attendee rows per session,
recordings by id, hosts; and availability (when reports appear, an instance's state)."""

from __future__ import annotations

import threading
from typing import Callable, Iterable, TypeVar, cast

from ...model.datasets import DATASETS
from ..config import SimulatorConfig
from ..data.people import Host
from ..data.records import Record, mix
from ..data.store import Store
from ..data.world import DAY
from ..site_config import SiteConfig

__all__ = ["RestIndex", "SESSION_DATASETS", "SERVICE_TYPES", "ATTENDEES_OF", "SESSION_OF"]

#: serviceType -> the session dataset its usage rows come from.
SESSION_DATASETS = {"MeetingCenter": "meeting_usage", "TrainingCenter": "training_sessions",
                    "EventCenter": "event_sessions", "SupportCenter": "support_sessions"}
SERVICE_TYPES = {dataset: service for service, dataset in SESSION_DATASETS.items()}
#: Session dataset -> its attendee dataset (the registry's fan-out parents).
ATTENDEES_OF = {d.rest.parent: d.name for d in DATASETS if d.rest and d.rest.parent}
#: Attendee dataset -> its session dataset.
SESSION_OF = {attendees: session for session, attendees in ATTENDEES_OF.items()}
_Index = TypeVar("_Index")


class RestIndex:
    """REST views of one simulator's store (thread-safe; indexes cached per store version and day)."""

    def __init__(self, config: SimulatorConfig, store: Store) -> None:
        self.config = config
        self.rest = config.rest
        self.store = store
        self._lock = threading.Lock()
        # (index kind, site[, dataset]) -> (the store versions and day it was built for, the index)
        self._indexes: dict[tuple[str, ...], tuple[tuple[int, ...], object]] = {}
        self._hosts: dict[str, dict[str, Host]] = {}

    # ------------------------------------------------------------------ lookups

    def _index(self, name: tuple[str, ...], datasets: Iterable[str], site: SiteConfig, now: int,
               build: Callable[[], _Index]) -> _Index:
        stamp = (now // DAY, *(self.store.version(site, d) for d in datasets))
        with self._lock:
            hit = self._indexes.get(name)
            if hit is not None and hit[0] == stamp:
                return cast(_Index, hit[1])  # the name says which index it is, so which type
        value = build()
        with self._lock:
            self._indexes[name] = (stamp, value)
        return value

    def sessions(self, site: SiteConfig, now: int) -> dict[int, tuple[str, Record]]:
        """confID -> (session dataset, record), for every session row of the site (visible or not)."""

        def build() -> dict[int, tuple[str, Record]]:
            out: dict[int, tuple[str, Record]] = {}
            for dataset in SESSION_DATASETS.values():
                conf = self.store.layouts[dataset].index["conf_id"]
                for rec in self.store.raw_rows(site, dataset, now=now):
                    out.setdefault(rec[conf], (dataset, rec))
            return out

        return self._index(("sessions", site.name), SESSION_DATASETS.values(), site, now, build)

    def _attendee_index(self, site: SiteConfig, dataset: str, now: int) -> dict[int, list[Record]]:
        def build() -> dict[int, list[Record]]:
            conf = self.store.layouts[dataset].index["conf_id"]
            out: dict[int, list[Record]] = {}
            for rec in self.store.raw_rows(site, dataset, now=now):
                out.setdefault(rec[conf], []).append(rec)
            return out

        return self._index(("attendees", site.name, dataset), (dataset,), site, now, build)

    def _recording_index(self, site: SiteConfig, now: int) -> dict[int, Record]:
        def build() -> dict[int, Record]:
            key = self.store.layouts["recording_access"].index["record_id"]
            return {rec[key]: rec for rec in self.store.raw_rows(site, "recording_access", now=now)}

        return self._index(("recordings", site.name), ("recording_access",), site, now, build)

    def host(self, site: SiteConfig, webex_id: str | None) -> Host | None:
        """The site's host (login user or generated) with ``webex_id`` (any case)."""
        if not webex_id:
            return None
        hosts = self._hosts.get(site.name)
        if hosts is None:
            hosts = {h.webex_id.lower(): h for h in self.store.world.hosts.get(site.name, ())}
            self._hosts[site.name] = hosts
        return hosts.get(webex_id.lower())

    def admin(self, site: SiteConfig) -> Host | None:
        """The site admin the REST integration was authorized by (the first admin login user)."""
        for webex_id, _ in site.users:
            if site.is_admin(webex_id):
                return self.host(site, webex_id)
        return None

    def _cutoff(self, now: int) -> int:
        return now - self.config.retention_days * DAY

    def _owner(self, site: SiteConfig, key: int) -> str | None:
        return self.store.world.owners.get(site.name, {}).get(key)

    # ------------------------------------------------------------------ availability

    def _delay(self, key: int) -> int:
        r = self.rest
        jitter = int(r.report_delay_jitter_hours * 3600)
        return int(r.report_delay_hours * 3600) + (mix(self.config.seed, 21, key) % (jitter + 1) if jitter else 0)

    def report_time(self, dataset: str, rec: Record) -> int:
        """When the REST reports of a session (or recording) become available (before its own XML
        history visibility, which a report row also needs)."""
        lay = self.store.layouts[dataset]
        if dataset == "recording_access":
            created: int = rec[lay.start]
            return created + self._delay(rec[lay.key[0]])
        end: int = rec[lay.end_index()]
        return end + self._delay(rec[lay.index["conf_id"]])

    def _instance_state(self, rec: Record, now: int) -> str | None:
        lay = self.store.layouts["meeting_usage"]
        start, end = rec[lay.start], rec[lay.end_index()]
        if start > now:
            return None
        if now < end:
            return "inProgress"
        return "ended" if end + self.rest.meetings_delay_seconds <= now else None
