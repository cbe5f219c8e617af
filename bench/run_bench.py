"""Export benchmark: our exporter versus a Splunk-add-on-style sequential pager and a dlt pipeline.

One command runs every contender against the simulator (one site, ``--size`` decides how much
history), each in a fresh process against its own fresh simulator process (same seed, so the
same records), ``--repeat`` times in alternating order, and prints a markdown table of medians:
wall time, requests the server saw, throttle answers, records/s, CPU seconds, peak RSS, rows
landed against the simulator's ground truth, and wall time against the ideal time the server's
rate limit and latency allow.  ``--write`` also puts the table and a machine description into
``docs/benchmarks.md``.  ``--memory`` measures our exporter's peak RSS at 100,000 and 2,000,000
records instead.

    .venv/bin/python bench/run_bench.py --quick                      # < 60 s smoke test
    .venv/bin/python bench/run_bench.py                              # --size small, 3 repetitions
    .venv/bin/python bench/run_bench.py --size full --write          # 500k attendee rows, 300 ms
    .venv/bin/python bench/run_bench.py --size full --skip sequential
    .venv/bin/python bench/run_bench.py --memory --write
    .venv/bin/python bench/run_bench.py --profile realistic --write  # twins, unstable ties, Beijing time

Sizes (one site, ``days`` of history, meeting usage + meeting attendees unless ``--datasets all``):
quick 3 days ~180 meetings ~1,900 attendee rows, latency 20 ms; small 90 days ~5,000 meetings
~50,000 rows; full ~50,000 meetings ~500,000 rows; large ~200,000 meetings ~2,000,000 rows.
Latency 300 ms per request and 600 requests per minute per API group unless given.
``--profile realistic`` serves the same sizes from the simulator's realistic world (exact and near
twins, tied rows drawn afresh across page boundaries, a Beijing-time site, a localized 000053; see
``REALISTIC_WORLD_KNOBS`` in bench/contenders/common.py) and gets its own section in the doc.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.contenders.check import check  # noqa: E402
from bench.contenders.common import DAY, PROFILES, Workload, bench_range  # noqa: E402
from exporter.model.datasets import DATASETS, by_name  # noqa: E402

CONTENDERS = ("ours", "sequential", "dlt")
SIZES: dict[str, dict[str, Any]] = {
    "quick": {"days": 3, "meetings_per_day": 300, "attendees_per_meeting": 10, "latency_ms": 20.0},
    "small": {"days": 90, "meetings_per_day": 56, "attendees_per_meeting": 10},
    "full": {"days": 90, "meetings_per_day": 556, "attendees_per_meeting": 10},
    "large": {"days": 90, "meetings_per_day": 2100, "attendees_per_meeting": 10},
}
#: --memory: attendee rows wanted by default; the simulator averages ~10.6 attendee rows per meeting
#: at attendees_per_meeting=10 (some attendees leave and rejoin), so meetings/day = rows / 90 / 10.6.
MEMORY_RECORDS = (100_000, 2_000_000)
ROWS_PER_MEETING = 10.6
DOC = ROOT / "docs" / "benchmarks.md"
PACKAGES = ("aiohttp", "lxml", "pyarrow", "duckdb", "dlt", "requests", "urllib3")
SIM_START_TIMEOUT = 900.0


# ------------------------------------------------------------------------------------- ideal


@dataclasses.dataclass
class Ideal:
    """The fastest any client could list the workload under the server's limits."""

    pages: int  # list pages needed (every window at least one)
    requests_1: int  # HTTP requests at one page per request (= pages)
    requests_b: int  # at B pages per request, perfectly packed (ours: --bodies-per-request)
    requests_max: int  # at the simulator's bodyContent limit per request
    seconds_1: float
    seconds_b: float
    seconds_max: float
    formula: str


