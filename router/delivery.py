"""Receipts and MO on their way to the ESMEs: stored first, then delivered, released on ack.

Every receipt or MO message the hub takes responsibility for is written to the
store before the upstream SMSC gets its deliver_sm_resp, then queued in the
account's :class:`smppcore.outbox.Outbox`. A receipt lives in its message's row
(``receipt``, ``receipt_owed``: the dispatcher wrote both durably); an MO, which
belongs to no message, is a :class:`Delivery` record of its own. Either leaves the
store only when the ESME acknowledges it (or when it waited past the account's
``receipt_hold``), so a hub restart loses none: they are reloaded and sent again.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Protocol, TypeVar, cast

import msgspec
import structlog

import smppcore
from smppcore import CommandStatus, DataCoding, EsmClass, Pdu, Tag, decode, encode
from smppcore.connection import ResponseCallback
from smppcore.outbox import Outbox
from smppcore.pdus import DataSm, DeliverSm
from smppcore.session import Session

from .batching import TurnBatcher, TurnCollector
from .lifecycle import InvalidTransition, MessageRow, RetryPolicy, apply
from .lifecycle_events import ReceiptDelivered, ReceiptDropped
from .msglog import MessageLog, bind_name
from .store import Delivery, Store

__all__ = ["Deliveries", "rewrite_receipt"]

log = structlog.get_logger("smpphub.delivery")

_ID_IN_TEXT = re.compile(rb"(?i)\bid:\s*[^\s]*")
_ID_IN_UCS2_TEXT = re.compile(r"(?i)\bid:\s*[^\s]*")
# plain ints: ``Tag.X`` or ``CommandStatus.X`` in a function is an enum attribute lookup (~50 ns each on 3.11)
_RECEIPTED_MESSAGE_ID = int(Tag.RECEIPTED_MESSAGE_ID)
_MESSAGE_PAYLOAD = int(Tag.MESSAGE_PAYLOAD)
_UCS2 = int(DataCoding.UCS2)
_TYPE_MASK = int(EsmClass.TYPE_MASK)
_ROK = int(CommandStatus.ESME_ROK)
#: an ESME that answers a receipt with an error gets it again this many times
MAX_ATTEMPTS = 5
RETRY_DELAY = 5.0
#: ReceiptDelivered and ReceiptDropped use no retry rule; the lifecycle's apply() wants one
_NO_RETRIES = RetryPolicy()
#: the events of an ESME's answer, made once: they carry nothing, and one per receipt cost a Python call
_DELIVERED, _DROPPED = ReceiptDelivered(), ReceiptDropped()
#: what an upstream delivers: rewrite_receipt gives back the type it was given
_Incoming = TypeVar("_Incoming", bound=DeliverSm | DataSm)


class WebhookSink(Protocol):
    """Another destination than receiver binds: an application's HTTP webhook (router.http.webhooks).

    It says which receipts and MO it takes, sends them, and calls ``done(ok)`` once the
    application answered 2xx (True) or they were given up (False); until then they stay
    owed in the store, as for an ESME that has not acknowledged them.
    """

    def takes_receipt(self, row: MessageRow) -> bool: ...

    def takes_mo(self, record: Delivery, pdu: Pdu) -> bool: ...

    def send_receipt(self, row: MessageRow, pdu: Pdu, done: Callable[[bool], None]) -> None: ...

    def send_mo(self, record: Delivery, pdu: Pdu, done: Callable[[bool], None]) -> None: ...


class Receivers(Protocol):
    """Who can take deliveries for an account: its bound receiver and transceiver connections."""

    def receivers(self, account: str) -> Sequence[smppcore.SmppConnection]: ...


class ReceiptInFlight(msgspec.Struct, gc=False, eq=False):
    """A receipt owed to an ESME, as its outbox carries it: the row, the receipt (the deliver_sm
    whose encoding is ``row.receipt``) and how often the ESME refused it.

    A Struct, made in C: one is made a receipt, and a class's ``__init__`` is a Python call
    (callgrind: 1.8k -> 0.6k instructions to make one). Untracked by the cycle collector, as
    :class:`MessageRow` is: it holds a row and a PDU, which hold nothing that leads back.
    """

    row: MessageRow
    pdu: Pdu
    attempts: int = 0


def rewrite_receipt(pdu: _Incoming, hub_id: str, kind: int = 0) -> _Incoming:
    """The upstream's receipt with its message id replaced by the hub's, text and TLVs alike.

    ``kind`` (an esm_class message type) is set in its esm_class when the upstream's
    said no type: some SMSCs send receipts with esm_class 0, told from an MO by their
    text alone; the hub did that once, so its ESMEs need not.
    """
    tlvs = pdu.tlvs.copy()
    sm = pdu.short_message if isinstance(pdu, DeliverSm) else b""  # data_sm's text is in message_payload
    if _RECEIPTED_MESSAGE_ID in tlvs or not sm:
        tlvs[_RECEIPTED_MESSAGE_ID] = hub_id
    payload = tlvs.get(_MESSAGE_PAYLOAD)
    if payload:
        tlvs[_MESSAGE_PAYLOAD] = _with_hub_id(payload, pdu.data_coding, hub_id)
    esm_class = pdu.esm_class
    if kind and not esm_class & _TYPE_MASK:
        esm_class |= kind
    if sm:
        return msgspec.structs.replace(pdu, sequence_number=0, esm_class=esm_class, tlvs=tlvs,
                                       short_message=_with_hub_id(sm, pdu.data_coding, hub_id))
    return msgspec.structs.replace(pdu, sequence_number=0, esm_class=esm_class, tlvs=tlvs)


def _with_hub_id(text: bytes, data_coding: int, hub_id: str) -> bytes:
    """``text`` with its first ``id:`` naming ``hub_id``, written in the text's own coding.

    A receipt in UCS-2 (data_coding 8, the Appendix B text as UTF-16BE) has no "id:"
    octets to find: it is decoded, rewritten and encoded again, or the ESME would get
    the upstream's id in a receipt without TLVs. Most texts start with their id (the
    Appendix B layout): the match there is the first one, spliced without a search.
    """
    if data_coding == _UCS2 and len(text) % 2 == 0:
        decoded = text.decode("utf-16-be", "surrogatepass")
        return _ID_IN_UCS2_TEXT.sub("id:" + hub_id, decoded, count=1).encode("utf-16-be", "surrogatepass")
    first = _ID_IN_TEXT.match(text)
    if first is not None:
        return b"id:%b%b" % (hub_id.encode(), text[first.end():])
    return _ID_IN_TEXT.sub(b"id:" + hub_id.encode(), text, count=1)


def _receipt_waits(row: MessageRow) -> None:
    """``row``'s receipt found its account's outbox full: it stays owed in the store."""
    log.warning("outbox_full", account=row.account, message_id=row.id, kind="receipt",
                note="waits in the store until the next start")


class _TracedBind:
    """A receiver bind as an :class:`Outbox` sees it, noting which bind answered.

    The outbox calls ``on_ack(response, record)`` without the connection; while the
    message trace is on, the outbox is given these instead of the connections, so
    ``receipt_delivered`` can name the bind. With the trace off they are not used.
    """

    __slots__ = ("conn", "deliveries")

    def __init__(self, conn: smppcore.SmppConnection, deliveries: Deliveries) -> None:
        self.conn = conn
        self.deliveries = deliveries

    @property
    def session(self) -> Session:
        return self.conn.session

    @property
    def answer_sink(self) -> object:
        """Taken (by this wrapper, whose callbacks note the bind): the outbox sends with callbacks."""
        return self

    @property
    def is_open(self) -> bool:
        return self.conn.is_open

    def send_callback(self, pdu: Pdu, callback: ResponseCallback, encoded: bytes | None = None) -> None:
        self.conn.send_callback(pdu, partial(self._answered, callback), encoded)

    def send_callbacks(self, pdus: Sequence[Pdu], callbacks: Sequence[ResponseCallback],
                       encoded: Sequence[bytes | None]) -> None:
        answered = self._answered
        self.conn.send_callbacks(pdus, [partial(answered, callback) for callback in callbacks], encoded)

    def _answered(self, callback: ResponseCallback, response: Pdu | None, error: Exception | None) -> None:
        self.deliveries.answered_on = self.conn
        try:
            callback(response, error)
        finally:
            self.deliveries.answered_on = None


class Deliveries:
    """The durable outboxes of every account."""

    def __init__(
        self,
        store: Store,
        receivers: Receivers,
        *,
        hold_limit: int = 100_000,
        msglog: MessageLog | None = None,
    ) -> None:
        self.store = store
        self._directory = receivers
        self.holds: dict[str, float] = {}  # account -> receipt_hold (seconds); set by the hub
        self.hold_limit = hold_limit
        self.msglog = msglog or MessageLog.off()
        self._trace = self.msglog.trace
        self._ring = self.msglog.ring
        self.answered_on: smppcore.SmppConnection | None = None  # the bind whose answer is being handled
        self.outboxes: dict[str, Outbox] = {}
        self._batcher: TurnBatcher[tuple[Delivery, Pdu, asyncio.Future[int]]] = TurnBatcher(self._flush)
        self.delivered = 0
        # receipts acknowledged this turn, saved together at its end (once start() gives it the loop)
        self._settled: TurnCollector[MessageRow] = TurnCollector(self._save_settled)
        self.expired = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.webhooks: WebhookSink | None = None  # set by the hub when applications take receipts by HTTP

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._settled.runner = self.loop
        for d in await self.store.pending_deliveries():
            self._enqueue(d, decode(d.pdu))
        for row in await self.store.owed_receipts():
            self._enqueue_receipt(ReceiptInFlight(row, decode(row.receipt)))
        self._sweeper = self.loop.create_task(self._sweep_forever())

    def _receivers(self, account: str) -> Sequence[smppcore.SmppConnection]:
        return self._directory.receivers(account)

    def hold(self, account: str) -> float:
        """How long a receipt or MO waits for ``account`` to bind a receiver."""
        return self.holds.get(account, 3 * 86400.0)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self._batcher.drain()
        self._settled.flush()  # before the store closes

    def outbox(self, account: str) -> Outbox:
        box = self.outboxes.get(account)
        if box is None:
            receivers = partial(self._traced_receivers if self._trace else self._receivers, account)
            box = self.outboxes[account] = Outbox(receivers, limit=self.hold_limit, loop=self.loop)
        return box

    def _traced_receivers(self, account: str) -> list[smppcore.SmppConnection]:
        # the Outbox uses only session, is_open, answer_sink, send_callback(s), which _TracedBind has
        return cast("list[smppcore.SmppConnection]", [_TracedBind(conn, self) for conn in self._receivers(account)])

    def pending(self, account: str | None = None) -> int:
        if account is not None:
            box = self.outboxes.get(account)
            return len(box) + box.in_flight if box else 0
        return sum(len(b) + b.in_flight for b in self.outboxes.values())

    # ---- taking responsibility ------------------------------------------------------------

    def deliver_receipt(self, row: MessageRow, pdu: Pdu) -> None:
        """Queue the receipt owed for ``row`` (its save, with the receipt in it, is asked for already)."""
        self._enqueue_receipt(ReceiptInFlight(row, pdu))

    def deliver_receipts(self, receipts: Sequence[ReceiptInFlight]) -> None:
        """:meth:`deliver_receipt` for each of ``receipts``, made by the caller (a loop turn's receipts).

        Each account's receipts go to its outbox in one :meth:`Outbox.put_all`, in their order:
        a call for the turn, not three a receipt (valgrind, the hub's receipt leg over fakes: 1.9k
        instructions a receipt less; tests/test_receipt_path pins it to one by one).
        With webhooks or the trace on, each goes its own way (:meth:`_enqueue_receipt`).
        """
        if self.webhooks is not None or self._trace:
            enqueue = self._enqueue_receipt
            for receipt in receipts:
                enqueue(receipt)
            return
        by_account: dict[str, list[ReceiptInFlight]] = {}
        for receipt in receipts:
            account = receipt.row.account
            group = by_account.get(account)
            if group is None:
                by_account[account] = [receipt]
            else:
                group.append(receipt)
        for account, group in by_account.items():
            taken = self.outbox(account).put_all([receipt.pdu for receipt in group], self._receipt_acked, group,
                                                 [receipt.row.receipt for receipt in group])
            for receipt in group[taken:]:
                _receipt_waits(receipt.row)

    def deliver_mo(self, account: str, pdu: Pdu, *, kind: str) -> asyncio.Future[int]:
        """Store ``pdu`` (an MO, or an intermediate notification) for ``account`` and queue it.

        The Future gives the command_status to answer the upstream with once it is
        durable: 0, or an error if the store failed, so the SMSC sends it again.
        """
        assert self.loop is not None
        now = time.time()
        record = Delivery(account=account, pdu=encode(pdu), created_at=now, expires_at=now + self.hold(account),
                          kind=kind)
        fut: asyncio.Future[int] = self.loop.create_future()
        self._batcher.add((record, pdu, fut))
        return fut

    async def _flush(self, batch: list[tuple[Delivery, Pdu, asyncio.Future[int]]]) -> None:
        try:
            ids = await self.store.add_deliveries([r for r, _, _ in batch])
        except Exception as exc:  # noqa: BLE001 - refuse them upstream: the SMSC will retry
            log.error("deliveries_store_failed", deliveries=len(batch), error=f"{type(exc).__name__}: {exc}")
            for _, _, fut in batch:
                if not fut.done():
                    fut.set_result(CommandStatus.ESME_RSYSERR)
            return
        for (record, pdu, fut), rid in zip(batch, ids, strict=True):  # one id per record added
            record.id = rid
            self._enqueue(record, pdu)
            if not fut.done():
                fut.set_result(0)

    def _enqueue(self, record: Delivery, pdu: Pdu) -> None:
        if self.webhooks is not None and self.webhooks.takes_mo(record, pdu):
            self.webhooks.send_mo(record, pdu, partial(self._webhook_mo_done, record))
            return
        # a copy: sending sets its sequence number, and an MO's original still has to be answered upstream
        pdu = msgspec.structs.replace(pdu)
        if self._trace and not any(True for _ in self._receivers(record.account)):
            hold = (record.expires_at or record.created_at) - record.created_at
            self.msglog.held(record.kind, record.account, pdu, hold)
        if not self.outbox(record.account).put(pdu, self._acked, record, record.pdu):
            # over the in-memory hold limit: it stays in the store and is reloaded at the next start
            log.warning("outbox_full", account=record.account, delivery=record.id, kind=record.kind,
                        note="waits in the store until the next start")

    def _enqueue_receipt(self, receipt: ReceiptInFlight) -> None:
        row = receipt.row
        pdu = receipt.pdu
        if self.webhooks is not None and self.webhooks.takes_receipt(row):
            self.webhooks.send_receipt(row, pdu, partial(self._webhook_receipt_done, row))
            return
        if self._trace and not any(True for _ in self._receivers(row.account)):
            self.msglog.held("receipt", row.account, pdu, self.hold(row.account))
        if not self.outbox(row.account).put(pdu, self._receipt_acked, receipt, row.receipt):
            _receipt_waits(row)

    def _webhook_receipt_done(self, row: MessageRow, ok: bool) -> None:
        self.delivered += 1
        self._settle(row, _DELIVERED if ok else _DROPPED, time.time())

    def _webhook_mo_done(self, record: Delivery, ok: bool) -> None:
        self.delivered += 1
        self.store.delete_delivery(record.id)

    def _receipt_acked(self, resp: Pdu, receipt: ReceiptInFlight) -> None:
        row = receipt.row
        ok = resp.command_status == _ROK
        if not ok and receipt.attempts + 1 < MAX_ATTEMPTS:
            receipt.attempts += 1
            assert self.loop is not None
            self.loop.call_later(RETRY_DELAY, self._enqueue_receipt, receipt)
            return
        if ok and self._trace:
            bind = self.answered_on
            where = bind_name(bind.peername, bind.session.state.value) if bind is not None else None
            self.msglog.delivered("receipt", row.account, decode(row.receipt), where, resp.command_status,
                                  receipt.attempts + 1)
        if not ok:
            log.warning("delivery_dropped", account=row.account, kind="receipt", message_id=row.id,
                        attempts=MAX_ATTEMPTS, status=smppcore.status_name(resp.command_status))
        now = time.time()
        if self._ring is not None:
            self._ring.note(row.id, "receipt_delivered" if ok else "receipt_dropped", now, resp.command_status)
        self.delivered += 1
        self._settle(row, _DELIVERED if ok else _DROPPED, now)

    def _settle(self, row: MessageRow, event: ReceiptDelivered | ReceiptDropped, now: float) -> None:
        """Nothing more is owed for ``row``: say so in its row (written with the next commit)."""
        try:
            apply(row, event, now, _NO_RETRIES)
        except InvalidTransition:  # settled already (a copy of it was in two outboxes after a restart)
            return
        self._settled.add(row)  # the acknowledgements of one loop turn go to the store in one save

    def _save_settled(self, rows: list[MessageRow]) -> None:
        if rows:
            self.store.save(rows)

    def _acked(self, resp: Pdu, record: Delivery) -> None:
        if resp.command_status == CommandStatus.ESME_ROK or record.attempts + 1 >= MAX_ATTEMPTS:
            if resp.command_status != CommandStatus.ESME_ROK:
                log.warning("delivery_dropped", account=record.account, kind=record.kind, delivery=record.id,
                            attempts=MAX_ATTEMPTS, status=smppcore.status_name(resp.command_status))
            elif self._trace:
                bind = self.answered_on
                where = bind_name(bind.peername, bind.session.state.value) if bind is not None else None
                self.msglog.delivered(record.kind, record.account, decode(record.pdu), where, resp.command_status,
                                      record.attempts + 1)
            self.delivered += 1
            self.store.delete_delivery(record.id)
            return
        record.attempts += 1
        assert self.loop is not None  # set by start(), before anything is delivered
        self.loop.call_later(RETRY_DELAY, self._enqueue, record, decode(record.pdu))

    # ---- binds and expiry ---------------------------------------------------------------------

    def bound(self, account: str) -> None:
        box = self.outboxes.get(account)
        if box is not None:
            box.pump()

    def sweep(self, now: float | None = None) -> int:
        """Drop queued deliveries past their hold time; returns how many."""
        now = time.time() if now is None else now
        dropped = 0
        for account, box in self.outboxes.items():
            keep = []
            hold = self.hold(account)
            for item in box.queue:
                context = item.context
                if isinstance(context, ReceiptInFlight):
                    if context.row.updated_at + hold <= now:
                        dropped += 1
                        self.expired += 1
                        self._settle(context.row, _DROPPED, time.time())
                        log.info("delivery_expired", account=account, kind="receipt", message_id=context.row.id)
                        continue
                elif context.expires_at is not None and context.expires_at <= now:
                    dropped += 1
                    self.expired += 1
                    self.store.delete_delivery(context.id)
                    log.info("delivery_expired", account=account, kind=context.kind, delivery=context.id)
                    continue
                keep.append(item)
            if len(keep) != len(box.queue):
                box.queue.clear()
                box.queue.extend(keep)
        return dropped

    async def _sweep_forever(self, interval: float = 5.0) -> None:
        while True:
            await asyncio.sleep(interval)
            self.sweep()
