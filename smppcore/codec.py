"""Encode and decode PDUs; frame a byte stream into PDUs.

The PDU classes in :mod:`smppcore.pdus` declare their wire layout through field
annotations. At import time this module turns each layout into two specialised
functions (one encoder, one decoder) with straight-line code: no per-field loop,
no per-field dispatch, one ``bytes %`` format call to build a body. That is what
makes a pure-Python codec run at hundreds of thousands of PDUs per second.

The generated decoders are optimistic: they trust the bytes and let Python raise
(``ValueError`` from ``bytes.index``, ``IndexError``...) when they do not fit.
Such a failure reruns the PDU through :func:`_checked_decode`, an interpreter of
the same layout that checks every step and raises :class:`PduError` with the
command_status the spec names for the offending field. Hostile input therefore
costs nothing on the happy path and still gets a precise answer.
"""

from __future__ import annotations

import re
import struct
import typing
from collections.abc import Callable, Iterable
from typing import Any

from .constants import CommandId, CommandStatus
from .errors import EncodeError, FramingError, PduError
from .fields import CStr, DestList, Int, ShortMessage, UnsuccessList
from .pdus import PDU_TYPES, DestAddress, DistributionList, Pdu, UnsuccessSme
from .tlv import decode_tlvs, encode_tlvs

__all__ = [
    "encode", "encode_all", "encode_status_responses", "decode", "Framer", "DEFAULT_MAX_PDU_SIZE", "HEADER",
    "layout_of",
]

#: command_length, command_id, command_status, sequence_number
HEADER = struct.Struct(">IIII")
#: Largest PDU accepted by default: a message_payload of a long text fits many times.
DEFAULT_MAX_PDU_SIZE = 65536
_MAX_SM_LENGTH = 254
_MESSAGE_PAYLOAD = 0x0424
_BASE_FIELDS = ("sequence_number", "command_status", "tlvs")
_U32 = struct.Struct(">I")
_pack_header = HEADER.pack

Layout = list[tuple[str, Any, Any]]  # (field name, wire kind, default)
#: A generated decoder: ``(buf, body start, end, sequence_number, command_status) -> PDU``.
Decoder = Callable[[bytes, int, int, int, int], Pdu]
#: A generated encoder: the PDU's wire bytes.
Encoder = Callable[[Pdu], bytes]
Destination = DestAddress | DistributionList


def layout_of(cls: type[Pdu]) -> Layout:
    """The mandatory fields of ``cls`` in wire order, with their wire kinds."""
    hints = typing.get_type_hints(cls, include_extras=True)
    defaults = dict(zip(cls.__struct_fields__[-len(cls.__struct_defaults__):], cls.__struct_defaults__, strict=True))
    out = []
    for name in cls.__struct_fields__:
        if name in _BASE_FIELDS:
            continue
        meta = [m for m in getattr(hints[name], "__metadata__", ()) if not isinstance(m, type)]
        if len(meta) != 1:
            raise TypeError(f"{cls.__name__}.{name} has no wire kind")
        default = defaults[name]
        if hasattr(default, "factory"):  # msgspec's wrapper of a mutable default
            default = default.factory()
        out.append((name, meta[0], default))
    return out


# --- submit_multi lists -------------------------------------------------------


def _decode_dests(buf: bytes, p: int, end: int, seq: int, cid: int) -> tuple[list[Destination], int]:
    if p >= end:
        raise PduError(CommandStatus.ESME_RINVCMDLEN, seq, cid, "body ends before number_of_dests")
    count = buf[p]
    p += 1
    if count > 254:
        raise PduError(CommandStatus.ESME_RINVNUMDESTS, seq, cid, f"number_of_dests {count} > 254")
    dests: list[Destination] = []
    for _ in range(count):
        if p >= end:
            raise PduError(CommandStatus.ESME_RINVNUMDESTS, seq, cid, "fewer dest_address entries than number_of_dests")
        flag = buf[p]
        if flag == 1:
            if p + 3 > end:
                raise PduError(CommandStatus.ESME_RINVCMDLEN, seq, cid, "dest_address entry truncated")
            ton, npi = buf[p + 1], buf[p + 2]
            addr, p = _cstr(buf, p + 3, end, 21, CommandStatus.ESME_RINVDSTADR, seq, cid, "destination_addr")
            dests.append(DestAddress(addr, ton, npi))
        elif flag == 2:
            name, p = _cstr(buf, p + 1, end, 21, CommandStatus.ESME_RINVDLNAME, seq, cid, "dl_name")
            dests.append(DistributionList(name))
        else:
            raise PduError(CommandStatus.ESME_RINVDESTFLAG, seq, cid, f"dest_flag {flag}")
    return dests, p


