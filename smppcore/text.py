"""Text in short messages: codings, splitting long text, and putting it back together.

SMPP carries message text as octets plus a ``data_coding`` number that says how to
read them. This module turns ``str`` into those octets and back for every coding a
hub meets in practice, picks the cheapest coding for a text, splits text that does
not fit one message into concatenated segments (UDH with an 8- or 16-bit reference,
SAR TLVs, or one ``message_payload``), and reassembles segments that arrive in any
order.

Everything here is pure and sans-IO: functions of their arguments, plus one small
stateful class (:class:`Reassembler`) whose clock is passed in by the caller.

GSM 03.38 in SMPP
-----------------
data_coding 0 text travels *unpacked* over SMPP: one septet per octet, the SMSC packs
it for the air interface. Characters of the extension table take two septets (the
escape 0x1B, then the character's code). :func:`gsm7_pack` / :func:`gsm7_unpack` do
the air-interface packing for the places that need it (message_payload towards some
handsets, tests against the spec's examples).

Capacities
----------
One message carries 140 octets of user data, which is 160 septets of GSM text,
140 octets of an 8-bit coding, or 70 UCS-2 code units. A concatenation UDH costs 6
octets (8-bit reference) or 7 octets (16-bit reference), leaving 153/152 septets
(the UDH is padded to a septet boundary on the air), 134/133 octets, or 67/66 code
units per segment. SAR segments use the 8-bit-UDH capacities because the SMSC turns
SAR TLVs into exactly that UDH.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

import msgspec

from .concat import ESM_UDHI, IEI_CONCAT_8, IEI_CONCAT_16, ConcatInfo, Incomplete, Reassembler, concat_info, parse_udh  # noqa: F401 - re-exported
from .constants import Tag

__all__ = [
    "UnencodableText",
    "gsm7_encode",
    "gsm7_decode",
    "gsm7_pack",
    "gsm7_unpack",
    "gsm7_septets",
    "is_gsm7",
    "encode_text",
    "decode_text",
    "choose_coding",
    "Segment",
    "split_text",
    "split_binary",
    "parse_udh",
    "ConcatInfo",
    "concat_info",
    "Incomplete",
    "Reassembler",
    "join_segments",
]


class UnencodableText(ValueError):
    """The text holds a character the requested coding cannot represent.

    Carries the first such character, its index in the text and the data_coding,
    so a caller can report exactly what to fix (or fall back to UCS-2).
    """

    def __init__(self, char: str, position: int, data_coding: int) -> None:
        self.char = char
        self.position = position
        self.data_coding = data_coding
        super().__init__(
            f"character {char!r} (U+{ord(char):04X}) at position {position} "
            f"cannot be encoded with data_coding {data_coding}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.char, self.position, self.data_coding))


# --- GSM 03.38 default alphabet ----------------------------------------------------

#: The escape to the extension table (basic-table position 0x1B).
GSM_ESCAPE = 0x1B

# The basic table, position by position (3GPP TS 23.038 section 6.2.1), 16 a row.
# Position 0x1B is the escape; it has no character of its own (see _ESC_ALONE).
_GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"  # 0x10
    " !\"#¤%&'()*+,-./"  # 0x20
    "0123456789:;<=>?"  # 0x30
    "¡ABCDEFGHIJKLMNO"  # 0x40
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50
    "¿abcdefghijklmno"  # 0x60
    "pqrstuvwxyzäöñüà"  # 0x70
)
assert len(_GSM_BASIC) == 128

# The extension table (section 6.2.1.1): code after the escape -> character.
_GSM_EXTENSION = {
    0x0A: "\x0c",  # form feed (page break)
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

# What a receiver shows for a lone escape at the very end of the data: the Unicode
# mapping of the basic table gives position 0x1B as NO-BREAK SPACE.
_ESC_ALONE = "\xa0"
# 1B 1B is reserved for a second extension table; 23.038 says to display a space.
_ESC_ESC = " "

# Encoding: one dict for charmap_encode (C speed), int for basic chars, two bytes for
# extension chars. The escape itself is not encodable from text.
_GSM_ENCODE_MAP: dict[int, int | bytes] = {
    ord(ch): code for code, ch in enumerate(_GSM_BASIC) if code != GSM_ESCAPE
}
_GSM_ENCODE_MAP.update({ord(ch): bytes((GSM_ESCAPE, code)) for code, ch in _GSM_EXTENSION.items()})

_GSM_EXTENSION_CHARS = frozenset(_GSM_EXTENSION.values())
#: Every character gsm7_encode accepts.
_GSM_CHARS = frozenset(chr(c) for c in _GSM_ENCODE_MAP)

# Decoding: a 256-entry table for charmap_decode (bytes >= 0x80 read as their low 7
# bits). 0x1B decodes to a placeholder ("\x1b", which no GSM code produces otherwise)
# that a second, rare pass resolves against the following character.
_ESC_MARK = "\x1b"
_GSM_DECODE_TABLE = _GSM_BASIC * 2
# basic-table char that follows an escape -> what the pair means. Unknown escapes read
# as the basic char itself (23.038: "display the character of the main table").
_ESC_PAIR = {_GSM_BASIC[code]: ch for code, ch in _GSM_EXTENSION.items()}
_ESC_PAIR[_ESC_MARK] = _ESC_ESC
_ESC_PAIR[""] = _ESC_ALONE
_ESC_RE = re.compile("\x1b(.?)", re.DOTALL)


def _resolve_escape(m: re.Match[str]) -> str:
    nxt = m.group(1)
    return _ESC_PAIR.get(nxt, nxt)


def gsm7_encode(text: str) -> bytes:
    """``text`` as unpacked GSM 03.38 septets, one per octet (SMPP data_coding 0).

    Extension characters become the escape 0x1B followed by their code. Raises
    :class:`UnencodableText` naming the first character outside the alphabet.
    """
    try:
        return codecs.charmap_encode(text, "strict", _GSM_ENCODE_MAP)[0]
    except UnicodeEncodeError as e:
        raise UnencodableText(text[e.start], e.start, 0) from None


def gsm7_decode(data: bytes) -> str:
    """Unpacked GSM 03.38 septets as text. Never raises: peers send all sorts.

    Octets >= 0x80 are read by their low 7 bits. An escape followed by a code the
    extension table does not define reads as that code's basic-table character
    (23.038's rule for receivers); 1B 1B reads as a space, a trailing lone escape as
    NO-BREAK SPACE.
    """
    text = codecs.charmap_decode(data, "strict", _GSM_DECODE_TABLE)[0]
    if _ESC_MARK in text:
        text = _ESC_RE.sub(_resolve_escape, text)
    return text


def is_gsm7(text: str) -> bool:
    """True if every character of ``text`` is in the GSM default alphabet or its
    extension table."""
    return _GSM_CHARS.issuperset(text)


def gsm7_septets(text: str) -> int:
    """Length of ``text`` in septets: extension characters count two.

    Raises :class:`UnencodableText` for text outside the alphabet, where a septet
    count means nothing.
    """
    return len(gsm7_encode(text))


# Septet -> its 7 bits, most significant first; octets >= 0x80 count by their low 7.
_BITS7 = str.maketrans({i: format(i & 0x7F, "07b") for i in range(256)})
_SEVEN_BITS_RE = re.compile(".{7}", re.DOTALL)
_CR_BITS = format(0x0D, "07b")


def gsm7_pack(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack septets (one per octet, high bit ignored) into the air-interface form.

    Septet ``i`` occupies bits ``7*i + fill_bits`` onwards, least significant bit
    first (23.038 section 6.1.2.1). ``fill_bits`` (0-6) zero bits go first, to align
    text that follows a UDH on a septet boundary. When the last octet has exactly 7
    spare bits they carry a CR rather than zeros, as 23.038 section 6.1.2.3.1
    requires, so a receiver cannot mistake them for a trailing '@'.

    Works on the whole message as one integer (a translate, an int() and a
    to_bytes), so it costs a few C calls rather than a Python loop per septet.
    """
    if not 0 <= fill_bits <= 6:
        raise ValueError(f"fill_bits must be 0..6, not {fill_bits}")
    n = len(septets)
    if n == 0:
        return b""
    used = 7 * n + fill_bits
    nbytes = (used + 7) // 8
    # Most significant first: the last septet leads the bit string.
    bits = bytes(septets[::-1]).decode("latin-1").translate(_BITS7) + "0" * fill_bits
    if nbytes * 8 - used == 7:
        bits = _CR_BITS + bits
    return int(bits, 2).to_bytes(nbytes, "little")


def gsm7_unpack(data: bytes, count: int, fill_bits: int = 0) -> bytes:
    """The first ``count`` septets of packed ``data`` (after ``fill_bits`` bits), one
    per octet. ``count`` comes from the message (the TP-UDL), since padding alone is
    ambiguous. Raises ValueError if ``data`` is too short for ``count`` septets.
    """
    if not 0 <= fill_bits <= 6:
        raise ValueError(f"fill_bits must be 0..6, not {fill_bits}")
    if count < 0:
        raise ValueError("count must not be negative")
    if count == 0:
        return b""
    nbits = 7 * count
    if nbits + fill_bits > 8 * len(data):
        raise ValueError(f"{len(data)} octets cannot hold {count} septets after {fill_bits} fill bits")
    value = (int.from_bytes(data, "little") >> fill_bits) & ((1 << nbits) - 1)
    bits = format(value, "b").zfill(nbits)
    # Give every 7-bit group a leading zero so the string reads as whole octets,
    # last septet first; reverse to get septet order.
    octets = "0" + "0".join(_SEVEN_BITS_RE.findall(bits))
    return int(octets, 2).to_bytes(count, "big")[::-1]


# --- data_coding -------------------------------------------------------------------

# What each data_coding means here. A kind is "gsm", "ucs2", "binary", or the name of
# a Python codec for the 8-bit character sets.
_GSM = "gsm"
_UCS2 = "ucs2"
_BINARY = "binary"


def _build_kinds() -> dict[int, str]:
    kinds = {
        0x00: _GSM,  # SMSC default alphabet: GSM 03.38 on every SMSC we know of
        0x01: "ascii",  # IA5 (CCITT T.50) / ASCII
        0x02: _BINARY,  # octet unspecified (8-bit binary)
        0x03: "latin-1",  # ISO-8859-1
        0x04: _BINARY,  # octet unspecified (8-bit binary)
        0x06: "iso8859-5",  # Cyrillic
        0x07: "iso8859-8",  # Latin/Hebrew
        0x08: _UCS2,  # ISO/IEC-10646 (UCS-2, read as UTF-16 so emoji survive)
    }
    # 0xC0-0xDF: GSM message-waiting groups, GSM default alphabet (23.038 section 4).
    for dc in range(0xC0, 0xE0):
        kinds[dc] = _GSM
    # 0xF0-0xFF: GSM message class group; bit 2 chooses 8-bit data over GSM text.
    for dc in range(0xF0, 0x100):
        kinds[dc] = _BINARY if dc & 0x04 else _GSM
    return kinds


_KINDS = _build_kinds()
_UNKNOWN_KIND = "latin-1"  # best effort for codings we do not speak (JIS, KS C 5601...)


def _kind(data_coding: int) -> str:
    return _KINDS.get(data_coding, _UNKNOWN_KIND)


def encode_text(text: str, data_coding: int) -> bytes:
    """``text`` as the octets of ``data_coding``.

    Raises :class:`UnencodableText` for a character the coding lacks, and ValueError
    for binary codings (2, 4, and the 8-bit message-class values: send bytes, not
    text) and for codings this module cannot write (5 JIS, 9, 0x0A, ...).
    """
    kind = _KINDS.get(data_coding)
    if kind == _GSM:
        try:
            return codecs.charmap_encode(text, "strict", _GSM_ENCODE_MAP)[0]
        except UnicodeEncodeError as e:
            raise UnencodableText(text[e.start], e.start, data_coding) from None
    if kind is None:
        raise ValueError(f"cannot encode text for data_coding {data_coding}")
    if kind == _BINARY:
        raise ValueError(f"data_coding {data_coding} is binary: pass bytes, not text")
    codec = "utf-16-be" if kind == _UCS2 else kind
    try:
        return text.encode(codec)
    except UnicodeEncodeError as e:
        raise UnencodableText(text[e.start], e.start, data_coding) from None


def decode_text(data: bytes, data_coding: int) -> str:
    """The text of ``data`` in ``data_coding``. Never raises: what cannot be read
    becomes U+FFFD, and codings this module does not speak (and binary ones) are
    shown as Latin-1, one character per octet, so nothing is lost from view.
    """
    kind = _kind(data_coding)
    if kind == _GSM:
        return gsm7_decode(data)
    if kind == _UCS2:
        # Odd length or unpaired surrogates become U+FFFD.
        return bytes(data).decode("utf-16-be", "replace")
    if kind == _BINARY:
        return bytes(data).decode("latin-1")
    return bytes(data).decode(kind, "replace")


def choose_coding(text: str, *, allow_latin1: bool = True) -> int:
    """The cheapest data_coding that carries ``text`` unchanged: 0 (GSM 03.38) if
    every character is in the GSM alphabet, else 3 (Latin-1) when allowed and enough,
    else 8 (UCS-2). Pass ``allow_latin1=False`` for SMSCs that mangle data_coding 3
    (many do: handsets have no Latin-1, so the SMSC must transcode it).
    """
    if _GSM_CHARS.issuperset(text):
        return 0
    if allow_latin1 and (not text or max(text) <= "\xff"):
        return 3
    return 8


# --- splitting ---------------------------------------------------------------------

# (the UDH identifiers and the esm_class UDHI bit come from smppcore.concat)
_MAX_SEGMENTS = 255
_MAX_PAYLOAD = 0xFFFF  # message_payload's length is 16 bits
_METHODS = ("udh", "sar", "payload")

# kind -> (single-message capacity, per-segment capacity with an 8-bit-reference UDH
# or SAR, with a 16-bit-reference UDH), in octets of the SMPP encoding. For GSM an
# octet is a septet; for UCS-2 two octets are a code unit.
_CAPACITY = {
    _GSM: (160, 153, 152),
    _UCS2: (140, 134, 132),
}
_CAPACITY_8BIT = (140, 134, 133)


class Segment(msgspec.Struct, frozen=True):
    """One message of a split text: what to put in a submit_sm / deliver_sm.

    ``esm_class`` holds only the UDHI bit (0x40) when ``short_message`` starts with a
    UDH; OR it into the PDU's own esm_class. ``tlvs`` holds the SAR TLVs or the
    message_payload TLV; merge it into the PDU's tlvs::

        SubmitSm(destination_addr=dst, short_message=seg.short_message,
                 data_coding=seg.data_coding, esm_class=seg.esm_class,
                 tlvs=dict(seg.tlvs))
    """

    short_message: bytes
    data_coding: int
    esm_class: int = 0
    tlvs: dict[int, Any] = {}


def _check_split_args(method: str, ref_bits: int) -> None:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, not {method!r}")
    if ref_bits not in (8, 16):
        raise ValueError(f"ref_bits must be 8 or 16, not {ref_bits}")


def _cut(data: bytes, cap: int, kind: str) -> list[bytes]:
    """``data`` in pieces of at most ``cap`` octets, never ending a piece inside a
    GSM escape pair or between the halves of a UTF-16 surrogate pair."""
    if len(data) > _MAX_SEGMENTS * cap:
        raise ValueError(f"message needs more than {_MAX_SEGMENTS} segments")
    pieces = []
    pos, n = 0, len(data)
    while pos < n:
        end = pos + cap
        if end < n:
            # gsm7_encode emits 0x1B only as the first octet of a pair.
            if kind == _GSM and data[end - 1] == GSM_ESCAPE:
                end -= 1
            elif kind == _UCS2 and 0xD8 <= data[end - 2] <= 0xDB:
                end -= 2
        pieces.append(data[pos:end])
        pos = end
    if len(pieces) > _MAX_SEGMENTS:
        raise ValueError(f"message needs {len(pieces)} segments, more than {_MAX_SEGMENTS}")
    return pieces


def _segments(
    data: bytes, kind: str, data_coding: int, method: str, reference: int, ref_bits: int
) -> list[Segment]:
    if method == "payload":
        if len(data) > _MAX_PAYLOAD:
            raise ValueError(f"{len(data)} octets do not fit message_payload (max {_MAX_PAYLOAD})")
        return [Segment(b"", data_coding, 0, {Tag.MESSAGE_PAYLOAD: data})]
    single, cap8, cap16 = _CAPACITY.get(kind, _CAPACITY_8BIT)
    if len(data) <= single:
        return [Segment(data, data_coding)]
    if method == "sar":
        pieces = _cut(data, cap8, kind)
        total = len(pieces)
        ref = reference & 0xFFFF
        return [
            Segment(
                piece,
                data_coding,
                0,
                {Tag.SAR_MSG_REF_NUM: ref, Tag.SAR_TOTAL_SEGMENTS: total, Tag.SAR_SEGMENT_SEQNUM: seq},
            )
            for seq, piece in enumerate(pieces, 1)
        ]
    if ref_bits == 8:
        pieces = _cut(data, cap8, kind)
        head = bytes((5, IEI_CONCAT_8, 3, reference & 0xFF, len(pieces)))
    else:
        pieces = _cut(data, cap16, kind)
        ref = reference & 0xFFFF
        head = bytes((6, IEI_CONCAT_16, 4, ref >> 8, ref & 0xFF, len(pieces)))
    return [
        Segment(head + bytes((seq,)) + piece, data_coding, ESM_UDHI)
        for seq, piece in enumerate(pieces, 1)
    ]


def split_text(
    text: str,
    *,
    data_coding: int | None = None,
    method: str = "udh",
    reference: int = 0,
    ref_bits: int = 8,
) -> list[Segment]:
    """``text`` as the messages that carry it.

    Text that fits one message (160 GSM septets, 140 octets, 70 UCS-2 code units)
    gives one plain Segment. Longer text is split (``method``):

    - ``"udh"``: each segment's short_message starts with a concatenation UDH, IE 0x00
      with an 8-bit ``reference`` or IE 0x08 with a 16-bit one (``ref_bits``);
    - ``"sar"``: the sar_msg_ref_num / sar_total_segments / sar_segment_seqnum TLVs
      (16-bit reference), and the SMSC builds the UDH;
    - ``"payload"``: always one Segment, the whole text in message_payload and an
      empty short_message (also for short text: the caller asked for the TLV, and
      data_sm has no short_message at all).

    A segment never ends inside a GSM escape pair or a surrogate pair, so each decodes
    on its own. ``data_coding`` None means :func:`choose_coding`. Raises ValueError
    for more than 255 segments, binary codings (use :func:`split_binary`), and
    :class:`UnencodableText` for text the coding cannot carry.
    """
    _check_split_args(method, ref_bits)
    if data_coding is None:
        data_coding = choose_coding(text)
    data = encode_text(text, data_coding)
    return _segments(data, _kind(data_coding), data_coding, method, reference, ref_bits)


def split_binary(
    data: bytes,
    *,
    method: str = "udh",
    reference: int = 0,
    ref_bits: int = 8,
    data_coding: int = 4,
) -> list[Segment]:
    """Binary ``data`` as the messages that carry it: one plain Segment up to 140
    octets, else 134-octet (133 with a 16-bit reference) segments; methods as in
    :func:`split_text`."""
    _check_split_args(method, ref_bits)
    return _segments(bytes(data), _BINARY, data_coding, method, reference, ref_bits)


def join_segments(parts: list[bytes], data_coding: int) -> str:
    """The text of a concatenated message from its segments' user data, in order.

    Plain concatenation is right for every coding here: GSM segments are cut on septet
    boundaries in the unpacked form, UCS-2 ones on code-unit boundaries.
    """
    return decode_text(b"".join(parts), data_coding)


