"""The simulated Webex REST APIs over real HTTP: paging to the end equals REST ground truth, the
report validation rules on the simulator clock, OAuth token rotation and expiry, scopes, rate
limits and faults, next-link quirks, the timezone header, and agreement with the XML side.

Rows are landed here by a converter of the test's own (wire JSON -> typed columns), so the
simulator's ground truth is checked against what actually went over the wire.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from exporter.model.dataset_spec import Dataset
from exporter.model.datasets import ALL_DATASETS, by_name
from exporter.simulator import SimulatorConfig, load_profile
from exporter.simulator.rest.config import RestConfig, SiteRest
from exporter.simulator.site_config import SiteConfig

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
SITE_URL = "demo.webex.com"
REST = [d for d in ALL_DATASETS if d.rest]
CLIENT = {"client_id": "sim-client", "client_secret": "sim-client-secret"}


# --------------------------------------------------------------------------- helpers


def iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_link(header: str | None) -> str | None:
    """The URL of a ``Link: <url>; rel="next"`` header."""
    for part in (header or "").split(","):
        url, _, rel = part.partition(";")
        if 'rel="next"' in rel:
            return url.strip().strip("<>")
    return None


async def call(http: aiohttp.ClientSession, url: str, token: str | None, params: dict | None = None,
               headers: dict | None = None) -> tuple[int, Any, Any]:
    hdrs = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
    async with http.get(url, params=params, headers=hdrs) as r:
        return r.status, await r.json(content_type=None), r.headers


async def walk(http: aiohttp.ClientSession, url: str, token: str, params: dict, *, headers: dict | None = None,
               fix: Callable[[str], str] | None = None) -> tuple[list[dict], int]:
    """Every item of a listing, following ``rel="next"`` (verbatim, or through ``fix``)."""
    items: list[dict] = []
    requests = 0
    target: str | None = url
    query: dict | None = params
    while target:
        status, body, hdrs = await call(http, target, token, query, headers)
        requests += 1
        assert status == 200, body
        items += body["items"]
        target, query = next_link(hdrs.get("Link")), None
        if target and fix:
            target = fix(target)
        assert requests < 500, "runaway paging"
    return items, requests


def land(ds: Dataset, item: dict) -> list[dict]:
    """A wire item as typed rows, the way an exporter should land it (the test's own converter)."""
    assert ds.rest
    declared = ds.column_by_name

    def value(raw: Any, f: Any) -> Any:
        type_ = declared[f.column].type if f.column in declared else f.type
        if raw is None:
            return None
        if type_ == "timestamp":
            if raw.startswith("1970-01-01T00:00:00"):
                return None
            return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(timezone.utc)
        if type_ == "json":
            return json.dumps(raw, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        if type_ == "int":
            return int(raw)
        if type_ == "bool":
            return bool(raw)
        text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
        return text.lower() if f.lower else text

    explode = ds.rest.explode
    inner = [f for f in ds.rest.fields if explode and f.path.startswith(explode + ".")]
    top = {f.column: value(item.get(f.path), f) for f in ds.rest.fields if f not in inner}
    if not explode:
        return [top]
    rows = []
    for element in item.get(explode) or [None]:
        row = dict(top)
        for f in inner:
            row[f.column] = value(element.get(f.path.split(".", 1)[1]) if element else None, f)
        rows.append(row)
    return rows


def truth(sim: Any, dataset: str, site: str = "demo") -> list[dict]:
    return [{k: v for k, v in row.items() if k != "site"} for row in sim.rest_ground_truth(site, dataset)]


def frozen(row: dict) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in row.items()))


def top_params(ds: Dataset, now: datetime, page: int) -> dict:
    """One request covering the whole small world (3 days) within the dataset's limits."""
    assert ds.rest
    params = dict(ds.rest.params)
    start = now - timedelta(days=min(ds.rest.window_days, 29))
    params.update({"from": iso(start), "to": iso(now + timedelta(seconds=1)), "max": str(page)})
    if ds.rest.path.startswith("/meetingReports"):
        params["siteUrl"] = SITE_URL
    return params


async def export(sim: Any, http: aiohttp.ClientSession, token: str, ds: Dataset, page: int) -> tuple[list[dict], int]:
    """Land every row of ``ds`` over HTTP: one window for a top-level listing; the parent's, then
    one listing per parent id, for a fan-out (with the parent's carry columns)."""
    assert ds.rest
    if ds.rest.parent is None:
        items, requests = await walk(http, sim.rest_url + ds.rest.path, token, top_params(ds, NOW, page))
        return [row for item in items for row in land(ds, item)], requests
    parent = by_name(ds.rest.parent)
    assert parent.rest
    parents, requests = await walk(http, sim.rest_url + parent.rest.path, token, top_params(parent, NOW, page))
    rows = []
    for p_item in parents:
        p_row = land(parent, p_item)[0]
        params = {**dict(ds.rest.params), ds.rest.id_param: p_row[ds.rest.parent_id], "max": str(page)}
        if ds.rest.child_time_range:
            params.update({k: v for k, v in top_params(parent, NOW, page).items() if k in ("from", "to", "siteUrl")})
        items, n = await walk(http, sim.rest_url + ds.rest.path, token, params)
        requests += n
        carry = {child: p_row[column] for column, child in ds.rest.carry}
        rows += [{**row, **carry} for item in items for row in land(ds, item)]
    return rows, requests


