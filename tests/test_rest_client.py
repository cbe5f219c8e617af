"""RestClient over real HTTP on 127.0.0.1: the simulator's REST APIs (paging to the end against
its ground truth, OAuth rotation, 401, 429, faults, scopes, errors) and, for what the simulator
cannot be made to do (a next link to another host, a redirect, rows that move while paging), a
small fake Webex server.  Nothing of ours is mocked."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from aiohttp import web
from source_fixtures import NOW, make_site, sim_config

from exporter.config import RestSettings, Secret, SiteSettings
from exporter.errors import (
    AuthError,
    ForeignLinkError,
    MissingScopeError,
    OperationRetiredError,
    ParseError,
    ReauthorizeError,
    RedirectError,
    RestRequestError,
    RetryAfterTooLongError,
    TransportError,
    WindowRangeError,
)
from exporter.model.dataset_spec import Dataset
from exporter.model.datasets import ALL_DATASETS, by_name
from exporter.simulator import Simulator, SiteConfig
from exporter.simulator.rest.config import DEFAULT_SCOPES, NEXT_LINK_PARAMS, RestConfig, SiteRest
from exporter.webex.rest.client import RestClient, seed_tokens
from exporter.webex.rest.decode import rest_schema
from exporter.webex.rest.results import RestFetch
from exporter.webex.rest.tokens import Tokens, TokenStore

pytestmark = pytest.mark.timeout(60)

REST_DATASETS = [d for d in ALL_DATASETS if d.rest is not None]
START, END = NOW - timedelta(days=6), NOW  # the simulated world's 3 days, inside every listing's limits
USAGE = by_name("meeting_usage")
ATTENDEES = by_name("meeting_attendees")
INSTANCES = by_name("meeting_instances")
PARTICIPANTS = by_name("meeting_participants")
CLIENT_SECRET = "sim-client-secret"


def rest_site(base_url: str, token_url: str, tmp_path: Path, *, name: str = "demo", **throttle: Any) -> SiteSettings:
    rest = RestSettings(base_url=base_url, token_url=token_url, site_url=f"{name}.webex.com", client_id="sim-client",
                        client_secret=Secret(CLIENT_SECRET),
                        token_file=str(tmp_path / "tokens" / f"{name}.json"))
    return dataclasses.replace(make_site(name=name, **throttle), rest=rest)


def seed(site: SiteSettings, refresh_token: str) -> TokenStore:
    assert site.rest is not None
    store = TokenStore(site.rest.token_file, site=site.name)
    store.save(Tokens(Secret(refresh_token)))
    return store


@asynccontextmanager
async def rest_sim(tmp_path: Path, config: Any = None, **kw: Any) -> AsyncIterator[tuple[Simulator, RestClient]]:
    """A running simulator and a RestClient for its site ``demo``, seeded with the initial
    refresh token, on the simulator's clock.  ``kw``: RestClient options, else throttle settings."""
    options = {k: kw.pop(k) for k in ("max_page", "max_rewalks") if k in kw}
    async with Simulator(config or sim_config()) as sim:
        site = rest_site(sim.rest_url, sim.rest_token_url, tmp_path, **kw)
        seed(site, sim.rest_refresh_token("demo"))
        async with RestClient(site, wall=sim.clock.timestamp, **options) as client:
            yield sim, client


def rest_requests(sim: Simulator, endpoint: str | None = None) -> int:
    stats = sim.stats()
    return stats["rest_requests"] if endpoint is None else stats["rest_requests_by_endpoint"].get(endpoint, 0)


def assert_truth(fetch: RestFetch, truth: list[dict[str, Any]]) -> None:
    """The fetched rows are exactly the ground truth (as multisets over the truth's columns)."""
    assert truth, "an empty ground truth proves nothing"
    columns = sorted(truth[0])
    assert set(columns) <= set(fetch.table.column_names)
    ours = Counter(tuple(row[c] for c in columns) for row in fetch.table.to_pylist())
    theirs = Counter(tuple(row.get(c) for c in columns) for row in truth)
    missing, unexpected = theirs - ours, ours - theirs
    assert not missing and not unexpected, (fetch.dataset, list(missing)[:2], list(unexpected)[:2])


# ------------------------------------------------------------------------------------ paging