def _decode_unsuccess(buf: bytes, p: int, end: int, seq: int, cid: int) -> tuple[list[UnsuccessSme], int]:
    if p >= end:
        raise PduError(CommandStatus.ESME_RINVCMDLEN, seq, cid, "body ends before no_unsuccess")
    count = buf[p]
    p += 1
    out: list[UnsuccessSme] = []
    for _ in range(count):
        if p + 2 > end:
            raise PduError(CommandStatus.ESME_RINVCMDLEN, seq, cid, "unsuccess_sme entry truncated")
        ton, npi = buf[p], buf[p + 1]
        addr, p = _cstr(buf, p + 2, end, 21, CommandStatus.ESME_RINVDSTADR, seq, cid, "destination_addr")
        if p + 4 > end:
            raise PduError(CommandStatus.ESME_RINVCMDLEN, seq, cid, "unsuccess_sme entry truncated")
        (code,) = _U32.unpack_from(buf, p)
        out.append(UnsuccessSme(addr, ton, npi, code))
        p += 4
    return out, p


def _cstr(buf: bytes, p: int, end: int, size: int, status: int, seq: int, cid: int, name: str) -> tuple[str, int]:
    if p >= end:
        raise PduError(CommandStatus.ESME_RINVCMDLEN, seq, cid, f"body ends before {name}")
    e = buf.find(b"\0", p, min(p + size, end))
    if e < 0:
        raise PduError(status, seq, cid, f"{name} is not NUL-terminated within {size} octets")
    return buf[p:e].decode("latin-1"), e + 1


def _encode_dests(dests: list[Destination]) -> bytes:
    if len(dests) > 254:
        raise EncodeError(f"submit_multi takes at most 254 destinations, got {len(dests)}")
    parts = [bytes((len(dests),))]
    for d in dests:
        if type(d) is DestAddress:
            addr = _cstr_bytes(d.destination_addr, 21, "destination_addr")
            parts.append(b"\x01%c%c%b\0" % (d.dest_addr_ton, d.dest_addr_npi, addr))
        elif type(d) is DistributionList:
            parts.append(b"\x02%b\0" % _cstr_bytes(d.dl_name, 21, "dl_name"))
        else:
            raise EncodeError(f"dest_address entries are DestAddress or DistributionList, not {type(d).__name__}")
    return b"".join(parts)


def _encode_unsuccess(entries: list[UnsuccessSme]) -> bytes:
    if len(entries) > 255:
        raise EncodeError("at most 255 unsuccess_sme entries")
    parts = [bytes((len(entries),))]
    for u in entries:
        addr = _cstr_bytes(u.destination_addr, 21, "destination_addr")
        parts.append(b"%c%c%b\0%b" % (u.dest_addr_ton, u.dest_addr_npi, addr, _U32.pack(u.error_status_code)))
    return b"".join(parts)


def _cstr_bytes(value: str, size: int, name: str) -> bytes:
    raw = value.encode("latin-1")
    if len(raw) >= size or b"\0" in raw:
        raise EncodeError(f"{name} must be at most {size - 1} octets without NUL, got {value!r}")
    return raw


# --- checked (slow) decoding --------------------------------------------------


