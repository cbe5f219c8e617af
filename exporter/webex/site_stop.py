"""Why a site's client sends nothing more: the stop state every request checks before it is
sent, shared by the XML client, the REST client and the REST token manager.

Two kinds of stop:
- *fatal* (credentials refused, a redirect, a failed certificate check, ...): for the rest of the
  client's life.  The first cause is kept and logged once; later ones are usually its echoes.
- *held*: the server asked for a Retry-After above ``max_retry_after_seconds``.  Rather than
  sleep, nothing is sent before that loop time (a later run in ``serve`` asks again).
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TypeVar

from ..errors import FatalSiteError, RetryAfterTooLongError
from ..obs.logs import event

__all__ = ["SiteStop"]

FatalT = TypeVar("FatalT", bound=FatalSiteError)


class SiteStop:
    """The stop state of one site's client (see the module docstring)."""

    def __init__(self, site: str) -> None:
        self.site = site
        self.fatal: FatalSiteError | None = None
        self._held_until = -math.inf
        self._held_message = ""

    def check(self) -> None:
        """Raise why nothing may be sent now, if anything stops it (a fresh exception per caller:
        one shared instance would collect every caller's traceback)."""
        if self.fatal is not None:
            raise type(self.fatal)(str(self.fatal))
        left = self._held_until - asyncio.get_running_loop().time()
        if left > 0:
            raise RetryAfterTooLongError(self._held_message, delay=left)

    def die(self, error: FatalT, *, message: str | None = "stopping the site") -> FatalT:
        """Remember ``error`` (unless an earlier fatal error is kept) and return it to raise:
        every later :meth:`check` raises the kept one without sending anything.  ``message``:
        what to log the first time (None: the caller's own stop logs it)."""
        if self.fatal is None:
            self.fatal = error
            if message is not None:
                event(message, level=logging.ERROR, site=self.site, error=str(error))
        return error

    def hold(self, wait: float, code: str, limit: float, *, what: str | None = None) -> RetryAfterTooLongError:
        """The server asked for ``wait`` seconds (``code``), above ``limit``: stop the site until
        then and return the error to raise.  ``what``: the request, when the message should name it."""
        self._held_until = max(self._held_until, asyncio.get_running_loop().time() + wait)
        asked = f"{what}: " if what else ""
        self._held_message = (f"site {self.site}: {asked}the server asked us to wait {wait:.0f} s ({code}, "
                              f"Retry-After), more than max_retry_after_seconds = {limit:g}; stopping this site "
                              "for this run")
        event("Retry-After too long; stopping this site for this run", level=logging.ERROR, site=self.site,
              error=self._held_message)
        return RetryAfterTooLongError(self._held_message, delay=wait)
