"""A store that keeps everything in memory: no durability, for tests and for
measuring what durability costs (``[store] backend = "memory"``).

It keeps copies: a row changes here only when the hub saves it, as with SQLite.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable

import msgspec

from .base import (
    FINAL_STATES,
    OPEN_STATES,
    Delivery,
    HttpMeta,
    KeptAnswer,
    MessageQuery,
    MessageRow,
    State,
    Store,
    copy_row,
)

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    def __init__(self) -> None:
        self.messages: dict[str, MessageRow] = {}
        # (upstream, upstream_id) -> the ids of the messages that have it (an SMSC may reuse ids)
        self.by_upstream: dict[tuple[str, str], set[str]] = {}
        self.deliveries: dict[int, Delivery] = {}
        self.spilled: set[str] = set()
        self.http: dict[str, HttpMeta] = {}
        self.answers: dict[tuple[str, str], KeptAnswer] = {}
        self._ids = itertools.count(1)

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def add_messages(self, rows: list[MessageRow]) -> None:
        for row in rows:
            self._put(row)

    def save(self, rows: Iterable[MessageRow]) -> None:
        for row in rows:
            old = self.messages.get(row.id)
            if old is None:  # like SQLite's UPDATE: an unknown id changes nothing
                continue
            if row.receipt and not row.receipt_owed and row.state in FINAL_STATES:  # the receipt acknowledged
                if old.receipt_owed:
                    self.messages[row.id] = msgspec.structs.replace(old, receipt_owed=False)
                continue
            # like SQLite, only the row's state: the message itself and what never changes stay as stored
            self._put(msgspec.structs.replace(
                row, pdu=old.pdu, account=old.account, route=old.route, group=old.group, created_at=old.created_at))

    def _put(self, row: MessageRow) -> None:
        old = self.messages.get(row.id)
        if old is not None:
            self._unindex(old)
        self.messages[row.id] = copy_row(row)
        if row.upstream and row.upstream_id:
            self.by_upstream.setdefault((row.upstream, row.upstream_id), set()).add(row.id)

    def _unindex(self, row: MessageRow) -> None:
        if row.upstream and row.upstream_id:
            ids = self.by_upstream.get((row.upstream, row.upstream_id))
            if ids is not None:
                ids.discard(row.id)
                if not ids:
                    del self.by_upstream[(row.upstream, row.upstream_id)]

    def save_durably(self, rows: list[MessageRow]) -> asyncio.Future[None]:
        self.save(rows)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def save_message(self, row: MessageRow) -> None:
        self._put(row)  # the whole row, like SQLite's INSERT OR REPLACE

    async def flush(self) -> None:
        pass

    async def get(self, message_id: str) -> MessageRow | None:
        row = self.messages.get(message_id)
        return copy_row(row) if row else None

    async def find_by_upstream_id(self, upstream: str, upstream_id: str) -> MessageRow | None:
        ids = self.by_upstream.get((upstream, upstream_id))
        if not ids:
            return None
        # an SMSC that reuses an id: the newest message has it (as SQLite's ORDER BY created_at DESC)
        return copy_row(max((self.messages[i] for i in ids), key=lambda r: r.created_at))

    async def open_messages(self) -> list[MessageRow]:
        # SENT messages wait for receipts, which find them by upstream id: a restart has nothing to do for them
        rows = [copy_row(r) for r in self.messages.values() if r.state in OPEN_STATES and r.state is not State.SENT]
        return sorted(rows, key=lambda r: r.created_at)

    async def owed_receipts(self, account: str | None = None) -> list[MessageRow]:
        rows = [copy_row(r) for r in self.messages.values()
                if r.receipt_owed and (account is None or r.account == account)]
        return sorted(rows, key=lambda r: r.updated_at)

    def spill(self, message_ids: list[str]) -> None:
        self.spilled.update(i for i in message_ids if i in self.messages)

    async def spill_open(self) -> int:
        self.spilled = {i for i, r in self.messages.items() if r.state in OPEN_STATES and r.state is not State.SENT}
        return len(self.spilled)

    async def take_spilled(self, due_before: float, limit: int) -> list[MessageRow]:
        due = sorted((r for i in self.spilled if (r := self.messages.get(i)) is not None and r.due < due_before),
                     key=lambda r: (r.due, r.created_at))[:limit]
        self.spilled.difference_update(r.id for r in due)
        return [copy_row(r) for r in due]

    async def add_deliveries(self, deliveries: list[Delivery]) -> list[int]:
        ids = []
        for delivery in deliveries:
            stored = msgspec.structs.replace(delivery, id=next(self._ids))
            self.deliveries[stored.id] = stored
            ids.append(stored.id)
        return ids

    def delete_delivery(self, delivery_id: int) -> None:
        self.deliveries.pop(delivery_id, None)

    async def pending_deliveries(self, account: str | None = None) -> list[Delivery]:
        return [d for d in self.deliveries.values() if account is None or d.account == account]

    async def purge(self, older_than: float) -> int:
        old = [k for k, r in self.messages.items()
               if r.state in FINAL_STATES and not r.receipt_owed and r.created_at < older_than]
        for k in old:
            self._unindex(self.messages.pop(k))
            self.http.pop(k, None)
        now = time.time()
        for slot in [s for s, a in self.answers.items() if a.expires <= now]:
            del self.answers[slot]
        return len(old)

    async def take_spilled_by_id(self, message_ids: list[str]) -> list[MessageRow]:
        taken = [i for i in message_ids if i in self.spilled and i in self.messages]
        self.spilled.difference_update(taken)
        return [copy_row(self.messages[i]) for i in taken]

    def keep_answer(self, answer: KeptAnswer) -> None:
        self.answers[(answer.account, answer.key)] = answer

    def forget_answer(self, account: str, key: str) -> None:
        self.answers.pop((account, key), None)

    async def kept_answer(self, account: str, key: str) -> KeptAnswer | None:
        answer = self.answers.get((account, key))
        return answer if answer is not None and answer.expires > time.time() else None

    def add_http_meta(self, metas: list[HttpMeta]) -> None:
        for meta in metas:
            self.http[meta.id] = meta

    async def http_meta(self, message_id: str) -> HttpMeta | None:
        return self.http.get(message_id)

    async def find_messages(self, query: MessageQuery) -> list[MessageRow]:
        rows = sorted(self.messages.values(), key=_newest_first)[:query.scan]
        return [copy_row(r) for r in rows if query.matches(r)][:query.limit]

    async def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.messages.values():
            out[row.state.value] = out.get(row.state.value, 0) + 1
        return out


def _newest_first(row: MessageRow) -> tuple[float, str]:
    return (-row.created_at, row.id)
