"""One export run: sites -> datasets -> windows -> fetch -> land -> commit.

Sites run concurrently, each with its own HTTP session, credentials and request budget.  Within a
site the datasets run concurrently and share that budget; within a dataset several windows are
fetched at once but each lands in its own warehouse commit (data + manifest + cursor together).
The cursor only moves over a *contiguous* prefix of finished windows, so a crash never skips one;
a window that fails is recorded and retried on the next run instead of blocking the others.

Error policy (by exception group, see ``errors.py``): ``WindowFailedError``/``ParseError``/an
exhausted ``RetryableError`` fail that window; ``FatalSiteError`` (auth) stops that site at once;
``SitePausedError`` stops that site for this run; nothing one site does stops another.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import math
import signal
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from ..config import Settings, SiteSettings
from ..errors import (
    AuthError,
    ExporterError,
    FatalSiteError,
    OperationRetiredError,
    ParseError,
    PrivilegeError,
    RetryableError,
    SitePausedError,
    WindowFailedError,
)
from ..model.datasets import Dataset, by_name
from ..model.runs import DatasetOutcome, RunOptions, RunReport
from ..model.timezones import DEFAULT_REQUEST_TIME_ZONE_ID, zoneinfo_for
from ..model.windows import Window
from ..obs.logs import event, logger
from ..webex.pool import ClientPool
from .planning import contiguous_runs, pack_windows, plan_dataset_windows, validate_options
from .progress import Progress

if TYPE_CHECKING:  # for annotations only: paging is imported where it is used
    from ..webex.paging import Probe

__all__ = ["export", "run_once"]

#: How often the reader-facing catalog is rebuilt while windows are committing.
PUBLISH_INTERVAL_SECONDS = 5.0
#: A periodic publish waits at least this many times as long as the previous one took.
PUBLISH_COST_FACTOR = 10.0
#: Windows of one dataset listed at the same time.  Requests stay bounded by the site's throttle;
#: more windows in flight let their small first pages share HTTP requests (see ``batching.py``).
WINDOWS_IN_FLIGHT = 16
#: Rows of one dataset fetched but not committed yet (they wait for a group commit), as estimated
#: from the probe; a window of unknown size counts as ``UNLANDED_ROWS / WINDOWS_UNLANDED``.
UNLANDED_ROWS = 160_000
WINDOWS_UNLANDED = 16
#: Rows one listing gathers when neighbouring windows are packed into it.  Every listing ends in a
#: part-filled page, so one-day windows of 550 meetings cost two pages for 1.1 pages of data; one
#: listing of ~20,000 rows wastes half a page in forty.  Capped by ``export.max_window_records``.
PACK_ROWS = 20_000
#: Most rows landed by one group commit.
GROUP_COMMIT_MAX_ROWS = 50_000


# --------------------------------------------------------------------------------- running


#: How long a pool trusts what a site said about itself (zone, privilege) before asking again.
SITE_FACTS_TTL_SECONDS = 3600.0


@dataclass(slots=True)
class _Context:
    settings: Settings
    options: RunOptions
    warehouse: "object"
    report: RunReport
    now: datetime
    stop: asyncio.Event
    progress: Progress
    clients: ClientPool
    commit_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ready: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    dirty: bool = False
    #: Per site: (zone of timeZoneID-labelled times, zone of unlabeled times), as settled for this run.
    zones: dict[str, tuple[Any, Any]] = field(default_factory=dict)


async def export(
    settings: Settings,
    options: RunOptions,
    *,
    warehouse: object,
    stop: asyncio.Event | None = None,
    progress: Progress | None = None,
    clients: ClientPool | None = None,
    commit_lock: asyncio.Lock | None = None,
) -> RunReport:
    """Run one export over the chosen sites and datasets; never raises for a site's failure.

    ``clients`` and ``commit_lock`` are shared by concurrent runs on one warehouse (``serve``);
    a run given no pool makes its own and closes it at the end.
    """
    now = (options.now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    report = RunReport(run_id=uuid.uuid4().hex[:12], started_at=datetime.now(timezone.utc))
    own_pool = clients is None
    pool = clients or ClientPool(settings.export.parse_workers)
    progress = progress or Progress.disabled()
    progress.throttle_wait = pool.throttle_wait
    ctx = _Context(settings, options, warehouse, report, now, stop or asyncio.Event(), progress, pool)
    if commit_lock is not None:
        ctx.commit_lock = commit_lock
    validate_options(settings, options)
    sites = [settings.site(name) for name in options.sites] if options.sites else list(settings.sites)
    settings.require_secrets(s.name for s in sites)  # only the sites this run signs in to
    warehouse.start_run(report.run_id, report.started_at)  # type: ignore[attr-defined]
    publisher = asyncio.create_task(_publish_periodically(ctx))
    try:
        await asyncio.gather(*(_export_site(ctx, site) for site in sites))
    finally:
        publisher.cancel()
        await asyncio.gather(publisher, return_exceptions=True)
        report.interrupted = ctx.stop.is_set()
        report.finished_at = datetime.now(timezone.utc)
        await asyncio.to_thread(warehouse.finish_run, report)  # type: ignore[attr-defined]
        async with ctx.commit_lock:
            await asyncio.to_thread(warehouse.publish)  # type: ignore[attr-defined]
        ctx.progress.close()
        if own_pool:
            await pool.close()
    _warn_about_gaps(ctx)
    return report


async def _publish_periodically(ctx: _Context) -> None:
    """Publish what landed every ``PUBLISH_INTERVAL_SECONDS``, but never spend more than a tenth
    of the run publishing: a publish holds the commit lock, so the wait grows with its cost."""
    loop = asyncio.get_running_loop()
    wait = PUBLISH_INTERVAL_SECONDS
    while True:
        await asyncio.sleep(wait)
        if ctx.dirty:
            ctx.dirty = False
            async with ctx.commit_lock:
                started = loop.time()
                await asyncio.to_thread(ctx.warehouse.publish)  # type: ignore[attr-defined]
                wait = max(PUBLISH_INTERVAL_SECONDS, PUBLISH_COST_FACTOR * (loop.time() - started))


def _datasets_for(site: SiteSettings, options: RunOptions) -> list[Dataset]:
    names = [n for n in site.datasets if not options.datasets or n in options.datasets]
    return [by_name(n) for n in names]


def _uses_rest(site: SiteSettings, dataset: Dataset, state: Any) -> bool:
    """Whether ``dataset`` of ``site`` is listed through REST this run: always on a REST site
    and for REST-only datasets; on an ``auto`` site once its XML operation answered retired."""
    from .rest_export import SWITCH_NOTE

    if site.source == "rest" or not dataset.xml:
        return True
    return site.source == "auto" and dataset.rest is not None and (state.unavailable or "").startswith(SWITCH_NOTE)


async def _export_site(ctx: _Context, site: SiteSettings) -> None:
    from .rest_export import export_rest_dataset

    datasets = _datasets_for(site, ctx.options)
    outcomes = {d.name: DatasetOutcome(site.name, d.name) for d in datasets}
    ctx.report.outcomes.extend(outcomes.values())
    try:
        # Every dataset's state at once, so that all of them start planning and probing in the same
        # instant and their first requests share HTTP requests (one read each would stagger them).
        states = await asyncio.to_thread(lambda: {d.name: ctx.warehouse.state(site.name, d.name) for d in datasets})  # type: ignore[attr-defined]
        by_rest = [d for d in datasets if _uses_rest(site, d, states[d.name])]
        by_xml = [d for d in datasets if d not in by_rest]
        rest = None
        if site.source != "xml":
            wall = (lambda: ctx.now.timestamp()) if ctx.options.now is not None else None
            rest = await ctx.clients.rest_client(site, wall=wall)
            if by_rest:
                await rest.check_scopes(by_rest)
        client = None
        if by_xml:
            client = await ctx.clients.client(site)
            site = await _settle_site(ctx, client, site)
        async with asyncio.TaskGroup() as group:
            for dataset in by_xml:
                group.create_task(_export_dataset(ctx, client, site, dataset, outcomes[dataset.name],
                                                  states[dataset.name], rest=rest))
            for dataset in by_rest:
                group.create_task(export_rest_dataset(ctx, rest, site, dataset, outcomes[dataset.name],
                                                      states[dataset.name], not_before=_switched_at(states[dataset.name])))
    except* (FatalSiteError, SitePausedError) as caught:
        exc = _first_leaf(caught)
        message = f"{type(exc).__name__}: {exc}"
        ctx.report.site_errors[site.name] = message
        ctx.report.site_error_types[site.name] = type(exc)
        _stop_outcomes(outcomes.values(), message, refused=isinstance(exc, AuthError))
        event("site stopped", level=40, site=site.name, error=message)
    except* ExporterError as caught:  # anything else unexpected from our code, reported per site
        exc = _first_leaf(caught)
        message = f"{type(exc).__name__}: {exc}"
        ctx.report.site_errors[site.name] = message
        ctx.report.site_error_types[site.name] = type(exc)
        _stop_outcomes(outcomes.values(), message, refused=False)
        event("site failed", level=40, site=site.name, error=message)


def _stop_outcomes(outcomes: Iterable[DatasetOutcome], message: str, *, refused: bool) -> None:
    """Mark every dataset of a stopped site: its outcome says so (never ``ok``)."""
    for outcome in outcomes:
        outcome.site_stopped = message
        outcome.refused = refused


def _first_leaf(group: BaseException) -> BaseException:
    """The first real exception inside (possibly nested) task-group exception groups."""
    while isinstance(group, BaseExceptionGroup) and group.exceptions:
        group = group.exceptions[0]
    return group


def _zone_for(ctx: _Context, site: SiteSettings, dataset: Dataset):  # noqa: ANN202 - ZoneInfo
    settled = ctx.zones.get(site.name)
    if settled is not None:
        return settled[0] if dataset.sends_time_zone_id else settled[1]
    from ..webex.protocol import scope_zone

    return scope_zone(dataset, time_zone_id=site.time_zone_id, unlabeled_time_zone_id=site.unlabeled_time_zone_id,
                      overrides=ctx.settings.timezone_overrides)


async def _settle_site(ctx: _Context, client: object, site: SiteSettings) -> SiteSettings:
    """Ask the site about itself (once per run, cached by the pool) and act on it: refuse a
    non-admin account unless ``allow_non_admin``; read unlabeled times in the site's zone when
    the config names none; warn loudly where the config and the site disagree; read a zone ID
    whose meaning the site states differently from our table by the site's offset (unless
    ``timezones.overrides`` says otherwise).  Returns the site's settings with its unlabeled zone
    settled."""
    from ..webex.site_facts import fixed_offset_zone, inspect_site, zone_disagreement

    loop = asyncio.get_running_loop()
    cached = ctx.clients.site_facts.get(site.name)
    if cached is not None and loop.time() - cached[0] < SITE_FACTS_TTL_SECONDS:
        facts = cached[1]
    else:
        facts = await inspect_site(client, webex_id=site.webex_id, now=ctx.now)
        ctx.clients.site_facts[site.name] = (loop.time(), facts)
    notes = ctx.report.site_notes.setdefault(site.name, [])

    def note(text: str, level: int = 30) -> None:
        notes.append(text)
        event(text, level=level, site=site.name)

    for problem in facts.problems:
        note(f"could not learn from the site: {problem}")
    if facts.site_admin is False and not site.allow_non_admin:
        raise PrivilegeError(
            f"site {site.name}: {site.webex_id!r} is not a site administrator (GetUser privilege/siteAdmin is "
            "false), so Webex would list only that user's own sessions, silently. Sign in as a site admin, or set "
            "allow_non_admin = true for this site to export only that user's sessions."
        )
    if facts.site_admin is False:
        note(f"{site.webex_id!r} is not a site administrator: exporting only that user's own sessions "
             "(allow_non_admin = true)")
    elif facts.site_admin is None:
        note(f"could not verify that {site.webex_id!r} is a site administrator; a non-admin account "
             "exports only its own sessions")
    unlabeled = site.unlabeled_time_zone_id
    if unlabeled is None:
        if facts.time_zone_id is None:
            unlabeled = DEFAULT_REQUEST_TIME_ZONE_ID  # GMT
            note(f"the site did not say its time zone; times without a timeZoneID are read as timeZoneID "
                 f"{unlabeled} (GMT). Set unlabeled_time_zone_id for this site if that is wrong.")
        else:
            unlabeled = facts.time_zone_id
            note(f"times without a timeZoneID are read in the site's zone, timeZoneID {unlabeled} (GetSite)", 20)
    elif facts.time_zone_id is not None and facts.time_zone_id != unlabeled:
        note(f"unlabeled_time_zone_id = {unlabeled} in the config, but the site says its zone is timeZoneID "
             f"{facts.time_zone_id}: times without a timeZoneID may be shifted; using the config")
    overrides = ctx.settings.timezone_overrides
    zones = []
    for zone_id in (site.time_zone_id, unlabeled):
        zone = zoneinfo_for(zone_id, overrides)
        offset = facts.gmt_offsets.get(zone_id)
        problem = zone_disagreement(zone_id, offset, ctx.now, overrides) if offset is not None else None
        if problem is not None:
            fixed = None if zone_id in dict(overrides) else fixed_offset_zone(offset)  # type: ignore[arg-type]
            if fixed is not None:
                zone = fixed
                problem += f"; reading it as the site's offset ({fixed.key}) this run"
            note(problem + ". Set [timezones] overrides to choose.")
        zones.append(zone)
    ctx.zones[site.name] = (zones[0], zones[1])
    return dataclasses.replace(site, unlabeled_time_zone_id=unlabeled)


def _switched_at(state: Any) -> datetime | None:
    """When an ``auto`` site switched this dataset to REST (the XML cursor then): REST never
    lists before it, so no meeting lands once from each source."""
    from .rest_export import SWITCH_NOTE

    note = state.unavailable or ""
    if not note.startswith(SWITCH_NOTE) or " from " not in note:
        return None
    try:
        return datetime.fromisoformat(note.rsplit(" from ", 1)[1].strip())
    except ValueError:
        return None


async def _export_dataset(
    ctx: _Context, client: object, site: SiteSettings, dataset: Dataset, outcome: DatasetOutcome, state: Any,
    rest: Any = None,
) -> None:
    # Windows landed unverified are listed again like failed ones, while the server still holds
    # all of them (a day's margin: a listing cut short by the server's purge must not verify one).
    margin = ctx.now - timedelta(days=ctx.settings.export.retention_days - 1)
    retry = list(state.failed_windows) + [w for w in state.unverified_windows
                                          if w.start >= margin and w not in state.failed_windows]
    windows, advances = plan_dataset_windows(
        ctx.settings, ctx.options, state.cursor, retry, ctx.now, state.resume_done, dataset
    )
    outcome.windows_planned = len(windows)
    outcome.cursor = state.cursor
    if not windows:
        return
    tracker = ctx.progress.dataset(site.name, dataset.name, windows=len(windows))
    failed = set(retry)
    planned = [w for w in windows if w not in failed]
    cursor_plan = _CursorPlan(planned, state.cursor, advances, ctx)
    gate = asyncio.Semaphore(WINDOWS_IN_FLIGHT)
    job = _DatasetJob(ctx, client, site, dataset, outcome, tracker, cursor_plan, gate)

    try:
        async with asyncio.TaskGroup() as group:
            for window in (w for w in windows if w in failed):
                group.create_task(job.one(window), name=f"window:{site.name}:{dataset.name}:{window}")
            for run in contiguous_runs(planned):
                group.create_task(job.cover(run), name=f"window:{site.name}:{dataset.name}:probe")
    except* OperationRetiredError as caught:
        retired = _first_leaf(caught)
    else:
        retired = None
    tracker.done()
    if retired is None:
        return
    if site.source == "auto" and rest is not None and dataset.rest is not None:
        await _switch_to_rest(ctx, rest, site, dataset, outcome, retired)
        return
    message = (f"{retired} The Meetings XML API is past its end of life: {dataset.name} is skipped this run. "
               f"Export it from the Webex REST APIs (source = 'auto' or 'rest'), or remove it from this "
               "site's datasets.")
    outcome.unavailable = message
    event("dataset unavailable: operation retired", level=40, site=site.name, dataset=dataset.name,
          operation=getattr(retired, "operation", dataset.operation), error=message)
    await asyncio.to_thread(ctx.warehouse.mark_unavailable, site.name, dataset.name, message)  # type: ignore[attr-defined]


async def _switch_to_rest(ctx: _Context, rest: Any, site: SiteSettings, dataset: Dataset, outcome: DatasetOutcome,
                          exc: BaseException) -> None:
    """An ``auto`` site's XML operation answered retired: from now on this dataset comes from
    REST, starting where XML stopped (its cursor), said once in the log and kept in ``status``."""
    from .rest_export import SWITCH_NOTE, export_rest_dataset

    state = await asyncio.to_thread(ctx.warehouse.state, site.name, dataset.name)  # type: ignore[attr-defined]
    since = state.cursor
    event("XML operation retired: switching to the REST APIs", level=30, site=site.name, dataset=dataset.name,
          operation=dataset.operation, endpoint=dataset.rest.path if dataset.rest else None,
          from_=since.isoformat() if since else None, error=str(exc))
    await rest.check_scopes([dataset])
    await export_rest_dataset(ctx, rest, site, dataset, outcome, state, not_before=since)
    note = f"{SWITCH_NOTE} ({dataset.rest.path if dataset.rest else ''})"
    if since is not None:
        note += f" from {since.isoformat()}"
    await asyncio.to_thread(ctx.warehouse.mark_unavailable, site.name, dataset.name, note)  # type: ignore[attr-defined]


class _RowBudget:
    """Rows fetched but not yet landed, as estimated before fetching; a holder waits while the
    rows already held plus its own would pass ``capacity`` (one larger than it all still goes,
    alone).  Checking and taking happen without an await between them (one event loop), and
    giving back never waits, so a cancelled holder cannot keep its rows."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.held = 0
        self._waiters: list[asyncio.Future[None]] = []

    @contextlib.asynccontextmanager
    async def hold(self, rows: float):  # noqa: ANN201 - an async context manager
        weight = min(max(1, math.ceil(rows)), self.capacity)
        while self.held + weight > self.capacity:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        self.held += weight
        try:
            yield
        finally:
            self.held -= weight
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:  # each looks again; those that still do not fit wait again
                if not waiter.done():
                    waiter.set_result(None)


