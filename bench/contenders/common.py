"""What every contender and the harness share: the workload, the wire format the baselines
write by hand, and the natural-key normalisation used to count what landed.

The baselines build requests and read responses with their own code (string templates, lxml or
ElementTree), as a user of a general tool would; only the dataset registry (operation names,
element names, column types, natural keys) is shared with the exporter, because it describes
the API, not our implementation of it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from exporter.model.dataset_spec import Dataset
from exporter.model.datasets import by_name

__all__ = [
    "Workload",
    "PROFILES",
    "REALISTIC_WORLD_KNOBS",
    "RESULT_PREFIX",
    "DAY",
    "RETENTION_MARGIN_SECONDS",
    "bench_range",
    "day_slices",
    "wire_time",
    "list_request",
    "Limiter",
    "usage",
]

#: A worker prints its result as one line starting with this (everything else is log noise).
RESULT_PREFIX = "BENCH-RESULT "
DAY = 86_400
#: The exporter stays this far inside the 90-day retention (exporter.model.windows.RETENTION_MARGIN);
#: every contender lists the same range so none is charged for a margin another one skips.
RETENTION_MARGIN_SECONDS = 600
#: Simulator profiles a workload can run against (``Workload.profile``).
PROFILES = ("default", "realistic")
#: What ``profile = "realistic"`` takes from exporter/simulator/profiles/realistic.toml: the knobs that
#: change what the server holds and how it pages and words its answers (twins, unstable tie order,
#: a localized 000053), plus the first site's ``default_time_zone_id`` (Beijing).  The profile's
#: late rows, revisions and growing recording counters stay off on purpose: the benchmark measures
#: one backfill against a frozen clock, where a row due later is in neither the listing nor the
#: ground truth and one already due is an ordinary row, so what they test (an incremental run's
#: lookback) never comes into play.  The simulator's default late rows (2 %, one day) stay as in
#: "default", so both profiles hold the same rows apart from the twins.
REALISTIC_WORLD_KNOBS = ("twin_fraction", "call_in_twin_share", "near_twin_fraction", "unstable_tie_order",
                         "body_content_limit_reason")
SERV_NS = "http://www.webex.com/schemas/2002/06/service"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"


@dataclass(frozen=True)
class Workload:
    """One benchmark workload: the simulated world, the server's behaviour, the client limits.

    Same seed and sizes -> the same records, so every contender gets an identical fresh server.
    ``now`` freezes the simulator clock (data visibility) and is what every contender calls now.
    ``profile`` is "default" (the simulator's plain world) or "realistic" (its world knobs from the
    realistic profile, see :data:`REALISTIC_WORLD_KNOBS`); size, latency, rate limit and seed stay
    the workload's either way.
    """

    name: str = "small"
    seed: int = 7
    days: int = 90
    meetings_per_day: int = 56
    attendees_per_meeting: int = 10
    datasets: tuple[str, ...] = ("meeting_usage", "meeting_attendees")
    latency_ms: float = 300.0
    rate_limit: int = 600  # requests per minute per API group (0: none)
    throttle_cooldown_seconds: float = 60.0
    body_content_limit: int = 10
    now: str = "2026-11-20T12:00:00+00:00"
    site: str = "bench"
    user: str = "admin"
    password: str = "sim-password"
    # Client-side limits, the same for every contender that can use them.
    concurrency: int = 8
    page_size: int = 500
    bodies_per_request: int = 10  # ours only: pages per HTTP request (bodyContent elements), the config default
    window_hours: int = 24
    profile: str = "default"

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile {self.profile!r}: want one of {', '.join(PROFILES)}")

    def to_json(self) -> str:
        """JSON text (round-trips through :meth:`from_json`)."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Workload:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        data["datasets"] = tuple(data["datasets"])
        return cls(**data)

    @property
    def now_dt(self) -> datetime:
        """``now`` as an aware datetime."""
        return datetime.fromisoformat(self.now).astimezone(timezone.utc)

    @property
    def dataset_objs(self) -> list[Dataset]:
        """The datasets, from the registry."""
        return [by_name(n) for n in self.datasets]

    def cache_key(self) -> str:
        """What determines the simulated records (for caching ground truth)."""
        parts = (self.seed, self.days, self.meetings_per_day, self.attendees_per_meeting, ",".join(self.datasets),
                 self.now, self.site, self.profile)
        return "-".join(str(p) for p in parts).replace(":", "").replace("+", "p").replace(",", "_")

    def simulator_config(self) -> Any:
        """The :class:`exporter.simulator.SimulatorConfig` for this workload (imported lazily)."""
        from exporter.simulator.config import SimulatorConfig
        from exporter.simulator.fault_settings import FaultSettings
        from exporter.simulator.site_config import SiteConfig

        everything = len(self.datasets) > 2 or any(
            d not in ("meeting_usage", "meeting_attendees") for d in self.datasets
        )
        # Only meetings when only the two meeting datasets are measured: the other session
        # kinds would just cost generation time and memory in the server process.
        others = None if everything else 0
        site = SiteConfig(self.site, users=((self.user, self.password),))
        world: dict[str, Any] = {}
        if self.profile == "realistic":
            # Read from the profile file, so the benchmark follows the profile when it changes.
            from exporter.simulator import load_profile

            realistic = load_profile("realistic")
            world = {name: getattr(realistic, name) for name in REALISTIC_WORLD_KNOBS}
            site = dataclasses.replace(site, default_time_zone_id=realistic.sites[0].default_time_zone_id)
        return SimulatorConfig(
            seed=self.seed,
            sites=(site,),
            days=self.days,
            meetings_per_day=self.meetings_per_day,
            attendees_per_meeting=self.attendees_per_meeting,
            training_per_day=others,
            events_per_day=others,
            support_per_day=others,
            access_anywhere_per_day=others,
            body_content_limit=self.body_content_limit,
            faults=FaultSettings(
                latency_ms=self.latency_ms,
                rate_limit_per_minute=self.rate_limit,
                throttle_cooldown_seconds=self.throttle_cooldown_seconds,
            ),
            now=self.now_dt,
            **world,
        )


