"""The SQLite store's tables, indexes, migration and statements, and how a row maps to a
:class:`~smpphub.router.store.base.MessageRow` or a :class:`~smpphub.router.store.base.Delivery`.

Kept apart from :mod:`smpphub.router.store.sqlite` (the store that runs them on its
writer thread) so the schema reads as one piece: what is stored, which indexes each
write pays for, and which columns each kind of save sets (the measured reasons are
in the comments beside them).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter

from .base import FINAL_STATES, OPEN_STATES, Delivery, MessageRow, State
from .sqlite_writer import Row, Shape, SqlRow, insert_shape, upsert_shape

SCHEMA_VERSION = 5  # PRAGMA user_version; bump it with a migration in _migrate()
FINAL_STATES_SQL = "(" + ", ".join(sorted(f"'{state.value}'" for state in FINAL_STATES)) + ")"
# Open and not sent yet: what a restart sends (a SENT message only waits for its receipt,
# which finds it by upstream id).
_UNSENT = sorted(state.value for state in OPEN_STATES - {State.SENT})
UNSENT_STATES_SQL = "(" + ", ".join(f"'{state}'" for state in _UNSENT) + ")"
# The rows a restart has to send: messages not sent yet. One partial index holds them (SQLite
# uses it only for a query that repeats this very term). Until version 5 it held the rows
# owing a receipt too; those are now the rows of receipts_owed (see RECEIPTS_OWED).
# SENT rows are not in it (they were until schema version 3): a message then leaves it when
# sent and comes back only with a receipt owed, two index writes a message fewer (measured
# with the store alone, a message's four writes: 26.8 -> 24.2 us), and the SENT rows of
# messages that asked for no receipt no longer stay in it until they are purged.
# The states are compared one by one, not with IN (...) as until version 4: SQLite checks
# this term for the old and the new row of every write that sets state or receipt_owed,
# and an IN list of more than two values is built as a temporary B-tree at every check,
# inside the row loop. Measured with callgrind over the writer's four writes a message
# (/tmp replica of the hub's pattern, 256 messages a transaction): 171,700 -> 117,800
# instructions a message, a third of the writer's work.
UNSENT_TERMS = " OR ".join(f"state = '{state}'" for state in _UNSENT)
PENDING = f"({UNSENT_TERMS})"
# One row per message: its whole lifecycle state (see router/lifecycle.py), the receipt
# still owed to its ESME excepted (see RECEIPTS_OWED). Every index costs on every write that sets one
# of its columns, and a message is written four times (accepted, sent, final with
# its receipt, receipt acknowledged): measured with the store alone, each of the
# three partial indexes this schema first had cost 4-8 us per message. So there are
# two besides the upstream id's: the rows a restart must act on (one partial index),
# and created_at, which never changes once written, for purging by age.
MESSAGES = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    pdu BLOB NOT NULL,
    route TEXT NOT NULL,
    grp TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    route_index INTEGER NOT NULL DEFAULT 0,
    attempts_here INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    due REAL NOT NULL DEFAULT 0,
    expires_at REAL,
    registered_delivery INTEGER NOT NULL DEFAULT 0,
    upstream TEXT,
    upstream_id TEXT,
    error INTEGER NOT NULL DEFAULT 0,
    receipt_owed INTEGER NOT NULL DEFAULT 0, -- unused since version 5 (always 0): see RECEIPTS_OWED
    receipt BLOB NOT NULL DEFAULT x'',
    pinned INTEGER NOT NULL DEFAULT 0,
    spilled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL DEFAULT 0
);
"""
INDEXES = f"""
CREATE INDEX IF NOT EXISTS messages_upstream ON messages (upstream, upstream_id) WHERE upstream_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_pending ON messages (state) WHERE {PENDING};
CREATE INDEX IF NOT EXISTS messages_created ON messages (created_at);
CREATE INDEX IF NOT EXISTS messages_spilled ON messages (due) WHERE spilled = 1;
"""
# The messages whose final receipt the ESME has not acknowledged yet, by id: a row is added
# when the receipt is stored and deleted when the ESME acknowledges it. Until version 5
# this was the messages row's receipt_owed column, and the acknowledgement an UPDATE of
# the whole ~500-byte row and of the pending index, for a flag; a narrow row of its own is
# added and deleted for less. Measured with callgrind over a replica of the writer's SQL
# (insert, SENT and final merged, 56% of acknowledgements apart from the final, 256 messages a
# transaction): 74,000 -> 68,900 instructions a message; over the real SqliteStore, the
# writer thread 82,600 -> 75,300. A restart reads the receipts still owed through it, never
# through the finished rows. The row is added in the same request as the final save
# (sqlite_writer.Shape.followed_by): they commit or fail together.
# Tried on the same replica and not kept: an INTEGER id (no autoindex; the hub's ids map to
# 64 bits, other ids would need a second key) saved 1,900 instructions a message; no
# messages_created index (purge and listing by rowid order instead) 1,900; the insert with
# room for the receipt (no page split at the final UPDATE) cost 2,200 more than it saved;
# 8 KiB or 16 KiB pages saved nothing; the final UPDATE by executemany cost 3,200 more; a
# trigger adding the receipt owed cost 1,500 more than its own statement.
RECEIPTS_OWED = """
CREATE TABLE IF NOT EXISTS receipts_owed (id TEXT PRIMARY KEY) WITHOUT ROWID;
"""
# What the HTTP API keeps beside a message (router.store.base.HttpMeta), one row per
# part; a table of its own so SMPP traffic's rows and writes do not pay for it.
HTTP = """
CREATE TABLE IF NOT EXISTS http_messages (
    id TEXT PRIMARY KEY,
    message TEXT NOT NULL,
    account TEXT NOT NULL,
    parts TEXT NOT NULL,
    callback_url TEXT NOT NULL DEFAULT '',
    reference TEXT NOT NULL DEFAULT '',
    kannel TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
"""
HTTP_COLUMNS = ("id", "message", "account", "parts", "callback_url", "reference", "kannel", "created_at")
INSERT_HTTP = insert_shape("http_messages", HTTP_COLUMNS, "INSERT OR REPLACE")
GET_HTTP = f"SELECT {', '.join(HTTP_COLUMNS)} FROM http_messages WHERE id = ?"
# their messages purged: the HTTP rows go too (one anti-join per housekeeping round)
PURGE_HTTP = "DELETE FROM http_messages WHERE id NOT IN (SELECT id FROM messages)"
# Idempotent answers (router.store.base.KeptAnswer), kept until they expire.
ANSWERS = """
CREATE TABLE IF NOT EXISTS idempotency (
    account TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (account, key)
);
"""
KEEP_ANSWER = insert_shape("idempotency", ("account", "key", "fingerprint", "status", "body", "expires"),
                            "INSERT OR REPLACE")