def rest_sim(sim_factory: Callable[..., Any], **rest: Any) -> Any:
    return sim_factory(twin_fraction=0.1, near_twin_fraction=0.1, recording_growth_days=5,
                       rest=RestConfig(**rest))


# --------------------------------------------------------------------------- paging and ground truth


@pytest.mark.parametrize("dataset", [d.name for d in REST])
def test_paging_to_the_end_equals_rest_ground_truth(sim_factory: Callable[..., Any], dataset: str) -> None:
    sim = rest_sim(sim_factory)
    ds = by_name(dataset)
    expected = truth(sim, dataset)
    assert expected, "the small world has rows for every REST dataset"

    async def main() -> tuple[list[dict], int]:
        async with aiohttp.ClientSession() as http:
            return await export(sim, http, sim.rest_access_token("demo"), ds, page=3)

    rows, requests = asyncio.run(main())
    assert rows == expected  # same rows, same order, same typed values
    assert requests <= 2 + len(expected)  # pages of 3 (fan-outs: a listing per parent)
    assert sim.stats()["rest_requests"] == requests


def test_ground_truth_is_typed_as_landed(sim_factory: Callable[..., Any]) -> None:
    sim = rest_sim(sim_factory)
    usage = truth(sim, "meeting_usage")
    assert all(isinstance(r["session_key"], int) and r["meeting_start_time"].tzinfo is timezone.utc for r in usage)
    assert all(json.loads(r["tracking_codes"]) is not None for r in usage)
    attendees = truth(sim, "meeting_attendees")
    assert {r["participant_type"] for r in attendees} == {"host", "attendee"}
    assert all(isinstance(r["meeting_number"], str) and isinstance(r["registered"], bool) for r in attendees)
    training = truth(sim, "training_attendees")
    assert {r["registered"] for r in training} <= {"true", "false"}  # a JSON bool landing in an XML str column
    participants = truth(sim, "meeting_participants")
    assert all(r["correlation_id"] and r["meeting_start_time"] is not None for r in participants)
    details = truth(sim, "recording_access_details")
    assert all(r["recording_time"] <= r["access_time"] for r in details)


# --------------------------------------------------------------------------- the same world as the XML API


def test_rest_reports_carry_the_xml_worlds_rows(sim_factory: Callable[..., Any]) -> None:
    sim = rest_sim(sim_factory)
    xml_usage = {r["conf_id"]: r for r in sim.ground_truth("demo", "meeting_usage")}
    rest_usage = truth(sim, "meeting_usage")
    assert {r["meeting_id"] for r in rest_usage} <= {sim.rest_instance_id("demo", c) for c in xml_usage}
    by_id = {sim.rest_instance_id("demo", c): r for c, r in xml_usage.items()}
    for row in rest_usage:
        xml = by_id[row["meeting_id"]]
        assert (row["conf_name"], row["meeting_start_time"], row["duration"], row["total_people_minutes"]) == (
            xml["conf_name"], xml["meeting_start_time"], xml["duration"], xml["total_people_minutes"])
    # Attendee report rows are the XML attendee rows of those meetings, twins included.
    reported = {u["meeting_id"] for u in rest_usage}
    xml_rows = Counter((sim.rest_instance_id("demo", r["conf_id"]), r["name"], r["email"], r["join_time"])
                       for r in sim.ground_truth("demo", "meeting_attendees")
                       if sim.rest_instance_id("demo", r["conf_id"]) in reported)
    rest_rows = Counter((r["meeting_id"], r["name"], r["email"] or None, r["join_time"])
                        for r in truth(sim, "meeting_attendees"))
    assert rest_rows == Counter({(m, n, e or None, j): c for (m, n, e, j), c in xml_rows.items()})
    assert any(c > 1 for c in rest_rows.values()), "twins come through as identical report rows"
    # Recordings: the same counters.
    xml_rec = {sim.rest_recording_id("demo", r["record_id"]): r for r in sim.ground_truth("demo", "recording_access")}
    for row in truth(sim, "recording_access"):
        assert (row["viewed"], row["downloaded"], row["creation_time"]) == (
            xml_rec[row["recording_id"]]["viewed"], xml_rec[row["recording_id"]]["downloaded"],
            xml_rec[row["recording_id"]]["creation_time"])


