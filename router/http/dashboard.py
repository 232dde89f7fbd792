"""The live dashboard: one page served from the package, fed by server-sent events.

``GET /dashboard`` is a static page (``static/dashboard.{html,js,css}``, no build step,
nothing from a CDN); its script asks for the admin token once (kept in the tab's
``sessionStorage``, or taken from the address's ``#token=...`` fragment, which never
reaches a server) and reads ``GET /dashboard/events`` with it, a ``text/event-stream``
of one JSON :class:`Snapshot` a second: binds, throughput per account and per upstream,
queue depths, error and receipt ratios, latency. The page itself holds no data, so it
needs no token by default; the events do (``Authorization: Bearer``: the script uses
``fetch``, which can send the header, where ``EventSource`` cannot). With ``[http]
dashboard_auth = "token"`` the page and its files want the admin token too; a browser
cannot send a Bearer token when it opens an address, so a refusal also offers HTTP Basic
(:data:`BASIC_CHALLENGE`): the browser asks once, the token as the password, and sends it
for the page's files after.

Bounded both ways: at most ``[http] dashboard_clients`` streams at once (one more is
answered 503), and one :class:`Broadcaster` computes each second's snapshot once for
all of them, only while at least one is open. Each stream keeps at most
:data:`CLIENT_BACKLOG` snapshots not yet written: a client that stops reading loses
the oldest, never grows the hub's memory. A stream ends by itself before ``[http]
request_timeout`` (which bounds every request) and the page opens the next one; all
end within a second when the hub stops, so a dashboard never holds up a shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources

import msgspec
import structlog
from aiohttp import web

from ..stats import Histogram, HubStats
from .admin import peer_of
from .auth import require_admin, require_operator
from .errors import ApiError, error_answer
from .metrics import HubReading, read_hub
from .view import HubView

__all__ = ["Broadcaster", "Snapshot", "register", "snapshot"]

log = structlog.get_logger("smpphub.dashboard")

#: seconds between snapshots
INTERVAL = 1.0
#: snapshots waiting to be written to one stream before the oldest is dropped
CLIENT_BACKLOG = 4
#: the files the page is made of, and their types: nothing else is served from the folder
STATIC = {"dashboard.html": "text/html", "dashboard.js": "text/javascript", "dashboard.css": "text/css"}


class AccountRow(msgspec.Struct, kw_only=True):
    name: str
    binds: int
    accepted: int
    accepted_per_s: float
    sent_per_s: float
    rejected: int
    held: int  # messages in memory: queued, waiting, in flight
    pending: int  # receipts and MO waiting for its receiver
    error_ratio: float | None  # refused / (accepted + refused), since start
    receipt_ratio: float | None  # delivered / final, since start


class UpstreamRow(msgspec.Struct, kw_only=True):
    name: str
    mode: str
    available: bool
    binds_up: int
    binds: int
    queued: int
    in_flight: int
    accepted_per_s: float
    error_ratio: float | None  # answers other than ESME_ROK / all answers, since start


class BindRow(msgspec.Struct, kw_only=True):
    account: str
    state: str
    peer: str


class Latency(msgspec.Struct, kw_only=True):
    """Upper bucket bounds (seconds) under which half / 99% of the observations fall; None: none yet."""

    submit_p50: float | None
    submit_p99: float | None
    receipt_p50: float | None
    receipt_p99: float | None


class Snapshot(msgspec.Struct, kw_only=True):
    at: float
    accepted: int
    accepted_per_s: float
    sent_per_s: float
    receipts_per_s: float
    delivered: int
    backlog: int
    accounts: list[AccountRow]
    upstreams: list[UpstreamRow]
    binds: list[BindRow]
    latency: Latency


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _quantile(histogram: Histogram, q: float) -> float | None:
    value = histogram.quantile(q)
    return None if value is None or value == float("inf") else value


def snapshot(hub: HubView, now: HubReading, before: HubReading | None) -> Snapshot:
    """What the page shows: ``now``'s totals, and rates since ``before`` (None: no rates yet)."""
    seconds = max(now.at - before.at, 1e-3) if before is not None else 0.0

    def rate(current: int, previous: int) -> float:
        return round((current - previous) / seconds, 1) if seconds else 0.0

    accounts = []
    for name, a in sorted(now.accounts.items()):
        was = before.accounts.get(name) if before is not None else None
        rejected = sum(a.rejected.values())
        finals = sum(a.finals.values())
        accounts.append(AccountRow(
            name=name, binds=a.binds, accepted=a.accepted, rejected=rejected, held=a.held, pending=a.pending,
            accepted_per_s=rate(a.accepted, was.accepted if was else a.accepted),
            sent_per_s=rate(a.sent, was.sent if was else a.sent),
            error_ratio=_ratio(rejected, a.accepted + rejected),
            receipt_ratio=_ratio(a.finals.get("delivered", 0), finals),
        ))
    upstreams = []
    for name, u in sorted(now.upstreams.items()):
        was_u = before.upstreams.get(name) if before is not None else None
        answered = sum(u.answers.values())
        upstreams.append(UpstreamRow(
            name=name, mode=u.mode, available=u.available, binds_up=u.binds_up, binds=u.binds, queued=u.queued,
            in_flight=u.in_flight, accepted_per_s=rate(u.accepted, was_u.accepted if was_u else u.accepted),
            error_ratio=_ratio(answered - u.accepted, answered),
        ))
    binds = sorted((BindRow(account=c.system_id, state=c.session.state.value, peer=peer_of(c))
                    for c in hub.esme_connections() if c.session.state.is_bound),
                   key=lambda b: (b.account, b.peer))
    stats: HubStats = hub.dispatcher.stats

    def total(reading: HubReading, field: str) -> int:
        return sum(getattr(a, field) for a in reading.accounts.values())

    accepted = total(now, "accepted")
    sent = total(now, "sent")

    return Snapshot(
        at=now.at, accepted=accepted, delivered=now.delivered, backlog=now.backlog,
        accepted_per_s=rate(accepted, total(before, "accepted") if before else accepted),
        sent_per_s=rate(sent, total(before, "sent") if before else sent),
        receipts_per_s=rate(now.receipts_in, before.receipts_in if before else now.receipts_in),
        accounts=accounts, upstreams=upstreams, binds=binds,
        latency=Latency(submit_p50=_quantile(stats.submit_latency, 0.5),
                        submit_p99=_quantile(stats.submit_latency, 0.99),
                        receipt_p50=_quantile(stats.receipt_latency, 0.5),
                        receipt_p99=_quantile(stats.receipt_latency, 0.99)),
    )