def _checked_decode(cls: type[Pdu], buf: bytes, p: int, end: int, seq: int, status: int) -> Pdu:
    """Decode one body with every check; raises PduError naming the bad field."""
    cid = cls.command_id
    if p == end and cls.is_response:
        return cls(seq, status)
    values: list[Any] = []
    for name, kind, _default in LAYOUTS[cls]:
        if type(kind) is Int:
            if p + kind.size > end:
                raise PduError(CommandStatus.ESME_RINVCMDLEN, seq, cid, f"body ends inside {name}")
            values.append(int.from_bytes(buf[p : p + kind.size], "big"))
            p += kind.size
        elif type(kind) is CStr:
            text, p = _cstr(buf, p, end, kind.max, kind.status, seq, cid, name)
            values.append(text)
        elif type(kind) is ShortMessage:
            if p >= end:
                raise PduError(CommandStatus.ESME_RINVCMDLEN, seq, cid, "body ends before sm_length")
            n = buf[p]
            if n > _MAX_SM_LENGTH:
                raise PduError(kind.status, seq, cid, f"sm_length {n} > {_MAX_SM_LENGTH}")
            if p + 1 + n > end:
                raise PduError(kind.status, seq, cid, f"sm_length {n} runs past the end of the PDU")
            values.append(buf[p + 1 : p + 1 + n])
            p += 1 + n
        elif type(kind) is DestList:
            dests, p = _decode_dests(buf, p, end, seq, cid)
            values.append(dests)
        elif type(kind) is UnsuccessList:
            unsuccess, p = _decode_unsuccess(buf, p, end, seq, cid)
            values.append(unsuccess)
        else:  # pragma: no cover - layouts are checked at import
            raise TypeError(kind)
    tlvs = decode_tlvs(buf, p, end, seq, cid) if p < end else {}
    _check_payload_exclusive(cls, values, tlvs, seq)
    return cls(seq, status, tlvs, *values)


def _check_payload_exclusive(cls: type[Pdu], values: list[Any], tlvs: dict[int, Any], seq: int) -> None:
    if _MESSAGE_PAYLOAD in tlvs and "short_message" in _FIELD_INDEX[cls]:
        if values[_FIELD_INDEX[cls]["short_message"]]:
            raise PduError(
                CommandStatus.ESME_ROPTPARNOTALLWD, seq, cls.command_id,
                "short_message and message_payload are both present",
            )


# --- code generation ------------------------------------------------------------


def _gen_decoder(cls: type[Pdu], layout: Layout, default_body: bytes = b"") -> Decoder:
    """Straight-line decoder for ``cls``; ``default_body``: the body of its fields at their defaults.

    Layouts of only octets, C-strings and a short_message are matched by one
    compiled regular expression over the fixed part (C-strings as ``[^\\0]{0,max}+``
    with their NUL, runs of one-octet integers as one group that unpacks into ints);
    the rest (submit_multi's lists) is read field by field.
    """
    names = [n for n, _, _ in layout]
    simple = all(type(k) in (Int, CStr, ShortMessage) for _, k, _ in layout) and all(
        k.size == 1 for _, k, _ in layout if type(k) is Int
    )
    src = ["def decode(buf, p, end, seq, status):"]
    if layout and cls.is_response:
        src.append("    if p == end: return cls(seq, status)")
        # the body of every field at its default (deliver_sm_resp's one NUL): no regex for it
        src.append(f"    if end - p == {len(default_body)} and buf[p:end] == DEFAULT_BODY: return cls(seq, status)")
    src.append("    p0 = p")
    src.append("    try:")
    body: list[str] = []
    checks = ["p > end"]
    regex = b""
    if simple and layout:
        groups: list[str] = []  # python statement per regex group
        run: list[str] = []  # pending one-octet integers

        def flush() -> None:
            nonlocal regex
            if run:
                regex += b"(" + b"." * len(run) + b")"
                groups.append(f"{', '.join(run)}{',' if len(run) == 1 else ''} = g{len(groups)}")
                run.clear()

        sm_name = None
        for name, kind, _ in layout:
            t = type(kind)
            if t is Int:
                run.append(name)
            elif t is CStr:
                flush()
                # possessive: what [^\0] took is never given back (the NUL after it could not
                # match a non-NUL), and sre skips the backtracking state of a bounded repeat
                # (callgrind: a submit_sm decoded in 16.0k -> 15.7k instructions)
                regex += b"([^\0]{0,%d}+)\0" % (kind.max - 1)
                g = f"g{len(groups)}"
                groups.append(f"{name} = {g}.decode('latin-1') if {g} else ''")
            else:  # ShortMessage: its sm_length octet joins the integer run
                run.append("n")
                sm_name = name
                checks.append(f"n > {_MAX_SM_LENGTH}")
        flush()
        gnames = ", ".join(f"g{i}" for i in range(len(groups)))
        body.append("m = match(buf, p, end)")
        body.append(f"{gnames}{',' if len(groups) == 1 else ''} = m.groups()")
        body.append("p = m.end()")
        body += groups
        if sm_name:
            body.append(f"q = p + n; {sm_name} = buf[p:q]; p = q")
    else:
        if any(type(k) is CStr for _, k, _ in layout):
            body.append("index = buf.index")
        for name, kind, _ in layout:
            t = type(kind)
            if t is Int:
                body.append(f"{name} = int.from_bytes(buf[p:p + {kind.size}], 'big'); p += {kind.size}")
            elif t is CStr:
                body.append(f"e = index(b'\\0', p, p + {kind.max}); {name} = buf[p:e].decode('latin-1'); p = e + 1")
            elif t is ShortMessage:
                body.append(f"n = buf[p]; q = p + 1 + n; {name} = buf[p + 1:q]; p = q")
                checks.append(f"n > {_MAX_SM_LENGTH}")
            elif t is DestList or t is UnsuccessList:
                # The C-strings before the list are searched without a bound at ``end``
                # (cheaper): one that ran past it must send the PDU to the checked
                # decoder, not into the list, whose error would then depend on the
                # bytes of the next PDU in the buffer.
                body.append("if p > end: raise ValueError")
                call = "decode_dests" if t is DestList else "decode_unsuccess"
                body.append(f"{name}, p = {call}(buf, p, end, seq, cid)")
    body.append(f"if {' or '.join(checks)}: raise ValueError")
    src += ["        " + line for line in body]
    src.append("    except FAST_FAIL:")
    src.append("        return checked(cls, buf, p0, end, seq, status)")
    args = ", ".join(names)
    sep = ", " if names else ""
    src.append(f"    if p == end: return cls(seq, status, {{}}{sep}{args})")
    src.append("    tlvs = decode_tlvs(buf, p, end, seq, cid)")
    if "short_message" in names:
        src.append("    if short_message and 0x0424 in tlvs: checked(cls, buf, p0, end, seq, status)")
    src.append(f"    return cls(seq, status, tlvs{sep}{args})")
    env: dict[str, Any] = {
        "cls": cls,
        "cid": cls.command_id,
        "match": re.compile(regex, re.DOTALL).match,
        "FAST_FAIL": (ValueError, IndexError, AttributeError, struct.error),
        "checked": _checked_decode,
        "decode_tlvs": decode_tlvs,
        "decode_dests": _decode_dests,
        "decode_unsuccess": _decode_unsuccess,
        "DEFAULT_BODY": default_body,
    }
    exec(compile("\n".join(src), f"<smppcore decode_{cls.__name__}>", "exec"), env)  # noqa: S102 - from our layouts
    generated = env["decode"]
    generated.__qualname__ = generated.__name__ = f"decode_{cls.__name__}"
    generated.__source__ = "\n".join(src)  # for a reader debugging the generated code
    fn: Decoder = generated
    return fn


