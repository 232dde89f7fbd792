"""Requests an SMSC has for one ESME account, fed to whichever of its binds can take them.

An SMSC (or a hub) delivers receipts and MO messages to an account, not to a
connection: the account may have several receiver/transceiver binds, or none
for a while. :class:`Outbox` holds the requests in order, sends each to a bound
connection whose window has room, and puts back at the front whatever a lost
connection or a timeout left unanswered, so nothing is dropped and nothing that
was acknowledged is sent again.
"""

from __future__ import annotations

import asyncio
import collections
from functools import partial
from typing import Any, Callable, Iterable

from .connection import SmppConnection
from .pdus import Pdu

__all__ = ["Outbox"]

AckCallback = Callable[[Pdu, Any], None]


class Outbox:
    """Ordered requests for one account; see the module docstring."""

    def __init__(
        self,
        receivers: Callable[[], Iterable[SmppConnection]],
        *,
        limit: int = 100_000,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._receivers = receivers
        self.limit = limit
        self.loop = loop or asyncio.get_running_loop()
        self.queue: collections.deque[tuple[Pdu, AckCallback | None, Any, bytes | None]] = collections.deque()
        self.in_flight = 0
        self.requeued = 0
        self._pump_scheduled = False

    def __len__(self) -> int:
        return len(self.queue)

    @property
    def full(self) -> bool:
        return len(self.queue) >= self.limit

    def put(self, pdu: Pdu, on_ack: AckCallback | None = None, context: Any = None, encoded: bytes | None = None) -> bool:
        """Queue ``pdu``; False (and nothing queued) when ``limit`` requests already wait.

        ``on_ack(response, context)`` runs when the ESME answers, whatever the
        status; the outbox retries by itself only on timeouts and lost connections.
        ``encoded`` is ``pdu`` already encoded, when the caller has it.
        """
        if len(self.queue) >= self.limit:
            return False
        self.queue.append((pdu, on_ack, context, encoded))
        self.pump()
        return True

    def pump(self) -> None:
        """Send what the bound connections' windows allow. Call again when one binds."""
        self._pump_scheduled = False
        queue = self.queue
        if not queue:
            return
        for conn in self._receivers():
            session = conn.session
            while queue and session.can_send and conn.is_open:
                item = queue.popleft()
                conn.send_callback(item[0], partial(self._done, item), item[3])
                self.in_flight += 1
            if not queue:
                return

    def _done(self, item: tuple[Pdu, AckCallback | None, Any, bytes | None], response: Pdu | None,
              error: Exception | None) -> None:
        self.in_flight -= 1
        if error is not None:
            self.queue.appendleft(item)
            self.requeued += 1
        else:
            on_ack = item[1]
            if on_ack is not None:
                on_ack(response, item[2])
        if not self._pump_scheduled:
            self._pump_scheduled = True
            self.loop.call_soon(self.pump)

    def drain(self) -> list[tuple[Pdu, Any]]:
        """Take everything still queued (not in flight) out of the outbox."""
        items = [(pdu, ctx) for pdu, _, ctx, _ in self.queue]
        self.queue.clear()
        return items

