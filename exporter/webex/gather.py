"""``run_all``: await many coroutines, failing fast with one plain exception (never an
``ExceptionGroup``): how the clients, the pager and the pipeline run concurrent requests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from ..errors import FatalSiteError, SitePausedError

__all__ = ["run_all"]

T = TypeVar("T")


async def run_all(coroutines: Iterable[Awaitable[T]], *, discarded: Callable[[T], None] | None = None) -> list[T]:
    """Await all, in order; on the first failure cancel the rest and raise that failure alone
    (a fatal site error wins over others).  Unlike ``TaskGroup`` this never raises an
    ``ExceptionGroup``, so callers keep catching plain exception classes.  When it raises, the
    results that had come in are passed to ``discarded`` (say, to count what they cost)."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    if not tasks:
        return []
    interrupted: BaseException | None = None  # we were cancelled ourselves
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException as exc:
        interrupted, failures = exc, []
    else:
        failures = [t.exception() for t in done if not t.cancelled() and t.exception() is not None]
        if not failures:
            return [t.result() for t in tasks]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if discarded is not None:
        for task in tasks:
            if not task.cancelled() and task.exception() is None:
                discarded(task.result())
    if interrupted is not None:
        raise interrupted
    failures.sort(key=lambda e: 0 if isinstance(e, FatalSiteError) else 1 if isinstance(e, SitePausedError) else 2)
    raise failures[0]  # type: ignore[misc]  # an interrupted wait raised above: failures are exceptions
