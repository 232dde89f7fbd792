"""The HTTP API's messages, as msgspec types: they validate requests and make the OpenAPI document.

One type per body, fields named as a client writes them. Constraints live in the
types (``Meta``) so that the validation a request gets and the schema a client reads
are the same thing (:mod:`.openapi` generates the document from these classes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from .errors import ErrorDetail

__all__ = [
    "Coding", "MessageIn", "BatchIn", "ItemResult", "SendResult", "ReceiptOut", "MessageOut", "MessagePage",
    "CancelResult", "Address", "Sender", "ADDRESS_PATTERN", "SENDER_PATTERN",
]

#: a destination: digits, with a leading + for an international number (spaces and dashes are not taken)
ADDRESS_PATTERN = r"^\+?[0-9]{1,20}$"
#: a sender: a number like a destination, or up to 11 letters and digits (alphanumeric sender id)
SENDER_PATTERN = r"^(\+?[0-9]{1,20}|[A-Za-z0-9 ._-]{1,11})$"
Address = Annotated[str, msgspec.Meta(pattern=ADDRESS_PATTERN, examples=["+447700900123"],
                                      description="the handset's number: digits, + for international")]
Sender = Annotated[str, msgspec.Meta(pattern=SENDER_PATTERN, examples=["ACME"])]
Url = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s/]+[^\s]*$", max_length=2000)]
Coding = Literal["auto", "gsm7", "ia5", "latin1", "ucs2"]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=40_000)]


class MessageIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename={"sender": "from"}):
    """One message to one or more destinations (one hub message per destination)."""

    to: Address | Annotated[list[Address], msgspec.Meta(min_length=1, max_length=10_000)]
    text: Text
    sender: Sender | None = None  # "from" on the wire
    coding: Coding = "auto"  # auto: GSM 03.38 when the text fits it, else UCS-2
    send_at: datetime | None = None  # RFC 3339 with an offset; absent: now
    valid_until: datetime | None = None  # RFC 3339 with an offset; absent: the hub's default validity
    callback_url: Url | None = None  # its receipts go here (else to the account's webhook_url)
    reference: Annotated[str, msgspec.Meta(max_length=64)] | None = None  # the client's own, given back
    receipt: bool | None = None  # ask the network for a receipt; default: when a webhook would take it


class BatchIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Up to ``[http] max_batch`` messages; each is accepted or rejected on its own."""

    messages: Annotated[list[MessageIn], msgspec.Meta(min_length=1, max_length=10_000)]


class ItemResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What became of one destination of one message of the request."""

    index: int  # the message's place in the request (0 for a single message)
    to: str
    status: Literal["accepted", "rejected"]
    id: str | None = None  # the hub's id (its first part's, for a long message)
    parts: int = 0  # SMPP messages it takes
    reference: str | None = None
    error: ErrorDetail | None = None  # why it was rejected


class SendResult(msgspec.Struct, kw_only=True):
    messages: list[ItemResult]
    accepted: int
    rejected: int


class ReceiptOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The final receipt the network (or the hub) gave a part."""

    part_id: str
    state: str
    error: int = 0
    at: datetime | None = None


class MessageOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A message as the hub knows it now (``GET /v1/messages/{id}``)."""

    id: str
    state: str  # scheduled, queued, parked, in_flight, sent, delivered, undeliverable, expired, rejected, cancelled
    to: str
    sender: str = msgspec.field(default="", name="from")
    parts: list[str] = []
    route: list[str] = []  # upstreams in failover order
    upstream: str | None = None  # the one it went to
    upstream_id: str | None = None  # that upstream's id for it
    attempts: int = 0
    error: int = 0
    created_at: datetime
    updated_at: datetime
    send_at: datetime | None = None
    valid_until: datetime | None = None
    reference: str | None = None
    callback_url: str | None = None
    receipts: list[ReceiptOut] = []


class MessagePage(msgspec.Struct, kw_only=True):
    messages: list[MessageOut]
    count: int


class CancelResult(msgspec.Struct, kw_only=True):
    id: str
    cancelled: list[str]  # the parts cancelled
    state: str
