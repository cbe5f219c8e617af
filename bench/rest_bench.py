"""REST source benchmark: our exporter's REST source against the simulator's ideal and against a
Splunk-add-on-style sequential pager, in one process, on one simulated site.

The ideal is what the server's latency and rate limit allow for the fewest requests that can
fetch the data: one listing per window-sized span (30 days for the meeting reports, 7 for
``/meetings``) paged at the endpoint's largest ``max``, one attendee/participant listing per
meeting, plus the one token refresh.  Link paging is sequential by nature (a page names the next)
and a fan-out needs its parent first, so the ideal is
``max(ceil(N / C) x L, N / R x 60 s, critical path x L)`` for a client that keeps evenly to R per
minute (Webex publishes no REST limits, so ours never bursts).  The sequential pager does not
pace itself: it bursts until the server answers 429 and then waits ``Retry-After``.

    .venv/bin/python bench/rest_bench.py                 # 30 days, 20 meetings/day, 100 ms, 1200/min
    .venv/bin/python bench/rest_bench.py --quick          # a few seconds
    .venv/bin/python bench/rest_bench.py --write          # also into docs/benchmarks.md (section rest-source)
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
import tomllib
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exporter.config import Secret, parse_settings  # noqa: E402
from exporter.model.datasets import by_name  # noqa: E402
from exporter.model.runs import RunOptions  # noqa: E402
from exporter.run.pipeline import export  # noqa: E402
from exporter.simulator import FaultSettings, SimulatorConfig, run_in_thread  # noqa: E402
from exporter.store.warehouse import Warehouse  # noqa: E402
from exporter.webex.rest.client import seed_tokens  # noqa: E402

DATASETS = ("meeting_usage", "meeting_attendees", "meeting_instances", "meeting_participants")
SITE = "demo"


def ideal(sim: Any, now: datetime, *, latency: float, per_minute: int, concurrency: int) -> dict[str, Any]:
    """The fewest requests for DATASETS and the time they need at best (module docstring)."""
    requests = 1  # the token refresh
    chains: list[int] = []
    start = now - timedelta(days=90)
    pages_of: dict[str, int] = {}
    for name in DATASETS:
        listing = by_name(name).rest
        assert listing is not None
        rows = sim.rest_ground_truth(SITE, name)
        if listing.parent is None:
            column = by_name(name).start_column
            spans = math.ceil((now - start) / timedelta(days=listing.window_days))
            counts = Counter(min(spans - 1, max(0, int((r[column] - start) / timedelta(days=listing.window_days))))
                             for r in rows if r[column] is not None)
            pages = [max(1, math.ceil(counts.get(i, 0) / listing.max_page)) for i in range(spans)]
            pages_of[name] = max(pages)
        else:
            per_parent = Counter(r[listing.parent_id] for r in rows)
            parents = len(sim.rest_ground_truth(SITE, listing.parent))
            pages = [max(1, math.ceil(per_parent.get(i, 0) / listing.max_page)) for i in range(parents)]
            chains.append(pages_of.get(listing.parent, 1) + max(pages, default=0))
        requests += sum(pages)
        chains.append(max(pages, default=0))
    critical = max(chains) + 1
    seconds = max(math.ceil(requests / concurrency) * latency, requests / per_minute * 60, critical * latency)
    return {"requests": requests, "seconds": seconds, "critical": critical}


def config_text(sim: Any, root: Path, concurrency: int, per_minute: int) -> str:
    return f"""
