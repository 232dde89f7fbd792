"""Concatenated messages: reading the UDH or SAR parameters of a segment, and
putting the segments of a long message back together (out of order, duplicated,
some never arriving), with bounded memory.

Splitting lives in :mod:`smppcore.text`, which also re-exports these names.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Any

import msgspec

from .constants import EsmClass, Tag

__all__ = ["parse_udh", "ConcatInfo", "concat_info", "Incomplete", "Reassembler"]

#: esm_class bit: the short_message starts with a UDH (a plain int, cheap to test against)
ESM_UDHI = int(EsmClass.UDHI)
IEI_CONCAT_8 = 0x00  # concatenated message, 8-bit reference
IEI_CONCAT_16 = 0x08  # concatenated message, 16-bit reference


# --- UDH and concatenation info ----------------------------------------------------


def parse_udh(short_message: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Split a short_message that starts with a UDH into its information elements
    ``[(iei, data), ...]`` and the user data after the header.

    Raises ValueError when the header length or an element's length runs past the
    end, since that message cannot be read reliably.
    """
    if not short_message:
        raise ValueError("UDH indicated but short_message is empty")
    udhl = short_message[0]
    end = 1 + udhl
    if end > len(short_message):
        raise ValueError(f"UDH length {udhl} exceeds the {len(short_message) - 1} octets after it")
    elements = []
    pos = 1
    while pos < end:
        if pos + 2 > end:
            raise ValueError(f"truncated information element header at UDH offset {pos}")
        iei, length = short_message[pos], short_message[pos + 1]
        start = pos + 2
        pos = start + length
        if pos > end:
            raise ValueError(f"information element 0x{iei:02X} of length {length} overruns the UDH")
        elements.append((iei, bytes(short_message[start:pos])))
    return elements, bytes(short_message[end:])


class ConcatInfo(msgspec.Struct, frozen=True):
    """Where one segment sits in a concatenated message, and its user data."""

    reference: int
    total: int
    seq: int
    ref_bits: int
    payload: bytes


def _tlv_int(value: Any) -> int:
    if isinstance(value, int):
        return value
    return int.from_bytes(value, "big")


def concat_info(pdu: Any) -> ConcatInfo | None:
    """The concatenation info of a submit_sm / deliver_sm / data_sm (any object with
    ``esm_class``, ``tlvs`` and optionally ``short_message``), or None if it is not a
    segment.

    Looks at the UDH when esm_class has UDHI set (IE 0x00 or 0x08), else at the SAR
    TLVs. The user data is short_message, or the message_payload TLV when
    short_message is empty or absent (data_sm). Elements with a total of 0, or a
    sequence number of 0 or above the total, are ignored as 23.040 says (None).
    Raises ValueError for a malformed UDH or a concatenation IE of the wrong length.
    """
    tlvs = getattr(pdu, "tlvs", None) or {}
    data = getattr(pdu, "short_message", b"") or tlvs.get(Tag.MESSAGE_PAYLOAD, b"")
    if getattr(pdu, "esm_class", 0) & ESM_UDHI:
        elements, payload = parse_udh(data)
        for iei, ie in elements:
            if iei == IEI_CONCAT_8:
                if len(ie) != 3:
                    raise ValueError(f"concatenation IE 0x00 has length {len(ie)}, not 3")
                ref, total, seq, bits = ie[0], ie[1], ie[2], 8
            elif iei == IEI_CONCAT_16:
                if len(ie) != 4:
                    raise ValueError(f"concatenation IE 0x08 has length {len(ie)}, not 4")
                ref, total, seq, bits = (ie[0] << 8) | ie[1], ie[2], ie[3], 16
            else:
                continue
            if total == 0 or not 1 <= seq <= total:
                return None
            return ConcatInfo(ref, total, seq, bits, payload)
        return None
    try:
        ref = tlvs[Tag.SAR_MSG_REF_NUM]
        total = tlvs[Tag.SAR_TOTAL_SEGMENTS]
        seq = tlvs[Tag.SAR_SEGMENT_SEQNUM]
    except KeyError:
        return None
    ref, total, seq = _tlv_int(ref), _tlv_int(total), _tlv_int(seq)
    if total == 0 or not 1 <= seq <= total:
        return None
    return ConcatInfo(ref & 0xFFFF, total, seq, 16, bytes(data))


