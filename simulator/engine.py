"""The simulated SMSC: binds, submits, receipts, MO, query/cancel/replace, test helpers.

:class:`Simulator` is an :class:`smppcore.SmscHandler`. With zero latency and no
faults configured, a submit costs one record and one response returned
directly from :meth:`Simulator.handle` (no task, no timer), so the simulator
runs at the speed of the server underneath it.

What it received is kept by :mod:`simulator.records` (re-exported here); receipts
are built by :mod:`simulator.receipts` and sent, like MO, by an
:class:`smppcore.outbox.Outbox` per account (held, bounded, while no receiver is bound).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import re
import time
from collections.abc import Callable
from typing import Any

import smppcore
from smppcore import CommandId, CommandStatus, EsmClass, MessageState, Pdu, State
from smppcore.outbox import Outbox
from smppcore.receipt import intermediate_wanted, receipt_wanted, receipts_requested
from smppcore.server import SmscConnection, SmscHandler

from .behaviour import DelaySampler, MessageIds, TokenBucket, WeightedChoice
from .binds import bind_status
from .config import SimulatorConfig, parse_state, parse_status
from .manage import query_response, replace_response
from .mo import echo_of, mo_pdus
from .receipts import receipt_for
from .records import Message, MessageLog, RecordIndex, Stats, Submit, destinations
from .segments import Segments
from .timers import Later

__all__ = ["Simulator", "Submit", "Message", "MessageLog", "RecordIndex", "Stats", "Outbox"]

log = logging.getLogger("simulator")

_SUBMITS = {CommandId.SUBMIT_SM, CommandId.DATA_SM, CommandId.SUBMIT_MULTI}
_RECEIVING = (State.BOUND_RX, State.BOUND_TRX)
_SUBMIT_SM = CommandId.SUBMIT_SM
_SUBMIT_MULTI = CommandId.SUBMIT_MULTI
_UDHI = int(EsmClass.UDHI)  # a plain int: IntFlag arithmetic goes through the enum machinery
_time = time.time


class Simulator(SmscHandler):
    """A scriptable SMSC. See :class:`smpphub.simulator.config.SimulatorConfig` for what it does."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SimulatorConfig()
        self.system_id = config.system_id
        self.rng = random.Random(config.seed)
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set by attach()
        self._stats = Stats()
        self._fast_count = 0  # messages taken by the fast path, not yet added to _stats (see stats)
        self.submits: collections.deque[Submit] = collections.deque(maxlen=config.record_limit)
        self.messages = MessageLog(config.record_limit)
        self._submits_append = self.submits.append
        self._log_append = self.messages._items.append
        self.mo_sent: collections.deque[Pdu] = collections.deque(maxlen=config.record_limit)
        self.receipts: collections.deque[Pdu] = collections.deque(maxlen=config.record_limit)
        self.connections: set[SmscConnection] = set()
        self._outboxes: dict[str, Outbox] = {}
        self._accounts = {a.system_id: a for a in config.accounts}
        self._ids = MessageIds(config.receipts.message_id_format, self.rng)
        self._next_id = self._ids.next
        self.by_id = RecordIndex(self.submits, self._ids)
        self._receipts_on = config.receipts.enabled
        self._echo_on = config.mo.echo
        self._plain = not config.mo.echo  # nothing to do for a message besides recording it
        self._latency = DelaySampler(config.submit_latency, self.rng)
        self._receipt_delay = DelaySampler(config.receipts.delay, self.rng)
        weights: dict[str, float] = {}
        for word, weight in config.receipts.final_states.items():
            weights[word.upper()] = weights.get(word.upper(), 0.0) + weight
        self._final_state = WeightedChoice(weights, self.rng)
        # the config checked every word; a word it let through that names no state counts as a failure
        self._final_states = {word: parse_state(word) or MessageState.UNKNOWN for word in weights}
        self._intermediate = [w.upper() for w in config.receipts.intermediate]
        self._rules = [(re.compile(r.destination), parse_status(r.status), r.probability) for r in config.errors.rules]
        self._probabilities = [(parse_status(k), v) for k, v in config.errors.probabilities.items() if v > 0]
        self._fail_next: collections.deque[int] = collections.deque()
        self._total_bucket: TokenBucket | None = None
        self._throttle_status = parse_status(config.throttle.status)
        self._segments = Segments(config.record_limit)
        self._later: Later = None  # type: ignore[assignment]  # set by attach()
        self._receivers: dict[str, set[SmscConnection]] = {}  # system_id -> its bound rx/trx connections
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

    @property
    def stats(self) -> Stats:
        """The counters (the fast path counts in one integer; it is folded in here)."""
        s = self._stats
        n = self._fast_count
        if n:
            self._fast_count = 0
            s.submits += n
            s.accepted += n
            s.messages += n
        s.held = sum(len(box) for box in self._outboxes.values())  # waiting for a receiver
        return s

    # ---- lifecycle -----------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind the simulator to the loop its server runs on (done by :func:`start`)."""
        self.loop = loop
        self._later = Later(loop)
        self._total_bucket = TokenBucket(self.config.throttle.total, loop.time)
        if self.config.mo.rate > 0:
            self._mo_handle = loop.call_later(1 / self.config.mo.rate, self._generate_mo)

    def detach(self) -> None:
        if self._mo_handle is not None:
            self._mo_handle.cancel()
        if self._later is not None:
            self._later.cancel_all()

    # ---- connections and binds -----------------------------------------------------------

    def connected(self, conn: SmscConnection) -> None:
        self.connections.add(conn)
        conn.submitted = 0  # type: ignore[attr-defined]
        conn.doomed = False  # type: ignore[attr-defined]  # chaos decided to drop it: ignore what else comes
        conn.late = 0  # type: ignore[attr-defined]  # responses waiting for their latency
        conn.bucket = TokenBucket(self.config.throttle.per_bind, self.loop.time)  # type: ignore[attr-defined]
        if self.config.chaos.ignore_enquire_link:
            conn.session.answer_enquire_link = False

    def closed(self, conn: SmscConnection) -> None:
        self.connections.discard(conn)
        receivers = self._receivers.get(conn.system_id)
        if receivers is not None:
            receivers.discard(conn)
        self.stats.bound = sum(1 for c in self.connections if c.session.state.is_bound)

    def authenticate(self, conn: SmscConnection, bind: Pdu) -> int | Any:
        self.stats.binds += 1
        delay = self.config.chaos.bind_delay_ms
        if delay:
            return self._delayed_bind(delay / 1000, bind)
        return self._bind_status(bind)

    def _bind_status(self, bind: Pdu) -> int:
        status = self._check_bind(bind)
        if status:
            self.stats.bind_refused += 1
        return status

    async def _delayed_bind(self, delay: float, bind: Pdu) -> int:
        # checked after the delay: binds accepted meanwhile count against max_binds
        await asyncio.sleep(delay)
        return self._bind_status(bind)

    def _check_bind(self, bind: Pdu) -> int:
        bound_now = sum(1 for c in self.connections if c.system_id == bind.system_id and c.session.state.is_bound)
        return bind_status(self._accounts, bind, bound_now, self.config.max_binds_per_account)

    def bound(self, conn: SmscConnection) -> None:
        self.stats.bound = sum(1 for c in self.connections if c.session.state.is_bound)
        if conn.session.state in _RECEIVING:
            self._receivers.setdefault(conn.system_id, set()).add(conn)
            self.outbox(conn.system_id).pump_soon()

    def receivers(self, system_id: str) -> list[SmscConnection]:
        """``system_id``'s connections that can take a deliver_sm now (bound rx/trx, open)."""
        conns = self._receivers.get(system_id)
        if not conns:
            return []
        return [c for c in conns
                if c.session.state in _RECEIVING and c.transport is not None and not c.transport.is_closing()]

    def bound_systems(self) -> list[str]:
        """The accounts with a receiver or transceiver bound now, sorted."""
        return sorted(s for s in self._receivers if self.receivers(s))

    def outbox(self, system_id: str) -> Outbox:
        box = self._outboxes.get(system_id)
        if box is None:
            box = self._outboxes[system_id] = Outbox(lambda: self.receivers(system_id),
                                                     limit=self.config.receipts.hold_limit, loop=self.loop)
        return box

    def _send_to(self, system_id: str, pdu: Pdu, on_ack: Callable[[Pdu, Any], None]) -> None:
        """Queue ``pdu`` for the account's receivers; when ``hold_limit`` wait, the oldest gives way."""
        box = self.outbox(system_id)
        if box.full:
            box.drop_oldest()
        box.put(pdu, on_ack)

    # ---- requests -----------------------------------------------------------------------

    def handle(self, conn: SmscConnection, pdu: Pdu) -> Pdu | None:
        cid = pdu.command_id
        if cid in _SUBMITS:
            if self._fast and not self._fail_next:  # the fast path: no latency, no faults
                if cid == _SUBMIT_SM and self._plain and not pdu.tlvs and not pdu.esm_class & _UDHI:
                    # one plain submit_sm: what _accept does, inlined (this is the hot loop of a benchmark)
                    message_id = self._next_id()
                    record = Submit(message_id, conn.system_id, pdu, _time())
                    self._submits_append(record)  # a bounded deque: the oldest record goes
                    self._log_append(record)
                    self._fast_count += 1
                    if self._waiters:
                        self._wake_waiters()
                    rd = pdu.registered_delivery
                    if rd and self._receipts_on and receipts_requested(rd):
                        self._schedule_receipts(record, rd)
                    return pdu.response_type(sequence_number=pdu.sequence_number, message_id=message_id)
                self.stats.submits += 1
                return self._accept(conn, pdu)
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
        if not self._fast:
            transport = conn.transport
            if conn.doomed or transport is None or transport.is_closing():  # type: ignore[attr-defined]
                return None  # chaos is dropping this connection: what else it sent is lost with it
            stats.submits += 1
            refusal = self._refusal(conn, pdu)
            if refusal is not None:
                if refusal < 0:  # chaos: the connection dies with this message unanswered
                    stats.dropped_connections += 1
                    out = conn.session.data_to_send()  # answers to what came before it still go out
                    if out:
                        transport.write(out)
                    conn.close()
                    return None
                name = smppcore.status_name(refusal)
                stats.rejected[name] = stats.rejected.get(name, 0) + 1
                return pdu.make_response(command_status=refusal)
        else:
            stats.submits += 1
            if not self._fail_next:
                return self._accept(conn, pdu)
            status = self._fail_next.popleft()
            name = smppcore.status_name(status)
            stats.rejected[name] = stats.rejected.get(name, 0) + 1
            return pdu.make_response(command_status=status)
        resp = self._accept(conn, pdu)
        conn.submitted += 1  # type: ignore[attr-defined]
        delay = self._latency()
        drop = bool(self.config.chaos.drop_after and conn.submitted >= self.config.chaos.drop_after)  # type: ignore[attr-defined]
        if drop:
            conn.doomed = True  # type: ignore[attr-defined]
        if delay > 0:
            conn.late += 1  # type: ignore[attr-defined]
            self._later(delay, self._respond_late, conn, resp)
            return None
        if drop and not conn.late:  # type: ignore[attr-defined]
            self.loop.call_soon(self._drop, conn)
        return resp

    def _respond_late(self, conn: SmscConnection, resp: Pdu) -> None:
        conn.respond(resp)
        conn.late -= 1  # type: ignore[attr-defined]
        if conn.doomed and not conn.late:  # type: ignore[attr-defined]
            # drop_after: every accepted submit has had its answer; now the connection goes
            self.loop.call_soon(self._drop, conn)

    def _drop(self, conn: SmscConnection) -> None:
        if conn.transport is not None and not conn.transport.is_closing():
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
            conn.doomed = True  # type: ignore[attr-defined]
            return -1
        if self._rules:
            dest = destinations(pdu)
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
        # Hot: every accepted message runs this. Kept flat, no optional work unless configured.
        message_id = self._next_id()
        now = _time()
        system_id = conn.system_id
        record = Submit(message_id, system_id, pdu, now)
        self._submits_append(record)
        stats = self.stats
        stats.accepted += 1
        cid = pdu.command_id
        if cid == _SUBMIT_SM and not pdu.tlvs and not pdu.esm_class & _UDHI:  # one plain message
            self._log_append(record)  # read as a Message (see MessageLog)
            stats.messages += 1
            if self._waiters:
                self._wake_waiters()
        else:
            self._record_message(conn, pdu, message_id, now)
        if cid == _SUBMIT_MULTI:
            resp = pdu.make_response(message_id=message_id, unsuccess_sme=self._unsuccess(pdu))
        else:
            resp = pdu.response_type(sequence_number=pdu.sequence_number, message_id=message_id)
        rd = pdu.registered_delivery
        if rd and self._receipts_on and receipts_requested(rd):
            self._schedule_receipts(record, rd)
        if self._echo_on:
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
        whole = self._segments.collect(conn.system_id, pdu, message_id, self.loop.time())
        if whole is not None:  # else a segment waiting for its siblings
            payload, ids = whole
            self._store_message(conn, pdu, payload, ids, now)

    def _store_message(self, conn: SmscConnection, pdu: Pdu, payload: bytes, ids: tuple[str, ...], now: float) -> None:
        dests = destinations(pdu)
        self.messages.append(
            Message(conn.system_id, pdu.source_addr, dests[0] if len(dests) == 1 else ",".join(dests), pdu.data_coding,
                    payload, ids, now)
        )
        self.stats.messages += 1
        if self._waiters:
            self._wake_waiters()

    def _wake_waiters(self) -> None:
        n = self.stats.messages
        for want, fut in list(self._waiters):
            if n >= want and not fut.done():
                fut.set_result(None)

    # ---- receipts --------------------------------------------------------------------------

    def _schedule_receipts(self, record: Submit, registered_delivery: int) -> None:
        """Plan what a submit asking for receipts gets: intermediate ones if asked (or
        configured always), then its final state, with a receipt if that outcome was
        asked for (smppcore.receipt decides, for the hub alike), else silently."""
        cfg = self.config.receipts
        final = self._final_state()
        delay = self._receipt_delay()
        record.receipt_pending = True
        self.stats.receipts_pending += 1
        words = self._intermediate
        if words and (cfg.intermediate_always or intermediate_wanted(registered_delivery)):
            # in their order, spread over the time to the final state
            for i, word in enumerate(words):
                self._later(delay * (i + 1) / (len(words) + 1), self._send_receipt, record, word, False)
        if not receipt_wanted(registered_delivery, self._final_states[final]):
            self._later(delay, self._finalise, record, final)
            return
        self._later(delay, self._send_receipt, record, final, True)

    def _finalise(self, record: Submit, word: str) -> bool:
        """The message reaches its final state ``word``; False if it already had one."""
        if record.final_date is not None:
            return False
        record.state = word
        record.final_date = time.time()
        if record.receipt_pending:
            record.receipt_pending = False
            self.stats.receipts_pending -= 1
        return True

    def _send_receipt(self, record: Submit, word: str, final: bool) -> None:
        if record.final_date is not None:
            return  # cancelled meanwhile (cancel_sm), or an intermediate state after the end
        if final:
            self._finalise(record, word)
            now = record.final_date
        else:
            now = time.time()
        receipt = receipt_for(record, word, final, now)
        record.receipts_sent += 1
        self.stats.receipts_sent += 1
        self.receipts.append(receipt)
        self._send_to(record.system_id, receipt, self._receipt_acked)

    def _receipt_acked(self, resp: Pdu, context: Any) -> None:
        self._stats.receipts_acked += 1

    # ---- MO ------------------------------------------------------------------------------------

    def _echo(self, conn: SmscConnection, pdu: Pdu) -> None:
        self._queue_mo(conn.system_id, echo_of(pdu))

    def _generate_mo(self) -> None:
        templates = self.config.mo.templates
        t = templates[self.rng.randrange(len(templates))]
        targets = [t.system_id] if t.system_id else self.bound_systems()
        if targets:
            self.send_mo(t.source_addr, t.destination_addr, t.text, system_id=targets[self.rng.randrange(len(targets))])
        self._mo_handle = self.loop.call_later(1 / self.config.mo.rate, self._generate_mo)

    def send_mo(self, source_addr: str, destination_addr: str, text: str | bytes, *, system_id: str | None = None,
                data_coding: int | None = None) -> list[Pdu]:
        """Send a mobile-originated message to ``system_id`` (or every account bound now)."""
        pdus = mo_pdus(source_addr, destination_addr, text, data_coding=data_coding, reference=self.rng.randrange(256))
        targets = [system_id] if system_id else self.bound_systems()
        for target in targets:
            for pdu in pdus:
                self._queue_mo(target, pdu)
        return pdus

    def _queue_mo(self, system_id: str, pdu: Pdu) -> None:
        self.stats.mo_sent += 1
        self.mo_sent.append(pdu)
        self._send_to(system_id, pdu, self._mo_acked)

    def _mo_acked(self, resp: Pdu, context: Any) -> None:
        self._stats.mo_acked += 1

    # ---- message management ----------------------------------------------------------------------

    def _query(self, pdu: Pdu) -> Pdu:
        return query_response(pdu, self.by_id.get(pdu.message_id))

    def _cancel(self, pdu: Pdu) -> Pdu:
        record = self.by_id.get(pdu.message_id)
        if record is None or not self._finalise(record, "DELETED"):
            return pdu.make_response(command_status=CommandStatus.ESME_RCANCELFAIL)
        return pdu.make_response()

    def _replace(self, pdu: Pdu) -> Pdu:
        return replace_response(pdu, self.by_id.get(pdu.message_id), self.messages)

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
        self.stats.messages = 0