#: What fails one listing but not the site: the window is recorded as failed (or a pack listed
#: window by window); auth and site pauses go up to the site instead.
WINDOW_ERRORS = (WindowFailedError, ParseError, RetryableError)


@dataclass(slots=True)
class _DatasetJob:
    """The windows of one (site, dataset) in one run."""

    ctx: _Context
    client: object
    site: SiteSettings
    dataset: Dataset
    outcome: DatasetOutcome
    tracker: object
    cursor_plan: _CursorPlan
    gate: asyncio.Semaphore
    unlanded: _RowBudget = field(default_factory=lambda: _RowBudget(UNLANDED_ROWS))

    async def one(
        self, window: Window, rows: float | None = None, *, parts: list[Window] | None = None, first: Probe | None = None
    ) -> None:
        """List (at most ``WINDOWS_IN_FLIGHT`` at once) and land ``window``, expected to hold about
        ``rows`` rows; at most ``UNLANDED_ROWS`` are fetched but not yet committed, which bounds
        memory.  ``parts``: the planned windows a packed listing covers; when the pack fails they
        are listed one by one, so a failure stays as small as a window.  ``first``: the probe of
        this very window, its listing's first page."""
        expected = rows if rows is not None else UNLANDED_ROWS / WINDOWS_UNLANDED
        failure: Exception | None = None
        async with self.unlanded.hold(expected):
            if self.ctx.stop.is_set():
                return
            try:
                await _export_window(self.ctx, self.client, self.site, self.dataset, window, self.outcome,
                                     self.tracker, self.cursor_plan, gate=self.gate,
                                     record_failure=not parts, first=first)
                return
            except WINDOW_ERRORS as exc:
                failure = exc
                event("packed listing failed; keeping the windows it proves, listing the others one by one",
                      level=30, site=self.site.name, dataset=self.dataset.name, window=str(window),
                      windows=len(parts or ()), error=f"{type(exc).__name__}: {exc}")
        # Only a pack gets here (a single window records its own failure); its budget is given back,
        # and its pages and records leave the progress counts (its windows count them again).
        self.tracker.forget(_progress_key(window))  # type: ignore[attr-defined]
        parts = parts or []
        again = await self._keep_what_the_pack_proves(window, parts, failure)
        await asyncio.gather(*(self.one(part, expected / len(parts)) for part in again))

    async def _keep_what_the_pack_proves(self, pack: Window, parts: list[Window], failure: Exception) -> list[Window]:
        """Land the windows of a failed pack that its last scan holds completely; return the rest.

        A window is proven when its own total, asked now (one record per body, all windows in a
        request or two), equals the scan's rows that start in it, and none of those rows is one
        the scan held on two pages.  Rows the pack scan cannot place in a window (no start, or a
        start outside the pack), preliminary history, or a scan that is not there: nothing is
        kept, every window is listed again.  So a pack with one bad day costs that day again,
        not the whole pack."""
        from ..records.identity import content_columns, content_hashes
        from ..webex.paging import probe_window

        rows = getattr(failure, "rows", None)
        recent = bool(self.site.preliminary and self.dataset.preliminary_operation and _is_recent(self.ctx, pack))
        if not isinstance(rows, pa.Table) or recent or len(parts) < 2 or self.ctx.stop.is_set():
            return parts
        start = rows.column(self.dataset.start_column)
        if start.null_count or (rows.num_rows and (pc.min(start).as_py() < pack.start or pc.max(start).as_py() >= pack.end)):
            return parts
        doubtful = getattr(failure, "doubtful", frozenset())
        hashes = content_hashes(rows, content_columns(self.dataset, rows)).to_pylist() if doubtful else []
        stats = _probe_stats()
        zone = _zone_for(self.ctx, self.site, self.dataset)
        try:
            probes = await asyncio.gather(*(probe_window(self.client, self.dataset, part, site=self.site, zone=zone,
                                                         stats=stats, maximum_num=1) for part in parts))
        except WINDOW_ERRORS:
            return parts
        finally:
            _add_stats(self.outcome, stats)
        self.outcome.pages += len(parts)  # one (one-record) page each
        again = []
        for part, probe in zip(parts, probes, strict=True):
            inside = pc.and_(pc.greater_equal(start, pa.scalar(part.start, start.type)),
                             pc.less(start, pa.scalar(part.end, start.type)))
            table = rows.filter(inside)
            shaky = doubtful and any(h in doubtful for h, keep in zip(hashes, inside.to_pylist(), strict=True) if keep)
            if table.num_rows != probe.total or shaky:
                again.append(part)
                continue
            await _land(self.ctx, self.site, self.dataset, part, table, self.outcome, self.tracker, self.cursor_plan)
            event("window committed", site=self.site.name, dataset=self.dataset.name, window=str(part),
                  records=table.num_rows, total=probe.total, pages=0, requests=0, from_pack=str(pack))
        return again

    async def cover(self, run: list[Window]) -> None:
        """Land a contiguous run of planned windows with as few listings as its size allows.

        The run's first page gives its ``total`` (a probe): 0 lands the run as one empty commit;
        otherwise consecutive windows are packed into listings of about ``PACK_ROWS`` rows (by
        the run's average), since every listing pays for a part-filled last page.  A run small
        enough for one listing starts from the probe's page.  Recent windows that also need
        preliminary history are packed apart from older ones.  When the probe fails, the windows
        are listed one by one, each failing or landing on its own.
        """
        from ..webex.paging import probe_window

        if self.ctx.stop.is_set():
            return
        if len(run) == 1:
            await self.one(run[0])
            return
        whole = Window(run[0].start, run[-1].end)
        stats = _probe_stats()
        try:
            probe = await probe_window(self.client, self.dataset, whole, site=self.site,
                                       zone=_zone_for(self.ctx, self.site, self.dataset), stats=stats)
        except WINDOW_ERRORS:
            probe = None
        _add_stats(self.outcome, stats)
        if probe is None:
            await asyncio.gather(*(self.one(w) for w in run))
            return
        total = probe.total
        average = total / len(run)
        wants_preliminary = bool(self.site.preliminary and self.dataset.preliminary_operation)
        older = [w for w in run if not (wants_preliminary and _is_recent(self.ctx, w))]
        recent = run[len(older) :]
        target = max(1, min(PACK_ROWS, self.ctx.settings.export.max_window_records))
        listings = []
        probe_used = False
        for part in (older, recent):
            if not part:
                continue
            if total == 0 and part is older:
                listings.append(self._land_empty(Window(part[0].start, part[-1].end), len(part), stats))
                continue
            for pack in pack_windows(part, average * len(part), target):
                span = pack[0] if len(pack) == 1 else Window(pack[0].start, pack[-1].end)
                reuse = span == whole  # the run is one listing: it starts from the probe's page
                probe_used = probe_used or reuse
                listings.append(self.one(span, average * len(pack), parts=pack if len(pack) > 1 else None,
                                         first=probe if reuse else None))
        if not probe_used:
            self.outcome.pages += 1  # a page received all the same
        await asyncio.gather(*listings)

    async def _land_empty(self, window: Window, probed: int, stats: object) -> None:
        await _land(self.ctx, self.site, self.dataset, window, None, self.outcome, self.tracker, self.cursor_plan)
        event("window committed", site=self.site.name, dataset=self.dataset.name, window=str(window), records=0,
              total=0, pages=0, requests=getattr(stats, "requests", 0), probed=probed)


