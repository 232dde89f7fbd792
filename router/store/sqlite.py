"""The embedded store: SQLite in WAL mode, written by one thread, group-committed.

The tables, indexes, migration and statements it runs are in
:mod:`~smpphub.router.store.sqlite_schema`; the writer thread in
:mod:`~smpphub.router.store.sqlite_writer`; the saves held for the writer's next batch
in :mod:`~smpphub.router.store.sqlite_saves`.

How a request travels
---------------------
The event loop never touches SQLite. Every request, writes and reads alike, is
appended to a loop-side list; once per event-loop turn that list is handed to the
writer thread (one lock, one wake-up), so everything asked for in one turn lands
in the same transaction. The writer thread owns the only ``sqlite3`` connection;
it takes everything queued (up to ``max_batch`` requests), runs it in ONE
transaction, commits once, and completes all the callers' Futures with ONE
``loop.call_soon_threadsafe``. Under load a commit carries thousands of messages,
so the fsync that makes them durable is paid once for all of them.

While the writer runs a batch, nothing more is handed to it: the loop keeps
collecting, and hands over what it has when the writer reports the batch done
(the requests would have waited in the queue for that moment anyway, so nothing
becomes durable later than before). :meth:`SqliteStore.save` and
:meth:`SqliteStore.save_durably` use that time: a message's saves are held by its
id until the hand-over, and a later save of the same message merges into the held
one (every column either sets, each with the later value), so a receipt the ESME
acknowledged before its row was written costs one UPDATE, not two. (An acknowledgement
that comes later deletes the message's row of ``receipts_owed`` and rewrites nothing of the
message: see :data:`~smpphub.router.store.sqlite_schema.RECEIPTS_OWED`.) A save nobody
waits for (:meth:`SqliteStore.save`) also waits for a transaction that happens anyway,
:data:`LAZY_SAVE_DELAY` (20 ms) at most, rather than being one of its own, and lets the
first hand-over after it go by: a message sent and given its receipt within one batch of
the writer is written once, its upstream id with its final state (callgrind over the
real store, insert, SENT, final with receipt, 56% acknowledged apart: the writer's
instructions a message 105,900 -> 83,800-89,600, when every receipt comes that soon;
unchanged when none does). Measured with
``python -m smpphub.bench.hub`` (2026-12-02, per-thread CPU of three alternating
runs): the writer thread's CPU per message fell from 46.2 to 40.6 us, 43% of the
acknowledgements merging into their receipt's write; the event loop's was unchanged.

Consecutive writes of the same kind (new messages, updates of the same fields,
new deliveries, deleted deliveries) are merged and written with one multi-row
statement per 1,024 rows rather than ``executemany``: every statement releases the
GIL and has to win it back from a busy event loop, which can take up to
``sys.getswitchinterval()`` each time, so the writer keeps the number of statements
per batch to a handful (see :class:`~smpphub.router.store.sqlite_writer.Shape`; a save's
update is an upsert, :func:`~smpphub.router.store.sqlite_writer.upsert_shape`). A batch
that is a single such statement runs without BEGIN/COMMIT (a lone statement is its own
transaction).

Reads go through the same queue and the same connection: a read sees every write
queued before it (the hub relies on that: it records an upstream_id with
:meth:`save`, fire-and-forget, and the receipt that looks it up may arrive a
millisecond later). The price is that a read waits for the commit in front of it.
A second, read-only connection in WAL mode would answer without that wait but
could not see writes still queued, so it is not used.

Housekeeping: :meth:`SqliteStore.purge` deletes finished messages created before a
time, in the order of the ``created_at`` index, 2,000 rows per transaction, so it never
holds the writer for long; :meth:`SqliteStore.purge_oldest` does the same whatever the age,
for the size cap (``store.max_size_mb``, measured by :meth:`SqliteStore.disk_usage`);
:meth:`SqliteStore.vacuum` gives freed pages back to the file system, a bounded number per
request (new files are created with ``auto_vacuum = INCREMENTAL``); :meth:`SqliteStore.counts`
scans the table (for status pages, not per message).

Durability
----------
``add_messages`` / ``add_deliveries`` return only after the COMMIT that holds them
returned. ``synchronous="full"`` (the default) fsyncs the WAL at every commit, so
what was acknowledged survives a power cut. ``synchronous="normal"`` does not
fsync at commit (only at checkpoints): an acknowledged write survives the process
being killed (SIGKILL, a crash: the WAL is in the OS page cache), but NOT a power
cut or kernel crash, which may lose the last commits. ``save_durably`` returns once its
commit did. ``save`` promises no moment: a crash can lose the last ``LAZY_SAVE_DELAY`` of
them, which the hub tolerates by design (a message whose SENT was lost is sent again, a
receipt whose acknowledgement was lost is delivered again: at least once).

Failures
--------
A request's Future succeeds if and only if its work was committed. If anything
in a batch fails (a constraint, a value SQLite cannot bind, disk full), the
transaction is rolled back and the batch run again with one SAVEPOINT per request:
the bad requests fail alone (their Futures get the exception; fire-and-forget
writes are logged and counted in :attr:`SqliteStore.errors`), the others commit.
If the COMMIT itself fails, every request of the batch fails. The writer thread
survives all of this and serves the next batch.

``commit_interval``
-------------------
When the writer is idle and a request arrives, it may wait up to this many seconds
for more before starting the transaction. Group commit already happens without it
(requests pile up while the previous commit is fsyncing); the wait only trades
latency for fewer commits at moderate load. ``benchmarks/store.py`` measures it:
on the reference machine waiting never helped throughput and costs every lone
caller that much latency, so the default is 0 (no timer at all).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import structlog

from . import sqlite_schema as schema
from .base import Delivery, HttpMeta, KeptAnswer, MessageQuery, MessageRow, Store
from .sqlite_saves import LAZY_SAVE_DELAY, HeldSaves
from .sqlite_schema import SCHEMA_VERSION
from .sqlite_writer import Row, SqliteWriter

__all__ = ["SqliteStore", "SCHEMA_VERSION", "LAZY_SAVE_DELAY", "StoreOpenError", "path_problem"]

T = TypeVar("T")
log = structlog.get_logger("smpphub.store")

_WAL_SIZE_LIMIT = 16 << 20  # bytes the -wal file is cut back to after a checkpoint (it counts towards max_size_mb)


class StoreOpenError(RuntimeError):
    """The store file cannot be opened or created; the message names the path and why."""


def path_problem(path: str) -> str | None:
    """Why SQLite could not open or create a store at ``path``, or None when nothing visible stands in the way.

    SQLite itself only says "unable to open database file"; this says which of the usual
    reasons it is. It creates nothing, so ``smpphub serve --check`` can ask it too. In WAL
    mode SQLite creates ``-wal`` and ``-shm`` files beside the store, so the folder must be
    writable even when the store file already exists.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        return "it is a directory, not a file"
    if not os.path.exists(folder):
        return f"the folder {folder} does not exist"
    if not os.path.isdir(folder):
        return f"{folder} is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is not writable (SQLite writes its -wal and -shm files beside the store)"
    if os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        return "the file is not readable and writable"
    return None


