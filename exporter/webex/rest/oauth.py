"""OAuth for the REST source: the token endpoint, when to refresh, and which scopes are missing.

``POST token_url`` (form-encoded) with ``grant_type=refresh_token, client_id, client_secret,
refresh_token`` (or ``grant_type=authorization_code, ..., code, redirect_uri``) answers
``access_token, expires_in, refresh_token, refresh_token_expires_in, scope``
(``../shared/webex-rest-api.md`` §4).  :class:`TokenEndpoint` asks it (through a ``send``
function the client provides, so this module never sees aiohttp) and :class:`TokenManager`
decides when:

* when the access token has less than :data:`REFRESH_MARGIN_SECONDS` left (on the wall clock:
  expiries are persisted), and on a 401 (the client asks :meth:`TokenManager.renew` once per
  request; a second 401 is fatal);
* under the store's lock, after reading the file again: another task or process may have
  refreshed already, and its (rotated) tokens are used instead of refreshing twice;
* the new tokens are saved **before** the new access token is handed out.

A refused refresh (``invalid_grant``, a 400 or 401 from the token endpoint) stops the site with
:class:`~exporter.errors.ReauthorizeError`, which says how to authorize again; nothing is sent
after it.  No token, code or client secret appears in an error, a log line or a repr: server text
is scrubbed of every secret the request carried.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...config import RestSettings, Secret, ThrottleSettings
from ...errors import (
    AuthError,
    CertificateError,
    EndpointError,
    ReauthorizeError,
    RedirectError,
    RetryAfterTooLongError,
    ThrottledError,
    TransportError,
)
from ...obs.logs import event
from ..backoff import backoff_delay
from ..site_stop import SiteStop
from .classify import RawReply, RestOutcome, classify_rest, decode_json
from .tokens import Tokens, TokenStore, reauthorize_hint, split_scopes

__all__ = [
    "REFRESH_MARGIN_SECONDS",
    "SendForm",
    "TokenGrant",
    "TokenEndpoint",
    "TokenManager",
    "parse_grant",
]


#: Refresh when the access token has less than this left (Webex's last ~14 days).
REFRESH_MARGIN_SECONDS = 600.0

#: ``await send(url, form)``: one form-encoded POST, as a :class:`RawReply` (never raises for
#: network failures: they come back with ``status`` None).
SendForm = Callable[[str, Mapping[str, str]], Awaitable[RawReply]]


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) and value >= 0 else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) and number >= 0 else None
    return None


def _at(now: float, seconds: float | None) -> float | None:
    """When something ``seconds`` from ``now`` expires, in whole seconds (rounded down: the file
    keeps whole seconds, and early is the safe side)."""
    return None if seconds is None else float(math.floor(now + seconds))


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """One answer of the token endpoint (``scope`` None: the answer did not say)."""

    access_token: Secret
    expires_in: float | None
    refresh_token: Secret | None
    refresh_token_expires_in: float | None
    scope: tuple[str, ...] | None

    def tokens(self, now: float, previous: Tokens | None = None, *, previous_refresh: Secret | None = None) -> Tokens:
        """What to store after this grant at wall time ``now``: its tokens, and for what it left
        out (no new refresh token, no scope) what was stored before."""
        if self.refresh_token is not None:
            refresh, refresh_expires = self.refresh_token, _at(now, self.refresh_token_expires_in)
        elif previous is not None:
            refresh, refresh_expires = previous.refresh_token, previous.refresh_expires_at
        elif previous_refresh is not None:
            refresh, refresh_expires = previous_refresh, None
        else:
            raise ValueError("a grant without a refresh token needs the previous one")
        scope = self.scope if self.scope is not None else (previous.scope if previous is not None else ())
        return Tokens(
            refresh_token=refresh,
            refresh_expires_at=refresh_expires,
            access_token=self.access_token,
            access_expires_at=_at(now, self.expires_in),
            scope=scope,
        )


def parse_grant(document: Any, *, site: str = "") -> TokenGrant:
    """A token endpoint's JSON answer; :class:`AuthError` when it holds no access token."""
    if not isinstance(document, dict) or not isinstance(document.get("access_token"), str) or not (
        document["access_token"].strip()
    ):
        keys = sorted(document)[:8] if isinstance(document, dict) else type(document).__name__
        raise AuthError(f"site {site}: the token endpoint answered without an access_token (got {keys})")
    refresh = document.get("refresh_token")
    return TokenGrant(
        access_token=Secret(document["access_token"].strip()),
        expires_in=_seconds(document.get("expires_in")),
        refresh_token=Secret(refresh.strip()) if isinstance(refresh, str) and refresh.strip() else None,
        refresh_token_expires_in=_seconds(document.get("refresh_token_expires_in")),
        scope=split_scopes(document["scope"]) if document.get("scope") is not None else None,
    )


