"""The XML API's datasets: every exported Webex XML list operation, declared once as data
(columns in the compact ``"element:type"`` notation of :func:`_columns`)."""

from __future__ import annotations

from typing import TypeGuard, get_args

from .dataset_spec import Column, ColumnType, Dataset, TimeScope
from .naming import column_name

__all__ = ["XML_DATASETS"]

def _columns(spec: str) -> tuple[Column, ...]:
    """Parse ``"confID:int trackingCode/trackingCode1:str source/count:int=source_count"``."""
    columns = []
    for item in spec.split():
        path, _, rest = item.partition(":")
        type_, _, explicit = rest.partition("=")
        parent, _, element = path.rpartition("/")
        if not _is_column_type(type_):
            raise ValueError(f"{item}: {type_!r} is not a column type ({', '.join(get_args(ColumnType))})")
        columns.append(Column(explicit or column_name(element), type_, element, parent or None))
    return tuple(columns)


def _is_column_type(name: str) -> TypeGuard[ColumnType]:
    return name in get_args(ColumnType)


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


#: The XML API's datasets as its schemas declare them (their REST listings are attached in
#: :mod:`exporter.model.datasets`).
XML_DATASETS: tuple[Dataset, ...] = (
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
