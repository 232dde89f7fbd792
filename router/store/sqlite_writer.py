"""A group-committing SQLite writer: one thread, one connection, one transaction per batch.

The machinery under :class:`~smpphub.router.store.sqlite.SqliteStore`, kept apart from
it because it knows nothing about messages: it runs reads (any function of the
connection) and writes (rows of a :class:`Shape`) that the event loop queues, in
the order they were queued, on one connection owned by one thread. The module
docstring of :mod:`smpphub.router.store.sqlite` tells how a request travels, what
is durable when, and what happens when a batch fails; this module is that story's code.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any, Literal, TypeVar, overload

import structlog

__all__ = ["SqliteWriter", "Shape", "insert_shape", "update_shape", "upsert_shape", "Row", "Rows", "SqlRow", "ReadFn"]

log = structlog.get_logger("smpphub.store")

_MAX_CHUNK = 1024  # rows per statement (fewer when SQLITE_LIMIT_VARIABLE_NUMBER is low)
_UPDATE_FROM = sqlite3.sqlite_version_info >= (3, 33, 0)
with sqlite3.connect(":memory:") as _probe:  # the library's compile-time limit, the same for every connection
    _VARIABLE_LIMIT = _probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
_probe.close()


def _as_is(value: bytes | None) -> bytes | None:
    return value


# Python's sqlite3 binds int, float, str and bytearray directly, but sends every other value
# (bytes and None among them) through its adapter registry, which, finding nothing, looks for
# two attributes that do not exist and formats an AttributeError message for each (CPython
# 3.11, Modules/_sqlite/microprotocols.c): about 3,300 instructions a value, 4.3 values a
# message (the message's bytes, its receipt, expires_at, padding NULLs), an eighth
# of the writer's work. Registered, they are handed back unchanged: what is bound is the
# same, process-wide, for any user of the module. (Registering int, float or str would make
# every value go through the registry; bytes and None do not.)
sqlite3.register_adapter(bytes, _as_is)
sqlite3.register_adapter(type(None), _as_is)


T = TypeVar("T")
#: one row's values for a statement, in its columns' order (an update's end with the id)
Row = tuple[object, ...]
#: the rows of one write
Rows = Sequence[Row]
#: a row as SQLite returns it: each value of its column's type (the functions reading one know which)
SqlRow = tuple[Any, ...]
#: a read or any other work for the writer: runs on its connection, returns the request's result
ReadFn = Callable[[sqlite3.Connection], object]
#: what the writer does to a new connection before serving (create or migrate a schema, read counters)
Prepare = Callable[[sqlite3.Connection], None]


class Shape:
    """One kind of write, and how to run any number of them in as few statements as possible.

    Every statement the writer runs releases the GIL and must take it back, which
    costs up to ``sys.getswitchinterval()`` (5 ms) while the event loop is busy; so
    rows go in as one multi-row statement per ``chunk`` rows (``INSERT ... SELECT *
    FROM (VALUES (...), (...))``, ``UPDATE ... FROM (VALUES ...)``, ``DELETE ... IN
    (...)``), not one ``executemany`` step per row. Statements are made for a few
    sizes only (see :func:`padded_size`: the connection's statement cache keeps them
    all) and the rest is padded with rows whose id is NULL, which match or insert nothing. Their
    other values are 0, not NULL: sqlite3 binds an int as it is, but None through its
    adapter registry (see ``_as_is``). Measured with callgrind over the real store, the
    hub's writes in turns of 100 messages (padded to 128): 90,900 -> 83,200 instructions a
    message in the writer, NULL everywhere -> NULL ids only.
    """

    __slots__ = ("kind", "width", "template", "legacy", "fields", "sqls", "chunk", "pad", "id_at", "then", "base",
                 "after")

    def __init__(self, kind: str, width: int, template: str, legacy: str | None = None,
                 fields: tuple[str, ...] = (), id_at: int = 0, then: Shape | None = None,
                 base: Shape | None = None, after: str | None = None) -> None:
        self.kind = kind  # "insert" | "update" | "delete"
        self.fields = fields  # the columns it writes, for an insert or an update (a row's values, in order)
        self.width = width  # parameters per row
        self.template = template  # {values}: the rows' placeholders
        self.legacy = legacy  # per-row SQL for executemany when UPDATE FROM is missing
        self.sqls: dict[int, str] = {}
        chunk = _MAX_CHUNK
        while chunk > 1 and chunk * width > _VARIABLE_LIMIT:
            chunk //= 2
        self.chunk = 1 if legacy is not None else chunk  # rows per statement
        pad_row: list[object] = [0] * width
        pad_row[id_at] = None  # id_at: where a row's id is among its values (an update's is last)
        self.pad = pad_row * self.chunk
        self.id_at = id_at
        # a write of one value a row, each row's id, run after this one in the same request: a
        # table keyed by the same id kept in step (it commits or fails with this write)
        self.then = then
        self.base: Shape = self if base is None else base  # the same write without ``then``
        # a statement run after the rows' statements, in the same request (upsert_shape's: the
        # rows it inserted because their id was not stored go again)
        self.after = after

    def followed_by(self, then: Shape) -> Shape:
        """This write, then ``then`` of the same rows' ids, as one request."""
        return Shape(self.kind, self.width, self.template, self.legacy, self.fields, self.id_at, then, self, self.after)

    def run(self, db: sqlite3.Connection, rows: Rows) -> None:
        self.base.write(db, rows)
        self.run_then(db, rows)

    def run_then(self, db: sqlite3.Connection, rows: Rows) -> None:
        """``then`` of the rows' ids, if this write has one."""
        if self.then is not None:
            id_at = self.id_at
            self.then.run(db, [(row[id_at],) for row in rows])

    def write(self, db: sqlite3.Connection, rows: Rows) -> None:
        """The rows, in as few multi-row statements as the chunk allows (``then`` aside)."""
        if self.legacy is not None:
            db.executemany(self.legacy, rows)
            return
        if self.kind == "update" and len(rows) > 1:
            # UPDATE FROM applies one arbitrary source row per target: keep the last
            # update of each id (the same fields, so that is what running them in order does)
            rows = list({row[-1]: row for row in rows}.values())
        chunk, width = self.chunk, self.width
        for i in range(0, len(rows), chunk):
            part = rows[i:i + chunk]
            n = len(part)
            k = padded_size(n)
            sql = self.sqls.get(k)
            if sql is None:
                placeholders = "(" + ", ".join("?" * width) + ")"
                sql = self.sqls[k] = self.template.format(values=", ".join([placeholders] * k))
            params = list(chain.from_iterable(part))
            if k > n:
                params += self.pad[:width * (k - n)]
            cursor = db.execute(sql, params)
            if self.kind == "insert" and cursor.rowcount != n:
                raise sqlite3.IntegrityError(f"{cursor.rowcount} of {n} rows inserted (a row without an id?)")
        if self.after is not None:
            db.execute(self.after)


