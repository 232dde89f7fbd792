"""The delivery receipts the simulator writes: a recorded submit and a state in, a deliver_sm out.

:func:`receipt_for` builds the receipt for a :class:`~simulator.records.Submit`
reaching a state (``DELIVRD``, ``UNDELIV``, ... or an intermediate one);
:class:`simulator.engine.Simulator` decides which state and when, and its
:class:`smppcore.outbox.Outbox` delivers the receipt.
"""

from __future__ import annotations

from datetime import datetime, timezone

from smppcore import CommandId, EsmClass, MessageState, Pdu
from smppcore.receipt import build_receipt

from .config import parse_state
from .records import Submit, destinations

__all__ = ["receipt_for", "naive_utc"]

_NOT_FAILED = {MessageState.DELIVERED, MessageState.ENROUTE, MessageState.ACCEPTED}


def receipt_for(record: Submit, word: str, final: bool, now: float) -> Pdu:
    """The receipt saying ``record`` reached state ``word`` at ``now`` (a final one if ``final``)."""
    state = parse_state(word)
    pdu = record.pdu
    dest = pdu.destination_addr if pdu.command_id != CommandId.SUBMIT_MULTI else destinations(pdu)[0]
    return build_receipt(
        message_id=record.message_id,
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
        dt = _cache[second] = datetime.fromtimestamp(second, timezone.utc).replace(tzinfo=None)
    return dt
