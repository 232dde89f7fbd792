"""What the simulator received, kept so a test can assert on it.

:class:`Submit` is one accepted submit_sm / data_sm / submit_multi (one segment),
with the state its receipts report; :class:`Message` is a whole message as the
handset would see it (segments reassembled). :class:`MessageLog` and
:class:`RecordIndex` are the views :class:`simulator.engine.Simulator` keeps over
them (``sim.messages``, ``sim.by_id``), and :class:`Stats` its counters.

The records are built for volume: a plain one-part submit_sm costs one
:class:`Submit` and nothing else (a :class:`MessageLog` reads it as a
:class:`Message`), and an id is found by arithmetic, not by a dict.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Iterator

import msgspec

from smppcore import CommandId, Pdu

if TYPE_CHECKING:
    from .behaviour import MessageIds

__all__ = ["Submit", "Message", "MessageLog", "RecordIndex", "Stats", "destinations"]


class Submit(msgspec.Struct, gc=False):
    """One accepted submit_sm / data_sm / submit_multi (one segment of a long message)."""

    message_id: str
    system_id: str
    pdu: Pdu
    received_at: float
    state: str = "ENROUTE"
    final_date: float | None = None  # set when the message reached its final state
    receipts_sent: int = 0
    receipt_pending: bool = False  # a final receipt (or a silent end, registered_delivery=2) is scheduled
    #: a submit_multi's destinations that get a receipt (those its response did not list as unsuccessful);
    #: empty for the other submits, whose one receipt goes to their destination_addr
    receipt_destinations: tuple[str, ...] = ()

    @property
    def is_final(self) -> bool:
        return self.final_date is not None


class Message(msgspec.Struct, gc=False):
    """A whole message as the handset would see it: segments reassembled."""

    system_id: str
    source_addr: str
    destination_addr: str
    data_coding: int
    payload: bytes
    message_ids: tuple[str, ...]  # one per segment; a tuple, so 100,000 records cost the GC nothing
    received_at: float

    @property
    def text(self) -> str:
        from smppcore.text import decode_text

        return decode_text(self.payload, self.data_coding)

    @property
    def parts(self) -> int:
        return len(self.message_ids)


def _as_message(item: Message | Submit) -> Message:
    if item.__class__ is Message:
        return item  # type: ignore[return-value]
    pdu = item.pdu  # type: ignore[union-attr]
    return Message(item.system_id, pdu.source_addr, pdu.destination_addr, pdu.data_coding, pdu.short_message,
                   (item.message_id,), item.received_at)  # type: ignore[union-attr]


class MessageLog:
    """The whole messages received, oldest first, at most ``maxlen`` of them.

    Reads like a deque of :class:`Message` (len, iteration, ``reversed``, indexing,
    ``clear``). A plain one-part submit_sm is kept as its :class:`Submit` record and
    becomes a Message when read: on the fast path a message costs one record, not two.
    """

    __slots__ = ("_items",)

    def __init__(self, maxlen: int) -> None:
        self._items: collections.deque[Message | Submit] = collections.deque(maxlen=maxlen)

    @property
    def maxlen(self) -> int | None:
        return self._items.maxlen

    def append(self, item: Message | Submit) -> None:
        self._items.append(item)

    def clear(self) -> None:
        self._items.clear()

    def last(self, n: int) -> list[Message]:
        """The ``n`` most recent messages, oldest first."""
        if n <= 0:
            return []
        out = list(itertools.islice(reversed(self._items), n))
        out.reverse()
        return [_as_message(m) for m in out]

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Iterator[Message]:
        return map(_as_message, self._items)

    def __reversed__(self) -> Iterator[Message]:
        return map(_as_message, reversed(self._items))

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return list(self)[index]
        return _as_message(self._items[index])

    def __repr__(self) -> str:
        return f"MessageLog({list(self)!r})"


class RecordIndex(Mapping[str, Submit]):
    """message_id -> its :class:`Submit`, for the records still kept.

    No dict: every accepted message takes the next id and joins the end of the
    record, so an id's position in it follows from the number inside the id.
    """

    __slots__ = ("_submits", "_ids")

    def __init__(self, submits: collections.deque[Submit], ids: MessageIds) -> None:
        self._submits = submits
        self._ids = ids

    def __getitem__(self, message_id: str) -> Submit:
        submits = self._submits
        number = self._ids.number(message_id) if isinstance(message_id, str) else None
        if number is not None and submits:
            last = self._ids.number(submits[-1].message_id)
            i = len(submits) - 1 - (last - number) if last is not None else -1
            if 0 <= i < len(submits):
                record = submits[i]
                if record.message_id == message_id:
                    return record
        raise KeyError(message_id)

    def __iter__(self) -> Iterator[str]:
        return (s.message_id for s in self._submits)

    def __len__(self) -> int:
        return len(self._submits)


class Stats(msgspec.Struct):
    binds: int = 0
    bound: int = 0
    bind_refused: int = 0
    submits: int = 0
    accepted: int = 0
    rejected: dict[str, int] = {}
    throttled: int = 0
    receipts_sent: int = 0
    receipts_acked: int = 0
    receipts_pending: int = 0
    mo_sent: int = 0
    mo_acked: int = 0
    held: int = 0
    held_dropped: int = 0  # receipts and MO given up past hold_limit, the oldest first
    dropped_connections: int = 0
    messages: int = 0


def destinations(pdu: Pdu) -> list[str]:
    """The destination addresses of a submit (several for a submit_multi)."""
    if pdu.command_id == CommandId.SUBMIT_MULTI:
        return [getattr(d, "destination_addr", getattr(d, "dl_name", "")) for d in pdu.dest_address]
    return [pdu.destination_addr]