def test_participants_group_a_persons_joins_as_devices(sim_factory: Callable[..., Any]) -> None:
    sim = rest_sim(sim_factory)
    participants = truth(sim, "meeting_participants")
    per_participant = Counter(r["participant_id"] for r in participants)
    assert any(n > 1 for n in per_participant.values()), "rejoins and second devices are extra devices"
    assert len({r["correlation_id"] for r in participants}) == len(participants)
    for row in participants:
        assert row["participant_id"].startswith(row["meeting_id"] + "_")
        assert row["joined_time"] <= row["device_joined_time"] <= row["device_left_time"] <= row["left_time"]
        assert row["device_duration_seconds"] == (row["device_left_time"] - row["device_joined_time"]).total_seconds()
    # One participant per person (e-mail, else name) and meeting.
    people = {(r["meeting_id"], r["email"] or r["display_name"]) for r in participants}
    assert len(people) == len(per_participant)


def test_access_details_add_up_to_the_summary(sim_factory: Callable[..., Any]) -> None:
    sim = rest_sim(sim_factory)
    for when in (NOW, NOW + timedelta(days=2)):  # the counters keep growing (recording_growth_days)
        sim.clock.set(when)
        details = Counter()
        for row in truth(sim, "recording_access_details"):
            details[(row["recording_id"], "v")] += row["viewed"]
            details[(row["recording_id"], "d")] += row["downloaded"]
        for row in truth(sim, "recording_access"):
            assert details[(row["recording_id"], "v")] == row["viewed"]
            assert details[(row["recording_id"], "d")] == row["downloaded"]


# --------------------------------------------------------------------------- wire format


def test_timezone_header_writes_times_in_that_zone(sim_factory: Callable[..., Any]) -> None:
    sim = rest_sim(sim_factory)
    token = sim.rest_access_token("demo")
    params = {"siteUrl": SITE_URL, "max": "100"}

    async def main() -> tuple:
        async with aiohttp.ClientSession() as http:
            usage = sim.rest_url + "/meetingReports/usage"
            utc = await call(http, usage, token, params)
            shanghai = await call(http, usage, token, params, {"timezone": "Asia/Shanghai"})
            la = await call(http, usage, token, params, {"timezone": "America/Los_Angeles"})
            bad = await call(http, usage, token, params, {"timezone": "Mars/Olympus"})
            meetings = await call(http, sim.rest_url + "/meetings", token,
                                  {"meetingType": "meeting", "state": "ended", "max": "1"})
            part = await call(http, sim.rest_url + "/meetingParticipants", token,
                              {"meetingId": meetings[1]["items"][0]["id"]}, {"timezone": "Asia/Shanghai"})
            return utc, shanghai, la, bad, part

    utc, shanghai, la, bad, part = asyncio.run(main())
    assert utc[0] == shanghai[0] == la[0] == 200
    assert all(i["start"].endswith("Z") for i in utc[1]["items"])
    assert all(i["start"].endswith("+08:00") and i["end"].endswith("+08:00") for i in shanghai[1]["items"])
    offsets = {i["start"][-6:] for i in la[1]["items"]}
    assert offsets == {"-08:00", "-07:00"}, "2026-03-08 is the US switch to daylight time"
    for a, b, c in zip(utc[1]["items"], shanghai[1]["items"], la[1]["items"]):
        instants = {datetime.fromisoformat(x["start"].replace("Z", "+00:00")) for x in (a, b, c)}
        assert len(instants) == 1
        local = datetime.fromisoformat(c["start"])
        assert local.utcoffset() == local.astimezone(ZoneInfo("America/Los_Angeles")).utcoffset()
    assert bad[0] == 400 and "timezone" in bad[1]["errors"][0]["description"]
    device = part[1]["items"][0]["devices"][0]
    assert device["joinedTime"].endswith(".000+08:00")


def test_attendee_rows_mix_number_types_and_case(sim_factory: Callable[..., Any]) -> None:
    sim = rest_sim(sim_factory)
    token = sim.rest_access_token("demo")
    meetings = [r["meeting_id"] for r in truth(sim, "meeting_usage")]

    async def main() -> list[dict]:
        async with aiohttp.ClientSession() as http:
            items = []
            for meeting in meetings:
                got, _ = await walk(http, sim.rest_url + "/meetingReports/attendees", token,
                                    {"siteUrl": SITE_URL, "meetingId": meeting, "from": iso(NOW - timedelta(days=29)),
                                     "to": iso(NOW), "max": "1000"})
                joined = [i["joinedTime"] for i in got]
                assert joined == sorted(joined, reverse=True)  # newest join first
                items += got
            return items

    items = asyncio.run(main())
    assert {type(i["meetingNumber"]) for i in items} == {int, str}
    assert {i["participantType"] for i in items} >= {"ATTENDEE", "attendee"}
    assert "password" not in json.dumps(items).lower()