def _gen_encoder(cls: type[Pdu], layout: Layout, default_body: bytes | None = None) -> Encoder:
    """Straight-line encoder for ``cls``: one ``bytes %`` for the body.

    ``default_body``: the body of a response whose fields are all at their defaults
    (deliver_sm_resp's one NUL), returned without formatting, as an error status is
    (a hub answers every receipt with one).
    """
    fmt = []
    args = []
    pre = []
    checks = []
    for name, kind, _ in layout:
        t = type(kind)
        if t is Int:
            if kind.size == 1:
                fmt.append("%c")
                args.append(f"pdu.{name}")
            else:
                fmt.append("%b")
                args.append(f"pdu.{name}.to_bytes({kind.size}, 'big')")
        elif t is CStr:
            # most optional C-strings are empty (service_type, schedule_delivery_time...): no call for those
            pre.append(f"{name} = pdu.{name}; {name} = {name}.encode('latin-1') if {name} else b''")
            checks.append(f"len({name}) >= {kind.max} or 0 in {name}")
            fmt.append("%b\\0")
            args.append(name)
        elif t is ShortMessage:
            pre.append(f"{name} = pdu.{name}")
            checks.append(f"len({name}) > {_MAX_SM_LENGTH}")
            fmt.append("%c%b")
            args += [f"len({name})", name]
        elif t is DestList:
            fmt.append("%b")
            args.append(f"encode_dests(pdu.{name})")
        elif t is UnsuccessList:
            fmt.append("%b")
            args.append(f"encode_unsuccess(pdu.{name})")
    src = ["def encode(pdu):", "    try:"]
    body = []
    if layout and cls.is_response:
        defaults = " and ".join(f"pdu.{n} == {d!r}" for n, _, d in layout)
        body.append(f"if not pdu.tlvs and {defaults}:")
        body.append("    if pdu.command_status: return pack(16, cid, pdu.command_status, pdu.sequence_number)")
        if default_body is not None:
            body.append(f"    return pack({16 + len(default_body)}, cid, 0, pdu.sequence_number) + DEFAULT_BODY")
    body += pre
    if checks:
        body.append(f"if {' or '.join(checks)}: raise ValueError")
    if fmt:
        body.append(f"body = b'{''.join(fmt)}' % ({', '.join(args)},)")
    else:
        body.append("body = b''")
    body.append("tlvs = pdu.tlvs")
    body.append("if tlvs: body += encode_tlvs(tlvs)")
    body.append("return pack(16 + len(body), cid, pdu.command_status, pdu.sequence_number) + body")
    src += ["        " + line for line in body]
    src.append("    except ENCODE_FAIL as exc:")
    src.append("        raise explain(pdu, exc) from None")
    env: dict[str, Any] = {
        "cid": cls.command_id,
        "pack": HEADER.pack,
        "encode_tlvs": encode_tlvs,
        "encode_dests": _encode_dests,
        "encode_unsuccess": _encode_unsuccess,
        "ENCODE_FAIL": (ValueError, OverflowError, TypeError, AttributeError, struct.error),
        "explain": _explain_encode_failure,
        "DEFAULT_BODY": default_body,
    }
    exec(compile("\n".join(src), f"<smppcore encode_{cls.__name__}>", "exec"), env)  # noqa: S102 - from our layouts
    generated = env["encode"]
    generated.__qualname__ = generated.__name__ = f"encode_{cls.__name__}"
    fn: Encoder = generated
    return fn