@pytest.mark.parametrize("dataset", REST_DATASETS, ids=lambda d: d.name)
def test_paging_to_the_end_equals_the_ground_truth(dataset: Dataset, tmp_path: Path) -> None:
    async def main() -> None:
        async with rest_sim(tmp_path, max_page=7) as (sim, client):
            fetch = await client.fetch_window(dataset, START, END)
            assert_truth(fetch, sim.rest_ground_truth("demo", dataset.name))
            assert fetch.verified and fetch.problem is None and not fetch.bad_values
            assert fetch.table.schema == rest_schema(dataset)
            assert (fetch.pages > 1 or fetch.rows <= 7) and fetch.requests == fetch.pages and fetch.retries == 0
            assert rest_requests(sim) == client.stats.requests + client.endpoint.requests  # nothing else asked
            assert client.endpoint.requests == 1  # one refresh for the whole listing

    asyncio.run(main())


def test_next_links_that_drop_parameters_and_say_max_null_are_repaired(tmp_path: Path) -> None:
    config = sim_config(rest=RestConfig(next_link_drops=NEXT_LINK_PARAMS, next_link_max_null=True))

    async def main() -> None:
        async with rest_sim(tmp_path, config, max_page=5) as (sim, client):
            for dataset in (USAGE, ATTENDEES, by_name("recording_access_details"), PARTICIPANTS):
                fetch = await client.fetch_window(dataset, START, END)
                assert_truth(fetch, sim.rest_ground_truth("demo", dataset.name))
                assert fetch.verified
            assert "400" not in sim.stats()["rest_http_status"]

    asyncio.run(main())


def test_a_run_exporting_parent_and_child_lists_the_parent_once(tmp_path: Path) -> None:
    async def main() -> None:
        async with rest_sim(tmp_path) as (sim, client):
            attendees = await client.fetch_window(ATTENDEES, START, END)
            usage = await client.fetch_window(USAGE, START, END)
            assert rest_requests(sim, "rest:/meetingReports/usage") == 1
            assert usage.cached and usage.requests == 0
            assert attendees.requests == 1 + attendees.parents  # the parent's page, then one page per meeting
            assert_truth(usage, sim.rest_ground_truth("demo", "meeting_usage"))
            assert_truth(attendees, sim.rest_ground_truth("demo", "meeting_attendees"))
            again = await asyncio.gather(*(client.fetch_window(INSTANCES, START, END) for _ in range(3)))
            assert rest_requests(sim, "rest:/meetings") == 1 and sum(f.cached for f in again) == 2
            client.forget(INSTANCES)
            assert not (await client.fetch_window(INSTANCES, START, END)).cached
            assert rest_requests(sim, "rest:/meetings") == 2

    asyncio.run(main())


# ------------------------------------------------------------------------------------ OAuth


def test_the_rotated_refresh_token_is_persisted_and_used_by_the_next_client(tmp_path: Path) -> None:
    config = sim_config(rest=RestConfig(access_token_seconds=3600))

    async def main() -> None:
        async with Simulator(config) as sim:
            site = rest_site(sim.rest_url, sim.rest_token_url, tmp_path)
            store = seed(site, sim.rest_refresh_token("demo"))
            async with RestClient(site, wall=sim.clock.timestamp) as first:
                await first.fetch_window(USAGE, START, END)
            rotated = store.load().refresh_token
            assert rotated.reveal() == sim.rest_refresh_token("demo", current=True) != sim.rest_refresh_token("demo")
            sim.clock.advance(3600)  # the access token has expired: the next client must refresh
            async with RestClient(site, wall=sim.clock.timestamp) as second:
                await second.fetch_window(INSTANCES, START, END)
                assert second.tokens.refreshes == 1
            assert store.load().refresh_token.reveal() == sim.rest_refresh_token("demo", current=True)
            assert store.load().refresh_token != rotated
            assert "401" not in sim.stats()["rest_http_status"]  # refreshed before use, never refused

    asyncio.run(main())


