"""Answers to each operation: list operations from the store, AuthenticateUser, GetSite, GetUser,
GetAPIVersion, LstTimeZone.  Every answer is a :class:`BodyXml`; refusals become FAILURE bodies.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from lxml import etree

from ...model import webex_codes as codes
from ...model.dataset_spec import Dataset
from ...model.datasets import DATASETS
from ...model.timezones import TIME_ZONES, zoneinfo_for
from ..clock import SimClock
from ..config import SimulatorConfig
from ..data.people import Host
from ..data.records import Record
from ..data.selection import Filter
from ..data.store import Store
from ..site_config import SiteConfig
from .auth import Authenticator, Identity
from .query import ListRequest, parse_list
from .render import BodyXml, RecordWriter, escape, failure, list_content, success
from .request import Refusal, child, children, text_of
from .timefmt import BadWireTime, WireZone, parse_wire_time

__all__ = ["Operations", "Listing", "NO_RECORDS_REASON", "API_VERSION"]

NO_RECORDS_REASON = "Sorry, no record found"
API_VERSION = ("WebEx XML API V11.0.0", "SP26", "40.12.0")
#: Rows of a listing (Operations has a method called ``list``, which hides the builtin in its body).
_Rows = list[Record]


@dataclass(slots=True)
class Listing:
    """What a list answer served: enough to mutate the store "between pages" afterwards."""

    site: SiteConfig
    dataset: str
    rows: list[Record]
    page: list[Record]
    request: ListRequest


@dataclass(slots=True)
class Answer:
    """One bodyContent's answer and, for list operations, what was listed."""

    xml: BodyXml
    records: int = 0
    listing: Listing | None = None


def _lower_first(name: str) -> str:
    return name[0].lower() + name[1:]


