"""The ESME side of the hub: who may bind, and what happens to what they submit.

A submit is checked (account rate, source address, route, validity), given a hub
message_id and handed to :meth:`.acceptor.Acceptor.accept`, which stores it durably with
everything else that arrived in the same event-loop turn (one group commit) and
only then answers submit_sm_resp and hands it to the dispatcher. The submits of one
read come as a run (:meth:`EsmeHandler.handle_all`): admitted together
(:meth:`EsmeHandler.admit_run`, the account and the clock looked at once) and handed
over together, each judged by the same rules as a submit alone. A store failure
(disk full, read-only) answers ESME_RMSGQFUL: the message was not accepted, so the
ESME keeps it and comes back later.

Segments of one long message (UDH 8/16-bit reference or SAR TLVs) form a group: the
route's weighted choice is made once for the group, so every segment leaves through
the same upstream, and the lifecycle moves them together on a failover.

Binds are where a hostile peer is cheapest (a bind's password check costs a scrypt):
what a bind goes through before it is answered, and what the hub keeps per account,
are in :mod:`router.accounts`.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import Protocol

import msgspec
import structlog

import smppcore
from smppcore import CommandStatus, EsmClass, Pdu, State, Tag, encode
from smppcore.concat import concat_info
from smppcore.pdus import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CancelSm,
    DataSm,
    DataSmResp,
    DistributionList,
    QuerySm,
    ReplaceSm,
    SubmitMulti,
    SubmitSm,
    SubmitSmResp,
    UnsuccessSme,
)
from smppcore.server import SmscConnection, SmscHandler
from smppcore.smpptime import InvalidTime, parse_time

from .acceptor import Acceptor
from .accounts import AccountState, BindChecks
from .auth import ip_allowed
from .config import HubConfig, unroutable_status
from .lifecycle import FINAL_STATES, MessageRow, smpp_state
from .routing import Route, RouteTable, normalise_destination
from .store import Store
from .upstream import Outgoing

__all__ = ["EsmeHandler", "HubIds", "Binds"]

log = structlog.get_logger("smpphub.esme")

#: why a submit was refused, for message_refused and the access log
_REASONS: dict[int, str] = {
    CommandStatus.ESME_RINVSYSID: "account removed by a reload",
    CommandStatus.ESME_RSYSERR: "hub shutting down",
    CommandStatus.ESME_RTHROTTLED: "over the account's max_rate",
    CommandStatus.ESME_RMSGQFUL: "the hub's backlog is full (max_backlog) or its store failed",
    CommandStatus.ESME_RINVSRCADR: "source address not allowed for the account",
    CommandStatus.ESME_RINVSCHED: "bad schedule_delivery_time",
    CommandStatus.ESME_RINVEXPIRY: "bad or past validity_period",
}
#: long messages whose route choice is remembered for their later segments
GROUPS_REMEMBERED = 100_000


class Binds(Protocol):
    """Who is bound: the hub's registry of ESME connections, as the ESME side needs it."""

    def receiver_bound(self, conn: SmscConnection) -> None:
        """``conn`` bound as receiver or transceiver: deliveries may go to it."""

    def receiver_gone(self, conn: SmscConnection) -> None:
        """``conn`` closed: no more deliveries to it."""


class HubIds:
    """Hub message ids: a random per-process prefix and a counter, 16 hex digits.

    Unique across restarts and across hub processes sharing a store, short
    enough for ESMEs that keep ids in small columns.
    """

    def __init__(self) -> None:
        self.prefix = os.urandom(4).hex()
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return f"{self.prefix}{self.n:08x}"


