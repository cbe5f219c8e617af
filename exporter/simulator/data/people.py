"""Who takes part: the hosts of a site, the pool of attendee profiles, and where attendee fields sit."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, TypeVar

from ..site_config import SiteConfig
from . import pools
from .records import Layout

__all__ = ["Host", "AttendeeSlots", "ATTENDEE_DATASETS", "site_hosts", "attendee_profiles", "whole_minutes",
           "RowTemplates"]

_PROFILES = 256
ATTENDEE_DATASETS = ("meeting_attendees", "training_attendees", "event_attendees", "support_attendees")
#: Where an attendee sits (company, address, phone, device): attendee column -> value.
_Profile = dict[str, str | None]
_T = TypeVar("_T")
#: Per attendee dataset, row templates (online, dial-in): stored-record values as lists, copied per row.
RowTemplates = tuple[list[list[Any]], ...]


@dataclass(frozen=True, slots=True)
class Host:
    """A site user who hosts sessions."""

    webex_id: str
    first: str
    last: str
    email: str
    user_id: int
    pmr_key: int

    @property
    def name(self) -> str:
        """Display name."""
        return f"{self.first} {self.last}"


class AttendeeSlots:
    """Indexes of the per-row fields of an attendee dataset (None where it has no such column)."""

    __slots__ = ("key", "conf_name", "name", "email", "join", "leave", "duration", "ptype", "conf_id", "uuid",
                 "voip", "registered", "invited", "lead_source", "lead_score", "qa", "visible", "preliminary",
                 "flags", "lead")

    def __init__(self, lay: Layout) -> None:
        ix, need = lay.index.get, lay.index.__getitem__  # need: columns every attendee dataset has
        meeting = "meeting_key" in lay.index
        self.key: int = need("meeting_key") if meeting else need("session_key")
        self.conf_name: int | None = ix("conf_name")
        self.name: int = need("name") if meeting else need("attendee_name")
        self.email: int = need("email") if meeting else need("attendee_email")
        self.join: int = need("join_time") if meeting else need("start_time")
        self.leave: int = need("leave_time") if meeting else need("end_time")
        self.duration: int = need("duration")
        self.ptype: int = need("participant_type")
        self.conf_id: int = need("conf_id")
        self.uuid: int = need("meeting_uuid")
        self.voip: int | None = ix("voip_duration")
        self.registered: int | None = ix("registered")
        self.invited: int | None = ix("invited")
        self.lead_source: int | None = ix("lead_source_id")
        self.lead_score: int | None = ix("lead_score")
        self.qa: int | None = ix("reg_q_and_a")
        #: (lead source, lead score, registration Q&A): the event attendee columns, else None.
        self.lead: tuple[int, int, int] | None = None
        if self.lead_source is not None and self.lead_score is not None and self.qa is not None:
            self.lead = (self.lead_source, self.lead_score, self.qa)
        self.visible, self.preliminary, self.flags = lay.visible, lay.preliminary, lay.flags


def whole_minutes(seconds: int) -> int:
    """Webex durations are whole minutes, rounded up."""
    return max(1, -(-seconds // 60))


def site_hosts(site_index: int, site: SiteConfig) -> list[Host]:
    """The site's hosts: its login users first (so they host sessions too), then generated ones."""
    hosts = []
    logins = [u for u, _ in site.users]
    for i in range(max(site.hosts, len(logins))):
        first, last, a_first, a_last = pools.PEOPLE[(i * 7 + site_index) % len(pools.PEOPLE)]
        webex_id = logins[i] if i < len(logins) else f"{a_first}.{a_last}{i}"
        email = f"{webex_id.lower()}@{site.name.lower()}.example.com"
        hosts.append(Host(webex_id, first, last, email, 10_000_000 + site_index * 100_000 + i,
                          600_000_000 + site_index * 10_000 + i))
    return hosts


def attendee_profiles(seed: int) -> tuple[list[_Profile], list[_Profile]]:
    """Where attendees sit: a fixed pool of online and dial-in profiles (shared strings)."""
    rng = random.Random(f"{seed}|profiles")
    r = rng.random

    def pick(seq: tuple[_T, ...]) -> _T:
        return seq[int(r() * len(seq))]

    online: list[_Profile] = []
    dial: list[_Profile] = []
    for k in range(_PROFILES + _PROFILES // 4):
        city, state, country, zip_ = pick(pools.CITIES)
        dialled = k >= _PROFILES
        phone = f"+1 408 555 {int(r() * 10_000):04d}" if dialled or r() < 0.3 else ""
        profile: _Profile = {
            "company": pick(pools.COMPANIES), "title": pick(pools.TITLES),
            "address1": f"{1 + int(r() * 999)} Ørsted Allé" if r() < 0.5 else "",
            "address2": "" if r() < 0.7 else "Suite 5 & 6",
            "city": city, "state": state, "country": country, "zip": zip_, "zip_code": zip_,
            "phone": phone, "phone_number": phone,
            "ip_address": None if dialled else f"10.{int(r() * 256)}.{int(r() * 256)}.{1 + int(r() * 254)}",
            "client_agent": None if dialled else pick(pools.CLIENT_AGENTS),
        }
        (dial if dialled else online).append(profile)
    return online, dial