def _explain_encode_failure(pdu: Pdu, exc: BaseException) -> EncodeError:
    """Turn whatever the fast encoder tripped on into an EncodeError naming the field."""
    if isinstance(exc, EncodeError):
        return exc
    what = type(pdu).__name__
    if not 0 <= pdu.sequence_number <= 0xFFFFFFFF or not 0 <= pdu.command_status <= 0xFFFFFFFF:
        return EncodeError(f"{what}: sequence_number and command_status must fit 32 bits")
    for name, kind, _ in LAYOUTS[type(pdu)]:
        value = getattr(pdu, name)
        t = type(kind)
        if t is Int and not (isinstance(value, int) and 0 <= value < 256 ** kind.size):
            return EncodeError(f"{what}.{name} must be an integer 0..{256 ** kind.size - 1}, got {value!r}")
        if t is CStr:
            try:
                _cstr_bytes(value, kind.max, f"{what}.{name}")
            except (EncodeError, AttributeError, UnicodeEncodeError) as e:
                return EncodeError(f"{what}.{name} must be latin-1 text of at most {kind.max - 1} octets: {e}")
        if t is ShortMessage and (not isinstance(value, (bytes, bytearray)) or len(value) > _MAX_SM_LENGTH):
            return EncodeError(
                f"{what}.{name} must be bytes of at most {_MAX_SM_LENGTH} octets (use message_payload for more)"
            )
    if not isinstance(pdu.tlvs, dict):
        return EncodeError(f"{what}.tlvs must be a dict")
    return EncodeError(f"{what}: {exc}")


LAYOUTS: dict[type[Pdu], Layout] = {cls: layout_of(cls) for cls in PDU_TYPES.values()}
_FIELD_INDEX = {cls: {n: i for i, (n, _, _) in enumerate(lay)} for cls, lay in LAYOUTS.items()}
#: a response's body with every field at its default, made by its plain encoder
_DEFAULT_BODIES = {cls: _gen_encoder(cls, LAYOUTS[cls])(cls())[16:] for cls in PDU_TYPES.values() if cls.is_response}
_DECODERS: dict[int, Decoder] = {
    cid: _gen_decoder(cls, LAYOUTS[cls], _DEFAULT_BODIES.get(cls, b"")) for cid, cls in PDU_TYPES.items()
}
_ENCODERS: dict[type[Pdu], Encoder] = {
    cls: _gen_encoder(cls, LAYOUTS[cls], _DEFAULT_BODIES.get(cls)) for cls in PDU_TYPES.values()
}


# --- public API -------------------------------------------------------------------


