"""Settings of the simulated Webex REST APIs: the OAuth integration and the realism knobs.

:class:`RestConfig` is the ``[rest]`` table of a profile (one per simulator); :class:`SiteRest`
is a site's ``[sites.rest]`` table (its ``siteUrl``, initial refresh token and granted scopes).
Both are frozen and validated on construction; problems are reported as one ConfigError.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from ...errors import ConfigError
from ..tables import build_table

__all__ = ["RestConfig", "SiteRest", "DEFAULT_SCOPES", "NEXT_LINK_PARAMS", "DEFAULT_CLIENT_ID",
           "DEFAULT_CLIENT_SECRET"]

DEFAULT_CLIENT_ID = "sim-client"
DEFAULT_CLIENT_SECRET = "sim-client-secret"
#: What an integration authorized by a full + site admin holds: everything the exporter needs.
DEFAULT_SCOPES = (
    "meeting:admin_config_read",  # /meetingReports/usage, /meetingReports/attendees
    "meeting:admin_schedule_read",  # /meetings
    "meeting:admin_participants_read",  # /meetingParticipants
    "meeting:admin_recordings_read",  # /recordingReport/*
    "meeting:admin_preferences_read",  # /meetingPreferences/sites
    "spark:kms",
)
#: Request parameters a next link may drop (``next_link_drops``).
NEXT_LINK_PARAMS = ("siteUrl", "from", "to", "meetingId", "recordingId", "hostEmail", "serviceType", "meetingType",
                    "state", "timezone")


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True, slots=True)
class SiteRest:
    """A site as the REST APIs see it.  Empty ``site_url`` / ``refresh_token`` mean the defaults
    ``<name>.webex.com`` / ``sim-refresh-<name>`` (:meth:`url_for`, :meth:`token_for`)."""

    site_url: str = ""
    refresh_token: str = ""
    scopes: tuple[str, ...] = DEFAULT_SCOPES

    def __post_init__(self) -> None:
        object.__setattr__(self, "scopes", _tuple(self.scopes))
        problems = []
        if not isinstance(self.site_url, str) or "/" in self.site_url:
            problems.append(f"site_url: a host name like 'acme.webex.com', got {self.site_url!r}")
        if not isinstance(self.refresh_token, str):
            problems.append(f"refresh_token: must be a text, got {self.refresh_token!r}")
        if not isinstance(self.scopes, tuple) or not all(isinstance(s, str) and s and " " not in s
                                                          for s in self.scopes):
            problems.append(f"scopes: must be a list of scope names, got {self.scopes!r}")
        if problems:
            raise ConfigError(problems)

    def url_for(self, site_name: str) -> str:
        """The site's ``siteUrl`` (lower case)."""
        return (self.site_url or f"{site_name}.webex.com").lower()

    def token_for(self, site_name: str) -> str:
        """The site's initial refresh token."""
        return self.refresh_token or f"sim-refresh-{site_name}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, key: str = "rest") -> SiteRest:
        """Build from a ``[sites.rest]`` table; unknown keys are errors."""
        return build_table(cls, data, key)

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-friendly dict."""
        return {"site_url": self.site_url, "refresh_token": self.refresh_token, "scopes": list(self.scopes)}


@dataclass(frozen=True, slots=True)
class RestConfig:
    """The REST side of the simulator (``[rest]``).

    OAuth: the integration ``client_id`` / ``client_secret``; tokens live ``access_token_seconds``
    and ``refresh_token_seconds`` on the simulator clock; each refresh hands out a new refresh
    token and, with ``rotate_refresh_tokens``, the old one stops working (``invalid_grant``).

    Availability: a session's usage and attendee reports (and a recording's reports) appear
    ``report_delay_hours`` after it ended plus 0..``report_delay_jitter_hours`` (per session,
    from its content), and never before its XML history does.  An ended meeting is listed by
    ``/meetings`` (and its participants count as ended) ``meetings_delay_seconds`` after it ends.
    Participants of a meeting that ended less than ``left_placeholder_minutes`` ago carry the
    ``1970-01-01T00:00:00.000Z`` leave time.

    Paging: ``/meetings`` lists at most ``meetings_list_cap`` instances per query (more are
    silently cut); next links leave out the parameters named in ``next_link_drops`` and, with
    ``next_link_max_null``, say ``max=null``.

    Wire quirks (per row, from its content, so exact twins are written alike):
    ``meeting_number_int_fraction`` of attendee rows write ``meetingNumber`` as a JSON number,
    ``participant_type_upper_fraction`` write ``participantType`` upper case (``ATTENDEE``).
    """

    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    access_token_seconds: int = 1_209_599
    refresh_token_seconds: int = 7_775_999
    rotate_refresh_tokens: bool = True
    report_delay_hours: float = 0.0
    report_delay_jitter_hours: float = 0.0
    meetings_delay_seconds: int = 0
    left_placeholder_minutes: int = 0
    meetings_list_cap: int = 10_000
    next_link_drops: tuple[str, ...] = ()
    next_link_max_null: bool = False
    meeting_number_int_fraction: float = 0.5
    participant_type_upper_fraction: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "next_link_drops", _tuple(self.next_link_drops))
        problems = []
        for name in ("client_id", "client_secret"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                problems.append(f"{name}: must be a non-empty text, got {value!r}")
        for name, low, high in (("access_token_seconds", 1, 10 * 365 * 86_400),
                                ("refresh_token_seconds", 1, 10 * 365 * 86_400),
                                ("meetings_delay_seconds", 0, 7 * 86_400), ("left_placeholder_minutes", 0, 7 * 1440),
                                ("meetings_list_cap", 1, 10_000_000)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                problems.append(f"{name}: must be an integer {low}..{high}, got {value!r}")
        for name in ("report_delay_hours", "report_delay_jitter_hours"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 30 * 24:
                problems.append(f"{name}: must be 0..720 hours, got {value!r}")
        for name in ("meeting_number_int_fraction", "participant_type_upper_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                problems.append(f"{name}: must be 0..1, got {value!r}")
        for name in ("rotate_refresh_tokens", "next_link_max_null"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name}: must be true or false, got {getattr(self, name)!r}")
        drops = self.next_link_drops
        if not isinstance(drops, tuple) or not all(isinstance(d, str) for d in drops):
            problems.append(f"next_link_drops: must be a list of parameter names, got {drops!r}")
        else:
            for name in drops:
                if name not in NEXT_LINK_PARAMS:
                    problems.append(f"next_link_drops: unknown parameter {name!r} "
                                    f"(known: {', '.join(NEXT_LINK_PARAMS)})")
        if problems:
            raise ConfigError(problems)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, key: str = "rest") -> RestConfig:
        """Build from a ``[rest]`` table; unknown keys are errors."""
        return build_table(cls, data, key)

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-friendly dict that ``from_dict`` reads back."""
        out = dataclasses.asdict(self)
        out["next_link_drops"] = list(self.next_link_drops)
        return out