[[sites]]
name = "{SITE}"
source = "rest"
datasets = [{", ".join(f'"{d}"' for d in DATASETS)}]
[sites.rest]
base_url = "{sim.rest_url}"
token_url = "{sim.rest_token_url}"
site_url = "{SITE}.webex.com"
client_id = "sim-client"
client_secret_env = "BENCH_CLIENT_SECRET"
token_file = "{root}/tokens.json"
[throttle]
requests_per_minute = {per_minute}
max_concurrency = {concurrency}
[warehouse]
root = "{root}/warehouse"
catalog = "{root}/warehouse/webex.duckdb"
"""


async def ours(sim: Any, root: Path, concurrency: int, per_minute: int) -> dict[str, Any]:
    settings = parse_settings(tomllib.loads(config_text(sim, root, concurrency, per_minute)),
                              env={"BENCH_CLIENT_SECRET": "sim-client-secret"})
    await seed_tokens(settings.sites[0], refresh_token=Secret(sim.rest_refresh_token(SITE)))
    sim.reset_stats()
    started = time.perf_counter()
    with Warehouse(settings.warehouse, export=settings.export) as warehouse:
        report = await export(settings, RunOptions(now=sim.clock.now(), backfill=True), warehouse=warehouse)
    wall = time.perf_counter() - started
    landed = {o.dataset: o.records for o in report.outcomes}
    return {"wall": wall, "requests": sim.stats()["rest_requests"], "exit": report.exit_code, "landed": landed}


async def sequential(sim: Any) -> dict[str, Any]:
    """How the Splunk add-on pages: one request at a time, usage per window then attendees per
    meeting, ``max=100``; the same for instances and participants."""
    sim.reset_stats()
    started = time.perf_counter()
    rows: Counter[str] = Counter()
    async with aiohttp.ClientSession() as http:
        async with http.post(sim.rest_token_url, data={
            "grant_type": "refresh_token", "client_id": "sim-client", "client_secret": "sim-client-secret",
            "refresh_token": sim.rest_refresh_token(SITE, current=True)}) as answer:
            token = (await answer.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}", "timezone": "UTC"}

        async def walk(url: str) -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = []
            while url:
                async with http.get(url, headers=headers) as answer:
                    if answer.status == 429:  # as wxc_sdk does: wait Retry-After, ask again
                        await asyncio.sleep(float(answer.headers.get("Retry-After", "5")))
                        continue
                    answer.raise_for_status()
                    items += (await answer.json()).get("items", [])
                    url = answer.links.get("next", {}).get("url", "") if answer.links else ""
                    url = str(url)
            return items

        now = sim.clock.now()
        for path, days, child, param in (("/meetingReports/usage", 30, "/meetingReports/attendees", "meetingId"),
                                         ("/meetings", 7, "/meetingParticipants", "meetingId")):
            t = now - timedelta(days=90) + timedelta(hours=1)
            while t < now:
                end = min(now, t + timedelta(days=days))
                span = f"from={t:%Y-%m-%dT%H:%M:%SZ}&to={end:%Y-%m-%dT%H:%M:%SZ}"
                extra = "&meetingType=meeting&state=ended" if path == "/meetings" else ""
                parents = await walk(f"{sim.rest_url}{path}?siteUrl={SITE}.webex.com&{span}&max=100{extra}")
                rows[path] += len(parents)
                for p in parents:
                    key = p.get("meetingId") or p.get("id")
                    more = f"&{span}" if child.startswith("/meetingReports") else ""
                    rows[child] += len(await walk(f"{sim.rest_url}{child}?siteUrl={SITE}.webex.com&{param}={key}"
                                                  f"&max=100{more}"))
                t = end
    return {"wall": time.perf_counter() - started, "requests": sim.stats()["rest_requests"], "rows": dict(rows)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--meetings-per-day", type=int, default=20)
    parser.add_argument("--attendees-per-meeting", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--rate-limit", type=int, default=1200, help="REST requests per minute (server and ours)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="10 days, 10 meetings/day, 20 ms")
    parser.add_argument("--write", action="store_true", help="also write docs/benchmarks.md section rest-source")
    args = parser.parse_args(argv)
    if args.quick:
        args.days, args.meetings_per_day, args.latency_ms = 10, 10, 20.0
    now = datetime.now(timezone.utc).replace(microsecond=0, second=0, minute=0)
    config = SimulatorConfig.small(days=args.days, meetings_per_day=args.meetings_per_day,
                                   attendees_per_meeting=args.attendees_per_meeting, now=now, freeze_clock=True,
                                   faults=FaultSettings(latency_ms=args.latency_ms,
                                                        rest_rate_limit_per_minute=args.rate_limit))
    latency = args.latency_ms / 1000
    with run_in_thread(config) as sim, tempfile.TemporaryDirectory(prefix="rest-bench-") as tmp:
        best = ideal(sim, now, latency=latency, per_minute=args.rate_limit, concurrency=args.concurrency)
        truth = {d: len(sim.rest_ground_truth(SITE, d)) for d in DATASETS}
        mine = asyncio.run(ours(sim, Path(tmp), args.concurrency, args.rate_limit))
        base = asyncio.run(sequential(sim))
    complete = all(mine["landed"].get(d) == truth[d] for d in DATASETS) and mine["exit"] == 0
    lines = [
        f"World: {args.days} days, {args.meetings_per_day} meetings/day, ~{args.attendees_per_meeting} attendees "
        f"each; {sum(truth.values())} REST rows ({', '.join(f'{d} {n}' for d, n in truth.items())}); latency "
        f"{args.latency_ms:.0f} ms, {args.rate_limit} requests/min, {args.concurrency} in flight.",
        "",
        f"Ideal: {best['requests']} requests, critical path {best['critical']} requests -> **{best['seconds']:.1f} s**.",
        "",
        "| contender | wall s | x ideal | requests | rows complete |",
        "|---|---:|---:|---:|---|",
        f"| ours (REST source) | {mine['wall']:.1f} | {mine['wall'] / best['seconds']:.2f} | {mine['requests']} | "
        f"{'yes' if complete else 'NO: ' + str(mine['landed'])} |",
        f"| sequential pager (Splunk-style, max=100) | {base['wall']:.1f} | {base['wall'] / best['seconds']:.2f} | "
        f"{base['requests']} | fetches only, nothing landed |",
        "",
        f"Ours is {base['wall'] / mine['wall']:.1f}x faster than the sequential pager in the same process.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        doc = ROOT / "docs" / "benchmarks.md"
        body = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
        marker = "<!-- section: rest-source -->"
        block = f"{marker}\n## REST source (`bench/rest_bench.py`)\n\n{text}\n{marker}-end\n"
        if marker in body:
            head, _, rest = body.partition(marker)
            _, _, tail = rest.partition(f"{marker}-end\n")
            body = head + block + tail
        else:
            body = body.rstrip("\n") + "\n\n" + block
        doc.write_text(body, encoding="utf-8")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
