"""The admin API: see and steer a running hub. Every route needs the admin token.

==========================================  ==================================================
``GET /v1/binds``                            ESME binds now: id, account, bind type, peer
``DELETE /v1/binds/{id}``                    unbind that ESME (an unbind PDU, then the close)
``GET /v1/upstreams``                        each SMSC: mode, binds up, queue, answers
``POST /v1/upstreams/{name}/pause``          write nothing more to it; its queue waits
``POST /v1/upstreams/{name}/drain``          take nothing new; its queue fails over now
``POST /v1/upstreams/{name}/resume``         undo either
``GET /v1/routes``                           the routes and default route in force
``PUT /v1/routes``                           replace them (validated like hub.toml), no restart
``GET /v1/route?to=N&account=A[&from=S]``    which route ``N`` takes for ``A``, and why
``GET /v1/messages/{id}/trace``              every step of one message, with times
==========================================  ==================================================

Routes set here live until the next reload from hub.toml or restart (the file is the
operator's, and the hub never writes it): ``PUT /v1/routes`` is for steering now; the
answer lists what changed so it can be copied into the file. Bind ids are small numbers
given to connections the first time a listing shows them, kept only while the
connection lives (a weak map: the API holds no connection open).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import weakref

import msgspec
import structlog
from aiohttp import web

from smppcore import status_name
from smppcore.server import SmscConnection

from ..config import DefaultRoute, HubConfig, Route
from ..lifecycle import MessageRow
from ..routing import Candidate, normalise_destination
from .api import json_response
from .auth import require_admin
from .errors import ApiError, decode_json, field_of
from .metrics import UpstreamReading, read_hub
from .view import HUB, HubView

__all__ = ["BindIds", "peer_of", "register"]

log = structlog.get_logger("smpphub.admin")

#: seconds an unbind may take before the connection is closed anyway
UNBIND_TIMEOUT = 2.0


class BindIds:
    """Small stable ids for ESME connections, for as long as each lives (see the module docstring)."""

    def __init__(self) -> None:
        self._ids: weakref.WeakKeyDictionary[SmscConnection, int] = weakref.WeakKeyDictionary()
        self._next = itertools.count(1)

    def of(self, conn: SmscConnection) -> int:
        n = self._ids.get(conn)
        if n is None:
            n = self._ids[conn] = next(self._next)
        return n


BIND_IDS: web.AppKey[BindIds] = web.AppKey("smpphub.bind_ids", BindIds)


# ---- the answers -------------------------------------------------------------------------------


class Bind(msgspec.Struct, kw_only=True):
    id: int
    account: str
    state: str  # bound_tx, bound_rx, bound_trx (or open: not bound yet)
    peer: str


class Upstream(msgspec.Struct, kw_only=True):
    name: str
    address: str
    state: UpstreamReading


class Routes(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The body of ``GET`` and ``PUT /v1/routes``: hub.toml's ``routes`` and ``default_route``."""

    routes: list[Route]
    default_route: DefaultRoute | None = None


class RoutesChanged(msgspec.Struct, kw_only=True):
    added: list[Route]
    removed: list[Route]
    unchanged: int
    default_route_before: DefaultRoute | None
    default_route_after: DefaultRoute | None


class RouteTaken(msgspec.Struct, kw_only=True):
    prefix: str
    upstreams: list[str]
    weights: dict[str, float]


class Explained(msgspec.Struct, kw_only=True):
    to: str  # as asked
    destination: str  # normalised: what routes are matched against
    account: str
    route_group: str
    route: RouteTaken | None  # None: unroutable (the submit is refused with unroutable_status)
    why: str
    candidates: list[Candidate]


class TraceStep(msgspec.Struct, kw_only=True, omit_defaults=True):
    at: float  # unix time
    after_s: float  # seconds since the message was accepted
    step: str  # the state reached, or a note (receipt_delivered)
    before: str | None = None
    upstream: str | None = None
    status: str | None = None  # the error of a failure


class Trace(msgspec.Struct, kw_only=True):
    id: str
    account: str
    state: str
    route: list[str]
    upstream: str | None
    upstream_id: str | None
    attempts: int
    error: str | None
    created_at: float
    updated_at: float
    steps_kept: bool  # False: older than the ring ([log] trace_messages); the row alone tells its story
    steps: list[TraceStep]