def _open_error(path: str, exc: BaseException) -> StoreOpenError:
    reason = path_problem(path) or (str(exc) if isinstance(exc, (sqlite3.Error, OSError)) else None)
    if reason is None:  # e.g. a schema newer than this smpphub: its message names the path already
        return StoreOpenError(str(exc))
    return StoreOpenError(f"cannot open the store {path}: {reason}")


class SqliteStore(Store):
    """The embedded :class:`Store` (see the module docstring for how it works).

    ``commits`` counts committed transactions, ``requests`` the requests they
    carried, ``errors`` the requests that failed. All methods must be called from
    the event loop that ran :meth:`open`. The thread, the queue and the group
    commit are a :class:`~smpphub.router.store.sqlite_writer.SqliteWriter`'s; this
    class holds the schema and the queries.
    """

    def __init__(self, path: str, *, commit_interval: float = 0.0, synchronous: str = "full",
                 max_batch: int = 5000) -> None:
        self._writer = SqliteWriter(path, self._prepare, commit_interval=commit_interval, synchronous=synchronous,
                                    max_batch=max_batch, gather=self._gather_saves)
        self._next_delivery_id = 1
        self._held = HeldSaves(self._writer)  # saves the writer has not been given yet

    @property
    def path(self) -> str:
        return self._writer.path

    @property
    def commit_interval(self) -> float:
        return self._writer.commit_interval

    @property
    def synchronous(self) -> str:
        return self._writer.synchronous

    @property
    def max_batch(self) -> int:
        return self._writer.max_batch

    @property
    def commits(self) -> int:
        return self._writer.commits

    @property
    def requests(self) -> int:
        return self._writer.requests

    @property
    def errors(self) -> int:
        return self._writer.errors

    # ---- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        if self._writer.running:
            raise RuntimeError("the store is already open")
        try:
            await self._writer.open()
        except (sqlite3.Error, OSError, RuntimeError) as exc:
            raise _open_error(self.path, exc) from exc

    async def close(self) -> None:
        """Commit everything queued and held (the writer drains the queue), stop the thread, close the file."""
        self._held.close()
        await self._writer.close()

    def _prepare(self, db: sqlite3.Connection) -> None:
        """On the writer's thread, before any request: the schema, and where delivery ids go on."""
        self._migrate(db)
        self._next_delivery_id = (db.execute("SELECT MAX(id) FROM deliveries").fetchone()[0] or 0) + 1

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{self.path} has schema version {version}; this smpphub knows up to {SCHEMA_VERSION}")
        self._auto_vacuum(db)
        has_messages = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages'").fetchone()
        steps = schema.FROM_VERSION_1 if has_messages and version == 1 else ""
        if has_messages and version in (1, 2, 3):
            steps += schema.FROM_VERSION_3
        if has_messages and version in (1, 2, 3, 4):
            steps += schema.FROM_VERSION_4
        # idempotent: CREATE ... IF NOT EXISTS
        steps += (schema.MESSAGES + schema.INDEXES + schema.RECEIPTS_OWED + schema.DELIVERIES + schema.HTTP
                  + schema.ANSWERS)
        if version != SCHEMA_VERSION:
            steps += f"PRAGMA user_version={SCHEMA_VERSION};"
        # one transaction, the new user_version included: a migration cut short (killed, disk
        # full) leaves the file as it was, and the next open migrates it again from the start
        db.executescript(f"BEGIN IMMEDIATE; {steps} COMMIT;")

    def _auto_vacuum(self, db: sqlite3.Connection) -> None:
        """A new file returns the pages purges free (see :meth:`vacuum`); an old one is left as it is.

        ``auto_vacuum`` can only be switched on before the first table is created. The
        writer has already put the file in WAL mode, which writes its header, so setting
        the pragma alone no longer takes: a VACUUM of the still empty file applies it
        (instant, there is nothing to copy). An existing file without it keeps working; its
        freed pages are reused by new messages but never returned, which is said once here.
        """
        # The WAL keeps the size of the biggest transaction since open (a purge, a burst) until
        # the store closes; past this it is cut back each time a checkpoint lets it restart.
        db.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}")
        if db.execute("PRAGMA auto_vacuum").fetchone()[0] != 0:
            return
        if db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0:
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            db.execute("VACUUM")
        else:
            log.info("store_without_auto_vacuum", path=self.path,
                     hint="freed pages are reused but the file never shrinks; "
                          "an offline `PRAGMA auto_vacuum = INCREMENTAL; VACUUM;` turns it on")

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Run ``fn`` on the writer's connection, behind every request (and save) made before it."""
        self._held.queue_all()
        return self._writer.read(fn)

    # ---- messages ----------------------------------------------------------------------------------

    async def add_messages(self, rows: list[MessageRow]) -> None:
        if not rows:
            return
        values = schema.new_messages_values(rows)
        if values is not None:  # messages just accepted: their defaults left to SQLite
            try:
                await self._writer.write(schema.INSERT_NEW_MESSAGES, values)
                return
            except sqlite3.IntegrityError as exc:
                if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
                    raise
                # an id stored already: these rows replace theirs whole, as rows that lived do
        await self._write_whole(rows)

    def save(self, rows: Iterable[MessageRow]) -> None:
        self._held.keep(rows, None)

    def save_durably(self, rows: list[MessageRow]) -> asyncio.Future[None]:
        """The rows' saves; a Future that fails if any of them failed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if rows:
            self._held.keep(rows, done)
        else:
            done.set_result(None)
        return done

    def _gather_saves(self, commit_coming: bool) -> None:
        """The writer takes its next batch: the held saves that are due go into it."""
        self._held.gather(commit_coming)

    async def save_message(self, row: MessageRow) -> None:
        await self._write_whole([row])

    async def _write_whole(self, rows: list[MessageRow]) -> None:
        """Every column of ``rows``, and their rows of receipts_owed, in one transaction."""
        values = [schema.message_values(r) for r in rows]
        owed = [(r.id,) for r in rows if r.receipt_owed]
        settled = [(r.id,) for r in rows if not r.receipt_owed]

        def write(db: sqlite3.Connection) -> None:
            schema.INSERT_MESSAGES.run(db, values)
            if owed:
                schema.OWED_ADD.run(db, owed)
            if settled:
                schema.OWED_DROP.run(db, settled)

        await self._read(write)  # behind the saves held from before: they must not overwrite these rows

    async def flush(self) -> None:
        await self._read(_nothing)

    async def get(self, message_id: str) -> MessageRow | None:
        return await self._read(lambda db: schema.message_or_none(db.execute(schema.GET, (message_id,)).fetchone()))

    async def find_by_upstream_id(self, upstream: str, upstream_id: str) -> MessageRow | None:
        return await self._read(
            lambda db: schema.message_or_none(db.execute(schema.BY_UPSTREAM, (upstream, upstream_id)).fetchone()))

    async def open_messages(self) -> list[MessageRow]:
        return await self._read(lambda db: [schema.message_from_row(r) for r in db.execute(schema.OPEN)])

    async def owed_receipts(self, account: str | None = None) -> list[MessageRow]:
        if account is None:
            return await self._read(lambda db: [schema.message_from_row(r) for r in db.execute(schema.OWED)])
        return await self._read(
            lambda db: [schema.message_from_row(r) for r in db.execute(schema.OWED_BY_ACCOUNT, (account,))])

    # ---- the backlog ---------------------------------------------------------------------------------

    def spill(self, message_ids: list[str]) -> None:
        if message_ids:
            self._writer.write(schema.SPILL, tuple((i,) for i in message_ids), wait=False)

    async def spill_open(self) -> int:
        def spill_all(db: sqlite3.Connection) -> int:
            db.execute(schema.SPILL_OPEN)
            return int(db.execute("SELECT COUNT(*) FROM messages WHERE spilled = 1").fetchone()[0])

        return await self._read(spill_all)

    async def take_spilled(self, due_before: float, limit: int) -> list[MessageRow]:
        def take(db: sqlite3.Connection) -> list[MessageRow]:
            rows = [schema.message_from_row(r) for r in db.execute(schema.TAKE_SPILLED, (due_before, limit))]
            if rows:
                # one statement whatever the count: ids as a JSON array, not limit placeholders
                db.execute("UPDATE messages SET spilled = 0 WHERE id IN (SELECT value FROM json_each(?))",
                           (json.dumps([r.id for r in rows]),))
            return rows

        return await self._read(take)

    # ---- deliveries -----------------------------------------------------------------------------------

    async def add_delivery(self, delivery: Delivery) -> int:
        return (await self.add_deliveries([delivery]))[0]

    async def add_deliveries(self, deliveries: list[Delivery]) -> list[int]:
        # Ids come from our own counter (one process writes this file; it starts past
        # MAX(id) at open), so the rows go in with one multi-row INSERT like the messages.
        if not deliveries:
            return []
        first = self._next_delivery_id
        self._next_delivery_id = first + len(deliveries)
        ids = list(range(first, first + len(deliveries)))
        rows: list[Row] = [(i, d.account, d.pdu, d.created_at, d.expires_at, d.attempts, d.kind)
                           for i, d in zip(ids, deliveries, strict=True)]
        await self._writer.write(schema.INSERT_DELIVERIES, rows)
        return ids

    def delete_delivery(self, delivery_id: int) -> None:
        self._writer.write(schema.DELETE_DELIVERIES, ((delivery_id,),), wait=False)

    async def pending_deliveries(self, account: str | None = None) -> list[Delivery]:
        if account is None:
            every = f"{schema.SELECT_DELIVERIES} ORDER BY id"
            return await self._read(lambda db: [schema.delivery_from_row(r) for r in db.execute(every)])
        by_account = f"{schema.SELECT_DELIVERIES} WHERE account = ? ORDER BY id"
        return await self._read(lambda db: [schema.delivery_from_row(r) for r in db.execute(by_account, (account,))])

    async def take_spilled_by_id(self, message_ids: list[str]) -> list[MessageRow]:
        ids = json.dumps(message_ids)

        def take(db: sqlite3.Connection) -> list[MessageRow]:
            rows = [schema.message_from_row(r) for r in db.execute(
                f"{schema.SELECT} WHERE spilled = 1 AND id IN (SELECT value FROM json_each(?))", (ids,))]
            if rows:
                db.execute("UPDATE messages SET spilled = 0 WHERE id IN (SELECT value FROM json_each(?))",
                           (json.dumps([r.id for r in rows]),))
            return rows

        return await self._read(take)

    # ---- what the HTTP API keeps ----------------------------------------------------------------------

    def add_http_meta(self, metas: list[HttpMeta]) -> None:
        if metas:
            rows: list[Row] = [(m.id, m.message, m.account, json.dumps(m.parts), m.callback_url, m.reference,
                                m.kannel, m.created_at) for m in metas]
            self._writer.write(schema.INSERT_HTTP, rows, wait=False)

    async def http_meta(self, message_id: str) -> HttpMeta | None:
        def get(db: sqlite3.Connection) -> HttpMeta | None:
            r = db.execute(schema.GET_HTTP, (message_id,)).fetchone()
            if r is None:
                return None
            return HttpMeta(id=r[0], message=r[1], account=r[2], parts=json.loads(r[3]), callback_url=r[4],
                            reference=r[5], kannel=r[6], created_at=r[7])

        return await self._read(get)

    async def find_messages(self, query: MessageQuery) -> list[MessageRow]:
        """Newest first through the created_at index, the account and state checked in SQL, the
        destination (inside the stored PDU) in Python; ``query.scan`` rows at most."""
        where = ["account = ?"]
        args: list[object] = [query.account]
        if query.state is not None:
            where.append("state = ?")
            args.append(query.state.value)
        if query.since is not None:
            where.append("created_at >= ?")
            args.append(query.since)
        if query.until is not None:
            where.append("created_at < ?")
            args.append(query.until)
        sql = f"{schema.SELECT} WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT ?"
        args.append(query.scan)

        def find(db: sqlite3.Connection) -> list[MessageRow]:
            found: list[MessageRow] = []
            for r in db.execute(sql, args):
                row = schema.message_from_row(r)
                if query.matches(row):
                    found.append(row)
                    if len(found) >= query.limit:
                        break
            return found

        return await self._read(find)

    def keep_answer(self, answer: KeptAnswer) -> None:
        row: Row = (answer.account, answer.key, answer.fingerprint, answer.status, answer.body, answer.expires)
        self._writer.write(schema.KEEP_ANSWER, [row], wait=False)

    def forget_answer(self, account: str, key: str) -> None:
        def forget(db: sqlite3.Connection) -> None:
            db.execute(schema.FORGET_ANSWER, (account, key))

        self._read(forget)  # queued behind the writes before it; nobody waits for it

    async def kept_answer(self, account: str, key: str) -> KeptAnswer | None:
        def get(db: sqlite3.Connection) -> KeptAnswer | None:
            r = db.execute(schema.KEPT_ANSWER, (account, key, time.time())).fetchone()
            if r is None:
                return None
            return KeptAnswer(account=account, key=key, fingerprint=r[0], status=r[1], body=r[2], expires=r[3])

        return await self._read(get)

    # ---- housekeeping -------------------------------------------------------------------------------

    async def purge(self, older_than: float) -> int:
        """Delete final messages (no receipt owed) created before ``older_than``, a chunk per transaction."""
        args = (older_than,)
        total = 0
        while True:
            n = await self._read(lambda db: db.execute(schema.PURGE, args).rowcount)
            total += n
            if n < schema.PURGE_CHUNK:
                if total:
                    await self._read(_purge_http)
                await self._read(_purge_answers)
                return total

    async def purge_oldest(self, limit: int) -> int:
        """Delete up to ``limit`` final messages (no receipt owed), oldest first whatever their age."""
        def purge(db: sqlite3.Connection) -> int:
            n = int(db.execute(schema.PURGE_OLDEST, (limit,)).rowcount)
            if n:
                _purge_http(db)
            return n

        return await self._read(purge)

    async def disk_usage(self) -> int:
        """Bytes of the file's pages in use, plus the WAL.

        Free pages are left out: a file without ``auto_vacuum`` never gives them back,
        and counting them would make the size cap purge everything without shrinking
        anything; they are reused before the file grows again.
        """
        def usage(db: sqlite3.Connection) -> int:
            pages = db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
            return int(pages * db.execute("PRAGMA page_size").fetchone()[0])

        used = await self._read(usage)
        try:
            return used + os.path.getsize(self.path + "-wal")
        except OSError:  # no WAL yet (or any more)
            return used

    async def vacuum(self, pages: int) -> int:
        """Return up to ``pages`` free pages to the file system (new files only); how many were returned.

        One ``PRAGMA incremental_vacuum(1)`` per page: Python's ``execute`` steps a
        statement once, and this pragma frees one page per step (~16 us a page
        measured, so 1,024 pages hold the writer ~16 ms).
        """
        def shrink(db: sqlite3.Connection) -> int:
            if db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
                return 0
            free = min(pages, int(db.execute("PRAGMA freelist_count").fetchone()[0]))
            for _ in range(free):
                db.execute("PRAGMA incremental_vacuum(1)")
            return free

        return await self._read(shrink)

    async def counts(self) -> dict[str, int]:
        by_state = "SELECT state, COUNT(*) FROM messages GROUP BY state"
        return await self._read(lambda db: dict(db.execute(by_state)))


def _purge_http(db: sqlite3.Connection) -> None:
    """The HTTP rows of purged messages go too; a hub without HTTP messages pays one indexed read."""
    if db.execute("SELECT 1 FROM http_messages LIMIT 1").fetchone() is not None:
        db.execute(schema.PURGE_HTTP)


def _purge_answers(db: sqlite3.Connection) -> None:
    """Idempotent answers past their expiry go (one indexed read when there are none)."""
    if db.execute("SELECT 1 FROM idempotency LIMIT 1").fetchone() is not None:
        db.execute("DELETE FROM idempotency WHERE expires <= ?", (time.time(),))


def _nothing(db: sqlite3.Connection) -> None:
    return None
