"""Fault injection state: the one-shot queue, seeded fault rates, rate limits, GSB backup periods.

Settings are :class:`FaultSettings` (frozen); this class holds what changes per request.  Rates use
an RNG seeded from the simulator seed, so the same request sequence meets the same faults.  Rate
limits, cool-downs, GSB periods and latency use real monotonic time: they model what a client's
own timers experience.
"""

from __future__ import annotations

import dataclasses
import math
import random
import socket
import struct
import threading
import time
from collections import deque
from typing import Any, Callable, Sequence

from .fault_settings import FAULT_KINDS, FaultSettings, QueuedFault

__all__ = ["FaultState", "api_group", "damage_body", "reset_connection"]

_GENERAL_OPERATIONS = {"getsite", "getapiversion", "lsttimezone"}


def api_group(operation: str, groups: dict[str, str]) -> str:
    """The throttling group of an operation: the dataset's ``api_group``, ``user`` or ``general``."""
    low = operation.lower()
    if low in ("authenticateuser", "getuser"):
        return "user"
    if low in _GENERAL_OPERATIONS:
        return "general"
    return groups.get(low, "meeting_list")


def reset_connection(request: Any) -> None:
    """Reset an aiohttp request's TCP connection: the client sees "connection reset by peer"."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        # Linger 0: the close sends RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if request.transport is not None:
        request.transport.abort()


def damage_body(payload: bytes, fault: str | None, *, keep_at_least: int, after: bytes, junk: bytes) -> bytes:
    """``payload`` as fault ``fault`` serves it: ``truncate`` cuts it to three fifths (at least
    ``keep_at_least`` bytes), ``malformed`` puts ``junk`` after the first ``after``; else as is."""
    if fault == "truncate":
        return payload[: max(keep_at_least, len(payload) * 3 // 5)]
    if fault == "malformed":
        return payload.replace(after, after + junk, 1)
    return payload


@dataclasses.dataclass(slots=True)
class _Pending:
    """A queued fault still waiting: ``count`` more requests (of ``operation``, when set) get ``kind``."""

    kind: str
    count: int
    operation: str | None


class FaultState:
    """Decides, request by request, which fault (if any) applies; thread-safe."""

    def __init__(self, settings: FaultSettings, seed: int, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._rng = random.Random(f"{seed}|faults")
        self._latency_rng = random.Random(f"{seed}|latency")
        self._queue: list[_Pending] = []
        self._windows: dict[tuple[str, str], deque[tuple[float, int]]] = {}
        self._blocked: dict[tuple[str, str], float] = {}
        self._rest_windows: dict[str, deque[float]] = {}
        self._gsb_until = 0.0
        self._gsb_left = 0
        self.settings = settings
        self._arm(settings, queue=True, gsb=True)

    def _arm(self, settings: FaultSettings, *, queue: bool, gsb: bool) -> None:
        self.settings = settings
        if queue:
            self._queue = [_Pending(q.kind, q.count, q.operation) for q in settings.queue]
        if gsb:
            now = self._monotonic()
            self._gsb_until = now + settings.gsb_backup_seconds if settings.gsb_backup_seconds else 0.0
            self._gsb_left = settings.gsb_backup_requests

    def replace(self, settings: FaultSettings) -> None:
        """Use ``settings`` from now on: queue, GSB period and rate-limit windows start afresh."""
        with self._lock:
            self._windows.clear()
            self._blocked.clear()
            self._rest_windows.clear()
            self._arm(settings, queue=True, gsb=True)

    def update(self, **changes: Any) -> FaultSettings:
        """Change some knobs; the queue and GSB state are re-armed only if their knobs change."""
        with self._lock:
            settings = dataclasses.replace(self.settings, **changes)
            if {"rate_limit_per_minute", "rate_limits", "throttle_cooldown_seconds", "rate_limit_unit",
                    "rate_limit_window_seconds"} & changes.keys():
                self._windows.clear()
                self._blocked.clear()
            if {"rest_rate_limit_per_minute", "rate_limit_window_seconds"} & changes.keys():
                self._rest_windows.clear()
            self._arm(settings, queue="queue" in changes,
                      gsb=bool({"gsb_backup_seconds", "gsb_backup_requests"} & changes.keys()))
            return settings

    def enqueue(self, kind: str, count: int = 1, operation: str | None = None) -> None:
        """The next ``count`` requests (carrying ``operation``, when given) get fault ``kind``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._queue.append(_Pending(kind, count, operation))

    def pending(self) -> list[QueuedFault]:
        """What is left in the one-shot queue."""
        with self._lock:
            return [QueuedFault(p.kind, p.count, p.operation) for p in self._queue]

    def draw(self, operations: Sequence[str], kinds: frozenset[str] | None = None) -> str | None:
        """The fault for a request carrying ``operations``: queued first, then by rate.  With
        ``kinds``, only faults of those kinds apply (the others stay queued / are not drawn)."""
        lowered = {op.lower() for op in operations}
        with self._lock:
            for entry in self._queue:
                kind, operation = entry.kind, entry.operation
                if kinds is not None and kind not in kinds:
                    continue
                if operation is None or operation.lower() in lowered:
                    entry.count -= 1
                    if entry.count <= 0:
                        self._queue.remove(entry)
                    return kind
            for kind in FAULT_KINDS:
                if kinds is not None and kind not in kinds:
                    continue
                rate = self.settings.rate(kind)
                if rate and self._rng.random() < rate:
                    return kind
        return None

    def throttled(self, site: str, group: str, bodies: int = 1) -> bool:
        """True if this request (carrying ``bodies`` bodyContent elements of the group) exceeds the
        group's limit in the sliding window, or falls in its cool-down.  The limit counts requests,
        or bodies with ``rate_limit_unit = "bodies"``."""
        limit = self.settings.limit_for(group)
        if not limit:
            return False
        cost = max(1, bodies) if self.settings.rate_limit_unit == "bodies" else 1
        key = (site.lower(), group)
        now = self._monotonic()
        with self._lock:
            blocked = self._blocked.get(key, 0.0)
            if now < blocked:
                return True
            window = self._windows.setdefault(key, deque())
            if blocked:
                # The cool-down is over: a fresh budget, as after the real service's 60 s block.
                del self._blocked[key]
                window.clear()
            while window and window[0][0] <= now - self.settings.rate_limit_window_seconds:
                window.popleft()
            if sum(n for _, n in window) + cost > limit:
                self._blocked[key] = now + self.settings.throttle_cooldown_seconds
                return True
            window.append((now, cost))
            return False

    def rest_throttled(self, token: str) -> int | None:
        """None if this REST request (by access ``token``) fits ``rest_rate_limit_per_minute`` in the
        sliding window, else the seconds until it would (the 429's Retry-After, at least 1)."""
        limit = self.settings.rest_rate_limit_per_minute
        if not limit:
            return None
        span = self.settings.rate_limit_window_seconds
        now = self._monotonic()
        with self._lock:
            window = self._rest_windows.setdefault(token, deque())
            while window and window[0] <= now - span:
                window.popleft()
            if len(window) >= limit:
                return max(1, math.ceil(window[0] + span - now))
            window.append(now)
            return None

    def gsb_backup(self) -> bool:
        """True while a BACKUP period lasts (counts one request of a request-bounded period)."""
        with self._lock:
            if self._gsb_left > 0:
                self._gsb_left -= 1
                return True
            return self._monotonic() < self._gsb_until

    def latency(self) -> float:
        """Seconds to wait before answering (fixed plus seeded uniform jitter)."""
        s = self.settings
        if not s.latency_ms and not s.latency_jitter_ms:
            return 0.0
        with self._lock:
            jitter = self._latency_rng.uniform(0, s.latency_jitter_ms) if s.latency_jitter_ms else 0.0
        return (s.latency_ms + jitter) / 1000.0

    def describe(self) -> dict[str, Any]:
        """Settings plus live state, for ``GET /_sim/faults``."""
        out = self.settings.to_dict()
        now = self._monotonic()
        with self._lock:
            out["queue"] = [{"kind": p.kind, "count": p.count, "operation": p.operation} for p in self._queue]
            out["gsb_backup_active"] = self._gsb_left > 0 or now < self._gsb_until
            out["throttled_groups"] = sorted(f"{s}/{g}" for (s, g), until in self._blocked.items() if now < until)
        return out