class EsmeHandler(SmscHandler):
    """Binds and requests from ESMEs."""

    system_id = "smpphub"

    def __init__(self, config: HubConfig, store: Store, acceptor: Acceptor, routes: RouteTable, binds: Binds) -> None:
        super().__init__()
        self.store = store
        self.acceptor = acceptor
        self.dispatcher = acceptor.dispatcher
        self.binds = binds
        self.ids = HubIds()
        # long message -> the route chosen for its first segment (oldest forgotten first)
        self._group_routes: collections.OrderedDict[str, list[str]] = collections.OrderedDict()
        self.bind_checks = BindChecks(config.security)
        self.accepting = True
        self.msglog = acceptor.msglog
        self._msglog_on = self.msglog.on
        self.configure(config, routes)

    def configure(self, config: HubConfig, routes: RouteTable) -> None:
        """Take a (re)loaded configuration; live binds keep going."""
        self.config = config
        self.routes = routes
        self.unroutable = unroutable_status(config)
        loop_time = time.monotonic
        old = getattr(self, "accounts", {})
        self.accounts: dict[str, AccountState] = {}
        for acc in config.accounts:
            state = AccountState(acc, loop_time)
            if acc.system_id in old and old[acc.system_id].cfg.max_rate == acc.max_rate:
                state.bucket = old[acc.system_id].bucket
            self.accounts[acc.system_id] = state
        self.bind_checks.configure(config.security)

    # ---- binds ------------------------------------------------------------------------------

    def admit(self, peer_ip: str) -> bool:
        """At accept time: False when no account's allowed_ips could match ``peer_ip`` (closed at once)."""
        return any(ip_allowed(peer_ip, account.ips) for account in self.accounts.values())

    def connected(self, conn: SmscConnection) -> None:
        # a message row keeps its submit's bytes: the framer hands them over instead of the hub
        # encoding the PDU again (see _message)
        conn.session.framer.keep_bytes(SubmitSm, DataSm)

    def authenticate(self, conn: SmscConnection, bind: Pdu) -> int | Awaitable[int]:
        if not isinstance(bind, (BindTransmitter, BindReceiver, BindTransceiver)):  # the server asks only about binds
            return CommandStatus.ESME_RINVBNDSTS
        if not self.accepting:
            return CommandStatus.ESME_RBINDFAIL
        return self.bind_checks.check(conn, bind, self.accounts)

    def binds_held(self, system_id: str) -> int:
        """Bind slots of ``system_id`` taken: bound connections and binds being checked."""
        return self.bind_checks.binds_held(system_id)

    @property
    def overload_refusals(self) -> int:
        """Binds refused at once because the password check queue was full, since start."""
        return self.bind_checks.overload_refusals

    def bound(self, conn: SmscConnection) -> None:
        log.info("bind", system_id=conn.system_id, peer=conn.peername[0] if conn.peername else "",
                 state=conn.session.state.value)
        account = self.accounts.get(conn.system_id)
        if account is not None:
            # the listener's session starts with a default window; the account's own applies once it is known
            conn.session.window.size = account.cfg.window
        if conn.session.state in (State.BOUND_RX, State.BOUND_TRX):
            self.binds.receiver_bound(conn)

    def closed(self, conn: SmscConnection) -> None:
        self.bind_checks.release(conn)
        self.binds.receiver_gone(conn)
        if conn.system_id:
            log.info("unbind", system_id=conn.system_id, reason=conn.session.close_reason or "closed")

    # ---- requests -----------------------------------------------------------------------------

    def handle(self, conn: SmscConnection, pdu: Pdu) -> Pdu | None | Awaitable[Pdu | None]:
        # the decoder makes one class per command id: each handler gets the type it reads
        if isinstance(pdu, (SubmitSm, DataSm)):
            return self._submit(conn, pdu)
        if isinstance(pdu, SubmitMulti):
            return self._submit_multi(conn, pdu)
        if isinstance(pdu, QuerySm):
            return self._query(conn, pdu)
        if isinstance(pdu, CancelSm):
            return self._cancel(conn, pdu)
        if isinstance(pdu, ReplaceSm):
            return self._replace(conn, pdu)
        return pdu.make_response(command_status=CommandStatus.ESME_RINVCMDID)

    def _check(self, pdu: SubmitSm | DataSm | SubmitMulti, account: AccountState) -> int:
        return self._hub_refusal() or self._account_refusal(pdu, account)

    def _hub_refusal(self) -> int:
        """What any submit is refused with now (0: none), whoever sent it: asked once for a run of
        them (nothing a submit of the run does changes it: they join the backlog only when stored)."""
        if not self.accepting:
            return CommandStatus.ESME_RSYSERR
        if self.dispatcher.backlog.size >= self.config.max_backlog:
            return CommandStatus.ESME_RMSGQFUL
        return 0

    def _account_refusal(self, pdu: SubmitSm | DataSm | SubmitMulti, account: AccountState) -> int:
        """What the account's own limits refuse ``pdu`` with (0: none): its rate, its sources."""
        bucket = account.bucket
        if bucket is not None and not bucket.take():
            return CommandStatus.ESME_RTHROTTLED
        sources = account.sources
        if sources is not None and not sources.allows(pdu.source_addr):
            return CommandStatus.ESME_RINVSRCADR
        return 0

    def _times(self, pdu: SubmitSm | DataSm | SubmitMulti | ReplaceSm, now: float) -> tuple[float, float] | int:
        """(due, expires_at) from the PDU (due 0: now), or the status to refuse it with."""
        not_before = 0.0
        expires_at = now + self.config.default_validity
        if isinstance(pdu, DataSm):  # data_sm carries neither time
            return not_before, expires_at
        sched, validity = pdu.schedule_delivery_time, pdu.validity_period
        if not sched and not validity:  # the usual case: nothing to parse
            return not_before, expires_at
        nowdt = datetime.fromtimestamp(now, UTC)
        if sched:
            try:
                not_before = _timestamp(sched, nowdt)
            except InvalidTime:
                return CommandStatus.ESME_RINVSCHED
        if validity:
            try:
                expires_at = _timestamp(validity, nowdt)
            except InvalidTime:
                return CommandStatus.ESME_RINVEXPIRY
            if expires_at <= now:
                return CommandStatus.ESME_RINVEXPIRY
        if not_before and not_before >= expires_at:
            return CommandStatus.ESME_RINVSCHED
        return not_before, expires_at

    def _message(self, message_id: str, account: str, pdu: SubmitSm | DataSm, route: Route, now: float,
                 times: tuple[float, float], wire: bytes | None = None) -> Outgoing:
        """``pdu`` made a message. ``wire``: what ``encode(outgoing)`` writes, when the caller has it
        (the submit's own bytes: callgrind, ESME submit_sm in to SENT, 174.2k -> 167.2k instructions a
        message). The row keeps the PDU as it came, so a change made to it here must not take them.

        The message goes on as the PDU itself, not a copy with sequence_number and command_status
        0 (callgrind: ~1.6k instructions a submit, and its freeing): the ESME's numbers stay on it
        while they are read (the answer made from it, a refusal if the store fails), and an
        upstream's session gives it its own only when it writes it, after the commit; what is
        stored and written is ``wire`` (or the PDU encoded with both 0), never those fields."""
        # a message in one piece (nearly all) is told without a call: no UDH, no SAR reference
        group = _group_key(account, pdu) if pdu.esm_class & _UDHI or _SAR_REF in pdu.tlvs else ""
        if group:
            upstreams = self._group_routes.get(group)
            if upstreams is None:
                upstreams = self._group_routes[group] = route.pick()
                if len(self._group_routes) > GROUPS_REMEMBERED:
                    self._group_routes.popitem(last=False)
        else:
            upstreams = route.fixed or route.pick()  # a route without weights: no draw, no call
        row = MessageRow(
            id=message_id, account=account, route=upstreams, group=group,
            pdu=wire or encode(msgspec.structs.replace(pdu, sequence_number=0, command_status=0)),
            created_at=now,
            due=times[0], expires_at=times[1], registered_delivery=pdu.registered_delivery, updated_at=now,
        )
        return Outgoing(row, pdu, prefix=route.prefix)

    def _slowed(self, conn: SmscConnection, status: int, response: Pdu) -> Pdu | Awaitable[Pdu]:
        """``response``, after ``security.throttled_answer_delay`` when it is ESME_RTHROTTLED (see
        SecurityConfig): an answer owed holds one of the connection's ``max_unanswered``, so a
        client flooding past its rate stops being read instead of costing the loop its CPU."""
        delay = self.config.security.throttled_answer_delay
        if status != CommandStatus.ESME_RTHROTTLED or not delay:
            return response
        answer: asyncio.Future[Pdu] = conn.loop.create_future()
        conn.loop.call_later(delay, _resolve, answer, response)
        return answer

    def _refuse(self, conn: SmscConnection, pdu: Pdu, status: int, reason: str = "") -> Pdu:
        """The error response to a submit, counted for the metrics and logged when message logs are on."""
        self.dispatcher.stats.refuse(conn.system_id, status)
        return self._refusal_response(conn, pdu, status, reason)

    def _refusal_response(self, conn: SmscConnection, pdu: Pdu, status: int, reason: str = "") -> Pdu:
        if self._msglog_on:
            self.msglog.refused(conn.system_id, pdu, status, reason or _REASONS.get(status, "refused"))
        return pdu.make_response(command_status=status)

    def handle_all(self, conn: SmscConnection, pdus: list[Pdu]) -> list[Pdu | None | Awaitable[Pdu | None]] | None:
        """A run of requests read together: the submits of one read (nearly every run) admitted and
        handed to the acceptor together; a run with anything else in it, one request at a time (None)."""
        submits: list[SubmitSm | DataSm] = []
        for pdu in pdus:
            if not isinstance(pdu, (SubmitSm, DataSm)):
                return None
            submits.append(pdu)
        return list(self._submit_run(conn, submits))

    def _submit(self, conn: SmscConnection, pdu: SubmitSm | DataSm) -> Pdu | None | Awaitable[Pdu]:
        return self._submit_run(conn, [pdu])[0]

    def _submit_run(self, conn: SmscConnection, pdus: list[SubmitSm | DataSm]) -> list[Pdu | None | Awaitable[Pdu]]:
        """Submits of ``conn`` read together: each refused at once, or accepted (answered once stored)."""
        admitted = self.admit_run(conn.system_id, pdus, conn.session.framer.bytes_of_all(pdus))
        results: list[Pdu | None | Awaitable[Pdu]] = []
        requests: list[Pdu] = []
        responses: list[Pdu] = []
        messages: list[Outgoing] = []
        for pdu, out in zip(pdus, admitted, strict=True):
            if isinstance(out, int):  # counted by admit_run
                reason = "no route for the destination" if out == self.unroutable else ""
                results.append(self._slowed(conn, out, self._refusal_response(conn, pdu, out, reason)))
                continue
            # what pdu.make_response(message_id=...) makes, built directly: its **fields cost ~200 ns a submit
            answer = SubmitSmResp if isinstance(pdu, SubmitSm) else DataSmResp
            requests.append(pdu)
            responses.append(answer(sequence_number=pdu.sequence_number, message_id=out.row.id))
            messages.append(out)
            results.append(None)
        if messages:  # one submission for the read: stored together, answered together
            self.acceptor.accept_run(conn, requests, responses, messages)
        return results

    def admit_submit(self, system_id: str, pdu: SubmitSm | DataSm, wire: bytes | None = None) -> Outgoing | int:
        """A submit of ``system_id`` checked (rate, source, route, times) and made a message with its
        hub id, not stored yet (:meth:`Acceptor.accept` does that); or the status it is refused with.
        ``wire``: ``pdu``'s bytes with sequence_number and command_status 0, if the caller has them
        (:meth:`smppcore.Framer.bytes_of`).

        The one admission path: SMPP submits and the HTTP API's messages both come through here
        (:meth:`admit_run` of one), and a refusal is counted here for the metrics, whichever way it came.
        """
        return self.admit_run(system_id, [pdu], [wire])[0]

    def admit_run(self, system_id: str, pdus: Sequence[SubmitSm | DataSm],
                  wires: Sequence[bytes | None]) -> list[Outgoing | int]:
        """:meth:`admit_submit` for submits of ``system_id`` read together (``wires[i]`` the bytes of
        ``pdus[i]`` or None): the account and the clock looked at once for them all."""
        account = self.accounts.get(system_id)
        if account is None:  # the account was removed by a reload while bound
            return [self._counted(system_id, CommandStatus.ESME_RINVSYSID) for _ in pdus]
        now = time.time()
        group = account.cfg.route_group
        # asked once for the run: the hub's own refusal, whether the account has limits of its own
        # to ask each submit about, and the times of a submit that gives none (nearly all)
        hub_refusal = self._hub_refusal()
        limited = account.bucket is not None or account.sources is not None
        untimed = (0.0, now + self.config.default_validity)
        times: tuple[float, float] | int
        admitted: list[Outgoing | int] = []
        for pdu, wire in zip(pdus, wires, strict=True):
            try:  # a bug met by one submit refuses that one (ESME_RSYSERR), as it did alone, not its run
                status = hub_refusal or (self._account_refusal(pdu, account) if limited else 0)
                if status:
                    admitted.append(self._counted(system_id, status))
                    continue
                dest = normalise_destination(pdu.destination_addr, pdu.dest_addr_ton)
                route = self.routes.lookup(dest, account=system_id, source_addr=pdu.source_addr, group=group)
                if route is None:
                    admitted.append(self._counted(system_id, self.unroutable))
                    continue
                times = untimed  # no time given (data_sm carries none): what _times says, without the call
                if not isinstance(pdu, DataSm) and (pdu.schedule_delivery_time or pdu.validity_period):
                    times = self._times(pdu, now)
                if isinstance(times, int):
                    admitted.append(self._counted(system_id, times))
                    continue
                admitted.append(self._message(self.ids.next(), system_id, pdu, route, now, times, wire))
            except Exception:  # noqa: BLE001 - logged; the submitter is told to come back later
                log.exception("admit_failed", system_id=system_id)
                admitted.append(self._counted(system_id, CommandStatus.ESME_RSYSERR))
        return admitted

    def _counted(self, system_id: str, status: int) -> int:
        """A submit refused with ``status``, counted for the metrics."""
        self.dispatcher.stats.refuse(system_id, status)
        return status

    def _submit_multi(self, conn: SmscConnection, pdu: SubmitMulti) -> Pdu | None | Awaitable[Pdu]:
        """One record per SME destination, sent on as a submit_sm; unroutable ones in unsuccess_sme.

        One hub id is drawn per request, and only once a destination is accepted: the first
        accepted destination's message takes it (it is the message_id of the submit_multi_resp),
        the one at index ``i`` of ``dest_address`` after it ``"<id>.<i>"`` -- unique without
        drawing more, and a request refused for every destination draws none.
        """
        account = self.accounts.get(conn.system_id)
        if account is None:
            return self._refuse(conn, pdu, CommandStatus.ESME_RINVSYSID)
        status = self._check(pdu, account)
        if status:
            return self._slowed(conn, status, self._refuse(conn, pdu, status))
        now = time.time()
        times = self._times(pdu, now)
        if isinstance(times, int):
            return self._refuse(conn, pdu, times)
        messages: list[Outgoing] = []
        failed: list[UnsuccessSme] = []
        base = ""
        for i, dest in enumerate(pdu.dest_address):
            if isinstance(dest, DistributionList):  # distribution lists are not kept by the hub
                failed.append(UnsuccessSme(dest.dl_name, 0, 0, CommandStatus.ESME_RINVDLNAME))
                if self._msglog_on:
                    self.msglog.refused(conn.system_id, pdu, CommandStatus.ESME_RINVDLNAME,
                                        "distribution lists are not kept", dest.dl_name)
                continue
            addr = dest.destination_addr
            route = self.routes.lookup(normalise_destination(addr, dest.dest_addr_ton), account=conn.system_id,
                                       source_addr=pdu.source_addr, group=account.cfg.route_group)
            if route is None:
                failed.append(UnsuccessSme(addr, dest.dest_addr_ton, dest.dest_addr_npi, self.unroutable))
                if self._msglog_on:
                    self.msglog.refused(conn.system_id, pdu, self.unroutable, "no route for the destination", addr)
                continue
            single = smppcore.SubmitSm(
                service_type=pdu.service_type, source_addr_ton=pdu.source_addr_ton, source_addr_npi=pdu.source_addr_npi,
                source_addr=pdu.source_addr, dest_addr_ton=dest.dest_addr_ton, dest_addr_npi=dest.dest_addr_npi,
                destination_addr=addr, esm_class=pdu.esm_class, protocol_id=pdu.protocol_id,
                priority_flag=pdu.priority_flag,
                schedule_delivery_time=pdu.schedule_delivery_time, validity_period=pdu.validity_period,
                registered_delivery=pdu.registered_delivery, replace_if_present_flag=pdu.replace_if_present_flag,
                data_coding=pdu.data_coding, sm_default_msg_id=pdu.sm_default_msg_id, short_message=pdu.short_message,
                tlvs=dict(pdu.tlvs),
            )
            if messages:
                message_id = f"{base}.{i}"
            else:
                message_id = base = self.ids.next()
            messages.append(self._message(message_id, conn.system_id, single, route, now, times))
        if not messages:
            return pdu.make_response(message_id="", unsuccess_sme=failed, command_status=0)
        self.acceptor.accept(conn, pdu, pdu.make_response(message_id=base, unsuccess_sme=failed), messages)
        return None

    async def _own_row(self, conn: SmscConnection, message_id: str) -> MessageRow | None:
        """The message as it is now (the dispatcher's row is newer than the store's), if ``conn``'s account sent it."""
        row = self.dispatcher.table.get(message_id) or await self.store.get(message_id)
        if row is None or row.account != conn.system_id:
            return None
        return row

    async def _query(self, conn: SmscConnection, pdu: QuerySm) -> Pdu:
        row = await self._own_row(conn, pdu.message_id)
        if row is None:
            return pdu.make_response(command_status=CommandStatus.ESME_RQUERYFAIL)
        from smppcore.smpptime import format_absolute

        final = format_absolute(datetime.fromtimestamp(row.updated_at, UTC)) if row.state in FINAL_STATES else ""
        return pdu.make_response(message_id=row.id, final_date=final, message_state=int(smpp_state(row.state)),
                                 error_code=row.error & 0xFF)

    async def _cancel(self, conn: SmscConnection, pdu: CancelSm) -> Pdu:
        row = await self._own_row(conn, pdu.message_id)
        if row is None or not await self.dispatcher.controls.cancel_anywhere([row.id]):
            return pdu.make_response(command_status=CommandStatus.ESME_RCANCELFAIL)
        await self.store.flush()
        return pdu.make_response()

    async def _replace(self, conn: SmscConnection, pdu: ReplaceSm) -> Pdu:
        row = await self._own_row(conn, pdu.message_id)
        out = await self.dispatcher.controls.waiting_anywhere(row.id) if row is not None else None
        if out is None:
            return pdu.make_response(command_status=CommandStatus.ESME_RREPLACEFAIL)
        due, expires_at = out.row.due, out.row.expires_at
        if pdu.schedule_delivery_time or pdu.validity_period:
            times = self._times(pdu, time.time())
            if isinstance(times, int):
                return pdu.make_response(command_status=times)
            due, expires_at = times
        # the message's PDU keeps the numbers it came or was last written with: the new one says 0 for both
        changes: dict[str, bytes | int] = {
            "short_message": pdu.short_message, "sequence_number": 0, "command_status": 0,
        }
        if pdu.registered_delivery:
            changes["registered_delivery"] = pdu.registered_delivery
        self.dispatcher.controls.replaced(out, msgspec.structs.replace(out.pdu, **changes), due, expires_at,
                                 pdu.registered_delivery or None)
        await self.store.save_message(out.row)
        return pdu.make_response()


_UDHI = int(EsmClass.UDHI)
_SAR_REF = int(Tag.SAR_MSG_REF_NUM)


def _group_key(account: str, pdu: SubmitSm | DataSm) -> str:
    """The long message a segment with a UDH or SAR TLVs belongs to ("" if none after all)."""
    try:
        info = concat_info(pdu)
    except ValueError:  # a malformed UDH goes on as it came, alone
        return ""
    if info is None:
        return ""
    return f"{account}\x1f{pdu.source_addr}\x1f{pdu.destination_addr}\x1f{info.reference}\x1f{info.total}"


def _timestamp(text: str, now: datetime) -> float:
    """A given (not "") SMPP time as a POSIX timestamp; InvalidTime if it is not one."""
    when = parse_time(text, now)
    if when is None:  # parse_time gives None only for "", which callers never pass
        raise InvalidTime("no time given")
    return when.timestamp()


def _resolve(answer: asyncio.Future[Pdu], response: Pdu) -> None:
    if not answer.done():  # the connection may have gone meanwhile (its answer tasks are cancelled)
        answer.set_result(response)
