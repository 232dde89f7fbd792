"""Kit of the fault suite (tests/test_faults_*.py): a real hub process, ESMEs that keep
count, and the reconciliation every fault test ends with.

The hub runs as ``smpphub serve`` (a subprocess, so SIGKILL and SIGTERM are real);
upstream SMSCs are simulators in the test process, over loopback, so a test can read
what they received and change how they behave while the hub runs.

Reconciliation, the one rule every fault test checks at its end::

    acked to ESMEs = delivered upstream + failed with a receipt;  lost = 0;
    duplicates <= messages in flight at the fault

An acked message is identified by its payload (each test's payloads are unique);
"delivered upstream" means an SMSC accepted it (the simulator records only what it
accepted); "failed with a receipt" means the ESME got a final receipt saying so for
its hub message_id.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from netkit import free_port

import smppcore
from smppcore import MessageState, SubmitSm
from smppcore.receipt import receipt_info
from smpphub.simulator.app import RunningSimulator

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


class Upstream(msgspec.Struct, frozen=True, kw_only=True):
    """One [[upstreams]] entry of the hub's config: where an SMSC listens and how the hub treats it."""

    name: str
    port: int
    window: int = 50
    response_timeout: float = 5.0
    max_attempts: int = 3


def hub_toml(hub_port: int, upstreams: list[Upstream], db: Path, *, routes: dict[str, list[str]] | None = None,
             extra: str = "") -> str:
    """A hub.toml: account acme/pw, the upstreams, ``routes`` (prefix -> upstream names; default:
    "44" over every upstream in order), the SQLite store at ``db``, short retry back-offs."""
    routes = routes if routes is not None else {"44": [u.name for u in upstreams]}
    parts = [f"""
retry_initial = 0.05
retry_max = 0.3
{extra}

[[listeners]]
host = "{HOST}"
port = {hub_port}
bind_timeout = 5

[[accounts]]
system_id = "acme"
password = "pw"
"""]
    for u in upstreams:
        parts.append(f"""
[[upstreams]]
name = "{u.name}"
host = "{HOST}"
port = {u.port}
system_id = "hub"
password = "x"
window = {u.window}
reconnect_initial = 0.05
reconnect_max = 0.3
response_timeout = {u.response_timeout}
max_attempts = {u.max_attempts}
""")
    for prefix, names in routes.items():
        parts.append(f"""
[[routes]]
prefix = "{prefix}"
upstreams = {list(names)!r}
""".replace("'", '"'))
    parts.append(f"""
[store]
path = "{db}"

[log]
level = "info"
""")
    return "".join(parts)


class HubProcess:
    """``smpphub serve`` in a subprocess; both pipes are read all along (a full pipe would block it)."""

    def __init__(self, config: Path, port: int) -> None:
        self.config = config
        self.port = port  # its listener's
        self.proc: asyncio.subprocess.Process | None = None
        self.log = bytearray()
        self.starts = 0

    async def start(self, timeout: float = 30.0) -> None:
        self.proc = proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "smpphub", "serve", "--config", str(self.config),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        )
        assert proc.stdout is not None and proc.stderr is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        if b"listening" not in line:
            rest = await asyncio.wait_for(proc.stderr.read(4000), timeout)
            raise AssertionError(f"hub did not start: {(line + rest).decode(errors='replace')}")
        self.starts += 1
        self._readers = [asyncio.ensure_future(self._drain(stream)) for stream in (proc.stdout, proc.stderr)]

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            self.log += chunk
            del self.log[:-200_000]  # the tail is enough to explain a failure

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def signal(self, sig: int) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(sig)

    async def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"hub did not exit within {timeout}s; log tail:\n{self.tail()}") from None
        await asyncio.gather(*self._readers, return_exceptions=True)
        return code

    async def kill(self) -> None:
        self.signal(signal.SIGKILL)
        await self.wait()

    async def terminate(self, timeout: float = 30.0) -> int:
        self.signal(signal.SIGTERM)
        return await self.wait(timeout)

    def tail(self, n: int = 4000) -> str:
        return bytes(self.log[-n:]).decode(errors="replace")

    def events(self, name: str) -> int:
        """How many log lines carry the event ``name`` (console format: the event is a word of its own)."""
        return sum(1 for line in bytes(self.log).decode(errors="replace").splitlines() if f" {name} " in f"{line} ")

    async def __aenter__(self) -> HubProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.running:
            await self.kill()


async def start_hub(folder: Path, upstreams: list[Upstream], *, db: Path | None = None, **kw: Any) -> HubProcess:
    """A hub (config in ``folder``, its store at ``db``, by default in ``folder`` too) on a free port,
    started; ``kw`` as :func:`hub_toml` takes."""
    config = folder / "hub.toml"
    port = free_port()
    config.write_text(hub_toml(port, upstreams, db or folder / "hub.db", **kw))
    hub = HubProcess(config, port)
    await hub.start()
    return hub