FORGET_ANSWER = "DELETE FROM idempotency WHERE account = ? AND key = ?"
KEPT_ANSWER = ("SELECT fingerprint, status, body, expires FROM idempotency "
                "WHERE account = ? AND key = ? AND expires > ?")
DELIVERIES = """
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
# Version 4 kept the receipts owed in the messages rows (receipt_owed = 1, in the pending
# index): they move to receipts_owed, the column is left at 0, the pending index is made again.
FROM_VERSION_4 = RECEIPTS_OWED + """
INSERT OR IGNORE INTO receipts_owed (id) SELECT id FROM messages WHERE receipt_owed = 1;
UPDATE messages SET receipt_owed = 0 WHERE receipt_owed = 1;
DROP INDEX IF EXISTS messages_pending;
"""
# Version 2's pending index held SENT rows too, version 3's had the same rows as now but
# its states IN (...): it is made again (see PENDING).
FROM_VERSION_3 = """
DROP INDEX IF EXISTS messages_pending;
"""
# Version 1 kept a message's receipt in the deliveries table and knew fewer states;
# its pending receipts stay there and are delivered as they are.
FROM_VERSION_1 = """
ALTER TABLE messages RENAME COLUMN not_before TO due;
ALTER TABLE messages ADD COLUMN grp TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN route_index INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN attempts_here INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN receipt_owed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN receipt BLOB NOT NULL DEFAULT x'';
ALTER TABLE messages ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN spilled INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET state = 'undeliverable' WHERE state = 'failed';
DROP INDEX IF EXISTS messages_open;
DROP INDEX IF EXISTS messages_final;
"""
COLUMNS = (
    "id", "account", "pdu", "route", "grp", "state", "route_index", "attempts_here", "attempts", "due", "expires_at",
    "registered_delivery", "upstream", "upstream_id", "error", "receipt", "pinned", "created_at", "updated_at",
)
# what a read returns: the columns, and whether the message owes a receipt (after upstream_id's error)
_OWED = "EXISTS (SELECT 1 FROM receipts_owed WHERE receipts_owed.id = messages.id)"
READ_COLUMNS = (*COLUMNS[:15], _OWED, *COLUMNS[15:])
# What :meth:`SqliteStore.save` writes back depends on where the message is: SQLite
# rewrites an index only when its columns are in the UPDATE's SET, so each kind of
# row sets only the columns that can have changed (measured: setting every column
# on every save doubled the writer's time, through the three indexes it rewrote).
# The message's own bytes are never among them: only replace_sm changes those,
# through save_message.
SAVED_WAITING = ("state", "route_index", "attempts_here", "attempts", "due", "expires_at", "registered_delivery",
                  "error", "pinned", "updated_at")  # scheduled, queued, parked (and in flight, when written at all)
SAVED_SENT = ("state", "route_index", "attempts_here", "attempts", "upstream", "upstream_id", "error", "updated_at")
# a message that ends once SENT keeps the upstream columns it has (rewriting them would
# rewrite the upstream-id index); one that ends before (refused, expired, cancelled) sets them
SAVED_FINAL = ("state", "attempts", "error", "receipt", "updated_at")
SAVED_ENDED = ("state", "attempts", "upstream", "upstream_id", "error", "receipt", "updated_at")
# A final save also adds or deletes the message's row of receipts_owed (OWED_ADD, OWED_DROP);
# the ESME's acknowledgement of the receipt (which stays in the row, as its history) is that
# delete alone: the row keeps the updated_at of its last change of state.

SELECT = f"SELECT {', '.join(READ_COLUMNS)} FROM messages"


GET = f"{SELECT} WHERE id = ?"
BY_UPSTREAM = f"{SELECT} WHERE upstream = ? AND upstream_id = ? ORDER BY created_at DESC LIMIT 1"
# SENT messages wait for receipts, which find them by upstream id: a restart has nothing to do for them
OPEN = f"{SELECT} WHERE {PENDING} AND state IN {UNSENT_STATES_SQL} ORDER BY created_at"
OWED = f"{SELECT} WHERE id IN (SELECT id FROM receipts_owed) ORDER BY updated_at"
OWED_BY_ACCOUNT = f"{SELECT} WHERE id IN (SELECT id FROM receipts_owed) AND account = ? ORDER BY updated_at"
DELIVERY_COLUMNS = ("id", "account", "pdu", "created_at", "expires_at", "attempts", "kind")
SELECT_DELIVERIES = f"SELECT {', '.join(DELIVERY_COLUMNS)} FROM deliveries"
PURGE_CHUNK = 2000  # rows per purge transaction, so a big purge never stalls the acks for long
# through the messages_final index: no table scan, however many messages the file holds
PURGE = (
    f"DELETE FROM messages WHERE rowid IN (SELECT rowid FROM messages WHERE created_at < ? "
    f"AND state IN {FINAL_STATES_SQL} AND id NOT IN (SELECT id FROM receipts_owed) ORDER BY created_at "
    f"LIMIT {PURGE_CHUNK})"
)
# the same rows, oldest first whatever their age: what the size cap (store.max_size_mb) gives up
PURGE_OLDEST = (
    f"DELETE FROM messages WHERE rowid IN (SELECT rowid FROM messages WHERE state IN {FINAL_STATES_SQL} "
    f"AND id NOT IN (SELECT id FROM receipts_owed) ORDER BY created_at LIMIT ?)"
)

# INSERT OR REPLACE: a record added again (same hub id) replaces the old one (its row of
# receipts_owed is written beside it: see SqliteStore.save_message)
INSERT_MESSAGES = insert_shape("messages", COLUMNS, "INSERT OR REPLACE")
# A message just accepted has its columns' defaults in every column it has not lived
# through yet (no attempt, no upstream, no receipt): it is inserted with the others only,
# 11 values bound rather than 20 (measured on this schema, 200 rows a transaction: the
# writer's insert went from 6.2-7.1 to 4.2-5.0 us a row).
NEW_COLUMNS = ("id", "account", "pdu", "route", "grp", "state", "due", "expires_at", "registered_delivery",
               "created_at", "updated_at")
# A plain INSERT: an id stored already fails it, and the store writes those rows whole instead
# (SqliteStore.add_messages), their rows of receipts_owed with them; the hub never adds an id twice.
INSERT_NEW_MESSAGES = insert_shape("messages", NEW_COLUMNS)
INSERT_DELIVERIES = insert_shape("deliveries", DELIVERY_COLUMNS)
DELETE_DELIVERIES = Shape("delete", 1, "DELETE FROM deliveries WHERE id IN ({values})")
# the backlog (see Store.spill): only overload and restarts write this column, so the
# messages_spilled index costs nothing while the hub keeps up
SPILL = Shape("mark", 1, "UPDATE messages SET spilled = 1 WHERE id IN ({values})")
SPILL_OPEN = (f"UPDATE messages SET spilled = 1 WHERE {PENDING} AND state IN {UNSENT_STATES_SQL} "
               "AND spilled = 0")
TAKE_SPILLED = f"{SELECT} WHERE spilled = 1 AND due < ? ORDER BY due LIMIT ?"
# A save updates the row of its id, and never adds one (a save of an id not stored changes nothing):
# an upsert (see sqlite_writer.upsert_shape) whose row, when the id is not there, is given these
# values, then deleted again in the same request through the created_at index (no message is
# created before 1970: one index step finds there is nothing to delete; without that index this
# would scan the table at every write: test_the_queries_use_their_indexes says it does not).
STUB = (("account", "''"), ("pdu", "x''"), ("route", "''"), ("state", "''"), ("created_at", "-1.0"))
STUBS_GONE = "DELETE FROM messages WHERE created_at < 0"


def save_shape(fields: tuple[str, ...]) -> Shape:
    """The write of a save setting ``fields`` (one of each: the saves of a turn that set the same
    columns merge into one statement)."""
    stub = tuple((column, value) for column, value in STUB if column not in fields)
    return upsert_shape("messages", fields, stub, STUBS_GONE)


SAVE_WAITING = save_shape(SAVED_WAITING)
SAVE_SENT = save_shape(SAVED_SENT)
SAVE_FINAL = save_shape(SAVED_FINAL)
SAVE_ENDED = save_shape(SAVED_ENDED)
# a message's row of receipts_owed, by id (padding rows: NULL, which adds or matches nothing)
OWED_ADD = Shape("mark", 1, "INSERT OR IGNORE INTO receipts_owed (id) SELECT column1 FROM (VALUES {values}) "
                             "WHERE column1 IS NOT NULL")
OWED_DROP = Shape("delete", 1, "DELETE FROM receipts_owed WHERE id IN ({values})")


def message_values(r: MessageRow) -> Row:
    return (
        r.id, r.account, r.pdu, ",".join(r.route), r.group, r.state._value_, r.route_index, r.attempts_here, r.attempts,
        r.due, r.expires_at, r.registered_delivery, r.upstream, r.upstream_id, r.error, r.receipt, int(r.pinned),
        r.created_at, r.updated_at,
    )


def new_messages_values(rows: list[MessageRow]) -> list[Row] | None:
    """The rows' values for INSERT_NEW_MESSAGES, or None when one of them is not a message nothing
    has happened to yet (a column outside NEW_COLUMNS not at its default): those are written whole."""
    values: list[Row] = []
    append = values.append
    for r in rows:
        if (r.attempts or r.attempts_here or r.route_index or r.upstream is not None or r.upstream_id is not None
                or r.error or r.receipt_owed or r.receipt or r.pinned):
            return None
        append((r.id, r.account, r.pdu, ",".join(r.route), r.group, r.state._value_, r.due, r.expires_at,
                r.registered_delivery, r.created_at, r.updated_at))
    return values


# three saves a message name it: see smppcore.constants on Enum members on a hot path
_SENT = State.SENT


def save_of(r: MessageRow) -> tuple[Shape | None, Row, Shape | None]:
    """The save of ``r`` as it is now: the columns its state can have changed and their values
    (then the id), None and () for none; and what it does to the message's row of receipts_owed
    (OWED_ADD, OWED_DROP, or None: a message not final owes no receipt yet).

    The values are laid out here, in the order of the shape's columns (SAVED_SENT, ...), not by a
    function each: three saves a message, a call fewer each."""
    state = r.state
    if state is _SENT:
        return (SAVE_SENT, (state._value_, r.route_index, r.attempts_here, r.attempts, r.upstream, r.upstream_id,
                            r.error, r.updated_at, r.id), None)
    if state in FINAL_STATES:
        if r.receipt_owed:
            owed = OWED_ADD
        elif r.receipt:  # the ESME acknowledged the receipt: nothing else changes once final
            return None, (), OWED_DROP
        else:
            owed = OWED_DROP
        if r.upstream_id is not None:
            return SAVE_FINAL, (state._value_, r.attempts, r.error, r.receipt, r.updated_at, r.id), owed
        return (SAVE_ENDED, (state._value_, r.attempts, r.upstream, r.upstream_id, r.error, r.receipt, r.updated_at,
                             r.id), owed)
    return (SAVE_WAITING, (state._value_, r.route_index, r.attempts_here, r.attempts, r.due, r.expires_at,
                           r.registered_delivery, r.error, int(r.pinned), r.updated_at, r.id), None)


def followed_by(shape: Shape, owed: Shape) -> Shape:
    """A save of the row's columns and then of its row of receipts_owed, as one write."""
    both = _FOLLOWED.get((shape, owed))
    if both is None:
        both = _FOLLOWED[shape, owed] = shape.followed_by(owed)
    return both


