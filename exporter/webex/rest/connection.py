"""The REST client's connection to one site: the HTTP exchange (no redirects followed, bodies
read with a bound), secrets scrubbed from what the server says, and the errors that stop a site
(kept in :class:`~exporter.webex.site_stop.SiteStop`) or skip a dataset.  The one module of :mod:`exporter.webex.rest` that touches
aiohttp."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import urlencode

import aiohttp

from ...config import RestSettings, SiteSettings
from ...errors import (
    CertificateError,
    DamagedResponseError,
    EndpointError,
    ExporterError,
    FatalSiteError,
    OperationRetiredError,
    ParseError,
    RedirectError,
)
from ...obs.logs import event
from ..http_body import network_error, read_body
from ..site_stop import SiteStop
from .classify import RawReply, RestVerdict
from .oauth import TokenManager

__all__ = ["RestConnection", "ACCEPT"]


#: Error answers are read up to this many bytes (their message and trackingId are short).
_ERROR_BODY_LIMIT = 64 * 1024
#: What every REST request accepts (only encodings we decompress ourselves, with a bound).
ACCEPT = {"Accept": "application/json", "Accept-Encoding": "gzip, deflate"}


class RestConnection:
    """HTTP, scrubbing and stop state of one site's REST client (see the module docstring); the
    attributes are set by :class:`~exporter.webex.rest.client.RestClient`'s constructor."""

    site: SiteSettings
    rest: RestSettings
    tokens: TokenManager
    _session: aiohttp.ClientSession | None
    _endpoint: str
    _stop: SiteStop

    def _retired_path(self, what: str, code: str, said: str) -> OperationRetiredError:
        message = (f"site {self.site.name}: {what} is not available ({said}): the endpoint is retired or this site "
                   "cannot use it; the dataset is skipped")
        event("REST endpoint not available; the dataset is skipped", level=logging.WARNING, site=self.site.name,
              error=message)
        return OperationRetiredError(message, operation=what.split(" ")[0], exception_id=code)

    def _endpoint_error(self, verdict: RestVerdict, what: str, said: str) -> FatalSiteError:
        if verdict.code == "tls":
            error: FatalSiteError = CertificateError(
                f"site {self.site.name}: {said}; not retried: the server is not who {self.rest.base_url} says (fix "
                "base_url or the trust store)")
        elif verdict.status is not None and 300 <= verdict.status < 400:
            error = RedirectError(f"site {self.site.name}: {what} answered {said}; redirects are never followed "
                                  "(every request carries the bearer token). Not retried: fix [sites.rest] "
                                  "base_url.")
        else:
            error = EndpointError(f"site {self.site.name}: {what} answered {said}; this site's data lives elsewhere "
                                  "(another region?): fix [sites.rest] base_url")
        return self._stop.die(error)

    @property
    def stopped_by(self) -> FatalSiteError | None:
        """The fatal error that stopped this client (nothing more is sent), if one did."""
        return self._stop.fatal

    def _scrub(self, text: str) -> str:
        """``text`` with every secret we hold masked (servers sometimes echo what they got)."""
        for secret in (*self.tokens.secrets(), self.rest.client_secret):
            if secret is not None and secret.reveal():
                text = text.replace(secret.reveal(), "***")
        return text

    # ----------------------------------------------------------------------------- HTTP

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()  # TLS verified with the default context
        return self._session

    async def _post_form(self, url: str, form: Mapping[str, str]) -> RawReply:
        """One form-encoded POST (the token endpoint's requests)."""
        headers = {**ACCEPT, "Content-Type": "application/x-www-form-urlencoded"}
        return await self._exchange("POST", url, headers, urlencode(dict(form)).encode())

    async def _exchange(self, method: str, url: str, headers: Mapping[str, str], data: bytes | None = None) -> RawReply:
        """One HTTP request; network failures come back as an error in the reply (status None).
        Redirects are not followed; the body is read (and decompressed) up to the size limit."""
        settings = self.site.throttle
        timeout = aiohttp.ClientTimeout(total=settings.request_timeout_seconds)
        try:
            async with self._http().request(method, url, headers=dict(headers), data=data, timeout=timeout,
                                            allow_redirects=False, auto_decompress=False) as response:
                status, answer_headers = response.status, response.headers
                ok = 200 <= status < 300
                body: bytes | BaseException
                try:
                    body = await read_body(response, settings.max_response_bytes if ok else _ERROR_BODY_LIMIT)
                except DamagedResponseError as exc:
                    body = exc
                except ParseError as exc:
                    body = exc if ok else b""  # an error page too large to read: its status says enough
                return RawReply(status, answer_headers, body, url)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return RawReply(None, {}, self._network_error(exc), url)

    def _network_error(self, exc: BaseException) -> ExporterError:
        return network_error(exc, self._endpoint, self._scrub)
