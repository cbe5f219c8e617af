"""exporter.webex.rest.tokens + oauth: the token file (atomic, owner-only, locked), refresh and rotation,
re-authorization errors, scope checks, and secrets that never show.

The token endpoint is a fake *Webex* (a ``send`` function answering like the real one, echoing
secrets in its errors to prove they are scrubbed); everything of ours is the real code."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import pytest

from exporter.config import RestSettings, Secret, ThrottleSettings
from exporter.errors import (
    AuthError,
    EndpointError,
    MissingScopeError,
    ReauthorizeError,
    RedirectError,
    RetryAfterTooLongError,
    TokenStoreError,
    TransportError,
)
from exporter.model.datasets import ALL_DATASETS, by_name
from exporter.webex.rest.classify import RawReply
from exporter.webex.rest.oauth import TokenEndpoint, TokenManager, parse_grant
from exporter.webex.rest.scopes import authorize_url, check_scopes, missing_scopes, required_scopes
from exporter.webex.rest.tokens import Tokens, TokenStore, seed_from_authorization_code, seed_from_refresh_token

CLIENT_SECRET = "client-secret-XYZ-1"
SCOPES = "meeting:admin_config_read meeting:admin_schedule_read spark:kms"
FAST = ThrottleSettings(backoff_base_seconds=0.001, backoff_max_seconds=0.002, cooldown_seconds=0.001, max_attempts=3)


class FakeWebex:
    """A token endpoint like Webex's: rotating refresh tokens, invalid_grant for old ones."""

    def __init__(self, *, refresh: str = "refresh-secret-0", expires_in: int = 1_209_599, rotate: bool = True) -> None:
        self.valid = {refresh}
        self.codes = {"code-secret-1"}
        self.expires_in = expires_in
        self.rotate = rotate
        self.issued = 0
        self.forms: list[dict[str, str]] = []
        self.faults: list[RawReply] = []
        self.delay = 0.0

    def _grant(self) -> dict[str, Any]:
        self.issued += 1
        refresh = f"refresh-secret-{self.issued}"
        if self.rotate:
            self.valid = {refresh}
        else:
            self.valid.add(refresh)
        return {"access_token": f"access-secret-{self.issued}", "expires_in": self.expires_in, "token_type": "Bearer",
                "refresh_token": refresh, "refresh_token_expires_in": 7_775_999, "scope": SCOPES}

    async def send(self, url: str, form: Mapping[str, str]) -> RawReply:
        self.forms.append(dict(form))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.faults:
            return self.faults.pop(0)
        if form.get("client_id") != "sim-client" or form.get("client_secret") != CLIENT_SECRET:
            body = {"error": "invalid_client", "error_description": f"bad secret {form.get('client_secret')}"}
            return RawReply(401, {}, json.dumps(body).encode())
        if form["grant_type"] == "refresh_token":
            if form["refresh_token"] not in self.valid:
                body = {"error": "invalid_grant", "error_description": f"unknown refresh token {form['refresh_token']}",
                        "trackingId": "TRK-REFRESH"}
                return RawReply(400, {}, json.dumps(body).encode())
            return RawReply(200, {}, json.dumps(self._grant()).encode())
        if form["grant_type"] == "authorization_code" and form.get("code") in self.codes:
            self.codes.discard(form["code"])
            return RawReply(200, {}, json.dumps(self._grant()).encode())
        return RawReply(400, {}, b'{"error": "invalid_grant"}')


def rest_settings(tmp_path: Path, secret: str = CLIENT_SECRET) -> RestSettings:
    return RestSettings(base_url="https://webexapis.com/v1", token_url="https://webexapis.com/v1/access_token",
                        site_url="demo.webex.com", client_id="sim-client", client_secret=Secret(secret),
                        token_file=str(tmp_path / "tokens" / "demo.json"))


