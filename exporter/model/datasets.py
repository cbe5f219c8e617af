"""The registry: every exported Webex operation declared once, as data.

A :class:`Dataset` says how to ask for a window of records (operation, time scope, order, fixed
request elements), how to find them in the response (record element), and what they become
(typed columns, natural key, the column that places a record in a window and a partition).
The simulator serves exactly these records, the parser types them, the warehouse keys them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from .naming import column_name

__all__ = [
    "Column",
    "ColumnType",
    "Dataset",
    "DATASETS",
    "TimeScope",
    "by_name",
    "LINEAGE_COLUMNS",
    "RestField",
    "RestListing",
    "REST_ONLY_DATASETS",
    "ALL_DATASETS",
    "SOURCE_COLUMN",
]

ColumnType = Literal["int", "float", "bool", "str", "timestamp", "json"]

#: Columns every landed row carries besides the declared ones (filled by the exporter).
LINEAGE_COLUMNS = ("site", "extra", "_preliminary", "_commit")
#: Which API a landed row came from: "xml" (files landed before REST existed lack the column and
#: read as "xml") or "rest".
SOURCE_COLUMN = "source"


@dataclass(frozen=True, slots=True)
class Column:
    """One typed output column, read from ``element`` (inside ``parent`` when nested)."""

    name: str
    type: ColumnType
    element: str
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class TimeScope:
    """Where a window goes in the request: ``<container><start>..</start><end>..</end></container>``.

    ``zone_inside`` puts ``timeZoneID`` inside the container (LstsummarySession's dateScope).
    """

    container: str
    start: str
    end: str
    zone_inside: bool = False


@dataclass(frozen=True, slots=True)
class RestField:
    """One JSON field of a REST item and the column it lands in.

    ``path`` is the field name in the item (``devices.correlationId``: inside the exploded array
    element).  When ``column`` is also a declared XML column of the dataset the value lands
    there, converted to that column's type; otherwise it is a REST-only column of ``type``."""

    path: str
    column: str
    type: ColumnType
    #: Lower-case the value (``participantType`` comes as ``ATTENDEE`` and as ``host``).
    lower: bool = False


@dataclass(frozen=True, slots=True)
class RestListing:
    """How the Webex REST APIs list a dataset (see ``../shared/webex-rest-api.md``).

    A top-level listing asks ``path`` with ``from``/``to`` (ISO 8601, UTC, the ``timezone: UTC``
    header) for one window of at most ``window_days`` that starts no earlier than ``reach_days``
    ago, ``max`` = ``max_page``, and follows ``Link: rel="next"`` to the end.  A fan-out listing
    (``parent`` set) first lists the parent dataset for the same window and then asks ``path``
    once per distinct parent ``parent_id`` value (as request parameter ``id_param``), copying the
    parent's ``carry`` columns into each row (they place the row in its window)."""

    path: str
    fields: tuple[RestField, ...]
    #: REST identity columns; a row's identity is site + these + ``_occurrence``.
    key: tuple[str, ...]
    params: tuple[tuple[str, str], ...] = ()
    max_page: int = 100
    window_days: int = 30
    reach_days: int = 90
    scopes: tuple[str, ...] = ()
    parent: str | None = None
    parent_id: str = ""
    id_param: str = ""
    carry: tuple[tuple[str, str], ...] = ()
    #: Array field of the item: one row per element (its fields are ``<explode>.<name>``); an item
    #: whose array is empty or missing gives one row with those columns null.
    explode: str | None = None
    #: A fan-out call also sends the window's ``from``/``to`` (the attendee report wants them).
    child_time_range: bool = False
    #: Which part of this mapping the published spec leaves open (logged once per run).
    unconfirmed: str = ""


@dataclass(frozen=True, slots=True)
class Dataset:
    """One Webex list operation and the table its records land in."""

    name: str
    operation: str
    service: str
    response_type: str
    record_element: str
    columns: tuple[Column, ...]
    natural_key: tuple[str, ...]
    start_column: str
    time_scope: TimeScope
    #: ``orderBy``/``orderAD`` pairs (at most three): the start time first, then tie-breakers the
    #: operation's schema allows, so rows tied on time keep their order between page requests.
    order: tuple[tuple[str, str], ...]
    sends_time_zone_id: bool
    api_group: str = "meeting_list"
    request_extras: tuple[tuple[str, str], ...] = ()
    preliminary_operation: str | None = None
    matching_records_first: bool = False
    #: Lists sessions that have not happened yet (scheduled meetings): plan windows past now.
    looks_ahead: bool = False
    #: How the REST APIs list this dataset (None: no REST equivalent, e.g. Access Anywhere).
    rest: RestListing | None = None
    #: False for datasets only the REST APIs have (no XML operation behind them).
    xml: bool = True

    @property
    def sources(self) -> tuple[str, ...]:
        """The APIs that can list this dataset: ``("xml",)``, ``("rest",)`` or both."""
        return (("xml",) if self.xml else ()) + (("rest",) if self.rest else ())

    @property
    def rest_columns(self) -> tuple[Column, ...]:
        """Columns only the REST source fills (declared by :attr:`rest`, not by the XML schema)."""
        if self.rest is None:
            return ()
        declared = {c.name for c in self.columns}
        seen: set[str] = set()
        out = []
        for f in self.rest.fields:
            if f.column not in declared and f.column not in seen:
                seen.add(f.column)
                out.append(Column(f.column, f.type, f.path))
        if self.rest.parent:  # columns copied from the parent row (they place the row in a window)
            parent = {c.name: c for c in by_name(self.rest.parent).all_columns}
            for source, target in self.rest.carry:
                if target not in declared and target not in seen:
                    seen.add(target)
                    out.append(Column(target, parent[source].type, f"(parent {source})"))
        return tuple(out)

    @property
    def all_columns(self) -> tuple[Column, ...]:
        """Every typed column of the dataset's table: the XML schema's, then the REST-only ones."""
        return self.columns + self.rest_columns

    @property
    def identity_columns(self) -> tuple[str, ...]:
        """The key columns a row's identity is built from (before ``site`` and ``_occurrence``):
        the XML natural key, then the REST key's columns not in it.  A row fills the key of its
        source; the other source's key columns are null, so the two never collide."""
        rest_key = self.rest.key if self.rest else ()
        return self.natural_key + tuple(k for k in rest_key if k not in self.natural_key)

    @property
    def xsi_type(self) -> str:
        """The request ``bodyContent`` xsi:type, e.g. ``java:com.webex.service.binding.history.X``."""
        return f"java:com.webex.service.binding.{self.service}.{self.operation}"

    @property
    def column_by_name(self) -> dict[str, Column]:
        """Columns keyed by name (small; rebuilt on demand)."""
        return {c.name: c for c in self.columns}

    @property
    def timestamp_columns(self) -> tuple[str, ...]:
        """Names of the columns that hold times."""
        return tuple(c.name for c in self.columns if c.type == "timestamp")


def _columns(spec: str) -> tuple[Column, ...]:
    """Parse ``"confID:int trackingCode/trackingCode1:str source/count:int=source_count"``."""
    columns = []
    for item in spec.split():
        path, _, rest = item.partition(":")
        type_, _, explicit = rest.partition("=")
        parent, _, element = path.rpartition("/")
        columns.append(Column(explicit or column_name(element), type_, element, parent or None))  # type: ignore[arg-type]
    return tuple(columns)


_TRACKING = " ".join(f"trackingCode/trackingCode{i}:str" for i in range(1, 11))
_ASSIST = "assistService/assistRequest:str assistService/assistConfirm:str"
_SESSION_TOTALS = (
    "totalPeopleMinutes:int totalCallInMinutes:int totalCallInTollfreeMinutes:int "
    "totalCallOutDomestic:int totalCallOutInternational:int totalVoipMinutes:int "
    "totalParticipants:int totalParticipantsVoip:int totalParticipantsCallIn:int "
    "totalParticipantsCallOut:int"
)
_START_SCOPE = TimeScope("startTimeScope", "sessionStartTimeStart", "sessionStartTimeEnd")
_ATTENDEE_ADDRESS = (
    "company:str title:str phone:str address1:str address2:str city:str state:str "
    "country:str zip:str ipAddress:str participantType:str voipDuration:int clientAgent:str"
)


DATASETS: tuple[Dataset, ...] = (
    Dataset(
        name="meeting_usage",
        operation="LstmeetingusageHistory",
        service="history",
        response_type="history:lstmeetingusageHistoryResponse",
        record_element="meetingUsageHistory",
        columns=_columns(
            "sessionKey:int confName:str meetingStartTime:timestamp meetingEndTime:timestamp "
            f"duration:int timezone:str {_TRACKING} meetingType:str hostWebExID:str hostName:str "
            "hostEmail:str totalCallInMinutes:int totalPeopleMinutes:int "
            "totalCallInTollfreeMinutes:int totalCallOutDomestic:int totalCallOutInternational:int "
            "totalVoipMinutes:int userID:int totalParticipants:int totalParticipantsVoip:int "
            "totalParticipantsCallIn:int totalParticipantsCallOut:int confID:int peakAttendee:int "
            f"{_ASSIST} tollCallInInternational:int tollfreeCallInInternational:int meetingUUID:str"
        ),
        natural_key=("conf_id",),
        start_column="meeting_start_time",
        time_scope=_START_SCOPE,
        order=(("STARTTIME", "ASC"), ("CONFNAME", "ASC"), ("HOSTNAME", "ASC")),
        sends_time_zone_id=True,
        request_extras=(("inclAudioOnly", "true"),),
        preliminary_operation="LstmeetingusagePreliminaryHistory",
    ),
    Dataset(
        name="meeting_attendees",
        operation="LstmeetingattendeeHistory",
        service="history",
        response_type="history:lstmeetingattendeeHistoryResponse",
        record_element="meetingAttendeeHistory",
        columns=_columns(
            "meetingKey:int confName:str ipAddress:str clientAgent:str company:str title:str "
            "phoneNumber:str address1:str address2:str city:str state:str country:str zipCode:str "
            "name:str email:str joinTime:timestamp leaveTime:timestamp duration:int "
            "participantType:str voipDuration:int confID:int meetingUUID:str"
        ),
        natural_key=("conf_id", "name", "email", "join_time"),
        start_column="join_time",
        time_scope=_START_SCOPE,
        order=(("STARTTIME", "ASC"), ("CONFID", "ASC"), ("COMPANY", "ASC")),
        sends_time_zone_id=False,
        request_extras=(("inclAudioOnly", "true"),),
        preliminary_operation="LstmeetingattendeePreliminaryHistory",
    ),
    Dataset(
        name="training_sessions",
        operation="LsttrainingsessionHistory",
        service="history",
        response_type="history:lsttrainingsessionHistoryResponse",
        record_element="trainingSessionHistory",
        columns=_columns(
            "sessionKey:int confName:str sessionStartTime:timestamp sessionEndTime:timestamp "
            "duration:int totalAttendee:int totalRegistered:int totalInvited:int timezone:int "
            f"{_TRACKING} userID:int hostWebExID:str hostEmail:str totalPeopleMinutes:int "
            "totalCallInMinutes:int totalCallInTolllfreeMinutes:int totalCallOutDomestic:int "
            "totalCallOutInternational:int totalVoipMinutes:int totalParticipants:int "
            "totalParticipantsVoip:int totalParticipantsCallIn:int totalParticipantsCallOut:int "
            f"confID:int peakAttendee:int {_ASSIST} meetingUUID:str"
        ),
        natural_key=("conf_id",),
        start_column="session_start_time",
        time_scope=_START_SCOPE,
        order=(("STARTTIME", "ASC"), ("CONFNAME", "ASC"), ("TOTALATTENDEE", "ASC")),
        sends_time_zone_id=True,
    ),
    Dataset(
        name="training_attendees",
        operation="LsttrainingattendeeHistory",
        service="history",
        response_type="history:lsttrainingattendeeHistoryResponse",
        record_element="trainingAttendeeHistory",
        columns=_columns(
            "sessionKey:int confName:str attendeeName:str attendeeEmail:str startTime:timestamp "
            f"endTime:timestamp duration:int registered:str invited:str {_ATTENDEE_ADDRESS} "
            "confID:int meetingUUID:str"
        ),
        natural_key=("conf_id", "attendee_name", "attendee_email", "start_time"),
        start_column="start_time",
        time_scope=_START_SCOPE,
        order=(("STARTTIME", "ASC"), ("CONFID", "ASC"), ("NAME", "ASC")),
        sends_time_zone_id=True,
    ),
    Dataset(
        name="event_sessions",
        operation="LsteventsessionHistory",
        service="history",
        response_type="history:lsteventsessionHistoryResponse",
        record_element="eventSessionHistory",
        columns=_columns(
            "confID:int sessionKey:int confName:str sessionStartTime:timestamp "
            "sessionEndTime:timestamp duration:int timezone:int "
            f"{_TRACKING} meetingType:str userID:int hostWebExID:str hostName:str hostEmail:str "
            f"{_SESSION_TOTALS} source/leadSourceID:str source/count:int=source_count "
            f"source/avgLeadScore:float peakAttendee:int {_ASSIST} tollCallInInternational:int "
            "tollfreeCallInInternational:int meetingUUID:str"
        ),
        natural_key=("conf_id",),
        start_column="session_start_time",
        time_scope=_START_SCOPE,
        order=(("STARTTIME", "ASC"), ("CONFID", "ASC")),
        sends_time_zone_id=True,
        preliminary_operation="LsteventsessionPreliminaryHistory",
    ),
    Dataset(
        name="event_attendees",
        operation="LsteventattendeeHistory",
        service="history",
        response_type="history:lsteventattendeeHistoryResponse",
        record_element="eventAttendeeHistory",
        columns=_columns(
            "sessionKey:int attendeeName:str attendeeEmail:str startTime:timestamp "
            f"endTime:timestamp duration:int registered:str invited:str {_ATTENDEE_ADDRESS} "
            "confID:int leadSourceID:str leadScore:float regQandA:json=reg_q_and_a meetingUUID:str"
        ),
        natural_key=("conf_id", "attendee_name", "attendee_email", "start_time"),
        start_column="start_time",
        time_scope=_START_SCOPE,
        order=(("STARTTIME", "ASC"), ("CONFID", "ASC"), ("ATTENDEENAME", "ASC")),
        sends_time_zone_id=False,
        preliminary_operation="LsteventattendeePreliminaryHistory",
    ),
    Dataset(
        name="support_sessions",
        operation="LstsupportsessionHistory",
        service="history",
        response_type="history:lstsupportsessionHistoryResponse",
        record_element="supportSessionHistory",
        columns=_columns(
            "sessionKey:int confName:str sessionStartTime:timestamp sessionEndTime:timestamp "
            "duration:int timezone:int meetingType:str hostWebExID:str hostName:str "
            f"hostEmail:str totalPeopleMinutes:int confID:int peakAttendee:int {_TRACKING} "
            "meetingUUID:str"
        ),
        natural_key=("conf_id",),
        start_column="session_start_time",
        time_scope=_START_SCOPE,
        order=(("CONFID", "ASC"),),
        sends_time_zone_id=True,
    ),
    Dataset(
        name="support_attendees",
        operation="LstsupportattendeeHistory",
        service="history",
        response_type="history:lstsupportattendeeHistoryResponse",
        record_element="supportAttendeeHistory",
        columns=_columns(
            "sessionKey:int attendeeName:str attendeeEmail:str startTime:timestamp "
            "endTime:timestamp duration:int company:str phone:str ipAddress:str "
            "participantType:str clientAgent:str confID:int meetingUUID:str"
        ),
        natural_key=("conf_id", "attendee_name", "attendee_email", "start_time"),
        start_column="start_time",
        time_scope=_START_SCOPE,
        order=(("STARTTIME", "ASC"), ("CONFID", "ASC"), ("ATTENDEENAME", "ASC")),
        sends_time_zone_id=False,
    ),
    Dataset(
        name="recording_access",
        operation="LstrecordaccessHistory",
        service="history",
        response_type="history:lstrecordaccessHistoryResponse",
        record_element="recordAccessHistory",
        columns=_columns(
            "recordID:int recordName:str creationTime:timestamp registered:int downloaded:int "
            "viewed:int timeZoneID:int"
        ),
        natural_key=("record_id",),
        start_column="creation_time",
        time_scope=TimeScope("creationTimeScope", "creationTimeStart", "creationTimeEnd"),
        order=(("RECORDID", "ASC"),),
        sends_time_zone_id=True,
    ),
    Dataset(
        name="access_anywhere",
        operation="LstAccessAnywhereHistory",
        service="history",
        response_type="history:LstAccessAnywhereHistoryResponse",
        record_element="accessAnyWhereInfo",
        columns=_columns(
            "confID:int userName:str computerName:str clientIP:str startTime:timestamp "
            "endTime:timestamp duration:int"
        ),
        natural_key=("conf_id", "user_name", "computer_name", "start_time"),
        start_column="start_time",
        time_scope=_START_SCOPE,
        order=(("STARTTIME", "ASC"),),
        sends_time_zone_id=False,
        matching_records_first=True,
    ),
    Dataset(
        name="scheduled_sessions",
        operation="LstsummarySession",
        service="ep",
        response_type="ep:lstsummarySessionResponse",
        record_element="session",
        columns=_columns(
            "sessionKey:int meetingUUID:str confName:str sessionType:int serviceType:str "
            "hostWebExID:str hostFirstName:str hostLastName:str otherHostWebExID:str "
            "timeZoneID:int timeZone:str status:str startTime:timestamp "
            "actualStartTime:timestamp openTime:int duration:int listStatus:str hostEmail:str "
            "passwordReq:bool hostJoined:bool participantsJoined:bool confID:int "
            "registration:bool isRecurring:bool altHost:bool hostType:str audioStatus:str "
            "isAudioOnly:bool isTCSingleRecurrence:bool isAllowJBH:bool isCETMeeting:bool "
            "isException:bool isNextUpcomingInstance:bool seriesMeetingKey:int recurrenceId:int "
            "isScheduledPMR:bool isPrivateMeeting:bool"
        ),
        natural_key=("conf_id",),
        start_column="start_time",
        time_scope=TimeScope("dateScope", "startDateStart", "startDateEnd", zone_inside=True),
        order=(("STARTTIME", "ASC"), ("CONFNAME", "ASC"), ("HOSTWEBEXID", "ASC")),
        sends_time_zone_id=True,
        request_extras=(("returnScheduledPMR", "true"),),
        matching_records_first=True,
        looks_ahead=True,
    ),
)


# ---------------------------------------------------------------------------------------------
# The REST source (GET https://webexapis.com/v1/...).  Field facts from Cisco's OpenAPI specs,
# summarised in ../shared/webex-rest-api.md; what the specs leave open is marked ``unconfirmed``.

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


_REST_LISTINGS: dict[str, RestListing] = {
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

DATASETS = tuple(replace(d, rest=_REST_LISTINGS.get(d.name)) for d in DATASETS)

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

#: Every table of the warehouse and catalog: the XML datasets (some also listed by REST), then
#: the REST-only ones.
ALL_DATASETS: tuple[Dataset, ...] = DATASETS + REST_ONLY_DATASETS

_BY_NAME = {d.name: d for d in ALL_DATASETS}


def by_name(name: str) -> Dataset:
    """The dataset called ``name``; ``KeyError`` lists the known names."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(_BY_NAME)}") from None
