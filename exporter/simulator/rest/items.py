"""The world's records as Webex REST items: the same sessions, attendees and recordings the XML
API serves (:mod:`..data.store`), seen through the REST endpoints.

- ``/meetingReports/usage``: one item per session row (meeting usage, training, event, support
  sessions), with the values shown now (revisions included);
- ``/meetingReports/attendees``: the session's attendee rows, twins and all;
- ``/meetings``: one meeting instance per Meeting Center usage row;
- ``/meetingParticipants``: the instance's attendee rows grouped by person (e-mail, else name),
  one device per row (a rejoin is a second device);
- ``/recordingReport/accessSummary`` / ``accessDetail``: the recordings, and one access row per
  view and per download, so the detail rows always add up to the summary's counters.

Items are logical (:mod:`.wire`): the wire quirks are added by the API, ground truth lands
these values as they are.  Availability: a report row needs its XML history visible *and* the
session ended ``report_delay_hours`` (+ jitter) ago; an instance is listed as ended
``meetings_delay_seconds`` after it ends; participants are live data (no history delay).
"""

from __future__ import annotations

from .meetings import MeetingItems
from .recordings import RecordingItems
from .reports import ReportItems

__all__ = ["RestWorld"]


class RestWorld(ReportItems, MeetingItems, RecordingItems):
    """REST items of one simulator's store (thread-safe; indexes cached per store version and day):
    the reports (:mod:`.reports`), meeting instances and participants (:mod:`.meetings`) and
    recordings (:mod:`.recordings`), over the cached lookups of :class:`.index.RestIndex`."""
