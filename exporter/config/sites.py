"""``[[sites]]`` and ``[sites.rest]``: each site's address, sign-in, datasets and secrets.

Secrets never come from the config file: a site names an environment variable (``password_env``,
``access_token_env``, ``client_secret_env``) or the separate secrets file supplies them.  A missing
secret is recorded on the site rather than reported, because only commands that sign in need it.
"""

from __future__ import annotations

import re
from typing import Any, get_args

from ..model.datasets import ALL_DATASETS as REGISTRY
from ..model.timezones import DEFAULT_REQUEST_TIME_ZONE_ID
from .checks import Checker, check_url, closest
from .sections import throttle_settings
from .settings import (
    ALL_DATASETS,
    DEFAULT_DATASETS,
    DEFAULT_TOKEN_DIR,
    AuthMethod,
    RestSettings,
    Secret,
    SiteSettings,
    SourceKind,
    ThrottleSettings,
    toml_keys,
)

_SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_REST_ONLY = {d.name for d in REGISTRY if d.sources == ("rest",)}
_XML_ONLY = {d.name for d in REGISTRY if d.sources == ("xml",)}
_AUTH_METHODS: tuple[AuthMethod, ...] = get_args(AuthMethod)
_SOURCES: tuple[SourceKind, ...] = get_args(SourceKind)


def secret(
    c: Checker, data: dict[str, Any], name: str, key: str, env: dict[str, str], secrets: dict[str, Any], site: str
) -> Secret | None:
    """A secret from the variable named by ``<name>_env`` or from the secrets file's [sites.<site>]."""
    if name in data:
        c.fail(f"{key}.{name}", f"secrets may not be written in the config file; use {name}_env or secrets_file")
    env_name = c.string(data, f"{name}_env", key, None)
    if env_name:
        value = env.get(env_name)
        if value:
            return Secret(value)
    from_file = secrets.get("sites", {}).get(site, {}).get(name)
    if isinstance(from_file, str) and from_file:
        return Secret(from_file)
    return None


def site_settings(
    c: Checker, raw: Any, throttle: ThrottleSettings, env: dict[str, str], secrets: dict[str, Any]
) -> list[SiteSettings]:
    """The ``[[sites]]`` array; each site's throttle starts from the top-level ``throttle``."""
    if raw is None:
        c.fail("sites", "missing: configure at least one [[sites]] entry")
        return []
    if not isinstance(raw, list):
        c.fail("sites", "must be an array of tables ([[sites]])")
        return []
    sites: list[SiteSettings] = []
    seen: set[str] = set()
    allowed = toml_keys(SiteSettings)
    for index, entry in enumerate(raw):
        key = f"sites[{index}]"
        data = c.table(entry, key)
        c.unknown(data, key, allowed)
        name = c.string(data, "name", key, None) or ""
        if not _SITE_NAME.match(name):
            c.fail(f"{key}.name", f"must be 1-63 letters, digits, '.', '_' or '-', got {name!r}")
        elif name in seen:
            c.fail(f"{key}.name", f"duplicate site name {name!r}")
        seen.add(name)
        source = c.string(data, "source", key, "xml")
        if source not in _SOURCES:
            c.fail(f"{key}.source", f"must be 'xml', 'rest' or 'auto', got {source!r}")
            source = "xml"
        uses_xml = source in ("xml", "auto")
        url = c.string(data, "url", key, None)
        if uses_xml or url:
            check_url(c, url, f"{key}.url")
        auth = c.string(data, "auth", key, "password")
        if auth not in _AUTH_METHODS:
            c.fail(f"{key}.auth", f"must be 'password', 'ticket' or 'token', got {auth!r}")
        webex_id = c.string(data, "webex_id", key, None) or ""
        if not webex_id and uses_xml:
            c.fail(f"{key}.webex_id", "missing (the Webex user the exporter signs in as)")
        password = secret(c, data, "password", key, env, secrets, name)
        token = secret(c, data, "access_token", key, env, secrets, name)
        rest, rest_missing = rest_settings(c, data.get("rest"), f"{key}.rest", source, name, env, secrets)
        # A missing secret is not a config error: read-only commands need none, and a run needs
        # only those of the sites it runs (Settings.require_secrets).
        missing = rest_missing
        if not uses_xml:
            pass
        elif auth in ("password", "ticket") and password is None:
            missing = (f"{key}.password_env: site {name!r}, auth '{auth}' needs a password: set the environment "
                       f"variable {data.get('password_env') or '(password_env not set)'} or put it in the secrets file")
        if auth == "token" and token is None:
            missing = (f"{key}.access_token_env: site {name!r}, auth 'token' needs an access token: set the "
                       f"environment variable {data.get('access_token_env') or '(access_token_env not set)'} or "
                       "put it in the secrets file")
        datasets = data.get("datasets", list(DEFAULT_DATASETS[source]))
        if not isinstance(datasets, list) or not all(isinstance(d, str) for d in datasets):
            c.fail(f"{key}.datasets", "must be a list of dataset names")
            datasets = []
        for d in datasets:
            if d not in ALL_DATASETS:
                hint = closest(d, set(ALL_DATASETS))
                c.fail(f"{key}.datasets", f"unknown dataset {d!r}" + (f" (did you mean {hint!r}?)" if hint else ""))
        zone = c.bounded(data, SiteSettings, "time_zone_id", key, DEFAULT_REQUEST_TIME_ZONE_ID)
        unlabeled = (c.bounded(data, SiteSettings, "unlabeled_time_zone_id", key, DEFAULT_REQUEST_TIME_ZONE_ID)
                     if "unlabeled_time_zone_id" in data else None)
        retired = data.get("retired_exception_ids", [])
        if not isinstance(retired, list) or not all(isinstance(r, str) and r.strip() for r in retired):
            c.fail(f"{key}.retired_exception_ids", 'must be a list of exceptionID strings, e.g. ["000080"]')
            retired = []
        site_throttle = throttle_settings(c, c.table(data.get("throttle"), f"{key}.throttle"), f"{key}.throttle",
                                          throttle)
        sites.append(
            SiteSettings(
                name=name,
                url=url or "",
                site_name=c.string(data, "site_name", key, name) or name,
                auth=auth if auth in _AUTH_METHODS else "password",
                webex_id=webex_id,
                password=password,
                access_token=token,
                datasets=tuple(d for d in datasets if d in ALL_DATASETS),
                preliminary=c.boolean(data, "preliminary", key, False),
                time_zone_id=zone,
                unlabeled_time_zone_id=unlabeled,
                throttle=site_throttle,
                allow_non_admin=c.boolean(data, "allow_non_admin", key, False),
                retired_exception_ids=tuple(r.strip() for r in retired),
                missing_secret=missing,
                source=source,  # type: ignore[arg-type]  # one of _SOURCES: checked above
                rest=rest,
            )
        )
        if source == "xml":
            rest_only = [d for d in datasets if d in _REST_ONLY]
            if rest_only:
                c.fail(f"{key}.datasets", f"{', '.join(rest_only)}: only the REST APIs list these; "
                                          "set source = 'rest' or 'auto' and configure [sites.rest]")
        if source == "rest":
            no_rest = [d for d in datasets if d in _XML_ONLY]
            if no_rest:
                c.fail(f"{key}.datasets", f"{', '.join(no_rest)}: the REST APIs have no equivalent; "
                                          "list them with source = 'xml' or 'auto'")
    return sites


