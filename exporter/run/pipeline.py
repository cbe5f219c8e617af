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
import logging
import signal
import uuid
from collections.abc import Coroutine, Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..config import Settings, SiteSettings
from ..errors import AuthError, ConfigError, ExporterError, FatalSiteError, SitePausedError
from ..model.dataset_spec import Dataset
from ..model.datasets import by_name
from ..model.runs import DatasetOutcome, RunOptions, RunReport
from ..obs.logs import event
from ..webex.client import WebexClient
from ..webex.pool import ClientPool
from ..webex.rest.client import RestClient
from .context import RunContext, first_leaf
from .dataset_run import export_dataset
from .planning import validate_options
from .progress import Progress
from .rest_export import REST_SIDE_ERRORS, export_rest_dataset, rest_side_failed
from .site_setup import settle_site, switched_at, uses_rest

if TYPE_CHECKING:
    from ..store.warehouse import Warehouse

__all__ = ["export", "run_once"]

#: How often the reader-facing catalog is rebuilt while windows are committing.
PUBLISH_INTERVAL_SECONDS = 5.0
#: A periodic publish waits at least this many times as long as the previous one took.
PUBLISH_COST_FACTOR = 10.0


async def export(
    settings: Settings,
    options: RunOptions,
    *,
    warehouse: Warehouse,
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
    ctx = RunContext(settings, options, warehouse, report, now, stop or asyncio.Event(), progress, pool)
    if commit_lock is not None:
        ctx.commit_lock = commit_lock
    validate_options(settings, options)
    sites = [settings.site(name) for name in options.sites] if options.sites else list(settings.sites)
    settings.require_secrets(s.name for s in sites)  # only the sites this run signs in to
    warehouse.start_run(report.run_id, report.started_at,
                        [(site.name, dataset.name) for site in sites for dataset in _datasets_for(site, options)])
    ctx.dirty = True  # published at once: readers see the pairs running (and a killed run never reads as ok)
    publisher = asyncio.create_task(_publish_periodically(ctx))
    try:
        await asyncio.gather(*(_export_site(ctx, site) for site in sites))
    finally:
        publisher.cancel()
        await asyncio.gather(publisher, return_exceptions=True)
        report.interrupted = ctx.stop.is_set()
        report.finished_at = datetime.now(timezone.utc)
        await asyncio.to_thread(warehouse.finish_run, report)
        async with ctx.commit_lock:
            await asyncio.to_thread(warehouse.publish)
        ctx.progress.close()
        if own_pool:
            await pool.close()
    _warn_about_gaps(ctx)
    return report


async def _publish_periodically(ctx: RunContext) -> None:
    """Publish what landed every ``PUBLISH_INTERVAL_SECONDS``, but never spend more than a tenth
    of the run publishing: a publish holds the commit lock, so the wait grows with its cost."""
    loop = asyncio.get_running_loop()
    wait = PUBLISH_INTERVAL_SECONDS
    while True:
        if ctx.dirty:  # at once the first time: the run's pairs show as running from its start
            ctx.dirty = False
            async with ctx.commit_lock:
                started = loop.time()
                await asyncio.to_thread(ctx.warehouse.publish)
                wait = max(PUBLISH_INTERVAL_SECONDS, PUBLISH_COST_FACTOR * (loop.time() - started))
        await asyncio.sleep(wait)


def _datasets_for(site: SiteSettings, options: RunOptions) -> list[Dataset]:
    names = [n for n in site.datasets if not options.datasets or n in options.datasets]
    return [by_name(n) for n in names]


async def _export_site(ctx: RunContext, site: SiteSettings) -> None:
    datasets = _datasets_for(site, ctx.options)
    outcomes = {d.name: DatasetOutcome(site.name, d.name) for d in datasets}
    ctx.report.outcomes.extend(outcomes.values())
    try:
        # Every dataset's state at once, so that all of them start planning and probing in the same
        # instant and their first requests share HTTP requests (one read each would stagger them).
        states = await asyncio.to_thread(lambda: {d.name: ctx.warehouse.state(site.name, d.name) for d in datasets})
        by_rest = [d for d in datasets if uses_rest(site, d, states[d.name])]
        by_xml = [d for d in datasets if d not in by_rest]
        rest: RestClient | None = None
        if site.source != "xml":
            wall = (lambda: ctx.now.timestamp()) if ctx.options.now is not None else None
            rest = await ctx.clients.rest_client(site, wall=wall)
            if by_rest:
                try:
                    await rest.check_scopes(by_rest)
                except REST_SIDE_ERRORS as failed:
                    if site.source != "auto":
                        raise
                    for dataset in by_rest:  # an auto site's REST side only: its XML datasets go on
                        rest_side_failed(site, outcomes[dataset.name], failed)
                    by_rest = []
        client: WebexClient | None = None
        if by_xml:
            client = await ctx.clients.client(site)
            site = await settle_site(ctx, client, site)
        if by_rest and rest is None:
            raise ConfigError(f"site {site.name}: source = 'xml', but {', '.join(d.name for d in by_rest)} "
                              "can only be exported through the REST APIs")
        async with asyncio.TaskGroup() as group:
            if client is not None:
                for dataset in by_xml:
                    group.create_task(export_dataset(ctx, client, site, dataset, outcomes[dataset.name],
                                                     states[dataset.name], rest=rest))
            if rest is not None:
                for dataset in by_rest:
                    job = export_rest_dataset(ctx, rest, site, dataset, outcomes[dataset.name], states[dataset.name],
                                              not_before=switched_at(states[dataset.name]))
                    group.create_task(_rest_side(site, outcomes[dataset.name], job) if site.source == "auto" else job)
    except* (FatalSiteError, SitePausedError) as caught:
        exc = _site_failure(caught, site)
        message = f"{type(exc).__name__}: {exc}"
        ctx.report.site_errors[site.name] = message
        ctx.report.site_error_types[site.name] = type(exc)
        _stop_outcomes(outcomes.values(), message, refused=isinstance(exc, AuthError))
        event("site stopped", level=logging.ERROR, **exc.context, error=message)
    except* ExporterError as caught:  # anything else unexpected from our code, reported per site
        exc = _site_failure(caught, site)
        message = f"{type(exc).__name__}: {exc}"
        ctx.report.site_errors[site.name] = message
        ctx.report.site_error_types[site.name] = type(exc)
        _stop_outcomes(outcomes.values(), message, refused=False)
        event("site failed", level=logging.ERROR, **exc.context, error=message)


async def _rest_side(site: SiteSettings, outcome: DatasetOutcome, job: Coroutine[Any, Any, None]) -> None:
    """An ``auto`` site's REST dataset: what stops the REST client fails this dataset, not the site."""
    try:
        await job
    except REST_SIDE_ERRORS as failed:
        rest_side_failed(site, outcome, failed)


def _site_failure(caught: ExceptionGroup[ExporterError], site: SiteSettings) -> ExporterError:
    """The error that stopped ``site`` (the group's first), carrying the site from here on: the
    one place a site's failure is isolated, so the one place its name is attached."""
    return first_leaf(caught).add_context(site=site.name)


def _stop_outcomes(outcomes: Iterable[DatasetOutcome], message: str, *, refused: bool) -> None:
    """Mark every dataset of a stopped site: its outcome says so (never ``ok``)."""
    for outcome in outcomes:
        outcome.site_stopped = message
        outcome.refused = refused


def _warn_about_gaps(ctx: RunContext) -> None:
    """Warn about history gaps the retention limit is about to make permanent."""
    for warning in ctx.warehouse.gap_warnings(ctx.now):
        fields = {k: v for k, v in warning.items() if k != "message"}
        event(str(warning.get("message") or "history gap close to the retention limit"), level=logging.WARNING, **fields)


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
        event("second stop signal: exiting now; committed windows are safe", level=logging.WARNING)
        raise SystemExit(130)
    event("stopping: no new windows start; windows in flight are dropped, committed work stays",
          level=logging.WARNING)
    stop.set()
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task() and task.get_name().startswith("window:"):
            task.cancel()

