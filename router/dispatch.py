"""Carries events between the message lifecycle and the world: upstream pools, store, ESMEs.

:mod:`router.lifecycle` decides everything about a message (when it may leave, which
upstream takes it, retries, back-off, failover, expiry, the receipt owed); this
module only turns what happens on the wire into its events and acts on the states
that come out:

==============  ===================================================================
state           what the dispatcher does
==============  ===================================================================
QUEUED          hands it to the pool of ``row.target`` (or reports that upstream down)
PARKED          keeps it until an upstream of its route comes up
SCHEDULED       nothing: the table's timer wakes it
IN_FLIGHT       nothing: the pool answers
SENT            forgets it, except for matching its receipt (bounded; else the store)
final           writes it; a receipt owed goes to the ESME's outbox
==============  ===================================================================

Upstream receipts are matched to their message (memory first, then the store),
turned into the lifecycle's Receipt / Intermediate events, and the receipt owed to
the ESME is written into the message's row durably before the upstream gets its
deliver_sm_resp. MO messages are routed by destination to an account or a webhook.

Delivery upstream is at least once: a message whose submit_sm was written but whose
answer never came (connection lost, timeout, hub restart) is written again.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from functools import partial

import structlog

import smppcore
from smppcore import CommandStatus, Pdu, encode
from smppcore.constants import EsmClass
from smppcore.pdus import DataSm, DeliverSm, SubmitSm
from smppcore.receipt import (
    ReceiptInfo,
    build_receipt,
    is_receipt,
    normalise_message_id,
    receipt_info,
    receipt_info_from_tlvs,
    receipts_requested,
)

from .backlog import Backlog
from .config import HubConfig, Upstream
from .delivery import Deliveries, rewrite_receipt
from .lifecycle import (
    WAITING_STATES,
    Cancel,
    Event,
    Expire,
    Intermediate,
    InvalidTransition,
    MessageRow,
    Receipt,
    Replace,
    Restarted,
    RetryPolicy,
    State,
    SubmitOk,
    SubmitPermanent,
    SubmitTemporary,
    Taken,
    Transition,
    UpstreamDown,
    UpstreamUp,
    accept,
    apply,
    smpp_state,
)
from .messages import Change, MessageTable
from .msglog import MessageLog
from .routing import MoRouteTable, normalise_destination
from .store import Store
from .upstream import Outgoing, UpstreamPool, stored_submit

__all__ = ["Dispatcher", "TEMPORARY_STATUSES", "retry_policy"]

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

#: How long a receipt whose message is not known yet is looked for again: the
#: submit_sm_resp that names the upstream's id may still be on its way.
RECEIPT_LOOKUP_DELAYS = (0.0, 0.05, 0.2, 0.5, 1.0)
#: Receipts nobody could be found for, kept for an operator (hub status), newest last.
UNMATCHED_KEPT = 1000


def retry_policy(config: HubConfig) -> RetryPolicy:
    """The lifecycle's retry rules from hub.toml."""
    return RetryPolicy(
        initial=config.retry_initial,
        maximum=config.retry_max,
        attempts_per_upstream={u.name: u.max_attempts for u in config.upstreams},
        pinned_attempts=config.pinned_attempts,
    )


class UnmatchedReceipt:
    """A receipt the hub acknowledged but could match to no message (kept for the operator)."""

    __slots__ = ("upstream", "message_id", "state", "received_at", "text")

    def __init__(self, upstream: str, message_id: str, state: str, received_at: float, text: str) -> None:
        self.upstream = upstream
        self.message_id = message_id
        self.state = state
        self.received_at = received_at
        self.text = text

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__slots__}


class OwedReceipt:
    """A receipt for the ESME waiting for its row's durable write; ``done`` answers the upstream."""

    __slots__ = ("row", "receipt", "done")

    def __init__(self, row: MessageRow, receipt: Pdu, done: asyncio.Future[int]) -> None:
        self.row = row
        self.receipt = receipt
        self.done = done


