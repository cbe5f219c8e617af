"""exporter.records.parse: typed parsing of Webex record elements into Arrow tables."""

from __future__ import annotations

import json
import zoneinfo
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from lxml import etree

from exporter.model.dataset_spec import LINEAGE_COLUMNS, Column, Dataset
from exporter.model.datasets import DATASETS, by_name
from exporter.model.timezones import zoneinfo_for
from exporter.records.arrow_schema import arrow_schema
from exporter.records.parse import ParsedPage, parse_records
from exporter.records.webex_time import format_webex_time, local_to_utc, parse_webex_time
from exporter.records.xmlsafe import parse_xml

SEEDS = Path(__file__).parent / "fixtures" / "seeds"
LA = zoneinfo_for(4)
HONOLULU = zoneinfo_for(2)
GMT = zoneinfo_for(20)
UTC = timezone.utc
NS = "http://www.webex.com/schemas/2002/06/service/history"

Item = tuple[str, Any]  # (element, text | None for an empty element | list of nested items)


# --------------------------------------------------------------------------------------------------
# Building pages


def _append(parent: etree._Element, name: str, value: Any, ns: str | None) -> None:
    child = etree.SubElement(parent, f"{{{ns}}}{name}" if ns else name)
    if isinstance(value, list):
        for sub_name, sub_value in value:
            _append(child, sub_name, sub_value, ns)
    elif value is not None:
        child.text = value


def records_from(dataset: Dataset, records: list[list[Item]], *, ns: str | None = NS) -> list[etree._Element]:
    """Serialise records as a response body, parse it back like the exporter does, return records."""
    body = etree.Element(f"{{{ns}}}bodyContent" if ns else "bodyContent", nsmap={"history": ns} if ns else None)
    for items in records:
        record = etree.SubElement(body, f"{{{ns}}}{dataset.record_element}" if ns else dataset.record_element)
        for name, value in items:
            _append(record, name, value, ns)
    root = parse_xml(etree.tostring(body, encoding="UTF-8", xml_declaration=True))
    return list(root)


def parse(dataset: Dataset, records: list[list[Item]], zone: ZoneInfo = LA, **kwargs: Any) -> ParsedPage:
    """Build, parse, and check the invariants every page must satisfy."""
    page = parse_records(dataset, records_from(dataset, records, **kwargs), site="acme", zone=zone)
    assert page.table.schema == arrow_schema(dataset)
    assert page.table.num_rows == len(records)
    return page


def rows(page: ParsedPage) -> list[dict[str, Any]]:
    return page.table.to_pylist()