def setup(
    tmp_path: Path, fake: FakeWebex, *, wall: Any = time.time, secret: str = CLIENT_SECRET
) -> tuple[TokenStore, TokenEndpoint, TokenManager]:
    rest = rest_settings(tmp_path, secret)
    store = TokenStore(rest.token_file, site="demo", wall=wall)
    endpoint = TokenEndpoint(rest, fake.send, site="demo", settings=FAST)
    return store, endpoint, TokenManager(store, endpoint, site="demo", wall=wall)


def seeded(store: TokenStore, refresh: str = "refresh-secret-0", **fields: Any) -> None:
    store.save(Tokens(refresh_token=Secret(refresh), **fields))


SECRETS = ("refresh-secret", "access-secret", CLIENT_SECRET, "code-secret")


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, (secret, text)


# ------------------------------------------------------------------------------------ the file


def test_the_file_is_owner_only_in_an_owner_only_folder_and_round_trips(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "a" / "b" / "demo.json", site="demo")
    tokens = Tokens(Secret("refresh-secret-0"), 2_000_000_000.0, Secret("access-secret-0"), 1_900_000_000.0,
                    ("meeting:admin_config_read", "spark:kms"))
    store.save(tokens)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700
    assert store.load() == tokens
    data = json.loads(store.path.read_text())
    assert data["version"] == 1 and data["refresh_expires_at"] == "2033-05-18T03:33:20Z"
    assert data["scope"] == "meeting:admin_config_read spark:kms"
    assert os.listdir(store.path.parent) == ["demo.json"]  # no temp file left


def test_the_token_file_path_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    store = TokenStore("~/.config/webex-exporter/tokens/demo.json", site="demo")
    assert store.path == tmp_path / ".config" / "webex-exporter" / "tokens" / "demo.json"
    seeded(store)
    assert store.load().refresh_token == Secret("refresh-secret-0")


def test_writes_are_atomic_fsynced_and_leave_the_old_file_when_they_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = TokenStore(tmp_path / "t" / "demo.json", site="demo")
    seeded(store, "refresh-secret-old")
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    seeded(store, "refresh-secret-new")
    assert synced == ["file", "dir"]  # the data, then the rename
    assert store.load().refresh_token == Secret("refresh-secret-new")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(TokenStoreError) as caught:
        seeded(store, "refresh-secret-lost")
    assert "No space left" in str(caught.value)
    assert store.load().refresh_token == Secret("refresh-secret-new")
    assert os.listdir(store.path.parent) == ["demo.json"]