def test_attendees_by_meeting_number_or_title_are_grouped_per_meeting(sim_factory: Callable[..., Any]) -> None:
    sim = rest_sim(sim_factory)
    token = sim.rest_access_token("demo")
    usage = truth(sim, "meeting_usage")
    numbers = Counter(r["session_key"] for r in usage)
    number = max(numbers, key=lambda n: numbers[n])  # a recurring series, if the world has one
    title = next(r["conf_name"] for r in usage if r["session_key"] == number)
    window = {"siteUrl": SITE_URL, "from": iso(NOW - timedelta(days=29)), "to": iso(NOW), "max": "7"}

    async def main() -> tuple[list[dict], list[dict]]:
        async with aiohttp.ClientSession() as http:
            url = sim.rest_url + "/meetingReports/attendees"
            by_number, _ = await walk(http, url, token, {**window, "meetingNumber": str(number)})
            by_title, _ = await walk(http, url, token, {**window, "meetingTitle": title})
            return by_number, by_title

    by_number, by_title = asyncio.run(main())
    expected = [r for r in truth(sim, "meeting_attendees") if r["meeting_number"] == str(number)]
    assert numbers[number] > 1 and expected
    assert Counter(map(frozen, (row for i in by_number for row in land(by_name("meeting_attendees"), i)))) == Counter(
        map(frozen, expected))
    groups = [i["meetingId"] for i in by_number]
    assert groups == sorted(groups, key=groups.index)  # each meeting's rows together ...
    firsts = [max(i["joinedTime"] for i in by_number if i["meetingId"] == m) for m in dict.fromkeys(groups)]
    assert firsts == sorted(firsts, reverse=True)  # ... groups by their newest join
    assert {i["meetingTitle"] for i in by_title} == {title} and len(by_title) >= len(by_number)


def test_usage_is_newest_first_and_max_is_clamped(sim_factory: Callable[..., Any]) -> None:
    sim = sim_factory(meetings_per_day=50)
    token = sim.rest_access_token("demo")

    async def main() -> tuple:
        async with aiohttp.ClientSession() as http:
            default = await call(http, sim.rest_url + "/meetingReports/usage", token, {"siteUrl": SITE_URL})
            huge = await call(http, sim.rest_url + "/meetings", token,
                              {"meetingType": "meeting", "max": "5000", "from": iso(NOW - timedelta(days=3))})
            zero = await call(http, sim.rest_url + "/meetingReports/usage", token, {"siteUrl": SITE_URL, "max": "0"})
            null = await call(http, sim.rest_url + "/meetingReports/usage", token, {"siteUrl": SITE_URL, "max": "null"})
            return default, huge, zero, null

    default, huge, zero, null = asyncio.run(main())
    starts = [i["start"] for i in default[1]["items"]]
    assert len(starts) == 10 and starts == sorted(starts, reverse=True)  # max defaults to 10
    assert next_link(default[2].get("Link")) is not None
    assert len(huge[1]["items"]) == 100 and "max=100&" in (next_link(huge[2].get("Link")) or "")
    assert zero[0] == null[0] == 400


# --------------------------------------------------------------------------- validation (simulator clock)


@pytest.mark.parametrize(("path", "params", "fragment"), [
    ("/meetingReports/usage", {}, "siteUrl is required"),
    ("/meetingReports/usage", {"siteUrl": SITE_URL, "from": iso(NOW - timedelta(days=31)), "to": iso(NOW)}, "30 days"),
    ("/meetingReports/usage", {"siteUrl": SITE_URL, "from": iso(NOW), "to": iso(NOW - timedelta(days=1))}, "after"),
    ("/meetingReports/usage", {"siteUrl": SITE_URL, "from": iso(NOW - timedelta(days=91)),
                               "to": iso(NOW - timedelta(days=80))}, "90 days ago"),
    ("/meetingReports/usage", {"siteUrl": SITE_URL, "serviceType": "WebinarCenter"}, "serviceType"),
    ("/meetingReports/usage", {"siteUrl": SITE_URL, "from": "yesterday"}, "ISO 8601"),
    ("/meetingReports/attendees", {"siteUrl": SITE_URL}, "meetingId"),
    ("/meetingReports/attendees", {"siteUrl": SITE_URL, "meetingId": "0" * 32}, "instance"),
    ("/recordingReport/accessSummary", {"from": iso(NOW - timedelta(days=91)), "to": iso(NOW)}, "90 days"),
    ("/recordingReport/accessSummary", {"from": iso(NOW - timedelta(days=366)),
                                        "to": iso(NOW - timedelta(days=300))}, "365 days ago"),
    ("/meetings", {}, "meetingType"),
    ("/meetingParticipants", {}, "meetingId is required"),
    ("/recordingReport/accessDetail", {}, "recordingId is required"),
])
def test_validation_answers_400_with_webex_error_body(simulator: Any, path: str, params: dict, fragment: str) -> None:
    token = simulator.rest_access_token("demo")

    async def main() -> tuple:
        async with aiohttp.ClientSession() as http:
            return await call(http, simulator.rest_url + path, token, params)

    status, body, headers = asyncio.run(main())
    assert status == 400, body
    assert fragment in body["errors"][0]["description"]
    assert body["message"] and body["trackingId"].startswith("ROUTER_") and headers["TrackingID"] == body["trackingId"]


