"""The checks of ``smpphub check-esme``, in the order they run.

Each check is an async function over a :class:`Context`; its docstring names the
ESME bug it catches. A check waits for what it needs from the ESME (a bind, a
submit, a reconnect) at most ``Limits.timeout`` seconds and for any answer to
one of its own requests at most ``Limits.response_limit``, so a run always ends.
The ESME drives itself: it is expected to bind and keep submitting while the run
lasts; the checks answer its submits the way they need (hold the answers, answer
ESME_RTHROTTLED) through a :class:`~.probe.SubmitPolicy`.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from smppcore import (
    CommandId,
    DeliverSm,
    EnquireLink,
    MessageState,
    Unbind,
    encode,
    status_name,
)
from smppcore.receipt import build_receipt

from .policies import Hold, Throttle
from .probe import AcceptAll, Answer, BindSeen, Harness, ProbeConnection
from .report import CheckResult, Status
from .verdicts import RawProbe, is_invcmdid_nack, is_refusal, judge_answer, judge_probe, ms

__all__ = ["Limits", "Context", "Check", "CHECKS", "UNKNOWN_COMMAND_ID", "run_bound"]

#: a command_id SMPP 3.4 and 5.0 leave undefined: the ESME must answer generic_nack ESME_RINVCMDID
UNKNOWN_COMMAND_ID = 0x00000077


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """The bounds and thresholds of a run (seconds unless named otherwise)."""

    bind_timeout: float = 60.0  # for the ESME's first bind: time to start it
    timeout: float = 30.0  # per check: for the ESME to submit, reconnect, bind again
    response_limit: float = 2.0  # for any *_resp to a request of the checker
    window: int = 10  # requests the ESME may have in flight on one connection
    throttle_for: float = 1.0  # every submit answered ESME_RTHROTTLED for this long
    min_backoff: float = 0.1  # a retry sooner than this after ESME_RTHROTTLED is hammering
    quiet: float = 0.5  # window check: no new request for this long means the ESME waits for answers


def run_bound(limits: Limits) -> float:
    """The longest a whole run can take: every check at its longest, plus a margin."""
    per_check = limits.timeout + 2 * limits.response_limit + limits.throttle_for + limits.quiet
    return limits.bind_timeout + len(CHECKS) * per_check + 5.0


@dataclass
class Context:
    harness: Harness
    limits: Limits
    #: a check already waited its whole timeout for the ESME to be bound, in vain: the
    #: checks after it do not wait again (a run against a gone ESME ends in one timeout)
    esme_gone: bool = False

    def now(self) -> float:
        return self.harness.clock()

    async def bound_connection(self) -> ProbeConnection | None:
        """A bound connection, waiting for the ESME to (re)bind if none is (bounded)."""
        h = self.harness
        if not self.esme_gone and not await h.wait_until(lambda: bool(h.bound()), self.limits.timeout):
            self.esme_gone = True
        bound = h.bound()
        if bound:
            self.esme_gone = False
        return min(bound, key=lambda c: c.opened_at) if bound else None


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Context], Awaitable[CheckResult]]
    #: reports what the run saw, never fails it; runs even when the ESME never bound
    informational: bool = False

    @property
    def catches(self) -> str:
        """The ESME bug it catches: the first paragraph of the check's docstring."""
        return (self.run.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")


def _no_esme(name: str) -> CheckResult:
    return CheckResult(name, Status.SKIP, "not run: no bound ESME (see the checks above)")


# --- the checks ------------------------------------------------------------------------


async def check_bind(ctx: Context) -> CheckResult:
    """An ESME that never binds, binds with credentials the SMSC refuses, or announces an
    interface_version other than 3.4 (0x34) or 5.0 (0x50): below 0x34 it says it cannot
    read TLVs, so a carrier leaves out receipted_message_id and its receipts go unmatched.

    Passes on the first accepted bind with interface_version 0x34 or 0x50. Binds that
    follow within ``quiet`` (a transmitter and a receiver) are reported with it; a
    transmitter alone is noted (it gets no receipts or MO, see receipts_mo).
    """
    h, limits = ctx.harness, ctx.limits

    def accepted() -> list[BindSeen]:
        return [b for b in h.binds if b.status == 0]

    ok = await h.wait_until(lambda: bool(accepted()), limits.bind_timeout)
    refused = [b for b in h.binds if b.status]
    if not ok:
        if refused:
            b = refused[-1]
            return CheckResult("bind", Status.FAIL, f"{len(refused)} bind(s) refused, last {b.bind_type} "
                               f"system_id {b.system_id!r}: {status_name(b.status)}", {"refused": len(refused)})
        return CheckResult("bind", Status.FAIL, f"no bind within {limits.bind_timeout:g} s "
                           f"({len(h.connections)} connection(s) open)", {"refused": 0})
    await h.wait_until(lambda: len(accepted()) > 1, limits.quiet)  # a second bind of a tx + rx pair
    binds = accepted()
    bind = binds[0]
    types = " + ".join(b.bind_type for b in binds)
    figures = {"bind_type": types, "system_id": bind.system_id, "system_type": bind.system_type,
               "interface_version": bind.interface_version, "refused_before": len(refused)}
    seen = f"{types} system_id {bind.system_id!r} interface_version 0x{bind.interface_version:02x}"
    wrong = [b for b in binds if b.interface_version not in (0x34, 0x50)]
    if wrong:
        return CheckResult("bind", Status.FAIL, f"{wrong[0].bind_type} system_id {wrong[0].system_id!r} "
                           f"interface_version 0x{wrong[0].interface_version:02x}: expected 0x34 (SMPP 3.4) or "
                           "0x50 (5.0); below 0x34 the SMSC must not send TLVs such as receipted_message_id", figures)
    note = " (SMPP 5.0)" if bind.interface_version == 0x50 else ""
    if all(b.command_id == CommandId.BIND_TRANSMITTER for b in binds):
        note += "; a transmitter alone gets no receipts or MO"
    return CheckResult("bind", Status.PASS, seen + note, figures)


async def check_enquire_link(ctx: Context) -> CheckResult:
    """An ESME that does not answer the SMSC's enquire_link (or answers it late): carriers
    take the link for dead and drop it, and whatever was in flight with it."""
    conn = await ctx.bound_connection()
    if conn is None:
        return _no_esme("enquire_link")
    request = EnquireLink()
    answer = await conn.request(request, ctx.limits.response_limit)
    verdict = judge_answer(conn, answer, request, ctx.limits.response_limit)
    figures = {"seconds": verdict.seconds, "limit": ctx.limits.response_limit}
    return CheckResult("enquire_link", Status.PASS if verdict.passed else Status.FAIL, verdict.seen, figures)


async def check_window(ctx: Context) -> CheckResult:
    """An ESME that sends more requests than the agreed window before their answers come
    (carriers answer the excess ESME_RTHROTTLED or ESME_RMSGQFUL, or drop the bind), or
    reuses a sequence number still in flight (its answers then go to the wrong message).

    The checker holds every answer until the ESME stops sending (``quiet``) or goes past
    the window, then answers them all ESME_ROK.
    """
    h, limits = ctx.harness, ctx.limits
    if await ctx.bound_connection() is None:
        return _no_esme("window")
    hold = Hold()
    h.policy = hold
    dup_before = sum(c.duplicate_sequence_numbers for c in h.connections)
    try:
        if not await h.wait_until(lambda: hold.held > 0, limits.timeout):
            return CheckResult("window", Status.FAIL, f"no submit_sm within {limits.timeout:g} s "
                               "(start the ESME so that it keeps submitting while the run lasts)")
        deadline = ctx.now() + limits.timeout
        while hold.peak <= limits.window and ctx.now() < deadline:
            last = hold.last_at

            def moved(seen: float | None = last) -> bool:
                return hold.peak > limits.window or hold.last_at != seen

            await h.wait_until(moved, limits.quiet)
            if hold.last_at == last:
                break  # quiet: the ESME waits for answers
    finally:
        h.policy = AcceptAll()
        h.release_all()
    duplicates = sum(c.duplicate_sequence_numbers for c in h.connections) - dup_before
    figures = {"peak_in_flight": hold.peak, "window": limits.window, "held": hold.held,
               "duplicate_sequence_numbers": duplicates}
    if hold.peak > limits.window:
        return CheckResult("window", Status.FAIL, f"{hold.peak} requests in flight on one connection, "
                           f"over the window of {limits.window}", figures)
    if duplicates:
        return CheckResult("window", Status.FAIL, f"{duplicates} request(s) reused a sequence_number "
                           "still in flight", figures)
    return CheckResult("window", Status.PASS, f"at most {hold.peak} request(s) in flight "
                       f"(window {limits.window}), answers held until the ESME waited", figures)


async def check_throttling(ctx: Context) -> CheckResult:
    """An ESME that meets ESME_RTHROTTLED by resending at once (hammering a carrier that
    asked it to slow down) or by giving the message up (it is lost).

    Every submit is answered ESME_RTHROTTLED for ``throttle_for`` seconds; then they are
    accepted. Passes when every throttled message came back and was accepted, and no
    retry came sooner than ``min_backoff`` after its ESME_RTHROTTLED. A retry is the
    same source, destination and text submitted again. The submit rate while throttled
    and in as long a time after is reported (how much the ESME slowed down), not judged:
    a carrier's throttle is a rate, and only the ESME knows its own.
    """
    h, limits = ctx.harness, ctx.limits
    if await ctx.bound_connection() is None:
        return _no_esme("throttling")
    throttle = Throttle(limits.throttle_for)
    h.policy = throttle
    try:
        if not await h.wait_until(lambda: throttle.started is not None, limits.timeout):
            return CheckResult("throttling", Status.FAIL, f"no submit_sm within {limits.timeout:g} s "
                               "(start the ESME so that it keeps submitting while the run lasts)")
        assert throttle.started is not None
        await asyncio.sleep(max(0.0, throttle.started + limits.throttle_for - ctx.now()))
        await h.wait_until(lambda: throttle.dropped() == 0, limits.timeout)
        # as long again, accepting: how fast the ESME sends when not throttled, to compare
        await asyncio.sleep(max(0.0, throttle.started + 2 * limits.throttle_for - ctx.now()))
    finally:
        h.policy = AcceptAll()
    gaps = throttle.gaps
    count = len(throttle.messages)
    figures = {
        "throttled_messages": count, "throttled_answers": throttle.attempts,
        "submits_per_second_while_throttled": round(throttle.attempts / limits.throttle_for, 1),
        "submits_per_second_after": round(throttle.after / limits.throttle_for, 1),
        "first_retry_seconds_min": min(gaps) if gaps else None,
        "retry_seconds_median": statistics.median(gaps) if gaps else None,
        "dropped": throttle.dropped(), "min_backoff": limits.min_backoff,
    }
    seen = (f"{throttle.attempts} submit(s) of {count} message(s) answered ESME_RTHROTTLED over "
            f"{limits.throttle_for:g} s")
    if gaps:
        seen += f"; retries after {min(gaps):.2f} s at the soonest (median {statistics.median(gaps):.2f} s)"
    seen += (f"; {throttle.attempts / limits.throttle_for:g} submit/s while throttled, "
             f"{throttle.after / limits.throttle_for:g}/s after")
    if gaps and min(gaps) < limits.min_backoff:
        return CheckResult("throttling", Status.FAIL, f"{seen}: hammering, a retry sooner than "
                           f"{limits.min_backoff:g} s after ESME_RTHROTTLED", figures)
    if throttle.dropped():
        return CheckResult("throttling", Status.FAIL, f"{seen}: {throttle.dropped()} of {count} throttled "
                           f"message(s) never submitted again within {limits.timeout:g} s (dropped, or held "
                           "back longer than that)", figures)
    return CheckResult("throttling", Status.PASS, f"{seen}; all {count} accepted later", figures)


async def check_receipts_mo(ctx: Context) -> CheckResult:
    """An ESME that does not answer deliver_sm (receipts and MO) promptly with ESME_ROK and
    the same sequence number: the carrier resends it, or stops sending to that bind once
    its window of unanswered deliver_sm is full.

    Sends a DELIVRD receipt for the last message it accepted, then an MO, to a receiver
    or transceiver bind, and times each deliver_sm_resp.
    """
    h, limits = ctx.harness, ctx.limits
    if await ctx.bound_connection() is None:
        return _no_esme("receipts_mo")
    receivers = h.receivers()
    if not receivers:
        return CheckResult("receipts_mo", Status.FAIL, "no receiver or transceiver bind: the ESME "
                           "cannot get receipts or MO")
    conn = receivers[0]
    now = datetime.now(UTC)
    if h.last_accepted is not None:
        submit, message_id = h.last_accepted.submit, h.last_accepted.message_id
        source, destination = getattr(submit, "source_addr", ""), getattr(submit, "destination_addr", "")
    else:
        message_id, source, destination = h.next_message_id(), "12345", "447700900000"
    receipt = build_receipt(message_id=message_id, state=MessageState.DELIVERED, source_addr=source,
                            destination_addr=destination, submit_date=now, done_date=now, text=b"check-esme")
    mo = DeliverSm(source_addr=destination or "447700900000", destination_addr=source or "12345",
                   short_message=b"check-esme MO")
    figures: dict[str, object] = {"limit": limits.response_limit, "message_id": message_id}
    lines: list[str] = []
    passed = True
    for what, pdu in (("receipt", receipt), ("MO", mo)):
        answer = await conn.request(pdu, limits.response_limit)
        verdict = judge_answer(conn, answer, pdu, limits.response_limit)
        passed &= verdict.passed
        figures[f"{what.lower()}_seconds"] = verdict.seconds
        lines.append(f"{what}: {verdict.seen}")
    summary = "; ".join(lines) + ("; sequence numbers echoed" if passed else "")
    return CheckResult("receipts_mo", Status.PASS if passed else Status.FAIL, summary, figures)


def malformed_deliver_sm() -> bytes:
    """The body of a deliver_sm whose sm_length (200) runs past the end of the PDU (5 octets)."""
    body = bytearray(encode(DeliverSm(source_addr="447700900001", destination_addr="12345",
                                      short_message=b"hello"))[16:])
    body[-6] = 200  # sm_length, just before the 5 octets of short_message
    return bytes(body)


async def _send_raw(ctx: Context, conn: ProbeConnection, command_id: int, body: bytes = b"") -> RawProbe:
    sent = conn.send_raw(command_id, body)

    def answered() -> Answer | None:
        return next((s for s in conn.stray if s.at >= sent.at), None)

    await ctx.harness.wait_until(lambda: answered() is not None or conn.transport is None, ctx.limits.response_limit)
    return RawProbe(sent.sequence_number, sent.at, answered(), conn.transport is None and answered() is None)


async def check_reject(ctx: Context) -> CheckResult:
    """An ESME that ignores, or chokes on, a PDU it must refuse: one with a command_id it
    does not know (a newer SMSC's command), for which SMPP 3.4 asks generic_nack
    ESME_RINVCMDID with the same sequence number, and a deliver_sm whose sm_length runs
    past the end of the PDU, which must get an error status, not ESME_ROK (a message
    accepted and lost). Silence leaves the SMSC waiting; closing the link loses what
    was in flight with it.

    The malformed deliver_sm goes to a receiver or transceiver bind (none: not sent).
    """
    limits = ctx.limits
    conn = await ctx.bound_connection()
    if conn is None:
        return _no_esme("reject")
    unknown = await _send_raw(ctx, conn, UNKNOWN_COMMAND_ID)
    verdict = judge_probe(unknown, f"command_id 0x{UNKNOWN_COMMAND_ID:08x}", "generic_nack ESME_RINVCMDID",
                          limits.response_limit, is_invcmdid_nack)
    lines = [verdict.seen]
    figures: dict[str, object] = {"command_id": f"0x{UNKNOWN_COMMAND_ID:08x}", "limit": limits.response_limit,
                                  "seconds": verdict.seconds}
    passed = verdict.passed
    await ctx.bound_connection()  # the first PDU may have cost the connection: the ESME comes back
    receiver = next(iter(ctx.harness.receivers()), None)
    if receiver is None:
        lines.append("no receiver bind: no malformed deliver_sm sent")
    else:
        bad = await _send_raw(ctx, receiver, CommandId.DELIVER_SM, malformed_deliver_sm())
        verdict = judge_probe(bad, "deliver_sm with sm_length past its end", "an error status",
                              limits.response_limit, is_refusal)
        figures["malformed_deliver_sm_seconds"] = verdict.seconds
        lines.append(verdict.seen)
        passed &= verdict.passed
    return CheckResult("reject", Status.PASS if passed else Status.FAIL, "; ".join(lines), figures)


async def check_reconnect(ctx: Context) -> CheckResult:
    """An ESME that does not come back after the SMSC drops the TCP connection (a carrier
    restart, a failover): it stays down until someone restarts it. Also one that comes
    back at once in a tight loop, seen here as many connections.

    Cuts every connection without an unbind and waits for a new accepted bind.
    """
    h, limits = ctx.harness, ctx.limits
    if await ctx.bound_connection() is None:
        return _no_esme("reconnect")
    before = set(h.connections)
    dropped_at = ctx.now()
    for conn in before:
        conn.drop()

    dropped_binds = sum(1 for c in before if c.session.state.is_bound)

    def rebound() -> int:
        return sum(1 for c in h.bound() if c not in before)

    ok = await h.wait_until(lambda: rebound() >= dropped_binds, limits.timeout)
    binds = [b for b in h.binds if b.at >= dropped_at and b.status == 0]
    figures: dict[str, object] = {"dropped": len(before), "binds_after": len(binds), "limit": limits.timeout}
    if not binds:
        ctx.esme_gone = True
        return CheckResult("reconnect", Status.FAIL, f"dropped {len(before)} connection(s); no new bind within "
                           f"{limits.timeout:g} s", figures)
    last = binds[min(dropped_binds, len(binds)) - 1]
    figures["seconds"] = last.at - dropped_at
    again = " + ".join(b.bind_type for b in binds[:dropped_binds])
    if not ok:
        return CheckResult("reconnect", Status.FAIL, f"dropped {dropped_binds} bound connection(s); only "
                           f"{again} came back within {limits.timeout:g} s", figures)
    return CheckResult("reconnect", Status.PASS, f"dropped {len(before)} connection(s); {again} again "
                       f"{ms(last.at - dropped_at)} later (limit {limits.timeout:g} s)", figures)


async def check_unbind(ctx: Context) -> CheckResult:
    """An ESME that does not answer the SMSC's unbind with unbind_resp: the SMSC cannot
    tell a clean shutdown from a dead peer, and an orderly carrier maintenance turns
    into dropped connections.

    Unbinds every bound connection, the last check of the run.
    """
    h, limits = ctx.harness, ctx.limits
    if await ctx.bound_connection() is None:
        return _no_esme("unbind")
    lines, passed, times = [], True, []
    for conn in sorted(h.bound(), key=lambda c: c.opened_at):
        request = Unbind()
        answer = await conn.request(request, limits.response_limit)
        verdict = judge_answer(conn, answer, request, limits.response_limit)
        passed &= verdict.passed
        lines.append(verdict.seen)
        if verdict.seconds is not None:
            times.append(verdict.seconds)
    figures = {"connections": len(lines), "seconds": times, "limit": limits.response_limit}
    return CheckResult("unbind", Status.PASS if passed else Status.FAIL, "; ".join(lines), figures)


async def note_esme_enquire_links(ctx: Context) -> CheckResult:
    """Informational: the ESME's own enquire_links over the run (all answered by the
    checker). An ESME that sends none notices a dead link only when TCP does, which can
    take many minutes; one that sends them every few milliseconds wastes the link."""
    seen = list(ctx.harness.esme_enquire_links)
    if not seen:
        return CheckResult("esme_enquire_link", Status.INFO, "the ESME sent no enquire_link during the run",
                           {"count": 0})
    gaps = [b - a for a, b in zip(seen, seen[1:], strict=False)]
    every = f", one every {statistics.median(gaps):.2f} s" if gaps else ""
    return CheckResult("esme_enquire_link", Status.INFO, f"{len(seen)} enquire_link from the ESME{every}, "
                       "each answered ESME_ROK", {"count": len(seen)})


async def note_esme_errors(ctx: Context) -> CheckResult:
    """Informational: PDUs from the ESME the checker had to refuse over the run (ones that
    do not decode, requests not allowed in the state of the session, such as a submit
    before the bind). Each got the error status SMPP 3.4 gives it."""
    errors = list(ctx.harness.protocol_errors)
    if not errors:
        return CheckResult("esme_errors", Status.INFO, "the ESME sent nothing the checker had to refuse",
                           {"count": 0})
    return CheckResult("esme_errors", Status.INFO, f"{len(errors)} PDU(s) refused, the first: {errors[0]}",
                       {"count": len(errors), "first": errors[:10]})


CHECKS: list[Check] = [
    Check("bind", check_bind),
    Check("enquire_link", check_enquire_link),
    Check("window", check_window),
    Check("throttling", check_throttling),
    Check("receipts_mo", check_receipts_mo),
    Check("reject", check_reject),
    Check("reconnect", check_reconnect),
    Check("unbind", check_unbind),
    Check("esme_enquire_link", note_esme_enquire_links, informational=True),
    Check("esme_errors", note_esme_errors, informational=True),
]
