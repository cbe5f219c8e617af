"""The stop state a site's clients (XML, REST, REST tokens) check before every request."""

from __future__ import annotations

import asyncio
import logging

import pytest

from exporter.errors import AuthError, RedirectError, RetryAfterTooLongError
from exporter.webex.site_stop import SiteStop


def test_the_first_fatal_error_is_kept_logged_once_and_raised_afresh(caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        stop = SiteStop("demo")
        stop.check()  # nothing stops a new client
        first = AuthError("site demo: credentials refused")
        assert stop.die(first) is first
        later = RedirectError("site demo: answered 302")
        assert stop.die(later) is later  # returned to raise, but the first cause is what is kept
        for _ in range(2):
            with pytest.raises(AuthError, match="credentials refused") as raised:
                stop.check()
            assert raised.value is not first  # one shared instance would collect every caller's traceback

    with caplog.at_level(logging.ERROR):
        asyncio.run(go())
    assert [r.getMessage() for r in caplog.records].count("stopping the site") == 1


def test_a_hold_stops_requests_until_its_time_and_names_the_request() -> None:
    async def go() -> None:
        stop = SiteStop("demo")
        error = stop.hold(7200, "429", 600, what="GET /meetingReports/usage")
        assert isinstance(error, RetryAfterTooLongError) and error.delay == 7200
        assert "GET /meetingReports/usage: the server asked us to wait 7200 s (429, Retry-After)" in str(error)
        assert "max_retry_after_seconds = 600" in str(error)
        with pytest.raises(RetryAfterTooLongError) as raised:
            stop.check()
        assert raised.value.delay is not None and 7100 < raised.value.delay <= 7200
        shorter = SiteStop("demo")
        shorter.hold(0, "000045", 600)  # a hold that has already run out stops nothing
        shorter.check()
        assert stop.fatal is None

    asyncio.run(go())
