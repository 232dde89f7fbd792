"""The delivery receipts the simulator writes, and when: a recorded submit and a state in, deliver_sm out.

:func:`plan_receipts` decides what a submit that asked for receipts gets and when
(intermediate states, the final one, silence, a second copy), from the final state
the network drew, the registered_delivery bits and the carrier :class:`Profile`;
:func:`receipt_for` builds the deliver_sm for a :class:`~simulator.records.Submit`
reaching a state, written the way the profile's carrier writes it. Both are pure:
:class:`simulator.engine.Simulator` runs the plan on its timers and its
:class:`smppcore.outbox.Outbox` delivers the receipts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import msgspec

from smppcore import CommandId, DataCoding, EsmClass, MessageState, Pdu
from smppcore.receipt import build_receipt, intermediate_wanted, receipt_wanted

from .config import parse_state
from .profiles import STANDARD, Profile, other_base_id
from .records import Submit, destinations

__all__ = ["receipt_for", "plan_receipts", "ReceiptStep", "naive_utc", "DUPLICATE_LAG", "RECEIPT_LEAD",
           "DEFAULT_INTERMEDIATE"]

_NOT_FAILED = {MessageState.DELIVERED, MessageState.ENROUTE, MessageState.ACCEPTED}
#: How long after the final receipt a duplicate-final carrier sends its second copy (seconds).
DUPLICATE_LAG = 0.1
#: How long a receipt-before-response carrier holds the submit_sm_resp back, at least (seconds): the
#: receipt, sent at once, is written first (on the same transceiver bind; across binds no order is promised).
RECEIPT_LEAD = 0.05
#: What an intermediate-only carrier says when the configuration names no intermediate states.
DEFAULT_INTERMEDIATE = ("ENROUTE", "ACCEPTD")


class ReceiptStep(msgspec.Struct, frozen=True):
    """One thing that happens ``delay`` seconds after the submit.

    ``intermediate``: a receipt for the non-final state ``word``; ``final``: the message
    ends in ``word`` with a receipt; ``silent``: it ends in ``word`` and nobody is told;
    ``copy``: the final receipt is sent again.
    """

    delay: float
    word: str
    kind: Literal["intermediate", "final", "silent", "copy"]


def plan_receipts(*, final: str, state: MessageState, delay: float, registered_delivery: int,
                  intermediate: list[str], intermediate_always: bool, profile: Profile) -> list[ReceiptStep]:
    """What a submit asking for receipts gets, in order: intermediate receipts if asked (or
    configured always), spread over the time to the final state; then the final state, with
    a receipt if that outcome was asked for (smppcore.receipt decides, for the hub alike).

    The profile bends it: ``final_receipt`` off sends the intermediate states (configured,
    else ENROUTE and ACCEPTD) whatever was asked and ends silently; ``receipt_before_response``
    sends the final receipt at once (the engine holds the response back); ``duplicate_final``
    sends the final receipt twice, :data:`DUPLICATE_LAG` apart.
    """
    if not profile.final_receipt:
        words = intermediate or list(DEFAULT_INTERMEDIATE)
        steps = [ReceiptStep(delay * (i + 1) / (len(words) + 1), word, "intermediate") for i, word in enumerate(words)]
        steps.append(ReceiptStep(delay, final, "silent"))
        return steps
    steps = []
    if profile.receipt_before_response:
        delay = 0.0
    elif intermediate and (intermediate_always or intermediate_wanted(registered_delivery)):
        steps = [ReceiptStep(delay * (i + 1) / (len(intermediate) + 1), word, "intermediate")
                 for i, word in enumerate(intermediate)]
    if not receipt_wanted(registered_delivery, state):
        steps.append(ReceiptStep(delay, final, "silent"))
        return steps
    steps.append(ReceiptStep(delay, final, "final"))
    if profile.duplicate_final:
        steps.append(ReceiptStep(delay + DUPLICATE_LAG, final, "copy"))
    return steps


def receipt_for(record: Submit, word: str, final: bool, now: float, profile: Profile | None = None,
                id_format: str = "decimal", destination: str | None = None) -> Pdu:
    """The receipt saying ``record`` reached state ``word`` at ``now`` (a final one if ``final``),
    written as ``profile``'s carrier writes it (``id_format``: how the engine makes message ids), from
    ``destination`` (one of a submit_multi's; by default the submit's own destination)."""
    state = parse_state(word)
    pdu = record.pdu
    if destination is not None:
        dest = destination
    else:
        dest = pdu.destination_addr if pdu.command_id != CommandId.SUBMIT_MULTI else destinations(pdu)[0]
    message_id = record.message_id
    if profile is not None and profile.receipt_id_base == "other":
        message_id = other_base_id(message_id, id_format)
    receipt = build_receipt(
        message_id=message_id,
        state=state,
        source_addr=pdu.source_addr,
        destination_addr=dest,
        source_addr_ton=pdu.source_addr_ton,
        source_addr_npi=pdu.source_addr_npi,
        dest_addr_ton=getattr(pdu, "dest_addr_ton", 0),
        dest_addr_npi=getattr(pdu, "dest_addr_npi", 0),
        submit_date=naive_utc(record.received_at),
        done_date=naive_utc(now),
        err="000" if state in _NOT_FAILED else "001",
        text=_quoted_text(pdu),
        esm_class=EsmClass.TYPE_DELIVERY_RECEIPT if final else EsmClass.TYPE_INTERMEDIATE_NOTIFICATION,
    )
    if profile is None or profile is STANDARD or profile.is_standard:
        return receipt
    return _as_carrier_writes(receipt, profile)


def _as_carrier_writes(receipt: Pdu, profile: Profile) -> Pdu:
    changes: dict[str, object] = {}
    if not profile.receipt_tlvs:
        changes["tlvs"] = {}
    if profile.receipt_coding == "ucs2":
        changes["short_message"] = receipt.short_message.decode("ascii").encode("utf-16-be")
        changes["data_coding"] = int(DataCoding.UCS2)
    if not profile.receipt_flagged:
        changes["esm_class"] = 0
    return msgspec.structs.replace(receipt, **changes) if changes else receipt


def _quoted_text(pdu: Pdu) -> bytes:
    """What a receipt quotes of the message: its text, without a UDH."""
    text = getattr(pdu, "short_message", b"")
    if text and pdu.esm_class & EsmClass.UDHI:
        from smppcore.text import parse_udh

        try:
            text = parse_udh(text)[1]
        except ValueError:
            pass
    return text


def naive_utc(ts: float, _cache: dict = {}) -> datetime:  # noqa: B006 - a deliberate cache
    """``ts`` as a naive UTC datetime to the second: how receipt (and query_sm) dates are written."""
    # receipt dates have second resolution at most, and a burst of receipts shares its seconds
    second = int(ts)
    dt = _cache.get(second)
    if dt is None:
        if len(_cache) > 64:
            _cache.clear()
        # naive UTC: what receipt dates are written in (an aware one is converted on every use)
        dt = _cache[second] = datetime.fromtimestamp(second, UTC).replace(tzinfo=None)
    return dt