def bench_range(w: Workload) -> tuple[datetime, datetime]:
    """``[since, until)``: the range every contender lists.

    From the first simulated day (the simulator generates ``days`` UTC days ending today) or the
    retention horizon plus the exporter's safety margin, whichever is later, to ``now``.
    """
    now = w.now_dt
    first_day = int(now.timestamp()) // DAY - w.days + 1
    horizon = now - timedelta(days=90) + timedelta(seconds=RETENTION_MARGIN_SECONDS)
    return max(horizon, datetime.fromtimestamp(first_day * DAY, timezone.utc)), now


def day_slices(since: datetime, until: datetime, seconds: int = DAY) -> list[tuple[datetime, datetime]]:
    """The Splunk add-on's slicing (``get_slice_time``): consecutive ``seconds``-long slices from
    ``since``, each ``(start, end)`` inclusive at both ends with one-second resolution, the last
    one clipped to ``until - 1 s``."""
    out = []
    start = since
    last = until - timedelta(seconds=1)
    while start <= last:
        end = min(start + timedelta(seconds=seconds - 1), last)
        out.append((start, end))
        start = end + timedelta(seconds=1)
    return out


def wire_time(moment: datetime) -> str:
    """``MM/DD/YYYY HH:MM:SS`` in UTC (every baseline asks for timeZoneID 20 = GMT)."""
    t = moment.astimezone(timezone.utc)
    return f"{t.month:02d}/{t.day:02d}/{t.year:04d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def list_request(w: Workload, ds: Dataset, start: datetime, end_inclusive: datetime, start_from: int,
                 maximum_num: int, *, time_zone_id: int = 20) -> bytes:
    """One list request for one page, built from a text template like the Splunk add-on's
    ``xml_format`` (one bodyContent; the registry's scope element, order and extras)."""
    scope = ds.time_scope
    zone_inside = f"<timeZoneID>{time_zone_id}</timeZoneID>" if ds.sends_time_zone_id and scope.zone_inside else ""
    zone_outside = (
        f"<timeZoneID>{time_zone_id}</timeZoneID>" if ds.sends_time_zone_id and not scope.zone_inside else ""
    )
    order = "".join(f"<orderBy>{by}</orderBy><orderAD>{ad}</orderAD>" for by, ad in ds.order)
    extras = "".join(f"<{k}>{v}</{k}>" for k, v in ds.request_extras)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<serv:message xmlns:serv="{SERV_NS}" xmlns:xsi="{XSI_NS}">'
        f"<header><securityContext><webExID>{escape(w.user)}</webExID><password>{escape(w.password)}</password>"
        f"<siteName>{escape(w.site)}</siteName></securityContext></header>"
        f'<body><bodyContent xsi:type="{ds.xsi_type}">'
        f"<listControl><startFrom>{start_from}</startFrom><maximumNum>{maximum_num}</maximumNum>"
        f"<listMethod>AND</listMethod></listControl>"
        f"<order>{order}</order>"
        f"<{scope.container}><{scope.start}>{wire_time(start)}</{scope.start}>"
        f"<{scope.end}>{wire_time(end_inclusive)}</{scope.end}>{zone_inside}</{scope.container}>"
        f"{extras}{zone_outside}"
        "</bodyContent></body></serv:message>"
    ).encode("utf-8")