def padded_size(n: int) -> int:
    """The rows of the statement that writes ``n`` rows: a power of two up to 16, then four
    sizes per doubling (20, 24, 28, 32, 40, ..., 896, 1024), 29 statements per shape up to
    1,024 rows. A padding row costs the writer nearly what a real one does (its values bound,
    the VALUES row materialized, its id looked up); rounding up to a power of two padded a
    quarter of the rows on average. Measured with callgrind over the real store, the hub's
    writes in turns of 100 messages: 77,900 -> 75,400 instructions a message in the writer.
    The price is memory, once every size has been used: the prepared statements of the 29
    sizes of the new messages' insert take 9.2 MB (RSS), those of the 11 powers of two 4.1."""
    if n <= 16:
        return 1 << (n - 1).bit_length()
    step = 1 << ((n - 1).bit_length() - 3)
    return -(-n // step) * step


def insert_shape(table: str, columns: tuple[str, ...], verb: str = "INSERT") -> Shape:
    """Rows inserted into ``table`` (``verb``: ``INSERT OR REPLACE`` to replace rows with the same key)."""
    cols = ", ".join(columns)
    # the padding rows' ids are NULL; a real row always has its id (checked by rowcount)
    return Shape("insert", len(columns),
                 f"{verb} INTO {table} ({cols}) SELECT * FROM (VALUES {{values}}) WHERE column1 IS NOT NULL",
                 fields=columns)


def update_shape(table: str, fields: tuple[str, ...]) -> Shape:
    """``fields`` of rows of ``table`` updated by id: each row's values end with the id."""
    sets = ", ".join(f"{f} = v.column{i}" for i, f in enumerate(fields, 1))
    legacy = None if _UPDATE_FROM else f"UPDATE {table} SET {', '.join(f'{f} = ?' for f in fields)} WHERE id = ?"
    return Shape(
        "update", len(fields) + 1,
        f"UPDATE {table} SET {sets} FROM (VALUES {{values}}) AS v WHERE {table}.id = v.column{len(fields) + 1}",
        legacy, fields, id_at=-1,
    )


def upsert_shape(table: str, fields: tuple[str, ...], stub: tuple[tuple[str, str], ...], gone: str) -> Shape:
    """What :func:`update_shape` writes, as ``INSERT ... ON CONFLICT (id) DO UPDATE``.

    SQLite runs ``UPDATE ... FROM (VALUES ...)`` in two passes: the VALUES rows copied
    into a temporary table, each joined to its row through the id's index into a second
    one, then the rows rewritten. An upsert takes each VALUES row once: its insert meets
    the id already stored and updates that row instead. Measured with callgrind over the
    real store, the hub's write pattern (insert, SENT and final merged, 56% of the
    acknowledgements apart, 256 messages a transaction): 72,700 -> 66,400 instructions a
    message in the writer (two runs each, the same sitting).

    An id not stored is inserted, though, where an UPDATE changes nothing: such a row is
    given ``stub`` (each NOT NULL column without a default that the save does not set,
    with an SQL value marking it; SQLite checks NOT NULL before it looks for the id), and
    ``gone``, run after the rows in the same transaction, deletes it again. Checking that
    the id is stored (``WHERE id IN (SELECT id FROM ...)``) cost more than the upsert saves.
    Without UPDATE FROM (SQLite before 3.33), :func:`update_shape`'s per-row UPDATE.
    """
    if not _UPDATE_FROM:
        return update_shape(table, fields)
    k = len(fields) + 1  # the id's column in the VALUES rows
    columns = ", ".join(("id", *(column for column, _ in stub), *fields))
    picked = ", ".join((f"column{k}", *(value for _, value in stub), *(f"column{i}" for i in range(1, k))))
    sets = ", ".join(f"{f} = excluded.{f}" for f in fields)
    # WHERE: the padding rows (NULL ids) go nowhere; it also tells the parser that ON CONFLICT is the upsert's
    return Shape("update", k, f"INSERT INTO {table} ({columns}) SELECT {picked} FROM (VALUES {{values}}) "
                              f"WHERE column{k} IS NOT NULL ON CONFLICT (id) DO UPDATE SET {sets}",
                 fields=fields, id_at=-1, after=gone)


# A queued request: (shape, rows, future) for a write (``shape.run(connection, rows)``),
# or (None, fn, future) for anything else: fn(connection) -> the Future's result.
# future is None for fire-and-forget writes. Each read's Future has its own result
# type (see SqliteWriter.read); the queue holds reads of every kind, so here it is Future[Any].
WriteRequest = tuple[Shape, "Rows", "asyncio.Future[None] | None"]
ReadRequest = tuple[None, "ReadFn", "asyncio.Future[Any]"]
Request = WriteRequest | ReadRequest
#: what the writer hands back to the loop for a request: its Future, the value, the error
Outcome = tuple["asyncio.Future[Any] | None", object, BaseException | None]


class SqliteWriter:
    """The one thread and connection that run every request of one SQLite file, a batch per transaction.

    ``commits`` counts committed transactions, ``requests`` the requests they
    carried, ``errors`` the requests that failed. ``prepare`` runs on the writer's
    thread once the connection is open (WAL, ``synchronous``), before any request:
    the owner's schema. All methods must be called from the event loop that ran :meth:`open`.

    While the writer runs a batch, the loop keeps what it is asked for and hands it
    over when that batch is done (the batch after it would take it then anyway), calling
    ``gather(commit_coming)`` first: the owner's writes that are still open to change (the
    SQLite store merges the saves of one message there) are queued at that moment, not
    before; ``commit_coming`` says whether a transaction follows anyway (requests are
    pending, or the writer is closing), so writes nobody waits for can ride along with it.
    """

    def __init__(self, path: str, prepare: Prepare, *, commit_interval: float = 0.0, synchronous: str = "full",
                 max_batch: int = 5000, gather: Callable[[bool], None] | None = None) -> None:
        synchronous = synchronous.lower()
        if synchronous not in ("full", "normal"):
            raise ValueError("synchronous must be 'full' or 'normal'")
        if commit_interval < 0:
            raise ValueError("commit_interval must be >= 0")
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.path = path
        self.prepare = prepare
        self.commit_interval = commit_interval
        self.synchronous = synchronous
        self.max_batch = max_batch
        self.commits = 0
        self.requests = 0
        self.errors = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closing = False  # no new requests; the writer drains the queue and stops
        # loop side: requests of the current turn, handed over once per turn
        self._pending: list[Request] = []
        self._handoff_scheduled = False
        self._gather = gather
        # shared with the writer, under _cond
        self._queue: collections.deque[Request] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._busy = False  # the writer is running a batch
        self._held = False  # the loop kept requests back while it was: call it when done
        self._deferred = False  # loop side: _held is set, the writer's callback hands over

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True from :meth:`open` until :meth:`close` (the thread is up)."""
        return self._thread is not None

    async def open(self) -> None:
        """Start the thread and open the connection; raises what opening or ``prepare`` raised."""
        if self._thread is not None:
            raise RuntimeError("the store is already open")
        self._loop = asyncio.get_running_loop()
        self._closing = False
        self._busy = self._held = self._deferred = False
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="smpphub-sqlite", daemon=True)
        self._thread.start()
        try:
            await ready
        except BaseException:
            await self._loop.run_in_executor(None, self._thread.join)
            self._thread = None
            raise

    async def close(self) -> None:
        """Commit everything queued (the writer drains the queue), stop the thread, close the file."""
        thread = self._thread
        if thread is None:
            return
        self._handoff(force=True)
        with self._cond:
            self._closing = True
            self._cond.notify()
        await asyncio.get_running_loop().run_in_executor(None, thread.join)
        self._thread = None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True, cached_statements=512)
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                log.warning("store_not_wal", path=self.path, journal_mode=mode)
            db.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
            db.execute("PRAGMA busy_timeout=5000")
            db.execute("PRAGMA cache_size=-32768")  # 32 MiB of page cache keeps the indexes hot
            db.execute("PRAGMA temp_store=MEMORY")
            self.prepare(db)
        except BaseException:
            db.close()
            raise
        return db

    # ---- the writer thread ---------------------------------------------------------------------

    def _run(self, ready: asyncio.Future[None]) -> None:
        loop = self._loop
        assert loop is not None
        try:
            db = self._connect()
        except BaseException as exc:  # noqa: BLE001 - reported to open()
            loop.call_soon_threadsafe(_fail, ready, exc)
            return
        loop.call_soon_threadsafe(_succeed, ready, None)
        queue, cond, interval, max_batch = self._queue, self._cond, self.commit_interval, self.max_batch
        try:
            while True:
                with cond:
                    if not queue:
                        if self._closing:
                            break
                        while not queue and not self._closing:
                            cond.wait()
                        if not queue:
                            break
                        if interval:  # we were idle: give the rest of the burst a moment to arrive
                            deadline = time.monotonic() + interval
                            while len(queue) < max_batch and not self._closing:
                                left = deadline - time.monotonic()
                                if left <= 0:
                                    break
                                cond.wait(left)
                    if len(queue) <= max_batch:
                        batch = list(queue)
                        queue.clear()
                    else:
                        batch = [queue.popleft() for _ in range(max_batch)]
                    self._busy = True
                try:
                    results = self._execute(db, batch)
                except BaseException as exc:  # noqa: BLE001 - a bug, not SQLite: fail this batch, keep serving
                    log.exception("store_batch_crashed", path=self.path, requests=len(batch))
                    results = [(req[2], None, exc) for req in batch]
                with cond:
                    self._busy = False
                    held, self._held = self._held, False
                self._complete(results, held)
        except BaseException:  # noqa: BLE001
            log.exception("store_writer_stopped", path=self.path)
            raise
        finally:
            # whatever is left will never run: fail it rather than leave callers hanging
            with cond:
                self._closing = True
                stranded = list(queue)
                queue.clear()
            if stranded:
                closed = RuntimeError("the store was closed")
                self._complete([(req[2], None, closed) for req in stranded])
            try:
                db.close()
            except sqlite3.Error:
                log.exception("store_close_failed", path=self.path)

    def _complete(self, results: list[Outcome], held: bool = False) -> None:
        """Hand the outcomes to the loop, and take what it held back (``held``): one callback for both."""
        waited: list[tuple[asyncio.Future[Any], object, BaseException | None]] = [
            (fut, value, exc) for fut, value, exc in results if fut is not None]
        if waited or held:
            assert self._loop is not None  # the writer runs only between open() and close()
            try:
                self._loop.call_soon_threadsafe(self._batch_done, waited, held)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

    def _batch_done(self, waited: list[tuple[asyncio.Future[Any], object, BaseException | None]], held: bool) -> None:
        """On the loop: a batch is committed (or failed); its callers hear it, and what waited goes in."""
        if waited:
            _complete(waited)
        if held:
            self._deferred = False
            self._handoff()

    def _execute(self, db: sqlite3.Connection, batch: list[Request]) -> list[Outcome]:
        """Run ``batch`` in one transaction; the outcome of every request."""
        try:
            results = self._fast(db, batch)
        except Exception as exc:  # noqa: BLE001
            _rollback(db)
            log.warning("store_batch_failed", requests=len(batch), error=f"{type(exc).__name__}: {exc}",
                        action="isolating the failing requests")
            return self._isolated(db, batch)
        self.commits += 1
        self.requests += len(batch)
        return results

    def _fast(self, db: sqlite3.Connection, batch: list[Request]) -> list[Outcome]:
        """Everything in one transaction, consecutive writes of one shape merged; raises on any error.

        Writes that differ only in their ``then`` (Shape.base) merge too: one statement for the
        rows of them all, then each request's ``then`` in order (at a batch of 20 messages, a
        statement of its own cost the writer 3,000 instructions a message)."""
        # merge runs of the same shape: the request (its rows those of the whole run, its shape
        # the base one), first, end
        runs: list[tuple[Request, int, int]] = []
        n = len(batch)
        i = 0
        while i < n:
            req = batch[i]
            j = i + 1
            if req[0] is not None:
                base = req[0].base
                while j < n:
                    nxt = batch[j]
                    if nxt[0] is None or nxt[0].base is not base:
                        break
                    j += 1
                if j > i + 1:
                    rows = list(req[1])
                    for k in range(i + 1, j):
                        nxt = batch[k]
                        if nxt[0] is not None:  # always, in a run of writes
                            rows += nxt[1]
                    req = (base, rows, req[2])
            runs.append((req, i, j))
            i = j
        # one write statement needs no BEGIN/COMMIT around it (it is atomic and durable
        # on its own): two fewer trips through the GIL (a write followed by another is two)
        only = runs[0][0] if len(runs) == 1 else None
        single = (only is not None and only[0] is not None and only[0].then is None and only[0].after is None
                  and len(only[1]) <= only[0].chunk and all(req[0] is only[0] for req in batch))
        if not single:
            db.execute("BEGIN IMMEDIATE")
        results: list[Outcome] = []
        for req, i, j in runs:
            if req[0] is None:
                results.append((req[2], req[1](db), None))
            elif j == i + 1:
                req[0].run(db, req[1])
                if req[2] is not None:
                    results.append((req[2], None, None))
            else:
                req[0].run(db, req[1])  # the base shape: the rows of the whole run
                for k in range(i, j):
                    part = batch[k]
                    if part[0] is not None:  # always, in a run of writes
                        part[0].run_then(db, part[1])
                    if part[2] is not None:
                        results.append((part[2], None, None))
        if not single:
            db.execute("COMMIT")
        return results

    def _isolated(self, db: sqlite3.Connection, batch: list[Request]) -> list[Outcome]:
        """The slow path after a failed batch: one SAVEPOINT per request, so the bad ones fail alone."""
        results: list[Outcome] = []
        failed = 0
        try:
            db.execute("BEGIN IMMEDIATE")
            for req in batch:
                fut = req[2]
                db.execute("SAVEPOINT req")
                try:
                    value: object = None
                    if req[0] is None:
                        value = req[1](db)
                    else:
                        req[0].run(db, req[1])
                except Exception as exc:  # noqa: BLE001 - this request fails, the others go on
                    if not db.in_transaction:
                        # SQLite rolled the whole transaction back (disk full, I/O error):
                        # nothing done so far in it survives
                        raise
                    db.execute("ROLLBACK TO req")
                    db.execute("RELEASE req")
                    self._failed(req, exc)
                    failed += 1
                    results.append((fut, None, exc))
                else:
                    db.execute("RELEASE req")
                    results.append((fut, value, None))
            db.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - the transaction is lost: every request of it fails
            _rollback(db)
            log.error("store_transaction_failed", requests=len(batch), error=f"{type(exc).__name__}: {exc}")
            self.errors += len(batch) - failed
            return [(req[2], None, exc) for req in batch]
        self.commits += 1
        self.requests += len(batch)
        return results

    def _failed(self, req: Request, exc: BaseException) -> None:
        self.errors += 1
        what: str = req[0].template.split(" (")[0] if req[0] is not None else getattr(req[1], "__name__", "request")
        if req[2] is None:
            log.error("store_write_lost", request=what, error=f"{type(exc).__name__}: {exc}")
        else:
            log.warning("store_request_failed", request=what, error=f"{type(exc).__name__}: {exc}")

    # ---- the loop side ---------------------------------------------------------------------------

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue ``fn`` to run on the writer's connection; its Future gives what ``fn`` returns."""
        loop = self.open_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue_request((None, fn, fut), loop)
        return fut

    @overload
    def write(self, shape: Shape, rows: Rows) -> asyncio.Future[None]: ...

    @overload
    def write(self, shape: Shape, rows: Rows, wait: Literal[False]) -> None: ...

    def write(self, shape: Shape, rows: Rows, wait: bool = True) -> asyncio.Future[None] | None:
        """Queue a write of ``rows``; its Future (None when not ``wait``: fire and forget)."""
        loop = self.open_loop()
        fut: asyncio.Future[None] | None = loop.create_future() if wait else None
        self._queue_request((shape, rows, fut), loop)
        return fut

    def open_loop(self) -> asyncio.AbstractEventLoop:
        """The loop the writer serves; RuntimeError when the writer is not open."""
        if self._thread is None or self._closing or self._loop is None:
            raise RuntimeError("the store is not open")
        return self._loop

    def _queue_request(self, request: Request, loop: asyncio.AbstractEventLoop) -> None:
        """Keep ``request`` for this turn's hand-over."""
        self._pending.append(request)
        self._handoff_soon(loop)

    def wake(self) -> None:
        """Hand over at the end of this turn: ``gather`` has something to queue now (RuntimeError once closed)."""
        self._handoff_soon(self.open_loop())

    def _handoff_soon(self, loop: asyncio.AbstractEventLoop) -> None:
        """A hand-over at the end of this turn, unless one is asked for already or the writer's
        end-of-batch callback will make it (``_deferred``)."""
        if not self._handoff_scheduled and not self._deferred:
            self._handoff_scheduled = True
            loop.call_soon(self._handoff)

    def _handoff(self, force: bool = False) -> None:
        """Give the writer everything asked for since the last hand-over (one lock, one wake-up),
        unless it is still running a batch (``force``: even then): it calls again when done."""
        with self._cond:
            if self._busy and not force:
                self._held = self._deferred = True
                self._handoff_scheduled = False
                return
        if self._gather is not None:
            self._handoff_scheduled = True  # what gather queues goes in now, not at another turn
            self._gather(force or bool(self._pending))
        self._handoff_scheduled = False
        pending = self._pending
        if not pending:
            return
        self._pending = []
        with self._cond:
            self._queue.extend(pending)
            self._cond.notify()

    def all_of(self, futures: list[asyncio.Future[None]]) -> asyncio.Future[None]:
        """One Future for ``futures`` (writes): it fails if any of them failed, else succeeds when all did."""
        if len(futures) == 1:
            return futures[0]
        assert self._loop is not None  # the writes were queued: the writer is open
        done: asyncio.Future[None] = self._loop.create_future()
        left = len(futures)

        def one_done(f: asyncio.Future[None]) -> None:
            nonlocal left
            left -= 1
            exc = None if f.cancelled() else f.exception()  # retrieved: no "never retrieved" warning
            if done.done():
                return
            if exc is not None:
                done.set_exception(exc)
            elif left == 0:
                done.set_result(None)

        for f in futures:
            f.add_done_callback(one_done)
        if not futures:
            done.set_result(None)
        return done


def _rollback(db: sqlite3.Connection) -> None:
    try:
        if db.in_transaction:
            db.execute("ROLLBACK")
    except sqlite3.Error as exc:
        log.error("store_rollback_failed", error=f"{type(exc).__name__}: {exc}")


def _succeed(fut: asyncio.Future[None], value: None) -> None:
    if not fut.done():
        fut.set_result(value)


def _fail(fut: asyncio.Future[None], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


def _complete(results: list[tuple[asyncio.Future[Any], object, BaseException | None]]) -> None:
    for fut, value, exc in results:
        if fut.done():  # the caller gave up (cancelled); the write happened anyway
            continue
        if exc is None:
            fut.set_result(value)
        else:
            fut.set_exception(exc)
