"""WebexClient over the real simulator: auth, tickets, faults, throttling, secrets."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from source_fixtures import NOW, assert_equals_truth, sim_config, simulated, truth_in

from exporter.errors import ApiError, AuthError, SitePausedError, TransportError
from exporter.model.datasets import by_name
from exporter.model.windows import Window
from exporter.simulator import Simulator, SiteConfig
from exporter.webex.paging import fetch_window
from exporter.webex.protocol import Body, list_body
from exporter.webex.resend import MAX_GSB_PAUSES

WINDOW = Window(NOW - timedelta(days=3), NOW - timedelta(days=1))
USAGE = by_name("meeting_usage")
TOKEN_SITE = SiteConfig("demo", access_tokens={"tok-secret-1": "admin"})


def usage_body(start_from: int = 1, maximum_num: int = 10) -> Body:
    return list_body(USAGE, WINDOW, start_from=start_from, maximum_num=maximum_num, time_zone_id=20)


def operations(sim) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return sim.stats()["requests_by_operation"]


# ------------------------------------------------------------------------------------------ auth


def test_password_auth_sends_the_password_with_every_request_and_never_authenticates() -> None:
    async def main() -> None:
        async with simulated(auth="password") as (sim, client, site):
            await asyncio.gather(*(client.call([usage_body()]) for _ in range(3)))
            assert operations(sim) == {"LstmeetingusageHistory": 3}
            assert client.stats.auth_requests == 0

    asyncio.run(main())


@pytest.mark.parametrize("auth", ["ticket", "token"])
def test_ticket_and_token_auth_exchange_once_for_a_shared_ticket(auth: str) -> None:
    """Twenty concurrent calls share one AuthenticateUser (password or access token -> ticket)."""
    config = sim_config(sites=(TOKEN_SITE,))
    credentials = {"password": None, "access_token": "tok-secret-1"} if auth == "token" else {}

    async def main() -> None:
        async with simulated(config, auth=auth, **credentials) as (sim, client, site):
            answers = await asyncio.gather(*(client.call([usage_body()]) for _ in range(20)))
            assert all(a[0].success for a in answers)
            assert operations(sim) == {"AuthenticateUser": 1, "LstmeetingusageHistory": 20}

    asyncio.run(main())


def test_the_ticket_is_renewed_before_its_time_to_live_ends() -> None:
    """TTL 100 s on the simulator clock; the client reads the same clock: after 80 s the ticket is
    still used, after 90 s (past 85% of the TTL, before it expires) it is renewed first, so the
    server never sees an expired ticket."""

    async def main() -> None:
        async with simulated(sim_config(ticket_ttl_seconds=100), auth="ticket") as (sim, client, site):
            client._clock = sim.clock.timestamp  # the simulator's clock moves, not ours
            await client.call([usage_body()])
            sim.clock.advance(80)
            await client.call([usage_body()])
            assert operations(sim)["AuthenticateUser"] == 1
            sim.clock.advance(10)
            await client.call([usage_body()])
            assert operations(sim)["AuthenticateUser"] == 2
            assert "030003" not in sim.stats()["exceptions"]
            assert client.ticket_renew_at == pytest.approx(sim.clock.timestamp() + 85, abs=1)

    asyncio.run(main())


def test_an_expired_ticket_triggers_exactly_one_reauthentication() -> None:
    async def main() -> None:
        async with simulated(auth="ticket") as (sim, client, site):
            await client.call([usage_body()])
            sim.expire_tickets()
            answers = await asyncio.gather(*(client.call([usage_body()]) for _ in range(5)))
            assert all(a[0].success for a in answers)
            assert operations(sim)["AuthenticateUser"] == 2  # five callers, one renewal

    asyncio.run(main())


@pytest.mark.parametrize(
    "auth, credentials, code, operation",
    [
        ("password", {"password": "wrong-secret-pw"}, "030002", "LstmeetingusageHistory"),
        ("ticket", {"password": "wrong-secret-pw"}, "03000", "AuthenticateUser"),  # the simulator says 030001 here
        ("ticket", {"webex_id": "nobody", "password": "wrong-secret-pw"}, "030001", "AuthenticateUser"),
        ("token", {"password": None, "access_token": "bad-secret-token"}, "030004", "AuthenticateUser"),
    ],
)
def test_refused_credentials_stop_the_site_at_once_and_are_never_retried(  # type: ignore[no-untyped-def]
    auth, credentials, code, operation
) -> None:
    async def main() -> None:
        async with simulated(sim_config(sites=(TOKEN_SITE,)), auth=auth, **credentials) as (sim, client, site):
            with pytest.raises(AuthError) as caught:
                await fetch_window(client, USAGE, WINDOW, site=site, max_window_records=1000)
            message = str(caught.value)
            assert "site demo" in message and code in message and "Not retried" in message
            assert operations(sim) == {operation: 1}  # exactly one request: retries lock accounts
            with pytest.raises(AuthError):  # every later call fails without sending anything
                await client.call([usage_body()])
            assert sim.stats()["requests"] == 1

    asyncio.run(main())


class _Collect(logging.Handler):
    """Keeps every record: attached to the ``exporter`` logger itself, so it sees our records even
    when logging was configured not to propagate them to the root (``exporter.obs.logs``)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_secrets_never_appear_in_exceptions_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # everything else (aiohttp, asyncio) through the root
    ours, handler = logging.getLogger("exporter"), _Collect()
    level = ours.level
    ours.addHandler(handler)
    ours.setLevel(logging.DEBUG)
    seen: list[str] = []

    async def main() -> str:
        config = sim_config(sites=(SiteConfig("demo", users={"admin": "pw-Secret-42"},
                                              access_tokens={"tok-Secret-77": "admin"}),))
        async with simulated(config, auth="ticket", password="pw-Secret-42") as (sim, client, site):
            sim.queue_fault("http5xx", 1)
            sim.queue_fault("malformed", 1)
            await client.call([usage_body()])
            sim.expire_tickets()
            await client.call([usage_body()])
            ticket = client._ticket.reveal()  # type: ignore[union-attr]
            seen.extend([repr(client), repr(site), str(site), repr(usage_body())])
            sim.set_faults(rates={"http5xx": 1.0})
            with pytest.raises(TransportError) as caught:
                await client.call([usage_body()])
            seen.extend([str(caught.value), repr(caught.value)])
        async with simulated(config, auth="password", password="wrong-Secret-pw") as (sim, client, site):
            with pytest.raises(AuthError) as refused:
                await client.call([usage_body()])
            seen.extend([str(refused.value), repr(refused.value)])
        async with simulated(config, auth="token", password=None, access_token="bad-Secret-tok") as (sim, client, site):
            with pytest.raises(AuthError) as refused:
                await client.call([usage_body()])
            seen.extend([str(refused.value), repr(client)])
        return ticket

    try:
        ticket = asyncio.run(main())
    finally:
        ours.removeHandler(handler)
        ours.setLevel(level)
    records = caplog.records + handler.records
    seen.extend(record.getMessage() for record in records)
    seen.extend(str(record.exc_info) for record in records if record.exc_info)
    text = "\n".join(seen)
    assert "credentials refused" in text and "ticket obtained" in text  # the logs and errors were captured
    for secret in ("pw-Secret-42", "wrong-Secret-pw", "tok-Secret-77", "bad-Secret-tok", ticket):
        assert secret not in text