class Limiter:
    """A hand-written, thread-safe request budget for the dlt baseline.

    Requests are evenly spaced ``60 / rate`` seconds apart, and -- because a server that allows
    ``rate`` requests in any 60 s counts *arrivals*, which jitter -- never more than ``rate - 2``
    are booked in any trailing 60.5 s.  A throttle answer starts a shared cool-down.  dlt has no
    rate limiter of its own (its docs suggest ``time.sleep`` or a library), so this is added by
    hand, as ../shared/lessons-from-peers.md section 6 says.  (A first version without the
    trailing-window cap tripped the simulator's limit once per run and lost 60 s to the block.)
    """

    MARGIN = 2
    SLACK_SECONDS = 0.5

    def __init__(self, per_minute: int, *, period: float = 60.0) -> None:
        self.interval = period / per_minute if per_minute > 0 else 0.0
        self.cap = max(1, per_minute - self.MARGIN) if per_minute > 0 else 0
        self.window = period + self.SLACK_SECONDS
        self._booked: deque[float] = deque()
        self._next = 0.0
        self._blocked_until = 0.0
        self._lock = threading.Lock()
        self.waited = 0.0
        self.cooldowns = 0  # throttle answers seen (one episode may answer several requests)

    def acquire(self) -> None:
        """Block until this thread may send one request."""
        while True:
            with self._lock:
                now = time.monotonic()
                if self._blocked_until > now:
                    wait, booked = self._blocked_until - now, False
                else:
                    slot = max(now, self._next)
                    if self.cap:
                        while self._booked and self._booked[0] <= slot - self.window:
                            self._booked.popleft()
                        if len(self._booked) >= self.cap:
                            slot = max(slot, self._booked[-self.cap] + self.window)
                        self._booked.append(slot)
                    self._next = slot + self.interval
                    wait, booked = slot - now, True
                self.waited += max(0.0, wait)
            if wait > 0:
                time.sleep(wait)
            if booked:
                with self._lock:  # a cool-down may have started while we waited for our slot
                    if self._blocked_until <= time.monotonic():
                        return

    def cool_down(self, seconds: float) -> None:
        """A throttle answer arrived: nobody sends for ``seconds``."""
        with self._lock:
            self.cooldowns += 1
            self._blocked_until = max(self._blocked_until, time.monotonic() + seconds)
            self._next = max(self._next, self._blocked_until)


def usage() -> dict[str, float]:
    """CPU seconds of this process (and waited-for children) so far, and its peak RSS in MiB.

    Peak RSS is ``VmHWM`` from /proc/self/status, not ``ru_maxrss``: on Linux a process started by
    fork/vfork + exec inherits its parent's high-water mark into ``ru_maxrss`` (the harness's own
    memory would show up as the contender's), while ``VmHWM`` belongs to this process image only.
    """
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_s": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
        "peak_rss_mib": vm_hwm_mib(),
    }


def vm_hwm_mib(pid: int | str = "self") -> float | None:
    """Peak resident set size of a process image (``VmHWM``), MiB; None when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return None


def _descendants(pid: int) -> list[int]:
    """``pid``'s children, grandchildren, ... (from /proc/<pid>/task/*/children).  Plain ``os``
    calls: this runs in the measured process, every sample, so it must cost next to nothing."""
    out: list[int] = []
    stack = [pid]
    while stack:
        parent = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children", "rb") as handle:
                    kids = [int(k) for k in handle.read().split()]
            except (OSError, ValueError):
                continue
            out += kids
            stack += kids
    return out


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class TreeRss:
    """The peak of (this process + all its descendants) resident memory, sampled every ``period``
    seconds in a thread.  A contender that parses in worker processes must be charged for them:
    ``VmHWM`` covers one process image only."""

    def __init__(self, period: float = 0.1) -> None:
        self.period = period
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-rss", daemon=True)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = os.getpid()
        while True:
            total = sum(_rss_kib(pid) for pid in [me, *_descendants(me)])
            self.peak_kib = max(self.peak_kib, total)
            if self._stop.wait(self.period):
                return

    @property
    def peak_mib(self) -> float:
        """The largest sum seen, MiB."""
        return self.peak_kib / 1024.0


@dataclass
class Outcome:
    """What a contender reports about itself (the harness adds server stats and the data check)."""

    contender: str
    variant: str
    wall_s: float = 0.0
    output: str = ""  # where the data landed (for the check)
    output_kind: str = ""  # "parquet" | "jsonl"
    table_paths: dict[str, str] = field(default_factory=dict)  # dataset -> glob / file
    client_requests: int | None = None
    client_throttles: int | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> str:
        """One JSON line."""
        return json.dumps(dataclasses.asdict(self))


def write_result(path: Path, data: dict[str, Any]) -> None:
    """Write a worker's result file atomically."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    tmp.replace(path)
