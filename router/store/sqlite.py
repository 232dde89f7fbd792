"""The embedded store: SQLite in WAL mode, written by one thread, group-committed.

The event loop never touches SQLite. Every request (writes and reads alike) goes
into a queue; a single writer thread takes everything queued, runs it in one
transaction, commits once, and completes all the callers' Futures with one
``call_soon_threadsafe``. Under load a commit carries hundreds of messages, so
the fsync that makes them durable is paid once for all of them.

``synchronous="full"`` (the default) fsyncs the WAL at every commit: what was
acknowledged survives a power cut. ``"normal"`` survives a process kill
(SIGKILL), not a power cut, and costs less.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import sqlite3
import threading
from typing import Any, Callable

from .base import Delivery, MessageRecord, MessageState, Store

__all__ = ["SqliteStore"]

log = logging.getLogger("smpphub.store")

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    pdu BLOB NOT NULL,
    route TEXT NOT NULL,
    state TEXT NOT NULL,
    upstream TEXT,
    upstream_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    not_before REAL NOT NULL DEFAULT 0,
    expires_at REAL,
    registered_delivery INTEGER NOT NULL DEFAULT 0,
    error INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_upstream ON messages (upstream, upstream_id) WHERE upstream_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_open ON messages (state) WHERE state IN ('queued', 'sent');
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    pdu BLOB NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL
);
"""
_COLUMNS = (
    "id", "account", "pdu", "route", "state", "upstream", "upstream_id", "attempts",
    "created_at", "not_before", "expires_at", "registered_delivery", "error", "updated_at",
)
_UPDATABLE = frozenset(_COLUMNS) - {"id"}
_INSERT = f"INSERT OR REPLACE INTO messages ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM messages"
_DELIVERY_COLUMNS = ("id", "account", "pdu", "created_at", "expires_at", "attempts", "kind")

Op = Callable[[sqlite3.Connection], Any]


def _row(record: MessageRecord) -> tuple:
    return (
        record.id, record.account, record.pdu, ",".join(record.route), record.state, record.upstream,
        record.upstream_id, record.attempts, record.created_at, record.not_before, record.expires_at,
        record.registered_delivery, record.error, record.updated_at,
    )


def _record(row: tuple) -> MessageRecord:
    values = dict(zip(_COLUMNS, row))
    values["route"] = values["route"].split(",") if values["route"] else []
    return MessageRecord(**values)


