"""What every part of one export run shares: the settings, the warehouse, the run's report, its
clock, its stop signal, the HTTP client pool and the commit lock (:class:`RunContext`); and what
every window of one (site, dataset) shares (:class:`DatasetScope`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

from ..config import Settings, SiteSettings
from ..model.dataset_spec import Dataset
from ..model.runs import DatasetOutcome, RunOptions, RunReport
from ..webex.pool import ClientPool
from .planning import CursorPlan
from .progress import DatasetProgress, Progress

if TYPE_CHECKING:
    from ..store.warehouse import Warehouse
    from .landing import Ready

__all__ = ["DatasetScope", "RunContext", "first_leaf"]


@dataclass(slots=True)
class RunContext:
    """One run's shared state (sites, datasets and windows all read it; only the run writes it)."""

    settings: Settings
    options: RunOptions
    warehouse: Warehouse
    report: RunReport
    now: datetime
    stop: asyncio.Event
    progress: Progress
    clients: ClientPool
    commit_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: Per (site, dataset): fetched windows queued for the next group commit (see ``landing``).
    ready: dict[tuple[str, str], list[Ready]] = field(default_factory=dict)
    #: Something committed since the catalog was last published.
    dirty: bool = False
    #: Per site: (zone of timeZoneID-labelled times, zone of unlabeled times), as settled for this run.
    zones: dict[str, tuple[ZoneInfo, ZoneInfo]] = field(default_factory=dict)

    @property
    def settle_limit(self) -> datetime:
        """The cursor never passes this: history younger than ``settle_hours`` may still change."""
        return self.now - timedelta(hours=self.settings.export.settle_hours)


@dataclass(frozen=True, slots=True)
class DatasetScope:
    """One (site, dataset) being exported in this run: what listing, landing and failing any of
    its windows needs (the run, the site and dataset, the counters, progress and cursor plan)."""

    ctx: RunContext
    site: SiteSettings
    dataset: Dataset
    outcome: DatasetOutcome
    tracker: DatasetProgress
    cursor_plan: CursorPlan


_E = TypeVar("_E", bound=BaseException)


def first_leaf(group: BaseExceptionGroup[_E]) -> _E:
    """The first real exception inside (possibly nested) task-group exception groups: one of
    the group's own type (``except* OperationRetiredError as caught``: an OperationRetiredError)."""
    leaf: _E | BaseExceptionGroup[_E] = group
    while isinstance(leaf, BaseExceptionGroup) and leaf.exceptions:
        leaf = leaf.exceptions[0]
    assert not isinstance(leaf, BaseExceptionGroup)  # an exception group is never empty
    return leaf
