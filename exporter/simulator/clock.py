"""The simulator's notion of "now": real time by default, or set, frozen and advanced by tests.

Data visibility (history delay, late rows, retention) and ticket expiry follow this clock, so tests
move time instead of sleeping.  Throttling cool-downs, latency and GSB periods use real monotonic
time instead, because that is what a client's own timers see.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Callable

__all__ = ["SimClock"]


class SimClock:
    """A settable UTC clock; thread-safe (the server may run in another thread than the test)."""

    def __init__(
        self,
        start: datetime | None = None,
        *,
        frozen: bool | None = None,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._base = start.timestamp() if start is not None else wall()
        self._base_mono = monotonic()
        # A clock started at a fixed time stays there unless told otherwise: deterministic tests.
        self._frozen = (start is not None) if frozen is None else frozen

    @property
    def frozen(self) -> bool:
        """True when the clock only moves by :meth:`set` and :meth:`advance`."""
        return self._frozen

    def timestamp(self) -> float:
        """Now as POSIX seconds."""
        with self._lock:
            if self._frozen:
                return self._base
            return self._base + (self._monotonic() - self._base_mono)

    def now(self) -> datetime:
        """Now as an aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp(), timezone.utc)

    def now_ts(self) -> int:
        """Now in whole POSIX seconds (the wire's resolution)."""
        return int(self.timestamp())

    def set(self, when: datetime, *, frozen: bool = True) -> None:
        """Jump to ``when`` (naive means UTC); frozen there unless ``frozen=False``."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        with self._lock:
            self._base = when.timestamp()
            self._base_mono = self._monotonic()
            self._frozen = frozen

    def advance(self, seconds: float) -> None:
        """Move forward (or back, if negative) by ``seconds``."""
        with self._lock:
            self._base += seconds

    def freeze(self) -> None:
        """Stop following real time."""
        now = self.timestamp()
        with self._lock:
            self._base, self._frozen = now, True

    def resume(self) -> None:
        """Follow real time again from the current value."""
        now = self.timestamp()
        with self._lock:
            self._base, self._base_mono, self._frozen = now, self._monotonic(), False
