"""Parsing in worker processes: the same typed tables as inline parsing, over real HTTP, and a
pool whose worker dies is replaced without losing the response."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from source_fixtures import NOW, assert_equals_truth, make_site, sim_config, truth_in

from exporter.errors import ParseError
from exporter.model.datasets import DATASETS, by_name
from exporter.model.windows import Window
from exporter.simulator import Simulator, SiteConfig
from exporter.webex.client import LIST_GROUP, WebexClient
from exporter.webex.decoding import ResponseDecoder, auto_workers, decode_response
from exporter.webex.paging import fetch_window
from exporter.webex.protocol import list_body

WINDOW = Window(NOW - timedelta(days=4), NOW - timedelta(days=1))


async def _fetch_all(sim: Simulator, decoder: ResponseDecoder, datasets, zone: int = 20) -> dict[str, object]:  # type: ignore[no-untyped-def]
    site = make_site(sim.url, page_size=50, bodies_per_request=4, time_zone_id=4, unlabeled_time_zone_id=zone)
    async with aiohttp.ClientSession() as session:
        client = WebexClient(site, session, decoder=decoder)
        return {d.name: await fetch_window(client, d, WINDOW, site=site, max_window_records=100_000) for d in datasets}


def test_workers_give_the_same_tables_as_inline_parsing() -> None:
    """Every dataset (containers, json columns, odd zones) typed in two worker processes equals
    the inline result and the ground truth; the pool really did the work."""
    config = sim_config(sites=(SiteConfig("demo", default_time_zone_id=45, return_scheduled_pmr_switch=True),))

    async def main() -> None:
        async with Simulator(config) as sim:
            pooled = ResponseDecoder(2, inline_below=0)
            try:
                await pooled.start()
                in_pool = await _fetch_all(sim, pooled, DATASETS, 45)
            finally:
                pooled.close()
            inline = await _fetch_all(sim, ResponseDecoder(0), DATASETS, 45)
            assert pooled.in_pool >= len(DATASETS)
            for dataset in DATASETS:
                got, want = in_pool[dataset.name], inline[dataset.name]
                assert got.table.equals(want.table), dataset.name  # type: ignore[attr-defined]
                assert (got.unknown_elements, got.bad_values) == (want.unknown_elements, want.bad_values)  # type: ignore[attr-defined]
                assert_equals_truth(got.table, truth_in(sim, dataset, WINDOW), dataset)  # type: ignore[attr-defined]

    asyncio.run(main())


def test_a_dead_worker_costs_nothing() -> None:
    """SIGKILL every worker between two windows: the next response is parsed inline, a new pool
    takes the one after, and both windows are complete."""
    dataset = by_name("meeting_attendees")

    async def main() -> None:
        async with Simulator(sim_config()) as sim:
            decoder = ResponseDecoder(1, inline_below=0)
            try:
                await _fetch_all(sim, decoder, [dataset])
                executor = decoder._executor
                assert executor is not None
                for pid in list(executor._processes):  # type: ignore[union-attr]
                    os.kill(pid, signal.SIGKILL)
                await asyncio.sleep(0.2)  # the pool notices its worker is gone
                fetched = (await _fetch_all(sim, decoder, [dataset]))[dataset.name]
                assert decoder._executor is not executor
            finally:
                decoder.close()
            assert_equals_truth(fetched.table, truth_in(sim, dataset, WINDOW), dataset)  # type: ignore[attr-defined]

    asyncio.run(main())


def test_small_responses_and_bodies_without_a_spec_stay_inline() -> None:
    """Below the size threshold no pool is started; a body that asked for elements (no spec)
    gets them even when the response is large, since elements cannot leave the process."""
    dataset = by_name("meeting_usage")

    async def main() -> None:
        async with Simulator(sim_config()) as sim:
            small = ResponseDecoder(2, inline_below=10**9)
            await _fetch_all(sim, small, [dataset])
            assert small.in_pool == 0 and small._executor is None
            untyped = ResponseDecoder(2, inline_below=0)
            site = make_site(sim.url)
            body = list_body(dataset, WINDOW, start_from=1, maximum_num=100, time_zone_id=20)
            async with aiohttp.ClientSession() as session:
                (answer,) = await WebexClient(site, session, decoder=untyped).call([body], LIST_GROUP)
            assert answer.parsed is None and answer.records and answer.record_count == len(answer.records)
            assert untyped.in_pool == 0 and untyped._executor is None

    asyncio.run(main())


def test_failed_bodies_cross_the_process_boundary_too() -> None:
    """A batch mixing a full page with pages past the end (000015) and a bad request: every
    answer comes back from the worker, classified as the inline path would."""
    dataset = by_name("meeting_attendees")

    async def main() -> None:
        async with Simulator(sim_config()) as sim:
            site = make_site(sim.url)
            bodies = [list_body(dataset, WINDOW, start_from=start, maximum_num=100, time_zone_id=20,
                                zone=ZoneInfo("Etc/GMT"), typed_for_site="demo")
                      for start in (1, 900_001)]
            decoder = ResponseDecoder(1, inline_below=0)
            try:
                await decoder.start()
                async with aiohttp.ClientSession() as session:
                    first, past_end = await WebexClient(site, session, decoder=decoder).call(bodies, LIST_GROUP)
            finally:
                decoder.close()
            assert decoder.in_pool == 1
            assert first.success and first.record_count == 100 and first.parsed.table.num_rows == 100
            assert past_end.empty and past_end.exception_id == "000015" and past_end.record_count == 0

    asyncio.run(main())


def test_an_unreadable_response_is_a_parse_error_value() -> None:
    """A worker returns the error rather than raising it, so it crosses the process boundary;
    the records of an untyped body stay elements."""
    body = list_body(by_name("meeting_usage"), WINDOW, start_from=1, maximum_num=10, time_zone_id=20)
    result = decode_response(b"<serv:message><oops", [(body.record_element, body.parse_as)])
    assert isinstance(result, ParseError) and "not well-formed" in str(result)


def test_responses_are_parsed_inline_while_the_workers_start() -> None:
    """The first large response starts the pool but does not wait ~1 s for its interpreters;
    once they are up, responses go to them."""
    from exporter.webex.protocol import Body, RecordSpec

    response = (b'<serv:message xmlns:serv="http://www.webex.com/schemas/2002/06/service">'
                b"<serv:header><serv:response><serv:result>SUCCESS</serv:result></serv:response></serv:header>"
                b"<serv:body><serv:bodyContent/></serv:body></serv:message>")
    body = Body("x.LstmeetingusageHistory", record_element="meetingUsageHistory",
                parse_as=RecordSpec("meeting_usage", "demo", ZoneInfo("UTC")))

    async def main() -> None:
        decoder = ResponseDecoder(1, inline_below=0)
        try:
            (first,) = await decoder.decode(response, [body])  # type: ignore[misc]
            assert first.success and decoder.in_pool == 0 and decoder._executor is not None
            await decoder.start()
            (second,) = await decoder.decode(response, [body])  # type: ignore[misc]
            assert second.success and decoder.in_pool == 1
        finally:
            decoder.close()

    asyncio.run(main())


@pytest.mark.parametrize("cores", [1, 2])
def test_auto_uses_no_worker_on_one_core(monkeypatch: pytest.MonkeyPatch, cores: int) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cores)))
    assert auto_workers() == (0 if cores == 1 else 2)


_ORPHAN_PROBE = """
import asyncio, os, sys, time
from exporter.webex.decoding import ResponseDecoder
from exporter.webex.protocol import RecordSpec, Body
from zoneinfo import ZoneInfo

