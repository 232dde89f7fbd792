"""What a submit asks for: which SMSC receipts its registered_delivery wants.

Decided here, once, for the hub and the simulator alike (SMPP 3.4 section 5.2.17).
A module of its own because it reads a submit's field, not a receipt: code that only
decides whether to keep a message for its receipt needs none of the receipt parsing.
Re-exported by :mod:`smppcore.receipt`.
"""

from __future__ import annotations

from .constants import MessageState, RegisteredDelivery

__all__ = ["receipt_wanted", "intermediate_wanted", "receipts_requested"]

_RECEIPT_MASK = int(RegisteredDelivery.RECEIPT_MASK)
_ALWAYS = int(RegisteredDelivery.RECEIPT_ALWAYS)
_ON_FAILURE = int(RegisteredDelivery.RECEIPT_ON_FAILURE)
_ON_SUCCESS = int(RegisteredDelivery.RECEIPT_ON_SUCCESS)
_INTERMEDIATE = int(RegisteredDelivery.INTERMEDIATE_NOTIFICATION)
_ANY_RECEIPT = _RECEIPT_MASK | _INTERMEDIATE


def receipt_wanted(registered_delivery: int, final_state: MessageState) -> bool:
    """Whether a submit with ``registered_delivery`` asks for the final receipt that
    reports ``final_state``.

    SMPP 3.4 section 5.2.17, bits 0-1: 0 no receipt; 1 a receipt on the final outcome,
    success or failure; 2 a receipt on failure only. Value 3 is reserved in 3.4; SMPP
    5.0 defines it as "a receipt on success only", and SMSCs that accept it do that,
    so it means that here. Success is DELIVERED; every other outcome (EXPIRED,
    UNDELIVERABLE, REJECTED, DELETED, UNKNOWN, ...) counts as failure. The other bits
    (SME acknowledgements, intermediate notifications) do not matter here.
    """
    asked = registered_delivery & _RECEIPT_MASK
    if asked == _ALWAYS:
        return True
    if asked == _ON_FAILURE:
        return final_state != MessageState.DELIVERED
    if asked == _ON_SUCCESS:
        return final_state == MessageState.DELIVERED
    return False


def intermediate_wanted(registered_delivery: int) -> bool:
    """Whether intermediate notifications (ENROUTE, ACCEPTD, ... before the final
    state; esm_class 0x20) are asked for: bit 4 of registered_delivery."""
    return bool(registered_delivery & _INTERMEDIATE)


def receipts_requested(registered_delivery: int) -> bool:
    """Whether any SMSC receipt may be due for this submit, final or intermediate.

    True when :func:`receipt_wanted` can be true for some outcome or
    :func:`intermediate_wanted` is: the cheap test for "keep what is needed to match
    a receipt later". SME acknowledgements (bits 2-3) are not SMSC receipts.
    """
    return bool(registered_delivery & _ANY_RECEIPT)
