"""``serve``: the long-running service.  APScheduler (asyncio) runs one job per (site, dataset).

Jobs never overlap themselves (``max_instances=1``), missed runs coalesce into one, and a run that
starts late within the misfire grace still runs.  The warehouse is opened once, so the process
holds the warehouse lock for its whole life and a second exporter cannot write beside it.  All jobs
share one client per site (one request budget, one session ticket).  SIGTERM/SIGINT set a stop
event: no new window starts, windows in flight are dropped, commits under way finish, and the
process exits within seconds.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import datetime, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ..config import ScheduleSettings, Settings
from ..model.runs import RunOptions
from ..obs.logs import event
from ..run.pipeline import export
from ..webex.pool import ClientPool

__all__ = ["serve", "build_trigger", "job_specs"]


def build_trigger(schedule: ScheduleSettings, dataset: str) -> BaseTrigger:
    """The trigger for one dataset: its own override, else the service-wide interval or cron."""
    interval, cron = schedule.interval_seconds, schedule.cron
    for name, sub_interval, sub_cron in schedule.per_dataset:
        if name == dataset:
            interval, cron = sub_interval, sub_cron
    jitter = schedule.jitter_seconds or None
    if cron:
        return CronTrigger.from_crontab(cron, timezone=timezone.utc)
    return IntervalTrigger(seconds=interval or 86_400, timezone=timezone.utc, jitter=jitter)


def job_specs(settings: Settings) -> list[tuple[str, str]]:
    """Every (site, dataset) pair that gets a job."""
    return [(site.name, dataset) for site in settings.sites for dataset in site.datasets]


async def serve(settings: Settings, *, stop: asyncio.Event | None = None, ready: asyncio.Event | None = None) -> int:
    """Run until stopped; the exit code is 0 after a clean stop."""
    from ..store.warehouse import Warehouse
    from .metrics import start_metrics

    settings.require_secrets({site for site, _ in job_specs(settings)})  # every site with a job signs in
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, _on_signal, stop, sig)
        except (NotImplementedError, RuntimeError):
            pass
    clients = ClientPool(settings.export.parse_workers)
    commit_lock = asyncio.Lock()
    running: set[asyncio.Task[object]] = set()
    with Warehouse(settings.warehouse, export=settings.export) as warehouse:
        metrics = await start_metrics(settings, warehouse)

        async def job(site: str, dataset: str) -> None:
            if stop.is_set():
                return
            task = asyncio.current_task()
            assert task is not None
            running.add(task)
            event("job started", site=site, dataset=dataset)
            try:
                report = await export(
                    settings, RunOptions(sites=(site,), datasets=(dataset,)), warehouse=warehouse,
                    stop=stop, clients=clients, commit_lock=commit_lock,
                )
                if metrics is not None:
                    metrics.observe_run(report)
                event("job finished", site=site, dataset=dataset, exit_code=report.exit_code, run_id=report.run_id)
            except Exception as exc:  # one failing job never stops the service
                event("job crashed", level=logging.ERROR, site=site, dataset=dataset, error=f"{type(exc).__name__}: {exc}")
            finally:
                running.discard(task)

        scheduler = AsyncIOScheduler(event_loop=loop, timezone=timezone.utc)
        now = datetime.now(timezone.utc)
        for site, dataset in job_specs(settings):
            scheduler.add_job(
                job, build_trigger(settings.schedule, dataset), args=(site, dataset), id=f"{site}:{dataset}",
                name=f"export {site}/{dataset}", max_instances=1, coalesce=True,
                misfire_grace_time=settings.schedule.misfire_grace_seconds, next_run_time=now,
            )
        scheduler.start()
        event("service started", jobs=len(job_specs(settings)), sites=len(settings.sites))
        if ready is not None:
            ready.set()
        try:
            await stop.wait()
        finally:
            scheduler.shutdown(wait=False)
            for task in list(running):
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            await clients.close()
            if metrics is not None:
                await metrics.stop()
            event("service stopped")
    return 0


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    event("stop requested", signal=sig.name)
    stop.set()
