"""The window: requests sent and not yet answered, keyed by sequence number."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import msgspec

from .pdus import Pdu

__all__ = ["Window", "Pending", "WindowFull", "SequenceNumbers"]

MAX_SEQUENCE = 0x7FFFFFFF


class WindowFull(Exception):
    """Raised by :meth:`Window.add` when ``size`` requests are already outstanding."""


class SequenceNumbers:
    """Hands out sequence numbers 1..0x7FFFFFFF, wrapping back to 1 (section 5.1.4).

    :meth:`next` is the ``__next__`` of a chain of ranges (``start`` to the end, then the
    whole range again and again), a C call: a session takes one per request it sends,
    where a Python method counting and wrapping cost a frame each (~450 instructions).
    """

    __slots__ = ("next",)

    def __init__(self, start: int = 1) -> None:
        numbers = itertools.chain(range(start, MAX_SEQUENCE + 1),
                                  itertools.chain.from_iterable(itertools.repeat(range(1, MAX_SEQUENCE + 1))))
        #: the next sequence number
        self.next: Callable[[], int] = numbers.__next__


class Pending(msgspec.Struct):
    """One outstanding request: what was sent, the caller's context, when it expires.

    A Struct, not a class with ``__init__``: one is made per request sent, and msgspec builds
    it in C (valgrind: about 1,000 instructions less each). Tracked by the cycle collector,
    unlike the PDUs: ``context`` is the caller's (a Future, a callback) and may lead back here.
    """

    request: Pdu
    context: Any
    deadline: float

    def __repr__(self) -> str:
        return f"Pending({type(self.request).__name__} seq={self.request.sequence_number}, deadline={self.deadline})"


class Window:
    """Outstanding requests by sequence number, at most ``size`` of them.

    Every request of a window gets the same timeout, so deadlines grow with
    insertion order and the dict's own order finds the expired ones without a
    heap: :meth:`expired` stops at the first entry still in time.
    """

    __slots__ = ("size", "_pending")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("window size must be at least 1")
        self.size = size
        self._pending: dict[int, Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, seq: int) -> bool:
        return seq in self._pending

    def __iter__(self) -> Iterator[Pending]:
        return iter(list(self._pending.values()))

    @property
    def full(self) -> bool:
        return len(self._pending) >= self.size

    @property
    def free(self) -> int:
        return self.size - len(self._pending)

    def add(self, request: Pdu, context: Any, deadline: float, *, force: bool = False) -> Pending:
        """Track ``request``. ``force`` admits it over the size (session keep-alives do)."""
        if not force and len(self._pending) >= self.size:
            raise WindowFull(f"{self.size} requests already in flight")
        seq = request.sequence_number
        if seq in self._pending:
            raise ValueError(f"sequence_number {seq} is already in flight")
        entry = self._pending[seq] = Pending(request, context, deadline)
        return entry

    def add_all(self, requests: Sequence[Pdu], contexts: Sequence[Any], deadline: float) -> None:
        """:meth:`add` for each of ``requests`` (with ``contexts[i]``), one deadline for all: all or
        none, the room for all of them is checked first (:class:`WindowFull`)."""
        pending = self._pending
        if len(pending) + len(requests) > self.size:
            raise WindowFull(f"{self.size} requests already in flight, no room for {len(requests)} more")
        for request in requests:
            if request.sequence_number in pending:
                raise ValueError(f"sequence_number {request.sequence_number} is already in flight")
        for request, context in zip(requests, contexts, strict=True):
            pending[request.sequence_number] = Pending(request, context, deadline)

    def pop(self, seq: int) -> Pending | None:
        """The request answered by a response with ``seq``, or None if nobody asked."""
        return self._pending.pop(seq, None)

    def expired(self, now: float) -> list[Pending]:
        """Remove and return every request whose deadline is past."""
        out = []
        pending = self._pending
        for entry in pending.values():
            if entry.deadline > now:
                break
            out.append(entry)
        for entry in out:
            del pending[entry.request.sequence_number]
        return out

    def next_deadline(self) -> float | None:
        for entry in self._pending.values():
            return entry.deadline
        return None

    def clear(self) -> list[Pending]:
        """Remove and return everything (the connection is gone)."""
        out = list(self._pending.values())
        self._pending.clear()
        return out
