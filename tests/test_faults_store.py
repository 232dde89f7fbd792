"""The store's disk fills up or turns read-only while the hub runs.

Submits are refused with ESME_RMSGQFUL (keep it, come back later) while the store
cannot write, the hub stays up, and takes messages again once space returns. Never
an ack for what was not stored: after the fault, a SIGKILL and a restart, every
acked message goes upstream and nothing refused does.

The full disk is real: a small tmpfs (mounting needs root; skipped where it is not
permitted). A read-only turn cannot be made real the same way while the store's
files are open (the kernel refuses to remount a busy tmpfs read-only), so it is
made inside the writer's own SQLite connection: an authorizer that fails every write
with an OperationalError while the test says so (``PRAGMA query_only`` cannot be
turned off again through the writer, whose transactions it refuses), on a hub in
the test process. The same test caps the file's pages (``PRAGMA max_page_count``):
a full disk wherever no tmpfs can be mounted. A store that is unusable at start (missing folder,
read-only folder, a directory, not a database) is one line naming the path: see
tests/test_cli_errors.py; a full disk at start is here.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import threading

import pytest
from faultkit import Esme, Upstream, fill, free_port, hub_toml, payloads, settle, small_disk, start_hub, upstream_counts
from hubkit import hub_config, running_hub, simulator

from smppcore import CommandStatus
from smpphub.router.store.sqlite import SqliteStore

RMSGQFUL = CommandStatus.ESME_RMSGQFUL


async def submit_until_refused(esme: Esme, tag: str, limit: int = 20_000) -> int:
    """Submit in batches until the hub refuses with ESME_RMSGQFUL; how many were sent."""
    sent = 0
    while not esme.refused[RMSGQFUL]:
        assert sent < limit, f"no ESME_RMSGQFUL after {sent} submits on a full disk"
        await esme.submit(payloads(tag, 100, start=sent))
        sent += 100
    return sent


async def test_a_disk_that_fills_mid_run_refuses_with_rmsgqful_and_recovers(tmp_path):
    with small_disk(tmp_path / "disk", "4m") as disk:
        smsc = await simulator()
        hub = await start_hub(tmp_path, [Upstream(name="smsc", port=smsc.port)], db=disk / "hub.db")
        esme = Esme(hub.port)
        try:
            await esme.submit(payloads("before", 200))
            assert len(esme.acked) == 200
            filler = fill(disk)
            sent = await submit_until_refused(esme, "full")
            await esme.submit(payloads("stillfull", 50))
            assert esme.refused[RMSGQFUL] >= 50 and set(esme.refused) == {RMSGQFUL}
            assert hub.running and hub.events("store_failed") == 1  # one line for the episode, not one per batch
            filler.unlink()  # space again
            for attempt in range(50):  # the first commit after the space returns may still meet the full WAL
                answered = await esme.submit(payloads(f"after{attempt}-", 20))
                if sum(1 for p in esme.acked if p.startswith(f"after{attempt}-".encode())) == answered == 20:
                    break
            else:
                raise AssertionError("the hub did not take messages again once space returned")
            # acks were durable: a kill now loses none of them
            hub.signal(signal.SIGKILL)
            await hub.wait()
            await hub.start()
            result = await settle([esme], [smsc])
            assert not result.lost and result.delivered == result.acked, result.explain()
            upstream = upstream_counts([smsc])
            tried = payloads("full", sent) + payloads("stillfull", 50)
            refused = [p for p in tried if p not in esme.acked]
            assert len(refused) == esme.refused[RMSGQFUL]
            assert not any(upstream[p] for p in refused), "a refused message went upstream"
        finally:
            await hub.kill()
            await smsc.close()


WRITES = {sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE}


class ReadOnly:
    """Every write on the writer's connection fails (SQLITE_AUTH, an OperationalError as a read-only
    file gives) while it is on; an authorizer reads the flag, so the test flips it from its own thread."""

    def __init__(self) -> None:
        self.on = threading.Event()

    def _install(self, db: sqlite3.Connection) -> None:
        db.set_authorizer(self._authorize)

    def _authorize(self, action: int, *_: object) -> int:
        return sqlite3.SQLITE_DENY if action in WRITES and self.on.is_set() else sqlite3.SQLITE_OK

    async def start(self, store: SqliteStore) -> None:
        await store._read(self._install)
        self.on.set()

    async def end(self, store: SqliteStore) -> None:
        self.on.clear()


class Full:
    """The store may not grow by a page (SQLITE_FULL, as a full disk gives): ``PRAGMA max_page_count``
    on the writer's connection, where no tmpfs can be mounted; writes that fit in free pages still work."""

    @staticmethod
    def _cap(db: sqlite3.Connection) -> None:
        db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}").fetchall()

    @staticmethod
    def _uncap(db: sqlite3.Connection) -> None:
        db.execute("PRAGMA max_page_count = 1073741823").fetchall()

    async def start(self, store: SqliteStore) -> None:
        await store._read(self._cap)

    async def end(self, store: SqliteStore) -> None:
        await store._read(self._uncap)


@pytest.mark.parametrize("fault", [ReadOnly, Full], ids=["read-only", "full"])
async def test_a_store_that_turns_read_only_or_full_refuses_then_recovers_and_stored_exactly_what_it_acked(
        tmp_path, fault):
    smsc = await simulator()
    path = str(tmp_path / "hub.db")
    store = SqliteStore(path)
    config = hub_config({"smsc": smsc}, [{"prefix": "44", "upstreams": ["smsc"]}])
    strike = fault()
    try:
        async with running_hub(config, store=store) as hub:
            esme = Esme(hub.servers[0].port)
            await esme.submit(payloads("rw", 100))
            await strike.start(store)
            sent = await submit_until_refused(esme, "bad")  # a full file may still take a few in free pages
            await esme.submit(payloads("stillbad", 100))
            assert esme.refused[RMSGQFUL] >= 100 and set(esme.refused) == {RMSGQFUL}
            await strike.end(store)
            await esme.submit(payloads("again", 100))
            assert sum(1 for p in esme.acked if p.startswith(b"again")) == 100
            result = await settle([esme], [smsc])
            assert not result.lost and result.delivered == result.acked and result.unacked_delivered == 0, \
                result.explain()
            await esme.close()
        reopened = SqliteStore(path)
        await reopened.open()
        try:
            stored = {mid for mid in esme.acked.values() if await reopened.get(mid) is not None}
            assert stored == set(esme.acked.values())
            assert sum((await reopened.counts()).values()) == len(esme.acked)  # nothing refused was written
        finally:
            await reopened.close()
        assert len(esme.acked) + esme.refused[RMSGQFUL] == 100 + sent + 100 + 100
    finally:
        await smsc.close()


async def test_a_full_disk_at_start_is_one_line_naming_the_store(tmp_path):
    with small_disk(tmp_path / "disk", "1m") as disk:
        filler = fill(disk)
        config = tmp_path / "hub.toml"
        config.write_text(hub_toml(free_port(), [], disk / "hub.db", routes={}))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "smpphub", "serve", "--config", str(config),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        filler.unlink()
    lines = (out + err).decode().strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, lines
    assert lines[0] == f"smpphub serve: cannot open the store {disk}/hub.db: database or disk is full"