def test_a_401_refreshes_once_and_succeeds(tmp_path: Path) -> None:
    async def main() -> None:
        async with rest_sim(tmp_path) as (sim, client):
            await client.fetch_window(INSTANCES, START, END)
            assert sim.expire_rest_tokens() >= 1
            fetches = await asyncio.gather(client.fetch_window(USAGE, START, END),
                                           client.fetch_window(by_name("recording_access"), START, END))
            assert all(f.rows for f in fetches)
            assert client.tokens.refreshes == 2  # the first token, and one renewal for both listings
            assert client.stats.auth_requests == 2  # each listing's 401, answered by one refresh
            assert sim.stats()["rest_http_status"]["401"] == 2

    asyncio.run(main())


def test_seeding_the_store_from_a_refresh_token_and_from_an_authorization_code(tmp_path: Path) -> None:
    async def main() -> None:
        async with Simulator(sim_config()) as sim:
            site = rest_site(sim.rest_url, sim.rest_token_url, tmp_path)
            tokens = await seed_tokens(site, refresh_token=Secret(sim.rest_refresh_token("demo")),
                                       wall=sim.clock.timestamp)
            assert tokens.refresh_token.reveal() == sim.rest_refresh_token("demo", current=True)
            assert set(tokens.scope) == set(DEFAULT_SCOPES)
            with pytest.raises(ReauthorizeError, match="auth --site demo"):  # the initial one was rotated away
                await seed_tokens(site, refresh_token=Secret(sim.rest_refresh_token("demo")), wall=sim.clock.timestamp)
            code = sim.rest_authorization_code("demo", redirect_uri="http://localhost:8765/cb")
            tokens = await seed_tokens(site, code=Secret(code), redirect_uri="http://localhost:8765/cb",
                                       wall=sim.clock.timestamp)
            async with RestClient(site, wall=sim.clock.timestamp) as client:
                assert await client.scopes() == set(DEFAULT_SCOPES)
                assert (await client.fetch_window(USAGE, START, END)).rows
                assert client.tokens.refreshes == 0  # the code's access token was stored and is good

    asyncio.run(main())


def test_missing_scopes_are_named_and_a_403_stops_the_site(tmp_path: Path) -> None:
    site = SiteConfig("demo", rest=SiteRest(scopes=("meeting:admin_config_read", "spark:kms")))

    async def main() -> None:
        async with rest_sim(tmp_path, sim_config(sites=(site,))) as (sim, client):
            with pytest.raises(MissingScopeError) as caught:
                await client.check_scopes([USAGE, by_name("recording_access"), PARTICIPANTS])
            message = str(caught.value)
            assert "recording_access needs meeting:admin_recordings_read" in message
            assert "meeting_participants needs meeting:admin_participants_read meeting:admin_schedule_read" in message
            assert "meeting_usage" not in message
            await client.check_scopes([USAGE, ATTENDEES])
            with pytest.raises(MissingScopeError) as caught:
                await client.fetch_window(by_name("recording_access"), START, END)
            assert "missing required scopes" in str(caught.value) and "trackingId" in str(caught.value)
            asked = rest_requests(sim)
            with pytest.raises(MissingScopeError):  # the site is stopped: nothing more is sent
                await client.fetch_window(USAGE, START, END)
            assert rest_requests(sim) == asked

    asyncio.run(main())


# ------------------------------------------------------------------------------------ throttling, faults


def test_a_429_is_honoured_for_its_retry_after_on_the_loop_clock(tmp_path: Path) -> None:
    async def main() -> None:
        async with rest_sim(tmp_path, cooldown_seconds=0.0) as (sim, client):
            sim.set_faults(retry_after_seconds=1)
            sim.queue_fault("http429", 1, "rest:/meetings")
            loop = asyncio.get_running_loop()
            started = loop.time()
            fetch = await client.fetch_window(INSTANCES, START, END)
            assert loop.time() - started >= 1.0
            assert fetch.throttles == 1 and fetch.requests == 2 and fetch.verified
            assert client.throttle.group("rest").trips == 1
            assert fetch.throttle_wait_seconds >= 1.0  # the wait reaches the runs table and metrics

    asyncio.run(main())