def _probe_stats() -> object:
    from ..webex.client import RequestStats

    return RequestStats()


class _CursorPlan:
    """Moves the cursor over the longest contiguous prefix of finished windows (committed or
    recorded as failed), never backwards, never past ``now - settle``."""

    def __init__(self, windows: list[Window], cursor: datetime | None, advances: bool, ctx: _Context) -> None:
        self._pending = sorted(windows, key=lambda w: w.start)
        self._planned = tuple(self._pending)
        self._finished: set[Window] = set()
        self._cursor = cursor
        self._advances = advances
        self._limit = ctx.now - timedelta(hours=ctx.settings.export.settle_hours)

    def covered(self, window: Window) -> int:
        """How many planned windows ``window`` covers (at least 1: a retried failed window counts)."""
        return max(1, sum(1 for w in self._planned if window.start <= w.start and w.end <= window.end))

    def finish(self, window: Window) -> datetime | None:
        """Mark ``window`` (one planned window, or a range covering several) finished; the new
        cursor value, or None when it does not move."""
        self._finished.add(window)
        self._finished.update(w for w in self._pending if window.start <= w.start and w.end <= window.end)
        if not self._advances:
            return None
        moved = None
        while self._pending and self._pending[0] in self._finished:
            end = min(self._pending.pop(0).end, self._limit)
            if self._cursor is None or end > self._cursor:
                self._cursor = moved = end
        return moved