# ---- handlers ------------------------------------------------------------------------------------


def _hub(request: web.Request) -> HubView:
    require_admin(request)
    return request.app[HUB]


def peer_of(conn: SmscConnection) -> str:
    """``HOST:PORT`` of the ESME on ``conn`` ("?" when unknown), as the admin API and dashboard show it."""
    peer = conn.peername
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "?"


async def list_binds(request: web.Request) -> web.Response:
    hub = _hub(request)
    ids = request.app[BIND_IDS]
    binds = [Bind(id=ids.of(c), account=c.system_id, state=c.session.state.value, peer=peer_of(c))
             for c in hub.esme_connections() if c.session.state.is_bound]
    return json_response({"binds": sorted(binds, key=lambda b: b.id)})


async def kick_bind(request: web.Request) -> web.Response:
    hub = _hub(request)
    ids = request.app[BIND_IDS]
    wanted = request.match_info["id"]
    for conn in hub.esme_connections():
        if conn.session.state.is_bound and str(ids.of(conn)) == wanted:
            log.warning("bind_kicked", system_id=conn.system_id, peer=peer_of(conn), bind=wanted)
            await conn.unbind(UNBIND_TIMEOUT)
            return json_response({"unbound": int(wanted), "account": conn.system_id})
    raise ApiError(404, f"no bind {wanted!r} (GET /v1/binds lists them)", field="id")


def _upstreams(hub: HubView) -> list[Upstream]:
    reading = read_hub(hub)
    cfg = {u.name: u for u in hub.config.upstreams}
    return [Upstream(name=name, address=f"{cfg[name].host}:{cfg[name].port}" if name in cfg else "?", state=state)
            for name, state in sorted(reading.upstreams.items())]


async def list_upstreams(request: web.Request) -> web.Response:
    return json_response({"upstreams": _upstreams(_hub(request))})


async def steer_upstream(request: web.Request) -> web.Response:
    hub = _hub(request)
    name, action = request.match_info["name"], request.match_info["action"]
    dispatcher = hub.dispatcher
    if name not in dispatcher.pools:
        raise ApiError(404, f"no upstream {name!r} (GET /v1/upstreams lists them)", field="name")
    if action == "pause":
        dispatcher.controls.pause(name)
    elif action == "drain":
        dispatcher.controls.drain(name)
    elif action == "resume":
        dispatcher.controls.resume(name)
    else:
        raise ApiError(404, f"no action {action!r}: pause, drain or resume", field="action")
    (upstream,) = [u for u in _upstreams(hub) if u.name == name]
    return json_response(upstream)


async def get_routes(request: web.Request) -> web.Response:
    config = _hub(request).config
    return json_response(Routes(routes=config.routes, default_route=config.default_route))


def _changed(before: HubConfig, after: HubConfig) -> RoutesChanged:
    """Routes in one and not the other, as multisets (a duplicate counts twice); linear in the
    number of routes, so a large PUT costs its size and no more."""
    old = [msgspec.json.encode(r) for r in before.routes]
    new = [msgspec.json.encode(r) for r in after.routes]
    unmatched_old, unmatched_new = collections.Counter(old), collections.Counter(new)
    common = unmatched_old & unmatched_new
    unmatched_old -= common
    unmatched_new -= common

    def take(routes: list[Route], encoded: list[bytes], left: collections.Counter[bytes]) -> list[Route]:
        out = []
        for key, route in zip(encoded, routes, strict=True):
            if left[key] > 0:
                left[key] -= 1
                out.append(route)
        return out

    added = take(after.routes, new, unmatched_new)
    removed = take(before.routes, old, unmatched_old)
    return RoutesChanged(added=added, removed=removed, unchanged=len(after.routes) - len(added),
                         default_route_before=before.default_route, default_route_after=after.default_route)


def _replaced(before: HubConfig, body: Routes) -> tuple[HubConfig, RoutesChanged]:
    after = msgspec.structs.replace(before, routes=body.routes, default_route=body.default_route)
    return after, _changed(before, after)


