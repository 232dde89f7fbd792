"""Soak: the hub for a chosen duration under upstream faults and hostile clients, with a
good client at a steady rate beside them; one table at the end.

::

    python -m smpphub.bench.soak --duration 10m --rate 200 [--out FILE]

What runs: ``smpphub serve`` (a subprocess, SQLite store in a temporary folder); two
upstream SMSC simulators (the route "44" over both) and a third for the attackers'
account, in this process; the good client is the load generator (``smpphub bench``, a
subprocess, open loop at ``--rate``, asking for receipts). The run is cut into
phases of equal length, each with one fault or attack (then all of them at once,
then quiet again), so the good client's rate can be read per phase against the
first, quiet one:

- idle flood: 300 connections from 50 addresses that never bind;
- non-readers: binds that write submits and never read an answer;
- password guessers: 8 clients guessing acme's password from one address;
- upstream drops and throttling; error bursts (temporary and permanent statuses);
- an upstream that dies and comes back; the hub SIGKILLed and restarted.

Lost is counted end to end and by message id: every message acked to the good client owes
it one final receipt (DELIVRD from the SMSC, or the hub's own UNDELIV for a permanent
refusal), so lost = the acked ids whose receipt did not come in the load generator's
receipt wait, less one exception the hub cannot help: messages an SMSC accepted and then died
before sending their receipt (a real carrier may send it after it comes back; the
simulator forgets it). Those are delivered upstream, so not lost; the table shows
how many (the good client's messages still SENT in the store after the run). Nor are
receipts the hub still holds for the good client when it unbinds (the load generator
waits until every acked id has its receipt, or its receipt wait is over): the hub hands
them over at its next bind. The
attackers come from other loopback addresses (127.0.0.2 and up), so the guessers'
IP lockout is theirs alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

import smppcore
from smppcore import CommandStatus, encode
from smppcore.pdus import BindTransceiver, BindTransmitter, SubmitSm
from smpphub.simulator.app import RunningSimulator
from smpphub.simulator.app import start as start_simulator
from smpphub.simulator.config import config_from_dict as simulator_config

from .cli import UsageError
from .cli import _seconds as parse_seconds
from .hub import free_port

HOST = "127.0.0.1"
GUESSER_IP = "127.0.0.2"
NON_READER_IP = "127.0.0.4"
IDLE_IPS = [f"127.0.1.{i}" for i in range(1, 51)]
PHASES = ["quiet", "idle flood", "non-readers", "password guessers", "upstream drops + throttling",
          "error bursts", "upstream dies and returns", "hub SIGKILL + restart", "everything at once", "quiet again"]
RECEIPT_WAIT = 90.0  # default seconds the load generator waits for the last receipts after sending


class PhaseRow(msgspec.Struct, kw_only=True):
    name: str
    seconds: float
    good_rate: float  # median acked/s of the good client in the phase
    ratio: float  # good_rate / the quiet phase's
    hub_rss_mib: float  # the hub's largest RSS sampled during the phase (4 samples a second)
    store_mb: float  # store files (db, wal, shm) at the phase's end


class SoakReport(msgspec.Struct, kw_only=True):
    duration: float
    rate: float
    phases: list[PhaseRow]
    sent: int
    acked: int
    refused: dict[str, int]
    delivered: int  # upstream accepts of the good client's route (both SMSCs, every life of them)
    receipted: int  # messages it saw acked whose final receipt it got (by message id)
    # final receipts the load generator counted, less those matched to no acked id: receipted, as
    # counted rather than by id (a copy that reached both binds counts twice, a lost one not at all)
    receipts_counted: int
    lost: int  # acked, and neither receipted, nor held by the hub, nor delivered upstream awaiting its receipt
    awaiting_receipt: int  # acked, no receipt: delivered upstream (SENT in the store), the SMSC never sent it
    receipts_held: int  # acked, no receipt: final, its receipt held durably by the hub for the client's next bind
    # held by the hub for messages whose receipt the client got (its answer never reached the hub: the
    # hub sends it again at the next bind, a duplicate, as at-least-once delivery must) or whose ack it
    # never got (stored at the kill)
    receipts_held_other: int
    reused_ids: int  # acks under an id an earlier ack still owed a receipt for (must be 0)
    extra_upstream: int  # upstream accepts beyond what was acked and not refused for good (duplicates)
    duplicate_receipts: int
    hub_peak_rss_mib: float
    reconnects_good: int
    upstream_binds: int
    hub_starts: int
    attacks: dict[str, int]
    store_at_end: dict[str, int]  # the good client's messages in the store after the run, by state
    # the store's rows of the ids whose receipts never came and of receipts matched to no id
    # (a few of each): where to start when the count does not add up
    suspects: list[str] = []


class SoakError(Exception):
    """The soak could not run to its end (the hub or the load generator failed): one message, no traceback."""


# ---- the hub process ----------------------------------------------------------------------------


class HubRunner:
    """``smpphub serve`` with its output in a file (a pipe nobody reads would block it)."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.peak_rss_kib = 0

    async def start(self) -> None:
        seen = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "smpphub", "serve", "--config", str(self.config), stdout=out, stderr=out)
        deadline = time.monotonic() + 60
        while b"listening on" not in self.log.read_bytes()[seen:]:
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise SoakError(f"the hub did not start{self.log_tail()}")
            await asyncio.sleep(0.05)
        self.starts += 1

    def log_tail(self, lines: int = 30) -> str:
        """The hub's last lines of output, to quote in a failure (the folder goes with the run)."""
        if not self.log.exists():
            return ""
        tail = self.log.read_bytes().decode(errors="replace").splitlines()[-lines:]
        return "\nthe hub's last lines:\n" + "\n".join(tail)

    def rss_kib(self) -> int:
        """The hub's resident set now (0 while it is down); :attr:`peak_rss_kib` keeps the run's
        peak, its high-water mark (VmHWM) included, read again just before each kill."""
        if self.proc is None or self.proc.returncode is not None:
            return 0
        now = 0
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        now = int(line.split()[1])
                    elif line.startswith("VmHWM:"):
                        self.peak_rss_kib = max(self.peak_rss_kib, int(line.split()[1]))
        except OSError:
            return 0
        self.peak_rss_kib = max(self.peak_rss_kib, now)
        return now

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.rss_kib()
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def terminate(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.rss_kib()
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                await self.kill()


def hub_toml(port: int, smscs: list[int], flood_smsc: int, db: Path, rate: float) -> str:
    """The soak's hub: acme (the good client) routed "44" over SMSCs a and b; flood (the
    non-readers, as rate-capped as any customer would be) routed to c."""
    ups = "".join(f"""
[[upstreams]]
name = "{name}"
host = "{HOST}"
port = {p}
system_id = "hub"
password = "x"
window = 50
response_timeout = 5
reconnect_initial = 0.1
reconnect_max = 1.0
""" for name, p in (("a", smscs[0]), ("b", smscs[1]), ("c", flood_smsc)))
    return f"""
retry_initial = 0.2
retry_max = 5.0
drain_timeout = 10.0

[[listeners]]
host = "{HOST}"
port = {port}
bind_timeout = 10

[[accounts]]
system_id = "acme"
password = "pw"

[[accounts]]
system_id = "flood"
password = "pw"
max_rate = {rate:g}
{ups}
[[routes]]
prefix = ""
accounts = ["flood"]
upstreams = ["c"]

[[routes]]
prefix = "44"
upstreams = ["a", "b"]

[store]
path = "{db}"

[log]
level = "warning"
"""


# ---- the attackers ------------------------------------------------------------------------------


class Attacks:
    """Hostile clients, each kind a set of tasks started and stopped by the schedule."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.tasks: dict[str, list[asyncio.Task[None]]] = {}
        #: kinds running now: each loop checks it, as a cancellation can be lost (3.11's wait_for
        #: hands back a result that raced its cancellation, and the loop would go on for ever)
        self.running: set[str] = set()
        self.counts: dict[str, int] = {"idle connections opened": 0, "non-reader submits written": 0,
                                       "password guesses answered": 0}

    def start(self, kind: str) -> None:
        if kind in self.tasks:
            return
        self.running.add(kind)
        loop = asyncio.get_running_loop()
        if kind == "idle":
            self.tasks[kind] = [loop.create_task(self._idle(IDLE_IPS[i % len(IDLE_IPS)])) for i in range(300)]
        elif kind == "non-readers":
            self.tasks[kind] = [loop.create_task(self._non_reader()) for _ in range(2)]
        elif kind == "guessers":
            self.tasks[kind] = [loop.create_task(self._guesser(i)) for i in range(8)]

    async def stop(self, kind: str | None = None) -> None:
        for name in [kind] if kind else list(self.tasks):
            self.running.discard(name)
            tasks = self.tasks.pop(name, [])
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=5)

    async def _open(self, ip: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(HOST, self.port, local_addr=(ip, 0))  # loopback: at once or refused

    async def _idle(self, ip: str) -> None:
        """Connect, never bind; connect again when the hub closes it (a pause first: no spinning)."""
        while "idle" in self.running:
            try:
                reader, writer = await self._open(ip)
                self.counts["idle connections opened"] += 1
                await reader.read()  # until the hub closes it (bind timeout, or pushed out)
                writer.close()
            except (OSError, TimeoutError):
                pass
            await asyncio.sleep(0.5)

    async def _non_reader(self) -> None:
        """Bind as "flood", write submits as fast as TCP takes them, never read an answer."""
        reader, writer = await self._open(NON_READER_IP)
        writer.write(encode(BindTransceiver(sequence_number=1, system_id="flood", password="pw")))
        seq = 1
        try:
            while "non-readers" in self.running:
                batch = []
                for _ in range(100):
                    seq += 1
                    batch.append(encode(SubmitSm(sequence_number=seq, destination_addr="33612345678",
                                                 short_message=b"never read", registered_delivery=1)))
                writer.write(b"".join(batch))
                await writer.drain()  # blocks for good once the hub stops reading this connection
                self.counts["non-reader submits written"] += 100
        finally:
            writer.close()

    async def _guesser(self, i: int) -> None:
        """Bind attempts with wrong passwords, one after another, each waiting for its answer."""
        n = 0
        while "guessers" in self.running:
            try:
                reader, writer = await self._open(GUESSER_IP)
                n += 1
                writer.write(encode(BindTransmitter(sequence_number=1, system_id="acme", password=f"g{i}-{n}")))
                framer = smppcore.Framer()
                pdus: list[object] = []
                while not pdus and (chunk := await asyncio.wait_for(reader.read(4096), 30)):
                    pdus = framer.feed(chunk)
                if pdus and getattr(pdus[0], "command_status", 0) != CommandStatus.ESME_ROK:
                    self.counts["password guesses answered"] += 1
                writer.close()
                if not pdus:  # closed unanswered (a connection limit): not a guess, and no spinning
                    await asyncio.sleep(0.1)
            except (OSError, TimeoutError, ValueError):
                await asyncio.sleep(0.1)


# ---- the run -------------------------------------------------------------------------------------


class Soak:
    def __init__(self, duration: float, rate: float, folder: Path, receipt_wait: float = RECEIPT_WAIT) -> None:
        self.duration, self.rate, self.folder = duration, rate, folder
        self.receipt_wait = receipt_wait
        self.ports = [free_port(), free_port()]
        self.good: list[RunningSimulator] = []  # every life of the good route's two SMSCs, for the totals
        self.live: dict[int, RunningSimulator] = {}
        self.db = folder / "hub.db"
        self.hub_port = free_port()
        self.hub = HubRunner(folder / "hub.toml", folder / "hub.log")
        self.attacks = Attacks(self.hub_port)
        self.phase_rss = 0
        self.store_counts: dict[str, int] = {}
        # the good client's message ids (lower case, no leading zeros, as the load generator
        # keeps them) whose receipt the hub still holds, and those still SENT
        self.held_ids: set[str] = set()
        self.sent_ids: set[str] = set()
        self.suspects: list[str] = []

    async def smsc(self, port: int, **settings: object) -> RunningSimulator:
        sim = await start_simulator(simulator_config({"listen": f"{HOST}:{port}", "record_limit": 0, **settings}))
        if port in self.ports:
            self.good.append(sim)
        self.live[port] = sim
        return sim

    def reconfigure(self, **settings: object) -> None:
        for port in self.ports:
            sim = self.live.get(port)
            if sim is not None:
                sim.sim.reconfigure(simulator_config({"listen": f"{HOST}:{port}", "record_limit": 0, **settings}))

    def store_mb(self) -> float:
        return sum(os.path.getsize(p) for p in (self.db, Path(f"{self.db}-wal"), Path(f"{self.db}-shm"))
                   if p.exists()) / 1e6

    async def owner_binds(self) -> None:
        """The good client's address binds once as acme before the schedule goes on.

        The hub does not let a system_id's lockout refuse an address that bound as that
        system_id before (it trusts the owner's ESME; a stranger guessing can lock out only
        strangers). An owner's ESME has bound long before an attack comes, and after the
        hub restarts it binds again within its reconnect delay. The short soak squeezes
        each phase into a fraction of a second, so the load generator's first bind (after
        its own start-up) could come after the guessers had locked acme, and be refused as
        a stranger's; this bind puts the soak back where the long run is.
        """
        try:
            async with smppcore.connect(HOST, self.hub_port, system_id="acme", password="pw", bind="tx"):
                pass
        except (OSError, TimeoutError, smppcore.SmppError) as exc:
            raise SoakError(f"the good client's account could not bind: {exc}{self.hub.log_tail()}") from None

    async def sample(self) -> None:
        """The hub's RSS, four times a second: its peak per phase and overall."""
        while True:
            self.phase_rss = max(self.phase_rss, self.hub.rss_kib())
            await asyncio.sleep(0.25)

    async def run(self) -> SoakReport:
        for port in self.ports:
            await self.smsc(port)
        flood_port = free_port()
        await self.smsc(flood_port)
        self.hub.config.write_text(hub_toml(self.hub_port, self.ports, flood_port, self.db, self.rate))
        await self.hub.start()
        await self.owner_binds()
        result_path = self.folder / "bench.json"
        bench = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "smpphub", "bench", "--target", f"{HOST}:{self.hub_port}", "--system-id", "acme",
            "--password", "pw", "--binds", "2", "--window", "50", "--rate", f"{self.rate:g}",
            "--duration", f"{self.duration:g}", "--dlr", "--receipt-wait", f"{self.receipt_wait:g}", "--quiet",
            "--json", str(result_path), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        sampler = asyncio.get_running_loop().create_task(self.sample())
        windows: list[tuple[str, float, float, float, float]] = []
        length = self.duration / len(PHASES)
        try:
            for name in PHASES:
                began = time.time()
                self.phase_rss = 0
                undo = await self.strike(name, length)
                await asyncio.sleep(max(0.0, began + length - time.time()))  # the schedule's clock
                await undo()
                windows.append((name, began, time.time(), self.phase_rss / 1024, self.store_mb()))
            _, err = await asyncio.wait_for(bench.communicate(), RECEIPT_WAIT + 120)
            if bench.returncode != 0:
                raise SoakError(f"the load generator failed: {err.decode(errors='replace').strip()}"
                                f"{self.hub.log_tail()}")
        finally:
            sampler.cancel()
            await self.attacks.stop()
            if bench.returncode is None:
                bench.kill()
            await self.hub.terminate()
            for sim in self.live.values():
                await sim.close()
        bench_result = json.loads(result_path.read_text())
        with contextlib.closing(sqlite3.connect(self.db)) as db:  # the hub has stopped: the file is ours
            self.store_counts = dict(db.execute(
                "SELECT state, COUNT(*) FROM messages WHERE account = 'acme' GROUP BY state").fetchall())
            # final, the receipt still held for the good client (it unbound before taking it): the hub
            # hands it over at its next bind, so it is not lost either
            self.held_ids = {i for (i,) in db.execute(
                "SELECT ltrim(lower(id), '0') FROM receipts_owed JOIN messages USING (id) WHERE account = 'acme'")}
            self.sent_ids = {i for (i,) in db.execute(
                "SELECT ltrim(lower(id), '0') FROM messages WHERE account = 'acme' AND state = 'sent'")}
            self.suspects = [
                *(f"no receipt came for {row}" for row in _rows_of(db, bench_result.get("unreceipted_ids", []))),
                *(f"a receipt matched nothing: {row}" for row in _rows_of(db, bench_result.get("unmatched_ids", []))),
            ]
        return self.report(bench_result, windows)

    async def strike(self, name: str, length: float) -> Callable[[], object]:
        """Start the phase's fault or attack; returns what ends it."""
        nothing = _nothing
        if name == "idle flood":
            self.attacks.start("idle")
            return functools.partial(self.attacks.stop, "idle")
        if name == "non-readers":
            self.attacks.start("non-readers")
            return functools.partial(self.attacks.stop, "non-readers")
        if name == "password guessers":
            self.attacks.start("guessers")
            return functools.partial(self.attacks.stop, "guessers")
        if name == "upstream drops + throttling":
            self.reconfigure(chaos={"drop_probability": 0.002}, throttle={"per_bind": self.rate / 3},
                             submit_latency={"kind": "uniform", "max_ms": 20})
            return self._calm
        if name == "error bursts":
            self.reconfigure(errors={"probabilities": {"ESME_RSYSERR": 0.2, "ESME_RTHROTTLED": 0.1,
                                                       "ESME_RINVDSTADR": 0.01}})
            return self._calm
        if name == "upstream dies and returns":
            dead = self.live.pop(self.ports[0])
            dead.server.stop_accepting()
            for conn in list(dead.server.connections):
                conn.abort()
            await dead.close()
            return functools.partial(self.smsc, self.ports[0])
        if name == "hub SIGKILL + restart":
            await self.hub.kill()
            await asyncio.sleep(min(1.0, length / 4))  # down for a moment, as a crash and a supervisor make it
            await self.hub.start()
            await self.owner_binds()
            return nothing
        if name == "everything at once":
            for kind in ("idle", "non-readers", "guessers"):
                self.attacks.start(kind)
            self.reconfigure(chaos={"drop_probability": 0.002}, errors={"probabilities": {"ESME_RSYSERR": 0.1}})
            return self._everything_off
        return nothing

    async def _calm(self) -> None:
        self.reconfigure()

    async def _everything_off(self) -> None:
        await self.attacks.stop()
        self.reconfigure()

    def report(self, bench: dict, windows: list[tuple[str, float, float, float, float]]) -> SoakReport:
        started = bench["started_at"]
        per_second = {started + s["t"]: s["acked"] for s in bench["timeline"]}

        def median_rate(a: float, b: float) -> float:
            inside = [n for t, n in per_second.items() if a + 1 <= t < b - 1] or [0]
            return float(statistics.median(inside))

        quiet = median_rate(windows[0][1], windows[0][2]) or 1.0
        phases = [PhaseRow(name=n, seconds=round(b - a, 1), good_rate=median_rate(a, b),
                           ratio=round(median_rate(a, b) / quiet, 2), hub_rss_mib=round(rss, 1), store_mb=round(mb, 2))
                  for n, a, b, rss, mb in windows]
        delivered = sum(s.sim.stats.accepted for s in self.good)
        refused_for_good = sum(s.sim.stats.rejected.get("ESME_RINVDSTADR", 0) for s in self.good)
        acked = bench["acked"]
        # counted by id: the acked ids whose receipt never came, each looked up in the store. A kill can
        # store a message and lose its ack (its receipt comes for an id the generator never saw), and a
        # receipt can reach the client while its answer does not reach the hub (held, and received):
        # neither may hide a loss or make one
        missing = bench["unreceipted_ids"]
        if len(missing) == bench["unreceipted"]:
            # delivered upstream, its receipt never sent: an SMSC that died took the receipts it still owed
            awaiting = sum(1 for i in missing if i in self.sent_ids)
            held = sum(1 for i in missing if i in self.held_ids)
        else:  # more than the load generator lists: count as the store does (it can only undercount losses)
            awaiting, held = len(self.sent_ids), len(self.held_ids)
        return SoakReport(
            duration=self.duration, rate=self.rate, phases=phases, sent=bench["sent"], acked=acked,
            refused=bench["errors"], delivered=delivered, receipted=acked - bench["unreceipted"],
            receipts_counted=bench["receipts"] - bench["unmatched_receipts"],
            lost=bench["unreceipted"] - awaiting - held, awaiting_receipt=awaiting,
            receipts_held=held, receipts_held_other=len(self.held_ids) - held, reused_ids=bench["reused_ids"],
            extra_upstream=delivered - (acked - refused_for_good),
            duplicate_receipts=bench["duplicate_receipts"], hub_peak_rss_mib=round(self.hub.peak_rss_kib / 1024, 1),
            reconnects_good=bench["reconnects"], upstream_binds=sum(s.sim.stats.binds for s in self.good),
            hub_starts=self.hub.starts, attacks=dict(self.attacks.counts), store_at_end=self.store_counts,
            suspects=self.suspects)