async def _export_window(
    ctx: _Context,
    client: object,
    site: SiteSettings,
    dataset: Dataset,
    window: Window,
    outcome: DatasetOutcome,
    tracker: object,
    cursor_plan: _CursorPlan,
    gate: asyncio.Semaphore | None = None,
    record_failure: bool = True,
    first: Probe | None = None,
) -> None:
    """Fetch one window (holding a slot of ``gate``) and land it (after giving the slot back, so
    fetching goes on while commits run).  A window that cannot be listed is recorded as failed,
    or with ``record_failure=False`` its error is raised to the caller."""

    zone = _zone_for(ctx, site, dataset)
    started = asyncio.get_running_loop().time()
    try:
        async with gate or contextlib.nullcontext():
            if ctx.stop.is_set():
                return
            fetched, tables, stats = await _fetch_final_and_preliminary(ctx, client, site, dataset, window, zone,
                                                                        tracker, outcome, first,
                                                                        packed=not record_failure)
    except WINDOW_ERRORS as exc:
        if not record_failure:
            raise
        await _record_failure(ctx, site, dataset, window, outcome, cursor_plan, exc)
        return
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    for fetch in stats:
        _add_stats(outcome, fetch)
    problems = [f"{'preliminary ' if f.preliminary else ''}{f.problem}" for f in stats if not f.verified]
    await _land(ctx, site, dataset, window, table, outcome, tracker, cursor_plan,
                problem="; ".join(problems) if problems else None)
    elapsed = asyncio.get_running_loop().time() - started
    event(
        "window committed", site=site.name, dataset=dataset.name, window=str(window), records=table.num_rows,
        total=fetched.total, pages=fetched.pages, requests=fetched.requests, retries=fetched.retries,
        throttles=fetched.throttles, seconds=round(elapsed, 3),
        unknown_elements=sum(fetched.unknown_elements.values()), bad_values=sum(fetched.bad_values.values()),
    )


