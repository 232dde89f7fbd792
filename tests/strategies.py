"""Hypothesis strategies that build any valid PDU of any SMPP 3.4 type."""

from __future__ import annotations

from hypothesis import strategies as st

from smppcore import PDU_TYPES, Tag
from smppcore.codec import LAYOUTS
from smppcore.fields import CStr, DestList, Int, ShortMessage, UnsuccessList
from smppcore.pdus import DestAddress, DistributionList, UnsuccessSme
from smppcore.tlv import TLV_KINDS

u8 = st.integers(0, 255)
u32 = st.integers(0, 0xFFFFFFFF)


def cstr(max_len: int) -> st.SearchStrategy[str]:
    """Text that fits a C-Octet String of ``max_len`` octets including the NUL."""
    return st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=max_len - 1)


def _addr() -> st.SearchStrategy[str]:
    return cstr(21)


dest_entry = st.one_of(
    st.builds(DestAddress, _addr(), u8, u8),
    st.builds(DistributionList, _addr()),
)
unsuccess_entry = st.builds(UnsuccessSme, _addr(), u8, u8, u32)


def _kind_strategy(kind) -> st.SearchStrategy:
    t = type(kind)
    if t is Int:
        return st.integers(0, 256**kind.size - 1)
    if t is CStr:
        return cstr(kind.max)
    if t is ShortMessage:
        return st.binary(max_size=254)
    if t is DestList:
        return st.lists(dest_entry, max_size=6)
    if t is UnsuccessList:
        return st.lists(unsuccess_entry, max_size=6)
    raise TypeError(kind)


def tlv_value(tag: int) -> st.SearchStrategy:
    kind = TLV_KINDS.get(tag)
    if kind is None:
        return st.binary(max_size=40)
    if kind.kind == "int":
        return st.integers(0, 256**kind.size - 1)
    if kind.kind == "cstr":
        return cstr(min(kind.size or 64, 64))
    if kind.size == 0:
        return st.just(b"")
    return st.binary(max_size=min(kind.size or 300, 300))


known_tags = st.sampled_from(sorted(TLV_KINDS))
unknown_tags = st.integers(0, 0xFFFF).filter(lambda t: t not in TLV_KINDS)


@st.composite
def tlv_dicts(draw, allow_payload: bool = True) -> dict:
    tags = draw(st.lists(st.one_of(known_tags, unknown_tags), max_size=5, unique=True))
    if not allow_payload:
        tags = [t for t in tags if t != Tag.MESSAGE_PAYLOAD]
    return {t: draw(tlv_value(t)) for t in tags}


@st.composite
def pdus(draw, cls=None):
    """Any valid PDU; of ``cls`` when given."""
    if cls is None:
        cls = draw(st.sampled_from(list(PDU_TYPES.values())))
    fields = {name: draw(_kind_strategy(kind)) for name, kind, _ in LAYOUTS[cls]}
    tlvs = draw(tlv_dicts(allow_payload=not fields.get("short_message")))
    return cls(sequence_number=draw(u32), command_status=draw(u32), tlvs=tlvs, **fields)