def encode(pdu: Pdu) -> bytes:
    """The wire bytes of ``pdu``. Raises EncodeError when a field does not fit."""
    try:
        enc = _ENCODERS[pdu.__class__]
    except KeyError:
        raise EncodeError(f"not a PDU: {pdu!r}") from None
    return enc(pdu)


#: responses whose one field is message_id (submit_sm_resp, data_sm_resp, deliver_sm_resp): class ->
#: (command_id, the longest message_id in octets)
_MESSAGE_ID_ONLY: dict[type[Pdu], tuple[int, int]] = {
    cls: (int(cls.command_id), layout[0][1].max - 1)
    for cls, layout in LAYOUTS.items()
    if cls.is_response and len(layout) == 1 and layout[0][0] == "message_id" and type(layout[0][1]) is CStr
}


def encode_all(pdus: Iterable[Pdu]) -> list[bytes]:
    """``[encode(pdu) for pdu in pdus]``: the answers a server gives together (a hub's group commit
    answers every submit it stored with a submit_sm_resp).

    A response of a message_id alone, without optional parameters, is written here, inline: its
    header and its one C-string, where a call of :func:`encode` and of the generated encoder
    with its ``%`` format cost twice as much (callgrind: ~2,000 instructions an answer). Anything
    else, or a value the shortcut cannot write (not latin-1, too long, a NUL, a number past 32
    bits: :func:`encode` says what), goes through :func:`encode`.
    """
    out: list[bytes] = []
    append = out.append
    pack = _pack_header
    plain = _MESSAGE_ID_ONLY
    for pdu in pdus:
        known = plain.get(pdu.__class__)
        if known is not None and not pdu.tlvs:
            try:
                raw = pdu.message_id.encode("latin-1")  # type: ignore[attr-defined]
                status = pdu.command_status
                # an error without a message_id is the header alone: encode() writes that one
                if len(raw) <= known[1] and 0 not in raw and (raw or not status):
                    append(b"%b%b\0" % (pack(17 + len(raw), known[0], status, pdu.sequence_number), raw))
                    continue
            except (AttributeError, UnicodeEncodeError, struct.error):
                pass  # encode() raises the EncodeError that names the field
        append(encode(pdu))
    return out


def encode_status_responses(requests: Iterable[Pdu], command_status: int = 0) -> list[bytes]:
    """``encode(request.make_response(command_status=command_status))`` of each request that
    takes a response, without making the responses: a client's answers to the deliver_sm it
    gets, a status and nothing else, one call for a batch of them."""
    out: list[bytes] = []
    pack = _pack_header
    bodies = _DEFAULT_BODIES
    for request in requests:
        response_type = request.response_type
        if response_type is None:
            continue
        if command_status:  # an error with every field at its default: the header alone, as encode() writes it
            out.append(pack(16, response_type.command_id, command_status, request.sequence_number))
        else:
            body = bodies[response_type]
            out.append(pack(16 + len(body), response_type.command_id, 0, request.sequence_number) + body)
    return out


def decode(data: bytes) -> Pdu:
    """Decode exactly one whole PDU. Raises PduError (FramingError for a bad length)."""
    if type(data) is not bytes:
        data = bytes(data)
    if len(data) < 16:
        raise FramingError(CommandStatus.ESME_RINVCMDLEN, 0, 0, f"{len(data)} octets is shorter than a PDU header")
    length, cid, status, seq = HEADER.unpack_from(data)
    if length != len(data):
        raise FramingError(
            CommandStatus.ESME_RINVCMDLEN, seq, cid, f"command_length {length} but {len(data)} octets given"
        )
    dec = _DECODERS.get(cid)
    if dec is None:
        raise PduError(CommandStatus.ESME_RINVCMDID, seq, cid, f"unknown command_id 0x{cid:08X}")
    return dec(data, 16, length, seq, status)