async def put_routes(request: web.Request) -> web.Response:
    hub = _hub(request)
    body = decode_json(await request.read(), Routes)
    before = hub.config
    try:
        # the same checks as hub.toml's (HubConfig.__post_init__): unknown upstreams, accounts, targets;
        # in a thread with the comparison, so that a body of many routes does not hold up the loop
        after, changed = await asyncio.to_thread(_replaced, before, body)
    except msgspec.ValidationError as exc:
        field, message = field_of(exc)
        raise ApiError(422, f"{field}: {message}" if field else message, field=field) from None
    if hub.config is not before:  # a reload (SIGHUP, another PUT) came meanwhile: this one is stale
        raise ApiError(409, "the configuration changed while these routes were checked: send them again",
                       code="conflict")
    hub.reload(after)
    log.warning("routes_replaced", added=len(changed.added), removed=len(changed.removed),
                unchanged=changed.unchanged, routes=len(after.routes))
    return json_response(changed)


async def explain_route(request: web.Request) -> web.Response:
    hub = _hub(request)
    query = request.query
    to = query.get("to", "")
    account_name = query.get("account", "")
    source = query.get("from", "")
    if not to:
        raise ApiError(422, "to: required, the destination number", field="to")
    if not account_name:
        raise ApiError(422, "account: required, the system_id sending", field="account")
    account = hub.dispatcher.accounts.get(account_name)
    if account is None:
        raise ApiError(422, f"account: unknown account {account_name!r}", field="account")
    destination = normalise_destination(to)
    if not destination.isdigit() or len(destination) > 21:
        raise ApiError(422, f"to: {to!r} is not a phone number (digits, optionally +, spaces, dashes)", field="to")
    table = hub.routes
    candidates = table.explain(destination, account=account.system_id, source_addr=source,
                               group=account.route_group)
    chosen = next((c for c in candidates if c.matches), None)
    route: RouteTaken | None = None
    if chosen is not None:
        route = RouteTaken(prefix=chosen.prefix, upstreams=chosen.upstreams, weights=chosen.weights)
        why = f"longest matching prefix {chosen.prefix!r}" if chosen.prefix else "the route with the empty prefix"
    elif table.default is not None:
        d = table.default
        route = RouteTaken(prefix="", upstreams=d.upstreams, weights=d.weights)
        why = "default_route: no route's prefix and conditions match"
    else:
        why = f"unroutable: no route matches and there is no default_route (answered {hub.config.unroutable_status})"
    return json_response(Explained(to=to, destination=destination, account=account.system_id,
                           route_group=account.route_group, route=route, why=why, candidates=candidates))


async def trace_message(request: web.Request) -> web.Response:
    hub = _hub(request)
    message_id = request.match_info["id"]
    row: MessageRow | None = hub.dispatcher.table.get(message_id)
    if row is None:
        row = await hub.store.get(message_id)
    if row is None:
        raise ApiError(404, f"no message {message_id!r} (finished messages are kept store.keep_final seconds)",
                       field="id")
    ring = hub.dispatcher.msglog.ring
    kept = ring.steps(message_id, row.route) if ring is not None else None
    steps = [TraceStep(at=s.at, after_s=round(s.at - row.created_at, 6), step=s.after, before=s.before,
                       upstream=s.upstream, status=status_name(s.error) if s.error else None)
             for s in kept or ()]
    return json_response(Trace(id=row.id, account=row.account, state=row.state.value, route=row.route,
                       upstream=row.upstream, upstream_id=row.upstream_id, attempts=row.attempts,
                       error=status_name(row.error) if row.error else None, created_at=row.created_at,
                       updated_at=row.updated_at, steps_kept=kept is not None, steps=steps))


def register(app: web.Application, hub: HubView) -> None:
    app[BIND_IDS] = BindIds()
    app.router.add_get("/v1/binds", list_binds)
    app.router.add_delete("/v1/binds/{id}", kick_bind)
    app.router.add_get("/v1/upstreams", list_upstreams)
    app.router.add_post("/v1/upstreams/{name}/{action}", steer_upstream)
    app.router.add_get("/v1/routes", get_routes)
    app.router.add_put("/v1/routes", put_routes)
    app.router.add_get("/v1/route", explain_route)
    app.router.add_get("/v1/messages/{id}/trace", trace_message)