def test_limits_follow_the_simulator_clock(simulator: Any) -> None:
    token = simulator.rest_access_token("demo")
    start = NOW - timedelta(days=85)
    params = {"siteUrl": SITE_URL, "from": iso(start), "to": iso(start + timedelta(days=30))}
    recordings = {"hostEmail": "all", "from": iso(NOW - timedelta(days=360)), "to": iso(NOW - timedelta(days=271))}

    async def main() -> list[int]:
        usage = simulator.rest_url + "/meetingReports/usage"
        summary = simulator.rest_url + "/recordingReport/accessSummary"
        async with aiohttp.ClientSession() as http:
            statuses = [(await call(http, usage, token, params))[0], (await call(http, summary, token, recordings))[0]]
            simulator.clock.advance(6 * 86_400)  # now 91 days after `from`, 366 after the recordings' from
            statuses += [(await call(http, usage, token, params))[0], (await call(http, summary, token, recordings))[0]]
            return statuses

    assert asyncio.run(main()) == [200, 200, 400, 400]


def test_unknown_site_meeting_and_recording_are_404(simulator: Any) -> None:
    token = simulator.rest_access_token("demo")

    async def main() -> list[int]:
        async with aiohttp.ClientSession() as http:
            meeting = truth(simulator, "meeting_instances")[0]["meeting_id"]
            other = meeting[:-1] + ("1" if meeting[-1] != "1" else "2")
            return [
                (await call(http, simulator.rest_url + "/meetingReports/usage", token,
                            {"siteUrl": "nope.webex.com"}))[0],
                (await call(http, simulator.rest_url + "/meetingParticipants", token, {"meetingId": other}))[0],
                (await call(http, simulator.rest_url + "/meetingReports/attendees", token,
                            {"siteUrl": SITE_URL, "meetingId": other}))[0],
                (await call(http, simulator.rest_url + "/recordingReport/accessDetail", token,
                            {"recordingId": "f" * 32, "hostEmail": "all"}))[0],
                (await call(http, simulator.rest_url + "/meetingParticipants", token, {"meetingId": meeting}))[0],
            ]

    assert asyncio.run(main()) == [404, 404, 404, 404, 200]


def test_recordings_of_other_hosts_need_host_email_all(simulator: Any) -> None:
    token = simulator.rest_access_token("demo")
    params = {"from": iso(NOW - timedelta(days=30)), "to": iso(NOW), "max": "100"}

    async def main() -> tuple:
        async with aiohttp.ClientSession() as http:
            mine = await call(http, simulator.rest_url + "/recordingReport/accessSummary", token, params)
            everyone = await call(http, simulator.rest_url + "/recordingReport/accessSummary", token,
                                  {**params, "hostEmail": "all"})
            return mine, everyone

    mine, everyone = asyncio.run(main())
    admin_email = "admin@demo.example.com"
    assert all(i["hostEmail"] == admin_email for i in mine[1]["items"])
    assert len(everyone[1]["items"]) == len(truth(simulator, "recording_access")) > len(mine[1]["items"])


# --------------------------------------------------------------------------- OAuth


async def _token(http: aiohttp.ClientSession, sim: Any, **form: str) -> tuple[int, dict]:
    async with http.post(sim.rest_token_url, data={**CLIENT, **form}) as r:
        return r.status, await r.json()


def test_refresh_rotates_and_the_old_refresh_token_is_refused(simulator: Any) -> None:
    initial = simulator.rest_refresh_token("demo")
    assert initial == "sim-refresh-demo"

    async def main() -> None:
        async with aiohttp.ClientSession() as http:
            status, first = await _token(http, simulator, grant_type="refresh_token", refresh_token=initial)
            assert status == 200, first
            assert first["token_type"] == "Bearer" and first["expires_in"] == 1_209_599
            assert first["refresh_token_expires_in"] == 7_775_999 and first["refresh_token"] != initial
            assert set(first["scope"].split()) >= {"meeting:admin_config_read", "meeting:admin_participants_read"}
            assert simulator.rest_refresh_token("demo", current=True) == first["refresh_token"]
            status, again = await _token(http, simulator, grant_type="refresh_token", refresh_token=initial)
            assert (status, again["error"]) == (400, "invalid_grant")
            status, second = await _token(http, simulator, grant_type="refresh_token",
                                          refresh_token=first["refresh_token"])
            assert status == 200 and second["refresh_token"] not in (initial, first["refresh_token"])
            # The access tokens work (the older one too, until it expires).
            for access in (first["access_token"], second["access_token"]):
                assert (await call(http, simulator.rest_url + "/meetingPreferences/sites", access))[0] == 200
            status, bad = await _token(http, simulator, grant_type="refresh_token",
                                       refresh_token=second["refresh_token"], client_secret="wrong")
            assert (status, bad["error"]) == (401, "invalid_client")
            status, bad = await _token(http, simulator, grant_type="password")
            assert (status, bad["error"]) == (400, "unsupported_grant_type")

    asyncio.run(main())


