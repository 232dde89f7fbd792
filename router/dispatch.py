"""Where each accepted message goes next, and what comes back from upstream.

The :class:`Dispatcher` hands jobs to upstream pools along their route, retries
temporary failures (with back-off) and fails over to the route's next upstream
after ``max_attempts`` or at once when an upstream is down; permanent failures and
expired messages become failure receipts. It also takes what upstreams deliver:
receipts are mapped back to the hub's message id and queued for the ESME that
sent the message; MO messages are routed by destination to an account.

Delivery to the SMSC is at least once: a message whose submit_sm was written but
whose response was lost (connection dropped, timeout) is sent again, so the
handset may see it twice; nothing accepted is dropped silently.
"""

from __future__ import annotations

import asyncio
import collections
import time
from datetime import datetime, timezone
from typing import Any

import structlog

import smppcore
from smppcore import CommandStatus, Pdu, decode
from smppcore import MessageState as SmppState
from smppcore.receipt import (
    ReceiptInfo,
    build_receipt,
    is_receipt,
    normalise_message_id,
    receipt_info,
    receipt_info_from_tlvs,
)

from .config import HubConfig
from .delivery import Deliveries, rewrite_receipt
from .msglog import MessageLog
from .routing import MoRouteTable, normalise_destination
from .store import MessageRecord, MessageState, Store
from .upstream import Job, UpstreamPool

__all__ = ["Dispatcher", "TEMPORARY_STATUSES"]

log = structlog.get_logger("smpphub.dispatch")

#: Answers that mean "not now": retry, then fail over. Anything else is permanent.
TEMPORARY_STATUSES = frozenset(
    {
        CommandStatus.ESME_RTHROTTLED,
        CommandStatus.ESME_RMSGQFUL,
        CommandStatus.ESME_RSYSERR,
        CommandStatus.ESME_RX_T_APPN,
        CommandStatus.ESME_RUNKNOWNERR,
        CommandStatus.ESME_RINVBNDSTS,  # the bind is going away under us
        CommandStatus.ESME_RSUBMITFAIL,
    }
)

_RECEIPT_STATE = {
    SmppState.DELIVERED: MessageState.DELIVERED,
    SmppState.EXPIRED: MessageState.EXPIRED,
    SmppState.DELETED: MessageState.CANCELLED,
    SmppState.UNDELIVERABLE: MessageState.FAILED,
    SmppState.REJECTED: MessageState.FAILED,
    SmppState.UNKNOWN: MessageState.FAILED,
}