# --- reassembly --------------------------------------------------------------------


class Incomplete(msgspec.Struct, frozen=True):
    """A concatenated message given up on: which one, and which parts never came.

    ``reason`` is ``"timeout"`` (older than the Reassembler's timeout) or
    ``"evicted"`` (pushed out by the max_pending / max_bytes bounds).
    """

    key: Any
    reference: int
    total: int
    ref_bits: int
    missing: list[int]
    reason: str


class _Partial:
    """The parts of one concatenated message received so far."""

    __slots__ = ("key", "info", "started", "parts", "size")

    def __init__(self, key: Hashable, info: ConcatInfo, started: float) -> None:
        self.key = key
        self.info = info
        self.started = started
        self.parts: dict[int, bytes] = {}
        self.size = 0

    def incomplete(self, reason: str) -> Incomplete:
        info = self.info
        missing = [s for s in range(1, info.total + 1) if s not in self.parts]
        return Incomplete(self.key, info.reference, info.total, info.ref_bits, missing, reason)


class Reassembler:
    """Collects segments of concatenated messages and hands back each whole message.

    Segments are grouped by the caller's ``key`` (say, the source and destination
    addresses: references are only unique per sender and recipient) together with
    the reference, its width and the total. Parts may come in any order; a repeated
    part is ignored and counted in ``duplicates``.

    Memory is bounded: at most ``max_pending`` partial messages and ``max_bytes``
    octets of held parts. Beyond either bound the oldest partial message is evicted.
    Evicted messages are reported by the next :meth:`expire` call, in the same list
    as timed-out ones (``reason="evicted"``); up to ``max_pending`` such reports are
    kept, and ``evictions`` counts them all.

    Time is whatever clock the caller passes in (``now``), so tests need no sleeping.
    A part that arrives after its message completed (a late retransmission) starts a
    new partial message, which times out in due course.
    """

    def __init__(
        self, max_pending: int = 10000, timeout: float = 600.0, *, max_bytes: int = 64 * 1024 * 1024
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.max_pending = max_pending
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.duplicates = 0
        self.evictions = 0
        # Insertion order is arrival order of each message's first part, so the
        # oldest partial message is always first.
        self._pending: dict[tuple[Any, ...], _Partial] = {}
        self._bytes = 0
        self._evicted: deque[Incomplete] = deque(maxlen=max_pending)

    @property
    def pending(self) -> int:
        """How many partial messages are held."""
        return len(self._pending)

    def add(self, key: Hashable, info: ConcatInfo, now: float) -> bytes | None:
        """Take one segment; return the whole user data (parts in sequence order)
        when this was the last missing part, else None."""
        total, seq = info.total, info.seq
        if not 1 <= seq <= total:
            raise ValueError(f"segment {seq} of {total} is out of range")
        if total == 1:
            return info.payload
        k = (key, info.ref_bits, info.reference, total)
        partial = self._pending.get(k)
        if partial is None:
            while len(self._pending) >= self.max_pending:
                self._evict_oldest()
            partial = self._pending[k] = _Partial(key, info, now)
        parts = partial.parts
        if seq in parts:
            self.duplicates += 1
            return None
        parts[seq] = info.payload
        size = len(info.payload)
        partial.size += size
        self._bytes += size
        if len(parts) == total:
            del self._pending[k]
            self._bytes -= partial.size
            return b"".join([parts[i] for i in range(1, total + 1)])
        while self._bytes > self.max_bytes and next(iter(self._pending)) != k:
            self._evict_oldest()
        return None

    def _evict_oldest(self) -> None:
        k = next(iter(self._pending))
        partial = self._pending.pop(k)
        self._bytes -= partial.size
        self.evictions += 1
        self._evicted.append(partial.incomplete("evicted"))

    def expire(self, now: float) -> list[Incomplete]:
        """Drop partial messages whose first part came ``timeout`` or more ago and
        report them, after any evicted since the last call."""
        out = list(self._evicted)
        self._evicted.clear()
        pending = self._pending
        limit = now - self.timeout
        while pending:
            k = next(iter(pending))
            partial = pending[k]
            if partial.started > limit:
                break
            del pending[k]
            self._bytes -= partial.size
            out.append(partial.incomplete("timeout"))
        return out
