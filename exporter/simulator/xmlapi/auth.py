"""Who is calling: password, session ticket or access token in the security context.

Failures raise :class:`Refusal` with the codes of :mod:`exporter.model.webex_codes`.  Tickets expire on
the simulator clock, so a test advances the clock past ``ticket_ttl_seconds`` instead of waiting.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

from ...model import webex_codes as codes
from ..clock import SimClock
from ..config import SimulatorConfig
from ..site_config import SiteConfig
from .request import Refusal

__all__ = ["Identity", "Ticket", "Authenticator", "NoCredentials"]


class NoCredentials(Refusal):
    """The security context names a site but carries no credentials at all."""

    def __init__(self) -> None:
        super().__init__(codes.USER_NOT_FOUND, "Corresponding User not found")


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller."""

    site: SiteConfig
    webex_id: str


@dataclass(frozen=True, slots=True)
class Ticket:
    """A session ticket: who it is for and when it stops working (simulator clock, POSIX seconds)."""

    value: str
    identity: Identity
    created: float
    expires: float


class Authenticator:
    """Checks credentials and issues session tickets (thread-safe)."""

    def __init__(self, config: SimulatorConfig, clock: SimClock) -> None:
        self.config = config
        self.clock = clock
        self._tickets: dict[str, Ticket] = {}
        self._failures: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def site(self, security: dict[str, str]) -> SiteConfig:
        """The site the request names, or a Refusal (fatal for a client: wrong configuration)."""
        name = security.get("siteName", "")
        site = self.config.site(name) if name else None
        if site is None:
            raise Refusal(codes.USER_NOT_FOUND, f"Corresponding site not found: {name!r}")
        return site

    def _user(self, site: SiteConfig, security: dict[str, str]) -> str | None:
        wanted = security.get("webExID") or security.get("email", "").partition("@")[0]
        for webex_id, _ in site.users:
            if webex_id.lower() == wanted.lower():
                return webex_id
        return None

    def authenticate(self, security: dict[str, str]) -> Identity:
        """The caller, from password, sessionTicket or webExAccessToken (in that order)."""
        site = self.site(security)
        if "password" in security:
            return self._password(site, security)
        if "sessionTicket" in security:
            return self._ticket(site, security["sessionTicket"])
        if "webExAccessToken" in security:
            return self.token_identity(site, security["webExAccessToken"])
        raise NoCredentials()

    def _password(self, site: SiteConfig, security: dict[str, str]) -> Identity:
        webex_id = self._user(site, security)
        if webex_id is None:
            raise Refusal(codes.USER_NOT_FOUND, "Corresponding User not found")
        key = (site.name, webex_id)
        limit = self.config.lockout_after_failures
        with self._lock:
            if limit and self._failures.get(key, 0) >= limit:
                raise Refusal(codes.ACCOUNT_LOCKED, "User account is locked")
            if site.users_dict[webex_id] != security["password"]:
                self._failures[key] = self._failures.get(key, 0) + 1
                raise Refusal(codes.BAD_PASSWORD, "Incorrect user or password")
            self._failures.pop(key, None)
        return Identity(site, webex_id)

    def _ticket(self, site: SiteConfig, value: str) -> Identity:
        with self._lock:
            ticket = self._tickets.get(value)
        if ticket is None or ticket.identity.site.name != site.name or self.clock.timestamp() >= ticket.expires:
            raise Refusal(codes.TICKET_EXPIRED, "Session ticket is expired or invalid")
        return ticket.identity

    def token_identity(self, site: SiteConfig, token: str) -> Identity:
        """The user an access token signs in as, or TOKEN_INVALID."""
        webex_id = dict(site.access_tokens).get(token)
        if webex_id is None:
            raise Refusal(codes.TOKEN_INVALID, "WebEx access token is invalid")
        return Identity(site, next(u for u, _ in site.users if u.lower() == webex_id.lower()))

    def issue(self, identity: Identity) -> Ticket:
        """A new session ticket for ``identity`` (AuthenticateUser)."""
        now = self.clock.timestamp()
        ticket = Ticket(secrets.token_hex(24), identity, now, now + self.config.ticket_ttl_seconds)
        with self._lock:
            # Drop expired tickets so a long run does not accumulate them.
            for value in [v for v, t in self._tickets.items() if t.expires <= now]:
                del self._tickets[value]
            self._tickets[ticket.value] = ticket
        return ticket

    def expire_all(self) -> int:
        """Invalidate every ticket (a test's "the server forgot us"); returns how many."""
        with self._lock:
            count = len(self._tickets)
            self._tickets.clear()
        return count