def test_a_retry_after_above_the_cap_stops_the_site_without_sleeping(tmp_path: Path) -> None:
    async def main() -> None:
        async with rest_sim(tmp_path, max_retry_after_seconds=60) as (sim, client):
            sim.set_faults(retry_after_seconds=3600)
            sim.queue_fault("http429", 1, "rest:/meetings")
            started = time.monotonic()
            with pytest.raises(RetryAfterTooLongError) as caught:
                await client.fetch_window(INSTANCES, START, END)
            assert time.monotonic() - started < 5
            assert caught.value.delay == 3600 and "max_retry_after_seconds = 60" in str(caught.value)
            asked = rest_requests(sim)
            with pytest.raises(RetryAfterTooLongError):
                await client.fetch_window(USAGE, START, END)
            assert rest_requests(sim) == asked

    asyncio.run(main())


def test_a_rate_limited_site_is_listed_completely(tmp_path: Path) -> None:
    async def main() -> None:
        async with rest_sim(tmp_path, max_page=10, cooldown_seconds=0.0) as (sim, client):
            sim.set_faults(rest_rate_limit_per_minute=4, rate_limit_window_seconds=0.5)
            fetch = await client.fetch_window(USAGE, START, END)
            assert_truth(fetch, sim.rest_ground_truth("demo", "meeting_usage"))
            assert fetch.throttles >= 1 and fetch.requests == fetch.pages + fetch.throttles

    asyncio.run(main())


