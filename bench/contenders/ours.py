"""Contender 1: this project's exporter, exactly as a user runs it (``exporter.run.pipeline.run_once``).

Settings are built in code: one site pointing at the simulator, password auth, a temporary
warehouse, windows of ``window_hours``, and a throttle that matches the simulator's limit
(``requests_per_minute`` = the server's per-group rate, ``max_concurrency`` and
``bodies_per_request`` from the workload, 60 s cool-down), and no ``unlabeled_time_zone_id``, so
the exporter learns the site's zone from the site, as for a user who sets none.  The run is a
backfill of the same range every contender lists (``--since``/``--until`` equivalents), with
``now`` = the simulator's frozen clock.
"""

from __future__ import annotations

from pathlib import Path

from bench.contenders.common import Outcome, Workload, bench_range


def settings_for(w: Workload, url: str, root: Path):  # noqa: ANN201 - exporter.config.Settings
    """The exporter's :class:`Settings` for this workload and simulator URL."""
    from exporter.config import (
        ExportSettings,
        ObservabilitySettings,
        Secret,
        Settings,
        SiteSettings,
        ThrottleSettings,
        WarehouseSettings,
    )

    throttle = ThrottleSettings(
        requests_per_minute=w.rate_limit if w.rate_limit > 0 else 100_000,
        max_concurrency=w.concurrency,
        page_size=w.page_size,
        bodies_per_request=w.bodies_per_request,
        cooldown_seconds=w.throttle_cooldown_seconds,
    )
    site = SiteSettings(
        name=w.site,
        url=url,
        site_name=w.site,
        auth="password",
        webex_id=w.user,
        password=Secret(w.password),
        access_token=None,
        datasets=tuple(w.datasets),
        preliminary=False,
        time_zone_id=20,
        # None, as in a config that names no zone: the exporter asks the site (GetSite, in the site
        # facts request it sends anyway) and reads times without a timeZoneID in that zone -- GMT on
        # the default profile, Beijing on the realistic one.  Pinning 20 here would misread the latter.
        unlabeled_time_zone_id=None,
        throttle=throttle,
    )
    return Settings(
        sites=(site,),
        export=ExportSettings(window_hours=w.window_hours),
        warehouse=WarehouseSettings(root=str(root / "warehouse"), catalog=str(root / "warehouse" / "webex.duckdb")),
        observability=ObservabilitySettings(log_format="text", log_level="warning"),
        source="bench",
    )


def run(w: Workload, url: str, out_dir: Path) -> Outcome:
    """One export run; data lands in ``out_dir/warehouse``."""
    from exporter.model.runs import RunOptions
    from exporter.run.pipeline import run_once
    from exporter.run.progress import Progress

    out_dir.mkdir(parents=True, exist_ok=True)
    settings = settings_for(w, url, out_dir)
    since, until = bench_range(w)
    variant = (f"run_once, {w.concurrency} in flight, {w.bodies_per_request} pages/request, "
               f"budget {w.rate_limit}/min")
    outcome = Outcome("ours", variant, output=str(out_dir / "warehouse"), output_kind="parquet")
    for ds in w.datasets:
        outcome.table_paths[ds] = str(out_dir / "warehouse" / ds / "**" / "*.parquet")
    try:
        report = run_once(settings, RunOptions(since=since, until=until, backfill=True, now=w.now_dt),
                          progress=Progress.disabled())
    except Exception as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
        return outcome
    outcome.client_requests = sum(o.requests for o in report.outcomes)
    outcome.client_throttles = sum(o.throttles for o in report.outcomes)
    failed = sum(o.windows_failed for o in report.outcomes)
    if failed:
        outcome.notes.append(f"{failed} window(s) failed: " + "; ".join(e for o in report.outcomes for e in o.errors[:2]))
    # Which zone the exporter settled on for unlabeled times (and anything else the site told it),
    # and listings it had to repeat or could not verify: the table shows these under the contender.
    outcome.notes += [f"site: {n}" for notes in report.site_notes.values() for n in notes]
    rescans = sum(o.rescans for o in report.outcomes)
    unverified = sum(o.windows_unverified for o in report.outcomes)
    if rescans:
        outcome.notes.append(f"{rescans} window listing(s) repeated (rescans)")
    if unverified:
        outcome.notes.append(f"{unverified} window(s) landed unverified")
    if report.site_errors:
        outcome.error = "; ".join(f"{k}: {v}" for k, v in report.site_errors.items())
    if report.exit_code not in (0,):
        outcome.notes.append(f"exit code {report.exit_code}")
    return outcome