# ------------------------------------------------------------------------------------------ faults


@pytest.mark.parametrize("kind", ["reset", "http5xx", "http403", "http429", "throttle", "truncate", "malformed",
                                  "gsb_backup"])
def test_every_fault_is_survived_with_complete_data_and_one_extra_request_each(kind: str) -> None:
    async def main() -> None:
        async with simulated(page_size=10, bodies_per_request=2) as (sim, client, site):
            sim.set_faults(retry_after_seconds=0)
            sim.queue_fault(kind, 2, operation=USAGE.operation)
            fetch = await fetch_window(client, USAGE, WINDOW, site=site, max_window_records=10_000)
            truth = truth_in(sim, USAGE, WINDOW)
            assert_equals_truth(fetch.table, truth, USAGE)
            pages = -(-len(truth) // 10)
            ideal = 1 + -(-(pages - 1) // 2)
            assert sim.stats()["faults"] == {kind: 2}
            assert sim.stats()["requests"] == fetch.requests == ideal + 2  # each fault costs one resend
            throttled = kind in ("http403", "http429", "throttle")
            assert fetch.throttles == (2 if throttled else 0)
            assert fetch.retries == (0 if throttled else 2)
            if kind == "gsb_backup":
                assert client.stats.pauses == 2
            # Two cool-downs in a row (0.2 s from the site settings, then doubled: the server kept
            # throttling; 429 carries Retry-After: 0, used as it is) or two GSB pauses (0.1 s each).
            waited = {"http403": 0.6, "throttle": 0.6, "gsb_backup": 0.2}.get(kind, 0.0)
            assert fetch.throttle_wait_seconds == pytest.approx(waited, abs=0.05)

    asyncio.run(main())


def test_random_faults_of_every_kind_at_once() -> None:
    """6% of requests meet each of eight faults (seeded, ~40% in all), the first two answers come
    from the backup site, bodies are ISO-8859-1 with unknown elements and ``MeetingUUID``: four
    datasets still come back whole, with requests bounded by a small multiple of the ideal."""
    kinds = ["reset", "http5xx", "http403", "http429", "throttle", "truncate", "malformed", "gsb_backup"]

    async def main() -> None:
        async with simulated(page_size=10, bodies_per_request=3, max_attempts=12) as (sim, client, site):
            sim.set_faults(retry_after_seconds=0, rates={kind: 0.06 for kind in kinds}, latency_ms=1,
                           latency_jitter_ms=2, http5xx_status=502, gsb_backup_requests=2, encoding="ISO-8859-1",
                           schema_drift_fraction=0.3, capital_uuid_fraction=0.5)
            ideal = 0
            for name in ("meeting_usage", "meeting_attendees", "event_attendees", "scheduled_sessions"):
                dataset = by_name(name)
                fetch = await fetch_window(client, dataset, WINDOW, site=site, max_window_records=10_000)
                truth = truth_in(sim, dataset, WINDOW)
                assert_equals_truth(fetch.table, truth, dataset)
                pages = -(-len(truth) // 10)
                ideal += 1 + -(-(pages - 1) // 3)
            stats = sim.stats()
            assert sum(stats["faults"].values()) >= 5 and client.stats.pauses >= 2
            assert stats["requests"] <= 2 * ideal + 5

    asyncio.run(main())


def test_transient_failures_are_bounded_by_max_attempts() -> None:
    async def main() -> None:
        async with simulated(max_attempts=4) as (sim, client, site):
            sim.set_faults(rates={"http5xx": 1.0})
            with pytest.raises(TransportError, match="failed 4 times; last: http503"):
                await client.call([usage_body()])
            assert sim.stats()["requests"] == 4

    asyncio.run(main())


def test_a_site_that_stays_on_its_backup_is_paused_then_stopped() -> None:
    async def main() -> None:
        async with simulated(gsb_pause_seconds=0.02) as (sim, client, site):
            sim.set_faults(gsb_backup_seconds=3600)
            with pytest.raises(SitePausedError, match="gsbStatus BACKUP"):
                await client.call([usage_body()])
            assert sim.stats()["requests"] == MAX_GSB_PAUSES + 1

    asyncio.run(main())


def test_an_unhandled_exception_id_fails_the_window_loudly_with_its_code() -> None:
    async def main() -> None:
        async with simulated() as (sim, client, site):
            bogus = Body("java:com.webex.service.binding.history.LstNoSuchHistory", label="LstNoSuchHistory probe")
            with pytest.raises(ApiError) as caught:
                await client.call([bogus])
            assert caught.value.exception_id == "000001" and "LstNoSuchHistory probe" in str(caught.value)
            assert sim.stats()["requests"] == 1

    asyncio.run(main())


def test_000053_shrinks_the_batches_to_what_the_server_accepts() -> None:
    async def main() -> None:
        config = sim_config(body_content_limit=2)
        async with simulated(config, page_size=5, bodies_per_request=6) as (sim, client, site):
            fetch = await fetch_window(client, USAGE, WINDOW, site=site, max_window_records=10_000)
            truth = truth_in(sim, USAGE, WINDOW)
            assert_equals_truth(fetch.table, truth, USAGE)
            assert client.bodies_per_request == 2
            stats = sim.stats()
            assert stats["exceptions"].get("000053", 0) <= 2  # concurrent batches may both learn it
            pages = -(-len(truth) // 5)
            assert stats["requests"] <= 1 + -(-(pages - 1) // 2) + 2

    asyncio.run(main())


@pytest.mark.parametrize("reason", ["請求中的 BodyContent 計數必須小於 {number}", "請求中的 BodyContent 計數過多"])
def test_000053_in_another_language_still_shrinks_the_batches(reason: str) -> None:
    """A site answering 000053 in zh-TW: with the number in it the limit is read; without any,
    the client halves its batches (6 -> 3 -> 1 here) and the window still lands complete."""

    async def main() -> None:
        config = sim_config(body_content_limit=2, body_content_limit_reason=reason)
        async with simulated(config, page_size=5, bodies_per_request=6) as (sim, client, site):
            fetch = await fetch_window(client, USAGE, WINDOW, site=site, max_window_records=10_000)
            assert_equals_truth(fetch.table, truth_in(sim, USAGE, WINDOW), USAGE)
            assert client.bodies_per_request <= 2
            assert 1 <= sim.stats()["exceptions"].get("000053", 0) <= 6

    asyncio.run(main())


# ------------------------------------------------------------------------------------------ throttling


def test_a_simulated_rate_limit_is_tripped_at_most_once_over_a_long_listing() -> None:
    """The simulator allows 30 requests a minute (cool-down 0.3 s); the client is configured for
    6000.  A listing of ~40 one-body requests trips the limit once, learns it (0.9 x what got
    through), and finishes in the budget the server gives back after its block, resending only
    the requests that were in flight during that one episode."""
    dataset = by_name("meeting_attendees")
    config = sim_config()
    truth = truth_in(Simulator(config), dataset, WINDOW)  # the world is deterministic: size pages first
    page = -(-len(truth) // 48)

    async def main() -> None:
        async with simulated(config, bodies_per_request=1, max_concurrency=4, requests_per_minute=6000,
                             cooldown_seconds=0.3, page_size=page) as (sim, client, site):
            sim.set_faults(rate_limit_per_minute=30, throttle_cooldown_seconds=0.3)
            started = asyncio.get_running_loop().time()
            fetch = await fetch_window(client, dataset, WINDOW, site=site, max_window_records=10_000)
            elapsed = asyncio.get_running_loop().time() - started
            assert_equals_truth(fetch.table, truth, dataset)
            group = client.throttle.group(dataset.api_group)
            pages = -(-len(truth) // page)
            stats = sim.stats()
            assert group.trips == 1 and 27 <= group.learned_limit <= 30  # 0.9 x what got through
            assert 1 <= stats["throttled"] <= 4  # the requests in flight when the limit hit
            assert fetch.requests == stats["requests"] <= pages + 4
            assert fetch.throttles == stats["throttled"] and fetch.throttle_wait_seconds > 0
            assert elapsed < 10

    asyncio.run(main())
