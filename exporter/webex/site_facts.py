"""What a site says about itself, asked once per run: its time zone, what its zone IDs mean
today, and whether the account we sign in as is a site administrator.

Operations without ``timeZoneID`` (meeting, event and support attendee history, Access Anywhere)
answer in the *site's* zone, which only the site knows (GetSite).  What a zone ID means today is
the site's business too (LstTimeZone's ``gmtOffset``): ID 20 is labelled "Greenwich (Casablanca)",
and Casablanca's own offset is not GMT's.  A non-admin account gets no error from history
operations, just its own sessions, so the privilege is checked up front (GetUser).

Pure functions build the bodies and read the answers; :func:`inspect_site` asks (one HTTP
request, three bodies) and never raises for an answer it cannot read: what it could not learn
stays ``None`` and is named in ``problems``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from lxml import etree

from ..errors import AuthError, ExporterError, FatalSiteError, RetryableError, SitePausedError, SiteUnreachableError
from ..model.timezones import TIME_ZONES, zoneinfo_for
from ..records.xmlsafe import local_name
from .client import WebexClient
from .protocol import Body, BodyResponse

__all__ = [
    "SiteFacts",
    "SiteUnreachableError",
    "get_site_body",
    "lst_time_zone_body",
    "get_user_body",
    "read_site_zone",
    "read_gmt_offsets",
    "read_site_admin",
    "inspect_site",
    "zone_disagreement",
    "fixed_offset_zone",
]

_SERVICE = "java:com.webex.service.binding"



@dataclass(frozen=True, slots=True)
class SiteFacts:
    """What one site told us (``None``: it did not say, see ``problems``)."""

    time_zone_id: int | None = None
    gmt_offsets: dict[int, int] = field(default_factory=dict)  # zone ID -> minutes east of GMT, now
    site_admin: bool | None = None
    problems: tuple[str, ...] = ()


def get_site_body() -> Body:
    """GetSite: the site's settings, its default time zone among them."""
    return Body(f"{_SERVICE}.site.GetSite", label="GetSite")


def lst_time_zone_body(zone_ids: list[int], at: datetime) -> Body:
    """LstTimeZone for ``zone_ids`` (none: all 62) at instant ``at`` (sent as GMT wall time)."""
    when = at.astimezone(timezone.utc).strftime("%m/%d/%Y %H:%M:%S")
    children = tuple(("timeZoneID", str(i)) for i in sorted(set(zone_ids))) + (("date", when),)
    return Body(f"{_SERVICE}.site.LstTimeZone", children=children, label="LstTimeZone")


def get_user_body(webex_id: str) -> Body:
    """GetUser for the account we sign in as (its privileges)."""
    return Body(f"{_SERVICE}.user.GetUser", children=(("webExId", webex_id),), label="GetUser")


def _local(element: etree._Element) -> str:
    return local_name(element.tag).lower()


def _first(content: etree._Element | None, *path: str) -> etree._Element | None:
    """The first descendant matching ``path`` (local names, case-insensitive), searched anywhere."""
    if content is None:
        return None
    wanted = [p.lower() for p in path]
    for element in content.iter():
        if _local(element) != wanted[0]:
            continue
        node: etree._Element | None = element
        for name in wanted[1:]:
            node = next((kid for kid in node if _local(kid) == name), None) if node is not None else None
        if node is not None:
            return node
    return None


def read_site_zone(content: etree._Element | None) -> int | None:
    """The site's ``timeZoneID`` from a GetSite answer (its metaData first, else anywhere)."""
    node = _first(content, "metaData", "timeZoneID")
    if node is None:
        node = _first(content, "timeZoneID")
    try:
        value = int((node.text or "").strip()) if node is not None else None
    except ValueError:
        return None
    return value if value is not None and 0 <= value < len(TIME_ZONES) else None


