"""What the XML and the REST client share at the HTTP level: reading an answer's body with a
bound (decompressed by us, so a bomb never expands in memory) and turning a network failure
(aiohttp, ssl, OS) into our own error."""

from __future__ import annotations

import ssl
import zlib
from collections.abc import Callable

import aiohttp

from ..errors import CertificateError, DamagedResponseError, ExporterError, ParseError, TransportError

__all__ = ["read_body", "network_error"]

_READ_CHUNK = 64 * 1024


async def read_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, decompressed as it arrives, or a :class:`ParseError` as soon as it passes
    ``limit`` bytes (compressed or not): a bomb never expands in memory, and is not retried."""
    coding = response.headers.get("Content-Encoding", "")
    codings = [c.strip().lower() for c in coding.split(",") if c.strip() and c.strip().lower() != "identity"]
    if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
        raise ParseError(f"answer has Content-Encoding {coding[:60]!r}, which we did not ask for")
    inflate = _Inflate(limit) if codings else None
    out = bytearray()
    raw = 0
    async for chunk in response.content.iter_chunked(_READ_CHUNK):
        raw += len(chunk)
        if raw > limit:
            raise ParseError(f"answer larger than {limit} bytes{' (compressed)' if inflate else ''}; not read further")
        if inflate is None:
            out += chunk
        elif inflate.feed(chunk, out):
            break  # the compressed stream ended; anything after it is not part of the answer
    return bytes(out)


class _Inflate:
    """gzip / zlib / raw deflate, decompressed with a bound on the output."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._z = zlib.decompressobj(wbits=zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
        self._raw = False

    def feed(self, data: bytes, out: bytearray) -> bool:
        """Decompress ``data`` into ``out`` (at most ``limit`` bytes in all); True at the stream's end."""
        while data:
            try:
                piece = self._z.decompress(data, self.limit + 1 - len(out))
            except zlib.error as exc:
                if not out and not self._raw:
                    self._z = zlib.decompressobj(wbits=-zlib.MAX_WBITS)  # "deflate" sent without its zlib header
                    self._raw = True
                    continue
                if not out:  # not compressed the way Content-Encoding says, from its first byte
                    raise ParseError(f"answer is not the gzip/deflate its Content-Encoding says: {exc}") from None
                raise DamagedResponseError(f"compressed answer is corrupt: {exc}") from None
            out += piece
            if len(out) > self.limit:
                raise ParseError(f"answer larger than {self.limit} bytes after decompression; not read further")
            if self._z.eof:
                return True
            data = self._z.unconsumed_tail
        return False


def network_error(exc: BaseException, where: str, scrub: Callable[[str], str]) -> ExporterError:
    """A network failure (aiohttp, ssl, OS) as our error, for the XML and the REST client alike:
    a failed certificate check is a :class:`CertificateError` (never retried), anything else a
    :class:`TransportError`; ``scrub`` takes secrets out of the text."""
    if isinstance(exc, aiohttp.ServerFingerprintMismatch):
        return CertificateError(f"TLS: certificate fingerprint mismatch for {where}")
    cert = exc.certificate_error if isinstance(exc, aiohttp.ClientConnectorCertificateError) else exc
    if isinstance(cert, ssl.SSLCertVerificationError):
        detail = cert.verify_message or cert.reason or str(cert)
        return CertificateError(scrub(f"TLS: certificate verify failed ({detail}) for {where}"))
    if isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError)):
        cause = getattr(exc, "os_error", None) or exc
        detail = getattr(cause, "reason", None) or str(cause) or type(cause).__name__
        return TransportError(scrub(f"TLS: {str(detail)[:200]} for {where}"))
    if isinstance(exc, TimeoutError):
        return TransportError(f"request to {where} timed out")
    return TransportError(scrub(_describe(exc)))


def _describe(exc: BaseException) -> str:
    """A short, secret-free description of a network failure."""
    if isinstance(exc, TimeoutError):
        return "request timed out"
    text = str(exc) or exc.__class__.__name__
    return f"{type(exc).__name__}: {text[:200]}"
