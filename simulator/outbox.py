"""Delivery to an ESME of what the simulator sends it (receipts, MO).

Everything :class:`simulator.engine.Simulator` sends to an ESME goes through an
:class:`Outbox` per account: it feeds the account's bound receiver/transceiver
connections as their windows allow, holds messages (bounded) while none is
bound, and puts back whatever a lost connection left unanswered, so no receipt
is lost and none is sent twice to a connection that acknowledged it.
"""

from __future__ import annotations

import collections
from functools import partial
from typing import TYPE_CHECKING, Callable

from smppcore import Pdu

if TYPE_CHECKING:
    from .engine import Simulator

__all__ = ["Outbox"]


class Outbox:
    """What one account has to be sent (receipts, MO), fed to its bound connections.

    ``put`` queues and asks for one pump in this turn of the loop, so a burst of
    receipts goes out together (one pass over the receivers, one write).
    """

    def __init__(self, sim: Simulator, system_id: str) -> None:
        self.sim = sim
        self.system_id = system_id
        self.queue: collections.deque[tuple[Pdu, Callable[[Pdu], None] | None]] = collections.deque()
        self._retry: list[tuple[Pdu, Callable[[Pdu], None] | None]] = []  # back from a lost connection, in order
        self._pump_scheduled = False

    def put(self, pdu: Pdu, on_ack: Callable[[Pdu], None] | None = None) -> None:
        queue = self.queue
        stats = self.sim.stats
        if len(queue) >= self.sim.config.receipts.hold_limit:
            queue.popleft()  # bounded: the oldest held message gives way
            stats.held -= 1
        queue.append((pdu, on_ack))
        stats.held += 1
        self.pump_soon()

    def pump_soon(self) -> None:
        if not self._pump_scheduled:
            self._pump_scheduled = True
            self.sim.loop.call_soon(self.pump)

    def pump(self) -> None:
        self._pump_scheduled = False
        queue = self.queue
        if self._retry:  # ahead of everything else, in the order they were first sent
            queue.extendleft(reversed(self._retry))
            self._retry.clear()
        if not queue:
            return
        stats = self.sim.stats
        done = self._done
        for conn in self.sim.receivers(self.system_id):
            session = conn.session
            while queue and session.can_send:
                pdu, on_ack = queue.popleft()
                stats.held -= 1
                try:
                    # sets pdu.sequence_number (the record shows what was sent); the answer
                    # comes back by a direct call, no Future per receipt
                    conn.send_callback(pdu, partial(done, pdu, on_ack))
                except Exception:  # noqa: BLE001 - the connection is going away: keep it for the next one
                    queue.appendleft((pdu, on_ack))
                    stats.held += 1
                    break
            if not queue:
                return

    def _done(self, pdu: Pdu, on_ack: Callable[[Pdu], None] | None, response: Pdu | None,
              error: Exception | None) -> None:
        if error is not None:
            # the connection went away (or the ESME never answered): send it again
            self._retry.append((pdu, on_ack))
            self.sim.stats.held += 1
        elif on_ack is not None:
            on_ack(response)
        if self.queue or self._retry:
            self.pump_soon()