async def _fetch_final_and_preliminary(
    ctx: _Context, client: object, site: SiteSettings, dataset: Dataset, window: Window, zone: Any, tracker: object,
    outcome: DatasetOutcome, first: Probe | None = None, packed: bool = False,
) -> tuple[Any, list[pa.Table], list[Any]]:
    """The window's final history, plus preliminary history where final may not be complete yet.

    Both are listed at once and as one listing (one age), so the preliminary pages of a recent
    window do not wait behind every listing that started after its final one.  What a failed
    listing cost goes into ``outcome`` here (a successful one's, when it lands)."""
    from ..webex.client import run_all
    from ..webex.paging import fetch_window, new_listing_age

    age = new_listing_age()
    lost = functools.partial(_add_stats, outcome)
    # A packed listing that cannot be verified at once is not rescanned: its windows are listed
    # one by one (each rescanned, and landed unverified at worst), so a bad day costs one day.
    pack_rules: dict[str, Any] = {} if not packed else {"land_unverified": False, "max_rescans": 0}
    listings = [fetch_window(
        client, dataset, window, site=site, zone=zone, age=age, on_failure=lost, first=first,
        max_window_records=ctx.settings.export.max_window_records, **pack_rules,
        on_page=functools.partial(tracker.page, window_key=_progress_key(window)),  # type: ignore[attr-defined]
    )]
    if site.preliminary and dataset.preliminary_operation and _is_recent(ctx, window):
        listings.append(fetch_window(
            client, dataset, window, site=site, zone=zone, preliminary=True, age=age, on_failure=lost,
            max_window_records=ctx.settings.export.max_window_records, **pack_rules,
        ))
    stats = await run_all(listings, discarded=lost)  # one failed: the other's cost still counts
    return stats[0], [fetch.table for fetch in stats], stats


