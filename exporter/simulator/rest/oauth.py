"""OAuth for the simulated REST APIs: an integration's tokens, on the simulator clock.

``POST /v1/access_token`` takes ``grant_type=refresh_token`` (``refresh_token``) or
``grant_type=authorization_code`` (``code``, ``redirect_uri``) with the integration's
``client_id`` / ``client_secret`` (form fields or HTTP Basic).  Every grant hands out a new
access token *and a new refresh token*; with ``rotate_refresh_tokens`` the refresh token used
stops working (reusing it gives ``invalid_grant``), which catches a client that does not
persist the new one.  Each site starts with one refresh token (``sim-refresh-<site>`` unless
configured) that lives ``refresh_token_seconds`` from the simulator's start.  A token is for one
site and carries that site's scopes (or fewer, as asked at ``/v1/authorize``).
"""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlencode

from ..clock import SimClock
from ..config import SimulatorConfig
from ..site_config import SiteConfig
from .ids import org_id
from .wire import RestError

__all__ = ["AccessToken", "RestTokens", "oauth_error"]

CODE_SECONDS = 600  # an authorization code is good for ten minutes, once


@dataclass(frozen=True, slots=True)
class AccessToken:
    """An access token: its site, scopes, expiry (simulator clock) and the grant it descends from."""

    value: str
    site: SiteConfig
    scopes: tuple[str, ...]
    expires: float
    grant: int


@dataclass(slots=True)
class _Refresh:
    value: str
    site: SiteConfig
    scopes: tuple[str, ...]
    expires: float
    grant: int
    active: bool = True


@dataclass(slots=True)
class _Code:
    site: SiteConfig
    scopes: tuple[str, ...]
    redirect_uri: str | None
    expires: float
    used: bool = False


def oauth_error(status: int, error: str, description: str) -> RestError:
    """An OAuth error answer (``error`` / ``error_description`` beside Webex's ``message`` / ``errors``)."""
    return RestError(status, description, fields={"error": error, "error_description": description})