class Broadcaster:
    """One snapshot a second, encoded once, offered to every open stream; runs while any is open."""

    def __init__(self, hub: HubView, max_clients: int) -> None:
        self.hub = hub
        self.max_clients = max_clients
        self.clients: set[asyncio.Queue[bytes]] = set()
        self._task: asyncio.Task[None] | None = None
        self._last: HubReading | None = None
        self._latest: bytes | None = None  # the last event, for a stream that joins between two
        self.snapshots = 0  # computed since start (a test counts them against the clients)

    def join(self) -> asyncio.Queue[bytes]:
        """A queue of encoded events for a new stream (503 when ``max_clients`` are open)."""
        if len(self.clients) >= self.max_clients:
            raise ApiError(503, f"{self.max_clients} dashboards are open already ([http] dashboard_clients)",
                           code="too_many_dashboards")
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=CLIENT_BACKLOG)
        self.clients.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        queue.put_nowait(self._latest or self._event())  # something to show now, not in a second
        return queue

    def leave(self, queue: asyncio.Queue[bytes]) -> None:
        self.clients.discard(queue)
        if not self.clients and self._task is not None:
            self._task.cancel()
            self._task = None

    def _event(self) -> bytes:
        reading = read_hub(self.hub)
        event = snapshot(self.hub, reading, self._last)
        self._last = reading
        self.snapshots += 1
        self._latest = b"data: " + msgspec.json.encode(event) + b"\n\n"
        return self._latest

    async def _run(self) -> None:
        while self.clients:
            await asyncio.sleep(INTERVAL)
            if not self.hub.handler.accepting:  # the hub is stopping: end every stream
                for queue in self.clients:
                    if queue.full():
                        queue.get_nowait()
                    queue.put_nowait(END)
                return
            try:
                event = self._event()
            except Exception:  # noqa: BLE001 - a bug here must not end the dashboards for good
                log.exception("dashboard_snapshot_failed")
                continue
            for queue in self.clients:
                if queue.full():
                    queue.get_nowait()  # a slow reader loses its oldest snapshot
                queue.put_nowait(event)


#: what a stream's queue gets when the hub stops
END = b""

BROADCASTER: web.AppKey[Broadcaster] = web.AppKey("smpphub.dashboard", Broadcaster)


def _static(name: str) -> bytes:
    return importlib.resources.files("smpphub.router.http").joinpath("static", name).read_bytes()


#: offered beside ``Bearer`` when the page is refused, so that a browser asks for the token itself
BASIC_CHALLENGE = 'Basic realm="smpphub dashboard", charset="UTF-8"'


async def page(request: web.Request) -> web.StreamResponse:
    try:
        require_operator(request, "dashboard")
    except ApiError as exc:
        answer = error_answer(request, exc)
        if exc.status == 401:
            answer.headers.add("WWW-Authenticate", BASIC_CHALLENGE)
        return answer
    name = request.match_info.get("name", "dashboard.html")
    kind = STATIC.get(name)
    if kind is None:
        raise ApiError(404, f"no file {name!r} in the dashboard", field="name")
    return web.Response(body=_static(name), content_type=kind, charset="utf-8",
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": "default-src 'self'; style-src 'self'; "
                                                            "script-src 'self'; img-src 'self' data:"})


async def events(request: web.Request) -> web.StreamResponse:
    require_admin(request)
    broadcaster = request.app[BROADCASTER]
    queue = broadcaster.join()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    try:
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(loop.time() + request.app[STREAM_SECONDS]):
                while event := await queue.get():
                    await response.write(event)
    finally:
        broadcaster.leave(queue)
    return response


STREAM_SECONDS: web.AppKey[float] = web.AppKey("smpphub.dashboard_stream_seconds", float)


def register(app: web.Application, hub: HubView) -> None:
    http = hub.config.http
    app[BROADCASTER] = Broadcaster(hub, http.dashboard_clients if http is not None else 16)
    # the middleware ends any request at request_timeout: a stream ends itself before, cleanly
    app[STREAM_SECONDS] = max(1.0, (http.request_timeout if http is not None else 60.0) - 5.0)
    app.router.add_get("/dashboard", page)
    app.router.add_get("/dashboard/static/{name}", page)
    app.router.add_get("/dashboard/events", events)

    async def stop_broadcasting(app: web.Application) -> None:
        task = app[BROADCASTER]._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.on_shutdown.append(stop_broadcasting)
