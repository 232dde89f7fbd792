"""Fuzz target 1: hostile bytes through smppcore's Framer and decoder.

For every input:

- the Framer fed the whole input at once and fed it in chunks yields the same
  items in the same order (PDUs equal, errors with equal status, sequence number
  and command id), and after a fatal FramingError every later feed raises it again;
- every item is a PDU of a known type or a PduError carrying a real SMPP 3.4
  error status (:func:`~smpphub.bench.fuzz.invariants.check_error`);
- ``smppcore.decode`` of each PDU's own bytes agrees with the Framer;
- every decoded PDU re-encodes, decodes back to an equal PDU, and that encoding is
  a fixed point (encode(decode(encode(p))) == encode(p));
- the Framer never holds more than ``max_pdu_size`` octets of a partial PDU.

Anything else raised is the crash.
"""

from __future__ import annotations

from smppcore.codec import HEADER, Framer, decode, encode
from smppcore.errors import EncodeError, FramingError, PduError
from smppcore.pdus import PDU_TYPES, Pdu

from .invariants import InvariantBroken, check_error, chunks

__all__ = ["check_codec", "FUZZ_MAX_PDU_SIZE"]

#: Small enough that the fuzzer reaches the limit with inputs of a few KB.
FUZZ_MAX_PDU_SIZE = 2048

Item = Pdu | PduError


def check_codec(data: bytes, max_pdu_size: int = FUZZ_MAX_PDU_SIZE) -> list[Item]:
    """Check every codec invariant on ``data``; returns the Framer's items."""
    whole = _feed(Framer(max_pdu_size), [data], max_pdu_size)
    cut = _feed(Framer(max_pdu_size), chunks(data), max_pdu_size)
    if [_key(i) for i in whole] != [_key(i) for i in cut]:
        raise InvariantBroken(f"the Framer's items depend on the chunking: {whole!r} vs {cut!r}")
    for item, raw in zip(whole, _slices(data, max_pdu_size), strict=False):
        if isinstance(item, PduError):
            check_error(item)
            if not item.fatal:
                _same_as_decode(item, raw)
        elif isinstance(item, Pdu):
            _check_pdu(item, raw)
        else:
            raise InvariantBroken(f"the Framer yielded {type(item).__name__}, neither a PDU nor a PduError")
    return whole


def _feed(framer: Framer, pieces: list[bytes], limit: int) -> list[Item]:
    out: list[Item] = []
    for piece in pieces:
        out += framer.feed(piece)
        if framer.buffered > limit:
            raise InvariantBroken(f"the Framer buffers {framer.buffered} octets, over max_pdu_size {limit}")
        if framer.error is not None:
            break
    if framer.error is not None:
        if not out or out[-1] is not framer.error:
            raise InvariantBroken("a fatal FramingError was not the last item returned")
        try:
            framer.feed(b"")
        except FramingError as exc:
            if exc is not framer.error:
                raise InvariantBroken("a feed after a fatal error raised a different error") from exc
        else:
            raise InvariantBroken("a feed after a fatal FramingError did not raise it")
    return out


def _slices(data: bytes, limit: int) -> list[bytes]:
    """Each whole PDU's bytes, cut by command_length as the spec says (an independent framer)."""
    out = []
    p = 0
    while len(data) - p >= 16:
        length = HEADER.unpack_from(data, p)[0]
        if length < 16 or length > limit:
            out.append(data[p : p + 16])
            break
        if p + length > len(data):
            break
        out.append(data[p : p + length])
        p += length
    return out


def _key(item: Item) -> object:
    if isinstance(item, PduError):
        return (type(item).__name__, item.command_status, item.sequence_number, item.command_id)
    return item


def _same_as_decode(err: PduError, raw: bytes) -> None:
    try:
        got = decode(raw)
    except PduError as exc:
        if _key(exc) != _key(err):
            raise InvariantBroken(f"decode() says {exc!r}, the Framer {err!r}, for {raw.hex()}") from exc
        return
    raise InvariantBroken(f"decode() accepts {got!r}, the Framer said {err!r}, for {raw.hex()}")


def _check_pdu(pdu: Pdu, raw: bytes) -> None:
    if PDU_TYPES.get(pdu.command_id) is not type(pdu):
        raise InvariantBroken(f"{type(pdu).__name__} decoded from command_id 0x{pdu.command_id:08X}")
    try:
        alone = decode(raw)
    except PduError as exc:
        raise InvariantBroken(f"decode() refuses ({exc}) what the Framer decoded: {raw.hex()}") from exc
    if alone != pdu:
        raise InvariantBroken(f"decode() gives {alone!r}, the Framer {pdu!r}")
    try:
        again = encode(pdu)
    except EncodeError as exc:
        raise InvariantBroken(f"a decoded PDU does not encode ({exc}): {pdu!r} from {raw.hex()}") from exc
    try:
        back = decode(again)
    except PduError as exc:
        raise InvariantBroken(f"our own encoding {again.hex()} of {pdu!r} does not decode: {exc}") from exc
    if back != pdu:
        raise InvariantBroken(f"decode(encode(p)) != p: {pdu!r} -> {again.hex()} -> {back!r}")
    if encode(back) != again:
        raise InvariantBroken(f"encode is not a fixed point for {pdu!r}")
