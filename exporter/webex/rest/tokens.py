"""A site's OAuth tokens on disk: one owner-only JSON file, rewritten atomically on every refresh.

Webex hands out a new refresh token with every refresh and, once it has, the old one may stop
working: a rotated refresh token that never reached the disk locks the exporter out until an admin
authorizes it again.  So :class:`TokenStore`

* writes atomically: a temporary file in the same folder (mode 0600), ``fsync``, ``os.replace``,
  then ``fsync`` of the folder, so a crash leaves the old file or the new one, never a torn one;
  callers save *before* the new access token is used (:mod:`.oauth` does);
* keeps the folder owner-only: folders it creates get mode 0700, a file found readable by others
  is tightened to 0600 (and said so);
* serialises refreshes: :meth:`TokenStore.locked` takes an ``asyncio.Lock`` (tasks of one process)
  and an exclusive ``fcntl.flock`` on ``<token_file>.lock`` (other processes: ``serve`` and a manual
  ``run`` at once), polled on the event loop's clock so waiting never blocks the loop.

Tokens are :class:`~exporter.config.Secret` in memory: no repr, log line or error text shows them.
The seeding functions at the end fill a store for the ``auth`` command: from a refresh token
(read from stdin) or from an authorization code.

File format (version 1; times ISO 8601 UTC, ``null`` when unknown)::

    {"version": 1, "refresh_token": "...", "refresh_expires_at": "2026-10-13T12:00:00Z",
     "access_token": "...", "access_expires_at": "2026-03-24T12:00:00Z",
     "scope": "meeting:admin_config_read spark:kms", "updated_at": "2026-03-10T12:00:00Z"}
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import logging
import os
import stat
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...config import Secret
from ...errors import ReauthorizeError, TokenStoreError
from ...obs.logs import event

if TYPE_CHECKING:
    from .oauth import TokenEndpoint

__all__ = [
    "Tokens",
    "TokenStore",
    "FILE_VERSION",
    "LOCK_TIMEOUT_SECONDS",
    "reauthorize_hint",
    "split_scopes",
    "seed_from_refresh_token",
    "seed_from_authorization_code",
]


FILE_VERSION = 1
#: Longest wait for another process's refresh before giving up (a refresh takes a second or two).
LOCK_TIMEOUT_SECONDS = 60.0
_LOCK_POLL_SECONDS = 0.05


def reauthorize_hint(site: str) -> str:
    """What an admin does when the stored tokens are gone or refused."""
    return f"authorize the integration again with `webex-exporter auth --site {site}`"


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _from_iso(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"{key}: not a time: {type(value).__name__}")
    parsed = datetime.fromisoformat(value.replace("z", "Z"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def split_scopes(value: Any) -> tuple[str, ...]:
    """``"a b,c"`` or ``["a", "b"]`` -> ``("a", "b", "c")`` (Webex separates scopes by spaces)."""
    if value is None:
        return ()
    parts = value if isinstance(value, (list, tuple)) else str(value).replace(",", " ").split()
    return tuple(dict.fromkeys(str(p).strip() for p in parts if str(p).strip()))


@dataclass(frozen=True, slots=True)
class Tokens:
    """What the store holds for one site.  Times are POSIX seconds (wall clock); None: unknown.
    ``scope`` is what the last grant said was granted (empty: the grant did not say)."""

    refresh_token: Secret
    refresh_expires_at: float | None = None
    access_token: Secret | None = None
    access_expires_at: float | None = None
    scope: tuple[str, ...] = ()

    def access_left(self, now: float) -> float:
        """Seconds the access token is still good for (-inf without one, +inf when its expiry is unknown)."""
        if self.access_token is None or not self.access_token.reveal():
            return float("-inf")
        if self.access_expires_at is None:
            return float("inf")
        return self.access_expires_at - now

    def to_json(self, now: float) -> dict[str, Any]:
        """The file's JSON object (holds the secrets: only for the file)."""
        return {
            "version": FILE_VERSION,
            "refresh_token": self.refresh_token.reveal(),
            "refresh_expires_at": _iso(self.refresh_expires_at),
            "access_token": self.access_token.reveal() if self.access_token is not None else None,
            "access_expires_at": _iso(self.access_expires_at),
            "scope": " ".join(self.scope),
            "updated_at": _iso(now),
        }

    @classmethod
    def from_json(cls, data: Any) -> Tokens:
        """Read the file's object; ``ValueError`` says what is wrong (never showing a value)."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        version = data.get("version", FILE_VERSION)
        if version != FILE_VERSION:
            raise ValueError(f"version {version!r}, this exporter reads version {FILE_VERSION}")
        refresh = data.get("refresh_token")
        if not isinstance(refresh, str) or not refresh.strip():
            raise ValueError("no refresh_token")
        access = data.get("access_token")
        if access is not None and not isinstance(access, str):
            raise ValueError("access_token: not a text")
        return cls(
            refresh_token=Secret(refresh.strip()),
            refresh_expires_at=_from_iso(data.get("refresh_expires_at"), "refresh_expires_at"),
            access_token=Secret(access) if access else None,
            access_expires_at=_from_iso(data.get("access_expires_at"), "access_expires_at"),
            scope=split_scopes(data.get("scope")),
        )


class TokenStore:
    """The token file of one site (see the module docstring).  ``wall`` is the wall clock the
    ``updated_at`` stamp is taken from (tests pass the simulator's)."""

    def __init__(self, path: str | os.PathLike[str], *, site: str = "", wall: Callable[[], float] = time.time) -> None:
        if not str(path):
            raise TokenStoreError(f"site {site}: no token_file configured")
        self.path = Path(os.path.expanduser(os.fspath(path)))
        self.site = site
        self.wall = wall
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"TokenStore(site={self.site!r}, path={str(self.path)!r})"

    @property
    def lock_path(self) -> Path:
        """The file other processes lock (beside the token file; the token file itself is replaced)."""
        return self.path.with_name(self.path.name + ".lock")

    def exists(self) -> bool:
        """Whether the token file is there."""
        return self.path.exists()

    # ----------------------------------------------------------------------------- reading

    def load(self) -> Tokens:
        """The stored tokens.  :class:`ReauthorizeError` when there are none;
        :class:`TokenStoreError` when the file cannot be read or is not ours."""
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            raise ReauthorizeError(
                f"site {self.site}: no OAuth tokens stored at {self.path}; {reauthorize_hint(self.site)}"
            ) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise TokenStoreError(f"site {self.site}: the token file {self.path} is a symbolic link; set "
                                      "[sites.rest] token_file to the real file (it is replaced on every "
                                      "refresh)") from None
            raise TokenStoreError(f"site {self.site}: cannot open the token file {self.path}: "
                                  f"{exc.strerror or exc}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise TokenStoreError(f"site {self.site}: the token file {self.path} is not a regular file")
            if info.st_mode & 0o077:
                os.fchmod(fd, 0o600)
                event("the token file was readable by others; now 0600", level=logging.WARNING, site=self.site,
                      path=str(self.path), mode=f"{stat.S_IMODE(info.st_mode):o}")
            with os.fdopen(fd, "rb", closefd=False) as handle:
                raw = handle.read(1024 * 1024)
        except OSError as exc:
            raise TokenStoreError(f"site {self.site}: cannot read the token file {self.path}: "
                                  f"{exc.strerror or exc}") from None
        finally:
            os.close(fd)
        try:
            return Tokens.from_json(json.loads(raw))
        except (ValueError, UnicodeDecodeError) as exc:
            # The JSON error text quotes the document, so it is not repeated (it holds tokens).
            reason = str(exc) if not isinstance(exc, json.JSONDecodeError) else f"not JSON (line {exc.lineno})"
            raise TokenStoreError(f"site {self.site}: the token file {self.path} is damaged ({reason}); "
                                  f"{reauthorize_hint(self.site)}") from None

    # ----------------------------------------------------------------------------- writing

    def _make_folder(self) -> None:
        """Create the token file's folder and any missing parents with mode 0700 (existing ones
        are left as they are: it may be the user's home)."""
        missing = []
        folder = self.path.parent
        while not folder.exists():
            missing.append(folder)
            if folder.parent == folder:
                break
            folder = folder.parent
        for folder in reversed(missing):
            try:
                folder.mkdir(mode=0o700)
            except FileExistsError:
                continue
            os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask

    def save(self, tokens: Tokens) -> None:
        """Replace the file atomically with ``tokens`` (temp file, fsync, rename, fsync folder).
        :class:`TokenStoreError` when that fails; the old file is then untouched."""
        try:
            self._make_folder()
            data = json.dumps(tokens.to_json(self.wall()), indent=2).encode() + b"\n"
            fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        except OSError as exc:
            raise TokenStoreError(f"site {self.site}: cannot write the token file {self.path}: "
                                  f"{exc.strerror or exc}") from None
        try:
            try:
                os.fchmod(fd, 0o600)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, self.path)
        except OSError as exc:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise TokenStoreError(f"site {self.site}: cannot write the token file {self.path}: "
                                  f"{exc.strerror or exc}") from None
        self._sync_folder()

    def _sync_folder(self) -> None:
        try:
            dir_fd = os.open(self.path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError as exc:
            raise TokenStoreError(f"site {self.site}: cannot sync the folder of {self.path}: "
                                  f"{exc.strerror or exc}") from None
        try:
            os.fsync(dir_fd)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOTSUP):  # some file systems cannot sync folders
                raise TokenStoreError(f"site {self.site}: cannot sync the folder of {self.path}: "
                                      f"{exc.strerror or exc}") from None
        finally:
            os.close(dir_fd)

    # ----------------------------------------------------------------------------- locking

    @asynccontextmanager
    async def locked(self, *, timeout: float = LOCK_TIMEOUT_SECONDS) -> AsyncIterator[None]:
        """Hold the store: no other task of this store, and no other process (nor another store
        object of this process) on the same file, until the block exits."""
        async with self._lock:
            self._make_folder_safely()
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
            except OSError as exc:
                raise TokenStoreError(f"site {self.site}: cannot open the lock file {self.lock_path}: "
                                      f"{exc.strerror or exc}") from None
            try:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + timeout
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if loop.time() >= deadline:
                            raise TokenStoreError(
                                f"site {self.site}: another process has held {self.lock_path} for {timeout:.0f} s "
                                "(a refresh that hangs?); not refreshing"
                            ) from None
                        await asyncio.sleep(_LOCK_POLL_SECONDS)
                    except OSError as exc:
                        raise TokenStoreError(f"site {self.site}: cannot lock {self.lock_path}: "
                                              f"{exc.strerror or exc}") from None
                try:
                    yield
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def _make_folder_safely(self) -> None:
        try:
            self._make_folder()
        except OSError as exc:
            raise TokenStoreError(f"site {self.site}: cannot create the folder of {self.path}: "
                                  f"{exc.strerror or exc}") from None


# --------------------------------------------------------------------------------------------------
# Seeding (the ``auth`` command)


async def seed_from_refresh_token(store: TokenStore, endpoint: TokenEndpoint, refresh_token: Secret) -> Tokens:
    """Store a site's first tokens from a refresh token (what ``auth`` reads from stdin): it is
    exchanged at once, which proves it works and gives the granted scopes; the rotated refresh
    token is what lands in the file.  Raises :class:`ReauthorizeError` when Webex refuses it."""
    if not refresh_token.reveal().strip():
        raise ReauthorizeError(f"site {store.site}: an empty refresh token; {reauthorize_hint(store.site)}")
    async with store.locked():
        grant = await endpoint.refresh(Secret(refresh_token.reveal().strip()))
        tokens = grant.tokens(store.wall(), previous_refresh=refresh_token)
        store.save(tokens)
    event("OAuth tokens stored", site=store.site, path=str(store.path), scopes=" ".join(tokens.scope) or "?")
    return tokens


async def seed_from_authorization_code(
    store: TokenStore, endpoint: TokenEndpoint, code: Secret, redirect_uri: str
) -> Tokens:
    """Store a site's first tokens from an OAuth authorization code (the ``code`` of the redirect
    after an admin approved the integration; ``redirect_uri`` exactly as in that request)."""
    async with store.locked():
        grant = await endpoint.exchange_code(code, redirect_uri)
        if grant.refresh_token is None:
            raise ReauthorizeError(f"site {store.site}: the token endpoint answered the authorization code without a "
                                   f"refresh token; {reauthorize_hint(store.site)}")
        tokens = grant.tokens(store.wall())
        store.save(tokens)
    event("OAuth tokens stored", site=store.site, path=str(store.path), scopes=" ".join(tokens.scope) or "?")
    return tokens