def _progress_key(window: Window) -> int:
    """Which listing a progress count belongs to."""
    return hash(window)


async def _finish_in_thread(func: Callable[..., object], *args: object, **kwargs: object) -> object:
    """Run a warehouse commit in a worker thread and wait for it even if we are cancelled: the
    caller holds the commit lock, and releasing it while the thread still writes would let a
    second commit start beside the first."""
    future = asyncio.ensure_future(asyncio.to_thread(func, *args, **kwargs))
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(future)
            break
        except asyncio.CancelledError:
            if future.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


@dataclass(slots=True)
class _Ready:
    """A fetched window waiting for its commit."""

    window: Window
    table: pa.Table | None
    done: asyncio.Future[None]
    problem: str | None = None  # set: the listing could not be verified; lands alone, flagged


async def _land(
    ctx: _Context,
    site: SiteSettings,
    dataset: Dataset,
    window: Window,
    table: pa.Table | None,
    outcome: DatasetOutcome,
    tracker: object,
    cursor_plan: _CursorPlan,
    problem: str | None = None,
) -> None:
    """Commit one window's rows (None: a window known to be empty) and move the cursor;
    ``problem``: why its listing could not be verified (it lands flagged, in a commit of its own).

    Group commit: while a commit runs, windows of the same dataset that finish queue up; the next
    holder of the commit lock lands each *contiguous* run of them as one range commit (atomic
    like any commit: all or nothing).  A commit costs tens of milliseconds whatever its size, so
    under load this removes most of them; with nothing queued it adds no delay.
    """
    key = (site.name, dataset.name)
    ready = _Ready(window, table, asyncio.get_running_loop().create_future(), problem)
    ctx.ready.setdefault(key, []).append(ready)
    async with ctx.commit_lock:
        if not ready.done.done():
            queued, ctx.ready[key] = ctx.ready[key], []
            try:
                for run in _contiguous_ready(queued):
                    await _commit_run(ctx, site, dataset, run, outcome, tracker, cursor_plan)
            except BaseException as exc:
                for item in queued:
                    if item.done.done():
                        continue
                    if isinstance(exc, asyncio.CancelledError):
                        item.done.cancel()  # a stop: the waiters are being cancelled too
                    else:
                        item.done.set_exception(exc)
                        # A waiter cancelled meanwhile never reads it: mark it read, so a clean stop
                        # logs no "Future exception was never retrieved" traceback.
                        item.done.add_done_callback(_retrieve)
                raise
    await ready.done


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _contiguous_ready(queued: list[_Ready]) -> list[list[_Ready]]:
    """Contiguous runs of ready windows, each at most ``GROUP_COMMIT_MAX_ROWS`` rows: a group only
    needs to be big enough to amortise a commit's fixed cost, and landing copies it a few times."""
    runs: list[list[_Ready]] = []
    rows = 0
    for item in sorted(queued, key=lambda r: r.window.start):
        size = item.table.num_rows if item.table is not None else 0
        alone = item.problem is not None or runs and runs[-1][-1].problem is not None
        if runs and not alone and runs[-1][-1].window.end == item.window.start and rows + size <= GROUP_COMMIT_MAX_ROWS:
            runs[-1].append(item)
            rows += size
        else:
            runs.append([item])
            rows = size
    return runs


