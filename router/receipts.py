"""Upstream receipts matched to their messages, and the receipt owed to the ESME made durable.

The dispatcher hands the receipts an upstream delivers to :meth:`Receipts.received_all`,
a read's run of them at once (one at a time: :meth:`Receipts.received`).
A receipt names the upstream's message id; the message is found in memory (the SENT
rows waiting for one, :attr:`Receipts.awaiting`, bounded by ``max_awaiting_receipt``)
or else in the store, looked for again a few times while the submit_sm_resp that
names that id may still be on its way. It becomes the lifecycle's Receipt or
Intermediate event, and the receipt owed to the ESME is written into the message's
row durably before the upstream hears ESME_ROK (the receipts of one loop turn in one
save; the ESME gets them meanwhile). A receipt that matches nothing is acknowledged
anyway and kept for the operator.

A module of its own because matching is one purpose with its own state (the waiting
rows, the unmatched ones, the saves in progress); the dispatcher owns one
:class:`Receipts` and gives it the loop's services through :class:`ReceiptHost`.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

import structlog

from smppcore import CommandStatus, encode
from smppcore.constants import EsmClass, MessageState, RegisteredDelivery
from smppcore.pdus import DataSm, DeliverSm, SubmitSm
from smppcore.receipt import (
    ReceiptInfo,
    build_receipt,
    error_code,
    normalise_message_id,
    receipt_info,
    receipt_info_from_tlvs,
)

from .batching import TurnCollector
from .delivery import Deliveries, ReceiptInFlight, rewrite_receipt
from .lifecycle import InvalidTransition, MessageRow, RetryPolicy, apply, smpp_state
from .lifecycle_events import Event, Intermediate, Receipt
from .messages import MessageTable
from .msglog import MessageLog
from .stats import HubStats
from .store import Store
from .upstream import UpstreamPool, stored_submit

__all__ = ["Receipts", "ReceiptHost", "UnmatchedReceipt", "hub_receipt", "RECEIPT_LOOKUP_DELAYS",
           "UNMATCHED_KEPT"]

log = structlog.get_logger("smpphub.dispatch")

#: How long a receipt whose message is not known yet is looked for again: the
#: submit_sm_resp that names the upstream's id may still be on its way.
RECEIPT_LOOKUP_DELAYS = (0.0, 0.05, 0.2, 0.5, 1.0)
#: Receipts nobody could be found for, kept for an operator (hub status), newest last.
UNMATCHED_KEPT = 1000


class ReceiptHost(Protocol):
    """What :class:`Receipts` asks of the dispatcher that owns it: the event loop's services, once started."""

    def spawn(self, coro: Coroutine[object, object, None]) -> None:
        """Run ``coro`` as a task the owner waits for when it stops."""

    def future(self) -> asyncio.Future[int]:
        """A new Future on the owner's loop: the status a delivery is answered with, later."""

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` at the next turn of the owner's loop."""


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


class Receipts:
    """Matches an upstream's receipts to their messages; one per dispatcher.

    ``stats`` are the hub's (receipts in, duplicate and unmatched, the final states by
    account); ``table`` is read for its retry policy, which a reload replaces.
    """

    def __init__(self, host: ReceiptHost, store: Store, deliveries: Deliveries, msglog: MessageLog,
                 table: MessageTable, clock: Callable[[], float], limit: int, stats: HubStats | None = None) -> None:
        self.host = host
        self.store = store
        self.deliveries = deliveries
        self.msglog = msglog
        self._msglog_on = msglog.on
        self._ring = msglog.ring
        self.stats = stats or HubStats()
        self.table = table
        self.clock = clock
        # SENT rows waiting for a receipt, by (upstream, normalised upstream id); oldest dropped past the limit
        self.awaiting: collections.OrderedDict[tuple[str, str], MessageRow] = collections.OrderedDict()
        self.limit = limit
        self.unmatched: collections.deque[UnmatchedReceipt] = collections.deque(maxlen=UNMATCHED_KEPT)
        # receipts owed to ESMEs, saved together at the end of the turn (the host's loop runs it), and
        # the one Future that answers their upstreams once that save is durable
        self._to_save: TurnCollector[ReceiptInFlight] = TurnCollector(self._save_receipts, host)
        self._saved: asyncio.Future[int] | None = None

    def expect(self, row: MessageRow, pool: UpstreamPool) -> None:
        """``row`` was accepted by ``pool``: keep it to match its receipt, if it asked for one."""
        self.expect_all((row,), {row.upstream or "": pool})

    def expect_all(self, rows: Sequence[MessageRow], pools: Mapping[str, UpstreamPool]) -> None:
        """:meth:`expect` for each of ``rows``, accepted by the pool its ``upstream`` names in ``pools``
        (a run of submit_sm_resp: one loop, not a chain of calls a message).

        The key is the id's normal form (:func:`normalise_message_id`, which takes a decimal
        counter, most SMSCs' ids, in three C calls).
        """
        waiting = self.awaiting
        limit = self.limit
        for row in rows:
            upstream_id = row.upstream_id
            if not upstream_id or not row.registered_delivery & _ANY_RECEIPT:
                continue
            pool = pools.get(row.upstream or "")
            if pool is None:
                continue
            waiting[(pool.name, normalise_message_id(upstream_id, base=pool.cfg.submit_id_base or None))] = row
            if len(waiting) > limit:
                waiting.popitem(last=False)  # its receipt will find it in the store

    def received(self, pool: UpstreamPool, pdu: DeliverSm | DataSm) -> int | asyncio.Future[int]:
        """A receipt from ``pool``: the status to answer it with (a Future while its message is looked for)."""
        return self.received_all(pool, (pdu,))[0]

    def received_all(self, pool: UpstreamPool, pdus: Sequence[DeliverSm | DataSm]) -> list[int | asyncio.Future[int]]:
        """Receipts from ``pool`` read at once: :meth:`received`'s result for each, in order.

        One loop for a run (smppcore's Client hands the deliver_sm of one read over together):
        what a run shares is looked up once (:class:`_Run`), and no chain of calls is made a
        receipt (callgrind, the receipt leg over fakes, 2026-12-02: 151.5k -> 147.3k instructions
        a receipt with the rest of the run work; tests/test_receipt_runs pins it). A receipt the
        hub fails on is answered ESME_RX_T_APPN alone, as smppcore's Client answers one whose
        handler raised (the SMSC sends it again); the rest of the run goes on.

        The TLVs are read first (typed, and cheap to read); the text only when they do not give
        both the id and the state. The text's ``err`` is not needed then: the final state, the
        network_error_code and the receipt passed on as the upstream wrote it say what happened.

        The id is looked up as it came first, then normalised if that finds nothing: every key
        of :attr:`awaiting` is what :func:`normalise_message_id` gives, which it gives back
        unchanged without a base or with base 10, so an id found as it came is the key its
        normal form would have found (tests/test_receipt_path pins both). Most receipts name
        their message so: one look-up, no normalising (valgrind: 2.4k instructions a receipt less).
        """
        name = pool.name
        base = pool.cfg.receipt_id_base
        as_it_came = not base or base == 10
        awaiting = self.awaiting
        results: list[int | asyncio.Future[int]] = []
        run = _Run(self.clock(), self.table.policy)  # one read: one time for its receipts
        for pdu in pdus:
            try:
                info = receipt_info_from_tlvs(pdu) or receipt_info(pdu)
                if info is None or not info.message_id:
                    results.append(self._unmatched(pool, pdu, info, "no message id in the receipt"))
                    continue
                key = (name, info.message_id)
                row = awaiting.get(key) if as_it_came else None
                if row is None:
                    key = (name, normalise_message_id(info.message_id, base=base or None))
                    row = awaiting.get(key)
                if row is not None:
                    results.append(self._receipt_for(row, pool, pdu, info, key, run))
                    continue
                fut: asyncio.Future[int] = self.host.future()
                self.host.spawn(self._receipt_later(pool, pdu, info, key, fut))
                results.append(fut)
            except Exception:  # noqa: BLE001 - logged; the SMSC sends it again
                log.exception("receipt_failed", upstream=name)
                results.append(CommandStatus.ESME_RX_T_APPN)
        self._end_run(run)
        return results

    async def _receipt_later(self, pool: UpstreamPool, pdu: DeliverSm | DataSm, info: ReceiptInfo, key: tuple[str, str],
                             fut: asyncio.Future[int]) -> None:
        """The id is not in memory: its submit_sm_resp may still be on its way, or we restarted."""
        try:
            row = None
            for delay in RECEIPT_LOOKUP_DELAYS:
                if delay:
                    await asyncio.sleep(delay)
                row = self.awaiting.get(key) or await self.store.find_by_upstream_id(
                    pool.name, _as_submitted(info.message_id, pool.cfg.submit_id_base, pool.cfg.receipt_id_base))
                if row is not None:
                    break
            if row is None:
                fut.set_result(self._unmatched(pool, pdu, info, "unknown message id"))
                return
            run = _Run(self.clock(), self.table.policy)
            result = self._receipt_for(row, pool, pdu, info, key, run)
            self._end_run(run)
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
                     key: tuple[str, str], run: _Run) -> int | asyncio.Future[int]:
        """``row``'s receipt: its event applied; a final one's latency and owed receipt left to ``run``."""
        stats = self.stats
        stats.receipts_in += 1
        intermediate = pdu.esm_class & _TYPE_MASK == _INTERMEDIATE or info.state in _NOT_FINAL
        if intermediate:
            event: Event = _INTERMEDIATE_EVENT
        elif info.err == "000":  # nearly every receipt
            event = _RECEIPT_NO_ERROR[info.state]
        else:
            event = Receipt(info.state, error_code(info.err))
        try:
            transition = apply(row, event, run.now, run.policy)
        except InvalidTransition:
            stats.receipts_duplicate += 1
            log.info("receipt_duplicate", message_id=row.id, upstream=pool.name, upstream_id=info.message_id,
                     state=row.state.value)
            return 0
        if self._ring is not None:
            self._ring.record(transition)
        if self._msglog_on:
            forwarded = transition.forward_intermediate if intermediate else row.receipt_owed
            self.msglog.receipt(row.id, row.account, pool.name, info.message_id, pdu, info.state.name,
                                not intermediate, forwarded)
        if intermediate:
            if transition.forward_intermediate:
                forward = rewrite_receipt(pdu, row.id, _INTERMEDIATE)
                return self.deliveries.deliver_mo(row.account, forward, kind="receipt")
            return 0
        self.awaiting.pop(key, None)
        stats.final(row.account, row.state._value_)  # not .value: Enum's property is a Python call (0.3 us)
        run.latencies.append(row.updated_at - row.created_at)
        if not row.receipt_owed:
            self.store.save([row])
            return 0
        receipt = rewrite_receipt(pdu, row.id, _DELIVERY_RECEIPT)
        row.receipt = encode(receipt)
        run.owed.append(ReceiptInFlight(row, receipt))
        done = self._saved
        if done is None:
            done = self._saved = self.host.future()
        return done

    def _end_run(self, run: _Run) -> None:
        """What a run's receipts share, done once for the run: their latencies observed, the receipts
        owed handed to the end of the turn's save together, not a call each.

        The row with its receipt is durable before the upstream hears ESME_ROK.

        The receipts of one loop turn are written with one durable save, not one each,
        and share one Future: the status every upstream deliver_sm of that turn is
        answered with (smppcore's Client answers all the requests waiting on one Future
        from one callback). The ESME gets each receipt as soon as its save is asked for,
        not once it is committed: an ESME that acknowledges it while the store's writer
        is still busy with the batch before has its row written once, final and settled
        (:meth:`SqliteStore.save` merges the two saves). Should the write fail, the
        upstream is answered ESME_RSYSERR and sends the receipt again, which the ESME
        then gets twice: delivery is at least once either way.
        """
        if run.owed:
            self._to_save.add_all(run.owed)
        if run.latencies:
            self.stats.receipt_latency.observe_all(run.latencies)

    def _save_receipts(self, batch: list[ReceiptInFlight]) -> None:
        """The end of the turn: one durable save for the turn's receipts, then each to its ESME."""
        done, self._saved = self._saved, None
        if not batch or done is None:
            return
        # the rows' saves are taken as they are now, before any ESME could have acknowledged them
        try:
            saved = self.store.save_durably([owed.row for owed in batch])
        except RuntimeError as exc:  # the store is closing: the SMSC sends them again to the next run
            log.warning("receipts_not_stored", receipts=len(batch), error=str(exc))
            done.set_result(CommandStatus.ESME_RSYSERR)
            return
        self.deliveries.deliver_receipts(batch)
        saved.add_done_callback(partial(self._receipts_saved, batch, done))

    def _receipts_saved(self, batch: list[ReceiptInFlight], done: asyncio.Future[int],
                        write: asyncio.Future[None]) -> None:
        error = write.exception() if not write.cancelled() else asyncio.CancelledError()
        if error is None:
            done.set_result(0)
            return
        for owed in batch:
            log.error("receipt_not_stored", message_id=owed.row.id, error=f"{type(error).__name__}: {error}")
        done.set_result(CommandStatus.ESME_RSYSERR)  # the SMSC sends them again; the store has SENT

    def _unmatched(self, pool: UpstreamPool, pdu: DeliverSm | DataSm, info: ReceiptInfo | None, reason: str) -> int:
        self.stats.receipts_unmatched += 1
        text = (pdu.short_message if isinstance(pdu, DeliverSm) else b"")[:160].decode("latin-1")
        kept = UnmatchedReceipt(pool.name, info.message_id if info else "", info.state.name if info else "",
                                self.clock(), text)
        self.unmatched.append(kept)
        log.warning("receipt_unmatched", upstream=pool.name, upstream_id=kept.message_id, state=kept.state,
                    reason=reason)
        return 0  # acknowledged: an SMSC answered with an error would send it again forever


class _Run:
    """What the receipts of one run share (the time they came, the retry policy) and leave for its
    end (:meth:`Receipts._end_run`)."""

    __slots__ = ("now", "policy", "latencies", "owed")

    def __init__(self, now: float, policy: RetryPolicy) -> None:
        self.now = now
        self.policy = policy
        self.latencies: list[float] = []  # of the final receipts
        self.owed: list[ReceiptInFlight] = []  # to the ESMEs, once saved


def hub_receipt(row: MessageRow) -> DeliverSm:
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


def _as_submitted(receipt_id: str, submit_base: int, receipt_base: int) -> str:
    """The receipt's id as the upstream's submit_sm_resp wrote it, which is what the store keeps.

    Only an upstream known to write the two in different bases (``submit_id_base`` and
    ``receipt_id_base`` both set) has its id rewritten: looked up as it came, the hex
    receipt id "10" would find the message whose decimal id is "10", not 16's. Written
    as Python writes numbers: an SMSC that pads or upper-cases its hex ids is found in
    memory (:attr:`Receipts.awaiting`, keyed by value) but not in the store.
    """
    if not submit_base or not receipt_base or submit_base == receipt_base:
        return receipt_id
    value = normalise_message_id(receipt_id, base=receipt_base)
    if not value.isdigit():
        return receipt_id
    return value if submit_base == 10 else format(int(value), "x")


# esm_class bits as plain ints: ``int & EsmClass.X`` goes through enum.Flag.__and__ in Python
# (a new Flag member built each time), ~2% of the hub's main thread once per receipt
_TYPE_MASK = int(EsmClass.TYPE_MASK)
_INTERMEDIATE = int(EsmClass.TYPE_INTERMEDIATE_NOTIFICATION)
_DELIVERY_RECEIPT = int(EsmClass.TYPE_DELIVERY_RECEIPT)
#: the message states a receipt reports before the end (MessageState.is_final is a Python call)
_NOT_FINAL = frozenset(state for state in MessageState if not state.is_final)
#: Intermediate carries nothing: one for every receipt; a final receipt without an error, one per state
_INTERMEDIATE_EVENT = Intermediate()
#: registered_delivery bits that ask for any SMSC receipt: receipts_requested's test, without its call
#: (tests/test_receipt_runs pins the two together)
_ANY_RECEIPT = int(RegisteredDelivery.RECEIPT_MASK | RegisteredDelivery.INTERMEDIATE_NOTIFICATION)
_RECEIPT_NO_ERROR = {state: Receipt(state, 0) for state in MessageState}
