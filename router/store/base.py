"""The store interface: what the hub keeps durably, whatever keeps it.

Two backends implement :class:`Store`: SQLite (embedded, the default) and Redis
(scale-out). The hub only ever talks to this interface.

Durability contract: when :meth:`Store.add_messages` (or :meth:`Store.add_deliveries`)
returns, the records survive the process being killed (SIGKILL) — the hub answers
only after that. Other writes (:meth:`Store.update`, :meth:`Store.delete_delivery`)
are group-committed too but nobody waits for them: losing the last milliseconds of
them in a crash means a message or receipt is sent again (at least once), never
that one is lost.
"""

from __future__ import annotations

import abc
import asyncio
import msgspec

__all__ = ["MessageRecord", "Delivery", "Store", "MessageState"]


class MessageState:
    """Lifecycle of a message in the hub (stored as these strings)."""

    QUEUED = "queued"  # accepted, waiting for an upstream (or for its schedule / retry time)
    SENT = "sent"  # an upstream accepted it; waiting for the receipt
    DELIVERED = "delivered"  # final: receipt DELIVRD
    FAILED = "failed"  # final: permanent error, or receipt UNDELIV/REJECTD/...
    EXPIRED = "expired"  # final: validity period ran out before it could be sent
    CANCELLED = "cancelled"  # final: cancel_sm

    FINAL = frozenset({DELIVERED, FAILED, EXPIRED, CANCELLED})
    OPEN = frozenset({QUEUED, SENT})


class MessageRecord(msgspec.Struct, kw_only=True):
    """One message the hub accepted (one segment of a long message is one record)."""

    id: str  # the hub's message_id, given to the ESME in submit_sm_resp
    account: str  # system_id of the ESME that sent it
    pdu: bytes  # the submit_sm (or data_sm) as the hub will send it upstream, encoded
    route: list[str]  # upstream names, in failover order
    state: str = MessageState.QUEUED
    upstream: str | None = None  # the upstream that accepted it
    upstream_id: str | None = None  # that upstream's message_id
    attempts: int = 0
    created_at: float = 0.0  # unix time
    not_before: float = 0.0  # unix time: scheduled delivery or next retry
    expires_at: float | None = None  # unix time: validity period
    registered_delivery: int = 0
    error: int = 0  # last command_status / network error seen
    updated_at: float = 0.0


class Delivery(msgspec.Struct, kw_only=True):
    """Something to deliver to an ESME account: a receipt or an MO message."""

    id: int = 0  # assigned by the store
    account: str
    pdu: bytes  # the deliver_sm, encoded (sequence_number rewritten at send time)
    created_at: float = 0.0
    expires_at: float | None = None
    attempts: int = 0
    kind: str = "receipt"  # "receipt" | "mo"


class Store(abc.ABC):
    """What the hub keeps. All methods are coroutines run on the hub's event loop."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Create or open the storage (schema included)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush every pending write and release the storage."""

    # ---- messages ---------------------------------------------------------------

    @abc.abstractmethod
    async def add_messages(self, records: list[MessageRecord]) -> None:
        """Store new messages durably; returns once they survive a crash.

        Concurrent callers are group-committed: calls made in the same event-loop
        turn or within the commit interval share one transaction.
        """

    @abc.abstractmethod
    def update(self, record_id: str, **fields: object) -> None:
        """Change fields of one message (state, upstream, upstream_id, attempts, not_before, error, pdu, ...).

        Queued for the next group commit and not waited for (see :meth:`flush`);
        raises ValueError at once for a field that does not exist.
        """

    @abc.abstractmethod
    async def flush(self) -> None:
        """Wait until every write queued before this call is committed."""

    @abc.abstractmethod
    async def get(self, record_id: str) -> MessageRecord | None: ...

    @abc.abstractmethod
    async def find_by_upstream_id(self, upstream: str, upstream_id: str) -> MessageRecord | None:
        """The message an upstream knows as ``upstream_id`` (for its receipts)."""

    @abc.abstractmethod
    async def open_messages(self) -> list[MessageRecord]:
        """Every message not in a final state (recovery after a restart)."""

    # ---- deliveries to ESMEs ------------------------------------------------------------

    @abc.abstractmethod
    async def add_delivery(self, delivery: Delivery) -> int:
        """Store a receipt / MO for an account durably; returns its id."""

    async def add_deliveries(self, deliveries: list[Delivery]) -> list[int]:
        """Store several deliveries in one go; returns their ids, in order.

        The default queues them all at once so a group-committing backend writes
        them in one transaction; backends may do better.
        """
        return list(await asyncio.gather(*(self.add_delivery(d) for d in deliveries)))

    @abc.abstractmethod
    def delete_delivery(self, delivery_id: int) -> None:
        """The ESME acknowledged it (or it expired). Queued like :meth:`update`."""

    @abc.abstractmethod
    async def pending_deliveries(self, account: str | None = None) -> list[Delivery]:
        """Deliveries not yet acknowledged, oldest first (all accounts when None)."""

    # ---- housekeeping ---------------------------------------------------------------------

    async def purge(self, older_than: float) -> int:
        """Forget final messages last updated before ``older_than`` (unix time); returns how many."""
        return 0

    async def counts(self) -> dict[str, int]:
        """Messages per state (for metrics and status)."""
        return {}

