"""exporter.webex.rest.decode: JSON items -> typed Arrow tables of the REST columns."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest

from exporter.model.dataset_spec import Dataset
from exporter.model.datasets import ALL_DATASETS, by_name
from exporter.records.arrow_schema import arrow_schema
from exporter.webex.rest.decode import decode_items, json_text, parse_iso_time, rest_columns, rest_schema

UTC = timezone.utc
USAGE = by_name("meeting_usage")
ATTENDEES = by_name("meeting_attendees")
TRAINING_ATTENDEES = by_name("training_attendees")
PARTICIPANTS = by_name("meeting_participants")
DETAILS = by_name("recording_access_details")
INSTANCES = by_name("meeting_instances")


def one(dataset, item, **kw):  # type: ignore[no-untyped-def]
    page = decode_items(dataset, [item], site="demo", **kw)
    assert page.table.num_rows == 1
    return page.table.to_pylist()[0], page


# ------------------------------------------------------------------------------------ schema


@pytest.mark.parametrize("dataset", [d for d in ALL_DATASETS if d.rest], ids=lambda d: d.name)
def test_every_listing_has_exactly_its_mapped_columns_then_parse_lineage(dataset: Dataset) -> None:
    schema = rest_schema(dataset)
    mapped = list(dict.fromkeys(f.column for f in dataset.rest.fields))
    carried = [target for _, target in dataset.rest.carry]
    lineage = [n for n in arrow_schema(by_name("meeting_usage")).names if n in ("site", "extra", "_preliminary")]
    assert schema.names == mapped + carried + lineage
    xml = {c.name: c for c in dataset.columns}
    arrow_xml = arrow_schema(dataset) if dataset.columns else None
    for column in rest_columns(dataset):
        if column.name in xml:  # an XML column keeps its XML type
            assert schema.field(column.name).type == arrow_xml.field(column.name).type  # type: ignore[union-attr]
    assert decode_items(dataset, [], site="demo").table.schema == schema


def test_types_follow_the_xml_column_when_the_field_lands_in_one() -> None:
    schema = rest_schema(USAGE)
    assert schema.field("session_key").type == pa.int64()  # meetingNumber -> the XML int column
    assert schema.field("meeting_start_time").type == pa.timestamp("us", tz="UTC")
    assert schema.field("meeting_id").type == pa.string()  # REST-only
    assert rest_schema(TRAINING_ATTENDEES).field("registered").type == pa.string()  # XML str column
    assert rest_schema(ATTENDEES).field("registered").type == pa.bool_()  # REST-only bool
    assert rest_schema(PARTICIPANTS).field("meeting_start_time").type == pa.timestamp("us", tz="UTC")  # carried
    assert rest_schema(DETAILS).field("recording_time").type == pa.timestamp("us", tz="UTC")


# ------------------------------------------------------------------------------------ values


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-03-10T12:00:00Z", datetime(2026, 3, 10, 12, tzinfo=UTC)),
        ("2026-03-10T12:00:00.000Z", datetime(2026, 3, 10, 12, tzinfo=UTC)),
        ("2026-03-10T12:00:00.123456789Z", datetime(2026, 3, 10, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2026-03-10T14:00:00+02:00", datetime(2026, 3, 10, 12, tzinfo=UTC)),
        ("2026-03-10T07:00:00-0500", datetime(2026, 3, 10, 12, tzinfo=UTC)),
        ("2026-03-10T12:00:00z", datetime(2026, 3, 10, 12, tzinfo=UTC)),
        ("2026-03-10t12:00:00", datetime(2026, 3, 10, 12, tzinfo=UTC)),  # no offset: UTC (we ask for UTC)
        ("2026-03-10 12:00:00", datetime(2026, 3, 10, 12, tzinfo=UTC)),
        ("20260310T120000Z", datetime(2026, 3, 10, 12, tzinfo=UTC)),
        (" 2026-03-10T12:00Z ", datetime(2026, 3, 10, 12, tzinfo=UTC)),
    ],
)
def test_tolerant_iso_8601(text: str, expected: datetime) -> None:
    assert parse_iso_time(text) == expected
    row, page = one(INSTANCES, {"id": "m", "start": text})
    assert row["start_time"] == expected and not page.bad_values


@pytest.mark.parametrize("text", ["2026-03-10", "2026-02-30T00:00:00Z", "yesterday", "2026-03-10T25:00:00Z",
                                  "1710072000", "0001-01-01T00:00:00+01:00"])
def test_a_time_that_is_not_one_is_a_bad_value_kept_in_extra(text: str) -> None:
    row, page = one(INSTANCES, {"id": "m", "start": text})
    assert row["start_time"] is None
    assert json.loads(row["extra"]) == {"start": text}
    assert page.bad_values == {"start_time": 1}


def test_an_epoch_number_for_a_time_is_a_bad_value() -> None:
    row, page = one(INSTANCES, {"id": "m", "start": 1710072000})
    assert row["start_time"] is None and json.loads(row["extra"]) == {"start": 1710072000}
    assert page.bad_values == {"start_time": 1}


@pytest.mark.parametrize("text", ["1970-01-01T00:00:00.000Z", "1970-01-01T00:00:00Z", "1970-01-01T00:00:00"])
def test_the_1970_placeholder_is_null_and_counted_not_bad(text: str) -> None:
    row, page = one(PARTICIPANTS, {"id": "p", "joinedTime": "2026-03-10T12:00:00Z", "leftTime": text})
    assert row["left_time"] is None and row["joined_time"] == datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert page.placeholders == {"left_time": 1} and not page.bad_values and row["extra"] is None


def test_numbers_as_strings_and_strings_as_numbers() -> None:
    item = {"meetingId": "m", "meetingNumber": "123456789", "duration": 60.0, "totalParticipants": " 7 "}
    row, page = one(USAGE, item)
    assert row["session_key"] == 123456789 and row["duration"] == 60 and row["total_participants"] == 7
    assert not page.bad_values
    row, _ = one(ATTENDEES, {"meetingId": "m", "meetingNumber": 123456789})  # an int into the str column
    assert row["meeting_number"] == "123456789"


@pytest.mark.parametrize("value", ["12a", "0x1F", 1.5, True, [1], {"a": 1}, 2**63, "1.0"])
def test_an_int_that_does_not_fit_is_null_kept_and_counted(value: object) -> None:
    row, page = one(USAGE, {"meetingId": "m", "duration": value})
    assert row["duration"] is None
    assert json.loads(row["extra"]) == {"duration": value}
    assert page.bad_values == {"duration": 1}


def test_booleans() -> None:
    row, page = one(INSTANCES, {"id": "m", "hasChat": True, "hasRecording": "false", "hasTranscription": 1})
    assert (row["has_chat"], row["has_recording"], row["has_transcription"]) == (True, False, True)
    row, page = one(INSTANCES, {"id": "m", "hasChat": "maybe", "hasRecording": 2})
    assert row["has_chat"] is None and row["has_recording"] is None
    assert page.bad_values == {"has_chat": 1, "has_recording": 1}


def test_a_bool_into_a_str_column_is_true_or_false() -> None:
    row, page = one(TRAINING_ATTENDEES, {"meetingId": "m", "registered": True, "invited": False})
    assert row["registered"] == "true" and row["invited"] == "false" and not page.bad_values


def test_an_object_into_a_str_column_is_a_bad_value() -> None:
    row, page = one(INSTANCES, {"id": "m", "title": {"text": "x"}})
    assert row["title"] is None and json.loads(row["extra"]) == {"title": {"text": "x"}}
    assert page.bad_values == {"title": 1}


def test_empty_strings_are_null_in_typed_columns_and_kept_in_str_ones() -> None:
    row, page = one(USAGE, {"meetingId": "m", "duration": "", "meetingTitle": ""})
    assert row["duration"] is None and row["conf_name"] == "" and not page.bad_values and row["extra"] is None


def test_lower_fields_are_lower_cased() -> None:
    rows = decode_items(ATTENDEES, [{"participantType": "ATTENDEE"}, {"participantType": "Host"}], site="demo")
    assert rows.table.column("participant_type").to_pylist() == ["attendee", "host"]


def test_json_fields_are_compact_sorted_json() -> None:
    value = [{"name": "Dept", "value": "Sales"}, {"value": "ü", "name": "Cost"}]
    row, _ = one(USAGE, {"meetingId": "m", "trackingCodes": value})
    assert row["tracking_codes"] == json_text(value) == '[{"name":"Dept","value":"Sales"},{"name":"Cost","value":"ü"}]'
    row, _ = one(USAGE, {"meetingId": "m", "trackingCodes": None})
    assert row["tracking_codes"] is None


# ------------------------------------------------------------------------------------ extra


def test_unknown_fields_go_to_extra_and_are_counted() -> None:
    page = decode_items(INSTANCES, [{"id": "m", "agenda": "x", "links": [{"rel": "a"}]}, {"id": "n", "agenda": "é"}],
                        site="demo")
    rows = page.table.to_pylist()
    assert json.loads(rows[0]["extra"]) == {"agenda": "x", "links": [{"rel": "a"}]}
    assert rows[1]["extra"] == json.dumps({"agenda": "é"}, ensure_ascii=False)  # parse.py's extra format
    assert page.unknown_fields == {"agenda": 2, "links": 1}


def test_an_item_that_is_not_an_object_is_kept_not_dropped() -> None:
    page = decode_items(INSTANCES, [{"id": "a"}, "junk", 7], site="demo")
    assert page.table.num_rows == 3
    assert [json.loads(e) if e else None for e in page.table.column("extra").to_pylist()] == [
        None, {"#item": "junk"}, {"#item": 7}]


def test_site_and_preliminary_lineage() -> None:
    page = decode_items(INSTANCES, [{"id": "a"}], site="acme", preliminary=True)
    assert page.table.column("site").to_pylist() == ["acme"]
    assert page.table.column("_preliminary").to_pylist() == [True]


# ------------------------------------------------------------------------------------ explode, carry

PARTICIPANT = {
    "id": "p1", "meetingId": "m1_I_1", "host": True, "email": "a@x.com", "joinedTime": "2026-03-10T12:00:00Z",
    "leftTime": "2026-03-10T12:30:00Z", "orgId": "org-1",
    "breakoutSessionsAttended": [{"name": "B1", "id": "b1"}],
    "devices": [
        {"correlationId": "c1", "deviceType": "mac", "joinedTime": "2026-03-10T12:00:00.000Z",
         "leftTime": "2026-03-10T12:10:00.000Z", "durationSecond": 600, "phoneNumber": "555"},
        {"correlationId": "c2", "deviceType": "ios", "joinedTime": "2026-03-10T12:15:00.000Z",
         "leftTime": "1970-01-01T00:00:00.000Z", "durationSecond": "n/a"},
    ],
}


def test_explode_gives_one_row_per_device_with_the_participant_fields_on_each() -> None:
    start = datetime(2026, 3, 10, 11, 58, tzinfo=UTC)
    page = decode_items(PARTICIPANTS, [PARTICIPANT], site="demo", carry={"meeting_start_time": start})
    rows = page.table.to_pylist()
    assert [r["correlation_id"] for r in rows] == ["c1", "c2"]
    assert all(r["participant_id"] == "p1" and r["host"] is True and r["meeting_start_time"] == start for r in rows)
    assert rows[0]["device_duration_seconds"] == 600 and rows[1]["device_duration_seconds"] is None
    assert rows[1]["device_left_time"] is None
    assert json.loads(rows[0]["extra"]) == {"orgId": "org-1", "devices": {"phoneNumber": "555"}}
    assert json.loads(rows[1]["extra"]) == {"orgId": "org-1", "devices": {"durationSecond": "n/a"}}
    assert rows[0]["breakout_sessions"] == '[{"id":"b1","name":"B1"}]'
    assert page.unknown_fields == {"orgId": 1, "devices.phoneNumber": 1}
    assert page.bad_values == {"device_duration_seconds": 1}
    assert page.placeholders == {"device_left_time": 1}


@pytest.mark.parametrize("devices", [None, [], "absent"])
def test_no_devices_gives_one_row_with_device_columns_null(devices: object) -> None:
    item = {k: v for k, v in PARTICIPANT.items() if k != "devices"}
    if devices != "absent":
        item["devices"] = devices
    row, page = one(PARTICIPANTS, item)
    assert row["participant_id"] == "p1" and row["correlation_id"] is None and row["device_type"] is None
    assert json.loads(row["extra"]) == {"orgId": "org-1"}


def test_devices_that_are_not_a_list_or_not_objects_are_kept() -> None:
    row, page = one(PARTICIPANTS, {"id": "p", "devices": "broken"})
    assert json.loads(row["extra"]) == {"devices": "broken"} and page.bad_values["correlation_id"] == 1
    page = decode_items(PARTICIPANTS, [{"id": "p", "devices": [{"correlationId": "c"}, 5]}], site="demo")
    rows = page.table.to_pylist()
    assert [r["correlation_id"] for r in rows] == ["c", None] and json.loads(rows[1]["extra"]) == {"devices": 5}


def test_carry_names_must_be_the_listings() -> None:
    with pytest.raises(ValueError, match="carry"):
        decode_items(PARTICIPANTS, [{"id": "p"}], site="demo", carry={"nope": 1})
    later = datetime(2026, 3, 10, tzinfo=UTC) + timedelta(hours=1)
    row, _ = one(DETAILS, {"recordingId": "r", "accessTime": "2026-03-10T01:00:00Z"}, carry={"recording_time": later})
    assert row["recording_time"] == later == row["access_time"]
