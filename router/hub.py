"""The hub: listeners for ESMEs, upstream pools, the store, tied together.

``Hub.start()`` opens the store, recovers what a previous run left unfinished
(messages not yet final are dispatched again; receipts and MO not yet
acknowledged are queued again), connects the upstreams and opens the listeners.
``Hub.stop()`` is the graceful drain: stop listening and accepting, answer what
is in the commit queue, let in-flight upstream submits finish, unbind everyone,
flush the store. ``Hub.reload(config)`` applies a new configuration without
dropping binds or messages.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING

import msgspec
import structlog

import smppcore
from smppcore import SessionConfig, State
from smppcore.server import SmscConnection

from .acceptor import Acceptor
from .config import HubConfig, server_tls_context
from .delivery import Deliveries
from .dispatch import Dispatcher
from .esme import EsmeHandler
from .lifecycle import State as MessageState
from .msglog import MessageLog
from .routing import RouteTable
from .stats import HubStats
from .store import Store

if TYPE_CHECKING:  # aiohttp is imported only by a hub that has an [http] section
    from .http.server import HttpServer
    from .http.webhooks import WebhookSender

__all__ = ["Hub", "ListenError", "open_store"]

log = structlog.get_logger("smpphub.hub")


class ListenError(OSError):
    """A listener could not be bound; ``strerror`` names the listener, its address and why."""


def open_store(config: HubConfig) -> Store:
    if config.store.backend == "memory":
        from .store.memory import MemoryStore

        return MemoryStore()
    from .store.sqlite import SqliteStore

    return SqliteStore(config.store.path, synchronous=config.store.synchronous)


class Hub:
    def __init__(self, config: HubConfig, *, store: Store | None = None) -> None:
        self.config = config
        self.store = store or open_store(config)
        self.servers: list[smppcore.Server] = []
        self.started_at = 0.0
        # [log] level and access_log, fixed for this hub's life; the access file opens at its first line
        self.msglog = MessageLog(config.log)
        self.stats = HubStats()  # counts for metrics and the dashboard (router/stats.py)
        self._summary_task: asyncio.Task[None] | None = None
        self.http: HttpServer | None = None  # the [http] listener, once started
        self.webhooks: WebhookSender | None = None  # receipts and MO by HTTP, once started

    # ---- wiring -----------------------------------------------------------------------------

    def esme_connections(self) -> list[smppcore.SmscConnection]:
        return [c for s in self.servers for c in s.connections]

    # the Binds and Receivers interfaces (router.esme, router.delivery)

    def receiver_bound(self, conn: SmscConnection) -> None:
        self._receivers.setdefault(conn.system_id, []).append(conn)
        self.deliveries.bound(conn.system_id)

    def receiver_gone(self, conn: SmscConnection) -> None:
        receivers = self._receivers.get(conn.system_id)
        if receivers and conn in receivers:
            receivers.remove(conn)

    def receivers(self, account: str) -> list[SmscConnection]:
        return self._receivers.get(account, [])

    async def start(self) -> None:
        """Bind the listeners, open the store, recover, connect upstreams, then accept ESMEs.

        The listeners are bound first but accept nothing until the end: a port already
        taken or a TLS certificate that does not load fails the start before the store
        file exists, so a failed start leaves nothing on disk. The other way out, removing
        the store (and its -wal/-shm) after a failure, would have to guess which files this
        start created, and could delete a database another process created meanwhile;
        binding first never deletes anything. Whatever fails later is undone here: the
        listeners are closed and the store closed again.
        """
        self.started_at = time.time()
        self._receivers: dict[str, list[SmscConnection]] = {}  # bound rx/trx connections by account
        self.deliveries = Deliveries(self.store, self, msglog=self.msglog)
        self.deliveries.holds = {a.system_id: a.receipt_hold for a in self.config.accounts}
        self.dispatcher = Dispatcher(self.config, self.store, self.deliveries, self.msglog, stats=self.stats)
        self.acceptor = Acceptor(self.store, self.dispatcher, self.msglog)
        self.routes = RouteTable.build(self.config)
        self.handler = EsmeHandler(self.config, self.store, self.acceptor, self.routes, self)
        await self._bind_listeners()
        await self._bind_http()
        store_open = False
        try:
            await self.store.open()
            store_open = True
            await self._start_webhooks()
            await self.deliveries.start()
            # every open message waits in the store; the dispatcher takes them back as it has room
            recovered = await self.store.spill_open()
            self.dispatcher.start(recovered)
            for server, lst in zip(self.servers, self.config.listeners, strict=True):
                server.start_serving()
                log.info("listening", host=server.host, port=server.port, tls=lst.tls_cert is not None)
            if self.http is not None:
                await self.http.start_serving()
        except BaseException:
            await self._undo_start(store_open)
            raise
        self._housekeeping = asyncio.get_running_loop().create_task(self._purge_forever())
        self._start_summary()
        log.info("hub_started", upstreams=len(self.config.upstreams), routes=len(self.routes), recovered=recovered,
                 deliveries_pending=self.deliveries.pending())

    async def _bind_listeners(self) -> None:
        """Every listener's socket bound, none accepting yet (see :meth:`start`); all or none."""
        try:
            for i, lst in enumerate(self.config.listeners):
                ctx = None
                if lst.tls_cert:
                    ctx = server_tls_context(lst.tls_cert, lst.tls_key)
                session = SessionConfig(
                    window=100, bind_timeout=lst.bind_timeout, enquire_link_interval=lst.enquire_link_interval,
                    max_pdu_size=lst.max_pdu_size, max_unanswered=lst.max_unanswered,
                )
                try:
                    server = await smppcore.serve(self.handler, lst.host, lst.port, ssl=ctx, config=session,
                                                  max_connections=lst.max_connections,
                                                  max_connections_per_ip=lst.max_connections_per_ip,
                                                  max_unbound=lst.max_unbound, start_serving=False)
                except OSError as exc:
                    # asyncio words it "error while attempting to bind on address (...): ..."; the errno says it all
                    reason = (os.strerror(exc.errno) if exc.errno and exc.errno > 0
                              else exc.strerror or str(exc)).lower()
                    where = f"{lst.host}:{lst.port} (listeners[{i}])"
                    raise ListenError(exc.errno, f"cannot listen on {where}: {reason}") from exc
                self.servers.append(server)
        except BaseException:
            await self._close_listeners()
            raise

    async def _start_webhooks(self) -> None:
        """Receipts and MO for applications go by HTTP webhook (router.http.webhooks) when the hub
        has an HTTP API, an account names a webhook_url or an MO route a webhook; else nothing of it is loaded."""
        if (self.config.http is None and not any(a.webhook_url for a in self.config.accounts)
                and not any(m.webhook for m in self.config.mo_routes)):
            return
        from .http.webhooks import WebhookSender

        self.webhooks = WebhookSender(self.config, self.store)
        await self.webhooks.start()
        self.deliveries.webhooks = self.webhooks
        self.dispatcher.submit_listener = self.webhooks

    async def _bind_http(self) -> None:
        """The ``[http]`` listener's socket bound, not serving yet (see :meth:`start`)."""
        if self.config.http is None:
            return
        from .http.server import HttpServer

        self.http = HttpServer(self.config.http, self)
        try:
            await self.http.bind()
        except OSError as exc:
            self.http = None
            await self._close_listeners()
            reason = (os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or str(exc)).lower()
            raise ListenError(exc.errno, f"cannot listen on {self.config.http.listen} (http.listen): {reason}") from exc

    async def _close_listeners(self) -> None:
        servers, self.servers = self.servers, []
        await asyncio.gather(*(s.close(timeout=1.0) for s in servers), return_exceptions=True)
        http, self.http = self.http, None
        if http is not None:
            await http.close(1.0)

    async def _undo_start(self, store_open: bool) -> None:
        """A start that failed half-way: nothing it started keeps running."""
        await self._close_listeners()
        if self.dispatcher.loop is not None:
            await self.dispatcher.stop(1.0)
        if self.webhooks is not None:  # first: an answer it gets settles a delivery, which must still be running
            await self.webhooks.stop()
        await self.deliveries.stop()
        if store_open:
            await self.store.close()

    #: seconds between housekeeping rounds (a class attribute so a test can make it short)
    housekeeping_interval = 60.0
    #: messages per purge transaction of the size cap, and free pages returned per request:
    #: each is its own request to the store's writer, so other work runs in between
    purge_chunk = 2000
    vacuum_pages = 1024

    async def _purge_forever(self) -> None:
        """Forget finished messages older than ``store.keep_final``, then as many more as ``store.max_size_mb`` asks.

        Then give the pages freed back to the file system, ``vacuum_pages`` per store
        request so the writer is never held long. Past the size cap only finished
        messages with no receipt owed go, oldest first; crossing the cap and getting
        back under it are logged once each (``store_over_size_cap``,
        ``store_under_size_cap``), not every round.
        """
        over_cap = False
        while True:
            await asyncio.sleep(self.housekeeping_interval)
            try:
                over_cap = await self._housekeep(over_cap)
            except Exception as exc:  # noqa: BLE001 - housekeeping must not take the hub down
                log.warning("purge_failed", error=str(exc))

    async def _housekeep(self, over_cap: bool) -> bool:
        """One round of :meth:`_purge_forever`; whether the store is over its cap after it."""
        purged = await self.store.purge(time.time() - self.config.store.keep_final)
        if purged:
            log.info("purged", messages=purged)
        cap = int(self.config.store.max_size_mb * 1_000_000)
        if cap:
            by_size, over_cap = await self._keep_under_cap(cap, over_cap)
            purged += by_size
        if purged:
            await self._give_back_pages()
        return over_cap

    async def _keep_under_cap(self, cap: int, over_cap: bool) -> tuple[int, bool]:
        """Purge the oldest finished messages while the store is over ``cap`` bytes; (how many, still over)."""
        store = self.store
        size = await store.disk_usage()
        if size > cap and not over_cap:
            over_cap = True
            log.warning("store_over_size_cap", size_mb=round(size / 1e6, 1), max_size_mb=self.config.store.max_size_mb)
        by_size = 0
        while size > cap:
            n = await store.purge_oldest(self.purge_chunk)
            if not n:  # nothing left to give up: open messages and receipts owed stay
                break
            by_size += n
            await self._give_back_pages()
            size = await store.disk_usage()
        if by_size:
            log.info("purged_for_size", messages=by_size, size_mb=round(size / 1e6, 1))
        if over_cap and size <= cap:
            over_cap = False
            log.info("store_under_size_cap", size_mb=round(size / 1e6, 1), max_size_mb=self.config.store.max_size_mb)
        return by_size, over_cap

    async def _give_back_pages(self) -> None:
        """Freed pages back to the file system, ``vacuum_pages`` per store request."""
        while await self.store.vacuum(self.vacuum_pages):
            pass

    # ---- the periodic summary -------------------------------------------------------------------

    def _start_summary(self) -> None:
        interval = self.config.log.summary_interval
        if interval > 0:
            self._summary_task = asyncio.get_running_loop().create_task(self._summarise_forever(interval))

    async def _summarise_forever(self, interval: float) -> None:
        """A ``hub_summary`` line every ``interval`` seconds: what an operator glances at."""
        loop = asyncio.get_running_loop()
        since, since_at = self.traffic(), loop.time()
        while True:
            await asyncio.sleep(interval)
            now, now_at = self.traffic(), loop.time()
            log.info("hub_summary", **self.summary(since, now, now_at - since_at))
            since, since_at = now, now_at

    def summary(self, since: Traffic, now: Traffic, seconds: float) -> dict[str, object]:
        """The keys of one ``hub_summary`` line: rates between two :meth:`traffic` readings
        ``seconds`` apart, and the queues, binds and upstreams as they are now."""
        per_s = max(seconds, 1e-9)
        held = self.dispatcher.table.counts()
        return {
            "seconds": round(seconds, 3),
            "accepted_per_s": round((now.accepted - since.accepted) / per_s, 1),
            "sent_per_s": round((now.sent - since.sent) / per_s, 1),
            "receipts_per_s": round((now.receipts_in - since.receipts_in) / per_s, 1),
            "mo_per_s": round((now.mo_in - since.mo_in) / per_s, 1),
            "delivered_per_s": round((now.delivered - since.delivered) / per_s, 1),
            "queued": held.get(MessageState.QUEUED.value, 0),  # waiting for an upstream's window or rate
            "in_flight": held.get(MessageState.IN_FLIGHT.value, 0),  # submitted upstream, answer not back yet
            "parked": held.get(MessageState.PARKED.value, 0),  # no upstream of their route is up
            "waiting": held.get(MessageState.SCHEDULED.value, 0),  # for a retry or a scheduled time
            "backlog": self.dispatcher.backlog.size,  # waiting in the store only (memory full, or due later)
            "receipts_held": self.deliveries.pending(),  # receipts and MO not yet acknowledged by an ESME
            "binds": self.binds_by_account(),
            "upstreams_up": sorted(n for n, p in self.dispatcher.pools.items() if p.available),
            "upstreams_down": sorted(n for n, p in self.dispatcher.pools.items() if not p.available),
        }

    def binds_by_account(self) -> dict[str, int]:
        """Bound ESME connections per account."""
        binds: dict[str, int] = {}
        for conn in self.esme_connections():
            if conn.session.state.is_bound:
                binds[conn.system_id] = binds.get(conn.system_id, 0) + 1
        return binds

    # ---- reload and stop -------------------------------------------------------------------------

    def reload(self, config: HubConfig) -> None:
        """Routes, accounts, MO routes and upstreams from ``config``; listeners stay as they are."""
        self.config = config
        self.routes = RouteTable.build(config)
        self.handler.configure(config, self.routes)
        self.deliveries.holds = {a.system_id: a.receipt_hold for a in config.accounts}
        if self.webhooks is not None:
            self.webhooks.configure(config)
        elif any(a.webhook_url for a in config.accounts) or any(m.webhook for m in config.mo_routes):
            # the sender starts with the hub (an async start a reload has no room for): until then they wait stored
            log.warning("webhooks_start_at_restart", note="webhooks added by a reload are sent after the next start")
        self.dispatcher.reload(config)
        log.info("config_reloaded", routes=len(self.routes), accounts=len(config.accounts),
                 upstreams=len(config.upstreams))

    async def stop(self, timeout: float | None = None) -> None:
        """Graceful drain (see the module docstring), ``timeout`` seconds in all (default: the
        config's ``drain_timeout``): every wait on the way shares one deadline, so upstreams and
        ESMEs that vanish at the same moment cannot hold the exit."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.config.drain_timeout if timeout is None else timeout)

        def left() -> float:
            return max(0.1, deadline - loop.time())

        log.info("hub_stopping")
        self._housekeeping.cancel()
        if self._summary_task is not None:
            self._summary_task.cancel()
            await asyncio.gather(self._summary_task, return_exceptions=True)
            self._summary_task = None
        self.handler.accepting = False
        if self.http is not None:
            self.http.stop_accepting()
        for server in self.servers:
            server.stop_accepting()
        await self.acceptor.drain()
        if self.http is not None:  # requests in progress were answered by the drain above
            await self.http.close(min(left(), 5.0))
        await asyncio.gather(*(s.close(timeout=min(left(), 5.0)) for s in self.servers), return_exceptions=True)
        await self.dispatcher.stop(left())
        if self.webhooks is not None:  # first: an answer it gets settles a delivery, which must still be running
            await self.webhooks.stop()
        await self.deliveries.stop()
        await self.store.close()
        self.msglog.close()
        log.info("hub_stopped")

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until every upstream has at least one bind up (raises TimeoutError)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not all(p.available for p in self.dispatcher.pools.values()):
            if loop.time() > deadline:
                down = [n for n, p in self.dispatcher.pools.items() if not p.available]
                raise TimeoutError(f"upstreams not bound: {', '.join(down)}")
            await asyncio.sleep(0.01)

    # ---- status ------------------------------------------------------------------------------------

    def status(self) -> dict[str, object]:
        return {
            "uptime": time.time() - self.started_at,
            "esme_binds": sum(1 for c in self.esme_connections() if c.session.state is not State.OPEN),
            "accepted": self.acceptor.accepted,
            "commits": self.acceptor.commits,
            "upstreams": {
                name: {"available": p.available, "queued": len(p.queue), "in_flight": p.in_flight, "sent": p.sent}
                for name, p in self.dispatcher.pools.items()
            },
            "parked": len(self.dispatcher.parked),
            "held": len(self.dispatcher.table),  # messages in memory (queued, waiting, in flight)
            "backlog": self.dispatcher.backlog.size,  # messages waiting in the store only
            "messages_held": self.dispatcher.table.counts(),
            "receipts_unmatched": [r.as_dict() for r in self.dispatcher.unmatched],
            "deliveries_pending": self.deliveries.pending(),
            "delivered": self.deliveries.delivered,
            "binds": self.binds_by_account(),
            "counters": self.stats.totals(),
        }

    def traffic(self) -> Traffic:
        """Running totals since start, for a live display (``smpphub demo``'s traffic line)
        that should not pick through :meth:`status`'s dict or the hub's parts."""
        stats = self.stats
        return Traffic(
            accepted=self.acceptor.accepted,
            sent=stats.sent_total(),
            receipts_in=stats.receipts_in,
            delivered=self.deliveries.delivered,
            mo_in=stats.mo_in,
            esme_binds=sum(1 for c in self.esme_connections() if c.session.state is not State.OPEN),
        )


class Traffic(msgspec.Struct, frozen=True, kw_only=True):
    """What :meth:`Hub.traffic` counts, each a total since the hub started."""

    accepted: int  # messages (segments) stored and answered with a message_id
    sent: int  # segments an upstream SMSC accepted
    receipts_in: int  # receipts from upstreams matched to a hub message
    delivered: int  # receipts and MO handed to ESMEs and acknowledged (or given up on)
    mo_in: int  # MO messages from upstreams routed to an account
    esme_binds: int  # ESME connections bound now (not a total)


logging.getLogger("smpphub").addHandler(logging.NullHandler())
