"""Request counters for ``GET /_sim/stats``: tests use them to bound what a client sent."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

__all__ = ["Stats"]


class Stats:
    """Thread-safe counters of requests, bodies, results, throttles and injected faults; REST
    requests are counted apart (``rest_*``), so the XML counters mean what they always did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self._requests = 0
            self._bodies = 0
            self._records = 0
            self._throttled = 0
            self._by_operation: Counter[str] = Counter()
            self._exceptions: Counter[str] = Counter()
            self._faults: Counter[str] = Counter()
            self._http: Counter[int] = Counter()
            self._rest_requests = 0
            self._rest_items = 0
            self._rest_by_endpoint: Counter[str] = Counter()
            self._rest_http: Counter[int] = Counter()

    def request(self, operations: list[str]) -> None:
        """A request arrived carrying ``operations``."""
        with self._lock:
            self._requests += 1
            self._by_operation.update(operations or ["(none)"])

    def body(self, exception_id: str = "", records: int = 0) -> None:
        """One bodyContent was answered (``exception_id`` when it failed)."""
        with self._lock:
            self._bodies += 1
            self._records += records
            if exception_id:
                self._exceptions[exception_id] += 1
                if exception_id == "000045":
                    self._throttled += 1

    def fault(self, kind: str) -> None:
        """A fault of ``kind`` was injected."""
        with self._lock:
            self._faults[kind] += 1

    def http(self, status: int) -> None:
        """A response went out with HTTP ``status``."""
        with self._lock:
            self._http[status] += 1

    def rest_request(self, endpoint: str) -> None:
        """A REST request arrived for ``endpoint`` (``rest:/meetingReports/usage``)."""
        with self._lock:
            self._rest_requests += 1
            self._rest_by_endpoint[endpoint] += 1

    def rest_response(self, status: int, items: int = 0) -> None:
        """A REST response went out with HTTP ``status`` carrying ``items`` list items."""
        with self._lock:
            self._rest_http[status] += 1
            self._rest_items += items

    def snapshot(self) -> dict[str, Any]:
        """All counters as plain JSON-friendly values."""
        with self._lock:
            return {
                "requests": self._requests,
                "bodies": self._bodies,
                "records": self._records,
                "throttled": self._throttled,
                "requests_by_operation": dict(self._by_operation),
                "exceptions": dict(self._exceptions),
                "faults": dict(self._faults),
                "http_status": {str(k): v for k, v in self._http.items()},
                "rest_requests": self._rest_requests,
                "rest_items": self._rest_items,
                "rest_requests_by_endpoint": dict(self._rest_by_endpoint),
                "rest_http_status": {str(k): v for k, v in self._rest_http.items()},
            }
