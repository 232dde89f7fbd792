"""Long messages put back together from their segments, each segment's message_id kept.

A module of its own because reassembly has its own state (the segments waiting for
their siblings and the ids they were given) and its own bound (``max_pending``
messages waiting: the oldest is evicted, its ids forgotten). What a handset would
see is returned once the last segment arrives; a message of one part, a UDH without
concatenation or a malformed one comes back at once.
"""

from __future__ import annotations

from smppcore import CommandId, EsmClass, Pdu, Tag

from .records import destinations

__all__ = ["Segments", "Whole"]

_UDHI = int(EsmClass.UDHI)

#: a whole message: its payload (no UDH) and the message_id of every segment, in arrival order
Whole = tuple[bytes, tuple[str, ...]]


class Segments:
    """Collects the segments of long messages, per (account, source, destination)."""

    def __init__(self, max_pending: int) -> None:
        self.max_pending = max(1, max_pending)
        self._reassembler = None  # made on the first segment: most runs never see one
        self._ids: dict[tuple, list[str]] = {}
        self._duplicates = 0

    def collect(self, system_id: str, pdu: Pdu, message_id: str, now: float) -> Whole | None:
        """The whole message ``pdu`` completes (or is), or None while segments are missing.

        ``now`` is the loop's monotonic time (a pending message times out).
        """
        payload = pdu.short_message if pdu.command_id != CommandId.DATA_SM else b""
        tlvs = pdu.tlvs
        if tlvs and Tag.MESSAGE_PAYLOAD in tlvs:
            payload = tlvs[Tag.MESSAGE_PAYLOAD]
        if not (pdu.esm_class & _UDHI or (tlvs and Tag.SAR_MSG_REF_NUM in tlvs)):
            return payload, (message_id,)
        from smppcore.text import Reassembler, concat_info, parse_udh

        try:
            info = concat_info(pdu)
        except ValueError:
            return payload, (message_id,)  # a malformed UDH: recorded as it came
        if info is None:
            if pdu.esm_class & _UDHI:
                # a UDH without concatenation (port numbers, ...): the text is what follows it
                payload = parse_udh(getattr(pdu, "short_message", b"") or tlvs.get(Tag.MESSAGE_PAYLOAD, b""))[1]
            return payload, (message_id,)
        if info.total <= 1:
            return info.payload, (message_id,)
        reassembler = self._reassembler
        if reassembler is None:
            reassembler = self._reassembler = Reassembler(max_pending=self.max_pending)
        dests = destinations(pdu)
        key = (system_id, pdu.source_addr, dests[0] if dests else "")
        parts = (key, info.ref_bits, info.reference, info.total)  # the Reassembler's own grouping
        whole = reassembler.add(key, info, now)
        if whole is None:
            if reassembler.duplicates == self._duplicates:
                self._ids.setdefault(parts, []).append(message_id)
            self._duplicates = reassembler.duplicates
            for gone in reassembler.expire(now):  # evicted or timed out: forget their ids
                self._ids.pop((gone.key, gone.ref_bits, gone.reference, gone.total), None)
            return None
        ids = self._ids.pop(parts, [])
        ids.append(message_id)
        return whole, tuple(ids)