def _rows_of(db: sqlite3.Connection, ids: list[str]) -> list[str]:
    """Each id (as the load generator normalised it: lower case, no leading zeros) with its store row."""
    found = []
    for message_id in ids:
        row = db.execute(
            "SELECT id, state, upstream, upstream_id, attempts, created_at, updated_at, "
            "EXISTS (SELECT 1 FROM receipts_owed o WHERE o.id = m.id) FROM messages m "
            "WHERE id = ? OR ltrim(lower(id), '0') = ?", (message_id, message_id)).fetchone()
        found.append(f"{message_id}: " + (
            "not in the store" if row is None else
            f"id {row[0]} state {row[1]} upstream {row[2]} upstream_id {row[3]} attempts {row[4]} "
            f"created {row[5]:.3f} updated {row[6]:.3f} receipt owed {bool(row[7])}"))
    return found


async def _nothing() -> None:
    return None


# ---- the table ----------------------------------------------------------------------------------


def format_report(r: SoakReport) -> str:
    lines = [f"soak: {r.duration:g} s at {r.rate:g} msg/s (good client: smpphub bench, 2 binds, receipts asked)", "",
             f"{'phase':<28} {'seconds':>8} {'good acked/s':>13} {'vs quiet':>9} {'hub RSS MiB':>12} {'store MB':>9}"]
    for p in r.phases:
        lines.append(f"{p.name:<28} {p.seconds:>8.1f} {p.good_rate:>13.1f} {p.ratio:>9.2f} {p.hub_rss_mib:>12.1f} "
                     f"{p.store_mb:>9.2f}")
    refused = ", ".join(f"{k} {v}" for k, v in sorted(r.refused.items())) or "none"
    lines += [
        "",
        f"sent {r.sent}  acked {r.acked}  delivered upstream {r.delivered}  receipted {r.receipted}"
        f" (receipts counted {r.receipts_counted})",
        f"lost {r.lost}  (must be 0: acked ids whose final receipt never came, less those whose receipt the hub"
        f" still holds for the client's next bind ({r.receipts_held}), less those delivered upstream whose receipt"
        f" an SMSC that died never sent ({r.awaiting_receipt}))",
        f"duplicates: upstream accepts beyond the acked {r.extra_upstream} (in flight at faults, and stored but"
        f" unacked at the kill), duplicate receipts {r.duplicate_receipts}, receipts held for ids received or"
        f" never acked {r.receipts_held_other}; ids acked twice {r.reused_ids} (must be 0)",
        f"good client: refused or unanswered {refused}; reconnects {r.reconnects_good}",
        f"hub: peak RSS {r.hub_peak_rss_mib:.1f} MiB, starts {r.hub_starts}; upstream binds {r.upstream_binds}",
        "attacks: " + ", ".join(f"{k} {v}" for k, v in r.attacks.items()),
        "the good client's messages in the store at the end: "
        + ", ".join(f"{k} {v}" for k, v in sorted(r.store_at_end.items())),
        *r.suspects,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m smpphub.bench.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", default="10m", help="how long the good client sends: 90s, 10m (default 10m)")
    p.add_argument("--rate", default="200", help="the good client's messages per second (default 200)")
    p.add_argument("--receipt-wait", default=f"{RECEIPT_WAIT:g}s",
                   help=f"how long the good client waits for its last receipts after sending (default "
                        f"{RECEIPT_WAIT:g}s); a receipt an SMSC took with it when it died never comes")
    p.add_argument("--out", help="also write the table to this file")
    p.add_argument("--json", help="write every figure as JSON")
    args = p.parse_args(argv)
    try:
        duration = parse_seconds("duration", args.duration)
        receipt_wait = parse_seconds("receipt-wait", args.receipt_wait)
        try:
            rate = float(args.rate)
        except ValueError:
            raise UsageError(f"--rate: expected a number of messages per second, got {args.rate!r}") from None
        if not 0 < rate < float("inf"):
            raise UsageError(f"--rate must be positive, got {args.rate!r}")
    except UsageError as exc:
        print(f"smpphub.bench.soak: {exc}", file=sys.stderr)
        return 2
    assert duration is not None and receipt_wait is not None
    with tempfile.TemporaryDirectory(prefix="smpphub-soak-") as folder:
        try:
            report = asyncio.run(Soak(duration, rate, Path(folder), receipt_wait).run())
        except SoakError as exc:
            print(f"smpphub.bench.soak: {exc}", file=sys.stderr)
            return 1
    table = format_report(report)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")
    if args.json:
        Path(args.json).write_bytes(msgspec.json.encode(report))
    return 0 if report.lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