def test_without_rotation_old_refresh_tokens_keep_working(sim_factory: Callable[..., Any]) -> None:
    sim = sim_factory(rest=RestConfig(rotate_refresh_tokens=False, client_id="c1", client_secret="s1"))

    async def main() -> list[int]:
        async with aiohttp.ClientSession() as http:
            out = []
            for _ in range(2):
                async with http.post(sim.rest_token_url, data={"grant_type": "refresh_token", "client_id": "c1",
                                                              "client_secret": "s1",
                                                              "refresh_token": "sim-refresh-demo"}) as r:
                    out.append(r.status)
            return out

    assert asyncio.run(main()) == [200, 200]


def test_access_token_expires_on_the_simulator_clock(simulator: Any) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as http:
            _, grant = await _token(http, simulator, grant_type="refresh_token", refresh_token="sim-refresh-demo")
            access = grant["access_token"]
            assert (await call(http, simulator.rest_url + "/people/me", access))[0] == 200
            simulator.clock.advance(1_209_598)
            assert (await call(http, simulator.rest_url + "/people/me", access))[0] == 200
            simulator.clock.advance(2)
            status, body, _ = await call(http, simulator.rest_url + "/people/me", access)
            assert status == 401 and "access token" in body["message"]
            # The refresh token outlives it: a new access token, then the refresh token expires too.
            status, grant = await _token(http, simulator, grant_type="refresh_token",
                                         refresh_token=grant["refresh_token"])
            assert status == 200
            simulator.clock.advance(7_776_000)
            status, late = await _token(http, simulator, grant_type="refresh_token",
                                        refresh_token=grant["refresh_token"])
            assert (status, late["error"]) == (400, "invalid_grant")

    asyncio.run(main())


def test_missing_and_unknown_tokens_are_401(simulator: Any) -> None:
    async def main() -> list[int]:
        async with aiohttp.ClientSession() as http:
            return [(await call(http, simulator.rest_url + "/meetings", token, {"meetingType": "meeting"}))[0]
                    for token in (None, "not-a-token")]

    assert asyncio.run(main()) == [401, 401]


def test_a_token_without_the_scope_gets_403(sim_factory: Callable[..., Any]) -> None:
    scopes = ("meeting:admin_config_read", "meeting:admin_schedule_read")
    sim = sim_factory(sites=(SiteConfig("demo", rest=SiteRest(scopes=scopes)),))

    async def main() -> None:
        async with aiohttp.ClientSession() as http:
            _, grant = await _token(http, sim, grant_type="refresh_token", refresh_token="sim-refresh-demo")
            assert grant["scope"] == " ".join(scopes)
            token = grant["access_token"]
            status, body, _ = await call(http, sim.rest_url + "/meetingParticipants", token, {"meetingId": "x"})
            assert status == 403 and "meeting:admin_participants_read" in body["errors"][0]["description"]
            assert (await call(http, sim.rest_url + "/recordingReport/accessSummary", token))[0] == 403
            assert (await call(http, sim.rest_url + "/meetingReports/usage", token, {"siteUrl": SITE_URL}))[0] == 200
            narrow = sim.rest_access_token("demo", scopes=["meeting:admin_participants_read"])
            assert (await call(http, sim.rest_url + "/meetingReports/usage", narrow, {"siteUrl": SITE_URL}))[0] == 403

    asyncio.run(main())


def test_authorization_code_grant(simulator: Any) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as http:
            query = {"client_id": "sim-client", "response_type": "code", "redirect_uri": "http://localhost:9/cb",
                     "scope": "meeting:admin_schedule_read spark:kms", "state": "xyz"}
            async with http.get(simulator.rest_url + "/authorize", params=query, allow_redirects=False) as r:
                assert r.status == 302
                location = r.headers["Location"]
            got = dict(parse_qsl(urlsplit(location).query))
            assert location.startswith("http://localhost:9/cb?") and got["state"] == "xyz"
            form = {"grant_type": "authorization_code", "code": got["code"], "redirect_uri": "http://localhost:9/cb"}
            status, grant = await _token(http, simulator, **form)
            assert status == 200 and grant["scope"] == "meeting:admin_schedule_read spark:kms"
            status, again = await _token(http, simulator, **form)
            assert (status, again["error"]) == (400, "invalid_grant")

    asyncio.run(main())


# --------------------------------------------------------------------------- rate limits and faults


def test_rest_rate_limit_answers_429_with_retry_after(simulator: Any) -> None:
    simulator.set_faults(rest_rate_limit_per_minute=3)
    token, other = simulator.rest_access_token("demo"), simulator.rest_access_token("demo")

    async def main() -> tuple:
        async with aiohttp.ClientSession() as http:
            got = [await call(http, simulator.rest_url + "/people/me", token) for _ in range(4)]
            fresh = await call(http, simulator.rest_url + "/people/me", other)
            return got, fresh

    got, fresh = asyncio.run(main())
    assert [g[0] for g in got] == [200, 200, 200, 429]
    assert 1 <= int(got[3][2]["Retry-After"]) <= 60
    assert fresh[0] == 200  # per token


