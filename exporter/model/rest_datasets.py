"""The REST source (GET https://webexapis.com/v1/...): how the REST APIs list the XML datasets,
and the datasets only they have.  Field facts from Cisco's OpenAPI specs, summarised in
../shared/webex-rest-api.md; what the specs leave open is marked ``unconfirmed``."""

from __future__ import annotations

from .dataset_spec import Dataset, RestField, RestListing, TimeScope
from .naming import column_name

__all__ = ["REST_LISTINGS", "REST_ONLY_DATASETS"]

_ADMIN_CONFIG = ("meeting:admin_config_read",)
_USAGE_TOTALS = tuple(
    RestField(path, column_name(path), "int")
    for path in (
        "totalPeopleMinutes", "totalCallInMinutes", "totalCallOutDomestic", "totalCallOutInternational",
        "totalVoipMinutes", "totalParticipants", "totalParticipantsVoip", "totalParticipantsCallIn",
        "totalParticipantsCallOut", "peakAttendee", "totalRegistered",
    )
)


def _usage(service_type: str, start: str, end: str, *, host_name: str = "host_name",
           invitees: str = "total_invitee") -> RestListing:
    """``/meetingReports/usage`` for one service type, into a session dataset's columns."""
    fields = (
        RestField("meetingId", "meeting_id", "str"),
        RestField("meetingNumber", "session_key", "int"),
        RestField("meetingTitle", "conf_name", "str"),
        RestField("start", start, "timestamp"),
        RestField("end", end, "timestamp"),
        RestField("duration", "duration", "int"),
        RestField("scheduledType", "scheduled_type", "str"),
        RestField("hostDisplayName", host_name, "str"),
        RestField("hostEmail", "host_email", "str"),
        RestField("totalCallInTollFreeMinutes", "total_call_in_tollfree_minutes", "int"),
        *_USAGE_TOTALS,
        RestField("totalInvitee", invitees, "int"),
        RestField("serviceType", "service_type", "str"),
        RestField("trackingCodes", "tracking_codes", "json"),
    )
    return RestListing(
        path="/meetingReports/usage", fields=fields, key=("meeting_id",), params=(("serviceType", service_type),),
        max_page=1000, window_days=30, reach_days=90, scopes=_ADMIN_CONFIG,
        unconfirmed="" if service_type == "MeetingCenter" else f"{service_type} rows' meetingId form",
    )


def _attendees(parent: str, start: str, name: str, email: str, end: str, *, phone: str = "phone",
               zip_code: str = "zip") -> RestListing:
    """``/meetingReports/attendees?meetingId=`` per meeting of the parent usage listing.  No row
    id: identity is meeting, name, email and join time (+ occurrence by content, for twins), so a
    revised leave time replaces its row instead of adding one."""
    fields = (
        RestField("meetingId", "meeting_id", "str"),
        RestField("meetingNumber", "meeting_number", "str"),
        RestField("meetingTitle", "conf_name", "str"),
        RestField("displayName", name, "str"),
        RestField("email", email, "str"),
        RestField("joinedTime", start, "timestamp"),
        RestField("leftTime", end, "timestamp"),
        RestField("duration", "duration", "int"),
        RestField("participantType", "participant_type", "str", lower=True),
        RestField("ipAddress", "ip_address", "str"),
        RestField("clientAgent", "client_agent", "str"),
        RestField("company", "company", "str"),
        RestField("phoneNumber", phone, "str"),
        RestField("address1", "address1", "str"),
        RestField("address2", "address2", "str"),
        RestField("city", "city", "str"),
        RestField("state", "state", "str"),
        RestField("country", "country", "str"),
        RestField("zipCode", zip_code, "str"),
        RestField("registered", "registered", "bool"),
        RestField("invited", "invited", "bool"),
    )
    return RestListing(
        path="/meetingReports/attendees", fields=fields, key=("meeting_id", name, email, start), max_page=1000,
        window_days=30, reach_days=90, scopes=_ADMIN_CONFIG, parent=parent, parent_id="meeting_id",
        id_param="meetingId", child_time_range=True,
        unconfirmed="" if parent == "meeting_usage" else "attendee reports of non-Meeting-Center sessions",
    )


#: REST listings of XML datasets, by dataset name.
REST_LISTINGS: dict[str, RestListing] = {
    "meeting_usage": _usage("MeetingCenter", "meeting_start_time", "meeting_end_time"),
    "training_sessions": _usage("TrainingCenter", "session_start_time", "session_end_time", invitees="total_invited"),
    "event_sessions": _usage("EventCenter", "session_start_time", "session_end_time"),
    "support_sessions": _usage("SupportCenter", "session_start_time", "session_end_time"),
    "meeting_attendees": _attendees("meeting_usage", "join_time", "name", "email", "leave_time",
                                    phone="phone_number", zip_code="zip_code"),
    "training_attendees": _attendees("training_sessions", "start_time", "attendee_name", "attendee_email", "end_time"),
    "event_attendees": _attendees("event_sessions", "start_time", "attendee_name", "attendee_email", "end_time"),
    "support_attendees": _attendees("support_sessions", "start_time", "attendee_name", "attendee_email", "end_time"),
    "recording_access": RestListing(
        path="/recordingReport/accessSummary",
        fields=(
            RestField("recordingId", "recording_id", "str"),
            RestField("topic", "record_name", "str"),
            RestField("timeRecorded", "creation_time", "timestamp"),
            RestField("viewCount", "viewed", "int"),
            RestField("downloadCount", "downloaded", "int"),
            RestField("siteUrl", "site_url", "str"),
            RestField("hostEmail", "host_email", "str"),
        ),
        key=("recording_id",), params=(("hostEmail", "all"),), max_page=100, window_days=90, reach_days=365,
        scopes=("meeting:admin_recordings_read",),
    ),
}