def _oauth_error(body: Any) -> str:
    """The OAuth ``error`` code of an error answer (``invalid_grant``), or ""."""
    if not isinstance(body, bytes):
        return ""
    kind, document = decode_json(body)
    if kind == "ok" and isinstance(document, dict) and isinstance(document.get("error"), str):
        return str(document["error"]).strip()[:60]
    return ""


class TokenEndpoint:
    """Asks one site's token endpoint (``rest.token_url``) for tokens, retrying transient
    failures (5xx, resets, timeouts, 429 with its ``Retry-After`` up to
    ``max_retry_after_seconds``) up to ``max_attempts`` times; everything else is final."""

    def __init__(
        self,
        rest: RestSettings,
        send: SendForm,
        *,
        site: str,
        settings: ThrottleSettings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.rest = rest
        self.site = site
        self._send = send
        self._settings = settings or ThrottleSettings()
        self._rng = rng or random.Random()
        self.requests = 0

    def __repr__(self) -> str:
        return f"TokenEndpoint(site={self.site!r}, token_url={self.rest.token_url!r})"

    async def refresh(self, refresh_token: Secret) -> TokenGrant:
        """Exchange a refresh token for new tokens (the answer's refresh token replaces it)."""
        form = {"grant_type": "refresh_token", **self._client(), "refresh_token": refresh_token.reveal()}
        return await self._ask(form, "refresh token", (refresh_token,))

    async def exchange_code(self, code: Secret, redirect_uri: str) -> TokenGrant:
        """Exchange an authorization code (``redirect_uri`` exactly as in the authorize request)."""
        form = {"grant_type": "authorization_code", **self._client(), "code": code.reveal(),
                "redirect_uri": redirect_uri}
        return await self._ask(form, "authorization code", (code,))

    def _client(self) -> dict[str, str]:
        if self.rest.client_secret is None or not self.rest.client_secret.reveal():
            raise AuthError(f"site {self.site}: no client secret for the REST integration (set [sites.rest] "
                            "client_secret_env or put client_secret in the secrets file)")
        return {"client_id": self.rest.client_id, "client_secret": self.rest.client_secret.reveal()}

    def _scrub(self, text: str, secrets: Iterable[Secret]) -> str:
        for secret in (*secrets, self.rest.client_secret):
            if secret is not None and secret.reveal():
                text = text.replace(secret.reveal(), "***")
        return text

    async def _ask(self, form: dict[str, str], what: str, secrets: tuple[Secret, ...]) -> TokenGrant:
        settings = self._settings
        failures = 0
        while True:
            self.requests += 1
            reply = await self._send(self.rest.token_url, form)
            verdict = classify_rest(reply.status, reply.headers, reply.body, expect_items=False,
                                    cooldown_seconds=settings.cooldown_seconds,
                                    max_retry_after_seconds=settings.max_retry_after_seconds)
            said = self._scrub(verdict.describe(), secrets)
            outcome = verdict.outcome
            if outcome is RestOutcome.OK:
                return parse_grant(verdict.document, site=self.site)
            if outcome in (RestOutcome.EXPIRED, RestOutcome.BAD_REQUEST, RestOutcome.FORBIDDEN):
                error = _oauth_error(reply.body)
                if error in ("invalid_client", "unauthorized_client"):
                    text = (f"the token endpoint refused the integration's client id {self.rest.client_id!r} or its "
                            f"secret ({said}); check [sites.rest] client_id and client_secret_env, then")
                else:
                    text = f"the token endpoint refused the {what} ({said}): expired, revoked or already used;"
                raise ReauthorizeError(f"site {self.site}: {text} {reauthorize_hint(self.site)}")
            if outcome is RestOutcome.ENDPOINT:
                if verdict.code == "tls":
                    raise CertificateError(f"site {self.site}: token endpoint {self.rest.token_url}: {said}")
                raise RedirectError(f"site {self.site}: the token endpoint {self.rest.token_url} answered {said}; "
                                    "redirects are never followed (the request carries the client secret)")
            if outcome is RestOutcome.HOLD:
                raise RetryAfterTooLongError(
                    f"site {self.site}: the token endpoint asked us to wait {verdict.delay:.0f} s (Retry-After), "
                    f"more than max_retry_after_seconds = {settings.max_retry_after_seconds:g}; stopping this site "
                    "for this run", delay=verdict.delay or 0.0,
                )
            if outcome in (RestOutcome.NOT_FOUND, RestOutcome.GONE, RestOutcome.UNREADABLE):
                raise EndpointError(f"site {self.site}: {self.rest.token_url} is not a token endpoint ({said}); "
                                    "check [sites.rest] token_url")
            failures += 1  # RETRY, THROTTLED
            if failures >= settings.max_attempts:
                if outcome is RestOutcome.THROTTLED:
                    raise ThrottledError(f"site {self.site}: the token endpoint throttled {failures} times ({said})",
                                         delay=verdict.delay or settings.cooldown_seconds,
                                         cause=verdict.code)
                raise TransportError(f"site {self.site}: the token endpoint failed {failures} times; last: {said}")
            if outcome is RestOutcome.THROTTLED:
                pause = verdict.delay if verdict.delay is not None else settings.cooldown_seconds
            elif verdict.delay is not None:
                pause = min(verdict.delay, settings.backoff_max_seconds)
            else:
                pause = backoff_delay(failures, base=settings.backoff_base_seconds, cap=settings.backoff_max_seconds,
                                      rng=self._rng)
            event("token endpoint failed; retrying", site=self.site, reason=said, retry=failures,
                  retries=settings.max_attempts - 1, seconds=round(pause, 2))
            await asyncio.sleep(pause)


class TokenManager:
    """The access token of one site: handed out while good, refreshed when due or refused.
    ``wall`` is the wall clock expiries are compared with (tests pass the simulator's)."""

    def __init__(
        self,
        store: TokenStore,
        endpoint: TokenEndpoint,
        *,
        site: str,
        wall: Callable[[], float] = time.time,
        margin: float = REFRESH_MARGIN_SECONDS,
    ) -> None:
        self.store = store
        self.endpoint = endpoint
        self.site = site
        self.wall = wall
        self.margin = margin
        self.refreshes = 0
        self._tokens: Tokens | None = None
        self._stop = SiteStop(site)  # a refused refresh token: nothing more is asked
        #: Lifetime of the access token we got ourselves (None: read from the file, unknown).
        self._lifetime: float | None = None

    def __repr__(self) -> str:
        return f"TokenManager(site={self.site!r}, store={self.store!r}, refreshes={self.refreshes})"

    def _good(self, tokens: Tokens | None, rejected: Secret | None = None) -> Secret | None:
        """``tokens``' access token while it is good to use (not ``rejected``, not due for a refresh)."""
        if tokens is None or tokens.access_token is None or tokens.access_token == rejected:
            return None
        margin = self.margin
        if tokens is self._tokens and self._lifetime is not None:
            margin = min(margin, 0.5 * self._lifetime)  # a token living less than twice the margin: at half time
        return tokens.access_token if tokens.access_left(self.wall()) > margin else None

    async def access_token(self) -> Secret:
        """A good access token (refreshing first when it has less than ``margin`` left)."""
        self._stop.check()
        if (token := self._good(self._tokens)) is not None:
            return token
        if self._tokens is None:
            self._tokens, self._lifetime = self.store.load(), None  # replaced atomically: no lock needed
            if (token := self._good(self._tokens)) is not None:
                return token
        return await self._refresh(rejected=None)

    async def renew(self, rejected: Secret) -> Secret:
        """The server refused ``rejected`` (a 401): a new access token, refreshed unless another
        task or process has refreshed since ``rejected`` was handed out."""
        self._stop.check()
        if (token := self._good(self._tokens, rejected)) is not None:
            return token
        return await self._refresh(rejected=rejected)

    def secrets(self) -> tuple[Secret, ...]:
        """The tokens held in memory (for scrubbing server text; never to show)."""
        t = self._tokens
        if t is None:
            return ()
        return tuple(s for s in (t.access_token, t.refresh_token) if s is not None)

    async def tokens(self) -> Tokens:
        """The current tokens (refreshed first when due)."""
        await self.access_token()
        assert self._tokens is not None
        return self._tokens

    async def scopes(self) -> set[str]:
        """The scopes the last grant said were granted (empty when it did not say)."""
        return set((await self.tokens()).scope)

    async def _refresh(self, *, rejected: Secret | None) -> Secret:
        async with self.store.locked():
            self._stop.check()
            disk = self.store.load()
            if (token := self._good(disk, rejected)) is not None:
                self._tokens, self._lifetime = disk, None  # refreshed by another task or process while we waited
                return token
            now = self.wall()
            if disk.refresh_expires_at is not None and disk.refresh_expires_at <= now:
                event("the stored refresh token expired; trying it anyway", level=logging.WARNING, site=self.site,
                      expired_at=disk.refresh_expires_at)
            try:
                grant = await self.endpoint.refresh(disk.refresh_token)
            except ReauthorizeError as exc:
                self._stop.die(exc, message=None)  # the REST client's own stop logs it, once
                raise
            tokens = grant.tokens(self.wall(), disk)
            self.store.save(tokens)  # on disk before the new access token is used anywhere
            self._tokens = tokens
            self._lifetime = grant.expires_in
            self.refreshes += 1
        rotated = tokens.refresh_token != disk.refresh_token
        left = tokens.access_left(self.wall())
        event("access token refreshed", site=self.site, good_for="an unknown time" if math.isinf(left) else
              f"{left / 3600:.1f} h", refresh_token_rotated=rotated, saved_to=str(self.store.path))
        if tokens.refresh_expires_at is not None and tokens.refresh_expires_at - self.wall() < 14 * 86_400:
            event("the refresh token expires soon; reauthorize before then", level=logging.WARNING, site=self.site,
                  days=round((tokens.refresh_expires_at - self.wall()) / 86_400, 1), how=reauthorize_hint(self.site))
        assert tokens.access_token is not None
        return tokens.access_token