class Dispatcher:
    def __init__(
        self, config: HubConfig, store: Store, deliveries: Deliveries, msglog: MessageLog | None = None
    ) -> None:
        self.config = config
        self.msglog = msglog or MessageLog.off()
        # read on every step of every message: plain attributes, tested before any log call
        self._trace = self.msglog.trace
        self._msglog_on = self.msglog.on
        self.store = store
        self.deliveries = deliveries
        self.pools: dict[str, UpstreamPool] = {}
        self.parked: collections.deque[Job] = collections.deque()
        self.jobs: dict[str, Job] = {}  # open jobs by hub id (queued, waiting or in flight)
        self.sent_map: collections.OrderedDict[tuple[str, str], MessageRecord] = collections.OrderedDict()
        self.sent_map_limit = 200_000
        self.mo_routes = MoRouteTable(config)
        self.accounts = {a.system_id: a for a in config.accounts}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.counters: collections.Counter[str] = collections.Counter()
        self._tasks: set[asyncio.Task] = set()
        self._expiry_task: asyncio.Task | None = None

    # ---- pools ---------------------------------------------------------------------------

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        for up in self.config.upstreams:
            self.add_pool(up)
        self._expiry_task = self.loop.create_task(self._expire_forever())

    def add_pool(self, cfg) -> UpstreamPool:
        pool = UpstreamPool(cfg, on_result=self.on_result, on_deliver=self.on_deliver, on_up=self.on_pool_up, on_down=self.on_pool_down)
        self.pools[cfg.name] = pool
        pool.start()
        return pool

    async def stop(self, timeout: float = 5.0) -> None:
        if self._expiry_task is not None:
            self._expiry_task.cancel()
        results = await asyncio.gather(*(p.stop(timeout) for p in self.pools.values()), return_exceptions=True)
        for left in results:
            if isinstance(left, list) and left:
                log.info("queued_at_shutdown", messages=len(left), note="in the store; they go out after a restart")
        for job in self.jobs.values():
            if job.timer is not None:
                job.timer.cancel()
        for t in list(self._tasks):
            await asyncio.gather(t, return_exceptions=True)

    def reload(self, config: HubConfig) -> None:
        """New routes/accounts/MO routes take effect; new upstreams start, removed ones drain."""
        self.config = config
        self.mo_routes = MoRouteTable(config)
        self.accounts = {a.system_id: a for a in config.accounts}
        wanted = {u.name: u for u in config.upstreams}
        for name, cfg in wanted.items():
            if name not in self.pools:
                self.add_pool(cfg)
                log.info("upstream_added", upstream=name)
        for name in [n for n in self.pools if n not in wanted]:
            pool = self.pools.pop(name)
            self._spawn(self._retire(pool))

    async def _retire(self, pool: UpstreamPool) -> None:
        left = await pool.stop()
        log.info("upstream_removed", upstream=pool.name)
        for job in left:
            self._next_upstream(job)

    def on_pool_up(self, pool: UpstreamPool) -> None:
        if self.parked:
            parked = list(self.parked)
            self.parked.clear()
            for job in parked:
                job.route_index = 0
                job.attempts_here = 0
                self.dispatch(job)

    def on_pool_down(self, pool: UpstreamPool, jobs: list[Job]) -> None:
        log.warning("upstream_failover", upstream=pool.name, messages=len(jobs), reason="every bind is down")
        for job in jobs:
            self._next_upstream(job)

    # ---- sending ---------------------------------------------------------------------------------

    def dispatch(self, job: Job) -> None:
        """Send ``job`` to the first available upstream of its route from ``route_index`` on."""
        record = job.record
        self.jobs[record.id] = job
        now = time.time()
        if record.expires_at is not None and record.expires_at <= now:
            self._finish(job, MessageState.EXPIRED, SmppState.EXPIRED, 0)
            return
        if record.not_before > now:
            if self._trace and not record.attempts:  # a retry's wait is logged by message_retry
                self.msglog.scheduled(job, record.not_before - now)
            self._wait(job, record.not_before - now)
            return
        route = record.route
        for i in range(job.route_index, len(route)):
            pool = self.pools.get(route[i])
            if pool is not None and pool.available:
                if i != job.route_index:
                    job.route_index = i
                    job.attempts_here = 0
                if self._trace:
                    self.msglog.routed(job, pool.name)
                pool.submit(job)
                return
        if self._trace:
            self.msglog.parked(job)
        self.parked.append(job)  # nothing up on its route: wait for an upstream to come back

    def _wait(self, job: Job, delay: float) -> None:
        if job.timer is not None:
            job.timer.cancel()
        job.timer = self.loop.call_later(delay, self._wake, job)

    def _wake(self, job: Job) -> None:
        job.timer = None
        if job.record.id in self.jobs:
            self.dispatch(job)

    def _next_upstream(self, job: Job) -> None:
        left = job.record.route[job.route_index]
        job.route_index += 1
        job.attempts_here = 0
        delay = None
        if job.route_index >= len(job.record.route):
            job.route_index = 0
            delay = min(self.config.retry_max, self.config.retry_initial * 2 ** min(job.record.attempts, 16))
            job.record.not_before = time.time() + delay
        if self._trace:
            self.msglog.failover(job, left, delay)
        self.dispatch(job)

    def on_result(self, job: Job, pool: UpstreamPool, resp: Pdu | None, exc: BaseException | None) -> None:
        record = job.record
        record.attempts += 1
        if resp is not None and resp.command_status == CommandStatus.ESME_ROK:
            self._sent(job, pool, resp)
            return
        status = resp.command_status if resp is not None else None
        if record.id not in self.jobs:
            return  # cancelled meanwhile
        if status is None or status in TEMPORARY_STATUSES:
            self.counters["temporary_failures"] += 1
            job.attempts_here += 1
            if job.attempts_here < pool.cfg.max_attempts and pool.available:
                delay = min(self.config.retry_max, self.config.retry_initial * 2 ** (job.attempts_here - 1))
                if status == CommandStatus.ESME_RTHROTTLED:
                    delay = min(delay, 1.0)
                record.not_before = time.time() + delay
                if self._trace:
                    error = "" if exc is None else f"{type(exc).__name__}: {exc}"
                    self.msglog.retry(job, pool.name, status, error, delay)
                self.dispatch(job)
            else:
                self._next_upstream(job)
            return
        self.counters["permanent_failures"] += 1
        self._finish(job, MessageState.FAILED, SmppState.UNDELIVERABLE, status)

    def _sent(self, job: Job, pool: UpstreamPool, resp: Pdu) -> None:
        record = job.record
        self.jobs.pop(record.id, None)
        self.counters["sent"] += 1
        upstream_id = getattr(resp, "message_id", "")
        record.state = MessageState.SENT
        record.upstream = pool.name
        record.upstream_id = upstream_id
        self.store.update(record.id, state=MessageState.SENT, upstream=pool.name, upstream_id=upstream_id,
                          attempts=record.attempts, updated_at=time.time())
        if self._msglog_on:
            self.msglog.submitted(job, pool.name, upstream_id)
        if record.registered_delivery & 0x13 and upstream_id:
            key = (pool.name, normalise_message_id(upstream_id, base=_base(pool.cfg, "submit")))
            smap = self.sent_map
            smap[key] = record
            if len(smap) > self.sent_map_limit:
                smap.popitem(last=False)

    def _finish(self, job: Job, state: str, smpp_state: SmppState, error: int) -> None:
        """A final outcome decided by the hub itself: store it and tell the ESME if it asked."""
        record = job.record
        self.jobs.pop(record.id, None)
        if job.timer is not None:
            job.timer.cancel()
            job.timer = None
        record.state = state
        record.error = error
        self.store.update(record.id, state=state, error=error, attempts=record.attempts, updated_at=time.time())
        self.counters[state] += 1
        if self._msglog_on:
            self.msglog.finished(job, state, error)
        rd = record.registered_delivery & 3
        if rd in (1, 2):  # always, or on failure: these are all failures
            self._spawn_receipt(record, smpp_state, error)

    def _spawn_receipt(self, record: MessageRecord, state: SmppState, error: int) -> None:
        pdu = decode(record.pdu)
        receipt = build_receipt(
            message_id=record.id, state=state, source_addr=pdu.source_addr,
            destination_addr=getattr(pdu, "destination_addr", ""),
            source_addr_ton=pdu.source_addr_ton, source_addr_npi=pdu.source_addr_npi,
            dest_addr_ton=getattr(pdu, "dest_addr_ton", 0), dest_addr_npi=getattr(pdu, "dest_addr_npi", 0),
            submit_date=datetime.fromtimestamp(record.created_at, timezone.utc), done_date=datetime.now(timezone.utc),
            err=f"{error & 0xFFF:03d}" if error else "000", text=getattr(pdu, "short_message", b""),
        )
        account = self.accounts.get(record.account)
        hold = account.receipt_hold if account else 3 * 86400.0
        self.deliveries.deliver(record.account, receipt, kind="receipt", hold=hold)

    # ---- what upstreams deliver -------------------------------------------------------------------

    def on_deliver(self, pool: UpstreamPool, pdu: Pdu) -> Any:
        """A deliver_sm/data_sm from an upstream: a receipt or an MO. Returns status or Future of it."""
        if is_receipt(pdu):
            return self._receipt(pool, pdu)
        return self._mo(pool, pdu)

    def _receipt(self, pool: UpstreamPool, pdu: Pdu) -> Any:
        info = receipt_info_from_tlvs(pdu) or receipt_info(pdu)
        if info is None:
            self.counters["receipts_unreadable"] += 1
            log.warning("receipt_unreadable", upstream=pool.name, text=getattr(pdu, "short_message", b"")[:80])
            return 0
        key = (pool.name, normalise_message_id(info.message_id, base=_base(pool.cfg, "receipt")))
        record = self.sent_map.get(key)
        if record is not None:
            return self._receipt_for(record, pdu, info, key, pool.name)
        fut = self.loop.create_future()
        self._spawn(self._receipt_later(pool, pdu, info, key, fut))
        return fut

    async def _receipt_later(self, pool: UpstreamPool, pdu: Pdu, info, key, fut: asyncio.Future) -> None:
        """The id is not in memory: the submit_sm_resp may still be on its way, or we restarted."""
        try:
            record = None
            for delay in (0.0, 0.05, 0.2, 0.5, 1.0):
                if delay:
                    await asyncio.sleep(delay)
                record = self.sent_map.get(key) or await self.store.find_by_upstream_id(pool.name, info.message_id)
                if record is not None:
                    break
            if record is None:
                self.counters["receipts_unmatched"] += 1
                log.warning("receipt_unmatched", upstream=pool.name, upstream_id=info.message_id)
                fut.set_result(0)
                return
            result = self._receipt_for(record, pdu, info, key, pool.name)
            if isinstance(result, asyncio.Future):
                result.add_done_callback(lambda f: fut.done() or fut.set_result(f.result()))
            else:
                fut.set_result(result)
        except Exception:  # noqa: BLE001 - make the SMSC send it again
            log.exception("receipt_failed", upstream=pool.name, upstream_id=info.message_id)
            if not fut.done():
                fut.set_result(CommandStatus.ESME_RSYSERR)

    def _receipt_for(
        self, record: MessageRecord, pdu: Pdu, info: ReceiptInfo, key: tuple[str, str], upstream: str
    ) -> Any:
        self.counters["receipts_in"] += 1
        intermediate = (pdu.esm_class & 0x3C) == 0x20 or not info.state.is_final
        rd = record.registered_delivery
        if not intermediate:
            state = _RECEIPT_STATE.get(info.state, MessageState.FAILED)
            record.state = state
            self.store.update(record.id, state=state, updated_at=time.time(), error=_err(info))
            self.sent_map.pop(key, None)
            wanted = (rd & 3) == 1 or ((rd & 3) == 2 and state != MessageState.DELIVERED) or ((rd & 3) == 3 and state == MessageState.DELIVERED)
        else:
            wanted = bool(rd & 0x10)
        if self._msglog_on:
            # the id as submit_sm_resp gave it (the receipt may write it in another base)
            self.msglog.receipt(record.id, record.account, upstream, record.upstream_id or info.message_id, pdu,
                                info.state.name, not intermediate, wanted)
        if not wanted:
            return 0
        account = self.accounts.get(record.account)
        hold = account.receipt_hold if account else 3 * 86400.0
        return self.deliveries.deliver(record.account, rewrite_receipt(pdu, record.id), kind="receipt", hold=hold)

    def _mo(self, pool: UpstreamPool, pdu: Pdu) -> Any:
        dest = normalise_destination(pdu.destination_addr, pdu.dest_addr_ton if hasattr(pdu, "dest_addr_ton") else 0)
        route = self.mo_routes.lookup(dest)
        if route is None:
            self.counters["mo_unroutable"] += 1
            log.warning("mo_unroutable", upstream=pool.name, source=pdu.source_addr, dest=pdu.destination_addr)
            if self._msglog_on:
                self.msglog.mo(pool.name, pdu, None, None, CommandStatus.ESME_RINVDSTADR)
            return CommandStatus.ESME_RINVDSTADR
        self.counters["mo_in"] += 1
        if self._msglog_on:
            self.msglog.mo(pool.name, pdu, route.account, route.webhook, 0)
        if route.webhook:
            fut = self.loop.create_future()
            self._spawn(self._post_webhook(route.webhook, pdu, fut))
            return fut
        account = self.accounts.get(route.account)
        hold = account.receipt_hold if account else 3 * 86400.0
        return self.deliveries.deliver(route.account, pdu, kind="mo", hold=hold)

    async def _post_webhook(self, url: str, pdu: Pdu, fut: asyncio.Future) -> None:
        import aiohttp

        from smppcore.text import decode_text

        body = {
            "source_addr": pdu.source_addr,
            "destination_addr": pdu.destination_addr,
            "data_coding": pdu.data_coding,
            "text": decode_text(getattr(pdu, "short_message", b"") or pdu.tlvs.get(smppcore.Tag.MESSAGE_PAYLOAD, b""), pdu.data_coding),
            "esm_class": pdu.esm_class,
        }
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                async with http.post(url, json=body) as resp:
                    ok = 200 <= resp.status < 300
        except Exception as exc:  # noqa: BLE001 - the SMSC will retry
            log.warning("mo_webhook_failed", webhook=url, error=f"{type(exc).__name__}: {exc}")
            ok = False
        if self._trace:
            self.msglog.mo_webhook(pdu, url, ok)
        fut.set_result(0 if ok else CommandStatus.ESME_RX_T_APPN)

    # ---- expiry ------------------------------------------------------------------------------

    async def _expire_forever(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            self.expire_parked()

    def expire_parked(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        keep = collections.deque()
        for job in self.parked:
            if job.record.expires_at is not None and job.record.expires_at <= now:
                self._finish(job, MessageState.EXPIRED, SmppState.EXPIRED, 0)
            else:
                keep.append(job)
        self.parked = keep

    def cancel(self, record_id: str) -> bool:
        """Cancel a message that has not gone upstream yet (cancel_sm)."""
        job = self.jobs.get(record_id)
        if job is None:
            return False
        for pool in self.pools.values():
            if job in pool.queue:
                pool.queue.remove(job)
                break
        else:
            if job not in self.parked and job.timer is None:
                return False  # in flight right now
        if job in self.parked:
            self.parked.remove(job)
        self._finish(job, MessageState.CANCELLED, SmppState.DELETED, 0)
        return True

    def _spawn(self, coro) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _base(cfg, which: str) -> int | None:
    value = getattr(cfg, f"{which}_id_base", 0)
    return value or None


def _err(info) -> int:
    try:
        return int(info.err, 0) if isinstance(info.err, str) else int(info.err)
    except ValueError:
        return 0