def extra(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(row["extra"]) if row["extra"] is not None else {}


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def keyless_zone(zone: ZoneInfo) -> ZoneInfo:
    """The same rules without a key: pyarrow cannot look it up, so the parser's Python path runs."""
    for directory in zoneinfo.TZPATH:
        path = Path(directory) / str(zone.key)
        if path.is_file():
            with path.open("rb") as file:
                return ZoneInfo.from_file(file)
    with resources.files("tzdata.zoneinfo").joinpath(str(zone.key)).open("rb") as file:
        return ZoneInfo.from_file(file)


# --------------------------------------------------------------------------------------------------
# Schema


@pytest.mark.parametrize("dataset", DATASETS, ids=lambda d: d.name)
def test_schema_is_declared_columns_then_lineage(dataset: Dataset) -> None:
    schema = arrow_schema(dataset)
    assert schema.names == [c.name for c in dataset.columns] + ["site", "extra", "_preliminary"]
    assert set(schema.names[-3:]) == set(LINEAGE_COLUMNS) - {"_commit"}
    expected = {
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "str": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "json": pa.string(),
    }
    for column in dataset.columns:
        assert schema.field(column.name).type == expected[column.type]
    assert not schema.field("site").nullable
    assert schema.field("extra").type == pa.string()
    assert schema.field("_preliminary").type == pa.bool_()
    assert arrow_schema(dataset) is schema  # cached


# --------------------------------------------------------------------------------------------------
# Every dataset, every declared column


def _wire_value(column: Column, row: int, k: int) -> tuple[Any, Any]:
    """(text on the wire, expected typed value) for one column of one test record."""
    if column.type == "int":
        value = 10**12 + row * 1000 + k
        return str(value), value
    if column.type == "float":
        return f"{row}.25", row + 0.25
    if column.type == "bool":
        return ("true", True) if (row + k) % 2 else ("false", False)
    if column.type == "timestamp":
        naive = datetime(2019, 7 + row, 1 + k, row + 1, k, 3)  # summer and autumn: DST in Los Angeles
        return f"{naive.month}/{naive.day}/{naive.year} {naive.hour}:{naive.minute}:{naive.second}", local_to_utc(
            naive, LA
        )
    if column.type == "json":
        raise AssertionError("json columns are built separately")
    text = f"{column.name} {row} 團隊會議 & <b> 😀"
    return text, text


def _full_record(dataset: Dataset, row: int) -> tuple[list[Item], dict[str, Any]]:
    """A record carrying every declared column (containers nested, json repeated) and its expected row."""
    items: list[Item] = []
    expected: dict[str, Any] = {}
    containers: dict[str, list[Item]] = {}
    for k, column in enumerate(dataset.columns):
        if column.type == "json":
            answers = [[("regQ", f"Q{q} & ?"), ("regA", f"答 {row}.{q}")] for q in range(2)]
            items.extend((column.element, answer) for answer in answers)
            expected[column.name] = [{"regQ": f"Q{q} & ?", "regA": f"答 {row}.{q}"} for q in range(2)]
            continue
        text, value = _wire_value(column, row, k)
        expected[column.name] = value
        if column.parent is None:
            items.append((column.element, text))
        else:
            if column.parent not in containers:
                containers[column.parent] = []
                items.append((column.parent, containers[column.parent]))
            containers[column.parent].append((column.element, text))
    return items, expected


@pytest.mark.parametrize("dataset", DATASETS, ids=lambda d: d.name)
def test_every_declared_column_parses_to_its_type(dataset: Dataset) -> None:
    built = [_full_record(dataset, row) for row in range(3)]
    page = parse(dataset, [items for items, _ in built])
    assert not page.unknown_elements and not page.bad_values and not page.ambiguous_times
    for row, (_, expected) in zip(rows(page), built):
        for name, value in expected.items():
            got = json.loads(row[name]) if isinstance(value, list) else row[name]
            assert got == value, name
        assert row["site"] == "acme"
        assert row["extra"] is None
        assert row["_preliminary"] is False


def test_preliminary_and_site_fill_lineage_columns() -> None:
    dataset = by_name("access_anywhere")
    page = parse_records(dataset, records_from(dataset, [[("confID", "1")]] * 2), site="s1", zone=GMT, preliminary=True)
    assert page.table.column("site").to_pylist() == ["s1", "s1"]
    assert page.table.column("_preliminary").to_pylist() == [True, True]


def test_no_records_gives_an_empty_table_of_the_schema() -> None:
    dataset = by_name("meeting_usage")
    page = parse_records(dataset, [], site="s", zone=GMT)
    assert page.table.num_rows == 0
    assert page.table.schema == arrow_schema(dataset)


# --------------------------------------------------------------------------------------------------
# Seed samples (real server output)


def _seed_records(name: str, record_element: str) -> list[etree._Element]:
    root = parse_xml((SEEDS / name).read_bytes())
    return root.findall(f".//{{*}}{record_element}")


def test_seed_lstsummarysession_values() -> None:
    dataset = by_name("scheduled_sessions")
    # The sample request asked for timeZoneID 4, so times are Los Angeles wall time (PDT in October);
    # the records' own timeZoneID 2 (Hawaii) is just a column.
    page = parse_records(dataset, _seed_records("lstsummarysession_response.xml", "session"), site="s", zone=LA)
    first, second = rows(page)
    assert first["conf_name"] == "團隊會議"
    assert first["meeting_uuid"] == "809914325"  # sent as <ep:MeetingUUID>
    assert second["meeting_uuid"] is None  # the second session has none
    assert first["session_key"] == 809914325
    assert first["conf_id"] == 141672157056861215
    assert first["time_zone_id"] == 2
    assert first["time_zone"] == "GMT-10:00, 夏威夷(檀香山)"
    assert first["start_time"] == utc(2019, 10, 12, 7, 35, 41)
    assert first["duration"] == 60
    assert first["is_scheduled_pmr"] is True
    assert first["password_req"] is True and first["host_joined"] is False
    assert first["host_type"] == "1019001"
    assert first["actual_start_time"] is None and first["is_private_meeting"] is None  # not sent
    assert not page.unknown_elements and not page.bad_values
    assert first["extra"] is None


def test_seed_access_anywhere_values() -> None:
    dataset = by_name("access_anywhere")
    records = _seed_records("lstaccessanywherehistory_response.xml", "accessAnyWhereInfo")
    (row,) = rows(parse_records(dataset, records, site="s", zone=GMT))
    assert row == {
        "conf_id": 123456,
        "user_name": "dean",
        "computer_name": "6926_dean",
        "client_ip": "10.224.222.183",
        "start_time": utc(2019, 11, 29, 3, 5, 44),
        "end_time": utc(2019, 11, 29, 3, 10, 6),
        "duration": 5,
        "site": "s",
        "extra": None,
        "_preliminary": False,
    }


# --------------------------------------------------------------------------------------------------
# Times

ACCESS = by_name("access_anywhere")


def _times(texts: list[str], zone: ZoneInfo) -> tuple[list[Any], ParsedPage]:
    page = parse(ACCESS, [[("startTime", text)] for text in texts], zone=zone)
    return page.table.column("start_time").to_pylist(), page


def test_unpadded_dates_equal_padded_ones() -> None:
    got, page = _times(["9/29/2019 2:4:3", "09/29/2019 02:04:03", " 9/29/2019  2:4:3 "], GMT)
    assert got == [utc(2019, 9, 29, 2, 4, 3)] * 3
    assert not page.bad_values


def test_honolulu_has_no_dst_los_angeles_has() -> None:
    winter, summer = "1/15/2020 12:00:00", "7/15/2020 12:00:00"
    assert _times([winter, summer], HONOLULU)[0] == [utc(2020, 1, 15, 22), utc(2020, 7, 15, 22)]
    assert _times([winter, summer], LA)[0] == [utc(2020, 1, 15, 20), utc(2020, 7, 15, 19)]


def test_ambiguous_fall_back_time_is_its_first_occurrence() -> None:
    # 2019-11-03 01:30 happened twice in Los Angeles: 08:30Z (PDT) then 09:30Z (PST).
    got, page = _times(["11/3/2019 1:30:00", "11/3/2019 0:59:59", "11/3/2019 2:00:00"], LA)
    assert got == [utc(2019, 11, 3, 8, 30), utc(2019, 11, 3, 7, 59, 59), utc(2019, 11, 3, 10)]
    assert page.ambiguous_times == {"start_time": 1}
    assert not page.bad_values
    assert page.table.column("extra").to_pylist() == [None] * 3


def test_nonexistent_spring_forward_time_is_shifted_forward_and_reported() -> None:
    # 2019-03-10 02:30 never happened in Los Angeles (02:00 PST -> 03:00 PDT).
    got, page = _times(["3/10/2019 2:30:00", "3/10/2019 1:59:59", "3/10/2019 3:00:00"], LA)
    assert got == [utc(2019, 3, 10, 10, 30), utc(2019, 3, 10, 9, 59, 59), utc(2019, 3, 10, 10)]
    assert page.bad_values == {"start_time": 1}
    assert extra(rows(page)[0]) == {"startTime": "3/10/2019 2:30:00"}
    assert rows(page)[1]["extra"] is None


def test_dst_edges_next_to_ordinary_values_on_a_long_page() -> None:
    texts = [f"11/{1 + i % 5}/2019 {i % 24}:{i % 60}:00" for i in range(300)]
    got, page = _times(texts, LA)
    assert got == [local_to_utc(parse_webex_time(t), LA) for t in texts]
    assert page.ambiguous_times["start_time"] == sum(1 for t in texts if t.startswith("11/3/2019 1:"))


@pytest.mark.parametrize("zone_id", [0, 2, 4, 20, 41, 55, 60])
def test_zone_without_a_key_takes_the_exact_python_path_with_equal_results(zone_id: int) -> None:
    keyed = zoneinfo_for(zone_id)
    keyless = keyless_zone(keyed)
    assert keyless.key is None
    texts = ["3/10/2019 2:30:00", "11/3/2019 1:30:00", "1/1/2020 0:0:0", "02/29/2020 23:59:59", "13/1/2020 0:0:0"]
    fast, fast_page = _times(texts, keyed)
    slow, slow_page = _times(texts, keyless)
    assert fast == slow
    assert fast_page.bad_values == slow_page.bad_values
    assert fast_page.ambiguous_times == slow_page.ambiguous_times
    assert fast_page.table.column("extra").to_pylist() == slow_page.table.column("extra").to_pylist()


@pytest.mark.parametrize(
    "text",
    [
        "13/45/2019 99:00:00",
        "02/30/2019 00:00:00",  # strptime alone would roll this over to March 2
        "02/29/2019 00:00:00",
        "9/29/2019 23:59:60",
        "9/29/2019 24:00:00",
        "9/29/19 2:4:3",
        "9/29/2019",
        "2019-09-29 02:04:03",
        "9/29/2019 2:4:3 PM",
        "０9/29/2019 2:4:3",  # full-width digit
    ],
)
def test_bad_dates_are_null_kept_raw_and_counted(text: str) -> None:
    got, page = _times([text, "1/2/2020 3:4:5"], GMT)
    assert got == [None, utc(2020, 1, 2, 3, 4, 5)]
    assert page.bad_values == {"start_time": 1}
    assert extra(rows(page)[0]) == {"startTime": text}


def test_times_outside_the_representable_range_are_bad_values() -> None:
    tokyo = zoneinfo_for(49)
    # Midnight on 1 January of year 1 in Tokyo is still in year 0 in UTC.
    got, page = _times(["1/1/0001 00:00:00", "12/31/9999 23:00:00", "1/1/0001 12:00:00"], tokyo)
    assert got == [None, utc(9999, 12, 31, 14), local_to_utc(datetime(1, 1, 1, 12), tokyo)]
    assert page.bad_values == {"start_time": 1}


def test_leap_day_in_leap_years() -> None:
    got, page = _times(["2/29/2020 1:2:3", "2/29/2000 1:2:3", "2/29/1900 1:2:3"], GMT)
    assert got == [utc(2020, 2, 29, 1, 2, 3), utc(2000, 2, 29, 1, 2, 3), None]
    assert page.bad_values == {"start_time": 1}


def test_parse_and_format_webex_time() -> None:
    assert parse_webex_time("9/29/2019 2:4:3") == datetime(2019, 9, 29, 2, 4, 3)
    assert parse_webex_time("11/01/2019 8:0:0") == datetime(2019, 11, 1, 8)
    for bad in ["02/30/2019 00:00:00", "9/29/2019", "", "9/29/2019 2:4:3x"]:
        with pytest.raises(ValueError):
            parse_webex_time(bad)
    assert format_webex_time(datetime(2019, 9, 29, 2, 4, 3)) == "09/29/2019 02:04:03"
    assert format_webex_time(datetime(5, 1, 2, 3, 4, 5)) == "01/02/0005 03:04:05"
    assert format_webex_time(utc(2019, 10, 12, 7, 35, 41), LA) == "10/12/2019 00:35:41"
    with pytest.raises(ValueError):
        format_webex_time(datetime(2019, 1, 1), LA)
    moment = utc(2026, 3, 8, 10, 30)
    assert local_to_utc(parse_webex_time(format_webex_time(moment, LA)), LA) == moment


# --------------------------------------------------------------------------------------------------
# Other types

USAGE = by_name("meeting_usage")


def test_integers_tolerate_white_space_and_signs() -> None:
    page = parse(ACCESS, [[("duration", t)] for t in [" 5 ", "+7", "-1", "007", "\n12\t"]])
    assert page.table.column("duration").to_pylist() == [5, 7, -1, 7, 12]
    assert not page.bad_values


@pytest.mark.parametrize("text", ["abc", "0x10", "1_000", "1.0", "٣", "9223372036854775808", "1 2", "--1"])
def test_bad_integers_are_null_kept_raw_and_counted(text: str) -> None:
    page = parse(ACCESS, [[("confID", "1"), ("duration", text)], [("confID", "2"), ("duration", "3")]])
    first, second = rows(page)
    assert first["duration"] is None and first["conf_id"] == 1
    assert extra(first) == {"duration": text}
    assert second["duration"] == 3 and second["extra"] is None
    assert page.bad_values == {"duration": 1}


def test_int64_bounds() -> None:
    page = parse(ACCESS, [[("confID", "9223372036854775807")], [("confID", "-9223372036854775808")]])
    assert page.table.column("conf_id").to_pylist() == [2**63 - 1, -(2**63)]


def test_booleans() -> None:
    sessions = by_name("scheduled_sessions")
    texts = ["true", "false", "TRUE", " False ", "1", "0", "yes", ""]
    page = parse(sessions, [[("isRecurring", t)] for t in texts])
    assert page.table.column("is_recurring").to_pylist() == [True, False, True, False, True, False, None, None]
    assert page.bad_values == {"is_recurring": 1}
    assert extra(rows(page)[6]) == {"isRecurring": "yes"}


def test_floats() -> None:
    events = by_name("event_attendees")
    texts = ["1.5", "-2e3", ".5", " 7 ", "INF", "nan", "abc", "1,5"]
    got = parse(events, [[("leadScore", t)] for t in texts])
    values = got.table.column("lead_score").to_pylist()
    assert values[:5] == [1.5, -2000.0, 0.5, 7.0, float("inf")]
    assert values[5] != values[5]  # NaN
    assert values[6:] == [None, None]
    assert got.bad_values == {"lead_score": 2}


def test_empty_elements_missing_elements_and_blank_text() -> None:
    page = parse(
        ACCESS,
        [
            [("confID", None), ("userName", None), ("duration", "  ")],
            [("userName", "  "), ("computerName", "")],
        ],
    )
    first, second = rows(page)
    assert first["conf_id"] is None and first["duration"] is None  # empty typed -> null, not bad
    assert first["user_name"] == ""  # empty str element -> ""
    assert first["computer_name"] is None  # missing -> null
    assert second["user_name"] == "  "  # str kept exactly
    assert second["computer_name"] == ""
    assert not page.bad_values and first["extra"] is None


def test_markup_characters_round_trip() -> None:
    text = 'AT&T <Intl> "quoted" \'single\' ]]> 團隊會議 𝄞 \t tab\nline'
    page = parse(ACCESS, [[("userName", text)]])
    assert rows(page)[0]["user_name"] == text


# --------------------------------------------------------------------------------------------------
# Names, containers, json


def test_element_names_match_through_column_name() -> None:
    training = by_name("training_sessions")
    page = parse(
        training,
        [
            [("MeetingUUID", "A"), ("totalCallInTolllfreeMinutes", "5"), ("hostWebExID", "h")],
            [("meetingUUID", "B"), ("totalCallInTollfreeMinutes", "6"), ("hostWebexID", "i")],
        ],
    )
    assert page.table.column("meeting_uuid").to_pylist() == ["A", "B"]
    assert page.table.column("total_call_in_tollfree_minutes").to_pylist() == [5, 6]
    assert page.table.column("host_webex_id").to_pylist() == ["h", "i"]
    assert not page.unknown_elements


def test_records_without_namespace() -> None:
    page = parse(ACCESS, [[("confID", "9"), ("userName", "u")]], ns=None)
    assert rows(page)[0]["conf_id"] == 9 and rows(page)[0]["user_name"] == "u"


def test_containers_are_flattened() -> None:
    events = by_name("event_sessions")
    page = parse(
        events,
        [
            [
                ("confID", "1"),
                ("trackingCode", [("trackingCode1", "t1"), ("trackingCode10", "t10"), ("trackingCode11", "new")]),
                ("source", [("leadSourceID", "web"), ("count", "12"), ("avgLeadScore", "3.5")]),
                ("assistService", [("assistRequest", "Dry Run"), ("assistConfirm", None)]),
            ],
            [("confID", "2"), ("source", [("count", "many")])],
        ],
    )
    first, second = rows(page)
    assert (first["tracking_code1"], first["tracking_code10"], first["tracking_code2"]) == ("t1", "t10", None)
    assert (first["lead_source_id"], first["source_count"], first["avg_lead_score"]) == ("web", 12, 3.5)
    assert (first["assist_request"], first["assist_confirm"]) == ("Dry Run", "")
    assert extra(first) == {"trackingCode": {"trackingCode11": "new"}}
    assert page.unknown_elements == {"trackingCode/trackingCode11": 1}
    assert second["source_count"] is None
    assert extra(second) == {"source": {"count": "many"}}
    assert page.bad_values == {"source_count": 1}


def test_repeated_json_column() -> None:
    events = by_name("event_attendees")
    page = parse(
        events,
        [
            [("confID", "1"), ("regQandA", [("regQ", "Why?"), ("regA", "因為 & so")]), ("regQandA", [("regQ", "2")])],
            [("confID", "2")],
        ],
    )
    first, second = rows(page)
    assert json.loads(first["reg_q_and_a"]) == [{"regQ": "Why?", "regA": "因為 & so"}, {"regQ": "2"}]
    assert second["reg_q_and_a"] is None


# --------------------------------------------------------------------------------------------------
# Unknown elements, structures where leaves were declared, repeats


def test_unknown_elements_are_kept_in_extra_and_counted() -> None:
    page = parse(
        ACCESS,
        [
            [
                ("confID", "1"),
                ("newField", "x & y"),
                ("newGroup", [("a", "1"), ("b", [("c", "2")]), ("a", "3")]),
                ("newField", "again"),
                ("emptyNew", None),
            ],
            [("confID", "2"), ("newField", "z")],
        ],
    )
    first, second = rows(page)
    assert first["conf_id"] == 1
    assert extra(first) == {
        "newField": ["x & y", "again"],
        "newGroup": {"a": ["1", "3"], "b": {"c": "2"}},
        "emptyNew": "",
    }
    assert extra(second) == {"newField": "z"}
    assert page.unknown_elements == {"newField": 3, "newGroup": 1, "emptyNew": 1}


def test_unknown_element_attributes_and_text_are_kept() -> None:
    xml = (
        f'<b xmlns:h="{NS}"><h:accessAnyWhereInfo><h:confID>1</h:confID>'
        '<h:flag code="7">on</h:flag><h:grp kind="k"><h:x>1</h:x></h:grp></h:accessAnyWhereInfo></b>'
    )
    records = list(parse_xml(xml.encode()))
    (row,) = parse_records(ACCESS, records, site="s", zone=GMT).table.to_pylist()
    assert extra(row) == {"flag": {"@code": "7", "#text": "on"}, "grp": {"@kind": "k", "x": "1"}}


def test_declared_leaf_that_arrives_as_a_structure_is_kept_and_counted() -> None:
    pretty = f"""<b xmlns:h="{NS}">
      <h:accessAnyWhereInfo>
         <h:confID>1</h:confID>
         <h:userName>
            <h:first>Ann</h:first>
         </h:userName>
         <h:duration>
            <h:minutes>5</h:minutes>
         </h:duration>
         <h:startTime><h:utc>x</h:utc></h:startTime>
      </h:accessAnyWhereInfo>
    </b>"""
    page = parse_records(ACCESS, list(parse_xml(pretty.encode())), site="s", zone=GMT)
    (row,) = rows(page)
    assert row["conf_id"] == 1
    assert row["user_name"] is None and row["duration"] is None and row["start_time"] is None
    assert extra(row) == {"userName": {"first": "Ann"}, "duration": {"minutes": "5"}, "startTime": {"utc": "x"}}
    assert page.bad_values == {"user_name": 1, "duration": 1, "start_time": 1}


def test_repeated_declared_leaf_first_wins_rest_kept() -> None:
    page = parse(ACCESS, [[("confID", "1"), ("userName", "a"), ("confID", "2")]])
    (row,) = rows(page)
    assert row["conf_id"] == 1 and row["user_name"] == "a"
    assert extra(row) == {"confID": "2"}
    assert page.bad_values == {"conf_id": 1}


def test_records_with_different_shapes_keep_their_order() -> None:
    records = []
    for i in range(40):
        items: list[Item] = [("confID", str(i)), ("userName", f"u{i}")]
        if i % 3 == 0:
            items.reverse()
        if i % 5 == 0:
            items.append(("startTime", f"1/{1 + i % 28}/2020 0:0:0"))
        if i % 7 == 0:
            items.append(("surprise", str(i)))
        records.append(items)
    page = parse(ACCESS, records, zone=GMT)
    assert page.table.column("conf_id").to_pylist() == list(range(40))
    assert page.table.column("user_name").to_pylist() == [f"u{i}" for i in range(40)]
    assert page.table.column("start_time").to_pylist() == [
        utc(2020, 1, 1 + i % 28) if i % 5 == 0 else None for i in range(40)
    ]
    assert [extra(r).get("surprise") for r in rows(page)] == [str(i) if i % 7 == 0 else None for i in range(40)]


def test_any_sequence_of_records_is_accepted() -> None:
    # Records from two documents, in an order of our choosing, as a tuple.
    first = records_from(ACCESS, [[("confID", "1")], [("confID", "2")]])
    second = records_from(ACCESS, [[("confID", "3")]])
    page = parse_records(ACCESS, (second[0], first[1], first[0]), site="s", zone=GMT)
    assert page.table.column("conf_id").to_pylist() == [3, 2, 1]


def test_comments_and_processing_instructions_are_ignored() -> None:
    xml = f'<b xmlns:h="{NS}"><h:accessAnyWhereInfo><!-- c --><h:confID>1</h:confID><?pi x?></h:accessAnyWhereInfo></b>'
    records = list(etree.fromstring(xml.encode()))  # a plain parser keeps comments and PIs
    page = parse_records(ACCESS, records, site="s", zone=GMT)
    assert rows(page)[0]["conf_id"] == 1 and rows(page)[0]["extra"] is None
    assert not page.unknown_elements


def test_every_record_a_different_shape() -> None:
    # Optional elements come and go: many tag tuples on one page must still land row by row.
    records = []
    for i in range(120):
        items: list[Item] = [("confID", str(i))]
        if i & 1:
            items.append(("userName", f"u{i}"))
        if i & 2:
            items.append(("computerName", None))
        if i & 4:
            items.insert(0, ("duration", str(i % 7)))
        if i & 8:
            items.append(("clientIP", f"10.0.0.{i}"))
        if i & 16:
            items.append((f"new{i % 3}", "x"))
        records.append(items)
    page = parse(ACCESS, records, zone=GMT)
    table = page.table
    assert table.column("conf_id").to_pylist() == list(range(120))
    assert table.column("user_name").to_pylist() == [f"u{i}" if i & 1 else None for i in range(120)]
    assert table.column("computer_name").to_pylist() == ["" if i & 2 else None for i in range(120)]
    assert table.column("duration").to_pylist() == [i % 7 if i & 4 else None for i in range(120)]
    assert table.column("client_ip").to_pylist() == [f"10.0.0.{i}" if i & 8 else None for i in range(120)]
    assert sum(page.unknown_elements.values()) == sum(1 for i in range(120) if i & 16)


def test_container_oddities_are_kept() -> None:
    usage = by_name("meeting_usage")
    page = parse(
        usage,
        [
            [
                ("confID", "1"),
                ("trackingCode", [("trackingCode1", "a"), ("trackingCode1", "b"), ("trackingCode2", [("x", "1")])]),
                ("trackingCode", [("trackingCode3", "c"), ("trackingCode1", "d")]),
            ],
            [("confID", "2"), ("assistService", "Dry Run")],  # a container sent as a leaf
        ],
    )
    first, second = rows(page)
    assert (first["tracking_code1"], first["tracking_code2"], first["tracking_code3"]) == ("a", None, "c")
    assert extra(first) == {"trackingCode": {"trackingCode1": ["b", "d"], "trackingCode2": {"x": "1"}}}
    assert page.bad_values == {"tracking_code1": 2, "tracking_code2": 1}
    assert second["assist_request"] is None
    assert extra(second) == {"assistService": {"#text": "Dry Run"}}
    assert page.unknown_elements == {"assistService/#text": 1}