def ideal_for(w: Workload, truth_dir: Path) -> Ideal:
    """``ideal = max(max(ceil(N / C), 2) * L, N / R * 60)`` for N requests, C in flight, latency L,
    R requests per minute.

    N is a lower bound: P = the fewest pages that can hold the ground truth (every dataset's
    records in pages of ``page_size``, as if windows were cut perfectly), packed B pages to a
    request with nothing wasted; two round trips at least (a window's first page must come back
    before its other offsets are known).  1-day windows need a few more pages (reported too).
    """
    import pyarrow.parquet as pq

    since, until = bench_range(w)
    step = w.window_hours * 3600
    lo, hi = int(since.timestamp()), int(until.timestamp())
    n_windows = math.ceil((hi - lo) / step)
    pages = pages_day = 0
    for dataset in w.datasets:
        starts = pq.read_table(truth_dir / f"{dataset}.parquet", columns=["_start"]).column("_start").to_pylist()
        counts = [0] * n_windows
        for s in starts:
            if s is not None and lo <= s < hi:
                counts[(s - lo) // step] += 1
        pages += max(1, math.ceil(sum(counts) / w.page_size))
        pages_day += sum(max(1, math.ceil(n / w.page_size)) for n in counts)

    def seconds(n: int) -> float:
        trips = max(math.ceil(n / w.concurrency), 2)
        rate = n / w.rate_limit * 60.0 if w.rate_limit else 0.0
        return max(trips * w.latency_ms / 1000.0, rate)

    b = max(1, min(w.bodies_per_request, w.body_content_limit))
    n_b, n_max = math.ceil(pages / b), math.ceil(pages / w.body_content_limit)
    formula = (
        f"ideal = max(max(ceil(N / C), 2) x L, N / R x 60 s) with C = {w.concurrency} requests in flight, "
        f"L = {w.latency_ms:g} ms, R = {w.rate_limit or 'unlimited'} requests/min per API group (all list "
        f"datasets share one group) and N = ceil(P / B) requests: P = {pages} pages, the fewest that hold the "
        f"ground truth ({w.page_size} records each, windows cut perfectly; {w.window_hours} h windows need "
        f"{pages_day}), B pages per request. B = 1 (the baselines): N = {pages}, {seconds(pages):.1f} s; "
        f"B = {b} (ours, --bodies-per-request): N = {n_b}, {seconds(n_b):.1f} s; B = {w.body_content_limit} "
        f"(the simulator's bodyContent limit, the floor for any client): N = {n_max}, {seconds(n_max):.1f} s"
    )
    return Ideal(pages, pages, n_b, n_max, seconds(pages), seconds(n_b), seconds(n_max), formula)


def sequential_estimate(w: Workload, truth_dir: Path) -> tuple[int, float]:
    """Requests and seconds the one-at-a-time pager needs: per 1-day slice floor(n/500)+1 pages
    (it stops on a short page), each costing the latency plus ~5 ms of client and server work."""
    import pyarrow.parquet as pq

    since, until = bench_range(w)
    lo, hi = int(since.timestamp()), int(until.timestamp())
    n_slices = math.ceil((hi - lo) / DAY)
    requests = 0
    for dataset in w.datasets:
        starts = pq.read_table(truth_dir / f"{dataset}.parquet", columns=["_start"]).column("_start").to_pylist()
        counts = [0] * n_slices
        for s in starts:
            if s is not None and lo <= s < hi:
                counts[(s - lo) // DAY] += 1
        requests += sum(n // w.page_size + 1 for n in counts)
    return requests, requests * (w.latency_ms / 1000.0 + 0.005)


# ------------------------------------------------------------------------------------- running


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class SimProcess:
    """A simulator in its own process (``bench/contenders/simserver.py``)."""

    def __init__(self, workload_file: Path, truth_dir: Path, log: Path) -> None:
        self._log = open(log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.contenders.simserver", str(workload_file), str(truth_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, cwd=ROOT, env=_env(),
        )
        self.url, self.control = self._wait_ready()

    def _wait_ready(self) -> tuple[str, str]:
        deadline = time.monotonic() + SIM_START_TIMEOUT
        buffer = b""
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buffer += chunk
                for line in buffer.decode("utf-8", "replace").splitlines():
                    if line.startswith("SIM-READY "):
                        info = json.loads(line[len("SIM-READY "):])
                        return info["url"], info["control"]
            elif self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"the simulator did not start (see {self._log.name})")

    def stats(self) -> dict[str, Any]:
        """``GET /_sim/stats``."""
        with urllib.request.urlopen(self.control + "/stats", timeout=30) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        """Close stdin (the server stops), then SIGTERM if it lingers."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=15)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self._log.close()


def _busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return float("nan")


def _process_cpu(pid: int) -> float:
    """utime + stime of a live process, in seconds (nan when unreadable)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def run_worker(contender: str, workload_file: Path, url: str, out_dir: Path, result_file: Path, log: Path,
               options: dict[str, Any], timeout: float | None) -> tuple[int, Any]:
    """Run one contender in a fresh process; its exit status and resource usage (``wait4``)."""
    with open(log, "ab") as sink:
        proc = subprocess.Popen(
            os.environ.get("BENCH_WRAP", "").split() + [sys.executable, "-m", "bench.contenders.worker", contender, str(workload_file), url, str(out_dir),
             str(result_file), json.dumps(options)],
            stdout=sink, stderr=sink, cwd=ROOT, env=_env(),
        )
        timer = None
        if timeout:
            timer = threading.Timer(timeout, proc.kill)
            timer.start()
        _, status, rusage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if timer is not None:
            timer.cancel()
    return proc.returncode, rusage


def run_contender(contender: str, w: Workload, workdir: Path, rep: int, args: argparse.Namespace) -> dict[str, Any]:
    """One repetition of one contender: fresh simulator, fresh worker, server stats, data check."""
    run_dir = workdir / f"{contender}-{rep}"
    run_dir.mkdir(parents=True, exist_ok=True)
    workload_file = workdir / f"workload-{w.name}.json"
    workload_file.write_text(w.to_json(), encoding="utf-8")
    truth = truth_dir(w)
    sim = SimProcess(workload_file, truth, run_dir / "simulator.log")
    options = {"dlt_destination": args.dlt_destination, "dlt_disposition": args.dlt_disposition}
    result_file = run_dir / "result.json"
    try:
        busy0, sim0, t0 = _busy_seconds(), _process_cpu(sim.proc.pid), time.perf_counter()
        code, rusage = run_worker(contender, workload_file, sim.url, run_dir / "out", result_file,
                                  run_dir / "worker.log", options, args.timeout)
        busy1, sim1, t1 = _busy_seconds(), _process_cpu(sim.proc.pid), time.perf_counter()
        server = sim.stats()
    finally:
        sim.stop()
    result: dict[str, Any] = json.loads(result_file.read_text()) if result_file.exists() else {
        "contender": contender, "variant": "", "wall_s": None, "error": f"worker exited with {code}",
        "notes": [], "table_paths": {}, "output_kind": "",
    }
    if code != 0 and not result.get("error"):
        result["error"] = f"worker exited with {code}"
    result["exit_code"] = code
    result["cpu_process_s"] = rusage.ru_utime + rusage.ru_stime
    # VmHWM reported by the worker itself; ru_maxrss from wait4 also holds the harness's own peak
    # (Linux carries the parent's high-water mark across vfork + exec), so it is only a fallback.
    own = result.get("peak_rss_self_mib") or rusage.ru_maxrss / 1024.0
    result["peak_rss_mib"] = max(own, result.get("peak_rss_tree_mib") or 0.0)
    result["ru_maxrss_mib"] = rusage.ru_maxrss / 1024.0
    result["server"] = server
    worker_cpu = rusage.ru_utime + rusage.ru_stime
    result["simulator_cpu_s"] = sim1 - sim0
    # CPU the rest of the machine used while this contender ran (other people's jobs share it).
    others = (busy1 - busy0) - worker_cpu - (sim1 - sim0)
    result["others_cpu_s"] = max(0.0, others)
    result["others_load"] = max(0.0, others) / (t1 - t0) if t1 > t0 else None  # cores' worth
    result["check"] = check(result, truth, list(w.datasets))
    result["log"] = str(run_dir / "worker.log")
    if not args.keep:
        shutil.rmtree(run_dir / "out", ignore_errors=True)
    return result


def truth_dir(w: Workload) -> Path:
    """Where the ground-truth key files of this workload are cached."""
    return ROOT / "bench" / "results" / "truth" / w.cache_key()


def prepare_truth(w: Workload, workdir: Path) -> None:
    """Start a simulator once so the ground truth exists before anything is estimated."""
    if all((truth_dir(w) / f"{d}.parquet").exists() for d in w.datasets):
        return
    workload_file = workdir / f"workload-{w.name}.json"
    workload_file.write_text(w.to_json(), encoding="utf-8")
    started = time.perf_counter()
    SimProcess(workload_file, truth_dir(w), workdir / f"truth-{w.name}.log").stop()
    print(f"ground truth for {w.name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)


# ------------------------------------------------------------------------------------- figures


def _median(values: list[float | None]) -> float | None:
    clean = [v for v in values if v is not None]
    return statistics.median(clean) if clean else None


def summarise(contender: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over repetitions; data completeness from every repetition (worst reported)."""
    last = runs[-1]
    checks = [r["check"] for r in runs]
    truth = sum(c["truth"] for c in checks[0].values())
    missing = [sum(c["missing"] for c in ch.values()) for ch in checks]
    extra = [sum(c["extra"] for c in ch.values()) for ch in checks]
    dups = [sum(c["duplicates"] for c in ch.values()) for ch in checks]
    rows = [sum(c["rows"] for c in ch.values()) for ch in checks]
    walls = [r.get("wall_s") for r in runs]
    complete = [truth - m for m in missing]
    rates = [c / w for c, w in zip(complete, walls) if w]
    errors = sorted({r["error"] for r in runs if r.get("error")})
    notes = sorted({n for r in runs for n in r.get("notes", [])})
    return {
        "contender": contender,
        "variant": last.get("variant", ""),
        "reps": len(runs),
        "wall_s": _median(walls),
        "walls": walls,
        "requests": _median([r["server"]["requests"] for r in runs]),
        "throttled": _median([r["server"]["throttled"] for r in runs]),
        "records_per_s": _median(rates),
        "cpu_s": _median([r.get("cpu_run_s") for r in runs]),
        "cpu_process_s": _median([r.get("cpu_process_s") for r in runs]),
        "peak_rss_mib": _median([r.get("peak_rss_mib") for r in runs]),
        "simulator_cpu_s": _median([r.get("simulator_cpu_s") for r in runs]),
        "others_load": _median([r.get("others_load") for r in runs]),
        "truth": truth,
        "rows": max(rows),
        "missing": max(missing),
        "extra": max(extra),
        "duplicates": max(dups),
        "missing_by_rep": missing,
        "per_dataset": checks[-1],
        "errors": errors,
        "notes": notes,
    }


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def render(w: Workload, ideal: Ideal, summaries: list[dict[str, Any]], command: str, started: datetime,
           elapsed: float | None, rendered_from: str | None = None) -> str:
    """The markdown report of one export benchmark."""
    ours = next((s for s in summaries if s["contender"] == "ours"), None)
    since, until = bench_range(w)
    profile = f" --profile {w.profile}" if w.profile != "default" else ""
    lines = [
        f"### Export benchmark: `--size {w.name}{profile}`, {w.latency_ms:g} ms, {w.rate_limit or 'no'} "
        f"requests/min ({', '.join(w.datasets)})",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC, {summaries[0]['reps'] if summaries else 0} repetition(s) per contender "
        f"(medians shown)" + (f", {elapsed / 60:.1f} min in all" if elapsed else "") + f". Command: `{command}`"
        + (f" (table re-rendered from `{rendered_from}` with `--render`)" if rendered_from else ""),
        "",
        f"Workload: one simulated site, {w.days} days ({since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC), "
        f"{w.meetings_per_day} meetings/day x ~{w.attendees_per_meeting} attendees, seed {w.seed}; server latency "
        f"{w.latency_ms:g} ms per request, rate limit {w.rate_limit or 'none'} requests/min per API group "
        f"(000045 and a {w.throttle_cooldown_seconds:g} s block past it); ground truth "
        + ", ".join(f"{d} {summaries[0]['per_dataset'][d]['truth']:,}" for d in w.datasets if summaries)
        + " records"
        + ("; realistic profile: exact and near twins (counted as often as the server holds them), tied rows "
           "drawn afresh where a page boundary cuts them, unlabeled times in Beijing time (timeZoneID 45), "
           "a zh-TW 000053" if w.profile == "realistic" else "") + ".",
        "",
        "| contender | wall s | x ideal | ours faster by | requests | throttled | records/s | CPU s | peak RSS MiB "
        "| landed / truth | missing | extra | dup rows | server CPU s | others' load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        base = ideal.seconds_b if s["contender"] == "ours" else ideal.seconds_1
        ratio = s["wall_s"] / base if s["wall_s"] and base else None
        faster = s["wall_s"] / ours["wall_s"] if ours and ours["wall_s"] and s["wall_s"] and s is not ours else None
        landed = s["truth"] - s["missing"]
        lines.append(
            f"| {s['contender']} | {_fmt(s['wall_s'])} | {_fmt(ratio, 2)} | "
            f"{(_fmt(faster, 2) + 'x') if faster else '-'} | {_fmt(s['requests'], 0)} | {_fmt(s['throttled'], 0)} | "
            f"{_fmt(s['records_per_s'], 0)} | {_fmt(s['cpu_s'])} | {_fmt(s['peak_rss_mib'], 0)} | "
            f"{landed:,} / {s['truth']:,} | {s['missing']:,} | {s['extra']:,} | {s['duplicates']:,} | "
            f"{_fmt(s['simulator_cpu_s'])} | {_fmt(s['others_load'], 2)} |"
        )
    lines += [
        "",
        f"- Ideal time: {ideal.formula}. \"x ideal\" compares the baselines with B = 1 "
        f"(**{ideal.seconds_1:.1f} s**) and ours with B = {w.bodies_per_request} (**{ideal.seconds_b:.1f} s**). "
        "The simulator's limit is a sliding 60 s window "
        "(a burst of R requests is allowed at once), so a client that bursts can beat N/R x 60 s when N is "
        "small; every contender here paces its requests evenly instead.",
        "- wall s: the contender's run in its own process, imports excluded, landing included. requests / "
        "throttled: counted by the simulator (throttled = bodyContent answers with 000045). records/s: ground-truth "
        "records landed per wall second. CPU s: user+system of the contender's process during the run (the "
        "simulator runs in another process). Peak RSS: the contender's peak resident set, worker processes included (the larger of its own `VmHWM` and the sum over its process tree sampled every 100 ms). landed / truth: "
        "ground-truth rows matched by a landed row, natural keys compared as multisets (a key the server holds "
        "twice must land twice); missing = truth rows no landed row matches (`EXCEPT ALL`); extra = landed rows no "
        "truth row matches (`EXCEPT ALL`); dup rows = the part of extra whose key the truth holds (a row landed "
        "more often than the server holds it). server CPU s: the "
        "simulator process's CPU while the contender ran (it renders every page; it shares the machine's "
        f"{os.cpu_count()} cores with the contender). others' load: CPU used by *other* processes on the machine "
        "during the run, in cores (machine busy time minus contender and simulator); well above 0 means the "
        "figures were taken on a shared, busy machine and wall times are inflated.",
    ]
    for s in summaries:
        lines.append(f"- **{s['contender']}**: {s['variant']}. Wall per repetition: "
                     + ", ".join(_fmt(x) for x in s["walls"]) + " s.")
        for note in s["notes"]:
            lines.append(f"  - {note}")
        for error in s["errors"]:
            lines.append(f"  - error: {error}")
        if len(set(s["missing_by_rep"])) > 1:
            lines.append(f"  - missing keys per repetition: {s['missing_by_rep']}")
    lines += ["", "Targets (measured, not assumed):", ""]
    lines += targets(ideal, summaries)
    return "\n".join(lines) + "\n"


def targets(ideal: Ideal, summaries: list[dict[str, Any]]) -> list[str]:
    """PASS / MISS lines for the tracker's targets, from the figures above."""
    by = {s["contender"]: s for s in summaries}
    ours = by.get("ours")
    out = []

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    if ours and ours["wall_s"]:
        r = ours["wall_s"] / ideal.seconds_b
        out.append(f"- ours within 1.1x of the ideal time: {r:.2f}x -> {verdict(r <= 1.1)}")
        for name, want in (("sequential", 3.0), ("dlt", 2.0)):
            other = by.get(name)
            if other and other["wall_s"]:
                f = other["wall_s"] / ours["wall_s"]
                out.append(f"- ours at least {want:g}x faster than {name}: {f:.2f}x -> {verdict(f >= want)}")
            else:
                out.append(f"- ours at least {want:g}x faster than {name}: not measured in this run")
    for s in summaries:
        lost = s["missing"] + s["extra"]  # duplicates are a part of extra
        state = "complete" if lost == 0 and not s["errors"] else (
            f"missing {s['missing']:,}, extra {s['extra']:,} (duplicate rows {s['duplicates']:,})"
            + (f"; {'; '.join(s['errors'])}" if s["errors"] else ""))
        out.append(f"- {s['contender']} data: {state}")
    return out


# ------------------------------------------------------------------------------------- memory


def run_memory(args: argparse.Namespace, workdir: Path) -> str:
    """Peak RSS of our exporter at 100,000 and 2,000,000 attendee records."""
    latency = args.latency_ms if args.latency_ms is not None else 20.0
    rate = args.rate_limit if args.rate_limit is not None else 0
    lines = [
        "### Memory: peak RSS of our exporter by records exported",
        "",
        f"meeting_attendees only, 90 days, latency {latency:g} ms, rate limit {rate or 'none'}; "
        f"{args.repeat} repetition(s), medians. Command: `{' '.join(['bench/run_bench.py'] + sys.argv[1:])}`",
        "",
        "| records | contender | wall s | records/s | CPU s | peak RSS MiB | landed / truth | others' load |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    contenders = [c for c in (args.contenders or ["ours"]) if c not in args.skip]
    for records in args.memory_records:
        per_day = max(1, round(records / 90 / ROWS_PER_MEETING))
        w = Workload(name=f"memory-{records}", days=90, meetings_per_day=per_day, attendees_per_meeting=10,
                     datasets=("meeting_attendees",), latency_ms=latency, rate_limit=rate, seed=args.seed,
                     concurrency=args.concurrency, bodies_per_request=args.bodies_per_request)
        prepare_truth(w, workdir)
        for contender in contenders:
            runs = []
            for rep in range(args.repeat):
                print(f"memory {records:,}: {contender} repetition {rep + 1}/{args.repeat} ...", file=sys.stderr, flush=True)
                runs.append(run_contender(contender, w, workdir / w.name, rep, args))
                r = runs[-1]
                print(f"  wall {_fmt(r.get('wall_s'))} s, peak RSS {r['peak_rss_mib']:.0f} MiB"
                      + (f", error: {r['error']}" if r.get("error") else ""), file=sys.stderr, flush=True)
            s = summarise(contender, runs)
            lines.append(f"| {s['truth']:,} | {contender} | {_fmt(s['wall_s'])} | {_fmt(s['records_per_s'], 0)} | "
                         f"{_fmt(s['cpu_s'])} | {_fmt(s['peak_rss_mib'], 0)} | {s['truth'] - s['missing']:,} / "
                         f"{s['truth']:,} | {_fmt(s['others_load'], 2)} |")
            lines_rss = ", ".join(_fmt(r.get("peak_rss_mib"), 0) for r in runs)
            lines.append(f"<!-- {contender} {records}: peak RSS per repetition {lines_rss} MiB -->")
            for error in s["errors"]:
                lines.append(f"<!-- {contender} error: {error} -->")
    lines += [
        "",
        "Peak RSS is the exporter's, parse worker processes included (the larger of its own `VmHWM` and its process tree's sampled sum); the simulator runs in another process. Latency and rate "
        "limit are low here so the run is bound by the exporter's own work; the export benchmark above "
        "shows RSS under the 300 ms / 600 per minute workload.",
    ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- machine


def machine() -> str:
    """CPU model, cores, RAM, OS, Python and package versions, as a markdown list."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return "\n".join([
        f"- CPU: {cpu}; {os.cpu_count()} logical cores available",
        f"- RAM: {ram}",
        f"- OS: {platform.platform()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
        f"- Packages: {', '.join(versions)}",
        f"- Tree: commit {commit} plus uncommitted work at the time of the run",
    ])


def write_doc(section: str, body: str) -> None:
    """Replace (or add) one marked section of docs/benchmarks.md; the machine section too."""
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else _DOC_HEADER
    text = _replace_section(text, "machine", "## Machine\n\n" + machine() + "\n")
    text = _replace_section(text, section, body)
    DOC.write_text(text, encoding="utf-8")


def _replace_section(text: str, name: str, body: str) -> str:
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        return head + block + tail
    return text.rstrip() + "\n\n" + block + "\n"


_DOC_HEADER = """# Benchmarks

Written by `bench/run_bench.py --write`: each run replaces its own section below; the figures are
measured, never edited by hand.  What the columns mean is in the notes under each table; how each
contender works is in the docstrings of `bench/contenders/*.py`.

## How to run

    .venv/bin/pip install -e '.[bench]'        # dlt[duckdb,parquet]; RUNTIME__DLTHUB_TELEMETRY=false is set for you
    .venv/bin/python bench/run_bench.py --quick                 # smoke test, < 60 s
    .venv/bin/python bench/run_bench.py --size full --write     # 500k attendee rows, 300 ms, 600/min, 3 repetitions
    .venv/bin/python bench/run_bench.py --size full --skip sequential --repeat 1
    .venv/bin/python bench/run_bench.py --memory --write         # peak RSS of ours at 100k and 2M records

Options: `--size quick|small|full|large`, `--profile default|realistic`, `--latency-ms`,
`--rate-limit` (requests/min per API group, 0 = none), `--datasets all`, `--repeat`,
`--contenders`/`--skip`, `--concurrency`,
`--bodies-per-request` (ours), `--dlt-destination filesystem|duckdb`, `--dlt-disposition append|merge`,
`--keep` (keep outputs and logs under `bench/results/runs/`), `--json FILE` (every measurement),
`--render FILE` (print/store the table of an earlier `--json` file again, running nothing),
`--reuse sequential=FILE` (take the slow pager's repetitions from an earlier file of the same workload).
Environment: `BENCH_PROFILE=PREFIX` writes a cProfile dump of each contender's main thread;
`BENCH_WRAP="py-spy record -o out --subprocesses --"` runs each contender under a wrapper command.
Every contender run gets a fresh simulator process (same seed, same records) and runs in its own
process; contenders alternate order between repetitions; medians are shown.

## Contenders

- **ours**: this exporter (`exporter.run.pipeline.run_once`) with settings built in code: password auth,
  the simulator's rate limit as its request budget, `--concurrency` requests in flight,
  `--bodies-per-request` pages per HTTP request, a fresh warehouse, a backfill of the measured range.
- **sequential**: works the way the Splunk add-on does (`splunk/ta-cisco-webex-meetings-add-on-for-splunk`):
  one request at a time (`requests`, urllib3 `Retry(total=10, backoff_factor=1)`, keep-alive off),
  1-day slices, `maximumNum` 500, `startFrom` += returned, stop on a short page, records to
  namespace-stripped dicts, one JSON line each; a FAILURE body (000045 included) ends the slice and the
  rest of it is never fetched; an error page aborts the run.  It sends the registry's time scope and
  extras so that it asks for the same rows as the others.
- **dlt**: dlt 1.x with a hand-written source (its `rest_api` source cannot read XML), variant D2+D3 of
  `../shared/lessons-from-peers.md` section 6, its fastest honest configuration: the first page of
  every window fetched in dlt's thread pool (`parallelized=True` transformer), the remaining pages as
  `@dlt.defer` items in the same pool (`[extract] workers` = `max_parallel_items` = `--concurrency`),
  pages parsed with lxml into pyarrow Tables with an explicit schema (dlt skips normalisation), HTTP
  through dlt's retrying `requests` client, a hand-written request budget (evenly spaced at the server's
  rate, and never more than rate - 2 in any 60.5 s) and a 60 s cool-down on 000045 (dlt has neither),
  `filesystem` destination, Parquet, `append`.
"""


# ------------------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=list(SIZES), default="small")
    p.add_argument("--quick", action="store_true", help="tiny workload, latency 20 ms, 1 repetition (< 60 s)")
    p.add_argument("--memory", action="store_true", help="peak RSS of ours at 100,000 and 2,000,000 records")
    p.add_argument("--memory-records", default=",".join(str(n) for n in MEMORY_RECORDS),
                   help="--memory: attendee row counts to measure (comma list)")
    p.add_argument("--repeat", type=int, default=None, help="repetitions per contender (default 3; --quick 1)")
    p.add_argument("--latency-ms", type=float, default=None, help="server latency per request (default 300)")
    p.add_argument("--rate-limit", type=int, default=None, help="requests/min per API group, 0 = none (default 600)")
    p.add_argument("--datasets", default="meeting_usage,meeting_attendees", help="comma list, or 'all'")
    p.add_argument("--contenders", default=None, help=f"comma list of {', '.join(CONTENDERS)} (default all)")
    p.add_argument("--skip", default="", help="comma list of contenders to leave out")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight (ours and dlt)")
    p.add_argument("--bodies-per-request", type=int, default=10,
                   help="pages per HTTP request (ours; 10 = the exporter's default and the simulator's limit)")
    p.add_argument("--dlt-destination", choices=("filesystem", "duckdb"), default="filesystem")
    p.add_argument("--dlt-disposition", choices=("append", "merge"), default="append")
    p.add_argument("--profile", choices=PROFILES, default="default",
                   help="simulated world: default, or realistic (twins, unstable tie order, Beijing-time site)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--timeout", type=float, default=None, help="seconds before a contender run is killed")
    p.add_argument("--write", action="store_true", help=f"write the table into {DOC.relative_to(ROOT)}")
    p.add_argument("--keep", action="store_true", help="keep each run's output and logs (bench/results/runs)")
    p.add_argument("--json", type=Path, default=None, help="also write every measurement to this JSON file")
    p.add_argument("--render", type=Path, default=None, metavar="FILE",
                   help="print the table of an earlier --json file again (current formulas), run nothing")
    p.add_argument("--reuse", action="append", default=[], metavar="CONTENDER=FILE",
                   help="take this contender's repetitions from an earlier --json file of the same workload "
                        "(e.g. the slow sequential pager) instead of running it again; marked in the table")
    args = p.parse_args(argv)
    if args.memory and args.profile != "default":
        p.error("--memory measures the default profile only")
    if args.quick:
        args.size = "quick"
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    args.skip = [s for s in args.skip.split(",") if s]
    args.memory_records = [int(n) for n in args.memory_records.split(",") if n]
    args.contenders = [c for c in args.contenders.split(",") if c] if args.contenders else None
    for name in (args.contenders or []) + args.skip:
        if name not in CONTENDERS:
            p.error(f"unknown contender {name!r}; known: {', '.join(CONTENDERS)}")
    names = [d.name for d in DATASETS] if args.datasets == "all" else [d for d in args.datasets.split(",") if d]
    for name in names:
        by_name(name)
    args.dataset_names = tuple(names)
    return args


def section_name(w: Workload) -> str:
    """The docs/benchmarks.md section of a workload: size, plus profile, latency and rate when not the
    default (so a realistic run never replaces a default-profile table)."""
    size = w.name.split("-")[0]
    section = f"export-{w.name}"
    if w.profile != "default":
        section += f"-{w.profile}"
    if w.latency_ms != SIZES.get(size, {}).get("latency_ms", 300.0):
        section += f"-latency{w.latency_ms:g}"
    if w.rate_limit != 600:
        section += f"-rate{w.rate_limit}"
    return section


def rerender(args: argparse.Namespace) -> int:
    """Print (and with --write, store) the table of an earlier --json file with the current formulas."""
    data = json.loads(args.render.read_text(encoding="utf-8"))
    raw = dict(data["workload"])
    raw["datasets"] = tuple(raw["datasets"])
    w = Workload(**raw)
    runs = data["runs"]
    contenders = [c for c in CONTENDERS if runs.get(c)]
    summaries = [summarise(c, runs[c]) for c in contenders]
    started = (datetime.fromisoformat(data["started"]) if data.get("started")
               else datetime.fromtimestamp(args.render.stat().st_mtime, timezone.utc))
    report = render(w, ideal_for(w, truth_dir(w)), summaries, data.get("command", "(not recorded)"), started,
                    data.get("elapsed_s"), rendered_from=args.render.name)
    print(report)
    if args.write:
        write_doc(section_name(w), report)
    return 0


def load_reused(specs: list[str], w: Workload, contenders: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Repetitions of some contenders taken from earlier ``--json`` files (same workload only)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        if name not in contenders or not path:
            raise SystemExit(f"--reuse {spec!r}: want CONTENDER=FILE for one of {', '.join(contenders)}")
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        mine = dataclasses.asdict(w)
        theirs = dict(data["workload"])
        theirs["datasets"] = tuple(theirs["datasets"])
        theirs.setdefault("profile", "default")  # files written before profiles existed
        mine["datasets"] = tuple(mine["datasets"])
        if theirs != mine:
            diff = sorted(k for k in mine if mine[k] != theirs.get(k))
            raise SystemExit(f"--reuse {spec!r}: different workload ({', '.join(diff)})")
        runs = data["runs"].get(name) or []
        if not runs:
            raise SystemExit(f"--reuse {spec!r}: no runs of {name} in that file")
        for r in runs:
            r.setdefault("notes", []).append(f"measured in an earlier invocation ({Path(path).name}), same workload")
        out[name] = runs
    return out


def workload_for(args: argparse.Namespace) -> Workload:
    size = dict(SIZES[args.size])
    latency = size.pop("latency_ms", 300.0)
    return Workload(
        name=args.size + ("" if args.dataset_names == ("meeting_usage", "meeting_attendees") else "-all"),
        seed=args.seed,
        datasets=args.dataset_names,
        latency_ms=args.latency_ms if args.latency_ms is not None else latency,
        rate_limit=args.rate_limit if args.rate_limit is not None else 600,
        concurrency=args.concurrency,
        bodies_per_request=args.bodies_per_request,
        profile=args.profile,
        **size,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    base = ROOT / "bench" / "results" / "runs" if args.keep else Path(tempfile.mkdtemp(prefix="webex-bench-"))
    workdir = base / started.strftime("%Y%m%dT%H%M%S")
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.render:
            return rerender(args)
        if args.memory:
            report = run_memory(args, workdir)
            print(report)
            if args.write:
                write_doc("memory", report)
            return 0
        w = workload_for(args)
        contenders = [c for c in (args.contenders or CONTENDERS) if c not in args.skip]
        prepare_truth(w, workdir)
        ideal = ideal_for(w, truth_dir(w))
        print(f"ideal: {ideal.seconds_1:.1f} s at one page per request, {ideal.seconds_b:.1f} s for ours "
              f"({ideal.pages} pages)", file=sys.stderr)
        if "sequential" in contenders:
            n, secs = sequential_estimate(w, truth_dir(w))
            print(f"sequential: about {n} requests one at a time, expected ~{secs:.0f} s per repetition "
                  f"({args.repeat} repetitions); leave it out with --skip sequential", file=sys.stderr)
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
        reused = load_reused(args.reuse, w, contenders)
        runs.update(reused)
        for rep in range(args.repeat):
            order = contenders if rep % 2 == 0 else list(reversed(contenders))  # alternate the order
            for contender in order:
                if contender in reused:
                    continue
                print(f"[{w.name}] {contender} repetition {rep + 1}/{args.repeat} ...", file=sys.stderr, flush=True)
                r = run_contender(contender, w, workdir, rep, args)
                runs[contender].append(r)
                lost = sum(c["missing"] for c in r["check"].values())
                print(f"  wall {_fmt(r.get('wall_s'))} s, {r['server']['requests']} requests, "
                      f"{r['server']['throttled']} throttled, missing {lost}, peak RSS {r['peak_rss_mib']:.0f} MiB, "
                      f"CPU {_fmt(r.get('cpu_run_s'))} s, server CPU {_fmt(r.get('simulator_cpu_s'))} s, "
                      f"others' load {_fmt(r.get('others_load'), 2)} cores"
                      + (f", error: {r['error']}" if r.get("error") else ""), file=sys.stderr, flush=True)
        summaries = [summarise(c, runs[c]) for c in contenders]
        command = " ".join(["bench/run_bench.py"] + sys.argv[1:])
        elapsed = time.perf_counter() - t0
        report = render(w, ideal, summaries, command, started, elapsed)
        print(report)
        if args.json:
            args.json.write_text(json.dumps({"workload": dataclasses.asdict(w), "ideal": dataclasses.asdict(ideal),
                                             "runs": runs, "summaries": summaries, "started": started.isoformat(),
                                             "elapsed_s": elapsed, "command": command}, indent=1, default=str))
        if args.write:
            write_doc(section_name(w), report)
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
