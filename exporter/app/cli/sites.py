"""A site's access: ``check`` (connectivity, credentials, privilege, time zone, operations) and
``auth`` (storing a site's OAuth tokens for the REST source)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from ...errors import ConfigError
from .boundary import EXIT_AUTH, EXIT_PARTIAL, error_boundary
from .options import common_options, load_command_settings, selection_options

__all__ = ["check", "auth"]


@click.command()
@common_options
@selection_options
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@error_boundary
def check(config_path: Path, debug: bool, sites: tuple[str, ...], datasets: tuple[str, ...], output: str) -> None:
    """Check each site: connectivity, credentials, privilege, its time zone, and which history
    operations it serves (a few requests per site; nothing is written).

    Exit code 0 when everything is fine, 1 with warnings or failures, 3 when a site refuses
    the credentials.

    \b
    Example:
      webex-exporter check --site acme
    """
    from ...webex.site_check import run_checks
    from ..reporting import print_rows

    settings = load_command_settings(config_path, debug)
    names = sites or tuple(s.name for s in settings.sites)
    for name in names:
        settings.site(name)
    settings.require_secrets(names)
    lines = asyncio.run(run_checks(settings, names, datasets or None))
    print_rows(["site", "check", "status", "detail"], [(l.site, l.check, l.status, l.detail) for l in lines], output)
    if any(l.check == "credentials" and l.status == "fail" for l in lines):
        sys.exit(EXIT_AUTH)
    sys.exit(0 if all(l.status == "ok" for l in lines) else EXIT_PARTIAL)


@click.command()
@common_options
@click.option("--site", "site_name", required=True, help="The site (source 'rest' or 'auto') to authorize.")
@click.option("--code", default=None, help="An OAuth authorization code (from the redirect after approving).")
@click.option("--redirect-uri", default="", help="The redirect URI the code was issued for (with --code).")
@click.option("--print-url", is_flag=True, help="Print the URL an admin opens to approve the integration.")
@error_boundary
def auth(config_path: Path, debug: bool, site_name: str, code: str | None, redirect_uri: str, print_url: bool) -> None:
    """Store a site's OAuth tokens for the REST source (once; the exporter renews them itself).

    Without --code, reads a refresh token from stdin (never from the command line, so it stays
    out of shell history), exchanges it once to prove it works, and stores the tokens Webex
    returns in the site's token file (owner-only; [sites.rest] token_file).

    \b
    Examples:
      webex-exporter auth --site acme --print-url --redirect-uri http://localhost:8080/callback
      webex-exporter auth --site acme --code <code> --redirect-uri http://localhost:8080/callback
      webex-exporter auth --site acme < refresh-token.txt
    """
    import asyncio
    import secrets as stdlib_secrets

    from ...config import Secret
    from ...model.datasets import by_name
    from ...obs.logs import register_secret
    from ...webex.rest.client import seed_tokens
    from ...webex.rest.scopes import authorize_url, required_scopes

    settings = load_command_settings(config_path, debug)
    site = settings.site(site_name)
    if site.rest is None:
        raise ConfigError(f"site {site_name!r} has no [sites.rest] table: nothing to authorize (source = {site.source!r})")
    if print_url:
        if not redirect_uri:
            raise ConfigError("--print-url needs --redirect-uri (the one registered with the integration)")
        scopes = required_scopes(by_name(d) for d in site.datasets if by_name(d).rest is not None)
        click.echo(authorize_url(site.rest, redirect_uri=redirect_uri, scopes=scopes, state=stdlib_secrets.token_urlsafe(12)))
        return
    settings.require_secrets([site_name])
    if code is None:
        if sys.stdin.isatty():
            click.echo("Paste the refresh token, then Enter:", err=True)
        value = sys.stdin.readline().strip()
        if not value:
            raise ConfigError("no refresh token on stdin (pipe it in: webex-exporter auth --site X < token.txt)")
        register_secret(value)
        tokens = asyncio.run(seed_tokens(site, refresh_token=Secret(value)))
    else:
        register_secret(code)
        tokens = asyncio.run(seed_tokens(site, code=Secret(code), redirect_uri=redirect_uri))
    register_secret(tokens.refresh_token.reveal())
    click.echo(f"site {site_name}: tokens stored in {site.rest.token_file} (scopes: {' '.join(tokens.scope) or 'not stated'})")