def rest_settings(
    c: Checker, raw: Any, key: str, source: str, site: str, env: dict[str, str], secrets: dict[str, Any]
) -> tuple[RestSettings | None, str | None]:
    """``[sites.rest]``: the settings (None when not configured) and what secret is missing."""
    if raw is None:
        if source != "xml":
            c.fail(key, f"missing: source = {source!r} needs a [sites.rest] table (client_id, client_secret_env, "
                        "site_url); see README 'REST source'")
        return None, None
    data = c.table(raw, key)
    c.unknown(data, key, toml_keys(RestSettings))
    defaults = RestSettings()
    base_url = c.string(data, "base_url", key, defaults.base_url) or defaults.base_url
    token_url = c.string(data, "token_url", key, defaults.token_url) or defaults.token_url
    for name, value in (("base_url", base_url), ("token_url", token_url)):
        check_url(c, value, f"{key}.{name}")
    site_url = c.string(data, "site_url", key, None) or ""
    if not site_url:
        c.fail(f"{key}.site_url", "missing (the Webex site the reports are for, e.g. 'acme.webex.com')")
    elif "/" in site_url or "://" in site_url:
        c.fail(f"{key}.site_url", f"a host name like 'acme.webex.com', not a URL: {site_url!r}")
    client_id = c.string(data, "client_id", key, None) or ""
    if not client_id:
        c.fail(f"{key}.client_id", "missing (the integration's Client ID from developer.webex.com)")
    client_secret = secret(c, data, "client_secret", key, env, secrets, site)
    token_file = c.string(data, "token_file", key, None) or f"{DEFAULT_TOKEN_DIR}/{site}.json"
    missing = None
    if client_secret is None:
        missing = (f"{key}.client_secret_env: site {site!r} needs its integration's client secret: set the "
                   f"environment variable {data.get('client_secret_env') or '(client_secret_env not set)'} or put "
                   "client_secret in the secrets file")
    cap = c.bounded(data, RestSettings, "meetings_list_cap", key, defaults.meetings_list_cap)
    settings = RestSettings(base_url=base_url.rstrip("/"), token_url=token_url, site_url=site_url,
                            client_id=client_id, client_secret=client_secret, token_file=token_file,
                            meetings_list_cap=cap)
    return settings, missing
