"""The simulator's HTTP port: the record, the control API and the live web page.

Each handler decodes its input into a typed request (msgspec), calls one
:class:`~simulator.control.Control` operation and encodes the answer; nothing is
decided here. Every refusal is JSON naming the field (``{"error": ..., "field": ...}``)
with its status, including aiohttp's own (unknown path 404, wrong method 405, body
too large 413): a client in any language reads one shape of error.

Routes::

    GET  /                                the live page (static files under /static/)
    GET  /messages[?limit=N]              the newest whole messages, with their receipts' state
    GET  /stats                           the counters
    GET  /snapshot                        counters, binds and the newest messages (what the page polls)
    POST /mo                              inject a mobile-originated message
    POST /fail-next                       the next N submits (anyone's) fail with a status
    POST /accounts/{system_id}/fail-next  the next N submits of that account fail
    GET  /settings, PUT|PATCH /settings   latency, throttle, errors, receipts, live
    GET  /binds                           every connection
    POST /binds/{id}/drop | /hang         close one at once, or stop answering it
    POST /reset                           forget what was received
    GET  /wait?to=X&text=REGEX&timeout=S  long-poll until a matching message has arrived
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from .control import (
    Control,
    ControlError,
    FailNextRequest,
    MoRequest,
    SettingsPatch,
    WaitQuery,
    convert,
)

__all__ = ["make_app", "start_http", "MAX_BODY", "MAX_LIMIT"]

T = TypeVar("T")
MAX_BODY = 256 * 1024  # the longest MO text is ~39,000 characters: a JSON body never needs more
MAX_LIMIT = 100_000
MAX_IN_FLIGHT = 256  # requests handled at once (long-polls included); past it: 503
_STATIC = {"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html"}
_encoder = msgspec.json.Encoder()

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encoder.encode(data), status=status, content_type="application/json")


def _decode(body: bytes, type_: type[T]) -> T:
    if not body.strip():
        raise ControlError(400, "the body must be a JSON object", "body")
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ControlError(400, f"not JSON: {exc}", "body") from None
    return convert(data, type_)


def _int_param(value: str, field: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ControlError(400, f"{field} must be an integer", field) from None
    if not low <= number <= high:
        raise ControlError(400, f"{field} must be {low} to {high}", field)
    return number


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ControlError as exc:
        return _json(exc.body(), exc.status)
    except web.HTTPException as exc:  # aiohttp's own refusals, in our shape
        if exc.status < 400:
            raise
        return _json({"error": exc.reason.lower()}, exc.status)


def _bounded(max_in_flight: int) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """A middleware refusing (503) a request past ``max_in_flight`` handled at once."""
    in_flight = 0

    @web.middleware
    async def bound(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal in_flight
        if in_flight >= max_in_flight:
            return _json({"error": f"{in_flight} requests are being handled already (at most {max_in_flight})"}, 503)
        in_flight += 1
        try:
            return await handler(request)
        finally:
            in_flight -= 1

    return bound


def make_app(control: Control, *, max_in_flight: int = MAX_IN_FLIGHT) -> web.Application:
    """The aiohttp application over ``control``."""

    async def index(request: web.Request) -> web.Response:
        return _static_file("index.html")

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _STATIC:
            raise ControlError(404, f"no static file {name!r}", "name")
        return _static_file(name)

    async def messages(request: web.Request) -> web.Response:
        limit = _int_param(request.query.get("limit", "1000"), "limit", 0, MAX_LIMIT)
        views = control.messages(limit)
        return _json({"count": control.sim.stats.messages, "messages": views})

    async def stats(request: web.Request) -> web.Response:
        return _json(control.sim.stats)

    async def snapshot(request: web.Request) -> web.Response:
        limit = _int_param(request.query.get("limit", "50"), "limit", 0, 500)
        return _json(control.snapshot(limit))

    async def mo(request: web.Request) -> web.Response:
        return _json(control.send_mo(_decode(await request.read(), MoRequest)))

    async def fail_next_any(request: web.Request) -> web.Response:
        return _json(control.fail_next(_decode(await request.read(), FailNextRequest)))

    async def fail_next_account(request: web.Request) -> web.Response:
        system_id = request.match_info["system_id"]
        if not 1 <= len(system_id) <= 15:
            raise ControlError(400, "system_id must be 1 to 15 characters", "system_id")
        return _json(control.fail_next(_decode(await request.read(), FailNextRequest), system_id))

    async def get_settings(request: web.Request) -> web.Response:
        return _json(control.settings())

    async def put_settings(request: web.Request) -> web.Response:
        control.update_settings(_decode(await request.read(), SettingsPatch))
        return _json(control.settings())

    async def binds(request: web.Request) -> web.Response:
        return _json({"binds": control.binds()})

    def bind_id(request: web.Request) -> int:
        return _int_param(request.match_info["id"], "id", 1, 2**63)

    async def drop(request: web.Request) -> web.Response:
        return _json({"dropped": control.drop(bind_id(request))})

    async def hang(request: web.Request) -> web.Response:
        return _json({"hung": control.hang(bind_id(request))})

    async def reset(request: web.Request) -> web.Response:
        control.reset()
        return _json({"reset": True})

    async def wait(request: web.Request) -> web.Response:
        query = convert(dict(request.query), WaitQuery, strict=False)  # numbers read from their text
        return _json({"message": await control.wait(query)})

    app = web.Application(middlewares=[_bounded(max_in_flight), _errors], client_max_size=MAX_BODY)
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/messages", messages)
    app.router.add_get("/stats", stats)
    app.router.add_get("/snapshot", snapshot)
    app.router.add_post("/mo", mo)
    app.router.add_post("/fail-next", fail_next_any)
    app.router.add_post("/accounts/{system_id}/fail-next", fail_next_account)
    app.router.add_get("/settings", get_settings)
    app.router.add_put("/settings", put_settings)
    app.router.add_patch("/settings", put_settings)
    app.router.add_get("/binds", binds)
    app.router.add_post("/binds/{id}/drop", drop)
    app.router.add_post("/binds/{id}/hang", hang)
    app.router.add_post("/reset", reset)
    app.router.add_get("/wait", wait)
    return app


def _static_file(name: str) -> web.Response:
    data = importlib.resources.files(__package__).joinpath("web", name).read_bytes()
    return web.Response(body=data, content_type=_STATIC[name], headers={"Cache-Control": "no-cache"})


async def start_http(control: Control, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve the app on ``host:port`` (0: a free port); returns the runner and the port."""
    # a request still running at shutdown gets this long; /wait long-polls are answered at once (Control.close)
    runner = web.AppRunner(make_app(control), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    server = site._server
    assert server is not None
    bound_port: int = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, bound_port