def test_queued_faults_name_rest_endpoints(simulator: Any) -> None:
    simulator.set_faults(retry_after_seconds=7, http5xx_status=502)
    simulator.queue_fault("http429", 1, operation="rest:/meetingReports/usage")
    simulator.queue_fault("http5xx", 1, operation="rest")
    simulator.queue_fault("gsb_backup", 1)  # an XML matter: REST requests leave it queued
    token = simulator.rest_access_token("demo")
    usage = simulator.rest_url + "/meetingReports/usage"

    async def main() -> list:
        async with aiohttp.ClientSession() as http:
            first = await call(http, simulator.rest_url + "/people/me", token)  # takes the "rest" http5xx
            second = await call(http, usage, token, {"siteUrl": SITE_URL})
            third = await call(http, usage, token, {"siteUrl": SITE_URL})
            # aiohttp sends an idempotent request again once when the connection drops: reset both.
            simulator.queue_fault("reset", 2, operation="rest:/meetings")
            try:
                await call(http, simulator.rest_url + "/meetings", token, {"meetingType": "meeting"})
                reset = False
            except aiohttp.ClientError:
                reset = True
            return [first[0], first[1]["message"], second[0], second[2].get("Retry-After"), third[0], reset]

    assert asyncio.run(main()) == [502, "Bad Gateway", 429, "7", 200, True]
    stats = simulator.stats()
    assert stats["faults"] == {"http5xx": 1, "http429": 1, "reset": 2}
    assert [q.kind for q in simulator.faults.pending()] == ["gsb_backup"]
    assert stats["rest_requests_by_endpoint"]["rest:/meetingReports/usage"] == 2
    assert stats["rest_http_status"] == {"502": 1, "429": 1, "200": 1}


def test_stats_over_http_count_rest_requests(simulator: Any) -> None:
    token = simulator.rest_access_token("demo")

    async def main() -> dict:
        async with aiohttp.ClientSession() as http:
            await call(http, simulator.rest_url + "/meetingPreferences/sites", token)
            async with http.get(simulator.base_url + "/_sim/stats") as r:
                stats = await r.json()
            async with http.get(simulator.base_url + "/_sim/rest-ground-truth",
                                params={"site": "demo", "dataset": "meeting_usage"}) as r:
                stats["truth"] = await r.json()
            async with http.get(simulator.base_url + "/_sim/info") as r:
                stats["info"] = await r.json()
            return stats

    stats = asyncio.run(main())
    assert stats["rest_requests_by_endpoint"] == {"rest:/meetingPreferences/sites": 1} and stats["requests"] == 0
    assert len(stats["truth"]) == len(simulator.rest_ground_truth("demo", "meeting_usage"))
    assert stats["info"]["rest"]["sites"][0]["refresh_token"] == "sim-refresh-demo"


# --------------------------------------------------------------------------- next links and caps


def test_next_link_quirks(sim_factory: Callable[..., Any]) -> None:
    sim = rest_sim(sim_factory, next_link_drops=("siteUrl", "from", "to", "meetingId"), next_link_max_null=True)
    ds = by_name("meeting_usage")
    assert ds.rest
    url = sim.rest_url + ds.rest.path
    token = sim.rest_access_token("demo")
    params = top_params(ds, NOW, 2)

    def repaired(url: str) -> str:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        query.update({k: v for k, v in params.items() if k not in ("max",)}, max=params["max"])
        return urlunsplit(parts._replace(query=urlencode(query)))

    async def main() -> tuple:
        async with aiohttp.ClientSession() as http:
            status, body, headers = await call(http, url, token, params)
            link = next_link(headers.get("Link"))
            verbatim = await call(http, link, token)
            items, _ = await walk(http, url, token, params, fix=repaired)
            return link, verbatim, items

    link, verbatim, items = asyncio.run(main())
    query = dict(parse_qsl(urlsplit(link).query))
    assert query["max"] == "null" and "siteUrl" not in query and "from" not in query and "cursor" in query
    assert query["serviceType"] == "MeetingCenter"  # only the named parameters are dropped
    assert verbatim[0] == 400  # max=null (and no siteUrl): following it verbatim fails
    assert [r for i in items for r in land(ds, i)] == truth(sim, "meeting_usage")


def test_dropped_window_silently_widens_later_pages(sim_factory: Callable[..., Any]) -> None:
    sim = rest_sim(sim_factory, next_link_drops=("from", "to"))
    token = sim.rest_access_token("demo")
    lo, hi = NOW - timedelta(days=2), NOW - timedelta(days=1)
    params = {"siteUrl": SITE_URL, "from": iso(lo), "to": iso(hi), "max": "2"}

    async def main() -> list[dict]:
        async with aiohttp.ClientSession() as http:
            return (await walk(http, sim.rest_url + "/meetingReports/usage", token, params))[0]

    items = asyncio.run(main())
    starts = [datetime.fromisoformat(i["start"].replace("Z", "+00:00")) for i in items]
    assert any(not lo <= s < hi for s in starts), "the default window (the last 7 days) took over after page 1"