class Framer:
    """Cuts a byte stream into PDUs.

    ``feed(chunk)`` accepts any piece of the stream and returns, in stream order,
    every PDU completed by it. A PDU whose body is bad is returned as a
    :class:`PduError` instance in that list (not raised), so one bad PDU does not
    cost the good ones around it and the caller can answer it. A bad
    command_length means the stream is out of step: a :class:`FramingError`
    (``fatal``) ends the list and every later ``feed`` raises it.

    At most ``max_pdu_size`` octets of a partial PDU are ever buffered.

    A caller that would encode some requests again as they came (a hub stores every
    submit_sm it accepts) asks for their bytes with :meth:`keep_bytes` and
    :meth:`bytes_of` instead.
    """

    __slots__ = ("max_pdu_size", "_rest", "error", "_decoders", "_kept", "_kept_bytes")

    def __init__(self, max_pdu_size: int = DEFAULT_MAX_PDU_SIZE) -> None:
        if max_pdu_size < 16:
            raise ValueError("max_pdu_size must be at least 16")
        self.max_pdu_size = max_pdu_size
        self._rest = b""
        self.error: FramingError | None = None
        self._decoders = _DECODERS
        #: the PDUs of the last chunk whose bytes are kept, alive while their ids key _kept_bytes
        self._kept: list[Pdu] = []
        self._kept_bytes: dict[int, bytes] = {}

    def keep_bytes(self, *types: type[Pdu]) -> None:
        """From now on, keep the bytes of each PDU of ``types`` that :meth:`feed` returns,
        for :meth:`bytes_of`. Other types cost nothing more: theirs go through the
        shared decoders, these through a wrapper of their own.
        """
        decoders = dict(self._decoders)
        for cls in types:
            cid = int(cls.command_id)
            decoders[cid] = self._keeping(_DECODERS[cid], cid)
        self._decoders = decoders

    def _keeping(self, decode: Decoder, cid: int) -> Decoder:
        kept, kept_bytes, pack = self._kept, self._kept_bytes, HEADER.pack

        def keep(buf: bytes, p: int, end: int, seq: int, status: int) -> Pdu:
            pdu = decode(buf, p, end, seq, status)
            # Without optional parameters, the body is what encode() writes for the PDU: C-strings,
            # integers and short_message have one encoding each. Optional parameters may not be (a
            # repeated tag, a C-string without its NUL or with octets after it): those are encoded.
            if not pdu.tlvs:
                kept.append(pdu)
                kept_bytes[id(pdu)] = pack(end - p + 16, cid, 0, 0) + buf[p:end]
            return pdu

        return keep

    def bytes_of(self, pdu: Pdu) -> bytes | None:
        """``encode(pdu)`` with sequence_number and command_status 0, taken from the bytes it
        was decoded from: for a PDU of a type given to :meth:`keep_bytes`, without optional
        parameters, returned by the last :meth:`feed` and not changed since. None otherwise
        (encode it).

        The PDUs are kept until the next :meth:`feed`, so no id seen here can belong to
        another object: a PDU made since, or held and handed out after a later chunk, is
        not found.
        """
        return self._kept_bytes.get(id(pdu))

    def bytes_of_all(self, pdus: Iterable[Pdu]) -> list[bytes | None]:
        """:meth:`bytes_of` of each of ``pdus`` (the requests of one read), in one call made in C."""
        return list(map(self._kept_bytes.get, map(id, pdus)))

    @property
    def buffered(self) -> int:
        """Octets held of a PDU not yet complete."""
        return len(self._rest)

    def feed(self, data: bytes) -> list[Pdu | PduError]:
        if self.error is not None:
            raise self.error
        if self._kept:
            self._kept.clear()
            self._kept_bytes.clear()
        if self._rest:
            data = self._rest + data
        elif type(data) is not bytes:
            data = bytes(data)
        out: list[Pdu | PduError] = []
        n = len(data)
        p = 0
        unpack = HEADER.unpack_from
        decoders = self._decoders
        limit = self.max_pdu_size
        while n - p >= 16:
            length, cid, status, seq = unpack(data, p)
            if length < 16 or length > limit:
                err = FramingError(
                    CommandStatus.ESME_RINVCMDLEN, seq, cid,
                    f"command_length {length} outside 16..{limit}",
                )
                self.error = err
                self._rest = b""
                out.append(err)
                return out
            end = p + length
            if end > n:
                break
            dec = decoders.get(cid)
            if dec is None:
                out.append(PduError(CommandStatus.ESME_RINVCMDID, seq, cid, f"unknown command_id 0x{cid:08X}"))
            else:
                try:
                    out.append(dec(data, p + 16, end, seq, status))
                except PduError as exc:
                    out.append(exc)
            p = end
        self._rest = data[p:] if p < n else b""
        return out


def command_name(command_id: int) -> str:
    try:
        return CommandId(command_id).name.lower()
    except ValueError:
        return f"0x{command_id:08X}"
