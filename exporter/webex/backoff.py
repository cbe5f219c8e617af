"""Delay policy for retries: exponential backoff with full jitter, and ``Retry-After``.

Pure functions: the caller owns the clock and the sleeping.  Full jitter (a uniform draw in
``[0, min(cap, base * 2**(attempt-1))]``) spreads the retries of many concurrent tasks so they do
not hit a recovering server in lock-step.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

__all__ = ["backoff_delay", "backoff_ceiling", "parse_retry_after"]


def backoff_ceiling(attempt: int, *, base: float, cap: float) -> float:
    """The largest delay ``backoff_delay`` may return for ``attempt`` (1 = first retry)."""
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    # Cap the exponent first: 2**1000 is a float overflow waiting to happen.
    return min(cap, base * (2.0 ** min(attempt - 1, 62)))


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number ``attempt``: uniform in ``[0, ceiling]`` (full jitter)."""
    ceiling = backoff_ceiling(attempt, base=base, cap=cap)
    return (rng or random).uniform(0.0, ceiling)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110 10.2.3).

    ``None`` when absent or unreadable (the caller then uses its own cool-down); a date in the
    past gives ``0.0``.  ``now`` (aware) is only consulted for the HTTP-date form.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        seconds = float(text)  # not RFC, but some servers send "1.5"
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None  # nan/inf -> unreadable
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC: HTTP-dates are GMT
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())