def test_meetings_list_at_most_the_cap_per_query(sim_factory: Callable[..., Any]) -> None:
    sim = rest_sim(sim_factory, meetings_list_cap=5)
    token = sim.rest_access_token("demo")
    everything = truth(sim, "meeting_instances")
    assert len(everything) > 10

    async def main() -> tuple[list[dict], list[dict]]:
        async with aiohttp.ClientSession() as http:
            base = {"meetingType": "meeting", "state": "ended", "max": "2"}
            whole, _ = await walk(http, sim.rest_url + "/meetings", token,
                                  {**base, "from": iso(NOW - timedelta(days=4)), "to": iso(NOW)})
            sliced = []
            step = timedelta(hours=3)
            at = NOW - timedelta(days=4)
            while at < NOW + timedelta(seconds=1):
                got, _ = await walk(http, sim.rest_url + "/meetings", token,
                                    {**base, "from": iso(at), "to": iso(min(at + step, NOW + timedelta(seconds=1)))})
                assert len(got) < 5, "slice windows so each stays under the cap"
                sliced += got
                at += step
            return whole, sliced

    whole, sliced = asyncio.run(main())
    assert len(whole) == 5  # silently cut
    assert [land(by_name("meeting_instances"), i)[0] for i in sliced] == everything


# --------------------------------------------------------------------------- availability knobs


def test_report_delay_holds_back_recent_sessions(sim_factory: Callable[..., Any]) -> None:
    sim = rest_sim(sim_factory, report_delay_hours=24)
    delayed = truth(sim, "meeting_usage")
    assert all(r["meeting_end_time"] <= NOW - timedelta(hours=24) for r in delayed)
    sim.clock.advance(86_400)
    later = {r["meeting_id"] for r in truth(sim, "meeting_usage")}
    assert {r["meeting_id"] for r in delayed} < later


def test_ended_meetings_listed_after_delay_and_left_time_placeholder(sim_factory: Callable[..., Any]) -> None:
    sim = rest_sim(sim_factory, meetings_delay_seconds=900, left_placeholder_minutes=60)
    instances = {r["meeting_id"]: r for r in truth(sim, "meeting_instances")}
    assert all(r["end_time"] <= NOW - timedelta(minutes=15) and r["state"] == "ended" for r in instances.values())
    # Move to 20 minutes after some meeting ended: listed, but its participants' leave times unknown yet.
    target = min(instances.values(), key=lambda r: r["end_time"])
    sim.clock.set(target["end_time"] + timedelta(minutes=20))
    token = sim.rest_access_token("demo")

    async def main() -> list[dict]:
        async with aiohttp.ClientSession() as http:
            return (await walk(http, sim.rest_url + "/meetingParticipants", token,
                               {"meetingId": target["meeting_id"], "max": "100"}))[0]

    items = asyncio.run(main())
    assert items and all(i["leftTime"] == "1970-01-01T00:00:00.000Z" for i in items)
    assert all(d["leftTime"] == "1970-01-01T00:00:00.000Z" for i in items for d in i["devices"])
    rows = [r for r in truth(sim, "meeting_participants") if r["meeting_id"] == target["meeting_id"]]
    assert rows and all(r["left_time"] is None and r["device_left_time"] is None for r in rows)
    assert target["meeting_id"] in {r["meeting_id"] for r in truth(sim, "meeting_instances")}


def test_in_progress_meeting_is_listed_only_without_state_ended(simulator: Any) -> None:
    token = simulator.rest_access_token("demo")

    async def main() -> tuple[list[dict], list[dict]]:
        async with aiohttp.ClientSession() as http:
            params = {"meetingType": "meeting", "from": iso(NOW - timedelta(days=1)), "max": "100"}
            running, _ = await walk(http, simulator.rest_url + "/meetings", token, {**params, "state": "inProgress"})
            ended, _ = await walk(http, simulator.rest_url + "/meetings", token, {**params, "state": "ended"})
            return running, ended

    running, ended = asyncio.run(main())
    assert running and all(i["state"] == "inProgress" and i["meetingNumber"] for i in running)
    assert all("meetingNumber" not in i and i["state"] == "ended" for i in ended)


# --------------------------------------------------------------------------- configuration


def test_profiles_carry_rest_settings() -> None:
    realistic = load_profile("realistic")
    assert realistic.rest.next_link_max_null and realistic.rest.next_link_drops
    assert realistic.rest.report_delay_hours > 0 and realistic.rest.left_placeholder_minutes > 0
    assert SimulatorConfig.from_dict(realistic.to_dict()) == realistic
    default = load_profile("default")
    assert default.rest == RestConfig() and default.sites[0].site_url == "acme.webex.com"
    with pytest.raises(Exception) as info:
        SimulatorConfig.from_dict({"rest": {"next_link_drops": ["bogus"], "colour": 1},
                                   "sites": [{"name": "a", "rest": {"scopes": "x y"}}]})
    text = str(info.value)
    assert "rest.colour: unknown key" in text and "sites[0].rest.scopes" in text
