"""The XML client's session side: the session ticket (obtained with AuthenticateUser, renewed
before its timeToLive runs out, and once more when the server refuses it) and the site's stop
state every request checks before it is sent (:class:`~exporter.webex.site_stop.SiteStop`).  :class:`~exporter.webex.client.WebexClient` builds on it."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable

from ..config import Secret, SiteSettings
from ..errors import AuthError, FatalSiteError
from ..model.counters import Counters
from ..obs.logs import event
from .protocol import Body, BodyResponse, authenticate_body
from .site_stop import SiteStop
from .stats import StatsSink

__all__ = ["SessionKeeper", "USER_GROUP", "RENEW_FRACTION", "DEFAULT_TICKET_TTL"]


USER_GROUP = "user"  # AuthenticateUser belongs to the user operations
#: Renew the session ticket after this share of its timeToLive (the brief: at 80-90%).
RENEW_FRACTION = 0.85
DEFAULT_TICKET_TTL = 5400.0


class SessionKeeper(ABC):
    """Session ticket and stop state of one site's client (see the module docstring); the
    attributes are set by :class:`~exporter.webex.client.WebexClient`'s constructor."""

    site: SiteSettings
    _clock: Callable[[], float] | None
    _ticket: Secret | None
    _renew_at: float
    _auth_lock: asyncio.Lock
    _stop: SiteStop

    @abstractmethod
    async def _call_batch(
        self, bodies: list[Body], api_group: str, sink: StatsSink, *, authenticating: bool = False
    ) -> list[BodyResponse]:
        """Send one batch (the client's request loop; AuthenticateUser goes through it too)."""

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def _credentials(self, sink: StatsSink, *, force: bool = False) -> Secret | None:
        """The session ticket to send (renewed when due), or None for password auth."""
        self._stop.check()
        if self.site.auth == "password":
            return None
        if not force and self._ticket is not None and self._now() < self._renew_at:
            return self._ticket
        stale = self._ticket
        async with self._auth_lock:
            self._stop.check()
            # Someone else renewed while we waited for the lock: use theirs.
            if self._ticket is not stale or (not force and self._ticket is not None and self._now() < self._renew_at):
                return self._ticket
            await self._exchange_ticket(sink)
            return self._ticket

    async def _exchange_ticket(self, sink: StatsSink) -> None:
        token = self.site.access_token if self.site.auth == "token" else None
        started = self._now()
        sink.add(Counters(auth_requests=1))
        (answer,) = await self._call_batch([authenticate_body(token)], USER_GROUP, sink, authenticating=True)
        ticket = answer.text("sessionTicket")
        if not ticket:
            raise self._stop.die(AuthError(f"site {self.site.name}: AuthenticateUser returned no sessionTicket"))
        try:
            ttl = float(answer.text("timeToLive") or DEFAULT_TICKET_TTL)
        except ValueError:
            ttl = DEFAULT_TICKET_TTL
        self._ticket = Secret(ticket)
        # Timed from when we asked, not when the answer came: errs on the early side.
        self._renew_at = started + max(ttl, 0.0) * RENEW_FRACTION
        event("session ticket obtained", site=self.site.name, auth=self.site.auth,
              renew_in_seconds=round(self._renew_at - started))

    @property
    def stopped_by(self) -> FatalSiteError | None:
        """The fatal error that stopped this client (nothing more is sent), if one did."""
        return self._stop.fatal

    def _scrub(self, text: str) -> str:
        """``text`` with every secret we hold masked (servers sometimes echo what they got)."""
        for secret in (self.site.password, self.site.access_token, self._ticket):
            if secret is not None and secret.reveal():
                text = text.replace(secret.reveal(), "***")
        return text
