"""One type per SMPP 3.4 operation, requests and responses.

Each class lists the operation's mandatory fields in the spec's order, with the
spec's names and its neutral defaults (0, "", b""), so ``SubmitSm(destination_addr=
"447700900123", short_message=b"hi")`` is a complete PDU. Length fields that the
spec puts on the wire (sm_length, number_of_dests, no_unsuccess) are not stored:
they are derived from the value they measure.

Every PDU also has ``sequence_number``, ``command_status`` and ``tlvs``: an ordered
``dict`` from tag to value for the optional parameters. Values of tags defined by
SMPP 3.4 are typed (see :data:`smppcore.tlv.TLV_KINDS`); values of other tags are
the raw ``bytes``, so they survive a decode/encode round trip unchanged.

PDUs are ``msgspec.Struct`` objects: cheap to build (the decoder constructs them
positionally in C) and compared field by field.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from .constants import CommandId
from .fields import (
    U8,
    AddressRange,
    DefaultMsgId,
    DestinationAddr,
    DestinationAddr65,
    DestList,
    DestNpi,
    DestTon,
    EsmClassField,
    EsmeAddr,
    FinalDate,
    Message,
    MessageId,
    Password,
    PriorityFlag,
    RegisteredDeliveryField,
    ReplaceIfPresent,
    ScheduleTime,
    ServiceType,
    SourceAddr,
    SourceAddr65,
    SourceNpi,
    SourceTon,
    SystemId,
    SystemType,
    UnsuccessList,
    ValidityPeriod,
)

__all__ = [
    "Pdu",
    "DestAddress",
    "DistributionList",
    "UnsuccessSme",
    "PDU_TYPES",
    "GenericNack",
    "BindReceiver",
    "BindReceiverResp",
    "BindTransmitter",
    "BindTransmitterResp",
    "BindTransceiver",
    "BindTransceiverResp",
    "Outbind",
    "Unbind",
    "UnbindResp",
    "EnquireLink",
    "EnquireLinkResp",
    "SubmitSm",
    "SubmitSmResp",
    "DeliverSm",
    "DeliverSmResp",
    "DataSm",
    "DataSmResp",
    "QuerySm",
    "QuerySmResp",
    "CancelSm",
    "CancelSmResp",
    "ReplaceSm",
    "ReplaceSmResp",
    "SubmitMulti",
    "SubmitMultiResp",
    "AlertNotification",
]


class Pdu(msgspec.Struct, gc=False, repr_omit_defaults=True):
    """Base of every PDU type. Subclasses set ``command_id``."""

    command_id: ClassVar[int]
    #: True for the ``*_resp`` types and generic_nack.
    is_response: ClassVar[bool] = False
    #: The response type of a request type (None for responses and outbind/alert).
    response_type: ClassVar[type[Pdu] | None] = None

    sequence_number: int = 0
    command_status: int = 0
    tlvs: dict[int, Any] = {}

    @property
    def command_name(self) -> str:
        return CommandId(self.command_id).name.lower()

    def make_response(self, command_status: int = 0, **fields: Any) -> Pdu:
        """The response to this request, with the same sequence_number."""
        cls = self.response_type
        if cls is None:
            raise TypeError(f"{type(self).__name__} has no response")
        return cls(sequence_number=self.sequence_number, command_status=command_status, **fields)


class DestAddress(msgspec.Struct, frozen=True, gc=False):
    """A submit_multi destination that is an SME address (dest_flag 1)."""

    destination_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0


class DistributionList(msgspec.Struct, frozen=True, gc=False):
    """A submit_multi destination that is a distribution list name (dest_flag 2)."""

    dl_name: str = ""


class UnsuccessSme(msgspec.Struct, frozen=True, gc=False):
    """One entry of submit_multi_resp's unsuccess_sme list."""

    destination_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    error_status_code: int = 0


# --- session management -----------------------------------------------------


class GenericNack(Pdu):
    command_id: ClassVar[int] = CommandId.GENERIC_NACK
    is_response: ClassVar[bool] = True


class _BindFields(Pdu):
    system_id: SystemId = ""
    password: Password = ""
    system_type: SystemType = ""
    interface_version: U8 = 0x34
    addr_ton: U8 = 0
    addr_npi: U8 = 0
    address_range: AddressRange = ""


class _BindRespFields(Pdu):
    is_response: ClassVar[bool] = True
    system_id: SystemId = ""


