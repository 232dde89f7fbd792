"""The SQLite writer's multi-row statements (router.store.sqlite_writer.Shape) against the plain
rule: n rows written by one statement padded to a few sizes, or by several past a chunk, leave
the table as the rows one by one would (hypothesis over counts, ids repeated, chunk edges); an
update written as an upsert (upsert_shape) leaves it as the UPDATE would, ids not stored included."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpphub.router.store.sqlite_writer import Shape, insert_shape, padded_size, update_shape, upsert_shape


def test_padded_sizes_are_few_cover_every_count_and_waste_little():
    sizes = {padded_size(n) for n in range(1, 1025)}
    assert len(sizes) == 29 and max(sizes) == 1024
    for n in range(1, 1025):
        k = padded_size(n)
        assert n <= k <= max(16, n + n // 4), n  # a power of two up to 16, then at most a quarter more
        assert k & (k - 1) == 0 or k % 4 == 0


def table() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    # made: what upsert_shape's rows of ids not stored are marked by (and found through)
    db.execute("CREATE TABLE t (id TEXT PRIMARY KEY, a INTEGER NOT NULL, b BLOB, made REAL NOT NULL DEFAULT 1)")
    db.execute("CREATE INDEX t_made ON t (made)")
    return db


INSERT = insert_shape("t", ("id", "a", "b"))
UPDATE = update_shape("t", ("a", "b"))
UPSERT = upsert_shape("t", ("a", "b"), (("made", "-1"),), "DELETE FROM t WHERE made < 0")
DELETE = Shape("delete", 1, "DELETE FROM t WHERE id IN ({values})")
ADD = Shape("mark", 1, "INSERT OR IGNORE INTO t (id, a) SELECT column1, 7 FROM (VALUES {values}) "
                       "WHERE column1 IS NOT NULL")


@pytest.mark.parametrize("update", [UPDATE, UPSERT], ids=["update", "upsert"])
@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 1100), updates=st.lists(st.integers(0, 1200), max_size=300),
       deletes=st.lists(st.integers(0, 1200), max_size=300), adds=st.lists(st.integers(0, 1300), max_size=300))
def test_a_shape_writes_what_its_rows_one_by_one_would(update, n, updates, deletes, adds):
    db = table()
    model: dict[str, tuple[int, bytes | None]] = {}
    rows = [(f"k{i}", i, bytes([i % 256]) if i % 3 else None) for i in range(n)]
    INSERT.run(db, rows)
    model.update({r[0]: (r[1], r[2]) for r in rows})
    changes = [(i * 10 + j, b"u%d" % j, f"k{i}") for j, i in enumerate(updates)]
    update.run(db, changes)
    for a, b, key in changes:  # in order: the last update of an id wins; an unknown id changes nothing
        if key in model:
            model[key] = (a, b)
    DELETE.run(db, [(f"k{i}",) for i in deletes])
    for i in deletes:
        model.pop(f"k{i}", None)
    ADD.run(db, [(f"k{i}",) for i in adds])
    for i in adds:
        model.setdefault(f"k{i}", (7, None))
    assert {r[0]: (r[1], r[2]) for r in db.execute("SELECT id, a, b FROM t")} == model
    assert db.execute("SELECT COUNT(*) FROM t WHERE made != 1").fetchone()[0] == 0
    db.close()


SIDE_ADD = Shape("mark", 1, "INSERT OR IGNORE INTO side (id) SELECT column1 FROM (VALUES {values}) "
                            "WHERE column1 IS NOT NULL")
SIDE_DROP = Shape("delete", 1, "DELETE FROM side WHERE id IN ({values})")
KINDS = {"plain": UPDATE, "then_add": UPDATE.followed_by(SIDE_ADD), "then_drop": UPDATE.followed_by(SIDE_DROP),
         "drop": SIDE_DROP, "upsert": UPSERT, "upsert_then_add": UPSERT.followed_by(SIDE_ADD),
         "upsert_then_drop": UPSERT.followed_by(SIDE_DROP)}
AS_UPDATE = {UPSERT: UPDATE, KINDS["upsert_then_add"]: KINDS["then_add"], KINDS["upsert_then_drop"]: KINDS["then_drop"]}


def two_tables() -> sqlite3.Connection:
    db = table()
    db.execute("CREATE TABLE side (id TEXT PRIMARY KEY) WITHOUT ROWID")
    db.executemany("INSERT INTO t (id, a) VALUES (?, 0)", [(f"k{i}",) for i in range(8)])
    return db


@settings(max_examples=80, deadline=None)
@given(requests=st.lists(st.tuples(st.sampled_from(sorted(KINDS)),
                                   st.lists(st.integers(0, 11), min_size=1, max_size=6)),  # k8 to k11: not stored
                         min_size=1, max_size=8))
def test_a_batch_of_writes_merged_by_base_shape_does_what_they_do_one_by_one(requests):
    """The writer merges consecutive writes that differ only in what follows them (Shape.base):
    one statement for all their rows, then each one's follower in order. The tables end as
    running each request alone, in order, leaves them."""
    from smpphub.router.store.sqlite_writer import SqliteWriter

    batch = []
    for step, (kind, ids) in enumerate(requests):
        shape = KINDS[kind]
        rows = [(f"k{i}",) if shape is SIDE_DROP else (step, b"v%d" % step, f"k{i}") for i in ids]
        batch.append((shape, rows, None))
    merged, alone, updated = two_tables(), two_tables(), two_tables()
    writer = SqliteWriter(":memory:", lambda db: None)
    assert writer._fast(merged, batch) == []
    for shape, rows, _ in batch:
        shape.run(alone, rows)
        AS_UPDATE.get(shape, shape).run(updated, rows)  # the upserts as the UPDATEs they stand for
    for sql in ("SELECT id, a, b, made FROM t ORDER BY id", "SELECT id FROM side ORDER BY id"):
        assert merged.execute(sql).fetchall() == alone.execute(sql).fetchall() == updated.execute(sql).fetchall()
