"""Settling a site before its datasets run: what it says about itself (zone, admin privilege,
acted on or warned about), the zones its times are read in, and which datasets come from REST."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ..config import SiteSettings
from ..errors import PrivilegeError
from ..model.dataset_spec import Dataset
from ..model.timezones import DEFAULT_REQUEST_TIME_ZONE_ID, zoneinfo_for
from ..obs.logs import event
from ..webex.protocol import scope_zone
from ..webex.site_facts import fixed_offset_zone, inspect_site, zone_disagreement
from .context import RunContext

if TYPE_CHECKING:
    from ..store.state import DatasetState
    from ..webex.client import WebexClient

__all__ = ["settle_site", "switched_at", "uses_rest", "zone_for"]


#: How long a pool trusts what a site said about itself (zone, privilege) before asking again.
SITE_FACTS_TTL_SECONDS = 3600.0


def uses_rest(site: SiteSettings, dataset: Dataset, state: DatasetState) -> bool:
    """Whether ``dataset`` of ``site`` is listed through REST this run: always on a REST site
    and for REST-only datasets; on an ``auto`` site once its XML operation answered retired."""
    if site.source == "rest" or not dataset.xml:
        return True
    return site.source == "auto" and dataset.rest is not None and state.switched_to_rest


def zone_for(ctx: RunContext, site: SiteSettings, dataset: Dataset) -> ZoneInfo:
    """The zone ``dataset``'s scope and times are read in on ``site``: as settled for this run by
    :func:`settle_site`, else as the config says."""
    settled = ctx.zones.get(site.name)
    if settled is not None:
        return settled[0] if dataset.sends_time_zone_id else settled[1]
    return scope_zone(dataset, time_zone_id=site.time_zone_id, unlabeled_time_zone_id=site.unlabeled_time_zone_id,
                      overrides=ctx.settings.timezone_overrides)


async def settle_site(ctx: RunContext, client: WebexClient, site: SiteSettings) -> SiteSettings:
    """Ask the site about itself (once per run, cached by the pool) and act on it: refuse a
    non-admin account unless ``allow_non_admin``; read unlabeled times in the site's zone when
    the config names none; warn loudly where the config and the site disagree; read a zone ID
    whose meaning the site states differently from our table by the site's offset (unless
    ``timezones.overrides`` says otherwise).  Returns the site's settings with its unlabeled zone
    settled."""
    loop = asyncio.get_running_loop()
    cached = ctx.clients.site_facts.get(site.name)
    if cached is not None and loop.time() - cached[0] < SITE_FACTS_TTL_SECONDS:
        facts = cached[1]
    else:
        facts = await inspect_site(client, webex_id=site.webex_id, now=ctx.now)
        ctx.clients.site_facts[site.name] = (loop.time(), facts)
    notes = ctx.report.site_notes.setdefault(site.name, [])

    def note(text: str, level: int = logging.WARNING) -> None:
        notes.append(text)
        event(text, level=level, site=site.name)

    for problem in facts.problems:
        note(f"could not learn from the site: {problem}")
    if facts.site_admin is False and not site.allow_non_admin:
        raise PrivilegeError(
            f"site {site.name}: {site.webex_id!r} is not a site administrator (GetUser privilege/siteAdmin is "
            "false), so Webex would list only that user's own sessions, silently. Sign in as a site admin, or set "
            "allow_non_admin = true for this site to export only that user's sessions."
        )
    if facts.site_admin is False:
        note(f"{site.webex_id!r} is not a site administrator: exporting only that user's own sessions "
             "(allow_non_admin = true)")
    elif facts.site_admin is None:
        note(f"could not verify that {site.webex_id!r} is a site administrator; a non-admin account "
             "exports only its own sessions")
    unlabeled = site.unlabeled_time_zone_id
    if unlabeled is None:
        if facts.time_zone_id is None:
            unlabeled = DEFAULT_REQUEST_TIME_ZONE_ID  # GMT
            note(f"the site did not say its time zone; times without a timeZoneID are read as timeZoneID "
                 f"{unlabeled} (GMT). Set unlabeled_time_zone_id for this site if that is wrong.")
        else:
            unlabeled = facts.time_zone_id
            note(f"times without a timeZoneID are read in the site's zone, timeZoneID {unlabeled} (GetSite)", logging.INFO)
    elif facts.time_zone_id is not None and facts.time_zone_id != unlabeled:
        note(f"unlabeled_time_zone_id = {unlabeled} in the config, but the site says its zone is timeZoneID "
             f"{facts.time_zone_id}: times without a timeZoneID may be shifted; using the config")
    overrides = ctx.settings.timezone_overrides
    zones = []
    for zone_id in (site.time_zone_id, unlabeled):
        zone = zoneinfo_for(zone_id, overrides)
        offset = facts.gmt_offsets.get(zone_id)
        disagreement = zone_disagreement(zone_id, offset, ctx.now, overrides) if offset is not None else None
        if disagreement is not None and offset is not None:
            fixed = None if zone_id in dict(overrides) else fixed_offset_zone(offset)
            if fixed is not None:
                zone = fixed
                disagreement += f"; reading it as the site's offset ({fixed.key}) this run"
            note(disagreement + ". Set [timezones] overrides to choose.")
        zones.append(zone)
    ctx.zones[site.name] = (zones[0], zones[1])
    return dataclasses.replace(site, unlabeled_time_zone_id=unlabeled)


def switched_at(state: DatasetState) -> datetime | None:
    """When an ``auto`` site switched this dataset to REST (the XML cursor then): REST never
    lists before it, so no meeting lands once from each source."""
    return state.rest_switched_at
