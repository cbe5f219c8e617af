"""OAuth scopes: which ones the REST listings of the chosen datasets need, which of them a token
lacks (a :class:`~exporter.errors.MissingScopeError` naming each dataset), and the URL an admin
opens to authorize the integration with them."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode

from ...config import RestSettings
from ...errors import MissingScopeError
from ...model.dataset_spec import Dataset
from .tokens import reauthorize_hint

__all__ = ["required_scopes", "missing_scopes", "check_scopes", "authorize_url"]


def required_scopes(datasets: Iterable[Dataset]) -> tuple[str, ...]:
    """Every scope the REST listings of ``datasets`` (and their fan-out parents) need, in order."""
    from ...model.datasets import by_name

    out: dict[str, None] = {}
    for dataset in datasets:
        listing = dataset.rest
        while listing is not None:
            out.update(dict.fromkeys(listing.scopes))
            listing = by_name(listing.parent).rest if listing.parent else None
    return tuple(out)


def missing_scopes(granted: Iterable[str], datasets: Iterable[Dataset]) -> dict[str, tuple[str, ...]]:
    """Dataset name -> the scopes its REST listing (or its fan-out parent's) needs that are not
    ``granted``; datasets lacking none are left out."""
    have = set(granted)
    out: dict[str, tuple[str, ...]] = {}
    for dataset in datasets:
        lacking = tuple(s for s in required_scopes([dataset]) if s not in have)
        if lacking:
            out[dataset.name] = lacking
    return out


def check_scopes(granted: Iterable[str], datasets: Iterable[Dataset], *, site: str) -> None:
    """Raise :class:`MissingScopeError` naming every dataset and the scopes it lacks."""
    missing = missing_scopes(granted, datasets)
    if not missing:
        return
    by_scopes: dict[tuple[str, ...], list[str]] = {}
    for name, scopes in missing.items():
        by_scopes.setdefault(scopes, []).append(name)
    detail = "; ".join(f"{', '.join(names)} need{'s' if len(names) == 1 else ''} {' '.join(scopes)}"
                       for scopes, names in by_scopes.items())
    raise MissingScopeError(
        f"site {site}: the REST token lacks scopes: {detail}. Add them to the integration on developer.webex.com "
        f"and {reauthorize_hint(site)} (as an admin who holds the matching roles), or leave those datasets out",
        missing=missing,
    )


def authorize_url(rest: RestSettings, *, redirect_uri: str, scopes: Iterable[str], state: str) -> str:
    """The URL an admin opens to authorize the integration (``.../v1/authorize?...``); the code
    it redirects back with goes to :func:`~exporter.webex.rest.tokens.seed_from_authorization_code`."""
    base = rest.token_url.rsplit("/", 1)[0] if rest.token_url.endswith("/access_token") else rest.base_url
    query = urlencode({"client_id": rest.client_id, "response_type": "code", "redirect_uri": redirect_uri,
                       "scope": " ".join(scopes), "state": state})
    return f"{base}/authorize?{query}"