class BindReceiverResp(_BindRespFields):
    command_id: ClassVar[int] = CommandId.BIND_RECEIVER_RESP


class BindReceiver(_BindFields):
    command_id: ClassVar[int] = CommandId.BIND_RECEIVER
    response_type: ClassVar[type[Pdu]] = BindReceiverResp


class BindTransmitterResp(_BindRespFields):
    command_id: ClassVar[int] = CommandId.BIND_TRANSMITTER_RESP


class BindTransmitter(_BindFields):
    command_id: ClassVar[int] = CommandId.BIND_TRANSMITTER
    response_type: ClassVar[type[Pdu]] = BindTransmitterResp


class BindTransceiverResp(_BindRespFields):
    command_id: ClassVar[int] = CommandId.BIND_TRANSCEIVER_RESP


class BindTransceiver(_BindFields):
    command_id: ClassVar[int] = CommandId.BIND_TRANSCEIVER
    response_type: ClassVar[type[Pdu]] = BindTransceiverResp


class Outbind(Pdu):
    command_id: ClassVar[int] = CommandId.OUTBIND
    system_id: SystemId = ""
    password: Password = ""


class UnbindResp(Pdu):
    command_id: ClassVar[int] = CommandId.UNBIND_RESP
    is_response: ClassVar[bool] = True


class Unbind(Pdu):
    command_id: ClassVar[int] = CommandId.UNBIND
    response_type: ClassVar[type[Pdu]] = UnbindResp


class EnquireLinkResp(Pdu):
    command_id: ClassVar[int] = CommandId.ENQUIRE_LINK_RESP
    is_response: ClassVar[bool] = True


class EnquireLink(Pdu):
    command_id: ClassVar[int] = CommandId.ENQUIRE_LINK
    response_type: ClassVar[type[Pdu]] = EnquireLinkResp


# --- message submission and delivery -----------------------------------------


class _ShortMessageFields(Pdu):
    """The layout submit_sm and deliver_sm share (sections 4.4.1 and 4.6.1)."""

    service_type: ServiceType = ""
    source_addr_ton: SourceTon = 0
    source_addr_npi: SourceNpi = 0
    source_addr: SourceAddr = ""
    dest_addr_ton: DestTon = 0
    dest_addr_npi: DestNpi = 0
    destination_addr: DestinationAddr = ""
    esm_class: EsmClassField = 0
    protocol_id: U8 = 0
    priority_flag: PriorityFlag = 0
    schedule_delivery_time: ScheduleTime = ""
    validity_period: ValidityPeriod = ""
    registered_delivery: RegisteredDeliveryField = 0
    replace_if_present_flag: ReplaceIfPresent = 0
    data_coding: U8 = 0
    sm_default_msg_id: DefaultMsgId = 0
    short_message: Message = b""


class _MessageIdResp(Pdu):
    is_response: ClassVar[bool] = True
    message_id: MessageId = ""


class SubmitSmResp(_MessageIdResp):
    command_id: ClassVar[int] = CommandId.SUBMIT_SM_RESP


class SubmitSm(_ShortMessageFields):
    command_id: ClassVar[int] = CommandId.SUBMIT_SM
    response_type: ClassVar[type[Pdu]] = SubmitSmResp


class DeliverSmResp(_MessageIdResp):
    command_id: ClassVar[int] = CommandId.DELIVER_SM_RESP


class DeliverSm(_ShortMessageFields):
    command_id: ClassVar[int] = CommandId.DELIVER_SM
    response_type: ClassVar[type[Pdu]] = DeliverSmResp


class DataSmResp(_MessageIdResp):
    command_id: ClassVar[int] = CommandId.DATA_SM_RESP


class DataSm(Pdu):
    command_id: ClassVar[int] = CommandId.DATA_SM
    response_type: ClassVar[type[Pdu]] = DataSmResp
    service_type: ServiceType = ""
    source_addr_ton: SourceTon = 0
    source_addr_npi: SourceNpi = 0
    source_addr: SourceAddr65 = ""
    dest_addr_ton: DestTon = 0
    dest_addr_npi: DestNpi = 0
    destination_addr: DestinationAddr65 = ""
    esm_class: EsmClassField = 0
    registered_delivery: RegisteredDeliveryField = 0
    data_coding: U8 = 0