#: the saves followed by a write of receipts_owed, by (save, OWED_ADD or OWED_DROP)
_FOLLOWED: dict[tuple[Shape, Shape], Shape] = {}

_COLUMN_ORDER = {column: i for i, column in enumerate(COLUMNS)}


def merged_save(first: Shape, first_values: Row, then: Shape, then_values: Row) -> tuple[Shape, Row]:
    """Two saves of one row not yet written, as one: every column either sets, each with the
    value of the later save that sets it. (A row sent and then given its receipt before
    the writer got to it is written once, its upstream id with its final state.)"""
    if first is then:
        return then, then_values
    merge = _MERGES.get((first, then))
    if merge is None:
        merge = _MERGES[first, then] = _Merge(first, then)
    return merge.shape, merge.pick(first_values + then_values)


class _Merge:
    """How two kinds of save of one row merge: the shape setting the columns of both, and which
    of the two saves' values (laid end to end) each of its values is. Made once per pair: a
    dict of the values, sorted, at every merge cost the event loop 2.7-4.0 us a merge, this
    0.3-0.5 (timeit, SENT then final then acknowledged, 2026-12-02); a message's saves merge
    whenever its next save comes before the writer took the one held."""

    __slots__ = ("shape", "pick")

    def __init__(self, first: Shape, then: Shape) -> None:
        fields = tuple(sorted({*first.fields, *then.fields}, key=_COLUMN_ORDER.__getitem__))
        shape = _MERGED.get(fields)
        if shape is None:
            shape = _MERGED[fields] = save_shape(fields)
        self.shape = shape
        offset = len(first.fields) + 1  # the first save's values end with the id
        positions = [offset + then.fields.index(f) if f in then.fields else first.fields.index(f) for f in fields]
        self.pick: Callable[[Row], Row] = itemgetter(*positions, offset + len(then.fields))


#: the shapes of merged saves, by the columns they set (a handful of combinations happen)
_MERGED: dict[tuple[str, ...], Shape] = {
    shape.fields: shape for shape in (SAVE_WAITING, SAVE_SENT, SAVE_FINAL, SAVE_ENDED)}
_MERGES: dict[tuple[Shape, Shape], _Merge] = {}


def message_from_row(row: SqlRow) -> MessageRow:
    return MessageRow(
        id=row[0], account=row[1], pdu=row[2], route=row[3].split(",") if row[3] else [], group=row[4],
        state=State(row[5]), route_index=row[6], attempts_here=row[7], attempts=row[8], due=row[9], expires_at=row[10],
        registered_delivery=row[11], upstream=row[12], upstream_id=row[13], error=row[14], receipt_owed=bool(row[15]),
        receipt=row[16], pinned=bool(row[17]), created_at=row[18], updated_at=row[19],
    )


def message_or_none(row: SqlRow | None) -> MessageRow | None:
    return None if row is None else message_from_row(row)


def delivery_from_row(row: SqlRow) -> Delivery:
    return Delivery(id=row[0], account=row[1], pdu=row[2], created_at=row[3], expires_at=row[4], attempts=row[5],
                    kind=row[6])