class Operations:
    """Dispatches bodyContents by operation name (case-insensitive)."""

    def __init__(self, config: SimulatorConfig, store: Store, auth: Authenticator, clock: SimClock) -> None:
        self.config = config
        self.store = store
        self.auth = auth
        self.clock = clock
        self.lists: dict[str, tuple[Dataset, bool]] = {}
        for ds in DATASETS:
            self.lists[ds.operation.lower()] = (ds, False)
            if ds.preliminary_operation:
                self.lists[ds.preliminary_operation.lower()] = (ds, True)
        self.groups = {name: ds.api_group for name, (ds, _) in self.lists.items()}
        self.writers = {ds.name: RecordWriter(ds, ds.service) for ds in DATASETS}
        self.zones: dict[int, WireZone] = {}
        self.simple = {"authenticateuser", "getsite", "getuser", "getapiversion", "lsttimezone"}
        self._tie_requests = itertools.count()  # seeds each request's draw of tied rows

    def known(self, operation: str) -> bool:
        """True for operations the simulator answers."""
        low = operation.lower()
        return low in self.lists or low in self.simple

    # ------------------------------------------------------------------ lists

    def list(self, operation: str, body: etree._Element, identity: Identity, *, drift: float,
             capital_uuid: float) -> Answer:
        """Answer a list operation: one page of the listing, or 000015 when it is empty."""
        ds, preliminary = self.lists[operation.lower()]
        site = identity.site
        request = parse_list(body, ds, preliminary=preliminary, site=site, zones=self.zones)
        now = self.clock.now_ts()
        selection = request.selection
        if not site.is_admin(identity.webex_id):
            # An ordinary host silently sees only their own sessions (and those sessions' attendees).
            selection = dataclasses.replace(selection, requires=selection.requires + (_own(ds, identity.webex_id),))
        rows = self.store.select(site, selection, now)
        total = len(rows)
        prefix = ds.service
        if total == 0 or request.start_from > total:
            return Answer(failure(codes.NO_RECORDS, NO_RECORDS_REASON, (prefix,)))
        first = request.start_from - 1
        if self.config.unstable_tie_order:
            page = self._unsettled_page(ds.name, rows, first, request.maximum_num, request.tie_columns, now)
        else:
            page = rows[first : first + request.maximum_num]
        lay = self.store.layouts[ds.name]
        writer = self.writers[ds.name]
        key0, start = lay.key[0], lay.start
        unpadded_cut = site.unpadded_date_fraction * 1000
        capital_cut = capital_uuid * 1000
        always_capital = ds.name == "scheduled_sessions"  # the seed response spells it MeetingUUID
        records = []
        for rec in page:
            h = (rec[key0] * 2_654_435_761 + rec[start]) % 1000
            records.append(writer.write(
                self.store.present(ds.name, rec, now, preliminary=preliminary, pmr_column=request.pmr_column),
                request.zone,
                unpadded=h < unpadded_cut,
                extra=self.store.extras(ds.name, rec, drift),
                capital_uuid=always_capital or (rec[key0] * 40_503 + rec[start] * 7) % 1000 < capital_cut,
            ))
        content = list_content(prefix, records, total=total, start_from=request.start_from,
                               matching_first=ds.matching_records_first)
        op = ds.preliminary_operation if preliminary else None
        xsi_type = f"{prefix}:{_lower_first(op)}Response" if op else ds.response_type
        return Answer(success(xsi_type, content, (prefix,) + (("meet",) if prefix == "ep" else ())), len(page),
                      Listing(site, ds.name, rows, page, request))

    def _unsettled_page(self, dataset: str, rows: _Rows, first: int, maximum: int,
                        columns: tuple[str, ...], now: int) -> _Rows:
        """A page whose tie groups cut by its first or last index are filled by a fresh random draw
        from the whole group (Oracle ROWNUM paging): adjacent pages may repeat one tied row and skip
        another.  Rows that differ in an order column never change places; groups inside the page
        stay as stored.  Only the (at most two) cut groups are looked at, so big windows stay cheap."""
        end = min(first + maximum, len(rows))
        getters = [self.store.value_getter(dataset, c, now) for c in columns]

        def tie(rec: Record) -> tuple[Any, ...]:
            return tuple(g(rec) for g in getters)

        rng = random.Random(f"{self.config.seed}|ties|{next(self._tie_requests)}")
        page = rows[first:end]
        low, high = _group(rows, first, tie)
        if low < first or high > end:
            k = min(high, end) - first
            page[:k] = rng.sample(rows[low:high], k)
        if high < end:
            low, high = _group(rows, end - 1, tie)
            if high > end:
                k = end - low
                page[len(page) - k :] = rng.sample(rows[low:high], k)
        return page

    # ------------------------------------------------------------------ the rest

    def authenticate_user(self, body: etree._Element, security: dict[str, str], identity: Identity | None,
                          refusal: Refusal | None) -> Answer:
        """AuthenticateUser: a body accessToken, or the security context's credentials -> ticket.

        ``refusal`` is why the security context did not authenticate (it applies unless the body
        brings an access token)."""
        token = text_of(child(body, "accessToken"))
        if token:
            identity = self.auth.token_identity(self.auth.site(security), token)
        elif identity is None:
            raise refusal or Refusal(codes.USER_NOT_FOUND, "Corresponding User not found")
        ticket = self.auth.issue(identity)
        inner = (f"<use:sessionTicket>{ticket.value}</use:sessionTicket>"
                 f"<use:createTime>{int(ticket.created * 1000)}</use:createTime>"
                 f"<use:timeToLive>{self.config.ticket_ttl_seconds}</use:timeToLive>")
        return Answer(success("use:authenticateUserResponse", inner, ("use",)))

    def get_site(self, identity: Identity) -> Answer:
        """GetSite: the site's name, default zone and ``SupportXMLAPIReturnScheduledPMR`` switch."""
        site = identity.site
        switch = "true" if site.return_scheduled_pmr_switch else "false"
        zone = TIME_ZONES[site.default_time_zone_id]
        inner = (f"<site:siteInstance><site:metaData><site:siteName>{escape(site.name)}</site:siteName>"
                 f"<site:timeZoneID>{zone.id}</site:timeZoneID><site:timeZone>{escape(zone.label)}</site:timeZone>"
                 f"</site:metaData><site:siteCommonOptions><site:SupportXMLAPIReturnScheduledPMR>{switch}"
                 f"</site:SupportXMLAPIReturnScheduledPMR></site:siteCommonOptions></site:siteInstance>")
        return Answer(success("site:getSiteResponse", inner, ("site",)))

    def get_user(self, body: etree._Element, identity: Identity) -> Answer:
        """GetUser: a site user (``webExId``, default the caller) and whether they are a site admin."""
        site = identity.site
        wanted = text_of(child(body, "webExId")) or identity.webex_id
        host = self._host(site, wanted)
        if host is None:
            raise Refusal(codes.USER_NOT_FOUND, "Corresponding User not found")
        admin = any(u.lower() == host.webex_id.lower() for u, _ in site.users) and site.is_admin(host.webex_id)
        inner = (f"<use:firstName>{escape(host.first)}</use:firstName><use:lastName>{escape(host.last)}</use:lastName>"
                 f"<use:webExId>{escape(host.webex_id)}</use:webExId><use:email>{escape(host.email)}</use:email>"
                 f"<use:privilege><use:host>true</use:host><use:siteAdmin>{'true' if admin else 'false'}"
                 f"</use:siteAdmin><use:roSiteAdmin>false</use:roSiteAdmin></use:privilege>"
                 f"<use:active>ACTIVATED</use:active>")
        return Answer(success("use:getUserResponse", inner, ("use",)))

    def _host(self, site: SiteConfig, webex_id: str) -> Host | None:
        """The site user (a login user or a generated host) called ``webex_id`` (any case)."""
        low = webex_id.lower()
        return next((h for h in self.store.world.hosts.get(site.name, ()) if h.webex_id.lower() == low), None)

    def get_api_version(self) -> Answer:
        """GetAPIVersion (anonymous)."""
        version, release, ver = API_VERSION
        inner = f"<ep:apiVersion>{version}</ep:apiVersion><ep:release>{release}</ep:release><ep:apiVer>{ver}</ep:apiVer>"
        return Answer(success("ep:getAPIVersionResponse", inner, ("ep", "meet")))

    def lst_time_zone(self, body: etree._Element) -> Answer:
        """LstTimeZone: offsets in minutes at ``date`` (GMT, default now) for the IDs asked (default all 62)."""
        ids = []
        for element in children(body).get("timezoneid", []):
            try:
                ids.append(int(text_of(element) or ""))
            except ValueError:
                raise Refusal(codes.INVALID_ARGUMENT, f"timeZoneID must be an integer, got {element.text!r}") from None
        if any(not 0 <= i < len(TIME_ZONES) for i in ids):
            raise Refusal(codes.INVALID_ARGUMENT, "timeZoneID must be 0-61")
        when = self.clock.now_ts()
        date_text = text_of(child(body, "date"))
        if date_text:
            try:
                when = parse_wire_time(date_text, zoneinfo_for(20))
            except BadWireTime as exc:
                raise Refusal(codes.INVALID_ARGUMENT, f"date: {exc}") from None
        instant = datetime.fromtimestamp(when, timezone.utc)
        parts = []
        for tz in (TIME_ZONES[i] for i in ids) if ids else TIME_ZONES:
            local = instant.astimezone(zoneinfo_for(tz.id))
            offset = local.utcoffset()
            dst = local.dst()
            parts.append(
                f"<site:timeZone><site:timeZoneID>{tz.id}</site:timeZoneID>"
                f"<site:gmtOffset>{int(offset.total_seconds() // 60) if offset else 0}</site:gmtOffset>"
                f"<site:description>{escape(tz.label)}</site:description>"
                f"<site:shortName>{escape(local.tzname() or '')}</site:shortName>"
                f"<site:hideTimeZoneName>false</site:hideTimeZoneName>"
                f"<site:fallInDST>{'true' if dst else 'false'}</site:fallInDST></site:timeZone>"
            )
        return Answer(success("site:lstTimeZoneResponse", "".join(parts), ("site",)))


def _own(ds: Dataset, webex_id: str) -> Filter:
    """The filter that keeps an ordinary host's own rows of ``ds``."""
    who = webex_id.lower()
    names = ds.column_by_name
    if "host_webex_id" in names:
        return Filter("host_webex_id", "ieq", who)
    if "user_name" in names:  # Access Anywhere: the user's own computers
        return Filter("user_name", "ieq", who)
    return Filter(ds.natural_key[0], "owner", who)  # attendees by conf_id, recordings by record_id


def _group(rows: list[Record], i: int, tie: Callable[[Record], Any]) -> tuple[int, int]:
    """``[low, high)``: the run of rows around index ``i`` tied with it in the order."""
    value = tie(rows[i])
    low, high = i, i + 1
    while low > 0 and tie(rows[low - 1]) == value:
        low -= 1
    while high < len(rows) and tie(rows[high]) == value:
        high += 1
    return low, high