async def _commit_run(
    ctx: _Context,
    site: SiteSettings,
    dataset: Dataset,
    run: list[_Ready],
    outcome: DatasetOutcome,
    tracker: object,
    cursor_plan: _CursorPlan,
) -> None:
    """One commit for a contiguous run of ready windows (the caller holds the commit lock)."""
    window = run[0].window if len(run) == 1 else Window(run[0].window.start, run[-1].window.end)
    tables = [r.table for r in run if r.table is not None and r.table.num_rows]
    table = pa.concat_tables(tables) if len(tables) > 1 else (tables[0] if tables else None)
    moves = [cursor_plan.finish(r.window) for r in run]
    cursor_to = max((m for m in moves if m is not None), default=None)
    # Once a commit starts it finishes, even if the run is being stopped.
    await _finish_in_thread(
        ctx.warehouse.commit_window,  # type: ignore[attr-defined]
        site.name, dataset.name, window, table, cursor_to=cursor_to, run_id=ctx.report.run_id,
        verified=run[0].problem is None, problem=run[0].problem,
    )
    ctx.dirty = True
    rows = table.num_rows if table is not None else 0
    outcome.windows_committed += 1
    if run[0].problem is not None:
        outcome.windows_unverified += 1
        outcome.errors.append(f"{window}: landed unverified: {run[0].problem}")
        event("window landed unverified", level=30, site=site.name, dataset=dataset.name, window=str(window),
              records=rows, problem=run[0].problem)
    outcome.records += rows
    if cursor_to is not None:
        outcome.cursor = cursor_to
    for item in run:
        item_rows = item.table.num_rows if item.table is not None else 0
        tracker.window_done(item_rows, windows=cursor_plan.covered(item.window),  # type: ignore[attr-defined]
                            window_key=_progress_key(item.window))
        item.done.set_result(None)