_NO_XML = TimeScope("", "", "")

#: Datasets only the REST APIs have: meeting instances, one row per participant join (the
#: per-join identity the XML attendee rows lack), and each access to a recording.
REST_ONLY_DATASETS: tuple[Dataset, ...] = (
    Dataset(
        name="meeting_instances",
        operation="", service="rest", response_type="", record_element="", time_scope=_NO_XML, order=(),
        sends_time_zone_id=False, xml=False,
        columns=(), natural_key=(), start_column="start_time",
        rest=RestListing(
            path="/meetings",
            fields=(
                RestField("id", "meeting_id", "str"),
                RestField("meetingSeriesId", "meeting_series_id", "str"),
                RestField("scheduledMeetingId", "scheduled_meeting_id", "str"),
                RestField("meetingNumber", "meeting_number", "str"),
                RestField("title", "title", "str"),
                RestField("meetingType", "meeting_type", "str"),
                RestField("state", "state", "str"),
                RestField("scheduledType", "scheduled_type", "str"),
                RestField("timezone", "timezone", "str"),
                RestField("start", "start_time", "timestamp"),
                RestField("end", "end_time", "timestamp"),
                RestField("hostUserId", "host_user_id", "str"),
                RestField("hostDisplayName", "host_display_name", "str"),
                RestField("hostEmail", "host_email", "str"),
                RestField("siteUrl", "site_url", "str"),
                RestField("hasRecording", "has_recording", "bool"),
                RestField("hasTranscription", "has_transcription", "bool"),
                RestField("hasChat", "has_chat", "bool"),
                RestField("integrationTags", "integration_tags", "json"),
            ),
            key=("meeting_id",), params=(("meetingType", "meeting"), ("state", "ended")), max_page=100,
            window_days=7, reach_days=90, scopes=("meeting:admin_schedule_read",),
            unconfirmed="how far back /meetings lists ended instances (no limit is documented)",
        ),
    ),
    Dataset(
        name="meeting_participants",
        operation="", service="rest", response_type="", record_element="", time_scope=_NO_XML, order=(),
        sends_time_zone_id=False, xml=False,
        columns=(), natural_key=(), start_column="meeting_start_time",
        rest=RestListing(
            path="/meetingParticipants",
            fields=(
                RestField("id", "participant_id", "str"),
                RestField("meetingId", "meeting_id", "str"),
                RestField("displayName", "display_name", "str"),
                RestField("email", "email", "str"),
                RestField("host", "host", "bool"),
                RestField("coHost", "co_host", "bool"),
                RestField("invitee", "invitee", "bool"),
                RestField("state", "state", "str"),
                RestField("video", "video", "str"),
                RestField("joinedTime", "joined_time", "timestamp"),
                RestField("leftTime", "left_time", "timestamp"),
                RestField("hostEmail", "host_email", "str"),
                RestField("siteUrl", "site_url", "str"),
                RestField("breakoutSessionsAttended", "breakout_sessions", "json"),
                RestField("devices.correlationId", "correlation_id", "str"),
                RestField("devices.deviceType", "device_type", "str"),
                RestField("devices.audioType", "audio_type", "str"),
                RestField("devices.callType", "call_type", "str"),
                RestField("devices.joinedTime", "device_joined_time", "timestamp"),
                RestField("devices.leftTime", "device_left_time", "timestamp"),
                RestField("devices.durationSecond", "device_duration_seconds", "int"),
            ),
            key=("participant_id", "correlation_id"), max_page=100, window_days=7, reach_days=90,
            scopes=("meeting:admin_participants_read",), parent="meeting_instances", parent_id="meeting_id",
            id_param="meetingId", carry=(("start_time", "meeting_start_time"),), explode="devices",
        ),
    ),
    Dataset(
        name="recording_access_details",
        operation="", service="rest", response_type="", record_element="", time_scope=_NO_XML, order=(),
        sends_time_zone_id=False, xml=False,
        columns=(), natural_key=(), start_column="recording_time",
        rest=RestListing(
            path="/recordingReport/accessDetail",
            fields=(
                RestField("recordingId", "recording_id", "str"),
                RestField("topic", "topic", "str"),
                RestField("name", "name", "str"),
                RestField("email", "email", "str"),
                RestField("accessTime", "access_time", "timestamp"),
                RestField("viewed", "viewed", "bool"),
                RestField("downloaded", "downloaded", "bool"),
            ),
            key=("recording_id", "email", "access_time"), params=(("hostEmail", "all"),), max_page=100,
            window_days=90, reach_days=365, scopes=("meeting:admin_recordings_read",), parent="recording_access",
            parent_id="recording_id", id_param="recordingId", carry=(("creation_time", "recording_time"),),
        ),
    ),
)
