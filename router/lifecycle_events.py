"""What can happen to an accepted message: the events :func:`router.lifecycle.apply` takes.

A module of their own, as smppcore keeps its session's events beside the session: the
adapters that only report what happened (the ESME side, the upstream pools, receipts,
the dispatcher) read these types without the machine that acts on them.
"""

from __future__ import annotations

import msgspec

from smppcore import MessageState as SmppState

__all__ = [
    "Event",
    "Due",
    "Taken",
    "SubmitOk",
    "SubmitTemporary",
    "SubmitPermanent",
    "UpstreamDown",
    "UpstreamUp",
    "Failover",
    "SiblingAccepted",
    "Receipt",
    "Intermediate",
    "Expire",
    "Cancel",
    "Replace",
    "ReceiptDelivered",
    "ReceiptDropped",
    "Restarted",
]



class Event(msgspec.Struct, frozen=True, gc=False):
    """Something that happened to a message. Subclasses carry what the machine needs.

    Structs, like :class:`~.lifecycle.Transition`: every message makes two or more (taken, answered),
    and msgspec builds them in C, where a class with an ``__init__`` ran Python for each
    (valgrind: about 1,000 instructions more an event). They hold only numbers, strings
    and states, so the cycle collector need not track them. Subclasses inherit both settings
    (``frozen=True`` is written again on each for mypy, which reads them as dataclasses).
    """


class Due(Event, frozen=True):
    """Its scheduled time or back-off is over."""


class Taken(Event, frozen=True):
    """An upstream took it and wrote its submit_sm."""

    upstream: str


class SubmitOk(Event, frozen=True):
    upstream_id: str


class SubmitTemporary(Event, frozen=True):
    """A temporary error (throttled, queue full, system error...) or no answer in time."""

    status: int
    throttled: bool = False


class SubmitPermanent(Event, frozen=True):
    status: int


class UpstreamDown(Event, frozen=True):
    """The upstream it waits for is down, or its connection was lost before the answer."""


class UpstreamUp(Event, frozen=True):
    """An upstream of its route is up again."""


class SiblingAccepted(Event, frozen=True):
    """An upstream (``route_index`` of the shared route) accepted another segment of this message."""

    route_index: int


class Failover(Event, frozen=True):
    """A sibling segment failed over from ``from_index``: follow it if still there."""

    from_index: int


class Receipt(Event, frozen=True):
    """The upstream's final receipt."""

    state: SmppState
    error: int = 0


class Intermediate(Event, frozen=True):
    """An intermediate notification (ENROUTE, ACCEPTED...)."""


class Expire(Event, frozen=True):
    """Its validity period is over (the time is checked: an early call raises)."""


class Cancel(Event, frozen=True):
    """cancel_sm (or the HTTP API's DELETE)."""


class Replace(Event, frozen=True):
    """replace_sm: new times (the text is the adapter's business)."""

    due: float
    expires_at: float | None
    registered_delivery: int | None = None


class ReceiptDelivered(Event, frozen=True):
    """The ESME acknowledged the receipt it was owed."""


class ReceiptDropped(Event, frozen=True):
    """The receipt owed waited past the account's receipt_hold, or the ESME refused it too often."""


class Restarted(Event, frozen=True):
    """The hub restarted while the message was in flight: its answer will never come."""