class SqliteStore(Store):
    def __init__(self, path: str, *, synchronous: str = "full", max_batch: int = 5000) -> None:
        if synchronous not in ("full", "normal"):
            raise ValueError("synchronous must be 'full' or 'normal'")
        self.path = path
        self.synchronous = synchronous
        self.max_batch = max_batch
        self.commits = 0
        self._queue: collections.deque[tuple[Op, asyncio.Future | None]] = collections.deque()
        self._wakeup = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_delivery_id = 1

    # ---- the writer thread --------------------------------------------------------------

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future = self._loop.create_future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="smpphub-sqlite", daemon=True)
        self._thread.start()
        await ready

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(_SCHEMA)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        elif version > SCHEMA_VERSION:
            raise RuntimeError(f"{self.path} was written by a newer smpphub (schema {version})")
        return db

    def _run(self, ready: asyncio.Future) -> None:
        loop = self._loop
        try:
            db = self._connect()
        except Exception as exc:  # noqa: BLE001 - reported to open()
            loop.call_soon_threadsafe(_fail, ready, exc)
            return
        self._next_delivery_id = (db.execute("SELECT MAX(id) FROM deliveries").fetchone()[0] or 0) + 1
        loop.call_soon_threadsafe(_succeed, ready, None)
        queue = self._queue
        while True:
            with self._wakeup:
                while not queue and not self._closing:
                    self._wakeup.wait()
                if not queue and self._closing:
                    break
            batch = []
            while queue and len(batch) < self.max_batch:
                batch.append(queue.popleft())
            self._execute(db, batch)
        db.close()

    def _execute(self, db: sqlite3.Connection, batch: list[tuple[Op, asyncio.Future | None]]) -> None:
        results: list[tuple[asyncio.Future | None, Any, BaseException | None]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for op, fut in batch:
                try:
                    results.append((fut, op(db), None))
                except sqlite3.Error as exc:  # one bad request fails alone
                    if fut is None:
                        log.error("store write failed: %s", exc)
                    results.append((fut, None, exc))
            db.execute("COMMIT")
            self.commits += 1
        except sqlite3.Error as exc:
            log.error("commit of %d requests failed: %s", len(batch), exc)
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            results = [(fut, None, exc) for _, fut in batch]
        if any(fut is not None for fut, _, _ in results):
            self._loop.call_soon_threadsafe(_complete, results)

    def _submit(self, op: Op, wait: bool = True) -> asyncio.Future | None:
        """Queue ``op`` for the writer; with ``wait`` a Future of its result, else None
        (a failure is then logged by the writer)."""
        if self._thread is None or self._closing:
            raise RuntimeError("the store is not open")
        fut = self._loop.create_future() if wait else None
        with self._wakeup:
            self._queue.append((op, fut))
            self._wakeup.notify()
        return fut

    async def close(self) -> None:
        if self._thread is None:
            return
        with self._wakeup:
            self._closing = True
            self._wakeup.notify()
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        self._thread = None

    # ---- messages ---------------------------------------------------------------------------

    async def add_messages(self, records: list[MessageRecord]) -> None:
        rows = [_row(r) for r in records]
        await self._submit(lambda db: db.executemany(_INSERT, rows) and None)

    def update(self, record_id: str, **fields: object) -> None:
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"unknown message fields {sorted(unknown)}")
        if "route" in fields:
            fields["route"] = ",".join(fields["route"])  # type: ignore[arg-type]
        sql = f"UPDATE messages SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?"
        values = (*fields.values(), record_id)
        self._submit(lambda db: db.execute(sql, values) and None, wait=False)

    async def get(self, record_id: str) -> MessageRecord | None:
        row = await self._submit(lambda db: db.execute(f"{_SELECT} WHERE id = ?", (record_id,)).fetchone())
        return _record(row) if row else None

    async def find_by_upstream_id(self, upstream: str, upstream_id: str) -> MessageRecord | None:
        row = await self._submit(
            lambda db: db.execute(f"{_SELECT} WHERE upstream = ? AND upstream_id = ? ORDER BY created_at DESC LIMIT 1", (upstream, upstream_id)).fetchone()
        )
        return _record(row) if row else None

    async def open_messages(self) -> list[MessageRecord]:
        rows = await self._submit(lambda db: db.execute(f"{_SELECT} WHERE state IN ('queued', 'sent') ORDER BY created_at").fetchall())
        return [_record(r) for r in rows]

    # ---- deliveries ---------------------------------------------------------------------------

    async def add_delivery(self, delivery: Delivery) -> int:
        return (await self.add_deliveries([delivery]))[0]

    async def add_deliveries(self, deliveries: list[Delivery]) -> list[int]:
        # ids come from our own counter (one hub process writes this file), so one
        # executemany inserts the lot
        first = self._next_delivery_id
        self._next_delivery_id += len(deliveries)
        ids = list(range(first, first + len(deliveries)))
        rows = [(i, d.account, d.pdu, d.created_at, d.expires_at, d.attempts, d.kind) for i, d in zip(ids, deliveries)]
        await self._submit(lambda db: db.executemany(
            "INSERT INTO deliveries (id, account, pdu, created_at, expires_at, attempts, kind) VALUES (?, ?, ?, ?, ?, ?, ?)", rows) and None)
        return ids

    def delete_delivery(self, delivery_id: int) -> None:
        self._submit(lambda db: db.execute("DELETE FROM deliveries WHERE id = ?", (delivery_id,)) and None, wait=False)

    async def flush(self) -> None:
        await self._submit(lambda db: None)

    async def pending_deliveries(self, account: str | None = None) -> list[Delivery]:
        cols = ", ".join(_DELIVERY_COLUMNS)
        if account is None:
            rows = await self._submit(lambda db: db.execute(f"SELECT {cols} FROM deliveries ORDER BY id").fetchall())
        else:
            rows = await self._submit(lambda db: db.execute(f"SELECT {cols} FROM deliveries WHERE account = ? ORDER BY id", (account,)).fetchall())
        return [Delivery(**dict(zip(_DELIVERY_COLUMNS, r))) for r in rows]

    # ---- housekeeping ----------------------------------------------------------------------------

    async def purge(self, older_than: float) -> int:
        final = tuple(MessageState.FINAL)
        marks = ", ".join("?" * len(final))
        return await self._submit(
            lambda db: db.execute(f"DELETE FROM messages WHERE state IN ({marks}) AND updated_at < ?", (*final, older_than)).rowcount
        )

    async def counts(self) -> dict[str, int]:
        rows = await self._submit(lambda db: db.execute("SELECT state, COUNT(*) FROM messages GROUP BY state").fetchall())
        return dict(rows)


def _succeed(fut: asyncio.Future, value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _fail(fut: asyncio.Future, exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


def _complete(results: list[tuple[asyncio.Future | None, Any, BaseException | None]]) -> None:
    for fut, value, exc in results:
        if fut is None or fut.done():
            continue
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)

