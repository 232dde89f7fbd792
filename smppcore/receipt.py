"""Delivery receipts: the Appendix B text, its TLVs, and matching them to messages.

An SMSC reports a message's fate with a deliver_sm (or data_sm) whose esm_class says
"delivery receipt". What happened is written twice: in the text SMPP 3.4 Appendix B
suggests (``id:... sub:... dlvrd:... submit date:... done date:... stat:... err:...
text:...``) and, for 3.4-aware SMSCs, in the receipted_message_id, message_state and
network_error_code TLVs. Appendix B is only a suggestion, so real SMSCs vary: key
case, ``submit_date`` for ``submit date``, 12-digit dates, fields missing or moved,
the text in the PDU's data_coding (GSM 03.38, IA5, Latin-1 or UCS-2), and now and
then a receipt with esm_class 0, told from a mobile-originated message by its text
alone. This module writes the canonical form and reads all the variants we know of;
:func:`is_receipt` says whether a PDU is a receipt and :func:`receipt_info` merges
text and TLVs into the few facts a hub routes on.

Whether a submit asks for a receipt at all is decided once, for the hub and the
simulator alike: :func:`receipt_wanted`, :func:`intermediate_wanted` and
:func:`receipts_requested` read registered_delivery (SMPP 3.4 section 5.2.17); they
live in :mod:`smppcore.receipt_request`, the message id rules (:func:`normalise_message_id`,
:func:`ids_match`) in :mod:`smppcore.message_ids`, and this module re-exports both.

Receipt text comes from the network, so :func:`parse_receipt` never raises: what it
cannot read it leaves at a default, and without an id and a stat it returns None.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import msgspec

from .constants import RECEIPT_STAT, DataCoding, EsmClass, MessageState, Tag
from .message_ids import ids_match, normalise_message_id
from .pdus import DataSm, DeliverSm, Pdu
from .receipt_request import intermediate_wanted, receipt_wanted, receipts_requested
from .smpptime import InvalidTime, format_receipt_date, parse_receipt_date
from .text import decode_text

__all__ = [
    "Receipt",
    "ReceiptInfo",
    "format_receipt",
    "parse_receipt",
    "build_receipt",
    "is_receipt",
    "receipt_text",
    "receipt_info",
    "receipt_wanted",
    "intermediate_wanted",
    "receipts_requested",
    "receipt_info_from_tlvs",
    "error_code",
    "network_error_code",
    "encode_network_error_code",
    "normalise_message_id",
    "ids_match",
]

#: How many characters of the original message a receipt quotes (Appendix B).
TEXT_LENGTH = 20

# stat word -> state. The spec's seven-letter words first, then the spellings
# SMSCs use instead of them.
_STATES: dict[str, MessageState] = {word: state for state, word in RECEIPT_STAT.items()}
_STATES.update(
    {
        "SCHEDULED": MessageState.SCHEDULED,
        "DELIVERED": MessageState.DELIVERED,
        "UNDELIVERABLE": MessageState.UNDELIVERABLE,
        "UNDELIVERED": MessageState.UNDELIVERABLE,
        "FAILED": MessageState.UNDELIVERABLE,
        "REJECTED": MessageState.REJECTED,
        "ACCEPTED": MessageState.ACCEPTED,
        "ACKED": MessageState.ACCEPTED,
    }
)


class Receipt(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """The fields of one Appendix B receipt text.

    ``stat`` is kept as the word the SMSC wrote (upper-cased), so a receipt can be
    passed on unchanged; :attr:`state` is its meaning. ``err`` stays a string because
    SMSCs put anything there (``000``, ``0``, ``0x0b``, vendor codes). ``text`` is
    what followed ``text:``, exactly (it may hold spaces and colons).
    """

    id: str
    stat: str
    sub: int = 1
    dlvrd: int = 0
    submit_date: datetime | None = None
    done_date: datetime | None = None
    err: str = "000"
    text: str = ""

    @property
    def state(self) -> MessageState:
        """The MessageState ``stat`` names; UNKNOWN for a word we do not know."""
        return _STATES.get(self.stat.strip().upper(), MessageState.UNKNOWN)


class ReceiptInfo(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """What a hub needs from an incoming receipt, whichever way the SMSC said it.

    ``message_id`` and ``state`` come from the TLVs when present (they are typed and
    unambiguous) and from the text otherwise. ``network_error`` is the decoded
    network_error_code TLV, ``(network_type, error_code)``. ``receipt`` is the parsed
    text, when there was text to parse.
    """

    message_id: str
    state: MessageState
    err: str = "000"
    network_error: tuple[int, int] | None = None
    receipt: Receipt | None = None

    @property
    def is_final(self) -> bool:
        return self.state.is_final


# --- the text ----------------------------------------------------------------


def format_receipt(r: Receipt) -> str:
    """The Appendix B text for ``r``, in the spec's field order and spelling.

    Dates are written as ``YYMMDDhhmm`` in UTC; a missing date is left empty
    (``submit date: done date:...``), which :func:`parse_receipt` reads back as None.
    """
    submit = _written_date(r.submit_date) if r.submit_date is not None else ""
    done = _written_date(r.done_date) if r.done_date is not None else ""
    # one %-format: measured faster than the f-string on this hot path (a receipt per message)
    return "id:%s sub:%03d dlvrd:%03d submit date:%s done date:%s stat:%s err:%s text:%s" % (  # noqa: UP031
        r.id, r.sub, r.dlvrd, submit, done, r.stat, r.err, r.text[:TEXT_LENGTH],
    )


# A burst of receipts is written with the same few dates (a sender reuses its datetime
# objects: the simulator keeps one per second), so the last ones written are kept.
_WRITTEN: dict[datetime, str] = {}


def _written_date(dt: datetime) -> str:
    text = _WRITTEN.get(dt)
    if text is None:
        if len(_WRITTEN) >= 1024:
            _WRITTEN.clear()
        text = _WRITTEN[dt] = format_receipt_date(dt)
    return text


# "submit_date" sent in ASCII with data_coding 0 reads as "submit§date": GSM 03.38 has
# its "§" where ASCII has "_" (0x5F), so "§" joins the separators a key may hold.
_KEYS = r"id|sub|dlvrd|submit[ _§-]?date|done[ _§-]?date|stat|err"
# A key starts a word and is followed by a colon. Its value is the next run of
# characters up to whitespace, ',' or ';' -- unless that run is itself the next key
# ("submit date: done date:0701..."), in which case the value is empty.
_FIELD_RE = re.compile(
    rf"(?<!\w)({_KEYS})[ \t]*:\s*(?!(?:{_KEYS}|text)[ \t]*:)([^\s,;]*)", re.IGNORECASE
)
_TEXT_RE = re.compile(r"(?<!\w)text[ \t]*:", re.IGNORECASE)
_STAT_KEY_RE = re.compile(r"(?<!\w)stat[ \t]*:", re.IGNORECASE)
_KEY_JUNK_RE = re.compile(r"[ _§-]")
_COUNT_RE = re.compile(r"\d{1,9}", re.ASCII)


# The layout Appendix B gives, exactly as format_receipt writes it and most SMSCs send it:
# read with one match. Values hold no ':' here, so a "text:" can only be the real one;
# anything else (other case or spacing, fields moved or missing) takes the tolerant
# reading below, which gives the same result for this layout, only slower.
_CANONICAL_RE = re.compile(
    r"id:([^\s,;:]+) sub:(\d{1,9}) dlvrd:(\d{1,9}) submit date:(\d*) done date:(\d*) "
    r"stat:([^\s,;:]+) err:([^\s,;:]*) text:(.*)\Z",
    re.DOTALL,
)


def _fields(s: str, start: int, end: int, into: dict[str, str]) -> None:
    """Collect the key:value pairs of ``s[start:end]``; the first of each key wins."""
    for m in _FIELD_RE.finditer(s, start, end):
        key = _KEY_JUNK_RE.sub("", m.group(1)).lower()
        into.setdefault(key, m.group(2))


def _count(value: str | None, default: int) -> int:
    if value is not None and _COUNT_RE.fullmatch(value):
        return int(value)
    return default


# Receipts arriving together carry the same few dates (minute resolution): reading one
# costs more than the rest of a receipt, so the last ones read are kept.
_DATES: dict[str, datetime | None] = {}
_DATES_KEPT = 4096


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return _DATES[value]
    except KeyError:
        pass
    try:
        dt = parse_receipt_date(value)
    except InvalidTime:
        dt = None
    if len(_DATES) >= _DATES_KEPT:
        _DATES.clear()
    _DATES[value] = dt
    return dt


def parse_receipt(data: str | bytes, data_coding: int | None = None) -> Receipt | None:
    """Read a receipt text, as sent by SMSCs that follow Appendix B loosely.

    Accepted: keys in any case; ``submit date``, ``submit_date``, ``submitdate`` (and
    ``done ...`` alike); 10- or 12-digit dates; fields in any order; unknown fields
    (ignored); missing fields (left at their defaults). ``text:`` normally comes
    last and runs to the end of the data, whatever it contains; only if the id or
    stat is missing before it do we take it to end at the next known key. Bytes are
    read in ``data_coding`` (see :func:`receipt_text`), or as Latin-1 without one, and
    trailing NULs are dropped. Returns None when no id or no stat is found, and never
    raises.
    """
    if isinstance(data, str):
        s = data.rstrip("\x00")
    elif isinstance(data, (bytes, bytearray, memoryview)):
        s = _decode(bytes(data), DataCoding.LATIN1 if data_coding is None else data_coding)
    else:
        return None
    return _parse(s)


def _parse(s: str) -> Receipt | None:
    m = _CANONICAL_RE.match(s)
    if m is not None:
        rid, sub, dlvrd, submit, done, stat, err, text = m.groups()
        return Receipt(
            id=rid, stat=stat.upper(), sub=int(sub), dlvrd=int(dlvrd), submit_date=_date(submit),
            done_date=_date(done), err=err, text=text,
        )
    return _parse_tolerant(s)


def _decode(data: bytes, data_coding: int) -> str:
    """Receipt octets as text in ``data_coding``, trailing NUL padding dropped.

    In the 8-bit codings the padding is dropped as octets before decoding: GSM 03.38
    has "@" at 0x00, and a padded receipt must not end in "@@@". (A quoted text that
    really ends in "@" loses it; the fields a hub reads come before it.) UCS-2 has no
    NUL octet to spare, so there the padding is dropped as characters.
    """
    if data_coding == _UCS2:
        return decode_text(data, data_coding).rstrip("\x00")
    return decode_text(data.rstrip(b"\x00"), data_coding)


def _parse_tolerant(s: str) -> Receipt | None:
    """parse_receipt for any layout: keys found wherever they are."""
    fields: dict[str, str] = {}
    tm = _TEXT_RE.search(s)
    if tm is None:
        _fields(s, 0, len(s), fields)
        text = ""
    else:
        _fields(s, 0, tm.start(), fields)
        text = s[tm.end():]
        if not (fields.get("id") and fields.get("stat")):
            nxt = _FIELD_RE.search(s, tm.end())
            if nxt is not None:
                text = s[tm.end():nxt.start()].rstrip()
                _fields(s, nxt.start(), len(s), fields)
    rid = fields.get("id")
    stat = fields.get("stat")
    if not rid or not stat:
        return None
    return Receipt(
        id=rid,
        stat=stat.upper(),
        sub=_count(fields.get("sub"), 1),
        dlvrd=_count(fields.get("dlvrd"), 0),
        submit_date=_date(fields.get("submitdate")),
        done_date=_date(fields.get("donedate")),
        err=fields.get("err", "000"),
        text=text,
    )


# --- the PDU -----------------------------------------------------------------

# plain ints: arithmetic on the IntFlag members goes through the enum machinery
_RECEIPT_TYPES = frozenset((int(EsmClass.TYPE_DELIVERY_RECEIPT), int(EsmClass.TYPE_INTERMEDIATE_NOTIFICATION)))
_TYPE_MASK = int(EsmClass.TYPE_MASK)
_UDHI = int(EsmClass.UDHI)
_UCS2 = int(DataCoding.UCS2)
# An esm_class 0 text is a receipt with an id, a stat and this many of the other keys.
_OTHER_KEYS = ("sub", "dlvrd", "submitdate", "donedate", "err")
_OTHER_KEYS_NEEDED = 3
_UNPRINTABLE_RE = re.compile(r"[^\x20-\x7e]")


def build_receipt(
    *,
    message_id: str,
    state: MessageState,
    source_addr: str,
    destination_addr: str,
    submit_date: datetime | None,
    done_date: datetime | None,
    err: str | int = "000",
    text: bytes | str = b"",
    sub: int = 1,
    dlvrd: int | None = None,
    network_error: tuple[int, int] | None = None,
    source_addr_ton: int = 0,
    source_addr_npi: int = 0,
    dest_addr_ton: int = 0,
    dest_addr_npi: int = 0,
    data_coding: int = 0,
    esm_class: int = EsmClass.TYPE_DELIVERY_RECEIPT,
    sequence_number: int = 0,
) -> DeliverSm:
    """The deliver_sm an SMSC sends to report on a message it accepted.

    The address arguments are those of the **original** message (pass the
    submit_sm's own fields); the receipt goes back the other way, so its source is
    the handset (the original destination) and its destination the original sender.

    ``text`` is the start of the original message: a ``str``, or the raw
    short_message bytes, read as Latin-1. Only its first 20 characters are quoted,
    and anything outside printable ASCII becomes ``?`` because the receipt text is
    sent as ASCII. ``err`` may be given as an int (written as three digits).
    ``dlvrd`` defaults to 1 for DELIVERED, else 0. ``network_error`` is
    ``(network_type, error_code)`` for the network_error_code TLV. Use
    ``esm_class=EsmClass.TYPE_INTERMEDIATE_NOTIFICATION`` for an intermediate one.
    """
    if state.__class__ is not MessageState:
        state = MessageState(state)
    if isinstance(text, (bytes, bytearray, memoryview)):
        quoted = bytes(text[:TEXT_LENGTH]).decode("latin-1")
    else:
        quoted = text[:TEXT_LENGTH]
    receipt = Receipt(
        id=message_id,
        stat=RECEIPT_STAT[state],
        sub=sub,
        dlvrd=(1 if state is MessageState.DELIVERED else 0) if dlvrd is None else dlvrd,
        submit_date=submit_date,
        done_date=done_date,
        err=err if isinstance(err, str) else f"{err:03d}",
        text=_UNPRINTABLE_RE.sub("?", quoted),
    )
    tlvs: dict[int, Any] = {
        Tag.RECEIPTED_MESSAGE_ID: message_id,
        Tag.MESSAGE_STATE: int(state),
    }
    if network_error is not None:
        tlvs[Tag.NETWORK_ERROR_CODE] = encode_network_error_code(*network_error)
    return DeliverSm(
        sequence_number=sequence_number,
        source_addr_ton=dest_addr_ton,
        source_addr_npi=dest_addr_npi,
        source_addr=destination_addr,
        dest_addr_ton=source_addr_ton,
        dest_addr_npi=source_addr_npi,
        destination_addr=source_addr,
        esm_class=int(esm_class),
        data_coding=data_coding,
        short_message=format_receipt(receipt).encode("ascii", "replace"),
        tlvs=tlvs,
    )


def is_receipt(pdu: Pdu) -> bool:
    """True when ``pdu`` is a deliver_sm or data_sm that reports on a message rather than
    carrying a mobile-originated one.

    The esm_class says so first: message type SMSC delivery receipt (0x04) or
    intermediate notification (0x20). SME acknowledgements (0x08, 0x10) are not
    receipts. Some SMSCs send receipts with esm_class 0, so a message of the default
    type (and no UDH) whose text is laid out as Appendix B is taken for a receipt too:
    an ``id`` and a ``stat`` and at least three of ``sub``, ``dlvrd``, ``submit date``,
    ``done date`` and ``err`` before any ``text:``. A text that merely mentions "id:"
    is not enough. Flagged receipts never read their text; an MO text without a colon
    is turned away after one look at it.
    """
    if not isinstance(pdu, (DeliverSm, DataSm)):
        return False
    esm = pdu.esm_class
    kind = esm & _TYPE_MASK
    if kind in _RECEIPT_TYPES:
        return True
    if kind or esm & _UDHI:
        return False
    raw = _raw_text(pdu)
    # ":" is octet 0x3A in every coding read here (UCS-2: 00 3A): most MO has none
    if b":" not in raw:
        return False
    s = _decode(raw, pdu.data_coding)
    return _STAT_KEY_RE.search(s) is not None and _looks_like_receipt(s)


def _looks_like_receipt(s: str) -> bool:
    if _CANONICAL_RE.match(s) is not None:
        return True
    fields: dict[str, str] = {}
    tm = _TEXT_RE.search(s)
    _fields(s, 0, len(s) if tm is None else tm.start(), fields)
    if not (fields.get("id") and fields.get("stat")):
        return False
    return sum(1 for key in _OTHER_KEYS if key in fields) >= _OTHER_KEYS_NEEDED


def receipt_text(pdu: Pdu) -> str:
    """The text a deliver_sm or data_sm carries, decoded by its data_coding ("" for none).

    From short_message, or from the message_payload TLV when short_message is empty
    (data_sm has only the TLV). data_coding 0 is read as GSM 03.38, 1 as IA5/ASCII, 3
    as Latin-1, 8 as UCS-2 (some SMSCs quote the message that way), others as
    :func:`smppcore.text.decode_text` reads them; bytes a coding cannot hold become
    U+FFFD, so this never raises. Trailing NUL padding is dropped.
    """
    if not isinstance(pdu, (DeliverSm, DataSm)):
        return ""
    raw = _raw_text(pdu)
    return _decode(raw, pdu.data_coding) if raw else ""


def _raw_text(pdu: DeliverSm | DataSm) -> bytes:
    """short_message, else the message_payload TLV (b"" when it is not octets)."""
    raw = pdu.short_message if isinstance(pdu, DeliverSm) else b""
    if not raw:
        raw = pdu.tlvs.get(Tag.MESSAGE_PAYLOAD, b"")
        if not isinstance(raw, bytes):
            raw = bytes(raw) if isinstance(raw, (bytearray, memoryview)) else b""
    return raw


_STATE_BY_VALUE = {int(s): s for s in MessageState}
# the tags as plain ints: ``Tag.X`` in a function is an enum attribute lookup (~50 ns each on 3.11)
_RECEIPTED_MESSAGE_ID = int(Tag.RECEIPTED_MESSAGE_ID)
_MESSAGE_STATE = int(Tag.MESSAGE_STATE)
_NETWORK_ERROR_CODE = int(Tag.NETWORK_ERROR_CODE)


def _tlv_facts(tlvs: dict[int, Any]) -> tuple[str, MessageState | None, tuple[int, int] | None]:
    """What the receipt TLVs say: receipted_message_id ("" without one), message_state
    (None without a state SMPP 3.4 defines), network_error_code (None without one)."""
    mid = tlvs.get(_RECEIPTED_MESSAGE_ID)
    if type(mid) is not str:  # the decoder gives str; a PDU built by hand may hold octets or junk
        if isinstance(mid, (bytes, bytearray)):
            mid = bytes(mid).decode("latin-1")
        elif not isinstance(mid, str):
            mid = ""
    if mid and (mid[-1] in _PADDING or mid[0] in _PADDING):
        mid = mid.strip(_PADDING)
    st = tlvs.get(_MESSAGE_STATE)
    if type(st) is not int and isinstance(st, (bytes, bytearray)) and len(st) == 1:
        st = st[0]
    state = _STATE_BY_VALUE.get(st) if isinstance(st, int) else None
    nec = tlvs.get(_NETWORK_ERROR_CODE)
    network_error = None
    if nec is not None and isinstance(nec, (bytes, bytearray)) and len(nec) == 3:
        network_error = network_error_code(bytes(nec))
    return mid, state, network_error


_PADDING = " \x00"


def _network_err(network_error: tuple[int, int] | None) -> str:
    return f"{network_error[1]:03d}" if network_error is not None else "000"


def error_code(err: str) -> int:
    """A receipt's ``err`` (:attr:`ReceiptInfo.err`) as a number, 0 when it is not one.

    Appendix B writes it as three decimal digits, leading zeros included ("011" is 11;
    ``int(s, 0)`` refuses the leading zero). Some SMSCs write hex: "0x0b", or digits
    with a letter ("00b"), which cannot be decimal. Anything longer than 16 characters
    is no error code.
    """
    err = err.strip().lower()
    if len(err) > 16:
        return 0
    if err.isdigit() and err.isascii():
        return int(err)
    if err.startswith("0x"):
        err = err[2:]
    return int(err, 16) if err and _HEX_DIGITS.fullmatch(err) else 0


_HEX_DIGITS = re.compile(r"[0-9a-f]+", re.ASCII)


def receipt_info_from_tlvs(pdu: Pdu) -> ReceiptInfo | None:
    """The message id and state from the receipted_message_id and message_state TLVs
    alone, without reading the text; None unless both are there (and the state is
    one SMPP 3.4 defines).

    For a hub or a load generator that only needs the id and the state: reading
    the text costs more than the rest of handling a receipt. ``err`` is the
    network_error_code's error code as three decimal digits, else ``000``; call
    :func:`receipt_info` when the text's own ``err`` matters.
    """
    tlvs = pdu.tlvs
    if not tlvs:
        return None
    mid = tlvs.get(_RECEIPTED_MESSAGE_ID)
    st = tlvs.get(_MESSAGE_STATE)
    if (type(mid) is str and type(st) is int and mid and mid[0] not in _PADDING and mid[-1] not in _PADDING
            and _NETWORK_ERROR_CODE not in tlvs):
        # the decoder's shape of nearly every receipt: what _tlv_facts gives for it, without its call
        state = _STATE_BY_VALUE.get(st)
        return None if state is None else ReceiptInfo(message_id=mid, state=state)
    mid, state, network_error = _tlv_facts(tlvs)
    if not mid or state is None:
        return None
    err = "000" if network_error is None else _network_err(network_error)
    return ReceiptInfo(message_id=mid, state=state, err=err, network_error=network_error)


def receipt_info(pdu: Pdu) -> ReceiptInfo | None:
    """The message id and state an incoming receipt reports, TLVs first.

    The text is :func:`receipt_text` (short_message or message_payload, decoded by
    data_coding). message_id: the receipted_message_id TLV, else the text's ``id``.
    state: the message_state TLV (if it is a known state), else the text's ``stat``,
    else UNKNOWN. err: the text's ``err``; without text, the network_error_code's
    error code as three decimal digits; else ``000``. The parsed text is kept in
    ``receipt`` whether or not the TLVs said the same, so the SMSC's own ``stat``
    word (DELIVRD, not DELIVERED) can be shown. Returns None when no message id can
    be found at all.

    The esm_class is not checked here (some SMSCs get it wrong); use
    :func:`is_receipt` first if you need to tell receipts from MO messages.
    """
    text = receipt_text(pdu)
    receipt = _parse(text) if text else None
    mid, state, network_error = _tlv_facts(pdu.tlvs)
    if not mid and receipt is not None:
        mid = receipt.id
    if not mid:
        return None
    if state is None:
        state = receipt.state if receipt is not None else MessageState.UNKNOWN
    err = receipt.err if receipt is not None else _network_err(network_error)
    return ReceiptInfo(message_id=mid, state=state, err=err, network_error=network_error, receipt=receipt)


# --- network_error_code --------------------------------------------------------


def network_error_code(value: bytes) -> tuple[int, int]:
    """Split the 3-octet network_error_code TLV into ``(network_type, error_code)``.

    network_type is 1 ANSI-136, 2 IS-95, 3 GSM; error_code is big-endian.
    """
    if len(value) != 3:
        raise ValueError(f"network_error_code is 3 octets, got {len(value)}")
    return value[0], (value[1] << 8) | value[2]


def encode_network_error_code(network_type: int, code: int) -> bytes:
    """The 3-octet network_error_code TLV value for ``(network_type, code)``."""
    if not 0 <= network_type <= 0xFF or not 0 <= code <= 0xFFFF:
        raise ValueError(f"network_error_code out of range: ({network_type}, {code})")
    return bytes((network_type, code >> 8, code & 0xFF))
