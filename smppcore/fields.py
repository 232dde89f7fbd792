"""Wire kinds of the mandatory fields, used as ``Annotated`` metadata on PDU fields.

A PDU class in :mod:`smppcore.pdus` reads as the spec's table: each field's
annotation names its wire kind (``U8``, ``CStr(21, ESME_RINVSRCADR)``, ...). The
codec (:mod:`smppcore.codec`) turns these annotations into encoders and decoders
once, at import time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from .constants import CommandStatus as S

__all__ = [
    "Int",
    "CStr",
    "ShortMessage",
    "DestList",
    "UnsuccessList",
    "U8",
    "U32",
]


@dataclass(frozen=True, slots=True)
class Int:
    """Unsigned big-endian integer of ``size`` octets."""

    size: int
    status: int = S.ESME_RINVCMDLEN


@dataclass(frozen=True, slots=True)
class CStr:
    """C-Octet String: ASCII text ended by NUL; ``max`` counts the NUL, as the spec does."""

    max: int
    status: int = S.ESME_RINVCMDLEN


@dataclass(frozen=True, slots=True)
class ShortMessage:
    """sm_length (one octet) followed by that many octets of short_message."""

    status: int = S.ESME_RINVMSGLEN


@dataclass(frozen=True, slots=True)
class DestList:
    """submit_multi's number_of_dests followed by dest_address entries."""

    status: int = S.ESME_RINVNUMDESTS


@dataclass(frozen=True, slots=True)
class UnsuccessList:
    """submit_multi_resp's no_unsuccess followed by unsuccess_sme entries."""

    status: int = S.ESME_RINVCMDLEN


U8 = Annotated[int, Int(1)]
U32 = Annotated[int, Int(4)]

# Named field types, one per spec field that has its own error status.
ServiceType = Annotated[str, CStr(6, S.ESME_RINVSERTYP)]
SourceAddr = Annotated[str, CStr(21, S.ESME_RINVSRCADR)]
DestinationAddr = Annotated[str, CStr(21, S.ESME_RINVDSTADR)]
SourceAddr65 = Annotated[str, CStr(65, S.ESME_RINVSRCADR)]
DestinationAddr65 = Annotated[str, CStr(65, S.ESME_RINVDSTADR)]
EsmeAddr = Annotated[str, CStr(65, S.ESME_RINVDSTADR)]
ScheduleTime = Annotated[str, CStr(17, S.ESME_RINVSCHED)]
ValidityPeriod = Annotated[str, CStr(17, S.ESME_RINVEXPIRY)]
FinalDate = Annotated[str, CStr(17, S.ESME_RINVCMDLEN)]
MessageId = Annotated[str, CStr(65, S.ESME_RINVMSGID)]
SystemId = Annotated[str, CStr(16, S.ESME_RINVSYSID)]
Password = Annotated[str, CStr(9, S.ESME_RINVPASWD)]
SystemType = Annotated[str, CStr(13, S.ESME_RINVSYSTYP)]
AddressRange = Annotated[str, CStr(41, S.ESME_RINVCMDLEN)]
SourceTon = Annotated[int, Int(1, S.ESME_RINVSRCTON)]
SourceNpi = Annotated[int, Int(1, S.ESME_RINVSRCNPI)]
DestTon = Annotated[int, Int(1, S.ESME_RINVDSTTON)]
DestNpi = Annotated[int, Int(1, S.ESME_RINVDSTNPI)]
EsmClassField = Annotated[int, Int(1, S.ESME_RINVESMCLASS)]
PriorityFlag = Annotated[int, Int(1, S.ESME_RINVPRTFLG)]
RegisteredDeliveryField = Annotated[int, Int(1, S.ESME_RINVREGDLVFLG)]
ReplaceIfPresent = Annotated[int, Int(1, S.ESME_RINVREPFLAG)]
DefaultMsgId = Annotated[int, Int(1, S.ESME_RINVDFTMSGID)]
Message = Annotated[bytes, ShortMessage()]