class Dispatcher:
    """The adapter between :class:`MessageTable` and pools, store and deliveries."""

    def __init__(self, config: HubConfig, store: Store, deliveries: Deliveries, msglog: MessageLog | None = None,
                 *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.store = store
        self.deliveries = deliveries
        self.msglog = msglog or MessageLog.off()
        self._trace = self.msglog.trace
        self._msglog_on = self.msglog.on
        self.clock = clock
        self.table = MessageTable(retry_policy(config))
        self.backlog = Backlog(store, self, max_held=config.max_held, horizon=config.hold_horizon, clock=clock)
        self.outgoing: dict[str, Outgoing] = {}  # rows in the table that have not been accepted upstream
        self.parked: dict[str, MessageRow] = {}
        # SENT rows waiting for a receipt, by (upstream, normalised upstream id); oldest dropped past the limit
        self.awaiting_receipt: collections.OrderedDict[tuple[str, str], MessageRow] = collections.OrderedDict()
        self.awaiting_limit = config.max_awaiting_receipt
        self.unmatched: collections.deque[UnmatchedReceipt] = collections.deque(maxlen=UNMATCHED_KEPT)
        self.pools: dict[str, UpstreamPool] = {}
        self.mo_routes = MoRouteTable(config)
        self.accounts = {a.system_id: a for a in config.accounts}
        self.counters: collections.Counter[str] = collections.Counter()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._write_scheduled = False
        self._receipts_to_save: list[OwedReceipt] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- pools ------------------------------------------------------------------------

    def start(self, spilled_at_start: int = 0) -> None:
        """Connect the upstreams; ``spilled_at_start`` open messages wait in the store (a restart)."""
        self.loop = asyncio.get_running_loop()
        for up in self.config.upstreams:
            self.add_pool(up)
        self.backlog.start(spilled_at_start)

    def add_pool(self, cfg: Upstream) -> UpstreamPool:
        pool = UpstreamPool(cfg, self)
        self.pools[cfg.name] = pool
        pool.start()
        return pool

    async def stop(self, timeout: float = 5.0) -> None:
        await self.backlog.stop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        results = await asyncio.gather(*(p.stop(timeout) for p in self.pools.values()), return_exceptions=True)
        left = sum(len(r) for r in results if isinstance(r, list))
        if left:
            log.info("queued_at_shutdown", messages=left, note="in the store; they go out after a restart")
        self._write_now()
        for task in list(self._tasks):
            await asyncio.gather(task, return_exceptions=True)

    def reload(self, config: HubConfig) -> None:
        """New routes/accounts/MO routes take effect; new upstreams start, removed ones drain."""
        self.config = config
        self.table.policy = retry_policy(config)
        self.mo_routes = MoRouteTable(config)
        self.accounts = {a.system_id: a for a in config.accounts}
        wanted = {u.name: u for u in config.upstreams}
        for name, cfg in wanted.items():
            if name not in self.pools:
                self.add_pool(cfg)
                log.info("upstream_added", upstream=name)
        for name in [n for n in self.pools if n not in wanted]:
            self._spawn(self._retire(self.pools.pop(name)))

    async def _retire(self, pool: UpstreamPool) -> None:
        left = await pool.stop()
        log.info("upstream_removed", upstream=pool.name)
        self.pool_down(pool, left)

    # ---- messages in ----------------------------------------------------------------------

    def accept(self, out: Outgoing) -> None:
        """A message the store holds durably and the ESME was answered for: on its way.

        When the dispatcher holds its limit already, or the message is due only later
        than the hold horizon, it waits in the store instead (see :mod:`router.backlog`).
        """
        row = out.row
        backlog = self.backlog
        if backlog.full() or backlog.too_far(row.due):
            if accept(row, self.clock()).after is not State.QUEUED:
                self.store.save([row])  # SCHEDULED: the row as inserted said QUEUED
            backlog.spill([row.id])
            return
        self.outgoing[row.id] = out
        self._act([self.table.accept(row, self.clock())])

    # the Holder interface (router.backlog)

    def held(self) -> int:
        return len(self.table)

    def take_back(self, rows: list[MessageRow]) -> None:
        """Spilled messages the store handed back (at a restart: every open one, in turn)."""
        now = self.clock()
        changes: list[Change] = []
        for row in rows:
            if row.id in self.table:
                continue  # held already (spilled and taken back twice after a store error)
            self.outgoing[row.id] = Outgoing(row, stored_submit(row))
            self.table.hold(row)
            if row.state is State.IN_FLIGHT:  # written before a restart, answer unknown: again
                changes.extend(self.table.apply(row, Restarted(), now))
            elif row.state is State.PARKED:
                if any(pool.available for name in row.route if (pool := self.pools.get(name)) is not None):
                    changes.extend(self.table.apply(row, UpstreamUp(), now))
                else:
                    self.parked[row.id] = row
            elif row.state is State.QUEUED:
                changes.append(Change(row, Transition(State.QUEUED, State.QUEUED)))
        self._act(changes)

    # ---- acting on what the lifecycle decided --------------------------------------------------

    def _event(self, row: MessageRow, event: Event) -> None:
        self._act(self.table.apply(row, event, self.clock()))

    def _act(self, changes: list[Change]) -> None:
        for change in changes:
            row, after = change.row, change.transition.after
            if change.transition.before is State.PARKED and after is not State.PARKED:
                self.parked.pop(row.id, None)
            if self._msglog_on:
                self.msglog.moved(self.outgoing.get(row.id), row, change.transition, self.clock())
            if after is State.QUEUED:
                self._hand_over(row)
            elif after is State.PARKED:
                self.parked[row.id] = row
            elif after is State.SENT:
                self._sent(row)
            elif after.is_final and change.transition.became_final:
                self._finished(row)
            elif after is State.SCHEDULED and self.backlog.too_far(row.due):
                self._spill(row)  # a long back-off or a replace_sm that moved it far: wait in the store
        self._write()
        self._arm()
        self.backlog.refill()

    def _spill(self, row: MessageRow) -> None:
        self.outgoing.pop(row.id, None)
        self.table.release(row.id)
        self.backlog.spill([row.id])

    def _hand_over(self, row: MessageRow) -> None:
        pool = self.pools.get(row.target)
        if pool is None or not pool.available:
            self._event(row, UpstreamDown())
            return
        pool.submit(self.outgoing[row.id])

    def _sent(self, row: MessageRow) -> None:
        self.counters["sent"] += 1
        self.outgoing.pop(row.id, None)
        self.table.release(row.id)
        pool = self.pools.get(row.upstream or "")
        if row.upstream_id and pool is not None and receipts_requested(row.registered_delivery):
            key = (pool.name, normalise_message_id(row.upstream_id, base=pool.cfg.submit_id_base or None))
            waiting = self.awaiting_receipt
            waiting[key] = row
            if len(waiting) > self.awaiting_limit:
                waiting.popitem(last=False)  # its receipt will find it in the store

    def _finished(self, row: MessageRow) -> None:
        """A final outcome the hub decided itself (expired, rejected, cancelled)."""
        self.counters[row.state.value] += 1
        self.outgoing.pop(row.id, None)
        self.table.release(row.id)
        if row.receipt_owed:
            receipt = self._hub_receipt(row)
            row.receipt = encode(receipt)
            self.deliveries.deliver_receipt(row, receipt)

    def _write(self) -> None:
        """Write what changed, once per turn of the loop (the changes of many events in one save)."""
        if not self._write_scheduled and self.loop is not None:
            self._write_scheduled = True
            self.loop.call_soon(self._write_now)

    def _write_now(self) -> None:
        self._write_scheduled = False
        rows = self.table.take_changed()
        if rows:
            self.store.save(rows)

    # ---- time -------------------------------------------------------------------------------

    def _arm(self) -> None:
        when = self.table.next_timer()
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None and self.loop is not None:
            self._timer = self.loop.call_later(max(0.0, when - self.clock()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        self._act(self.table.tick(self.clock()))

    # ---- what pools report (the UpstreamEvents interface) -----------------------------------------

    def still_for(self, out: Outgoing, pool: UpstreamPool) -> bool:
        """False when ``out`` was cancelled, expired or failed over while it waited in ``pool``'s queue.

        A queued message's validity is checked here, when its turn comes (it has no timer
        of its own: see :meth:`MessageRow.next_timer`); one past it expires now.
        """
        row = out.row
        if row.state is not State.QUEUED or row.target != pool.name or self.outgoing.get(row.id) is not out:
            return False
        now = self.clock()
        if row.expired(now):
            self._act(self.table.apply(row, Expire(), now))
            return False
        return True

    def taken(self, out: Outgoing, pool: UpstreamPool) -> None:
        self._act(self.table.apply(out.row, Taken(pool.name), self.clock()))

    def answered(self, out: Outgoing, pool: UpstreamPool, response: Pdu | None, error: BaseException | None) -> None:
        row = out.row
        if row.state is not State.IN_FLIGHT or row.upstream != pool.name:
            return
        event: Event
        if response is not None and response.command_status == CommandStatus.ESME_ROK:
            event = SubmitOk(getattr(response, "message_id", ""))
        elif response is not None and response.command_status not in TEMPORARY_STATUSES:
            self.counters["permanent_failures"] += 1
            event = SubmitPermanent(response.command_status)
        elif response is None and not pool.available:
            event = UpstreamDown()  # the connection went with it: another upstream, now
        else:
            self.counters["temporary_failures"] += 1
            status = response.command_status if response is not None else 0
            event = SubmitTemporary(status, throttled=status == CommandStatus.ESME_RTHROTTLED)
            if self._trace and error is not None:
                self.msglog.unanswered(row, pool.name, error)
        self._event(row, event)

    def pool_up(self, pool: UpstreamPool) -> None:
        waiting = [row for row in self.parked.values() if pool.name in row.route]
        now = self.clock()
        changes: list[Change] = []
        for row in waiting:
            changes.extend(self.table.apply(row, UpstreamUp(), now))
        self._act(changes)

    def pool_down(self, pool: UpstreamPool, left: list[Outgoing]) -> None:
        if left:
            log.warning("upstream_failover", upstream=pool.name, messages=len(left), reason="every bind is down")
        now = self.clock()
        changes: list[Change] = []
        for out in left:
            row = out.row
            if row.state is State.QUEUED and row.target == pool.name and self.outgoing.get(row.id) is out:
                changes.extend(self.table.apply(row, UpstreamDown(), now))
        self._act(changes)

    def deliver_received(self, pool: UpstreamPool, pdu: Pdu) -> int | asyncio.Future[int]:
        """A deliver_sm/data_sm from an upstream: a receipt or an MO; the status to answer it with."""
        if not isinstance(pdu, (DeliverSm, DataSm)):
            # alert_notification (the client hands it over too): nothing to route, no response to give
            log.info("upstream_alert_ignored", upstream=pool.name, command=pdu.command_name)
            return 0
        if is_receipt(pdu):
            return self._receipt(pool, pdu)
        return self._mo(pool, pdu)

    # ---- receipts ---------------------------------------------------------------------------------

    def _receipt(self, pool: UpstreamPool, pdu: DeliverSm | DataSm) -> int | asyncio.Future[int]:
        info = receipt_info_from_tlvs(pdu) or receipt_info(pdu)
        if info is None or not info.message_id:
            return self._unmatched(pool, pdu, info, "no message id in the receipt")
        key = (pool.name, normalise_message_id(info.message_id, base=pool.cfg.receipt_id_base or None))
        row = self.awaiting_receipt.get(key)
        if row is not None:
            return self._receipt_for(row, pool, pdu, info, key)
        assert self.loop is not None
        fut: asyncio.Future[int] = self.loop.create_future()
        self._spawn(self._receipt_later(pool, pdu, info, key, fut))
        return fut

    async def _receipt_later(self, pool: UpstreamPool, pdu: DeliverSm | DataSm, info: ReceiptInfo, key: tuple[str, str],
                             fut: asyncio.Future[int]) -> None:
        """The id is not in memory: its submit_sm_resp may still be on its way, or we restarted."""
        try:
            row = None
            for delay in RECEIPT_LOOKUP_DELAYS:
                if delay:
                    await asyncio.sleep(delay)
                row = self.awaiting_receipt.get(key) or await self.store.find_by_upstream_id(pool.name, info.message_id)
                if row is not None:
                    break
            if row is None:
                fut.set_result(self._unmatched(pool, pdu, info, "unknown message id"))
                return
            result = self._receipt_for(row, pool, pdu, info, key)
            if isinstance(result, int):
                fut.set_result(result)
            else:
                fut.set_result(await result)
        except Exception as exc:  # noqa: BLE001 - make the SMSC send it again
            log.error("receipt_failed", upstream=pool.name, upstream_id=info.message_id,
                      error=f"{type(exc).__name__}: {exc}")
            if not fut.done():
                fut.set_result(CommandStatus.ESME_RSYSERR)

    def _receipt_for(self, row: MessageRow, pool: UpstreamPool, pdu: DeliverSm | DataSm, info: ReceiptInfo,
                     key: tuple[str, str]) -> int | asyncio.Future[int]:
        self.counters["receipts_in"] += 1
        esm_type = pdu.esm_class & EsmClass.TYPE_MASK
        intermediate = esm_type == EsmClass.TYPE_INTERMEDIATE_NOTIFICATION or not info.state.is_final
        event: Event = Intermediate() if intermediate else Receipt(info.state, _err(info))
        try:
            transition = apply(row, event, self.clock(), self.table.policy)
        except InvalidTransition:
            self.counters["receipts_duplicate"] += 1
            log.info("receipt_duplicate", message_id=row.id, upstream=pool.name, upstream_id=info.message_id,
                     state=row.state.value)
            return 0
        if self._msglog_on:
            forwarded = transition.forward_intermediate if intermediate else row.receipt_owed
            self.msglog.receipt(row.id, row.account, pool.name, info.message_id, pdu, info.state.name,
                                not intermediate, forwarded)
        if intermediate:
            if transition.forward_intermediate:
                return self.deliveries.deliver_mo(row.account, rewrite_receipt(pdu, row.id), kind="receipt")
            return 0
        self.awaiting_receipt.pop(key, None)
        self.counters[row.state.value] += 1
        if not row.receipt_owed:
            self.store.save([row])
            return 0
        receipt = rewrite_receipt(pdu, row.id)
        row.receipt = encode(receipt)
        return self._deliver_after_saving(row, receipt)

    def _deliver_after_saving(self, row: MessageRow, receipt: Pdu) -> asyncio.Future[int]:
        """The row with its receipt is durable before the upstream hears ESME_ROK.

        The receipts of one loop turn are written with one durable save (one Future,
        one callback for all of them), not one each.
        """
        assert self.loop is not None
        done: asyncio.Future[int] = self.loop.create_future()
        if not self._receipts_to_save:
            self.loop.call_soon(self._save_receipts)
        self._receipts_to_save.append(OwedReceipt(row, receipt, done))
        return done

    def _save_receipts(self) -> None:
        batch, self._receipts_to_save = self._receipts_to_save, []
        self.store.save_durably([owed.row for owed in batch]).add_done_callback(partial(self._receipts_saved, batch))

    def _receipts_saved(self, batch: list[OwedReceipt], write: asyncio.Future[None]) -> None:
        error = write.exception() if not write.cancelled() else asyncio.CancelledError()
        for owed in batch:
            if error is not None:
                log.error("receipt_not_stored", message_id=owed.row.id, error=f"{type(error).__name__}: {error}")
                owed.done.set_result(CommandStatus.ESME_RSYSERR)  # the SMSC sends it again; the store has SENT
            else:
                self.deliveries.deliver_receipt(owed.row, owed.receipt)
                owed.done.set_result(0)

    def _unmatched(self, pool: UpstreamPool, pdu: DeliverSm | DataSm, info: ReceiptInfo | None, reason: str) -> int:
        self.counters["receipts_unmatched"] += 1
        text = (pdu.short_message if isinstance(pdu, DeliverSm) else b"")[:160].decode("latin-1")
        kept = UnmatchedReceipt(pool.name, info.message_id if info else "", info.state.name if info else "",
                                self.clock(), text)
        self.unmatched.append(kept)
        log.warning("receipt_unmatched", upstream=pool.name, upstream_id=kept.message_id, state=kept.state,
                    reason=reason)
        return 0  # acknowledged: an SMSC answered with an error would send it again forever

    def _hub_receipt(self, row: MessageRow) -> DeliverSm:
        """The receipt for an outcome the hub decided itself (expired, rejected, cancelled)."""
        pdu = stored_submit(row)
        error = row.error
        return build_receipt(
            message_id=row.id, state=smpp_state(row.state), source_addr=pdu.source_addr,
            destination_addr=pdu.destination_addr,
            source_addr_ton=pdu.source_addr_ton, source_addr_npi=pdu.source_addr_npi,
            dest_addr_ton=pdu.dest_addr_ton, dest_addr_npi=pdu.dest_addr_npi,
            submit_date=datetime.fromtimestamp(row.created_at, UTC),
            done_date=datetime.fromtimestamp(row.updated_at, UTC),
            err=f"{error & 0xFFF:03d}" if error else "000",
            text=pdu.short_message if isinstance(pdu, SubmitSm) else b"",
        )

    # ---- MO ----------------------------------------------------------------------------------------

    def _mo(self, pool: UpstreamPool, pdu: DeliverSm | DataSm) -> int | asyncio.Future[int]:
        dest = normalise_destination(pdu.destination_addr, pdu.dest_addr_ton)
        route = self.mo_routes.lookup(dest)
        if route is None:
            self.counters["mo_unroutable"] += 1
            if self._msglog_on:
                self.msglog.mo(pool.name, pdu, None, None, CommandStatus.ESME_RINVDSTADR)
            log.warning("mo_unroutable", upstream=pool.name, dest=pdu.destination_addr)
            return CommandStatus.ESME_RINVDSTADR
        self.counters["mo_in"] += 1
        if self._msglog_on:
            self.msglog.mo(pool.name, pdu, route.account, route.webhook, 0)
        if route.webhook:
            assert self.loop is not None
            fut: asyncio.Future[int] = self.loop.create_future()
            self._spawn(self._post_webhook(route.webhook, pdu, fut))
            return fut
        assert route.account is not None
        return self.deliveries.deliver_mo(route.account, pdu, kind="mo")

    async def _post_webhook(self, url: str, pdu: DeliverSm | DataSm, fut: asyncio.Future[int]) -> None:
        import aiohttp

        from smppcore.text import decode_text

        body = {
            "source_addr": pdu.source_addr,
            "destination_addr": pdu.destination_addr,
            "data_coding": pdu.data_coding,
            "text": decode_text((pdu.short_message if isinstance(pdu, DeliverSm) else b"")
                                or pdu.tlvs.get(smppcore.Tag.MESSAGE_PAYLOAD, b""), pdu.data_coding),
            "esm_class": pdu.esm_class,
        }
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                async with http.post(url, json=body) as resp:
                    ok = 200 <= resp.status < 300
        except Exception as exc:  # noqa: BLE001 - the SMSC will retry
            log.warning("mo_webhook_failed", url=url, error=f"{type(exc).__name__}: {exc}")
            ok = False
        if self._msglog_on:
            self.msglog.mo_webhook(pdu, url, ok)
        fut.set_result(0 if ok else CommandStatus.ESME_RX_T_APPN)

    # ---- requests from ESMEs about their messages -------------------------------------------------

    def cancel(self, message_id: str) -> bool:
        """cancel_sm: True if the message had not left and is now cancelled."""
        row = self.table.get(message_id)
        if row is None:
            return False
        try:
            changes = self.table.apply(row, Cancel(), self.clock())
        except InvalidTransition:
            return False
        self._act(changes)
        return True

    def waiting(self, message_id: str) -> Outgoing | None:
        """The message if it has not left yet (replace_sm may change it), else None."""
        row = self.table.get(message_id)
        if row is None or row.state not in WAITING_STATES:
            return None
        return self.outgoing.get(message_id)

    def replaced(self, out: Outgoing, pdu: SubmitSm | DataSm, due: float, expires_at: float | None,
                 registered_delivery: int | None) -> None:
        """replace_sm of a message that has not left: new text and times."""
        out.pdu = pdu
        out.row.pdu = encode(pdu)
        self._event(out.row, Replace(due, expires_at, registered_delivery))

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        assert self.loop is not None
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _err(info: ReceiptInfo) -> int:
    err = info.err
    try:
        return int(err, 0) if isinstance(err, str) else int(err)
    except ValueError:
        return 0