def read_gmt_offsets(content: etree._Element | None) -> dict[int, int]:
    """``{timeZoneID: gmtOffset minutes}`` from a LstTimeZone answer (unreadable entries left out)."""
    out: dict[int, int] = {}
    if content is None:
        return out
    for zone in (e for e in content.iter() if _local(e) == "timezone"):
        values = {_local(kid): (kid.text or "").strip() for kid in zone}
        try:
            out[int(values["timezoneid"])] = int(values["gmtoffset"])
        except (KeyError, ValueError):
            continue
    return out


def read_site_admin(content: etree._Element | None) -> bool | None:
    """Whether a GetUser answer grants ``privilege/siteAdmin`` (None: the answer does not say)."""
    node = _first(content, "privilege", "siteAdmin")
    if node is None:
        return None
    return (node.text or "").strip().lower() == "true"


def zone_disagreement(zone_id: int, gmt_offset: int, at: datetime, overrides: tuple[tuple[int, str], ...] = ()) -> str | None:
    """Why our reading of ``zone_id`` differs from the site's offset now (None: it agrees)."""
    ours = zoneinfo_for(zone_id, overrides)
    offset = at.astimezone(ours).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    if minutes == gmt_offset:
        return None
    return (f"timeZoneID {zone_id}: we read it as {ours.key} (GMT{_hhmm(minutes)} now) but the site says "
            f"GMT{_hhmm(gmt_offset)}")


def fixed_offset_zone(gmt_offset: int) -> ZoneInfo | None:
    """A tz database zone for a whole-hour fixed offset (``Etc/GMT-8`` is GMT+8), else None."""
    if gmt_offset % 60 or abs(gmt_offset) > 14 * 60:
        return None
    hours = -gmt_offset // 60
    return ZoneInfo("Etc/GMT" if hours == 0 else f"Etc/GMT{hours:+d}")


def _hhmm(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


async def inspect_site(client: WebexClient, *, webex_id: str, now: datetime) -> SiteFacts:
    """Ask the site (one request: GetSite, GetUser, LstTimeZone of every zone).  Refused
    credentials raise :class:`AuthError` as anywhere else; any other failure of one body is a
    problem noted, and the facts it would have given stay unknown."""
    bodies = [get_site_body(), get_user_body(webex_id), lst_time_zone_body([], now)]
    problems: list[str] = []
    answers = await _each(client, bodies, problems)
    site_zone = read_site_zone(_content(answers[0]))
    if answers[0] is not None and site_zone is None:
        problems.append("GetSite: the answer names no timeZoneID")
    admin = read_site_admin(_content(answers[1]))
    if answers[1] is not None and admin is None:
        problems.append("GetUser: the answer has no privilege/siteAdmin")
    offsets = read_gmt_offsets(_content(answers[2]))
    if answers[2] is not None and not offsets:
        problems.append("LstTimeZone: the answer lists no gmtOffset")
    return SiteFacts(site_zone, offsets, admin, tuple(problems))


async def _each(client: WebexClient, bodies: list[Body], problems: list[str]) -> list[BodyResponse | None]:
    """Each body's answer (one request when they all succeed); a failed body is None and a problem.

    The site not answering at all (its retries used up on resets, refused connections, timeouts,
    5xx) is no problem to note: it stops the site for this run at once, instead of every window
    of every dataset spending its own retries on a host that is not there."""
    try:
        return list(await client.call(bodies))
    except (AuthError, FatalSiteError, SitePausedError):
        raise
    except RetryableError as exc:
        raise SiteUnreachableError(f"the site does not answer ({exc}); check sites[].url and the network, or "
                                   "run `webex-exporter check`") from exc
    except ExporterError as exc:
        if len(bodies) == 1:
            problems.append(f"{bodies[0].label}: {exc}")
            return [None]
    out: list[BodyResponse | None] = []
    for body in bodies:  # one failed: ask each alone, so one refusal does not hide the others
        try:
            (answer,) = await client.call([body])
            out.append(answer)
        except (AuthError, FatalSiteError, SitePausedError):
            raise
        except ExporterError as exc:
            problems.append(f"{body.label}: {exc}")
            out.append(None)
    return out


def _content(answer: BodyResponse | None) -> etree._Element | None:
    return None if answer is None else answer.content