def _is_recent(ctx: _Context, window: Window) -> bool:
    """Preliminary history matters only where final history may not be complete yet."""
    return window.end > ctx.now - timedelta(days=max(ctx.settings.export.lookback_days, 2))


def _add_stats(outcome: DatasetOutcome, fetched: object) -> None:
    """Fold a ``WindowFetch`` (or a probe's ``RequestStats``) into the outcome's counters."""
    throttles = getattr(fetched, "throttles", 0)
    if not isinstance(throttles, int):  # RequestStats keeps a Counter by cause
        outcome.throttles_by_cause.update(throttles)
        throttles = sum(throttles.values())
    else:
        outcome.throttles_by_cause.update(getattr(fetched, "throttles_by_cause", {}))
    outcome.throttles += throttles
    for name in ("pages", "requests", "retries", "rescans"):
        setattr(outcome, name, getattr(outcome, name) + getattr(fetched, name, 0))
    outcome.throttle_wait_seconds += getattr(fetched, "throttle_wait_seconds", 0.0)
    outcome.unknown_elements.update(getattr(fetched, "unknown_elements", {}))
    outcome.bad_values.update(getattr(fetched, "bad_values", {}))


async def _record_failure(
    ctx: _Context,
    site: SiteSettings,
    dataset: Dataset,
    window: Window,
    outcome: DatasetOutcome,
    cursor_plan: _CursorPlan,
    exc: Exception,
) -> None:
    message = f"{type(exc).__name__}: {exc}"
    outcome.windows_failed += 1
    outcome.errors.append(f"{window}: {message}")
    async with ctx.commit_lock:
        cursor_to = cursor_plan.finish(window)
        await _finish_in_thread(
            ctx.warehouse.fail_window,  # type: ignore[attr-defined]
            site.name, dataset.name, window, message, run_id=ctx.report.run_id, cursor_to=cursor_to,
        )
    event("window failed", level=40, site=site.name, dataset=dataset.name, window=str(window), error=message)


def _warn_about_gaps(ctx: _Context) -> None:
    try:
        warnings = ctx.warehouse.gap_warnings(ctx.now)  # type: ignore[attr-defined]
    except AttributeError:
        return
    for warning in warnings:
        fields = {k: v for k, v in warning.items() if k != "message"}
        event(str(warning.get("message") or "history gap close to the retention limit"), level=30, **fields)


# --------------------------------------------------------------------------------- sync entry


def run_once(settings: Settings, options: RunOptions, *, progress: Progress | None = None) -> RunReport:
    """Open the warehouse, run one export, stop cleanly on SIGINT/SIGTERM (sync entry point)."""
    from ..store.warehouse import Warehouse

    async def main() -> RunReport:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, _request_stop, stop)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests) or Windows
                pass
        with Warehouse(settings.warehouse, export=settings.export) as warehouse:
            return await export(settings, options, warehouse=warehouse, stop=stop, progress=progress or Progress.auto())

    return asyncio.run(main())


def _request_stop(stop: asyncio.Event) -> None:
    if stop.is_set():
        logger.warning("second stop signal: exiting now; committed windows are safe")
        raise SystemExit(130)
    logger.warning("stopping: no new windows start; windows in flight are dropped, committed work stays")
    stop.set()
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task() and task.get_name().startswith("window:"):
            task.cancel()


Callback = Callable[[int, int, int], None]
