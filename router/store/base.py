"""The store interface: what the hub keeps durably, whatever keeps it.

One row per message (:class:`router.lifecycle.MessageRow`) carries the message's
whole state: where it is in its lifecycle, its route and attempts, the upstream's id,
and the receipt still owed to its ESME (``receipt``: the deliver_sm, as it will be
sent). The lifecycle changes a row; the hub writes it back whole. MO messages,
which belong to no row, wait in a queue of :class:`Delivery` records of their own.

The operations are the few the lifecycle needs:

- :meth:`Store.add_messages` and :meth:`Store.save_durably` return only once what
  they wrote survives the process being killed (SIGKILL): the hub answers
  submit_sm_resp after the first and an upstream's deliver_sm_resp after the second.
- :meth:`Store.save` and :meth:`Store.delete_delivery` are queued for a group
  commit and not waited for: losing the last milliseconds of them in a crash means a
  message or receipt goes out again (at least once), never that one is lost.
- Reads see every write queued before them.

Calls made in the same event-loop turn share one transaction (group commit), so the
state changes of one turn cost one commit. Two backends implement it: SQLite (the
embedded default, :mod:`.sqlite`) and memory (:mod:`.memory`, no durability: for
tests and for measuring what durability costs).
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Iterable

import msgspec

from ..lifecycle import FINAL_STATES, MessageRow, State

__all__ = ["MessageRow", "State", "Delivery", "HttpMeta", "KeptAnswer", "MessageQuery", "Store", "OPEN_STATES",
           "FINAL_STATES", "row_destination"]

#: States of a message the hub still has to act on (recovered after a restart).
OPEN_STATES = frozenset(State) - FINAL_STATES


class Delivery(msgspec.Struct, kw_only=True):
    """An MO message to deliver to an ESME account (receipts travel in their message's row)."""

    id: int = 0  # assigned by the store
    account: str
    pdu: bytes  # the deliver_sm, encoded (sequence_number rewritten at send time)
    created_at: float = 0.0
    expires_at: float | None = None
    attempts: int = 0
    kind: str = "mo"


class HttpMeta(msgspec.Struct, kw_only=True):
    """What the HTTP API keeps beside a message it accepted, one per part (keyed by the part's id).

    ``message`` is the id the client was given (the first part's); ``parts`` all the
    parts' ids; ``callback_url`` where its receipts go (else the account's webhook_url);
    ``kannel`` the dlr-url and dlr-mask of a Kannel sendsms, as JSON ("" for others).
    """

    id: str
    message: str
    account: str
    parts: list[str] = []
    callback_url: str = ""
    reference: str = ""
    kannel: str = ""
    created_at: float = 0.0


class KeptAnswer(msgspec.Struct, kw_only=True):
    """The answer to a POST that carried an ``Idempotency-Key``, kept until ``expires`` (unix time)
    so that a retry, even after a restart, gets it again instead of sending again."""

    account: str
    key: str
    fingerprint: bytes  # SHA-256 of the request body: the same key with another body is refused
    status: int
    body: bytes
    expires: float


class MessageQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A page of one account's messages, newest first (``GET /v1/messages``).

    Rows are read newest first by ``created_at`` and at most ``scan`` of them are
    looked at, so a filter that matches little costs a bounded read, not the table.
    """

    account: str
    state: State | None = None
    destination: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 100
    scan: int = 50_000

    def matches(self, row: MessageRow) -> bool:
        """Whether ``row`` is one the query asks for (the store may have checked some already)."""
        if row.account != self.account or (self.state is not None and row.state is not self.state):
            return False
        if self.since is not None and row.created_at < self.since:
            return False
        if self.until is not None and row.created_at >= self.until:
            return False
        return self.destination is None or row_destination(row) == self.destination


def row_destination(row: MessageRow) -> str:
    """The destination_addr of the message a row carries ("" when it has none)."""
    from smppcore import decode

    try:
        pdu = decode(row.pdu)
    except Exception:  # noqa: BLE001 - a row the hub wrote always decodes; a bad one matches nothing
        return ""
    destination: str = getattr(pdu, "destination_addr", "")
    return destination


class Store(abc.ABC):
    """What the hub keeps. All methods are called on the hub's event loop."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Create or open the storage (schema included)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush every pending write and release the storage."""

    # ---- messages -------------------------------------------------------------------

    @abc.abstractmethod
    async def add_messages(self, rows: list[MessageRow]) -> None:
        """Store new messages; returns once they survive a crash."""

    @abc.abstractmethod
    def save(self, rows: Iterable[MessageRow]) -> None:
        """Write these rows' state as it is now; queued for a group commit milliseconds away, not waited for.

        Everything but the message itself (``pdu``, which only :meth:`save_message`
        writes) and what never changes (id, account, route, group, created_at). A final row
        whose receipt the ESME acknowledged (``receipt`` set, ``receipt_owed`` False) changes
        ``receipt_owed`` only: ``updated_at`` stays the time of its last change of state, as a
        receipt's done date and query_sm's final_date want it.
        """

    @abc.abstractmethod
    def save_durably(self, rows: list[MessageRow]) -> asyncio.Future[None]:
        """Like :meth:`save`; the Future completes once the write survives a crash.

        A Future, not a coroutine: the hub calls this for every receipt, and a task
        per call would cost more than the write.
        """

    @abc.abstractmethod
    async def save_message(self, row: MessageRow) -> None:
        """Write the row whole, ``pdu`` included (replace_sm changed the text); durable on return."""

    @abc.abstractmethod
    async def flush(self) -> None:
        """Wait until every write queued before this call is committed."""

    @abc.abstractmethod
    async def get(self, message_id: str) -> MessageRow | None:
        """A copy of the row as stored (the hub's in-memory row, when it has one, is newer)."""

    @abc.abstractmethod
    async def find_by_upstream_id(self, upstream: str, upstream_id: str) -> MessageRow | None:
        """The message an upstream knows as ``upstream_id`` (for its receipts)."""

    @abc.abstractmethod
    async def open_messages(self) -> list[MessageRow]:
        """Every message in an open state but SENT, oldest first (recovery after a restart; SENT
        messages wait for their receipts, which find them by upstream id)."""

    @abc.abstractmethod
    async def owed_receipts(self, account: str | None = None) -> list[MessageRow]:
        """Final messages whose receipt the ESME has not acknowledged yet, oldest first."""

    # ---- the backlog: messages that wait in the store only ---------------------------------
    #
    # The hub holds in memory only the messages in flight or due soon, up to a limit.
    # The others are "spilled": the store marks them, and hands them back, earliest due
    # first, as the hub has room. A restart spills every open message it finds, so a
    # backlog of millions costs store space, not memory.

    @abc.abstractmethod
    def spill(self, message_ids: list[str]) -> None:
        """These messages wait in the store only (queued with the next commit, not waited for)."""

    @abc.abstractmethod
    async def spill_open(self) -> int:
        """After a restart: spill every open message but SENT ones; how many there are."""

    @abc.abstractmethod
    async def take_spilled(self, due_before: float, limit: int) -> list[MessageRow]:
        """Up to ``limit`` spilled messages due before ``due_before``, earliest due first,
        no longer spilled once returned (the caller holds them now)."""

    async def take_spilled_by_id(self, message_ids: list[str]) -> list[MessageRow]:
        """Those of ``message_ids`` that wait in the store only, no longer spilled once returned
        (the caller holds them now: a cancel reaching a message scheduled far ahead)."""
        raise NotImplementedError(f"{type(self).__name__} cannot take spilled messages by id")

    # ---- MO on its way to ESMEs ----------------------------------------------------------

    @abc.abstractmethod
    async def add_deliveries(self, deliveries: list[Delivery]) -> list[int]:
        """Store MO messages for accounts durably; returns their ids, in order."""

    async def add_delivery(self, delivery: Delivery) -> int:
        return (await self.add_deliveries([delivery]))[0]

    @abc.abstractmethod
    def delete_delivery(self, delivery_id: int) -> None:
        """The ESME acknowledged it (or it expired). Queued like :meth:`save`."""

    @abc.abstractmethod
    async def pending_deliveries(self, account: str | None = None) -> list[Delivery]:
        """Deliveries not yet acknowledged, oldest first (all accounts when None)."""

    # ---- what the HTTP API keeps -------------------------------------------------------------

    def add_http_meta(self, metas: list[HttpMeta]) -> None:
        """Keep these beside their messages; queued, not waited for: written no later than the
        :meth:`add_messages` that follows (the HTTP API calls it just before), so a message the
        client was told about has its callback after a crash too."""
        raise NotImplementedError(f"{type(self).__name__} keeps nothing for the HTTP API")

    async def http_meta(self, message_id: str) -> HttpMeta | None:
        """What the HTTP API kept for the message (or part) ``message_id``."""
        raise NotImplementedError(f"{type(self).__name__} keeps nothing for the HTTP API")

    async def find_messages(self, query: MessageQuery) -> list[MessageRow]:
        """The rows :meth:`MessageQuery.matches`, newest first, at most ``query.limit``."""
        raise NotImplementedError(f"{type(self).__name__} cannot list messages")

    def keep_answer(self, answer: KeptAnswer) -> None:
        """Keep (or replace) an idempotent answer; queued like :meth:`add_http_meta`, so one kept
        just before :meth:`add_messages` is durable with the messages it answers."""
        raise NotImplementedError(f"{type(self).__name__} keeps no idempotent answers")

    def forget_answer(self, account: str, key: str) -> None:
        """The answer kept for (account, key) no longer holds (its messages were not stored); queued."""
        raise NotImplementedError(f"{type(self).__name__} keeps no idempotent answers")

    async def kept_answer(self, account: str, key: str) -> KeptAnswer | None:
        """The answer kept for (account, key), if any and not expired."""
        raise NotImplementedError(f"{type(self).__name__} keeps no idempotent answers")

    # ---- housekeeping -----------------------------------------------------------------------

    async def purge(self, older_than: float) -> int:
        """Forget final messages with no receipt owed, created before ``older_than``; how many."""
        return 0

    async def purge_oldest(self, limit: int) -> int:
        """Forget up to ``limit`` final messages with no receipt owed, oldest first whatever their age; how many.

        The size cap's purge (``store.max_size_mb``): only a store on disk has one.
        """
        return 0

    async def disk_usage(self) -> int:
        """Bytes the store holds on disk (0: not on disk, never over a size cap)."""
        return 0

    async def vacuum(self, pages: int) -> int:
        """Give up to ``pages`` freed pages back to the file system; how many (0: nothing to give back)."""
        return 0

    async def counts(self) -> dict[str, int]:
        """Messages per state value (for status and metrics)."""
        return {}


def copy_row(row: MessageRow) -> MessageRow:
    """A row the caller may change without changing the stored one (route copied too)."""
    return msgspec.structs.replace(row, route=list(row.route))

