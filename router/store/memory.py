"""A store that keeps everything in memory: no durability, for tests and for
measuring what durability costs (``[store] backend = "memory"``)."""

from __future__ import annotations

import itertools

import msgspec

from .base import Delivery, MessageRecord, MessageState, Store

__all__ = ["MemoryStore"]

_FIELDS = set(MessageRecord.__struct_fields__) - {"id"}


class MemoryStore(Store):
    def __init__(self) -> None:
        self.messages: dict[str, MessageRecord] = {}
        self.by_upstream: dict[tuple[str, str], str] = {}
        self.deliveries: dict[int, Delivery] = {}
        self._ids = itertools.count(1)

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def add_messages(self, records: list[MessageRecord]) -> None:
        for r in records:
            self.messages[r.id] = r

    async def flush(self) -> None:
        pass

    def update(self, record_id: str, **fields: object) -> None:
        unknown = set(fields) - _FIELDS
        if unknown:
            raise ValueError(f"unknown message fields {sorted(unknown)}")
        record = self.messages.get(record_id)
        if record is not None:
            for k, v in fields.items():
                setattr(record, k, v)
            if record.upstream and record.upstream_id:
                self.by_upstream[(record.upstream, record.upstream_id)] = record_id

    async def get(self, record_id: str) -> MessageRecord | None:
        r = self.messages.get(record_id)
        return msgspec.structs.replace(r) if r else None

    async def find_by_upstream_id(self, upstream: str, upstream_id: str) -> MessageRecord | None:
        rid = self.by_upstream.get((upstream, upstream_id))
        return await self.get(rid) if rid else None

    async def open_messages(self) -> list[MessageRecord]:
        return [msgspec.structs.replace(r) for r in self.messages.values() if r.state in MessageState.OPEN]

    async def add_delivery(self, delivery: Delivery) -> int:
        d = msgspec.structs.replace(delivery, id=next(self._ids))
        self.deliveries[d.id] = d
        return d.id

    async def add_deliveries(self, deliveries: list[Delivery]) -> list[int]:
        return [await self.add_delivery(d) for d in deliveries]

    def delete_delivery(self, delivery_id: int) -> None:
        self.deliveries.pop(delivery_id, None)

    async def pending_deliveries(self, account: str | None = None) -> list[Delivery]:
        return [d for d in self.deliveries.values() if account is None or d.account == account]

    async def purge(self, older_than: float) -> int:
        old = [k for k, r in self.messages.items() if r.state in MessageState.FINAL and r.updated_at < older_than]
        for k in old:
            del self.messages[k]
        return len(old)

    async def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.messages.values():
            out[r.state] = out.get(r.state, 0) + 1
        return out
