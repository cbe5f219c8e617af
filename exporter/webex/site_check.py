"""``check``: can the exporter work with this site?  Connectivity, credentials, privilege, the
site's time zone, and which history operations the site still serves.

Every check is one answer from the site itself (one request for the site's facts, then one
one-record body per dataset over the last day, batched), so ``check`` costs a few requests and
finishes in seconds, and nothing is written anywhere.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..config import Settings, SiteSettings
from ..errors import AuthError, ExporterError, FatalSiteError, OperationRetiredError
from ..model.datasets import by_name
from ..model.timezones import by_id

if TYPE_CHECKING:  # the client is imported where it is used (as the checks below import theirs)
    from .client import WebexClient

__all__ = ["CheckLine", "check_site", "run_checks", "worst"]

#: Severity of a line: what the exit code of ``check`` follows.
OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True, slots=True)
class CheckLine:
    """One thing checked for one site."""

    site: str
    check: str
    status: str  # ok | warn | fail
    detail: str


def worst(lines: list[CheckLine]) -> str:
    """The most serious status among ``lines``."""
    statuses = {line.status for line in lines}
    return FAIL if FAIL in statuses else WARN if WARN in statuses else OK


async def check_site(client: WebexClient, site: SiteSettings, now: datetime) -> list[CheckLine]:
    """Check one site (see the module docstring); never raises for what the site answers."""
    from ..model.timezones import zoneinfo_for
    from .paging import probe_window
    from .site_facts import inspect_site

    lines: list[CheckLine] = []

    def add(check: str, status: str, detail: str) -> None:
        lines.append(CheckLine(site.name, check, status, detail))

    try:
        facts = await inspect_site(client, webex_id=site.webex_id, now=now)
    except AuthError as exc:
        add("credentials", FAIL, str(exc))
        return lines
    except (FatalSiteError, ExporterError) as exc:
        add("connectivity", FAIL, str(exc))
        return lines
    add("connectivity", OK, f"{site.url} answers")
    add("credentials", OK, f"signed in as {site.webex_id!r} ({site.auth})")
    if facts.site_admin is True:
        add("privilege", OK, "site administrator: history of every host is listed")
    elif facts.site_admin is False:
        status = WARN if site.allow_non_admin else FAIL
        add("privilege", status, f"{site.webex_id!r} is not a site administrator: only its own sessions are listed"
            + ("" if site.allow_non_admin else " (runs refuse it unless allow_non_admin = true)"))
    else:
        add("privilege", WARN, "the site did not say (GetUser): " + "; ".join(facts.problems))
    if facts.time_zone_id is None:
        add("time zone", WARN, "the site did not say its zone; unlabeled times are read as "
            f"timeZoneID {site.unlabeled_time_zone_id if site.unlabeled_time_zone_id is not None else 20}")
    else:
        label = by_id(facts.time_zone_id).label
        configured = site.unlabeled_time_zone_id
        if configured is not None and configured != facts.time_zone_id:
            add("time zone", WARN, f"the site's zone is {facts.time_zone_id} ({label}) but unlabeled_time_zone_id = "
                f"{configured}: times without a timeZoneID would be shifted")
        else:
            add("time zone", OK, f"the site's zone is {facts.time_zone_id} ({label})")
    day = now - timedelta(days=1)
    from ..model.windows import Window

    window = Window(day.replace(minute=0, second=0, microsecond=0), now.replace(minute=0, second=0, microsecond=0))
    names = list(site.datasets)
    zone_ids = {True: site.time_zone_id, False: site.unlabeled_time_zone_id
                if site.unlabeled_time_zone_id is not None else (facts.time_zone_id or 20)}
    results = await asyncio.gather(*(
        probe_window(client, by_name(name), window, site=site, maximum_num=1,
                     zone=zoneinfo_for(zone_ids[by_name(name).sends_time_zone_id]))
        for name in names
    ), return_exceptions=True)
    for name, result in zip(names, results, strict=True):
        operation = by_name(name).operation
        if isinstance(result, OperationRetiredError):
            add(f"dataset {name}", FAIL, f"{operation} is retired on this site: export it from the REST APIs")
        elif isinstance(result, AuthError):
            add(f"dataset {name}", FAIL, str(result))
        elif isinstance(result, BaseException):
            add(f"dataset {name}", FAIL, f"{operation}: {type(result).__name__}: {result}")
        else:
            add(f"dataset {name}", OK, f"{operation} answers ({result.total} records in the last day)")
    return lines


async def run_checks(settings: Settings, names: tuple[str, ...], datasets: tuple[str, ...] | None = None) -> list[CheckLine]:
    """:func:`check_site` for each site called ``names`` (concurrently, one client each), limited
    to ``datasets`` when given; what ``webex-exporter check`` prints."""
    import dataclasses
    from datetime import datetime, timezone

    from .pool import ClientPool

    pool = ClientPool(0)
    now = datetime.now(timezone.utc)
    try:
        chosen = []
        for name in names:
            site = settings.site(name)
            if datasets:
                site = dataclasses.replace(site, datasets=tuple(d for d in site.datasets if d in datasets))
            chosen.append(site)
        clients = [await pool.client(site) for site in chosen]
        results = await asyncio.gather(*(check_site(client, site, now) for client, site in zip(clients, chosen)))
    finally:
        await pool.close()
    return [line for lines in results for line in lines]
