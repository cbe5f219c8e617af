"""One simulated site: :class:`SiteConfig` (users, tokens, zone, switches, its REST settings)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .fault_settings import frozen_pairs
from .rest.config import SiteRest
from .tables import build_table

__all__ = ["SiteConfig", "DEFAULT_USERS"]

DEFAULT_USERS = (("admin", "sim-password"),)
@dataclass(frozen=True, slots=True)
class SiteConfig:
    """One simulated Webex site: its users (webex_id -> password), tokens and switches.

    ``access_tokens`` maps a token to the webex_id it signs in as (a list of tokens means the first
    user).  ``scale`` multiplies the per-day session counts, so sites differ in size.
    ``unpadded_date_fraction`` is the share of records whose dates are written unpadded
    (``9/29/2019 2:4:3``), as real servers sometimes do.
    ``non_admin_users`` are users (webExIDs of ``users``) who are ordinary hosts, not site admins:
    signed in as one, a listing silently holds only that user's own data.
    ``retired_operations`` are operation names (any case) answered with FAILURE 000080 and
    given no ground truth.
    ``rest`` is how the REST APIs address the site (``siteUrl``, initial refresh token, scopes).
    """

    name: str
    users: tuple[tuple[str, str], ...] = DEFAULT_USERS
    access_tokens: tuple[tuple[str, str], ...] = ()
    default_time_zone_id: int = 20
    return_scheduled_pmr_switch: bool = False
    unpadded_date_fraction: float = 0.0
    scale: float = 1.0
    hosts: int = 12
    non_admin_users: tuple[str, ...] = ()
    retired_operations: tuple[str, ...] = ()
    rest: SiteRest = SiteRest()

    def __post_init__(self) -> None:
        object.__setattr__(self, "users", frozen_pairs(self.users))
        if not isinstance(self.rest, SiteRest):
            object.__setattr__(self, "rest", SiteRest.from_dict(self.rest))
        for name in ("non_admin_users", "retired_operations"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, tuple(value))
        # A profile gives a table (token -> user) or a list of tokens (signing in as the first user).
        tokens: Mapping[str, str] | Iterable[str] | Iterable[tuple[str, str]] = self.access_tokens
        if not isinstance(tokens, Mapping) and all(isinstance(t, str) for t in tokens):
            first = self.users[0][0] if self.users else ""
            tokens = [(t, first) for t in tokens if isinstance(t, str)]  # all are: the filter narrows the type
        object.__setattr__(self, "access_tokens", frozen_pairs(tokens))

    @property
    def users_dict(self) -> dict[str, str]:
        """Users as webex_id -> password."""
        return dict(self.users)

    def is_admin(self, webex_id: str) -> bool:
        """False for the ``non_admin_users`` (case-insensitive), True for every other user."""
        return webex_id.lower() not in {u.lower() for u in self.non_admin_users}

    @property
    def site_url(self) -> str:
        """The ``siteUrl`` the REST APIs know the site by (``<name>.webex.com`` unless configured)."""
        return self.rest.url_for(self.name)

    def is_retired(self, operation: str) -> bool:
        """True when ``operation`` (any case) is one of the site's ``retired_operations``."""
        return operation.lower() in {o.lower() for o in self.retired_operations}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, key: str = "sites[0]") -> SiteConfig:
        """Build from a ``[[sites]]`` table; unknown keys are errors."""
        return build_table(cls, data, key, convert={"rest": lambda table: SiteRest.from_dict(table, key=f"{key}.rest")})

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-friendly dict."""
        out = dataclasses.asdict(self)
        out["users"] = dict(self.users)
        out["access_tokens"] = dict(self.access_tokens)
        out["non_admin_users"] = list(self.non_admin_users)
        out["retired_operations"] = list(self.retired_operations)
        out["rest"] = self.rest.to_dict()
        return out