RESPONSE = (b'<serv:message xmlns:serv="http://www.webex.com/schemas/2002/06/service">'
            b'<serv:header><serv:response><serv:result>SUCCESS</serv:result></serv:response></serv:header>'
            b'<serv:body><serv:bodyContent/></serv:body></serv:message>')
body = Body("x.LstmeetingusageHistory", record_element="meetingUsageHistory",
            parse_as=RecordSpec("meeting_usage", "demo", ZoneInfo("UTC")))
decoder = ResponseDecoder(2, inline_below=0)
asyncio.run(decoder.decode(RESPONSE, [body]))
print(" ".join(str(p) for p in decoder._executor._processes), flush=True)
time.sleep(60)
"""


def test_workers_exit_when_the_exporter_is_killed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL leaves no time to shut the pool down: the workers notice their parent is gone."""
    import subprocess
    import sys
    import time

    probe = subprocess.Popen([sys.executable, "-c", _ORPHAN_PROBE], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(pid) for pid in probe.stdout.readline().split()]  # type: ignore[union-attr]
        assert workers and all(_alive(pid) for pid in workers)
    finally:
        probe.kill()
        probe.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "parse workers outlived their killed parent"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ")[-1][0] != "Z"  # a zombie is dead, only not yet reaped
    except FileNotFoundError:
        return False


def test_workers_that_never_start_fall_back_to_inline_parsing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A parent the spawn method cannot re-import (a script on stdin) gets no workers: every
    response is still parsed, inline (also while each new pool is starting), and after a few
    tries the pool is not tried again."""
    import subprocess
    import sys

    script = _ORPHAN_PROBE.split("print(")[0].replace(
        "asyncio.run(decoder.decode(RESPONSE, [body]))",
        "deadline = time.monotonic() + 60\n"
        "while decoder.workers and time.monotonic() < deadline:\n"
        "    assert asyncio.run(decoder.decode(RESPONSE, [body]))[0].success\n"
        "    time.sleep(0.1)\n"
        "assert asyncio.run(decoder.decode(RESPONSE, [body]))[0].success\n"
        "print('workers', decoder.workers, 'in_pool', decoder.in_pool)",
    )
    done = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "workers 0 in_pool 0" in done.stdout
    assert done.stderr.count("parsing on the event loop from now on") == 1


_CTRL_C_WHILE_STARTING = """
import asyncio, os, signal, sys, time
from exporter.webex.decoding import ResponseDecoder

caught = []
signal.signal(signal.SIGINT, lambda *_: caught.append(1))

async def main():
    decoder = ResponseDecoder(2, inline_below=0)
    decoder._pool()  # the workers are now fresh interpreters, still importing
    for pause in (0.0, 0.05, 0.3):
        time.sleep(pause)
        os.killpg(0, signal.SIGINT)  # a terminal's Ctrl-C: every process of the group
    await decoder.start()
    failed = [repr(f.exception()) for f in decoder._starting if f.exception() is not None]
    decoder.close()
    print(f"caught={len(caught)} failed={failed}")

asyncio.run(main())
"""


def test_ctrl_c_while_the_workers_start_reaches_only_the_exporter() -> None:
    """Ctrl-C goes to the whole process group: a worker still starting (importing lxml and
    pyarrow) neither dies of it nor prints a traceback; the exporter itself gets every one."""
    done = subprocess.run([sys.executable, "-c", _CTRL_C_WHILE_STARTING], capture_output=True, text=True,
                          timeout=120, start_new_session=True, cwd=os.getcwd())
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "caught=3 failed=[]", done.stdout + done.stderr[-3000:]
    assert "KeyboardInterrupt" not in done.stderr and "Traceback" not in done.stderr, done.stderr[-3000:]
