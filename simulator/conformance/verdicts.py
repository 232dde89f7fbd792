"""Judging the ESME's answers to the checker's own PDUs, and saying what was seen in words.

A :class:`Verdict` is what a check reports per request: passed or not, the line a
developer reads (``enquire_link_resp ESME_ROK in 0.31 ms``, ``no unbind_resp within
2 s``, ``the ESME closed the connection instead of answering ...``), and how long the
answer took.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from smppcore import CommandId, CommandStatus, Pdu, status_name

from .probe import Answer, ProbeConnection

__all__ = ["Verdict", "RawProbe", "ms", "judge_answer", "judge_probe", "is_invcmdid_nack", "is_refusal"]


@dataclass(frozen=True)
class Verdict:
    passed: bool
    seen: str
    seconds: float | None = None  # how long the answer took (None: none came)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def judge_answer(conn: ProbeConnection, answer: Answer, request: Pdu, limit: float) -> Verdict:
    """Was ``request`` answered by its response type, ESME_ROK, its sequence number
    echoed, within ``limit``? And what was seen, in words."""
    name = request.command_name
    pdu = answer.pdu
    took = answer.elapsed if pdu is not None else None
    if pdu is None:
        stray = [s.pdu for s in conn.stray if s.at >= answer.sent_at and s.pdu is not None]
        if stray:
            got = stray[0]
            return Verdict(False, f"answered {got.command_name} with sequence_number {got.sequence_number}, "
                                  f"not the request's {request.sequence_number}")
        if conn.transport is None:
            return Verdict(False, f"the ESME closed the connection instead of answering {name}", took)
        return Verdict(False, f"no {name}_resp within {limit:g} s", took)
    if pdu.command_id != request.command_id | 0x80000000:
        answered = f"{pdu.command_name} {status_name(pdu.command_status)}"
        return Verdict(False, f"answered {answered}, expected {name}_resp", took)
    if pdu.command_status != CommandStatus.ESME_ROK:
        return Verdict(False, f"answered {name}_resp with {status_name(pdu.command_status)}, expected ESME_ROK", took)
    if answer.elapsed > limit:
        return Verdict(False, f"{name}_resp after {ms(answer.elapsed)}, over the limit of {limit:g} s", took)
    return Verdict(True, f"{name}_resp ESME_ROK in {ms(answer.elapsed)}", took)


@dataclass(frozen=True)
class RawProbe:
    """What became of one raw PDU the checker sent."""

    seq: int
    sent_at: float
    answer: Answer | None  # the first response that came after it, whatever its sequence number
    closed: bool


def judge_probe(probe: RawProbe, what: str, expected: str, limit: float, good: Callable[[Pdu], bool]) -> Verdict:
    """Was ``probe`` answered as ``good`` says, with its sequence number? In words, and how fast."""
    if probe.answer is None or probe.answer.pdu is None:
        if probe.closed:
            return Verdict(False, f"{what}: the ESME closed the connection instead of answering {expected}")
        return Verdict(False, f"{what}: no answer within {limit:g} s (expected {expected})")
    pdu = probe.answer.pdu
    elapsed = probe.answer.at - probe.sent_at
    seen = f"{what}: {pdu.command_name} {status_name(pdu.command_status)} in {ms(elapsed)}"
    if not good(pdu):
        return Verdict(False, f"{seen}, expected {expected}", elapsed)
    if pdu.sequence_number != probe.seq:
        return Verdict(False, f"{seen} with sequence_number {pdu.sequence_number}, not the request's {probe.seq}",
                       elapsed)
    return Verdict(True, f"{seen}, sequence number echoed", elapsed)


def is_invcmdid_nack(pdu: Pdu) -> bool:
    return pdu.command_id == CommandId.GENERIC_NACK and pdu.command_status == CommandStatus.ESME_RINVCMDID


def is_refusal(pdu: Pdu) -> bool:
    """deliver_sm_resp or generic_nack, with an error status."""
    return pdu.command_id in (CommandId.DELIVER_SM_RESP, CommandId.GENERIC_NACK) and pdu.command_status != 0
