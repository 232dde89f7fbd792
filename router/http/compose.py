"""A message of the HTTP API (or of Kannel's sendsms) made into the submit_sm PDUs the hub sends.

The HTTP API takes text and numbers; the hub's admission path takes submit_sm, as an
ESME would send it (:meth:`router.esme.EsmeHandler.admit_submit`). This is the one
translation between them: the coding chosen for the text (GSM 03.38 when it fits,
else UCS-2: many SMSCs mangle Latin-1, so ``auto`` never picks it), long text split
with a concatenation UDH (8-bit reference, the form every handset joins), numbers
given their TON/NPI, times written as SMPP absolute times. Problems raise
:class:`~.errors.ApiError` 422 naming the field.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import msgspec

from smppcore import CommandStatus, RegisteredDelivery
from smppcore.pdus import SubmitSm
from smppcore.smpptime import format_absolute
from smppcore.text import Segment, UnencodableText, choose_coding, encode_text, split_text

from .errors import ApiError

__all__ = ["CodedTexts", "Draft", "address", "sender", "smpp_time", "submits", "refusal", "utc", "CODINGS"]

#: the API's coding names -> data_coding
CODINGS: dict[str, int] = {"gsm7": 0, "ia5": 1, "latin1": 3, "ucs2": 8}
_TON_INTERNATIONAL, _TON_UNKNOWN, _TON_ALPHANUMERIC = 1, 0, 5
_NPI_ISDN, _NPI_UNKNOWN = 1, 0
_INTERMEDIATE = int(RegisteredDelivery.INTERMEDIATE_NOTIFICATION)
#: concatenation references, one per long message (8 bits: they wrap; the handset keys them by sender too)
_references = itertools.count(1)
#: what makes two one-part messages of a request the same but for the destination (see CodedTexts.submits_to)
_OnePartKey = tuple[str, int | None, str | None, bool, datetime | None, datetime | None]


class Draft:
    """One message for one destination as the API got it: what :func:`submits` needs."""

    __slots__ = ("to", "text", "sender", "data_coding", "send_at", "valid_until", "receipt", "udh", "binary",
                 "intermediate")

    def __init__(self, to: str, text: str, *, sender: str | None = None, data_coding: int | None = None,
                 send_at: datetime | None = None, valid_until: datetime | None = None, receipt: bool = False,
                 udh: bytes = b"", binary: bytes | None = None, intermediate: bool = False) -> None:
        self.to = to
        self.text = text
        self.sender = sender
        self.data_coding = data_coding  # None: chosen for the text
        self.send_at = send_at
        self.valid_until = valid_until
        self.receipt = receipt
        self.udh = udh  # a client's own UDH (Kannel's udh=), sent as it is
        self.binary = binary  # the message's octets as they are (Kannel's coding=1), instead of text
        self.intermediate = intermediate  # ask the upstream for intermediate notifications too (Kannel's dlr-mask 4)


def address(number: str) -> tuple[int, int, str]:
    """(ton, npi, digits) of a destination or numeric sender: + means international."""
    if number.startswith("+"):
        return _TON_INTERNATIONAL, _NPI_ISDN, number[1:]
    return _TON_UNKNOWN, _NPI_ISDN, number


def sender(value: str | None) -> tuple[int, int, str]:
    """(ton, npi, address) of a sender: a number, or an alphanumeric sender id."""
    if not value:
        return _TON_UNKNOWN, _NPI_UNKNOWN, ""
    if value.lstrip("+").isdigit():
        return address(value)
    return _TON_ALPHANUMERIC, _NPI_UNKNOWN, value


def smpp_time(when: datetime | None, field: str) -> str:
    """``when`` as an SMPP absolute time ("" for None); 422 for a time without its offset."""
    if when is None:
        return ""
    if when.tzinfo is None:
        raise ApiError(422, f"{field}: give the time with its offset (Z or +hh:mm)", field=field)
    return format_absolute(when.astimezone(UTC))


class CodedTexts:
    """The texts of one request, coded and split once each: a batch often sends one text to many.

    Only a text that fits one message is kept: a long one's parts carry a concatenation
    reference of their own, so each message splits it afresh. Lives for one request,
    and keeps at most ``limit`` texts and ``limit`` one-part PDUs (past that, each is
    made each time).

    :meth:`submits_to` is the API's per-destination path: a one-part message's submit_sm
    is made once per request for each (text, coding, sender, receipt, times) and copied
    with each destination, so parsing the sender, writing the times, choosing the coding
    and building the PDU field by field is paid once per distinct message, not once per
    destination (py-spy: ``submits`` was the biggest part of a 1,000-message batch's
    own work). What it gives is what :func:`submits` gives (tests/test_http_fastpaths.py).
    """

    __slots__ = ("_single", "_one_part", "limit")

    def __init__(self, limit: int = 1000) -> None:
        self._single: dict[tuple[str, int | None], Segment] = {}
        self._one_part: dict[_OnePartKey, SubmitSm] = {}
        self.limit = limit

    def segments(self, draft: Draft, at: str) -> list[Segment]:
        key = (draft.text, draft.data_coding)
        one = self._single.get(key)
        if one is not None:
            return [one]
        segments = _split(draft, at)
        if len(segments) == 1 and len(self._single) < self.limit:
            self._single[key] = segments[0]
        return segments

    def submits_to(self, to: str, text: str, data_coding: int | None, sender: str | None, receipt: bool,
                   send_at: datetime | None, valid_until: datetime | None) -> list[SubmitSm]:
        """``submits(Draft(to, text, ...))`` with these values (errors name the fields without a prefix)."""
        key = (text, data_coding, sender, receipt, send_at, valid_until)
        made = self._one_part.get(key)
        if made is None:
            pdus = submits(Draft(to, text, sender=sender, data_coding=data_coding, send_at=send_at,
                                 valid_until=valid_until, receipt=receipt), texts=self)
            if len(pdus) == 1 and len(self._one_part) < self.limit:
                self._one_part[key] = pdus[0]
            return pdus
        ton, npi, dest = address(to)
        return [msgspec.structs.replace(made, dest_addr_ton=ton, dest_addr_npi=npi, destination_addr=dest,
                                        tlvs=dict(made.tlvs) if made.tlvs else {})]


def submits(draft: Draft, *, field: str = "", texts: CodedTexts | None = None) -> list[SubmitSm]:
    """The submit_sm PDUs (one per part) that carry ``draft`` (its text coded by ``texts`` when given)."""
    at = f"{field}." if field else ""
    ton, npi, dest = address(draft.to)
    src_ton, src_npi, src = sender(draft.sender)
    registered = (1 if draft.receipt else 0) | (_INTERMEDIATE if draft.intermediate else 0)
    scheduled = smpp_time(draft.send_at, f"{at}send_at")
    validity = smpp_time(draft.valid_until, f"{at}valid_until")

    def submit(segment: Segment) -> SubmitSm:  # every field at once: no copy of a half-made PDU per part
        return SubmitSm(
            source_addr_ton=src_ton, source_addr_npi=src_npi, source_addr=src,
            dest_addr_ton=ton, dest_addr_npi=npi, destination_addr=dest, registered_delivery=registered,
            schedule_delivery_time=scheduled, validity_period=validity, esm_class=segment.esm_class,
            data_coding=segment.data_coding, short_message=segment.short_message,
            tlvs=dict(segment.tlvs) if segment.tlvs else {},
        )

    if draft.binary is not None or draft.udh:
        body = draft.binary if draft.binary is not None else _encode_one(draft, at)
        data_coding = 4 if draft.binary is not None else _coding(draft)
        if len(draft.udh) + len(body) > 140:
            raise ApiError(422, f"{at}text: with a udh the message must fit one SMS (140 octets)", field=f"{at}text")
        return [submit(Segment(draft.udh + body, data_coding, 0x40 if draft.udh else 0))]
    segments = texts.segments(draft, at) if texts is not None else _split(draft, at)
    return [submit(seg) for seg in segments]


def _split(draft: Draft, at: str) -> list[Segment]:
    try:
        return split_text(draft.text, data_coding=_coding(draft), reference=next(_references) % 256)
    except ValueError as exc:  # text the coding cannot carry (UnencodableText), or more than 255 parts
        raise ApiError(422, f"{at}text: {exc}", field=f"{at}text") from None


def _coding(draft: Draft) -> int:
    return draft.data_coding if draft.data_coding is not None else choose_coding(draft.text, allow_latin1=False)


def _encode_one(draft: Draft, at: str) -> bytes:
    try:
        return encode_text(draft.text, _coding(draft))
    except UnencodableText as exc:
        raise ApiError(422, f"{at}text: {exc}", field=f"{at}text") from None


def refusal(status: int, unroutable: int, *, field: str = "") -> ApiError:
    """The HTTP answer for a submit the admission path refused with ``status``."""
    at = f"{field}." if field else ""
    if status == unroutable:
        return ApiError(422, f"{at}to: no route for this destination", field=f"{at}to", code="no_route")
    if status == CommandStatus.ESME_RTHROTTLED:
        return ApiError(429, "over the account's max_rate: try again shortly", code="throttled")
    if status == CommandStatus.ESME_RINVSRCADR:
        return ApiError(422, f"{at}from: this sender is not allowed for the account", field=f"{at}from",
                        code="sender_not_allowed")
    if status == CommandStatus.ESME_RINVSCHED:
        return ApiError(422, f"{at}send_at: not a time the message can wait for (past valid_until?)",
                        field=f"{at}send_at")
    if status == CommandStatus.ESME_RINVEXPIRY:
        return ApiError(422, f"{at}valid_until: must be in the future", field=f"{at}valid_until")
    if status == CommandStatus.ESME_RMSGQFUL:
        return ApiError(503, "the hub's queue is full or its store failed: try again later", code="queue_full")
    if status == CommandStatus.ESME_RSYSERR:
        return ApiError(503, "the hub is shutting down", code="unavailable")
    if status == CommandStatus.ESME_RINVSYSID:
        return ApiError(403, "the account no longer exists", code="forbidden")
    return ApiError(422, f"refused with SMPP status 0x{status:08x}", code="refused")


def utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