@pytest.mark.parametrize("kind", ["reset", "http5xx", "truncate", "malformed"])
def test_transient_faults_are_survived_with_one_extra_request_each(kind: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with rest_sim(tmp_path, max_page=10) as (sim, client):
            sim.queue_fault(kind, 2, "rest:/meetingReports/usage")
            fetch = await client.fetch_window(USAGE, START, END)
            assert_truth(fetch, sim.rest_ground_truth("demo", "meeting_usage"))
            assert rest_requests(sim, "rest:/meetingReports/usage") == fetch.pages + 2
            # aiohttp itself resends an idempotent GET once when a reused connection was reset.
            assert fetch.retries == 2 or (kind == "reset" and fetch.retries == 1)

    asyncio.run(main())


def test_transient_failures_are_bounded_by_max_attempts(tmp_path: Path) -> None:
    async def main() -> None:
        async with rest_sim(tmp_path, max_attempts=3) as (sim, client):
            sim.queue_fault("http5xx", 10, "rest:/meetingReports/usage")
            with pytest.raises(TransportError, match="failed 3 times"):
                await client.fetch_window(USAGE, START, END)
            assert rest_requests(sim, "rest:/meetingReports/usage") == 3

    asyncio.run(main())


# ------------------------------------------------------------------------------------ refusals


def test_a_window_the_listing_cannot_serve_is_refused_before_asking(tmp_path: Path) -> None:
    async def main() -> None:
        async with rest_sim(tmp_path) as (sim, client):
            with pytest.raises(WindowRangeError, match="at most 7 days"):
                await client.fetch_window(INSTANCES, NOW - timedelta(days=8), NOW)
            with pytest.raises(WindowRangeError, match="reaches back 90 days"):
                await client.fetch_window(USAGE, NOW - timedelta(days=91), NOW - timedelta(days=90))
            with pytest.raises(WindowRangeError, match="timezone-aware"):
                await client.fetch_window(USAGE, datetime(2026, 7, 1), datetime(2026, 7, 2))
            assert rest_requests(sim) == 0

    asyncio.run(main())


def test_a_400_fails_the_window_with_webex_message_and_is_not_retried(tmp_path: Path) -> None:
    """Our clock two days behind the server's: our reach check passes, Webex's refuses."""

    async def main() -> None:
        async with Simulator(sim_config()) as sim:
            site = rest_site(sim.rest_url, sim.rest_token_url, tmp_path)
            seed(site, sim.rest_refresh_token("demo"))
            async with RestClient(site, wall=lambda: sim.clock.timestamp() - 2 * 86_400) as client:
                with pytest.raises(RestRequestError) as caught:
                    await client.fetch_window(USAGE, NOW - timedelta(days=91), NOW - timedelta(days=90))
            assert "from cannot be earlier than 90 days ago" in str(caught.value)
            assert caught.value.status == 400 and caught.value.tracking_id
            assert caught.value.tracking_id in str(caught.value)
            assert rest_requests(sim, "rest:/meetingReports/usage") == 1

    asyncio.run(main())


def test_an_endpoint_that_is_not_there_makes_the_dataset_unavailable(tmp_path: Path) -> None:
    async def main() -> None:
        async with Simulator(sim_config()) as sim:
            site = rest_site(sim.rest_url + "/retired", sim.rest_token_url, tmp_path)
            seed(site, sim.rest_refresh_token("demo"))
            async with RestClient(site, wall=sim.clock.timestamp) as client:
                with pytest.raises(OperationRetiredError) as caught:
                    await client.fetch_window(USAGE, START, END)
            assert caught.value.exception_id == "http404" and caught.value.operation == "/meetingReports/usage"
            assert "No such endpoint" in str(caught.value)  # Webex's words, with its trackingId
            assert "trackingId" in str(caught.value)

    asyncio.run(main())


def test_secrets_never_appear_in_logs_errors_or_reprs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    site_config = SiteConfig("demo", rest=SiteRest(scopes=("meeting:admin_config_read",)))

    async def main() -> list[str]:
        texts: list[str] = []
        async with rest_sim(tmp_path, sim_config(sites=(site_config,))) as (sim, client):
            await client.fetch_window(USAGE, START, END)
            sim.expire_rest_tokens()
            await client.fetch_window(ATTENDEES, START, END)
            with pytest.raises(MissingScopeError) as caught:
                await client.fetch_window(INSTANCES, START, END)
            tokens = client.store.load()
            assert tokens.access_token is not None
            secrets = [tokens.refresh_token.reveal(), tokens.access_token.reveal(), CLIENT_SECRET,
                       sim.rest_refresh_token("demo")]
            texts += [str(caught.value), repr(client), repr(client.store), repr(client.tokens), repr(client.endpoint),
                      repr(tokens), str(tokens), repr(client.site)]
            return secrets + ["---"] + texts

    with caplog.at_level(logging.DEBUG):
        out = asyncio.run(main())
    cut = out.index("---")
    secrets, texts = out[:cut], out[cut + 1 :]
    assert "access token refused" in caplog.text  # the 401 was logged, without the token
    for secret in secrets:
        assert secret and secret not in caplog.text
        for text in texts:
            assert secret not in text


# ------------------------------------------------------------------------------------ a fake Webex

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def fake_webex(handler: Handler) -> AsyncIterator[tuple[str, list[web.Request]]]:
    """A server on 127.0.0.1 answering ``/v1/access_token`` like Webex and everything else with
    ``handler``; yields its base URL (``http://127.0.0.1:PORT/v1``) and the requests it saw."""
    seen: list[web.Request] = []

    async def token(request: web.Request) -> web.Response:
        await request.post()
        return web.json_response({"access_token": "fake-access", "expires_in": 86_400, "refresh_token": "fake-refresh",
                                  "refresh_token_expires_in": 7_776_000, "scope": "spark:kms"})

    async def other(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        return await handler(request)

    app = web.Application()
    app.router.add_post("/v1/access_token", token)
    app.router.add_route("*", "/{tail:.*}", other)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    server = web.TCPSite(runner, "127.0.0.1", 0)
    await server.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1", seen
    finally:
        await runner.cleanup()


@asynccontextmanager
async def fake_client(
    tmp_path: Path, handler: Handler, **kw: Any
) -> AsyncIterator[tuple[RestClient, list[web.Request]]]:
    options = {k: kw.pop(k) for k in ("max_page", "max_rewalks") if k in kw}
    async with fake_webex(handler) as (base, seen):
        site = rest_site(base, base + "/access_token", tmp_path, **kw)
        seed(site, "fake-refresh-0")
        async with RestClient(site, wall=NOW.timestamp, **options) as client:
            yield client, seen


def page(items: list[dict[str, Any]], next_url: str | None = None, **headers: str) -> web.Response:
    if next_url:
        headers["Link"] = f'<{next_url}>; rel="next"'
    return web.json_response({"items": items}, headers=headers)


def instance(n: int) -> dict[str, Any]:
    return {"id": f"series{n}_I_{n}", "start": "2026-07-14T10:00:00Z", "title": f"m{n}"}


def test_a_next_link_to_another_host_is_refused_and_never_asked(tmp_path: Path) -> None:
    async def main() -> None:
        async with fake_webex(lambda request: asyncio.sleep(0, web.json_response({"items": []}))) as (elsewhere, heard):

            async def handler(request: web.Request) -> web.Response:
                return page([instance(1)], elsewhere + "/meetings?cursor=2")  # another port: another origin

            async with fake_client(tmp_path, handler) as (client, seen):
                with pytest.raises(ForeignLinkError) as caught:
                    await client.fetch_window(INSTANCES, START, END)
                assert "not followed" in str(caught.value) and len(seen) == 1
                with pytest.raises(ForeignLinkError):  # the site is stopped
                    await client.fetch_window(USAGE, START, END)
                assert len(seen) == 1
            assert heard == []

    asyncio.run(main())


def test_a_redirect_is_never_followed(tmp_path: Path) -> None:
    async def main() -> None:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(status=307, headers={"Location": "http://127.0.0.1:9/v1/meetings?token=leak"})

        async with fake_client(tmp_path, handler) as (client, seen):
            with pytest.raises(RedirectError) as caught:
                await client.fetch_window(INSTANCES, START, END)
            assert "127.0.0.1:9/v1/meetings" in str(caught.value) and "leak" not in str(caught.value)
            assert len(seen) == 1

    asyncio.run(main())


def test_every_request_carries_bearer_utc_and_json_and_the_first_one_its_window(tmp_path: Path) -> None:
    async def main() -> None:
        async def handler(request: web.Request) -> web.Response:
            return page([])

        async with fake_client(tmp_path, handler) as (client, seen):
            fetch = await client.fetch_window(INSTANCES, START, END)
            assert fetch.rows == 0 and fetch.pages == 1 and fetch.verified
            (request,) = seen
            assert request.headers["Authorization"] == "Bearer fake-access"
            assert request.headers["timezone"] == "UTC" and request.headers["Accept"] == "application/json"
            assert dict(parse_qsl(urlsplit(str(request.url)).query)) == {
                "siteUrl": "demo.webex.com", "from": "2026-07-09T12:00:00Z", "to": "2026-07-15T12:00:00Z",
                "max": "100", "meetingType": "meeting", "state": "ended"}

    asyncio.run(main())


def test_a_compressed_answer_is_decompressed_by_us(tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.Response:
        assert "gzip" in request.headers["Accept-Encoding"]
        response = page([instance(n) for n in range(50)])
        response.enable_compression(web.ContentCoding.gzip)
        return response

    async def main() -> None:
        async with fake_client(tmp_path, handler) as (client, seen):
            fetch = await client.fetch_window(INSTANCES, START, END)
            assert fetch.rows == 50 and fetch.verified

    asyncio.run(main())


def test_rows_served_twice_while_paging_are_walked_again_until_stable(tmp_path: Path) -> None:
    """The first walk serves instance 2 on both pages (and so skips instance 3); the second walk
    is clean: its rows land, verified."""
    walks = Counter[str]()

    async def handler(request: web.Request) -> web.Response:
        part = request.query.get("part", "1")
        walks[part] += 1
        base = str(request.url.with_query({}))
        unstable = walks["1"] == 1
        if part == "1":
            return page([instance(1), instance(2)], f"{base}?part=2")
        return page([instance(2), instance(4)] if unstable else [instance(3), instance(4)])

    async def main() -> None:
        async with fake_client(tmp_path, handler) as (client, seen):
            fetch = await client.fetch_window(INSTANCES, START, END)
            assert fetch.verified and fetch.walks == 2 and fetch.problem is None
            assert sorted(fetch.table.column("meeting_id").to_pylist()) == [f"series{n}_I_{n}" for n in (1, 2, 3, 4)]
            assert len(seen) == 4

    asyncio.run(main())


def test_rows_that_keep_moving_land_unverified_with_every_row_seen(tmp_path: Path) -> None:
    calls = Counter[str]()

    async def handler(request: web.Request) -> web.Response:
        part = request.query.get("part", "1")
        calls[part] += 1
        base = str(request.url.with_query({}))
        if part == "1":
            return page([instance(1), instance(2)], f"{base}?part=2")
        return page([instance(2), instance(2 + calls["2"])])  # a different row is skipped each time

    async def main() -> None:
        async with fake_client(tmp_path, handler, max_rewalks=2) as (client, seen):
            fetch = await client.fetch_window(INSTANCES, START, END)
            assert not fetch.verified and fetch.walks == 3 and len(seen) == 6
            assert "served on two pages" in (fetch.problem or "") and "meeting_id=series2_I_2" in (fetch.problem or "")
            ids = Counter(fetch.table.column("meeting_id").to_pylist())
            assert ids == {"series1_I_1": 1, "series2_I_2": 2, "series3_I_3": 1, "series4_I_4": 1, "series5_I_5": 1}

    asyncio.run(main())


def test_a_next_link_back_to_an_earlier_page_is_not_followed_forever(tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.Response:
        return page([instance(1)], str(request.url))  # "next" is this page again

    async def main() -> None:
        async with fake_client(tmp_path, handler, max_rewalks=1) as (client, seen):
            fetch = await client.fetch_window(INSTANCES, START, END)
            assert not fetch.verified and "leads back to an earlier page" in (fetch.problem or "")
            assert len(seen) == 2 and fetch.rows == 1

    asyncio.run(main())


def test_a_504_halves_the_page_and_an_unreadable_page_fails_without_a_resend(tmp_path: Path) -> None:
    answers = [web.json_response({"message": "Gateway Timeout"}, status=504)]

    async def handler(request: web.Request) -> web.Response:
        if answers:
            return answers.pop(0)
        if request.query.get("max") == "50":
            return page([instance(1)])
        return web.Response(text="<html>maintenance</html>", content_type="text/html")

    async def main() -> None:
        async with fake_client(tmp_path, handler) as (client, seen):
            fetch = await client.fetch_window(INSTANCES, START, END)
            assert [r.query["max"] for r in seen] == ["100", "50"] and fetch.rows == 1 and fetch.retries == 1
            with pytest.raises(ParseError, match="not JSON"):
                await client.fetch_window(INSTANCES, START + timedelta(days=1), END)
            assert len(seen) == 3

    asyncio.run(main())


def test_a_server_refusing_even_a_fresh_token_is_an_auth_error_after_one_refresh(tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"message": "The request requires a valid access token", "trackingId": "T-401"},
                                 status=401)

    async def main() -> None:
        async with fake_client(tmp_path, handler) as (client, seen):
            with pytest.raises(AuthError, match="freshly refreshed") as caught:
                await client.fetch_window(INSTANCES, START, END)
            assert "T-401" in str(caught.value) and len(seen) == 2 and client.tokens.refreshes == 2

    asyncio.run(main())


def test_an_oversized_answer_is_refused_after_reading_at_most_the_limit(tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.Response:
        return page([dict(instance(n), agenda="x" * 1000) for n in range(200)])

    async def main() -> None:
        async with fake_client(tmp_path, handler, max_response_bytes=64 * 1024) as (client, seen):
            with pytest.raises(ParseError, match="larger than 65536"):
                await client.fetch_window(INSTANCES, START, END)
            assert len(seen) == 1

    asyncio.run(main())


def test_a_fan_out_id_answered_404_has_nothing_to_list_but_all_404_is_an_unavailable_endpoint(tmp_path: Path) -> None:
    gone = {"series2_I_2"}

    async def handler(request: web.Request) -> web.Response:
        if request.path.endswith("/meetings"):
            return page([instance(1), instance(2)])
        if request.query["meetingId"] in gone:
            return web.json_response({"message": "The requested resource could not be found."}, status=404)
        return page([{"id": "p1", "meetingId": request.query["meetingId"], "devices": [{"correlationId": "c1"}]}])

    async def main() -> None:
        async with fake_client(tmp_path, handler) as (client, seen):
            fetch = await client.fetch_window(PARTICIPANTS, START, END)
            assert fetch.rows == 1 and fetch.parents == 2 and fetch.not_found == 1 and fetch.verified
            start = datetime.fromisoformat("2026-07-14T10:00:00+00:00")  # carried from the parent instance
            assert fetch.table.column("meeting_start_time").to_pylist() == [start]
            gone.add("series1_I_1")
            with pytest.raises(OperationRetiredError):
                await client.fetch_window(PARTICIPANTS, START + timedelta(days=1), END)

    asyncio.run(main())

