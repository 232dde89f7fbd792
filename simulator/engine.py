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
from smppcore import CommandId, CommandStatus, EsmClass, Pdu, State
from smppcore.outbox import Outbox
from smppcore.receipt import receipts_requested
from smppcore.server import SmscConnection, SmscHandler

from .behaviour import MessageIds, TokenBucket
from .binds import bind_status
from .config import SimulatorConfig, parse_status
from .failures import FailureQueue
from .manage import query_response, replace_response
from .mo import echo_of, mo_pdus
from .network import NetworkModel, Route
from .profiles import PRESETS, STANDARD, Profile
from .receipts import RECEIPT_LEAD, ReceiptStep, plan_receipts, receipt_for
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
        self._dropping: set[str] = set()  # accounts whose held deliveries have passed hold_limit (said once)
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
        self._echo_on = config.mo.echo
        self._plain = not config.mo.echo  # nothing to do for a message besides recording it
        self._fail_next = FailureQueue()
        self._total_bucket: TokenBucket | None = None
        self._segments = Segments(config.record_limit)
        self._later: Later = None  # type: ignore[assignment]  # set by attach()
        self._receivers: dict[str, set[SmscConnection]] = {}  # system_id -> its bound rx/trx connections
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self._mo_handle: asyncio.TimerHandle | None = None
        self._take_settings(config)

    def _take_settings(self, config: SimulatorConfig) -> None:
        """What latency, throttle, errors and receipts decide, from ``config`` (at start,
        and again when :meth:`reconfigure` changes them while running)."""
        self.config = config
        self._receipts_on = config.receipts.enabled
        # latency, error mix, final states and receipt delays, per destination prefix (network.py)
        self.network = NetworkModel(config, self.rng)
        profiles = {**PRESETS, **config.profiles}
        self._profiles = profiles
        self._default_profile = profiles[config.profile]
        self._account_profiles = {a.system_id: profiles[a.profile] for a in config.accounts if a.profile is not None}
        self._quirks = any(not p.is_standard for p in (self._default_profile, *self._account_profiles.values())) or any(
            not profiles[r.profile].is_standard for r in config.network if r.profile is not None)
        self._intermediate = [w.upper() for w in config.receipts.intermediate]
        self._rules = [(re.compile(r.destination), parse_status(r.status), r.probability) for r in config.errors.rules]
        self._throttle_status = parse_status(config.throttle.status)
        self._fast = (
            self.network.default.latency.is_zero
            and self.network.is_plain
            and not self._quirks
            and not self._rules
            and not config.throttle.per_bind
            and not config.throttle.total
            and not config.chaos.drop_after
            and not config.chaos.drop_probability
        )

    def reconfigure(self, config: SimulatorConfig) -> None:
        """Run on with ``config``'s latency, throttle, errors and receipts (the control API's
        PUT /settings); throttles start again from a full bucket. Accounts, listeners,
        limits and message ids stay as they started."""
        self._take_settings(config)
        if self.loop is not None:
            self._total_bucket = config.throttle.total_bucket(self.loop.time)
            for conn in self.connections:
                conn.bucket = config.throttle.bind_bucket(self.loop.time)  # type: ignore[attr-defined]

    @property
    def stats(self) -> Stats:
        """The counters, for readers (the fast path counts in one integer, folded in here, and the
        messages held are summed over the outboxes here): the hot paths count in ``_stats``."""
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
        self._total_bucket = self.config.throttle.total_bucket(loop.time)
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
        conn.burst_count = 0  # type: ignore[attr-defined]  # submits counted for a profile's throttle bursts
        conn.bucket = self.config.throttle.bind_bucket(self.loop.time)  # type: ignore[attr-defined]
        if self.config.chaos.ignore_enquire_link:
            conn.session.answer_enquire_link = False

    def closed(self, conn: SmscConnection) -> None:
        self.connections.discard(conn)
        receivers = self._receivers.get(conn.system_id)
        if receivers is not None:
            receivers.discard(conn)
        self.stats.bound = sum(1 for c in self.connections if c.session.state.is_bound)

    def authenticate(self, conn: SmscConnection, bind: Pdu) -> int | Any:
        self._stats.binds += 1
        delay = self.config.chaos.bind_delay_ms
        if delay:
            return self._delayed_bind(delay / 1000, bind)
        return self._bind_status(bind)

    def _bind_status(self, bind: Pdu) -> int:
        status = self._check_bind(bind)
        if status:
            self._stats.bind_refused += 1
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
        if not self._account_profile(conn.system_id).answer_enquire_link:
            conn.session.answer_enquire_link = False  # the carrier's habit: the ESME's keep-alive goes unanswered
        if conn.session.state in _RECEIVING:
            self._receivers.setdefault(conn.system_id, set()).add(conn)
            self.outbox(conn.system_id).pump_soon()

    def _account_profile(self, system_id: str) -> Profile:
        return self._account_profiles.get(system_id, self._default_profile)

    def _profile(self, conn: SmscConnection, route: Route) -> Profile:
        """The carrier profile a submit meets: its prefix's, else its account's, else the simulator's."""
        if route.profile is not None:
            return self._profiles[route.profile]
        return self._account_profile(conn.system_id)

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
        """Queue ``pdu`` for the account's receivers; when ``hold_limit`` wait, the oldest gives way
        (counted in ``held_dropped``; the first of each account said in the log)."""
        box = self.outbox(system_id)
        if box.full:
            box.drop_oldest()
            stats = self._stats
            stats.held_dropped += 1
            if system_id not in self._dropping:
                self._dropping.add(system_id)
                log.warning("%s: %d receipts and MO wait for its receivers (hold_limit): the oldest give way",
                            system_id or "(any account)", box.limit)
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
                        self._schedule_receipts(record, rd, self.network.default, STANDARD)
                    return pdu.response_type(sequence_number=pdu.sequence_number, message_id=message_id)
                self._stats.submits += 1
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
            dests = destinations(pdu)
            route = self.network.route(dests[0] if dests else "")
            profile = self._profile(conn, route)
            refusal = self._refusal(conn, pdu, dests, route, profile)
            if refusal is not None:
                if refusal < 0:  # chaos: the connection dies with this message unanswered
                    stats.dropped_connections += 1
                    out = conn.session.data_to_send()  # answers to what came before it still go out
                    if out:
                        transport.write(out)
                    conn.close()
                    return None
                return self._reject(pdu, refusal)
        else:
            stats.submits += 1
            status = self._fail_next.take(conn.system_id) if self._fail_next else None
            if status is None:
                return self._accept(conn, pdu)
            return self._reject(pdu, status)
        resp = self._accept(conn, pdu, route, profile)
        conn.submitted += 1  # type: ignore[attr-defined]
        delay = route.latency()
        if profile.receipt_before_response:
            delay = max(delay, RECEIPT_LEAD)  # the receipt, sent at once, goes out first
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

    def _reject(self, pdu: Pdu, status: int) -> Pdu:
        """The refusal of ``pdu`` with ``status``, counted under its name."""
        rejected = self._stats.rejected  # the counters themselves: nothing to fold for this one
        name = smppcore.status_name(status)
        rejected[name] = rejected.get(name, 0) + 1
        return pdu.make_response(command_status=status)

    def _drop(self, conn: SmscConnection) -> None:
        if conn.transport is not None and not conn.transport.is_closing():
            self._stats.dropped_connections += 1
            conn.close()

    def _refusal(self, conn: SmscConnection, pdu: Pdu, dests: list[str], route: Route, profile: Profile) -> int | None:
        """The status to refuse ``pdu`` with, -1 to drop the connection, None to accept."""
        bucket = conn.bucket  # type: ignore[attr-defined]
        if not bucket.take() or not self._total_bucket.take() or not route.bucket.take():
            self._stats.throttled += 1
            return self._throttle_status
        every = profile.throttle_every
        if every:  # the carrier's bursts: of every `every` submits of a bind, the last `throttle_burst` are refused
            n = conn.burst_count  # type: ignore[attr-defined]
            conn.burst_count = n + 1  # type: ignore[attr-defined]
            if n % every >= every - profile.throttle_burst:
                self._stats.throttled += 1
                return CommandStatus.ESME_RTHROTTLED
        if self._fail_next:
            status = self._fail_next.take(conn.system_id)
            if status is not None:
                return status
        chaos = self.config.chaos
        if chaos.drop_probability and self.rng.random() < chaos.drop_probability:
            conn.doomed = True  # type: ignore[attr-defined]
            return -1
        if self._rules:
            for pattern, status, probability in self._rules:
                if any(pattern.search(d) for d in dests) and (probability >= 1 or self.rng.random() < probability):
                    if pdu.command_id != CommandId.SUBMIT_MULTI:
                        return status
        return route.refusal() or None

    def _accept(self, conn: SmscConnection, pdu: Pdu, route: Route | None = None, profile: Profile = STANDARD) -> Pdu:
        # Hot: every accepted message runs this. Kept flat, no optional work unless configured.
        message_id = self._next_id()
        now = _time()
        system_id = conn.system_id
        record = Submit(message_id, system_id, pdu, now)
        self._submits_append(record)
        stats = self._stats  # not the property: that folds and sums for readers, not for counting
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
            unsuccess = self._unsuccess(pdu)
            refused = {u.destination_addr for u in unsuccess}
            record.receipt_destinations = tuple(d for d in destinations(pdu) if d not in refused)
            resp = pdu.make_response(message_id=message_id, unsuccess_sme=unsuccess)
        else:
            resp = pdu.response_type(sequence_number=pdu.sequence_number, message_id=message_id)
        rd = pdu.registered_delivery
        if rd and self._receipts_on and receipts_requested(rd):
            self._schedule_receipts(record, rd, route or self.network.default, profile)
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
        self._stats.messages += 1
        if self._waiters:
            self._wake_waiters()

    def _wake_waiters(self) -> None:
        n = self.stats.messages
        for want, fut in list(self._waiters):
            if n >= want and not fut.done():
                fut.set_result(None)

    # ---- receipts --------------------------------------------------------------------------

    def _schedule_receipts(self, record: Submit, registered_delivery: int, route: Route, profile: Profile) -> None:
        """Run what receipts.plan_receipts decides for a submit asking for receipts, on the timers."""
        final = route.final_state()
        delay = route.receipt_delay(final)
        record.receipt_pending = True
        self._stats.receipts_pending += 1
        steps = plan_receipts(final=final, state=route.final_states[final], delay=delay,
                              registered_delivery=registered_delivery, intermediate=self._intermediate,
                              intermediate_always=self.config.receipts.intermediate_always, profile=profile)
        now = profile.receipt_before_response
        for step in steps:
            if now and not step.delay:
                self._receipt_step(record, step, profile)
            else:
                self._later(step.delay, self._receipt_step, record, step, profile)
        if now:
            # written before handle() returns: on the submitter's own transceiver bind the receipt is queued
            # ahead of the response, however late the loop runs the response's timer
            self.outbox(record.system_id).pump()

    def _receipt_step(self, record: Submit, step: ReceiptStep, profile: Profile) -> None:
        kind = step.kind
        if kind == "silent":
            self._finalise(record, step.word)
        elif kind == "copy":
            if record.state == step.word and record.receipts_sent:  # not when cancel_sm ended it first
                self._deliver_receipts(record, step.word, True, record.final_date or time.time(), profile)
        else:
            self._send_receipt(record, step.word, kind == "final", profile)

    def _finalise(self, record: Submit, word: str) -> bool:
        """The message reaches its final state ``word``; False if it already had one."""
        if record.final_date is not None:
            return False
        record.state = word
        record.final_date = time.time()
        if record.receipt_pending:
            record.receipt_pending = False
            self._stats.receipts_pending -= 1
        return True

    def _send_receipt(self, record: Submit, word: str, final: bool, profile: Profile = STANDARD) -> None:
        if record.final_date is not None:
            return  # cancelled meanwhile (cancel_sm), or an intermediate state after the end
        if final:
            self._finalise(record, word)
            now = record.final_date
        else:
            now = time.time()
        self._deliver_receipts(record, word, final, now, profile)

    def _deliver_receipts(self, record: Submit, word: str, final: bool, now: float, profile: Profile) -> None:
        """One receipt per destination: a submit_multi's every accepted destination gets its own, as a
        handset each; they share the message id, told apart by their destination_addr."""
        if not record.receipt_destinations:
            self._deliver_receipt(record, receipt_for(record, word, final, now, profile, self._ids.fmt))
            return
        for destination in record.receipt_destinations:
            self._deliver_receipt(record, receipt_for(record, word, final, now, profile, self._ids.fmt,
                                                      destination=destination))

    def _deliver_receipt(self, record: Submit, receipt: Pdu) -> None:
        record.receipts_sent += 1
        self._stats.receipts_sent += 1
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
        self._stats.mo_sent += 1
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

    def fail_next(self, status: int | str, count: int = 1, *, system_id: str | None = None) -> None:
        """Answer the next ``count`` submits (of ``system_id``, or anyone's) with ``status`` (name or number)."""
        value = parse_status(status) if isinstance(status, str) else int(status)
        if value is None:
            raise ValueError(f"unknown command_status {status!r}")
        self._fail_next.add(value, count, system_id)

    @property
    def failures_queued(self) -> int:
        return len(self._fail_next)

    async def message_arrival(self, n: int, timeout: float) -> None:
        """Wait until ``n`` whole messages have arrived in total (TimeoutError after ``timeout``)."""
        if self.stats.messages < n:
            fut = self.loop.create_future()
            entry = (n, fut)
            self._waiters.append(entry)
            try:
                await asyncio.wait_for(fut, timeout)
            finally:
                self._waiters.remove(entry)

    async def wait_for_messages(self, n: int, timeout: float = 10.0) -> list[Message]:
        """Wait until ``n`` whole messages have arrived in total; returns them."""
        await self.message_arrival(n, timeout)
        return list(self.messages)

    def clear(self) -> None:
        self.submits.clear()
        self.messages.clear()
        self.receipts.clear()
        self.mo_sent.clear()
        self.stats.messages = 0

