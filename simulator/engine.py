"""The simulated SMSC: what it answers, what it sends back, what it remembers.

:class:`Simulator` is an :class:`smppcore.SmscHandler`. With zero latency and no
faults configured, a submit costs one record and one response returned
directly from :meth:`Simulator.handle` (no task, no timer), so the simulator
runs at the speed of the server underneath it.

Everything the simulator sends to an ESME (receipts, MO) goes through an
:class:`Outbox` per account: it feeds the account's bound receiver/transceiver
connections as their windows allow, holds messages (bounded) while none is
bound, and puts back whatever a lost connection left unanswered, so no receipt
is lost and none is sent twice to a connection that acknowledged it.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import random
import re
import time
from typing import Any, Callable

import msgspec

import smppcore
from smppcore import CommandId, CommandStatus, MessageState, Pdu, State, Tag
from smppcore.receipt import build_receipt
from smppcore.server import SmscConnection, SmscHandler

from .behaviour import DelaySampler, MessageIds, TokenBucket, WeightedChoice
from .config import SimulatorConfig, parse_state, parse_status

__all__ = ["Simulator", "Submit", "Message", "Stats", "Outbox"]

_SUBMITS = {CommandId.SUBMIT_SM, CommandId.DATA_SM, CommandId.SUBMIT_MULTI}
_FINAL = {"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "UNKNOWN", "REJECTD"}
_BIND_NAMES = {CommandId.BIND_TRANSMITTER: "tx", CommandId.BIND_RECEIVER: "rx", CommandId.BIND_TRANSCEIVER: "trx"}


class Submit(msgspec.Struct, gc=False):
    """One accepted submit_sm / data_sm / submit_multi (one segment of a long message)."""

    message_id: str
    system_id: str
    pdu: Pdu
    received_at: float
    state: str = "ENROUTE"
    final_date: float | None = None
    receipts_sent: int = 0


class Message(msgspec.Struct, gc=False):
    """A whole message as the handset would see it: segments reassembled."""

    system_id: str
    source_addr: str
    destination_addr: str
    data_coding: int
    payload: bytes
    message_ids: list[str]
    received_at: float

    @property
    def text(self) -> str:
        from smppcore.text import decode_text

        return decode_text(self.payload, self.data_coding)

    @property
    def parts(self) -> int:
        return len(self.message_ids)


class Stats(msgspec.Struct):
    binds: int = 0
    bound: int = 0
    bind_refused: int = 0
    submits: int = 0
    accepted: int = 0
    rejected: dict[str, int] = {}
    throttled: int = 0
    receipts_sent: int = 0
    receipts_acked: int = 0
    receipts_pending: int = 0
    mo_sent: int = 0
    mo_acked: int = 0
    held: int = 0
    dropped_connections: int = 0
    messages: int = 0


class Outbox:
    """What one account has to be sent (receipts, MO), fed to its bound connections."""

    def __init__(self, sim: Simulator, system_id: str) -> None:
        self.sim = sim
        self.system_id = system_id
        self.queue: collections.deque[tuple[Pdu, Callable[[Pdu], None] | None]] = collections.deque()

    def put(self, pdu: Pdu, on_ack: Callable[[Pdu], None] | None = None) -> None:
        if len(self.queue) >= self.sim.config.receipts.hold_limit:
            self.queue.popleft()  # bounded: the oldest held message gives way
            self.sim.stats.held -= 1
        self.queue.append((pdu, on_ack))
        self.sim.stats.held += 1
        self.pump()

    def pump(self) -> None:
        queue = self.queue
        if not queue:
            return
        for conn in self.sim.receivers(self.system_id):
            session = conn.session
            while queue and session.can_send and conn.is_open:
                pdu, on_ack = queue.popleft()
                self.sim.stats.held -= 1
                pdu = msgspec.structs.replace(pdu, sequence_number=0)
                fut = conn.send_nowait(pdu)
                fut.add_done_callback(lambda f, p=pdu, a=on_ack: self._done(f, p, a))
            if not queue:
                return

    def _done(self, fut: asyncio.Future, pdu: Pdu, on_ack: Callable[[Pdu], None] | None) -> None:
        if fut.cancelled() or fut.exception() is not None:
            # the connection went away (or the ESME never answered): try again later
            self.queue.appendleft((pdu, on_ack))
            self.sim.stats.held += 1
        else:
            if on_ack is not None:
                on_ack(fut.result())
        self.sim.loop.call_soon(self.pump)


class Simulator(SmscHandler):
    """A scriptable SMSC. See :class:`simulator.config.SimulatorConfig` for what it does."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SimulatorConfig()
        self.system_id = config.system_id
        self.rng = random.Random(config.seed)
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set by attach()
        self.stats = Stats()
        self.submits: collections.deque[Submit] = collections.deque(maxlen=config.record_limit)
        self.messages: collections.deque[Message] = collections.deque(maxlen=config.record_limit)
        self.mo_sent: collections.deque[Pdu] = collections.deque(maxlen=config.record_limit)
        self.receipts: collections.deque[Pdu] = collections.deque(maxlen=config.record_limit)
        self.by_id: dict[str, Submit] = {}
        self.connections: set[SmscConnection] = set()
        self._outboxes: dict[str, Outbox] = {}
        self._accounts = {a.system_id: a for a in config.accounts}
        self._ids = MessageIds(config.receipts.message_id_format, self.rng)
        self._latency = DelaySampler(config.submit_latency, self.rng)
        self._receipt_delay = DelaySampler(config.receipts.delay, self.rng)
        self._final_state = WeightedChoice(config.receipts.final_states, self.rng)
        self._rules = [(re.compile(r.destination), parse_status(r.status), r.probability) for r in config.errors.rules]
        self._probabilities = [(parse_status(k), v) for k, v in config.errors.probabilities.items() if v > 0]
        self._fail_next: collections.deque[int] = collections.deque()
        self._total_bucket: TokenBucket | None = None
        self._throttle_status = parse_status(config.throttle.status)
        self._reassembler: Any = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self._mo_handle: asyncio.TimerHandle | None = None
        self._fast = (
            self._latency.is_zero
            and not self._rules
            and not self._probabilities
            and not config.throttle.per_bind
            and not config.throttle.total
            and not config.chaos.drop_after
            and not config.chaos.drop_probability
        )

    # ---- lifecycle -----------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind the simulator to the loop its server runs on (done by :func:`start`)."""
        self.loop = loop
        self._total_bucket = TokenBucket(self.config.throttle.total, loop.time)
        if self.config.mo.rate > 0:
            self._mo_handle = loop.call_later(1 / self.config.mo.rate, self._generate_mo)

    def detach(self) -> None:
        if self._mo_handle is not None:
            self._mo_handle.cancel()
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()

    def _later(self, delay: float, fn: Callable, *args: Any) -> None:
        if delay <= 0:
            self.loop.call_soon(fn, *args)
            return
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            fn(*args)

        handle = self.loop.call_later(delay, fire)
        self._timers.add(handle)

    # ---- connections and binds -----------------------------------------------------------

    def connected(self, conn: SmscConnection) -> None:
        self.connections.add(conn)
        conn.submitted = 0  # type: ignore[attr-defined]
        conn.bucket = TokenBucket(self.config.throttle.per_bind, self.loop.time)  # type: ignore[attr-defined]
        if self.config.chaos.ignore_enquire_link:
            conn.session.answer_enquire_link = False

    def closed(self, conn: SmscConnection) -> None:
        self.connections.discard(conn)
        if conn.session.state is not State.OPEN or conn.system_id:
            self.stats.bound = sum(1 for c in self.connections if c.session.state.is_bound)

    def authenticate(self, conn: SmscConnection, bind: Pdu) -> int | Any:
        self.stats.binds += 1
        status = self._check_bind(bind)
        if status:
            self.stats.bind_refused += 1
        delay = self.config.chaos.bind_delay_ms
        if delay:
            return self._delayed(delay / 1000, status)
        return status

    async def _delayed(self, delay: float, value: int) -> int:
        await asyncio.sleep(delay)
        return value

    def _check_bind(self, bind: Pdu) -> int:
        accounts = self._accounts
        if accounts:
            account = accounts.get(bind.system_id)
            if account is None:
                return CommandStatus.ESME_RINVSYSID
            if not hmac.compare_digest(account.password.encode(), bind.password.encode()):
                return CommandStatus.ESME_RINVPASWD
            if _BIND_NAMES[bind.command_id] not in account.bind_types:
                return CommandStatus.ESME_RBINDFAIL
            limit = account.max_binds or self.config.max_binds_per_account
        else:
            limit = self.config.max_binds_per_account
        if sum(1 for c in self.connections if c.system_id == bind.system_id and c.session.state.is_bound) >= limit:
            return CommandStatus.ESME_RBINDFAIL
        return 0

    def bound(self, conn: SmscConnection) -> None:
        self.stats.bound = sum(1 for c in self.connections if c.session.state.is_bound)
        if conn.session.state in (State.BOUND_RX, State.BOUND_TRX):
            self.outbox(conn.system_id).pump()

    def receivers(self, system_id: str) -> list[SmscConnection]:
        return [
            c
            for c in self.connections
            if c.system_id == system_id and c.session.state in (State.BOUND_RX, State.BOUND_TRX) and c.is_open
        ]

    def outbox(self, system_id: str) -> Outbox:
        box = self._outboxes.get(system_id)
        if box is None:
            box = self._outboxes[system_id] = Outbox(self, system_id)
        return box

    # ---- requests -----------------------------------------------------------------------

    def handle(self, conn: SmscConnection, pdu: Pdu) -> Pdu | None:
        cid = pdu.command_id
        if cid in _SUBMITS:
            return self._submit(conn, pdu)
        if cid == CommandId.QUERY_SM:
            return self._query(pdu)
        if cid == CommandId.CANCEL_SM:
            return self._cancel(pdu)
        if cid == CommandId.REPLACE_SM:
            return self._replace(pdu)
        if cid == CommandId.ENQUIRE_LINK:
            return None  # only reaches us when chaos.ignore_enquire_link is on
        return pdu.make_response(command_status=CommandStatus.ESME_RINVCMDID)

    def _submit(self, conn: SmscConnection, pdu: Pdu) -> Pdu | None:
        stats = self.stats
        stats.submits += 1
        if not self._fast:
            refusal = self._refusal(conn, pdu)
            if refusal is not None:
                if refusal < 0:  # chaos: the connection dies with the message unanswered
                    stats.dropped_connections += 1
                    conn.abort()
                    return None
                name = smppcore.status_name(refusal)
                stats.rejected[name] = stats.rejected.get(name, 0) + 1
                return pdu.make_response(command_status=refusal)
        elif self._fail_next:
            status = self._fail_next.popleft()
            name = smppcore.status_name(status)
            stats.rejected[name] = stats.rejected.get(name, 0) + 1
            return pdu.make_response(command_status=status)
        resp = self._accept(conn, pdu)
        if self._fast:
            return resp
        conn.submitted += 1  # type: ignore[attr-defined]
        delay = self._latency()
        drop = self.config.chaos.drop_after and conn.submitted >= self.config.chaos.drop_after  # type: ignore[attr-defined]
        if delay > 0:
            self._later(delay, self._respond_late, conn, resp, drop)
            return None
        if drop:
            self.loop.call_soon(self._drop, conn)
        return resp

    def _respond_late(self, conn: SmscConnection, resp: Pdu, drop: bool) -> None:
        conn.respond(resp)
        if drop:
            self.loop.call_soon(self._drop, conn)

    def _drop(self, conn: SmscConnection) -> None:
        self.stats.dropped_connections += 1
        conn.close()

    def _refusal(self, conn: SmscConnection, pdu: Pdu) -> int | None:
        """The status to refuse ``pdu`` with, -1 to drop the connection, None to accept."""
        bucket = conn.bucket  # type: ignore[attr-defined]
        if not bucket.take() or not self._total_bucket.take():
            self.stats.throttled += 1
            return self._throttle_status
        if self._fail_next:
            return self._fail_next.popleft()
        chaos = self.config.chaos
        if chaos.drop_probability and self.rng.random() < chaos.drop_probability:
            return -1
        if self._rules:
            dest = _destinations(pdu)
            for pattern, status, probability in self._rules:
                if any(pattern.search(d) for d in dest) and (probability >= 1 or self.rng.random() < probability):
                    if pdu.command_id != CommandId.SUBMIT_MULTI:
                        return status
        if self._probabilities:
            r = self.rng.random()
            for status, p in self._probabilities:
                if r < p:
                    return status
                r -= p
        return None

    def _accept(self, conn: SmscConnection, pdu: Pdu) -> Pdu:
        message_id = self._ids.next()
        now = time.time()
        record = Submit(message_id, conn.system_id, pdu, now)
        self.submits.append(record)
        by_id = self.by_id
        by_id[message_id] = record
        if len(by_id) > self.config.record_limit:
            del by_id[next(iter(by_id))]
        self.stats.accepted += 1
        self._record_message(conn, pdu, message_id, now)
        if pdu.command_id == CommandId.SUBMIT_MULTI:
            resp = pdu.make_response(message_id=message_id, unsuccess_sme=self._unsuccess(pdu))
        else:
            resp = pdu.make_response(message_id=message_id)
        rd = pdu.registered_delivery & 3
        if rd and self.config.receipts.enabled:
            self._schedule_receipts(record, rd, pdu.registered_delivery & 0x10)
        if self.config.mo.echo:
            self._echo(conn, pdu)
        return resp

    def _unsuccess(self, pdu: Pdu) -> list:
        out = []
        for d in pdu.dest_address:
            addr = getattr(d, "destination_addr", None)
            if addr is None:
                continue
            for pattern, status, probability in self._rules:
                if pattern.search(addr) and (probability >= 1 or self.rng.random() < probability):
                    out.append(smppcore.pdus.UnsuccessSme(addr, d.dest_addr_ton, d.dest_addr_npi, status))
                    break
        return out

    def _record_message(self, conn: SmscConnection, pdu: Pdu, message_id: str, now: float) -> None:
        payload = pdu.short_message if pdu.command_id != CommandId.DATA_SM else b""
        tlvs = pdu.tlvs
        if tlvs and Tag.MESSAGE_PAYLOAD in tlvs:
            payload = tlvs[Tag.MESSAGE_PAYLOAD]
        if pdu.esm_class & 0x40 or (tlvs and Tag.SAR_MSG_REF_NUM in tlvs):
            from smppcore.text import Reassembler, concat_info

            info = concat_info(pdu)
            if info is not None and info.total > 1:
                if self._reassembler is None:
                    self._reassembler = Reassembler(max_pending=self.config.record_limit)
                    self._segment_ids: dict[tuple, list[str]] = {}
                key = (conn.system_id, pdu.source_addr, _destinations(pdu)[0] if _destinations(pdu) else "", info.reference)
                self._segment_ids.setdefault(key, []).append(message_id)
                whole = self._reassembler.add(key, info, self.loop.time())
                if whole is None:
                    return
                ids = self._segment_ids.pop(key, [message_id])
                self._store_message(conn, pdu, whole, ids, now)
                return
            if info is not None:
                payload = info.payload
        self._store_message(conn, pdu, payload, [message_id], now)

    def _store_message(self, conn: SmscConnection, pdu: Pdu, payload: bytes, ids: list[str], now: float) -> None:
        dests = _destinations(pdu)
        self.messages.append(
            Message(conn.system_id, pdu.source_addr, dests[0] if len(dests) == 1 else ",".join(dests), pdu.data_coding, payload, ids, now)
        )
        self.stats.messages += 1
        if self._waiters:
            n = self.stats.messages
            for want, fut in list(self._waiters):
                if n >= want and not fut.done():
                    fut.set_result(None)

    # ---- receipts --------------------------------------------------------------------------

    def _schedule_receipts(self, record: Submit, rd: int, intermediate_asked: int) -> None:
        cfg = self.config.receipts
        final = self._final_state()
        self.stats.receipts_pending += 1
        if cfg.intermediate and (intermediate_asked or cfg.intermediate_always):
            for word in cfg.intermediate:
                self._later(self._receipt_delay() / 2, self._send_receipt, record, word, False)
        if rd == 2 and final == "DELIVRD":  # receipt on failure only
            self._later(self._receipt_delay(), self._finish_silently, record, final)
            return
        self._later(self._receipt_delay(), self._send_receipt, record, final, True)

    def _finish_silently(self, record: Submit, word: str) -> None:
        if record.state in _FINAL:
            return
        record.state = word
        record.final_date = time.time()
        self.stats.receipts_pending -= 1

    def _send_receipt(self, record: Submit, word: str, final: bool) -> None:
        if record.state in _FINAL:
            return  # cancelled meanwhile (cancel_sm)
        state = parse_state(word)
        pdu = record.pdu
        now = time.time()
        if final:
            record.state = word
            record.final_date = now
            self.stats.receipts_pending -= 1
        dest = pdu.destination_addr if pdu.command_id != CommandId.SUBMIT_MULTI else _destinations(pdu)[0]
        receipt = build_receipt(
            message_id=record.message_id,
            state=state,
            source_addr=pdu.source_addr,
            destination_addr=dest,
            source_addr_ton=pdu.source_addr_ton,
            source_addr_npi=pdu.source_addr_npi,
            dest_addr_ton=getattr(pdu, "dest_addr_ton", 0),
            dest_addr_npi=getattr(pdu, "dest_addr_npi", 0),
            submit_date=_utc(record.received_at),
            done_date=_utc(now),
            err="000" if state == MessageState.DELIVERED else "001",
            text=getattr(pdu, "short_message", b""),
            esm_class=0x04 if final else 0x20,
        )
        record.receipts_sent += 1
        self.stats.receipts_sent += 1
        self.receipts.append(receipt)
        self.outbox(record.system_id).put(receipt, self._receipt_acked)

    def _receipt_acked(self, resp: Pdu) -> None:
        self.stats.receipts_acked += 1

    # ---- MO ------------------------------------------------------------------------------------

    def _echo(self, conn: SmscConnection, pdu: Pdu) -> None:
        mo = smppcore.DeliverSm(
            source_addr=_destinations(pdu)[0] if _destinations(pdu) else "",
            destination_addr=pdu.source_addr,
            data_coding=pdu.data_coding,
            esm_class=pdu.esm_class & 0x40,
            short_message=getattr(pdu, "short_message", b""),
            tlvs={k: v for k, v in pdu.tlvs.items() if k in _ECHO_TLVS},
        )
        self._queue_mo(conn.system_id, mo)

    def _generate_mo(self) -> None:
        templates = self.config.mo.templates
        t = templates[self.rng.randrange(len(templates))]
        targets = [t.system_id] if t.system_id else sorted({c.system_id for c in self.connections if c.session.state in (State.BOUND_RX, State.BOUND_TRX)})
        if targets:
            self.send_mo(t.source_addr, t.destination_addr, t.text, system_id=targets[self.rng.randrange(len(targets))])
        self._mo_handle = self.loop.call_later(1 / self.config.mo.rate, self._generate_mo)

    def send_mo(self, source_addr: str, destination_addr: str, text: str | bytes, *, system_id: str | None = None, data_coding: int | None = None) -> list[Pdu]:
        """Send a mobile-originated message to ``system_id`` (or every account bound now)."""
        from smppcore.text import split_text

        if isinstance(text, bytes):
            segments = [(text, data_coding or 0, 0, {})]
        else:
            segments = [(s.short_message, s.data_coding, s.esm_class, s.tlvs) for s in split_text(text, data_coding=data_coding, reference=self.rng.randrange(256))]
        pdus = [
            smppcore.DeliverSm(source_addr=source_addr, destination_addr=destination_addr, source_addr_ton=1, source_addr_npi=1,
                               data_coding=dc, esm_class=esm, short_message=sm, tlvs=dict(tlvs))
            for sm, dc, esm, tlvs in segments
        ]
        targets = [system_id] if system_id else sorted({c.system_id for c in self.connections if c.session.state in (State.BOUND_RX, State.BOUND_TRX)})
        for target in targets:
            for pdu in pdus:
                self._queue_mo(target, pdu)
        return pdus

    def _queue_mo(self, system_id: str, pdu: Pdu) -> None:
        self.stats.mo_sent += 1
        self.mo_sent.append(pdu)
        self.outbox(system_id).put(pdu, self._mo_acked)

    def _mo_acked(self, resp: Pdu) -> None:
        self.stats.mo_acked += 1

    # ---- message management ----------------------------------------------------------------------

    def _query(self, pdu: Pdu) -> Pdu:
        record = self.by_id.get(pdu.message_id)
        if record is None:
            return pdu.make_response(command_status=CommandStatus.ESME_RQUERYFAIL)
        state = parse_state(record.state) or MessageState.ENROUTE
        final_date = ""
        if record.final_date is not None:
            from smppcore.smpptime import format_absolute

            final_date = format_absolute(_utc(record.final_date))
        return pdu.make_response(message_id=record.message_id, final_date=final_date, message_state=int(state),
                                 error_code=0 if state in (MessageState.DELIVERED, MessageState.ENROUTE) else 1)

    def _cancel(self, pdu: Pdu) -> Pdu:
        record = self.by_id.get(pdu.message_id)
        if record is None or record.state in _FINAL:
            return pdu.make_response(command_status=CommandStatus.ESME_RCANCELFAIL)
        record.state = "DELETED"
        record.final_date = time.time()
        self.stats.receipts_pending -= 1
        return pdu.make_response()

    def _replace(self, pdu: Pdu) -> Pdu:
        record = self.by_id.get(pdu.message_id)
        if record is None or record.state in _FINAL:
            return pdu.make_response(command_status=CommandStatus.ESME_RREPLACEFAIL)
        record.pdu = msgspec.structs.replace(record.pdu, short_message=pdu.short_message)
        return pdu.make_response()

    # ---- test helpers -------------------------------------------------------------------------------

    def fail_next(self, status: int | str, count: int = 1) -> None:
        """Answer the next ``count`` submits with ``status`` (name or number)."""
        value = parse_status(status) if isinstance(status, str) else int(status)
        if value is None:
            raise ValueError(f"unknown command_status {status!r}")
        self._fail_next.extend([value] * count)

    async def wait_for_messages(self, n: int, timeout: float = 10.0) -> list[Message]:
        """Wait until ``n`` whole messages have arrived in total; returns them."""
        if self.stats.messages < n:
            fut = self.loop.create_future()
            entry = (n, fut)
            self._waiters.append(entry)
            try:
                await asyncio.wait_for(fut, timeout)
            finally:
                self._waiters.remove(entry)
        return list(self.messages)

    def clear(self) -> None:
        self.submits.clear()
        self.messages.clear()
        self.receipts.clear()
        self.mo_sent.clear()
        self.by_id.clear()
        self.stats.messages = 0


_ECHO_TLVS = {Tag.SAR_MSG_REF_NUM, Tag.SAR_TOTAL_SEGMENTS, Tag.SAR_SEGMENT_SEQNUM, Tag.MESSAGE_PAYLOAD}


def _destinations(pdu: Pdu) -> list[str]:
    if pdu.command_id == CommandId.SUBMIT_MULTI:
        return [getattr(d, "destination_addr", getattr(d, "dl_name", "")) for d in pdu.dest_address]
    return [pdu.destination_addr]


def _utc(ts: float):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, timezone.utc)
