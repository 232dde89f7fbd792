"""Receipts and MO for HTTP applications, POSTed as signed JSON webhooks until a 2xx.

This is another destination of :class:`router.delivery.Deliveries`, beside the
outboxes of SMPP receiver binds, on the same durable path: a receipt is in its
message's row (``receipt_owed``) and an MO in the deliveries table *before* the
upstream gets its deliver_sm_resp; the row is settled (or the MO record deleted)
only once the application answered 2xx. A hub killed meanwhile reloads them at its
next start (``Deliveries.start``) and they come here again, so a webhook arrives at
least once: its ``id`` (the same on every attempt) lets the receiver de-duplicate.

Which receipts come here (decided without a store read, on the receipt's hot path):
those of accounts with a ``webhook_url``, and those of messages whose id starts with
``w`` (:data:`WEBHOOK_ID_MARK`: the HTTP API gives that mark to messages that name a
``callback_url`` or a Kannel ``dlr-url``, and it survives restarts with the id).
An upstream's intermediate notification about a message of the HTTP API (marked) comes here
too: Kannel's dlr type 4 for a ``dlr-url``, else an ``"intermediate"`` webhook to its
``callback_url``; and the dispatcher tells :meth:`WebhookSender.accepted_upstream` when an
upstream accepted a marked message, for Kannel's dlr type 8 (:mod:`.kannel` lists them all).
MO messages come here for accounts with a ``webhook_url`` and for ``[[mo_routes]]`` with a
``webhook`` (stored for the route's :attr:`~router.config.MoRoute.webhook_owner`, signed with
its ``webhook_secret``; unsigned, deprecated, when it has none); the parts of a long MO
are held until all have come and go as one webhook, text joined and decoded (UDH
stripped); a long MO whose parts do not all come within ``MO_PARTS_TIMEOUT`` is sent
with the parts it has (``"complete": false``).

Each POST carries ``Smpphub-Webhook-Id``, ``Smpphub-Timestamp`` (unix seconds) and
``Smpphub-Signature: v1=<hex HMAC-SHA256(webhook_secret, "<timestamp>.<body>")>``,
so the receiver can check it came from the hub and is fresh (an MO route without a secret
sends no signature). Kannel ``dlr-url``s get
a plain GET with the escapes filled in, as Kannel sends them (:mod:`.kannel`).

Bounds: ``webhook_concurrency`` requests at once, ``webhook_queue`` jobs waiting in
memory (beyond that a job stays in the store only, sent after the next start),
``webhook_timeout`` per request, back-off doubling from ``webhook_retry_initial`` to
``webhook_retry_max``; a receipt is given up once it waited the account's
``receipt_hold`` (as for an ESME that never binds).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from functools import partial
from typing import Literal

import aiohttp
import msgspec
import structlog

from smppcore import Pdu, Tag, decode
from smppcore.concat import concat_info
from smppcore.pdus import DataSm, DeliverSm, SubmitSm
from smppcore.text import decode_text

from ..config import Account, HttpConfig, HubConfig
from ..lifecycle import MessageRow
from ..msglog import receipted_id
from ..store import Delivery, Store
from ..store.base import HttpMeta, copy_row

__all__ = ["WebhookSender", "WEBHOOK_ID_MARK", "sign", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "ID_HEADER"]

log = structlog.get_logger("smpphub.webhooks")

WEBHOOK_ID_MARK = "w"
ID_HEADER = "Smpphub-Webhook-Id"
TIMESTAMP_HEADER = "Smpphub-Timestamp"
SIGNATURE_HEADER = "Smpphub-Signature"
MO_PARTS_TIMEOUT = 600.0
MO_GROUPS = 10_000
#: how long an MO route's webhook is retried (an account's is its receipt_hold): Deliveries' default hold
MO_ROUTE_HOLD = 3 * 86400.0
_ENCODER = msgspec.json.Encoder()

#: what to do once a webhook was answered 2xx (True) or given up (False)
Done = Callable[[bool], None]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``Smpphub-Signature`` header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class ReceiptHook(msgspec.Struct, kw_only=True):
    """The body of a receipt webhook."""

    id: str
    type: Literal["receipt"]
    message_id: str  # the id the API gave (the first part's, for a long message)
    part_id: str
    state: str  # delivered, undeliverable, expired, rejected, cancelled
    error: int = 0
    to: str
    sender: str = msgspec.field(default="", name="from")
    reference: str | None = None
    upstream_id: str | None = None
    at: str


class MoHook(msgspec.Struct, kw_only=True):
    """The body of an MO webhook (one per message, however many parts it came in)."""

    id: str
    type: Literal["mo", "intermediate"]  # intermediate: an upstream's non-final notification (ENROUTE...)
    to: str
    sender: str = msgspec.field(default="", name="from")
    text: str
    data_coding: int
    parts: int = 1
    complete: bool = True
    at: str


class _Job:
    """One webhook owed: where, what, and what to do when it is answered."""

    __slots__ = ("key", "url", "secret", "body", "method", "done", "attempts", "deadline")

    def __init__(self, key: str, url: str, secret: str, body: bytes, done: Done, deadline: float,
                 method: str = "POST") -> None:
        self.key = key
        self.url = url
        self.secret = secret
        self.body = body
        self.method = method
        self.done = done
        self.attempts = 0
        self.deadline = deadline


class MoTarget(msgspec.Struct, frozen=True, kw_only=True):
    """Where the MO stored for one ``Delivery.account`` go: an account's webhook_url or an MO route's webhook."""

    owner: str  # the account's system_id, or the route's webhook_owner
    url: str
    secret: str  # "" (an MO route without one, deprecated): sent unsigned
    hold: float  # seconds it is retried before it is given up


class MoKey(msgspec.Struct, frozen=True):
    """Which long MO a part belongs to: references are only unique per sender and recipient."""

    account: str
    source: str
    destination: str
    reference: int
    total: int


class _MoGroup:
    """The parts of one long MO received so far, each with what to do once the webhook is answered."""

    __slots__ = ("parts", "dones", "first", "total", "timer")

    def __init__(self, total: int, first: Pdu) -> None:
        self.timer: asyncio.TimerHandle | None = None  # gives up waiting for the missing parts
        self.parts: dict[int, bytes] = {}
        self.dones: list[Done] = []
        self.first = first
        self.total = total


def _ignore(ok: bool) -> None:
    """What a job nothing waits for does when it is answered: nothing (Kannel's dlr type 8 is not stored)."""


def _marked_notification(record: Delivery, pdu: Pdu) -> str | None:
    """The hub's id of the message an intermediate notification is about, if the HTTP API gave it (marked)."""
    if record.kind != "receipt":
        return None
    message_id = receipted_id(pdu)
    return message_id if message_id.startswith(WEBHOOK_ID_MARK) else None


def _all_done(dones: list[Done], ok: bool) -> None:
    for done in dones:
        done(ok)


def _url(meta: HttpMeta | None, account: Account | None) -> str | None:
    """Where a message's webhooks go: its callback_url, else its account's webhook_url (None or "": nowhere)."""
    return (meta.callback_url if meta is not None else "") or (account.webhook_url if account else None)


def _text(pdu: DeliverSm | DataSm, payload: bytes | None = None) -> str:
    data = payload if payload is not None else (pdu.short_message if isinstance(pdu, DeliverSm) else b"")
    if payload is None and not data:
        raw = pdu.tlvs.get(Tag.MESSAGE_PAYLOAD, b"")
        data = raw if isinstance(raw, bytes) else b""
    try:
        return decode_text(data, pdu.data_coding)
    except (ValueError, UnicodeDecodeError):
        return data.decode("latin-1")


class WebhookSender:
    """The webhook destination of the hub's deliveries (see the module docstring)."""

    def __init__(self, config: HubConfig, store: Store) -> None:
        self.store = store
        self.settings = config.http or HttpConfig()
        self.configure(config)
        self._queue: deque[_Job] = deque()
        self._ready = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._session: aiohttp.ClientSession | None = None
        self._groups: OrderedDict[MoKey, _MoGroup] = OrderedDict()
        self._parts_waiting = 0  # the dones of every group in _groups, kept as they come and go (see pending)
        self._busy = 0  # requests in progress
        self.sent = 0  # webhooks answered 2xx
        self.retries = 0  # attempts answered otherwise (or not at all) and tried again
        self.dropped = 0  # given up (past the account's receipt_hold)
        self.overflow = 0  # not queued in memory: the store keeps them for the next start

    def configure(self, config: HubConfig) -> None:
        """The accounts (and their webhook URLs) and MO routes' webhooks of a (re)loaded configuration."""
        self.accounts = {a.system_id: a for a in config.accounts}
        self._hooked = {a.system_id for a in config.accounts if a.webhook_url}
        targets = [MoTarget(owner=a.system_id, url=a.webhook_url, secret=a.webhook_secret, hold=a.receipt_hold)
                   for a in config.accounts if a.webhook_url]
        targets += [MoTarget(owner=m.webhook_owner, url=m.webhook, secret=m.webhook_secret, hold=MO_ROUTE_HOLD)
                    for m in config.mo_routes if m.webhook]
        self._mo_targets = {t.owner: t for t in targets}

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout)
        connector = aiohttp.TCPConnector(limit=self.settings.webhook_concurrency)
        self._session = aiohttp.ClientSession(timeout=timeout, connector=connector)
        loop = asyncio.get_running_loop()
        self._workers = [loop.create_task(self._work()) for _ in range(self.settings.webhook_concurrency)]

    async def stop(self) -> None:
        """Stop sending: what is not answered yet stays in the store for the next start.

        The MO parts still waiting for their siblings are let go with their groups' timers
        (the store keeps them; the next start joins them again), so :meth:`pending` counts
        only the jobs left in memory, never a group whose timer is gone."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._groups.clear()
        self._parts_waiting = 0
        tasks = [*self._workers, *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def pending(self) -> int:
        """Webhooks queued or waiting for a retry, and MO parts waiting for their siblings.

        Asked before every job is queued, so it is a sum of counters: the parts waiting are
        counted as groups gain and lose them (not summed over up to ``MO_GROUPS`` groups), and
        each group's expiry timer, one of ``_timers``, is not a webhook owed.
        """
        return len(self._queue) + self._busy + len(self._timers) - len(self._groups) + self._parts_waiting

    # ---- the WebhookSink interface (router.delivery) ---------------------------------------

    def takes_receipt(self, row: MessageRow) -> bool:
        return row.id.startswith(WEBHOOK_ID_MARK) or row.account in self._hooked

    def takes_mo(self, record: Delivery, pdu: Pdu) -> bool:
        return _marked_notification(record, pdu) is not None or record.account in self._mo_targets

    def send_receipt(self, row: MessageRow, pdu: Pdu, done: Done) -> None:
        self._spawn(self._receipt(row, pdu, done), f"r-{row.id}")

    def send_mo(self, record: Delivery, pdu: Pdu, done: Done) -> None:
        message_id = _marked_notification(record, pdu)
        if message_id is not None:  # about a message of the HTTP API: it goes where that message's receipts go
            self._spawn(self._notification(message_id, record, pdu, done), f"mo-{record.id}")
            return
        target = self._mo_targets.get(record.account)
        if target is None or not isinstance(pdu, (DeliverSm, DataSm)):  # a reload took its webhook away
            log.warning("webhook_dropped", webhook=f"mo-{record.id}", account=record.account, reason="no webhook")
            done(False)
            return
        try:
            info = concat_info(pdu)
        except ValueError:  # a malformed UDH: the message goes as it came
            info = None
        if info is None or info.total <= 1:
            text = _text(pdu, info.payload if info is not None else None)
            self._mo(target, pdu, text=text, parts=1, complete=True, dones=[done], hook_id=f"mo-{record.id}",
                     kind="intermediate" if record.kind == "receipt" else "mo")
            return
        key = MoKey(record.account, pdu.source_addr, pdu.destination_addr, info.reference, info.total)
        group = self._groups.get(key)
        if group is None:
            while len(self._groups) >= MO_GROUPS:
                oldest = next(iter(self._groups))
                self._flush(oldest, self._ungroup(oldest))
            group = self._groups[key] = _MoGroup(info.total, pdu)
            group.timer = self._later(MO_PARTS_TIMEOUT, self._expire, key, group)
        group.parts.setdefault(info.seq, info.payload)
        group.dones.append(done)
        self._parts_waiting += 1
        if len(group.parts) == group.total:
            self._flush(key, self._ungroup(key))

    def _ungroup(self, key: MoKey) -> _MoGroup:
        """The group of ``key``, taken out of those waiting for parts (its parts out of the count)."""
        group = self._groups.pop(key)
        self._parts_waiting -= len(group.dones)
        return group

    def _expire(self, key: MoKey, group: _MoGroup) -> None:
        if self._groups.get(key) is group:
            self._flush(key, self._ungroup(key))

    def _flush(self, key: MoKey, group: _MoGroup) -> None:
        """One webhook for the parts of a long MO that came (all of them, unless it timed out)."""
        if group.timer is not None:
            group.timer.cancel()
            self._timers.discard(group.timer)
        target = self._mo_targets.get(key.account)
        first = group.first
        if target is None or not isinstance(first, (DeliverSm, DataSm)):  # a reload took its webhook away
            log.warning("webhook_dropped", account=key.account, parts=len(group.parts), reason="no webhook")
            _all_done(group.dones, False)
            return
        payload = b"".join(group.parts[i] for i in sorted(group.parts))
        complete = len(group.parts) == group.total
        # the same id for the same message after a restart (its parts are reloaded and joined again)
        hook_id = "mo-" + hashlib.sha256(msgspec.json.encode(key) + payload).hexdigest()[:24]
        self._mo(target, first, text=_text(first, payload), parts=len(group.parts), complete=complete,
                 dones=group.dones, hook_id=hook_id)

    def _mo(self, target: MoTarget, pdu: DeliverSm | DataSm, *, text: str, parts: int, complete: bool,
            dones: list[Done], hook_id: str, kind: Literal["mo", "intermediate"] = "mo") -> None:
        body = _ENCODER.encode(MoHook(id=hook_id, type=kind, to=pdu.destination_addr, sender=pdu.source_addr,
                                      text=text, data_coding=pdu.data_coding, parts=parts, complete=complete,
                                      at=_iso(time.time())))
        self._queue_job(_Job(hook_id, target.url, target.secret, body, partial(_all_done, dones),
                             time.time() + target.hold))

    # ---- the SubmitListener interface (router.dispatch) ---------------------------------------

    def accepted_upstream(self, row: MessageRow) -> None:
        """An upstream accepted ``row``: Kannel's dlr-mask 8 (smsc submit ack) for a message that asked for it."""
        if row.id.startswith(WEBHOOK_ID_MARK):
            self._spawn(self._ack(copy_row(row)), f"a-{row.id}", note="not sent (it is not stored)")

    # ---- what is sent ------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[object, object, None], key: str,
               note: str = "waits in the store until the next start") -> None:
        """Run ``work`` (a store lookup, then a job queued), ``webhook_queue`` of them at most."""
        if len(self._tasks) >= self.settings.webhook_queue:  # lookups piling up
            work.close()
            self.overflow += 1
            log.warning("webhook_queue_full", webhook=key, note=note)
            return
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _meta(self, message_id: str) -> HttpMeta | None | Exception:
        try:
            return await self.store.http_meta(message_id)
        except Exception as exc:  # noqa: BLE001 - the store failed: what is owed stays owed, sent after a restart
            log.error("webhook_meta_failed", message_id=message_id, error=f"{type(exc).__name__}: {exc}")
            return exc

    async def _ack(self, row: MessageRow) -> None:
        from .kannel import ack_request

        meta = await self._meta(row.id)
        # one per message, as Kannel sends one for a split message: its first part's
        if not isinstance(meta, HttpMeta) or not meta.kannel or meta.message != row.id:
            return
        url = ack_request(meta.kannel, row)
        if url is not None:
            self._queue_job(_Job(f"a-{row.id}", url, "", b"", _ignore, time.time() + self._hold(row.account),
                                 method="GET"))

    async def _notification(self, message_id: str, record: Delivery, pdu: Pdu, done: Done) -> None:
        """An upstream's intermediate notification about a message of the HTTP API: Kannel's dlr type 4
        for a dlr-url, else an "intermediate" webhook to the message's callback_url (or the account's)."""
        from .kannel import intermediate_request

        meta = await self._meta(message_id)
        if isinstance(meta, Exception):
            return
        if meta is not None and meta.kannel:
            try:
                row = await self.store.get(message_id)
            except Exception as exc:  # noqa: BLE001 - as in _meta: it stays stored, sent after a restart
                log.error("webhook_meta_failed", message_id=message_id, error=f"{type(exc).__name__}: {exc}")
                return
            url = intermediate_request(meta.kannel, row, pdu) if row is not None else None
            if url is None:  # the dlr-mask did not ask for it
                done(True)
                return
            self._queue_job(_Job(f"mo-{record.id}", url, "", b"", done, time.time() + self._hold(record.account),
                                 method="GET"))
            return
        account = self.accounts.get(record.account)
        url = _url(meta, account)
        if account is None or not url or not isinstance(pdu, (DeliverSm, DataSm)):
            log.warning("webhook_without_url", message_id=message_id, account=record.account, kind="intermediate")
            done(False)
            return
        target = MoTarget(owner=record.account, url=url, secret=account.webhook_secret, hold=account.receipt_hold)
        self._mo(target, pdu, text=_text(pdu), parts=1, complete=True, dones=[done], hook_id=f"mo-{record.id}",
                 kind="intermediate")

    def _hold(self, system_id: str) -> float:
        account = self.accounts.get(system_id)
        return account.receipt_hold if account is not None else MO_ROUTE_HOLD

    async def _receipt(self, row: MessageRow, pdu: Pdu, done: Done) -> None:
        account = self.accounts.get(row.account)
        meta = await self._meta(row.id)
        if isinstance(meta, Exception):
            return
        deadline = row.updated_at + self._hold(row.account)
        if meta is not None and meta.kannel:
            from .kannel import dlr_request

            url = dlr_request(meta.kannel, row, pdu)
            if url is None:  # the dlr-mask did not ask for this outcome
                done(True)
                return
            self._queue_job(_Job(f"r-{row.id}", url, "", b"", done, deadline, method="GET"))
            return
        url = _url(meta, account)
        if account is None or not url:
            log.warning("webhook_without_url", message_id=row.id, account=row.account)
            done(False)
            return
        self._queue_job(_Job(f"r-{row.id}", url, account.webhook_secret, self._receipt_body(row, pdu, meta),
                             done, deadline))

    @staticmethod
    def _receipt_body(row: MessageRow, pdu: Pdu, meta: HttpMeta | None) -> bytes:
        submit = decode(row.pdu)
        to = submit.destination_addr if isinstance(submit, SubmitSm) else ""
        sender = submit.source_addr if isinstance(submit, SubmitSm) else ""
        return _ENCODER.encode(ReceiptHook(
            id=f"r-{row.id}", type="receipt", message_id=meta.message if meta is not None else row.id, part_id=row.id,
            state=row.state.value, error=row.error, to=to, sender=sender,
            reference=(meta.reference or None) if meta is not None else None, upstream_id=row.upstream_id,
            at=_iso(row.updated_at),
        ))

    # ---- the queue, the workers, the retries ----------------------------------------------------

    def _queue_job(self, job: _Job) -> None:
        if self.pending() >= self.settings.webhook_queue:  # queued, in progress and waiting to retry, together
            self.overflow += 1
            log.warning("webhook_queue_full", webhook=job.key, note="waits in the store until the next start")
            return
        self._queue.append(job)
        self._ready.set()

    def _later(self, delay: float, fn: Callable[..., None], *args: object) -> asyncio.TimerHandle:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            fn(*args)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)
        return handle

    async def _work(self) -> None:
        while True:
            while not self._queue:
                self._ready.clear()
                await self._ready.wait()
            job = self._queue.popleft()
            self._busy += 1
            try:
                ok = await self._attempt(job)
            finally:
                self._busy -= 1
            if ok:
                self.sent += 1
                job.done(True)
            elif time.time() >= job.deadline:
                self.dropped += 1
                log.warning("webhook_dropped", webhook=job.key, url=job.url, attempts=job.attempts)
                job.done(False)
            else:
                self.retries += 1
                delay = min(self.settings.webhook_retry_max,
                            self.settings.webhook_retry_initial * 2.0 ** min(job.attempts - 1, 32))
                self._later(delay, self._queue_job, job)

    async def _attempt(self, job: _Job) -> bool:
        assert self._session is not None
        job.attempts += 1
        headers = {}
        if job.method == "POST":
            stamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", ID_HEADER: job.key, TIMESTAMP_HEADER: stamp}
            if job.secret:
                headers[SIGNATURE_HEADER] = sign(job.secret, stamp, job.body)
        try:
            async with self._session.request(job.method, job.url, data=job.body or None, headers=headers) as resp:
                await resp.read()
                ok = 200 <= resp.status < 300
                if not ok:
                    log.info("webhook_refused", webhook=job.key, url=job.url, status=resp.status,
                             attempt=job.attempts)
                return ok
        except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
            log.info("webhook_failed", webhook=job.key, url=job.url, attempt=job.attempts,
                     error=f"{type(exc).__name__}: {exc}")
            return False