class SubmitMultiResp(Pdu):
    command_id: ClassVar[int] = CommandId.SUBMIT_MULTI_RESP
    is_response: ClassVar[bool] = True
    message_id: MessageId = ""
    unsuccess_sme: Annotated[list[UnsuccessSme], UnsuccessList()] = []


class SubmitMulti(Pdu):
    command_id: ClassVar[int] = CommandId.SUBMIT_MULTI
    response_type: ClassVar[type[Pdu]] = SubmitMultiResp
    service_type: ServiceType = ""
    source_addr_ton: SourceTon = 0
    source_addr_npi: SourceNpi = 0
    source_addr: SourceAddr = ""
    dest_address: Annotated[list[DestAddress | DistributionList], DestList()] = []
    esm_class: EsmClassField = 0
    protocol_id: U8 = 0
    priority_flag: PriorityFlag = 0
    schedule_delivery_time: ScheduleTime = ""
    validity_period: ValidityPeriod = ""
    registered_delivery: RegisteredDeliveryField = 0
    replace_if_present_flag: ReplaceIfPresent = 0
    data_coding: U8 = 0
    sm_default_msg_id: DefaultMsgId = 0
    short_message: Message = b""


# --- message management ------------------------------------------------------


class QuerySmResp(Pdu):
    command_id: ClassVar[int] = CommandId.QUERY_SM_RESP
    is_response: ClassVar[bool] = True
    message_id: MessageId = ""
    final_date: FinalDate = ""
    message_state: U8 = 0
    error_code: U8 = 0


class QuerySm(Pdu):
    command_id: ClassVar[int] = CommandId.QUERY_SM
    response_type: ClassVar[type[Pdu]] = QuerySmResp
    message_id: MessageId = ""
    source_addr_ton: SourceTon = 0
    source_addr_npi: SourceNpi = 0
    source_addr: SourceAddr = ""


class CancelSmResp(Pdu):
    command_id: ClassVar[int] = CommandId.CANCEL_SM_RESP
    is_response: ClassVar[bool] = True


class CancelSm(Pdu):
    command_id: ClassVar[int] = CommandId.CANCEL_SM
    response_type: ClassVar[type[Pdu]] = CancelSmResp
    service_type: ServiceType = ""
    message_id: MessageId = ""
    source_addr_ton: SourceTon = 0
    source_addr_npi: SourceNpi = 0
    source_addr: SourceAddr = ""
    dest_addr_ton: DestTon = 0
    dest_addr_npi: DestNpi = 0
    destination_addr: DestinationAddr = ""


class ReplaceSmResp(Pdu):
    command_id: ClassVar[int] = CommandId.REPLACE_SM_RESP
    is_response: ClassVar[bool] = True


class ReplaceSm(Pdu):
    command_id: ClassVar[int] = CommandId.REPLACE_SM
    response_type: ClassVar[type[Pdu]] = ReplaceSmResp
    message_id: MessageId = ""
    source_addr_ton: SourceTon = 0
    source_addr_npi: SourceNpi = 0
    source_addr: SourceAddr = ""
    schedule_delivery_time: ScheduleTime = ""
    validity_period: ValidityPeriod = ""
    registered_delivery: RegisteredDeliveryField = 0
    sm_default_msg_id: DefaultMsgId = 0
    short_message: Message = b""


class AlertNotification(Pdu):
    command_id: ClassVar[int] = CommandId.ALERT_NOTIFICATION
    source_addr_ton: SourceTon = 0
    source_addr_npi: SourceNpi = 0
    source_addr: SourceAddr65 = ""
    esme_addr_ton: U8 = 0
    esme_addr_npi: U8 = 0
    esme_addr: EsmeAddr = ""


#: command_id -> PDU type, for every operation SMPP 3.4 defines.
PDU_TYPES: dict[int, type[Pdu]] = {
    cls.command_id: cls
    for cls in (
        GenericNack,
        BindReceiver,
        BindReceiverResp,
        BindTransmitter,
        BindTransmitterResp,
        BindTransceiver,
        BindTransceiverResp,
        Outbind,
        Unbind,
        UnbindResp,
        EnquireLink,
        EnquireLinkResp,
        SubmitSm,
        SubmitSmResp,
        DeliverSm,
        DeliverSmResp,
        DataSm,
        DataSmResp,
        QuerySm,
        QuerySmResp,
        CancelSm,
        CancelSmResp,
        ReplaceSm,
        ReplaceSmResp,
        SubmitMulti,
        SubmitMultiResp,
        AlertNotification,
    )
}
