"""The ``/_sim/`` HTTP controls (JSON): ground truth, clock, faults, stats, mutations and info."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..errors import ConfigError

if TYPE_CHECKING:  # the simulator owns its controls; only the type is needed here
    from .server import Simulator

__all__ = ["Controls"]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, default=_json_default, ensure_ascii=False), status=status,
                        content_type="application/json")


class Controls:
    """The ``/_sim/`` endpoints of one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def mount(self, app: web.Application) -> None:
        """Add the ``/_sim/`` routes to ``app``."""
        app.router.add_get("/_sim/ground-truth", self._http_ground_truth)
        app.router.add_get("/_sim/clock", self._http_clock)
        app.router.add_post("/_sim/clock", self._http_clock)
        app.router.add_get("/_sim/faults", self._http_faults)
        app.router.add_post("/_sim/faults", self._http_faults)
        app.router.add_get("/_sim/stats", self._http_stats)
        app.router.add_post("/_sim/stats", self._http_stats)
        app.router.add_post("/_sim/mutate", self._http_mutate)
        app.router.add_get("/_sim/info", self._http_info)
        app.router.add_get("/_sim/rest-ground-truth", self._http_rest_ground_truth)

    async def _http_ground_truth(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            rows = self.sim.ground_truth(q.get("site", ""), q.get("dataset", ""),
                                     preliminary=q.get("preliminary", "").lower() in ("1", "true", "yes"))
        except KeyError as exc:
            return _json({"error": str(exc.args[0])}, 404)
        return _json(rows)

    async def _http_rest_ground_truth(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            rows = self.sim.rest_ground_truth(q.get("site", ""), q.get("dataset", ""))
        except KeyError as exc:
            return _json({"error": str(exc.args[0])}, 404)
        return _json(rows)

    async def _http_clock(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            data = await request.json()
            try:
                if "now" in data:
                    when = datetime.fromisoformat(str(data["now"]).replace("Z", "+00:00"))
                    self.sim.clock.set(when, frozen=bool(data.get("frozen", True)))
                if "advance_seconds" in data:
                    self.sim.clock.advance(float(data["advance_seconds"]))
                if data.get("frozen") is False and "now" not in data:
                    self.sim.clock.resume()
                elif data.get("frozen") is True and "now" not in data:
                    self.sim.clock.freeze()
            except (TypeError, ValueError) as exc:
                return _json({"error": str(exc)}, 400)
        return _json({"now": self.sim.clock.now(), "frozen": self.sim.clock.frozen})

    async def _http_faults(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            data = dict(await request.json())
            try:
                if data.pop("reset", False):
                    self.sim.faults.replace(self.sim.config.faults)
                for item in data.pop("enqueue", []):
                    self.sim.faults.enqueue(item["kind"], int(item.get("count", 1)), item.get("operation"))
                if data:
                    if "queue" in data:
                        data["queue"] = tuple(data["queue"])
                    self.sim.faults.update(**data)
            except (ConfigError, TypeError, ValueError, KeyError) as exc:
                return _json({"error": str(exc)}, 400)
        return _json(self.sim.faults.describe())

    async def _http_stats(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            data = await request.json()
            if data.get("reset"):
                self.sim.counters.reset()
        return _json(self.sim.stats())

    async def _http_mutate(self, request: web.Request) -> web.Response:
        data = await request.json()
        action = data.get("action")
        try:
            if action == "add_late_rows":
                rows = self.sim.add_late_rows(data["site"], data["dataset"], int(data.get("count", 1)),
                                          start=data.get("start"), end=data.get("end"),
                                          visible_at=data.get("visible_at"))
                return _json({"added": rows})
            if action == "revise":
                return _json({"revised": self.sim.revise_record(data["site"], data["dataset"], data["key"],
                                                            data["changes"])})
            if action == "remove":
                return _json({"removed": self.sim.remove_record(data["site"], data["dataset"], data["key"])})
            if action == "expire_tickets":
                return _json({"expired": self.sim.expire_tickets()})
            if action == "expire_rest_tokens":
                return _json({"expired": self.sim.expire_rest_tokens()})
        except (KeyError, LookupError, TypeError, ValueError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"error": f"unknown action {action!r}; use add_late_rows, revise, remove, expire_tickets, "
                               "expire_rest_tokens"}, 400)

    async def _http_info(self, request: web.Request) -> web.Response:
        rest = self.sim.config.rest
        return _json({
            "url": self.sim.url,
            "rest": {"url": self.sim.rest_url if self.sim.url else None, "client_id": rest.client_id,
                     "client_secret": rest.client_secret, "rotate_refresh_tokens": rest.rotate_refresh_tokens,
                     "sites": [{"name": s.name, "site_url": s.site_url,
                                "refresh_token": self.sim.rest_tokens.initial_refresh_token(s),
                                "current_refresh_token": self.sim.rest_tokens.current_refresh_token(s),
                                "scopes": list(s.rest.scopes)} for s in self.sim.config.sites]},
            "now": self.sim.clock.now(),
            "sites": [{"name": s.name, "users": dict(s.users), "access_tokens": dict(s.access_tokens),
                       "default_time_zone_id": s.default_time_zone_id,
                       "return_scheduled_pmr_switch": s.return_scheduled_pmr_switch,
                       "non_admin_users": list(s.non_admin_users),
                       "retired_operations": list(s.retired_operations)} for s in self.sim.config.sites],
        })
