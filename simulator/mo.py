"""The mobile-originated messages the simulator sends: from a text, or echoing an MT back.

Pure functions from what to send to the deliver_sm PDUs; :class:`simulator.engine.Simulator`
queues them in the account's outbox.
"""

from __future__ import annotations

import smppcore
from smppcore import EsmClass, Pdu, Tag

from .records import destinations

__all__ = ["mo_pdus", "echo_of"]

_UDHI = int(EsmClass.UDHI)
#: what an echoed MT keeps of its TLVs: those that carry its text or its segmentation
_ECHO_TLVS = {Tag.SAR_MSG_REF_NUM, Tag.SAR_TOTAL_SEGMENTS, Tag.SAR_SEGMENT_SEQNUM, Tag.MESSAGE_PAYLOAD}


def mo_pdus(source_addr: str, destination_addr: str, text: str | bytes, *, data_coding: int | None,
            reference: int) -> list[Pdu]:
    """The deliver_sm PDUs of one MO: a str is coded and split (UDH ``reference``), bytes go as they are."""
    from smppcore.text import split_text

    if isinstance(text, bytes):
        segments = [(text, data_coding or 0, 0, {})]
    else:
        segments = [(s.short_message, s.data_coding, s.esm_class, s.tlvs)
                    for s in split_text(text, data_coding=data_coding, reference=reference)]
    return [
        smppcore.DeliverSm(source_addr=source_addr, destination_addr=destination_addr, source_addr_ton=1,
                           source_addr_npi=1, data_coding=dc, esm_class=esm, short_message=sm, tlvs=dict(tlvs))
        for sm, dc, esm, tlvs in segments
    ]


def echo_of(pdu: Pdu) -> Pdu:
    """An accepted MT coming straight back as an MO: addresses swapped, same text and coding."""
    dests = destinations(pdu)
    return smppcore.DeliverSm(
        source_addr=dests[0] if dests else "",
        destination_addr=pdu.source_addr,
        data_coding=pdu.data_coding,
        esm_class=pdu.esm_class & _UDHI,
        short_message=getattr(pdu, "short_message", b""),
        tlvs={k: v for k, v in pdu.tlvs.items() if k in _ECHO_TLVS},
    )
