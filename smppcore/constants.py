"""Every number SMPP 3.4 gives a name to, in one place.

The PDU types store these as plain ``int`` (fast to decode, trivially comparable);
the enums below are ``IntEnum``/``IntFlag`` so they can be passed wherever an int
goes and give readable names back (``CommandStatus(0x58).name``).

Enum members on a hot path (explained here once; the modules that do it point here): on
Python 3.11 ``EnumType`` defines ``__getattr__``, and a metaclass with that hook makes CPython
send *every* attribute read on its classes through ``slot_tp_getattr_hook``, which calls
``type.__getattribute__`` through a new method-wrapper each time, although the members sit
in the class ``__dict__`` as plain attributes already. Naming a member in a function
(``State.SENT``, ``CommandStatus.ESME_ROK``) costs about 950 instructions and 50-60 ns, a
plain class attribute 210 instructions, a module constant 50 (2 ns): Enum and IntEnum
alike (2026-12-02, 100,000 reads in a loop under callgrind less the empty loop; timeit
agrees). No decorator or base class removes the hook: a metaclass derived from ``EnumType``
inherits it, setting the members again changes nothing, and the second, faster timing of a
lookup that suggested otherwise is the interpreter warming up (measured in either order,
both are ~56 ns). Python 3.12 dropped the hook. So the functions that run per PDU or per
message name members by module constants (``_SENT = State.SENT``; each use saves about
0.5% of the ~195,000 instructions a submit took through the hub), and all other code
writes ``State.SENT``.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

__all__ = [
    "CommandId",
    "CommandStatus",
    "Tag",
    "MessageState",
    "Ton",
    "Npi",
    "DataCoding",
    "EsmClass",
    "RegisteredDelivery",
    "DestFlag",
    "INTERFACE_VERSION",
    "RECEIPT_STAT",
    "status_name",
]

#: interface_version we announce in bind requests and bind responses (SMPP 3.4).
INTERFACE_VERSION = 0x34


class CommandId(IntEnum):
    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    REPLACE_SM = 0x00000007
    REPLACE_SM_RESP = 0x80000007
    CANCEL_SM = 0x00000008
    CANCEL_SM_RESP = 0x80000008
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    OUTBIND = 0x0000000B
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    SUBMIT_MULTI = 0x00000021
    SUBMIT_MULTI_RESP = 0x80000021
    ALERT_NOTIFICATION = 0x00000102
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103


class CommandStatus(IntEnum):
    """All command_status values defined by SMPP 3.4 (section 5.1.3)."""

    ESME_ROK = 0x00000000
    ESME_RINVMSGLEN = 0x00000001
    ESME_RINVCMDLEN = 0x00000002
    ESME_RINVCMDID = 0x00000003
    ESME_RINVBNDSTS = 0x00000004
    ESME_RALYBND = 0x00000005
    ESME_RINVPRTFLG = 0x00000006
    ESME_RINVREGDLVFLG = 0x00000007
    ESME_RSYSERR = 0x00000008
    ESME_RINVSRCADR = 0x0000000A
    ESME_RINVDSTADR = 0x0000000B
    ESME_RINVMSGID = 0x0000000C
    ESME_RBINDFAIL = 0x0000000D
    ESME_RINVPASWD = 0x0000000E
    ESME_RINVSYSID = 0x0000000F
    ESME_RCANCELFAIL = 0x00000011
    ESME_RREPLACEFAIL = 0x00000013
    ESME_RMSGQFUL = 0x00000014
    ESME_RINVSERTYP = 0x00000015
    ESME_RINVNUMDESTS = 0x00000033
    ESME_RINVDLNAME = 0x00000034
    ESME_RINVDESTFLAG = 0x00000040
    ESME_RINVSUBREP = 0x00000042
    ESME_RINVESMCLASS = 0x00000043
    ESME_RCNTSUBDL = 0x00000044
    ESME_RSUBMITFAIL = 0x00000045
    ESME_RINVSRCTON = 0x00000048
    ESME_RINVSRCNPI = 0x00000049
    ESME_RINVDSTTON = 0x00000050
    ESME_RINVDSTNPI = 0x00000051
    ESME_RINVSYSTYP = 0x00000053
    ESME_RINVREPFLAG = 0x00000054
    ESME_RINVNUMMSGS = 0x00000055
    ESME_RTHROTTLED = 0x00000058
    ESME_RINVSCHED = 0x00000061
    ESME_RINVEXPIRY = 0x00000062
    ESME_RINVDFTMSGID = 0x00000063
    ESME_RX_T_APPN = 0x00000064
    ESME_RX_P_APPN = 0x00000065
    ESME_RX_R_APPN = 0x00000066
    ESME_RQUERYFAIL = 0x00000067
    ESME_RINVOPTPARSTREAM = 0x000000C0
    ESME_ROPTPARNOTALLWD = 0x000000C1
    ESME_RINVPARLEN = 0x000000C2
    ESME_RMISSINGOPTPARAM = 0x000000C3
    ESME_RINVOPTPARAMVAL = 0x000000C4
    ESME_RDELIVERYFAILURE = 0x000000FE
    ESME_RUNKNOWNERR = 0x000000FF


def status_name(status: int) -> str:
    """``ESME_RTHROTTLED`` for 0x58; ``0x00000401`` for a vendor-specific code."""
    try:
        return CommandStatus(status).name
    except ValueError:
        return f"0x{status:08X}"


class Tag(IntEnum):
    """Optional parameter (TLV) tags defined by SMPP 3.4 (section 5.3.2)."""

    DEST_ADDR_SUBUNIT = 0x0005
    DEST_NETWORK_TYPE = 0x0006
    DEST_BEARER_TYPE = 0x0007
    DEST_TELEMATICS_ID = 0x0008
    SOURCE_ADDR_SUBUNIT = 0x000D
    SOURCE_NETWORK_TYPE = 0x000E
    SOURCE_BEARER_TYPE = 0x000F
    SOURCE_TELEMATICS_ID = 0x0010
    QOS_TIME_TO_LIVE = 0x0017
    PAYLOAD_TYPE = 0x0019
    ADDITIONAL_STATUS_INFO_TEXT = 0x001D
    RECEIPTED_MESSAGE_ID = 0x001E
    MS_MSG_WAIT_FACILITIES = 0x0030
    PRIVACY_INDICATOR = 0x0201
    SOURCE_SUBADDRESS = 0x0202
    DEST_SUBADDRESS = 0x0203
    USER_MESSAGE_REFERENCE = 0x0204
    USER_RESPONSE_CODE = 0x0205
    SOURCE_PORT = 0x020A
    DESTINATION_PORT = 0x020B
    SAR_MSG_REF_NUM = 0x020C
    LANGUAGE_INDICATOR = 0x020D
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    CALLBACK_NUM_PRES_IND = 0x0302
    CALLBACK_NUM_ATAG = 0x0303
    NUMBER_OF_MESSAGES = 0x0304
    CALLBACK_NUM = 0x0381
    DPF_RESULT = 0x0420
    SET_DPF = 0x0421
    MS_AVAILABILITY_STATUS = 0x0422
    NETWORK_ERROR_CODE = 0x0423
    MESSAGE_PAYLOAD = 0x0424
    DELIVERY_FAILURE_REASON = 0x0425
    MORE_MESSAGES_TO_SEND = 0x0426
    MESSAGE_STATE = 0x0427
    USSD_SERVICE_OP = 0x0501
    DISPLAY_TIME = 0x1201
    SMS_SIGNAL = 0x1203
    MS_VALIDITY = 0x1204
    ALERT_ON_MESSAGE_DELIVERY = 0x130C
    ITS_REPLY_TYPE = 0x1380
    ITS_SESSION_INFO = 0x1383


class MessageState(IntEnum):
    """message_state values (section 5.2.28), and their receipt ``stat:`` words."""

    SCHEDULED = 0  # not in 3.4's table, sent by some SMSCs before ENROUTE
    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8

    @property
    def is_final(self) -> bool:
        # a module-level set of plain ints: reading MessageState.X inside the class's own
        # property goes through the enum machinery (0.65 us a call; asked once per receipt)
        return self not in _NOT_FINAL


_NOT_FINAL = frozenset({int(MessageState.SCHEDULED), int(MessageState.ENROUTE), int(MessageState.ACCEPTED)})

#: MessageState -> the 7-character ``stat:`` word of the receipt text (Appendix B).
RECEIPT_STAT: dict[MessageState, str] = {
    MessageState.SCHEDULED: "SCHEDUL",
    MessageState.ENROUTE: "ENROUTE",
    MessageState.DELIVERED: "DELIVRD",
    MessageState.EXPIRED: "EXPIRED",
    MessageState.DELETED: "DELETED",
    MessageState.UNDELIVERABLE: "UNDELIV",
    MessageState.ACCEPTED: "ACCEPTD",
    MessageState.UNKNOWN: "UNKNOWN",
    MessageState.REJECTED: "REJECTD",
}


class Ton(IntEnum):
    UNKNOWN = 0
    INTERNATIONAL = 1
    NATIONAL = 2
    NETWORK_SPECIFIC = 3
    SUBSCRIBER_NUMBER = 4
    ALPHANUMERIC = 5
    ABBREVIATED = 6


class Npi(IntEnum):
    UNKNOWN = 0
    ISDN = 1  # E.163/E.164
    DATA = 3  # X.121
    TELEX = 4  # F.69
    LAND_MOBILE = 6  # E.212
    NATIONAL = 8
    PRIVATE = 9
    ERMES = 10
    INTERNET = 14  # IP
    WAP_CLIENT_ID = 18


class DataCoding(IntEnum):
    """data_coding values (section 5.2.19) for the codings smppcore speaks."""

    SMSC_DEFAULT = 0x00  # smppcore treats it as GSM 03.38 unless told otherwise
    IA5 = 0x01  # IA5 / ASCII
    BINARY_8BIT = 0x02
    LATIN1 = 0x03  # ISO-8859-1
    BINARY = 0x04
    JIS = 0x05
    CYRILLIC = 0x06  # ISO-8859-5
    LATIN_HEBREW = 0x07  # ISO-8859-8
    UCS2 = 0x08
    PICTOGRAM = 0x09
    MUSIC_CODES = 0x0A  # ISO-2022-JP
    EXTENDED_KANJI = 0x0D
    KS_C_5601 = 0x0E
    GSM_MWI_CONTROL = 0xC0
    GSM_MWI_CONTROL2 = 0xD0
    GSM_MESSAGE_CLASS = 0xF0


class EsmClass(IntFlag):
    """esm_class bits (section 5.2.12).

    Bits 0-1 are the messaging mode, bits 2-5 the message type, bits 6-7 GSM
    features. Mode and type are small enumerations packed into the byte, so use
    the MASK constants to extract them: ``esm & EsmClass.TYPE_MASK``.
    """

    MODE_DEFAULT = 0x00
    MODE_DATAGRAM = 0x01
    MODE_FORWARD = 0x02  # transaction mode
    MODE_STORE_AND_FORWARD = 0x03
    MODE_MASK = 0x03

    TYPE_DEFAULT = 0x00
    TYPE_DELIVERY_RECEIPT = 0x04  # SMSC delivery receipt
    TYPE_DELIVERY_ACK = 0x08  # SME delivery acknowledgement
    TYPE_USER_ACK = 0x10  # SME manual/user acknowledgement
    TYPE_CONVERSATION_ABORT = 0x18  # Korean CDMA
    TYPE_INTERMEDIATE_NOTIFICATION = 0x20
    TYPE_MASK = 0x3C

    UDHI = 0x40  # short_message starts with a User Data Header
    REPLY_PATH = 0x80


class RegisteredDelivery(IntFlag):
    """registered_delivery bits (section 5.2.17)."""

    NO_RECEIPT = 0x00
    RECEIPT_ALWAYS = 0x01  # on success or failure
    RECEIPT_ON_FAILURE = 0x02
    RECEIPT_ON_SUCCESS = 0x03  # not in 3.4's table, common in 5.0-aware SMSCs
    RECEIPT_MASK = 0x03

    SME_ACK_DELIVERY = 0x04
    SME_ACK_USER = 0x08
    SME_ACK_MASK = 0x0C

    INTERMEDIATE_NOTIFICATION = 0x10


class DestFlag(IntEnum):
    """dest_flag of a submit_multi dest_address entry (section 4.5.1.1)."""

    SME_ADDRESS = 1
    DISTRIBUTION_LIST = 2
