"""The simulator: an aiohttp.web server for ``POST /WBXService/XMLService``, the REST APIs under
``/v1/`` (:mod:`.rest.api`) and the ``/_sim/`` controls.

:class:`Simulator` ties the parts together (clock, store, auth, faults, stats) and offers the same
controls as Python methods.  ``run_in_thread`` runs one for synchronous code and tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections import Counter
from datetime import datetime
from typing import Any, Iterator, Mapping, Sequence

from aiohttp import web

from ..errors import ParseError
from ..model import webex_codes as codes
from ..model.datasets import by_name
from .clock import SimClock
from .config import SimulatorConfig
from .controls import Controls
from .data.records import Record, coerce
from .data.store import Store
from .fault_settings import FaultSettings
from .faults import FaultState, api_group, damage_body, reset_connection
from .rest.api import RestApi
from .rest.gate import REST_PREFIX
from .rest.ids import instance_id, recording_id
from .rest.items import RestWorld
from .rest.oauth import RestTokens
from .rest.truth import RestTruth
from .stats import Stats
from .xmlapi.auth import Authenticator, Identity, NoCredentials
from .xmlapi.ops import NO_RECORDS_REASON, Answer, Operations
from .xmlapi.render import BodyXml, envelope, failure
from .xmlapi.request import Envelope, Refusal, read_envelope

__all__ = ["Simulator", "run_in_thread", "SERVICE_PATH"]

SERVICE_PATH = "/WBXService/XMLService"
_PRE_RESPONSE_FAULTS = {"reset", "http403", "http429", "http5xx"}
RETIRED_REASON = "This API has been retired. Please use the Webex REST APIs instead."


def _parse_time(value: Any) -> int | None:
    return None if value is None else coerce("timestamp", value)


class Simulator:
    """A simulated Webex XML API with deterministic data and controllable faults.

    ``async with Simulator(config) as sim:`` starts it on 127.0.0.1 (a free port); ``sim.url`` is the
    XML service URL.  All methods besides ``start``/``stop`` are synchronous and thread-safe.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config = config or SimulatorConfig()
        self.clock = SimClock(config.now, frozen=config.freeze_clock)
        self.store = Store(config, self.clock)
        self.auth = Authenticator(config, self.clock)
        self.faults = FaultState(config.faults, config.seed)
        self.counters = Stats()
        self.operations = Operations(config, self.store, self.auth, self.clock)
        self.rest_tokens = RestTokens(config, self.clock)
        self.rest_world = RestWorld(config, self.store)
        self.rest_truth = RestTruth(self.rest_world)
        self.rest_api = RestApi(config, self.clock, self.faults, self.counters, self.rest_tokens, self.rest_world)
        self.url: str | None = None
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0: any free port); returns the XML service URL."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.url = f"http://{host}:{bound[1]}{SERVICE_PATH}"
        return self.url

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://host:port`` (for the ``/_sim/`` controls)."""
        if self.url is None:
            raise RuntimeError("the simulator is not running")
        return self.url[: -len(SERVICE_PATH)]

    @property
    def rest_url(self) -> str:
        """The REST base URL, ``http://host:port/v1`` (Webex's ``https://webexapis.com/v1``)."""
        return self.base_url + REST_PREFIX

    @property
    def rest_token_url(self) -> str:
        """The OAuth token endpoint, ``http://host:port/v1/access_token``."""
        return self.rest_url + "/access_token"

    def app(self) -> web.Application:
        """The aiohttp application (XML service and controls)."""
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post(SERVICE_PATH, self._xml_service)
        Controls(self).mount(app)
        self.rest_api.mount(app)
        return app

    # ------------------------------------------------------------------ Python controls

    def ground_truth(self, site: str, dataset: str, *, preliminary: bool = False) -> list[dict[str, Any]]:
        """Exactly the records a site admin's full listing of ``dataset`` returns now (timestamps as UTC
        datetimes): twins repeated, ``[]`` for an operation the site has retired."""
        if not by_name(dataset).xml:
            raise KeyError(f"{dataset} is listed by the REST APIs only: use rest_ground_truth")
        return self.store.ground_truth(site, dataset, preliminary=preliminary,
                                       drift_fraction=self.faults.settings.schema_drift_fraction)

    def rest_ground_truth(self, site: str, dataset: str) -> list[dict[str, Any]]:
        """What a complete REST export of ``dataset`` lands now: dicts keyed by the dataset's REST
        columns (plus carry columns and ``site``), typed as landed (see :mod:`.rest.truth`)."""
        return self.rest_truth.rows(self.store.site(site), dataset, self.clock.now_ts())

    def rest_refresh_token(self, site: str, *, current: bool = False) -> str:
        """The site's initial refresh token (``sim-refresh-<site>`` unless configured), or with
        ``current`` the newest one handed out (refreshing rotates it)."""
        config = self.store.site(site)
        tokens = self.rest_tokens
        return tokens.current_refresh_token(config) if current else tokens.initial_refresh_token(config)

    def rest_access_token(self, site: str, *, scopes: Sequence[str] | None = None,
                          seconds: float | None = None) -> str:
        """A fresh access token for ``site`` without the OAuth dance (default: the site's scopes,
        ``rest.access_token_seconds`` on the simulator clock)."""
        return self.rest_tokens.mint(self.store.site(site), None if scopes is None else tuple(scopes), seconds)

    def rest_authorization_code(self, site: str, *, scopes: Sequence[str] | None = None,
                                redirect_uri: str | None = None) -> str:
        """A one-time code for ``grant_type=authorization_code`` (valid ten minutes)."""
        return self.rest_tokens.authorization_code(self.store.site(site), None if scopes is None else tuple(scopes),
                                                   redirect_uri)

    def expire_rest_tokens(self) -> int:
        """Invalidate every REST access token issued so far (refresh tokens keep working)."""
        return self.rest_tokens.expire_all()

    def rest_instance_id(self, site: str, conf_id: int) -> str:
        """The REST meeting instance id of a session's XML confID."""
        config = self.store.site(site)
        hit = self.rest_world.sessions(config, self.clock.now_ts()).get(int(conf_id))
        if hit is None:
            raise KeyError(f"no session with confID {conf_id} at site {config.name}")
        dataset, rec = hit
        return instance_id(config.name, rec[self.store.layouts[dataset].index["session_key"]], int(conf_id))

    def rest_recording_id(self, site: str, record_id: int) -> str:
        """The REST recordingId of an XML recordID."""
        return recording_id(self.store.site(site).name, int(record_id))

    def set_faults(self, settings: FaultSettings | None = None, **changes: Any) -> FaultSettings:
        """Replace all fault settings, or change some knobs by name; returns the settings in force."""
        if settings is not None:
            self.faults.replace(dataclasses.replace(settings, **changes) if changes else settings)
            return self.faults.settings
        return self.faults.update(**changes)

    def queue_fault(self, kind: str, count: int = 1, operation: str | None = None) -> None:
        """The next ``count`` requests (carrying ``operation``, if given) get fault ``kind``."""
        self.faults.enqueue(kind, count, operation)

    def stats(self) -> dict[str, Any]:
        """Counters: requests (and by operation), bodies, records, throttled, exceptions, faults."""
        return self.counters.snapshot()

    def reset_stats(self) -> None:
        """Zero all counters."""
        self.counters.reset()

    def add_late_rows(self, site: str, dataset: str, count: int = 1, *, start: datetime | None = None,
                      end: datetime | None = None, visible_at: datetime | None = None) -> list[dict[str, Any]]:
        """Add rows that start inside ``[start, end]`` (default: anywhere data is) and are visible
        from ``visible_at`` (default now): history arriving late into windows already exported."""
        rows = self.store.add_rows(site, dataset, count, start=_parse_time(start), end=_parse_time(end),
                                   visible_at=_parse_time(visible_at))
        return self._dicts(site, dataset, rows)

    def revise_record(self, site: str, dataset: str, key: Mapping[str, Any] | Sequence[Any],
                      changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change column values of the record with natural ``key`` (a dict or a tuple in key order)."""
        return self._dicts(site, dataset, [self.store.revise(site, dataset, key, changes)])[0]

    def remove_record(self, site: str, dataset: str, key: Mapping[str, Any] | Sequence[Any]) -> dict[str, Any]:
        """Delete the record with natural ``key``; returns it."""
        return self._dicts(site, dataset, [self.store.remove(site, dataset, key)])[0]

    def expire_tickets(self) -> int:
        """Invalidate every session ticket issued so far."""
        return self.auth.expire_all()

    def _dicts(self, site: str, dataset: str, rows: Sequence[Record]) -> list[dict[str, Any]]:
        config = self.store.site(site)
        pmr = dataset == "scheduled_sessions" and config.return_scheduled_pmr_switch
        now = self.clock.now_ts()
        drift = self.faults.settings.schema_drift_fraction
        return [self.store.as_dict(config, dataset, r, now, pmr_column=pmr, drift_fraction=drift) for r in rows]

    # ------------------------------------------------------------------ the XML service

    async def _xml_service(self, request: web.Request) -> web.StreamResponse:
        delay = self.faults.latency()
        if delay:
            await asyncio.sleep(delay)
        data = await request.read()
        try:
            env = read_envelope(data)
        except ParseError as exc:
            self.counters.request([])
            return self._respond([failure(codes.MALFORMED_REQUEST, f"Invalid request: {exc}")], None)
        operations = [b.operation for b in env.bodies]
        self.counters.request(operations)
        fault = self.faults.draw(operations)
        if fault in _PRE_RESPONSE_FAULTS:
            self.counters.fault(fault)
            return self._transport_fault(request, fault)
        answers = self._answer(env, fault)
        response = self._respond([a.xml for a in answers], fault)
        if fault in ("mutate_add", "mutate_remove"):
            self._mutate_between_pages(answers, fault)
        return response

    def _transport_fault(self, request: web.Request, fault: str) -> web.StreamResponse:
        settings = self.faults.settings
        if fault == "reset":
            reset_connection(request)
            return web.Response()
        if fault == "http403":
            self.counters.http(403)
            return web.Response(status=403, text="403 Forbidden: usage limit exceeded")
        if fault == "http429":
            self.counters.http(429)
            return web.Response(status=429, text="429 Too Many Requests",
                                headers={"Retry-After": str(settings.retry_after_seconds)})
        self.counters.http(settings.http5xx_status)
        return web.Response(status=settings.http5xx_status, text=f"{settings.http5xx_status} Server Error")

    def _answer(self, env: Envelope, fault: str | None) -> list[Answer]:
        bodies = env.bodies
        limit = self.config.body_content_limit
        if not bodies:
            return self._count([Answer(failure(codes.INVALID_ARGUMENT, "The request has no bodyContent"))])
        if len(bodies) > limit:
            # {number} is limit + 1 ("must be less than 11" for 10); a template without it names none.
            reason = self.config.body_content_limit_reason.replace("{number}", str(limit + 1))
            return self._count([Answer(failure(codes.BODY_CONTENT_LIMIT, reason))])
        groups = Counter(api_group(b.operation, self.operations.groups) for b in bodies
                         if self.operations.known(b.operation))
        # Every group is checked (and charged) so one request cannot slip past a group's budget.
        throttled = [g for g in sorted(groups) if self.faults.throttled(env.site_name, g, groups[g])]
        if throttled or fault == "throttle":
            if fault == "throttle":
                self.counters.fault(fault)
            return self._count([Answer(failure(codes.RATE_LIMITED, "API Rate Limit Reached")) for _ in bodies])
        identity: Identity | None = None
        refusal: Refusal | None = None
        try:
            identity = self.auth.authenticate(env.security)
        except Refusal as exc:
            refusal = exc
        answers = []
        drift = self.faults.settings.schema_drift_fraction
        capital = self.faults.settings.capital_uuid_fraction
        named_site = self.config.site(env.site_name) if env.site_name else None
        for body in bodies:
            op = body.operation.lower()
            try:
                if not self.operations.known(op):
                    raise Refusal(codes.UNKNOWN_OPERATION, f"Unknown operation {body.operation!r}")
                if named_site is not None and named_site.is_retired(op):
                    # Whoever asks: the operation is gone from this site (the other bodies still count).
                    raise Refusal(codes.OPERATION_RETIRED, RETIRED_REASON)
                if op == "getapiversion":
                    answers.append(self.operations.get_api_version())
                elif op == "authenticateuser":
                    answers.append(self.operations.authenticate_user(body.element, env.security, identity, refusal))
                elif identity is None:
                    if isinstance(refusal, NoCredentials) and op == "lstsummarysession":
                        # 40.2.0: anonymous LstsummarySession answers "no record found".
                        raise Refusal(codes.NO_RECORDS, NO_RECORDS_REASON)
                    assert refusal is not None  # authenticate() either returned an identity or refused
                    raise refusal
                elif op == "getsite":
                    answers.append(self.operations.get_site(identity))
                elif op == "getuser":
                    answers.append(self.operations.get_user(body.element, identity))
                elif op == "lsttimezone":
                    answers.append(self.operations.lst_time_zone(body.element))
                else:
                    answers.append(self.operations.list(body.operation, body.element, identity,
                                                        drift=drift, capital_uuid=capital))
            except Refusal as exc:
                answers.append(Answer(failure(exc.exception_id, exc.reason)))
        return self._count(answers)

    def _count(self, answers: list[Answer]) -> list[Answer]:
        for a in answers:
            self.counters.body(a.xml.exception_id, a.records)
        return answers

    def _respond(self, bodies: list[BodyXml], fault: str | None) -> web.Response:
        settings = self.faults.settings
        backup = self.faults.gsb_backup() or fault == "gsb_backup"
        if fault == "gsb_backup":
            self.counters.fault(fault)
        text = envelope(bodies, gsb_status="BACKUP" if backup else "PRIMARY")
        encoding = settings.encoding.upper()
        if encoding == "ISO-8859-1":
            # Characters outside Latin-1 become character references, as Webex writes them.
            payload = text.encode("iso-8859-1", "xmlcharrefreplace")
        else:
            payload = text.encode("utf-8")
        payload = f'<?xml version="1.0" encoding="{encoding}"?>\n'.encode("ascii") + payload
        if fault in ("truncate", "malformed"):
            self.counters.fault(fault)
            payload = damage_body(payload, fault, keep_at_least=40, after=b"</serv:header>", junk=b"<<broken & ")
        self.counters.http(200)
        return web.Response(body=payload, content_type="text/xml", charset=encoding)

    def _mutate_between_pages(self, answers: list[Answer], fault: str) -> None:
        for answer in answers:
            listing = answer.listing
            if listing is None or not listing.page:
                continue
            if fault == "mutate_add":
                # A copy of the listing's first row sorts before every later page: the pages shift.
                self.store.add_rows(listing.site, listing.dataset, 1, templates=[listing.rows[0]])
            else:
                # Exactly the row served (not merely one with its natural key: it may have twins).
                self.store.discard(listing.site, listing.dataset, listing.page[0])
            self.counters.fault(fault)
            return

@contextlib.contextmanager
def run_in_thread(config: SimulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0,
                  timeout: float = 30.0) -> Iterator[Simulator]:
    """Run a simulator on its own event loop in a daemon thread; yields it (``sim.url`` is set)."""
    sim = Simulator(config)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failed: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(sim.start(host, port))
        except BaseException as exc:  # reported to the caller below
            failed.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="webex-simulator", daemon=True)
    thread.start()
    if not ready.wait(timeout):
        raise RuntimeError("the simulator did not start in time")
    if failed:
        thread.join()
        loop.close()
        raise failed[0]
    try:
        yield sim
    finally:
        asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        loop.close()