class Esme:
    """An ESME that keeps count: acks by payload, refusals by status, receipts by hub message_id.

    It binds as a transceiver and asks for receipts, so failed messages come back to it.
    """

    def __init__(self, port: int, *, window: int = 50) -> None:
        self.port = port
        self.window = window
        self.acked: dict[bytes, str] = {}  # payload -> hub message_id
        self.refused: collections.Counter[int] = collections.Counter()
        self.receipts: dict[str, MessageState] = {}  # hub message_id -> last state reported
        self.receipts_seen: collections.Counter[str] = collections.Counter()
        self.client: smppcore.Client | None = None
        #: set: receipts are acknowledged at once; clear: read, recorded, and left unanswered until it is set
        #: (the hub's delivery window fills and stays full: a test can strike while it is)
        self.answering = asyncio.Event()
        self.answering.set()

    def on_message(self, pdu: smppcore.Pdu) -> int | Awaitable[int]:
        info = receipt_info(pdu)
        if info is not None:
            self.receipts[info.message_id] = info.state
            self.receipts_seen[info.message_id] += 1
        if not self.answering.is_set():
            return self._answer_later()
        return 0

    async def _answer_later(self) -> int:
        await self.answering.wait()
        return 0

    async def connect(self, timeout: float = 10.0, bind: str = "trx") -> smppcore.Client:
        self.client = await smppcore.connect(HOST, self.port, system_id="acme", password="pw", window=self.window,
                                             on_message=self.on_message, connect_timeout=timeout, bind=bind)
        return self.client

    async def close(self) -> None:
        if self.client is not None:
            await self.client.unbind(2.0)
            self.client = None

    def vanish(self) -> None:
        """Gone without an unbind: the TCP connection reset."""
        if self.client is not None:
            self.client.abort()
            self.client = None

    async def submit(self, payloads: Iterable[bytes], *, dest: str = "447700900{:03d}") -> int:
        """Submit each payload, a whole window in flight; record every answer. Stops quietly when the
        connection goes (what was not answered is not acked). Returns how many were answered."""
        client = self.client if self.client is not None else await self.connect()
        before = len(self.acked) + sum(self.refused.values())
        futures: list[asyncio.Future[smppcore.Pdu]] = []
        for i, payload in enumerate(payloads):
            try:
                fut = await client.send(SubmitSm(destination_addr=dest.format(i % 1000), short_message=payload,
                                                 registered_delivery=1))
            except (smppcore.ConnectionClosed, smppcore.InvalidState, OSError):  # gone, or being unbound
                break
            fut.add_done_callback(functools.partial(self._answered, payload))
            futures.append(fut)
        await asyncio.gather(*futures, return_exceptions=True)
        return len(self.acked) + sum(self.refused.values()) - before

    def _answered(self, payload: bytes, fut: asyncio.Future[smppcore.Pdu]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return  # no answer: not acked
        resp = fut.result()
        if resp.command_status == 0:
            self.acked[payload] = resp.message_id
        else:
            self.refused[resp.command_status] += 1


def upstream_counts(sims: Iterable[RunningSimulator]) -> collections.Counter[bytes]:
    """Payloads the SMSCs accepted, with how many times each."""
    return collections.Counter(m.payload for sim in sims for m in sim.sim.messages)


class Reconciliation(msgspec.Struct, frozen=True, kw_only=True):
    acked: int  # messages the ESMEs got a message_id for
    delivered: int  # of those, accepted by an SMSC
    failed: int  # of those, not accepted upstream, and the ESME has a final receipt saying why
    lost: list[bytes]  # acked and neither (must stay empty)
    duplicates: int  # extra copies an SMSC accepted (at-least-once delivery)
    unacked_delivered: int  # went out though the ESME never saw its ack (a kill between commit and answer)

    def explain(self) -> str:
        return (f"acked={self.acked} delivered={self.delivered} failed={self.failed} lost={len(self.lost)} "
                f"duplicates={self.duplicates} (first lost: {self.lost[:5]})")


def reconcile(esmes: Iterable[Esme], upstream: collections.Counter[bytes]) -> Reconciliation:
    acked: dict[bytes, str] = {}
    receipts: dict[str, MessageState] = {}
    for esme in esmes:
        acked.update(esme.acked)
        receipts.update(esme.receipts)
    delivered = failed = 0
    lost = []
    for payload, message_id in acked.items():
        if upstream[payload]:
            delivered += 1
        elif (state := receipts.get(message_id)) is not None and state.is_final and state is not MessageState.DELIVERED:
            failed += 1
        else:
            lost.append(payload)
    return Reconciliation(acked=len(acked), delivered=delivered, failed=failed, lost=lost,
                          duplicates=sum(n - 1 for n in upstream.values() if n > 1),
                          unacked_delivered=sum(1 for p in upstream if p not in acked))


async def settle(esmes: list[Esme], sims: list[RunningSimulator], timeout: float = 30.0) -> Reconciliation:
    """Wait (polling, bounded) until nothing acked is unaccounted for; the reconciliation then.
    Raises AssertionError naming what is missing when ``timeout`` passes first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = reconcile(esmes, upstream_counts(sims))
        if not result.lost:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"not settled within {timeout}s: {result.explain()}")
        await asyncio.sleep(0.05)


def payloads(tag: str, n: int, start: int = 0) -> list[bytes]:
    return [f"{tag}{i}".encode() for i in range(start, start + n)]



@contextlib.contextmanager
def small_disk(where: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (a disk that can fill up for real), unmounted after;
    the test is skipped where mounting is not permitted (not root, or a container without CAP_SYS_ADMIN)."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(disk: Path) -> Path:
    """Write a file that takes every byte left on ``disk``; delete it to give the space back."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (65536, 4096, 512, 1):  # unbuffered: the last partial blocks too
            block = b"\0" * size
            try:
                while os.write(fd, block):
                    pass
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    return filler
