"""Optional Prometheus endpoint for ``serve``: ``/metrics`` and ``/healthz`` on ``metrics_port``.

Counters and gauges live in a registry of their own (no process-global state), are fed from each
run's :class:`~exporter.model.runs.RunReport`, and carry site and dataset labels only: never a URL
with credentials, never a secret.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..config import Settings
from ..model.runs import RunReport

if TYPE_CHECKING:
    from ..store.warehouse import Warehouse


__all__ = ["Metrics", "start_metrics"]


class Metrics:
    """The exporter's metrics and the tiny web server that exposes them."""

    def __init__(self, warehouse: Warehouse | None) -> None:
        self.registry = CollectorRegistry()
        self._warehouse = warehouse
        labels = ("site", "dataset")
        self.runs = Counter("webex_exporter_runs_total", "Runs by outcome", (*labels, "outcome"), registry=self.registry)
        self.requests = Counter("webex_exporter_requests_total", "HTTP requests sent", labels, registry=self.registry)
        self.records = Counter("webex_exporter_records_total", "Records landed", labels, registry=self.registry)
        self.retries = Counter("webex_exporter_retries_total", "Requests retried", labels, registry=self.registry)
        self.throttles = Counter("webex_exporter_throttles_total", "Throttle responses by cause (000045, http403, http429)",
                                 (*labels, "cause"), registry=self.registry)
        self.windows_failed = Counter("webex_exporter_windows_failed_total", "Windows that failed", labels, registry=self.registry)
        self.windows_unverified = Counter("webex_exporter_windows_unverified_total",
                                          "Windows landed although their listing could not be verified complete",
                                          labels, registry=self.registry)
        self.unavailable = Gauge("webex_exporter_dataset_unavailable",
                                 "1 while the site does not serve the dataset (e.g. its operation is retired)",
                                 labels, registry=self.registry)
        self.lag = Gauge("webex_exporter_lag_seconds", "Now minus the cursor", labels, registry=self.registry)
        self.last_success = Gauge("webex_exporter_last_success_timestamp_seconds", "Last run without failures", labels, registry=self.registry)
        self.site_up = Gauge("webex_exporter_site_up",
                             "1 when the site's last run was not stopped (credentials refused, backup mode, ...)",
                             ("site",), registry=self.registry)
        self.started = time.time()
        self._runner: web.AppRunner | None = None
        #: Per site, why its last run stopped (absent: it did not); what /healthz reports.
        self.failing: dict[str, str] = {}

    def observe_run(self, report: RunReport) -> None:
        """Fold one run's counters in; a stopped site is down (gauge and /healthz) until a run of
        it is not stopped."""
        now = datetime.now(timezone.utc)
        for site in {o.site for o in report.outcomes} | set(report.site_errors):
            message = report.site_errors.get(site)
            self.site_up.labels(site).set(0 if message else 1)
            if message:
                self.failing[site] = message
            else:
                self.failing.pop(site, None)
        for o in report.outcomes:
            labels = (o.site, o.dataset)
            self.runs.labels(*labels, o.outcome).inc()
            self.requests.labels(*labels).inc(o.requests)
            self.records.labels(*labels).inc(o.records)
            self.retries.labels(*labels).inc(o.retries)
            for cause, count in o.throttles_by_cause.items():  # o.throttles is their sum
                self.throttles.labels(*labels, cause).inc(count)
            self.windows_failed.labels(*labels).inc(o.windows_failed)
            self.windows_unverified.labels(*labels).inc(o.windows_unverified)
            self.unavailable.labels(*labels).set(1 if o.unavailable else 0)
            if o.cursor is not None:
                self.lag.labels(*labels).set((now - o.cursor).total_seconds())
            if o.outcome == "ok":
                self.last_success.labels(*labels).set(now.timestamp())

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _health(self, request: web.Request) -> web.Response:
        """200 ``ok`` while every site's last run went through; 503 ``failing`` naming the sites
        whose last run stopped (refused credentials, ...), so a probe or an alert sees it."""
        body: dict[str, Any] = {"uptime_seconds": round(time.time() - self.started, 1)}
        if self.failing:
            body.update(status="failing", sites=dict(sorted(self.failing.items())))
            return web.json_response(body, status=503)
        body["status"] = "ok"
        return web.json_response(body)

    async def start(self, host: str, port: int) -> int:
        """Serve on ``host:port`` (0 picks a free port); returns the port."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        return int(self._runner.addresses[0][1])  # (host, port) of the socket just bound

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()


async def start_metrics(settings: Settings, warehouse: Warehouse | None) -> Metrics | None:
    """Start the endpoint when ``observability.metrics_port`` is set, else None."""
    port = settings.observability.metrics_port
    if port is None:
        return None
    metrics = Metrics(warehouse)
    bound = await metrics.start(settings.observability.metrics_host, port)
    from ..obs.logs import event

    event("metrics endpoint listening", url=f"http://{settings.observability.metrics_host}:{bound}/metrics")
    return metrics