class RestTokens:
    """Issues and checks the REST tokens of one simulator (thread-safe)."""

    def __init__(self, config: SimulatorConfig, clock: SimClock) -> None:
        self.config = config
        self.rest = config.rest
        self.clock = clock
        self._lock = threading.Lock()
        self._access: dict[str, AccessToken] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._codes: dict[str, _Code] = {}
        self._latest: dict[str, str] = {}  # site -> the newest refresh token handed out
        self._grants = 0
        start = clock.timestamp()
        for site in config.sites:
            token = site.rest.token_for(site.name)
            self._grants += 1
            self._refresh[token] = _Refresh(token, site, site.rest.scopes, start + self.rest.refresh_token_seconds,
                                            self._grants)
            self._latest[site.name] = token

    # ------------------------------------------------------------------ Python controls

    def initial_refresh_token(self, site: SiteConfig) -> str:
        """The refresh token the site starts with (printed by ``webex-exporter simulate``)."""
        return site.rest.token_for(site.name)

    def current_refresh_token(self, site: SiteConfig) -> str:
        """The newest refresh token handed out for the site (the initial one until a refresh)."""
        with self._lock:
            return self._latest[site.name]

    def mint(self, site: SiteConfig, scopes: tuple[str, ...] | None = None, seconds: float | None = None) -> str:
        """A fresh access token for ``site`` (default: its scopes, ``access_token_seconds``)."""
        with self._lock:
            self._grants += 1
            return self._new_access(site, site.rest.scopes if scopes is None else tuple(scopes), self._grants,
                                    seconds).value

    def authorization_code(self, site: SiteConfig, scopes: tuple[str, ...] | None = None,
                           redirect_uri: str | None = None) -> str:
        """A one-time code for ``grant_type=authorization_code`` (what ``/v1/authorize`` redirects with)."""
        granted = site.rest.scopes if scopes is None else tuple(s for s in scopes if s in site.rest.scopes)
        code = "sim-code-" + secrets.token_urlsafe(18)
        with self._lock:
            self._codes[code] = _Code(site, granted, redirect_uri, self.clock.timestamp() + CODE_SECONDS)
        return code

    def expire_all(self) -> int:
        """Invalidate every access token issued so far (refresh tokens keep working); how many."""
        with self._lock:
            count = len(self._access)
            self._access.clear()
        return count

    # ------------------------------------------------------------------ checks

    def check(self, header: str | None) -> AccessToken:
        """The token of an ``Authorization: Bearer`` header, or a 401 RestError."""
        scheme, _, value = (header or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise RestError(401, "The request requires a valid access token set in the Authorization request header.")
        with self._lock:
            token = self._access.get(value.strip())
        if token is None or self.clock.timestamp() >= token.expires:
            raise RestError(401, "The request requires a valid access token set in the Authorization request header.",
                            "Access token is invalid or expired")
        return token

    # ------------------------------------------------------------------ the token endpoint

    def exchange(self, form: Mapping[str, str], authorization: str | None = None) -> dict[str, Any]:
        """Answer ``POST /v1/access_token``: the token response, or an OAuth RestError."""
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        scheme, _, basic = (authorization or "").partition(" ")
        if scheme.lower() == "basic" and not client_id:
            try:
                client_id, _, client_secret = base64.b64decode(basic.strip()).decode().partition(":")
            except ValueError:
                raise oauth_error(401, "invalid_client", "Malformed Basic authorization") from None
        grant_type = form.get("grant_type", "")
        if not grant_type:
            raise oauth_error(400, "invalid_request", "grant_type is required")
        if grant_type not in ("refresh_token", "authorization_code"):
            raise oauth_error(400, "unsupported_grant_type", f"Unsupported grant_type {grant_type!r}")
        if not client_id or not client_secret:
            raise oauth_error(400, "invalid_request", "client_id and client_secret are required")
        if client_id != self.rest.client_id or client_secret != self.rest.client_secret:
            raise oauth_error(401, "invalid_client", "Client authentication failed: unknown client_id or bad secret")
        now = self.clock.timestamp()
        with self._lock:
            if grant_type == "refresh_token":
                value = form.get("refresh_token", "")
                if not value:
                    raise oauth_error(400, "invalid_request", "refresh_token is required")
                old = self._refresh.get(value)
                if old is None or not old.active:
                    raise oauth_error(400, "invalid_grant", "The refresh token is invalid or has already been used")
                if now >= old.expires:
                    raise oauth_error(400, "invalid_grant", "The refresh token has expired")
                site, scopes, grant = old.site, old.scopes, old.grant
                if self.rest.rotate_refresh_tokens:
                    old.active = False
            else:
                value = form.get("code", "")
                if not value:
                    raise oauth_error(400, "invalid_request", "code is required")
                code = self._codes.get(value)
                if code is None or code.used or now >= code.expires:
                    raise oauth_error(400, "invalid_grant", "The authorization code is invalid, expired or used")
                if code.redirect_uri is not None and form.get("redirect_uri") != code.redirect_uri:
                    raise oauth_error(400, "invalid_grant", "redirect_uri does not match the authorization request")
                code.used = True
                self._grants += 1
                site, scopes, grant = code.site, code.scopes, self._grants
            access = self._new_access(site, scopes, grant)
            refresh = _Refresh(self._token(site), site, scopes, now + self.rest.refresh_token_seconds, grant)
            self._refresh[refresh.value] = refresh
            self._latest[site.name] = refresh.value
        return {
            "access_token": access.value,
            "expires_in": self.rest.access_token_seconds,
            "refresh_token": refresh.value,
            "refresh_token_expires_in": self.rest.refresh_token_seconds,
            "token_type": "Bearer",
            "scope": " ".join(scopes),
        }

    def authorize_redirect(self, query: Mapping[str, str]) -> str:
        """``GET /v1/authorize``: the ``Location`` to redirect to, consenting at once for the site
        named by ``site`` (a simulator extension; default the first site)."""
        if query.get("client_id") != self.rest.client_id:
            raise oauth_error(400, "invalid_client", "Unknown client_id")
        if query.get("response_type", "code") != "code":
            raise oauth_error(400, "unsupported_response_type", "response_type must be code")
        redirect = query.get("redirect_uri")
        if not redirect:
            raise oauth_error(400, "invalid_request", "redirect_uri is required")
        name = query.get("site") or self.config.sites[0].name
        site = self.config.site(name)
        if site is None:
            raise oauth_error(400, "invalid_request", f"Unknown site {name!r}")
        wanted = tuple(query.get("scope", "").split()) or None
        code = self.authorization_code(site, wanted, redirect)
        params = {"code": code, **({"state": query["state"]} if "state" in query else {})}
        return f"{redirect}{'&' if '?' in redirect else '?'}{urlencode(params)}"

    # ------------------------------------------------------------------ internals

    def _token(self, site: SiteConfig) -> str:
        """A token shaped like Webex's: base64 text, ``_PF84_`` and the org UUID."""
        return f"{secrets.token_urlsafe(48)}_PF84_{org_id(site.name)}"

    def _new_access(self, site: SiteConfig, scopes: tuple[str, ...], grant: int,
                    seconds: float | None = None) -> AccessToken:
        now = self.clock.timestamp()
        for value in [v for v, t in self._access.items() if t.expires <= now]:
            del self._access[value]  # a long run does not accumulate dead tokens
        lifetime = self.rest.access_token_seconds if seconds is None else seconds
        token = AccessToken(self._token(site), site, scopes, now + lifetime, grant)
        self._access[token.value] = token
        return token