def test_a_file_readable_by_others_is_tightened(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = TokenStore(tmp_path / "demo.json", site="demo")
    seeded(store)
    os.chmod(store.path, 0o644)
    with caplog.at_level(logging.WARNING):
        store.load()
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert "readable by others" in caplog.text


def test_no_file_means_authorize_and_a_damaged_one_says_so_without_quoting_it(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "demo.json", site="demo")
    with pytest.raises(ReauthorizeError, match=r"webex-exporter auth --site demo"):
        store.load()
    store.path.write_text('{"refresh_token": "refresh-secret-0", "version": 1')  # cut short
    with pytest.raises(TokenStoreError) as caught:
        store.load()
    assert_no_secret(str(caught.value))
    assert "damaged" in str(caught.value) and "webex-exporter auth --site demo" in str(caught.value)
    store.path.write_text('{"version": 1, "access_token": "access-secret-1"}')
    with pytest.raises(TokenStoreError, match="no refresh_token"):
        store.load()


def test_a_symlinked_token_file_is_refused_with_a_reason(tmp_path: Path) -> None:
    real = TokenStore(tmp_path / "real.json", site="demo")
    seeded(real)
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    with pytest.raises(TokenStoreError, match="symbolic link"):
        TokenStore(tmp_path / "link.json", site="demo").load()


# ------------------------------------------------------------------------------------ locking


def test_two_stores_on_one_file_exclude_each_other(tmp_path: Path) -> None:
    path = tmp_path / "demo.json"
    a, b = TokenStore(path, site="demo"), TokenStore(path, site="demo")
    order: list[str] = []

    async def holder() -> None:
        async with a.locked():
            order.append("a in")
            await asyncio.sleep(0.2)
            order.append("a out")

    async def waiter() -> None:
        await asyncio.sleep(0.05)
        async with b.locked():
            order.append("b in")

    async def main() -> None:
        await asyncio.gather(holder(), waiter())

    asyncio.run(main())
    assert order == ["a in", "a out", "b in"]


def test_another_process_holding_the_lock_is_waited_for_then_given_up_on(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "demo.json", site="demo")
    store.lock_path.parent.mkdir(parents=True, exist_ok=True)
    code = ("import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\n"
            "time.sleep(float(sys.argv[2]))\n")

    async def main(hold: float, timeout: float) -> float:
        proc = subprocess.Popen([sys.executable, "-c", code, str(store.lock_path), str(hold)], stdout=subprocess.PIPE)
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == b"locked"
            started = time.monotonic()
            async with store.locked(timeout=timeout):
                return time.monotonic() - started
        finally:
            proc.wait()

    assert asyncio.run(main(0.3, 10)) >= 0.2
    with pytest.raises(TokenStoreError, match="another process"):
        asyncio.run(main(1.0, 0.2))


# ------------------------------------------------------------------------------------ refresh


def test_a_due_token_is_refreshed_once_for_many_tasks_and_the_rotation_is_on_disk_first(tmp_path: Path) -> None:
    fake = FakeWebex()
    store, endpoint, manager = setup(tmp_path, fake)
    seeded(store)  # only a refresh token: due now

    async def main() -> list[Secret]:
        return await asyncio.gather(*(manager.access_token() for _ in range(20)))

    fake.delay = 0.05
    tokens = asyncio.run(main())
    assert {t.reveal() for t in tokens} == {"access-secret-1"} and fake.issued == 1
    on_disk = store.load()
    assert on_disk.refresh_token == Secret("refresh-secret-1")  # the rotated one, persisted
    assert on_disk.access_token == Secret("access-secret-1")
    assert on_disk.scope == tuple(SCOPES.split())
    assert fake.forms[0] == {"grant_type": "refresh_token", "client_id": "sim-client", "client_secret": CLIENT_SECRET,
                             "refresh_token": "refresh-secret-0"}


def test_a_token_that_cannot_be_saved_is_never_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeWebex()
    store, endpoint, manager = setup(tmp_path, fake)
    seeded(store)

    def no_room(tokens: Tokens) -> None:
        raise TokenStoreError("site demo: cannot write the token file: No space left on device")

    monkeypatch.setattr(store, "save", no_room)
    with pytest.raises(TokenStoreError):
        asyncio.run(manager.access_token())
    assert Secret("access-secret-1") not in manager.secrets()  # nothing handed out, nothing kept


def test_refresh_when_less_than_ten_minutes_are_left(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    fake = FakeWebex(expires_in=3600)
    store, endpoint, manager = setup(tmp_path, fake, wall=lambda: now[0])
    seeded(store)

    async def main() -> list[str]:
        seen = [(await manager.access_token()).reveal()]
        now[0] += 3600 - 601  # 601 s left: still good
        seen.append((await manager.access_token()).reveal())
        now[0] += 2  # 599 s left: refreshed first
        seen.append((await manager.access_token()).reveal())
        return seen

    assert asyncio.run(main()) == ["access-secret-1", "access-secret-1", "access-secret-2"]
    assert store.load().access_expires_at == pytest.approx(now[0] + 3600, abs=1)


def test_a_token_living_less_than_twice_the_margin_is_refreshed_at_half_time_not_every_call(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    fake = FakeWebex(expires_in=300)
    store, endpoint, manager = setup(tmp_path, fake, wall=lambda: now[0])
    seeded(store)

    async def main() -> list[str]:
        seen = [(await manager.access_token()).reveal() for _ in range(3)]
        now[0] += 151  # 149 s of 300 left
        seen.append((await manager.access_token()).reveal())
        return seen

    assert asyncio.run(main()) == ["access-secret-1"] * 3 + ["access-secret-2"]


def test_a_401_renews_once_but_a_token_another_process_refreshed_is_used_instead(tmp_path: Path) -> None:
    """Two exporters share the file; A refreshes (rotating the refresh token).  B's old access
    token is refused: B must pick up A's tokens, not refresh with the dead refresh token."""
    fake = FakeWebex()
    store_a, _, manager_a = setup(tmp_path, fake)
    seeded(store_a)
    store_b, _, manager_b = setup(tmp_path, fake)

    async def main() -> None:
        old = await manager_b.access_token()  # B refreshes: access-secret-1
        newer = await manager_a.renew(old)  # A's server refused it: A refreshes: access-secret-2
        assert newer == Secret("access-secret-2")
        got = await manager_b.renew(old)  # B: refused too, finds A's
        assert got == Secret("access-secret-2")
        assert fake.issued == 2

    asyncio.run(main())
    assert manager_a.refreshes == 1 and manager_b.refreshes == 1


def test_a_refused_refresh_token_stops_the_site_and_says_how_to_reauthorize(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeWebex()
    store, endpoint, manager = setup(tmp_path, fake)
    seeded(store, "refresh-secret-revoked")
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(ReauthorizeError) as caught:
            asyncio.run(manager.access_token())
        message = str(caught.value)
        assert "webex-exporter auth --site demo" in message and "TRK-REFRESH" in message and "invalid_grant" in message
        with pytest.raises(ReauthorizeError):  # remembered: never asks again with the refused token
            asyncio.run(manager.access_token())
    assert len(fake.forms) == 1
    assert isinstance(caught.value, AuthError)
    assert_no_secret(message, caplog.text, repr(manager), repr(store), repr(endpoint), repr(store.load()))


def test_a_refused_client_secret_says_which_setting(tmp_path: Path) -> None:
    fake = FakeWebex()
    store, endpoint, manager = setup(tmp_path, fake, secret="client-secret-WRONG")
    seeded(store)
    with pytest.raises(ReauthorizeError) as caught:
        asyncio.run(manager.access_token())
    assert "client_secret_env" in str(caught.value) and "client-secret-WRONG" not in str(caught.value)


def test_the_token_endpoint_retries_transient_failures_and_refuses_redirects(tmp_path: Path) -> None:
    fake = FakeWebex()
    store, endpoint, manager = setup(tmp_path, fake)
    seeded(store)
    fake.faults = [RawReply(503, {}, b""), RawReply(429, {"Retry-After": "0"}, b"")]
    assert asyncio.run(manager.access_token()) == Secret("access-secret-1")
    assert len(fake.forms) == 3
    fake.faults = [RawReply(503, {}, b"")] * 3
    with pytest.raises(TransportError, match="3 times"):
        asyncio.run(endpoint.refresh(Secret("refresh-secret-1")))
    fake.faults = [RawReply(307, {"Location": "https://evil.example/steal"}, b"")]
    with pytest.raises(RedirectError):
        asyncio.run(endpoint.refresh(Secret("refresh-secret-1")))
    fake.faults = [RawReply(429, {"Retry-After": "86400"}, b"")]
    with pytest.raises(RetryAfterTooLongError):
        asyncio.run(endpoint.refresh(Secret("refresh-secret-1")))
    fake.faults = [RawReply(404, {}, b"<html>no</html>")]
    with pytest.raises(EndpointError, match="token_url"):
        asyncio.run(endpoint.refresh(Secret("refresh-secret-1")))


def test_a_grant_without_an_access_token_is_an_auth_error() -> None:
    with pytest.raises(AuthError, match="without an access_token"):
        parse_grant({"refresh_token": "refresh-secret-9"}, site="demo")
    grant = parse_grant({"access_token": "access-secret-9", "expires_in": "3600"})
    assert grant.expires_in == 3600 and grant.refresh_token is None and grant.scope is None
    previous = Tokens(Secret("refresh-secret-8"), 5.0, None, None, ("a",))
    kept = grant.tokens(100.0, previous)
    assert kept.refresh_token == Secret("refresh-secret-8") and kept.scope == ("a",) and kept.access_expires_at == 3700


# ------------------------------------------------------------------------------------ seeding


def test_seeding_from_a_refresh_token_stores_the_rotated_one(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeWebex()
    store, endpoint, _ = setup(tmp_path, fake)
    with caplog.at_level(logging.DEBUG):
        tokens = asyncio.run(seed_from_refresh_token(store, endpoint, Secret("refresh-secret-0\n")))
    assert tokens.refresh_token == Secret("refresh-secret-1") == store.load().refresh_token
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert_no_secret(caplog.text, repr(tokens), str(tokens))
    with pytest.raises(ReauthorizeError):  # the old one was rotated away
        asyncio.run(seed_from_refresh_token(store, endpoint, Secret("refresh-secret-0")))
    assert store.load().refresh_token == Secret("refresh-secret-1")  # a failed seed leaves the file


def test_seeding_from_an_authorization_code(tmp_path: Path) -> None:
    fake = FakeWebex()
    store, endpoint, manager = setup(tmp_path, fake)
    seeding = seed_from_authorization_code(store, endpoint, Secret("code-secret-1"), "http://localhost:8080/cb")
    tokens = asyncio.run(seeding)
    assert fake.forms[0] == {"grant_type": "authorization_code", "client_id": "sim-client",
                             "client_secret": CLIENT_SECRET, "code": "code-secret-1",
                             "redirect_uri": "http://localhost:8080/cb"}
    assert store.load() == tokens and asyncio.run(manager.access_token()) == Secret("access-secret-1")
    with pytest.raises(ReauthorizeError):  # a code works once
        asyncio.run(seed_from_authorization_code(store, endpoint, Secret("code-secret-1"), "http://localhost:8080/cb"))


def test_authorize_url(tmp_path: Path) -> None:
    url = authorize_url(rest_settings(tmp_path), redirect_uri="http://localhost:8080/cb",
                        scopes=["meeting:admin_config_read", "spark:kms"], state="xyz")
    assert url == ("https://webexapis.com/v1/authorize?client_id=sim-client&response_type=code&redirect_uri="
                   "http%3A%2F%2Flocalhost%3A8080%2Fcb&scope=meeting%3Aadmin_config_read+spark%3Akms"
                   "&state=xyz")


# ------------------------------------------------------------------------------------ scopes


def test_missing_scopes_name_datasets_and_scopes_including_a_fan_out_parents() -> None:
    rest = [d for d in ALL_DATASETS if d.rest]
    assert missing_scopes(required_scopes(rest), rest) == {}
    datasets = [by_name("meeting_participants"), by_name("meeting_usage")]
    missing = missing_scopes({"meeting:admin_participants_read"}, datasets)
    assert missing == {"meeting_participants": ("meeting:admin_schedule_read",),
                       "meeting_usage": ("meeting:admin_config_read",)}
    with pytest.raises(MissingScopeError) as caught:
        check_scopes({"spark:kms"}, [by_name(n) for n in ("meeting_usage", "meeting_attendees", "recording_access")],
                     site="demo")
    message = str(caught.value)
    assert "meeting_usage, meeting_attendees need meeting:admin_config_read" in message
    assert "recording_access needs meeting:admin_recordings_read" in message
    assert "webex-exporter auth --site demo" in message
    assert set(caught.value.missing) == {"meeting_usage", "meeting_attendees", "recording_access"}
    check_scopes(SCOPES.split(), [by_name("meeting_usage")], site="demo")  # enough: no raise
