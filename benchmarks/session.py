"""Session benchmark: two processes on loopback, submit_sm -> submit_sm_resp.

Run ``python -m benchmarks.session`` (``--quick`` for a smoke run). For each pair of
client and server and each window (``--windows``, default 1,10,100) it starts a server
process and a client process, both on 127.0.0.1, and reports:

- **msg/s**: messages per second, measured by the client from just before the first
  send to the last response;
- **p50 / p99 ms**: latency of each submit_sm to its submit_sm_resp, one
  ``time.perf_counter_ns`` (node: ``process.hrtime.bigint``) timestamp pair per
  message, percentiles by nearest rank over the sorted list of all of them;
- **client / server CPU us/msg**: user + system CPU time of each process over the
  measured phase only, from the OS accounting (``getrusage(RUSAGE_SELF)``, node:
  ``process.cpuUsage()``; both count every thread of the process), divided by the
  number of messages. The client reports its own delta over its run; the server
  reports its counter when the orchestrator writes ``start`` and ``stop`` to its stdin,
  just before the client is told to go and just after the client reported.

Pairs (``--pairs``, comma separated, default all):

========== =============================================================================
ours       smppcore client -> smppcore server (default SmscHandler), uvloop
smpp34     smpp34 Client -> smpp34 Server (its own API; W concurrent tasks awaiting
           ``Smsc.submit_sm``, ``window_size=W``; the server accepts from ``next()``)
node       node-smpp client -> node-smpp server (peers/node_session_*.js)
raw        smppcore client -> a bare asyncio.Protocol on uvloop that frames the PDU
           stream (command_length, slices whole PDUs, no decoding) and answers each
           submit_sm with fixed submit_sm_resp bytes, its sequence number patched in:
           the ceiling for any Python server on this loop
ours-node  smppcore client -> node-smpp server
node-ours  node-smpp client -> smppcore server
========== =============================================================================

The last two put each server under the same client as the other: a server's CPU per
message is compared with the same client driving both (ours->ours against
ours->node, node->ours against node->node).

Every client binds as a transceiver, submits ``--warmup`` messages (so JITs and caches
are warm), waits for "go", then submits ``--count`` messages keeping ``W`` in flight:
smppcore's client through one producer (``fut = await client.send(SubmitSm(...))``, a
done-callback per future), node-smpp's by sending the next submit_sm from each
response callback. The message is the codec benchmark's submit_sm (international
addresses, 40-octet text, registered_delivery=1), built anew for every send.

Each measurement gets fresh processes. Measurements are repeated ``--repeat`` times
(3), interleaved (repetition, then window, then pair, in a rotating order) so a noisy
neighbour hits every pair alike; each figure is the median of its repetitions. With
``--pin`` (the default when there are two CPUs or more) the client runs on one CPU and
the server on another.

Every process uses TCP_NODELAY: asyncio and uvloop set it on every TCP transport, and
the node scripts set it too (``--node-nagle`` leaves node's default, Nagle on).
The JSON (``--json``) also has each side's system (kernel) CPU per message.

The sub-modes are ``python -m benchmarks.session server --impl {ours,raw,smpp34}``
(prints ``PORT n``; stdin ``start``/``stop`` -> ``CPU user_us system_us``; ``quit``)
and ``python -m benchmarks.session client --impl {ours,smpp34} --port P ...`` (prints
``READY``, waits for ``go``, prints ``RESULT {json}``, unbinds on ``quit``); both
take ``--profile FILE`` to write a cProfile of their measured phase. The
orchestrator's ``--profile DIR`` passes one to every Python process, ``--pyspy DIR``
samples every Python process's measured phase with py-spy (if installed; it is not a
dependency), and both print each process's top functions by own time.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import math
import os
import platform
import resource
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

if __name__ == "__main__" and not __package__:  # python benchmarks/session.py
    _ROOT = Path(__file__).resolve().parent.parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"]
    sys.path.insert(0, str(_ROOT))

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(__file__).resolve().parent / "peers"
NODE_CLIENT = PEERS / "node_session_client.js"
NODE_SERVER = PEERS / "node_session_server.js"
NODE_MODULES = ROOT / "tests" / "interop" / "node" / "node_modules"

HOST = "127.0.0.1"
SOURCE = "447700900001"
DESTINATION = "447700900123"
TEXT = b"Your verification code is 482913. Thanks"  # 40 octets of GSM 03.38 text

# pair -> (client implementation, server implementation)
PAIRS: dict[str, tuple[str, str]] = {
    "ours": ("ours", "ours"),
    "smpp34": ("smpp34", "smpp34"),
    "node": ("node", "node"),
    "raw": ("ours", "raw"),
    "ours-node": ("ours", "node"),
    "node-ours": ("node", "ours"),
}
LABELS = {
    "ours": "ours -> ours",
    "smpp34": "smpp34 -> smpp34",
    "node": "node -> node",
    "raw": "ours -> raw ceiling",
    "ours-node": "ours -> node",
    "node-ours": "node -> ours",
}
METRICS = ("msg_per_s", "p50_ms", "p99_ms", "client_cpu_us", "server_cpu_us", "client_sys_us", "server_sys_us")


# ---- shared helpers -------------------------------------------------------------------


def percentile(sorted_values: list, p: float) -> float:
    """Nearest-rank percentile of an ascending list (the same rule as the node client)."""
    n = len(sorted_values)
    if n == 0:
        return 0
    rank = max(1, math.ceil(p / 100 * n))
    return sorted_values[min(rank, n) - 1]


def cpu_us() -> int:
    """User + system CPU of this whole process (every thread), in microseconds."""
    return sum(cpu_split_us())


def cpu_split_us() -> tuple[int, int]:
    """(user, system) CPU of this whole process (every thread), in microseconds."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return round(ru.ru_utime * 1e6), round(ru.ru_stime * 1e6)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class StdinCommands:
    """Lines from stdin, read on the running event loop (no thread: a profiler and the
    CPU counters see the loop's thread only doing loop work)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_line: Callable[[str | None], None]) -> None:
        self.loop = loop
        self.on_line = on_line
        self.buf = b""
        self.fd = sys.stdin.fileno()
        os.set_blocking(self.fd, False)
        loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            chunk = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        if not chunk:
            self.loop.remove_reader(self.fd)
            self.on_line(None)
            return
        self.buf += chunk
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self.on_line(line.decode().strip())


class Profile:
    """cProfile of the measured phase, when a file was asked for."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.prof = None
        if path:
            import cProfile

            self.prof = cProfile.Profile()

    def start(self) -> None:
        if self.prof is not None:
            self.prof.enable()

    def stop(self) -> None:
        if self.prof is not None:
            self.prof.disable()
            self.prof.dump_stats(self.path)


def _new_loop() -> asyncio.AbstractEventLoop:
    from smppcore import new_event_loop

    return new_event_loop()


# ---- server sub-mode ------------------------------------------------------------------

# Fixed bytes of the raw server: a submit_sm_resp with a 10-digit message_id, and the
# responses it needs besides (bind_transceiver_resp, enquire_link_resp, unbind_resp,
# generic_nack); the sequence number is patched in at [12:16].
_RAW_MESSAGE_ID = b"1234567890\x00"
_SUBMIT_RESP_HEAD = struct.pack(">III", 16 + len(_RAW_MESSAGE_ID), 0x80000004, 0)
_BIND_RESP = {  # bind_* -> its resp with system_id "raw"
    cid: struct.pack(">III", 16 + 4, cid | 0x80000000, 0) for cid in (1, 2, 9)
}
_EMPTY_RESP = {0x15: struct.pack(">III", 16, 0x80000015, 0), 0x06: struct.pack(">III", 16, 0x80000006, 0)}
_GENERIC_NACK = struct.pack(">III", 16, 0x80000000, 0x00000003)  # ESME_RINVCMDID


class RawSmsc(asyncio.Protocol):
    """The ceiling: frame by command_length, slice each PDU, answer from fixed bytes."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        end = len(buf)
        pos = 0
        out = []
        close = False
        unpack = struct.unpack_from
        while end - pos >= 16:
            length, cid = unpack(">II", buf, pos)
            if length < 16 or length > 65536:
                close = True
                break
            if end - pos < length:
                break
            pdu = buf[pos : pos + length]
            pos += length
            seq = pdu[12:16]
            if cid == 4:
                out.append(_SUBMIT_RESP_HEAD + seq + _RAW_MESSAGE_ID)
            elif cid in _BIND_RESP:
                out.append(_BIND_RESP[cid] + seq + b"raw\x00")
            elif cid in _EMPTY_RESP:
                out.append(_EMPTY_RESP[cid] + seq)
                close = close or cid == 0x06
            elif not cid & 0x80000000:
                out.append(_GENERIC_NACK + seq)
            if len(out) >= 16:  # like smppcore: write early so the client works meanwhile
                self.transport.write(b"".join(out))
                out.clear()
        self.buf = buf[pos:]
        if out:
            self.transport.write(b"".join(out))
        if close:
            self.transport.close()


async def _start_server(impl: str, host: str, port: int) -> tuple[int, Callable[[], Any]]:
    """Start the ``impl`` server; return (port, async stop)."""
    loop = asyncio.get_running_loop()
    if impl == "ours":
        import smppcore

        srv = await smppcore.serve(smppcore.SmscHandler(), host, port)
        return srv.port, srv.close
    if impl == "raw":
        srv = await loop.create_server(RawSmsc, host, port)

        async def stop_raw() -> None:
            srv.close()

        return srv.sockets[0].getsockname()[1], stop_raw
    if impl == "smpp34":
        import smpp34

        if port == 0:  # smpp34's Server does not say which port it got: pick a free one
            import socket

            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        srv34 = smpp34.Server(host, port, system_id="smpp34")
        await srv34.start()

        async def accept_loop() -> None:
            SubmitSmEvent = smpp34.SubmitSmEvent
            n = 0
            while True:
                ev = await srv34.next()
                if type(ev) is SubmitSmEvent:
                    n += 1
                    ev.accept(str(n))

        task = loop.create_task(accept_loop())

        async def stop_34() -> None:
            task.cancel()
            await srv34.stop()

        return port, stop_34
    raise ValueError(f"unknown server implementation {impl!r}")


async def _server_main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    prof = Profile(args.profile)
    port, stop = await _start_server(args.impl, args.host, args.port)

    def on_line(line: str | None) -> None:
        if line == "start":
            say("CPU %d %d" % cpu_split_us())
            prof.start()
        elif line == "stop":
            prof.stop()
            say("CPU %d %d" % cpu_split_us())
        elif line is None or line == "quit":
            if not done.done():
                done.set_result(None)

    StdinCommands(loop, on_line)
    say(f"PORT {port}")
    try:
        await done
    finally:
        try:
            await asyncio.wait_for(stop(), 2)
        except Exception:  # noqa: BLE001 - exiting anyway
            pass


# ---- client sub-mode ------------------------------------------------------------------


async def _ours_drive(client: Any, n: int) -> tuple[int, list[int], list[int], int]:
    """Submit n messages keeping the client's window full; timestamps in ns."""
    from smppcore import SubmitSm

    loop = asyncio.get_running_loop()
    starts = [0] * n
    ends = [0] * n
    state = {"left": n, "errors": 0}
    finished = loop.create_future()
    clock = time.perf_counter_ns
    if n == 0:
        return clock(), starts, ends, 0

    def on_done(i: int, fut: asyncio.Future) -> None:
        ends[i] = clock()
        if fut.cancelled() or fut.exception() is not None or fut.result().command_status:
            state["errors"] += 1
        state["left"] -= 1
        if not state["left"] and not finished.done():
            finished.set_result(None)

    send = client.send
    t0 = clock()
    for i in range(n):
        fut = await send(
            SubmitSm(
                source_addr_ton=1, source_addr_npi=1, source_addr=SOURCE,
                dest_addr_ton=1, dest_addr_npi=1, destination_addr=DESTINATION,
                registered_delivery=1, short_message=TEXT,
            )
        )
        starts[i] = clock()
        fut.add_done_callback(partial(on_done, i))
    await finished
    return t0, starts, ends, state["errors"]


async def _smpp34_drive(smsc: Any, n: int, window: int) -> tuple[int, list[int], list[int], int]:
    """Submit n messages from ``window`` concurrent tasks (its submit_sm awaits one)."""
    starts = [0] * n
    ends = [0] * n
    errors = 0
    clock = time.perf_counter_ns
    indices = iter(range(n))

    async def worker() -> None:
        nonlocal errors
        submit = smsc.submit_sm
        for i in indices:
            starts[i] = clock()
            try:
                resp = await submit(
                    DESTINATION, TEXT, source_addr=SOURCE,
                    source_addr_ton=1, source_addr_npi=1, dest_addr_ton=1, dest_addr_npi=1,
                    registered_delivery=1,
                )
                ok = resp.is_success
            except Exception:  # noqa: BLE001 - counted
                ok = False
            ends[i] = clock()
            if not ok:
                errors += 1

    t0 = clock()
    await asyncio.gather(*(worker() for _ in range(min(window, max(n, 1)))))
    return t0, starts, ends, errors


async def _client_main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    go = loop.create_future()
    quit_ = loop.create_future()
    prof = Profile(args.profile)

    def on_line(line: str | None) -> None:
        if line == "go" and not go.done():
            go.set_result(None)
        elif line is None or line == "quit":
            for f in (go, quit_):
                if not f.done():
                    f.set_result(None)

    StdinCommands(loop, on_line)

    if args.impl == "ours":
        import smppcore

        client = await smppcore.connect(args.host, args.port, system_id="bench", password="bench", window=args.window)

        async def drive(n: int) -> tuple[int, list[int], list[int], int]:
            return await _ours_drive(client, n)

        async def finish() -> None:
            await client.unbind()

    elif args.impl == "smpp34":
        import smpp34

        c34 = smpp34.Client(args.host, args.port, "bench", "bench", window_size=args.window)
        smsc = await c34.connect()

        async def drive(n: int) -> tuple[int, list[int], list[int], int]:
            return await _smpp34_drive(smsc, n, args.window)

        async def finish() -> None:
            await smsc.unbind()
            await c34.stop()

    else:
        raise ValueError(f"unknown client implementation {args.impl!r}")

    await drive(args.warmup)
    say("READY")
    await go
    if quit_.done():
        return
    prof.start()
    u0, s0 = cpu_split_us()
    t0, starts, ends, errors = await drive(args.count)
    u1, s1 = cpu_split_us()
    prof.stop()
    n = args.count
    lat = sorted(e - s for s, e in zip(starts, ends))
    result = {
        "impl": args.impl,
        "n": n,
        "errors": errors,
        "elapsed_ns": (max(ends) - t0) if n else 0,
        "cpu_us": (u1 - u0) + (s1 - s0),
        "cpu_sys_us": s1 - s0,
        "p50_ns": percentile(lat, 50),
        "p99_ns": percentile(lat, 99),
        "max_ns": lat[-1] if lat else 0,
    }
    say("RESULT " + json.dumps(result))
    await quit_
    try:
        await asyncio.wait_for(finish(), 2)
    except Exception:  # noqa: BLE001 - exiting anyway
        pass


def _run_submode(coro_fn: Callable[[argparse.Namespace], Any], args: argparse.Namespace) -> int:
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(coro_fn(args))
    except KeyboardInterrupt:
        return 130
    finally:
        loop.close()
    return 0


# ---- orchestrator ---------------------------------------------------------------------

_LIVE: set["Child"] = set()


def _child_setup(cpu: int | None) -> Callable[[], None]:
    def setup() -> None:
        # Die with the orchestrator, whatever kills it (Linux: PR_SET_PDEATHSIG).
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)
        except Exception:  # noqa: BLE001 - not Linux: the finally blocks still clean up
            pass
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            try:
                os.sched_setaffinity(0, {cpu})
            except OSError:
                pass

    return setup


class ChildFailed(RuntimeError):
    pass


class Child:
    """A sub-process speaking the line protocol above."""

    def __init__(self, argv: list[str], name: str, cpu: int | None, env: dict[str, str]) -> None:
        self.name = name
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            cwd=str(ROOT),
            env=env,
            preexec_fn=_child_setup(cpu),
        )
        _LIVE.add(self)
        self._buf = b""

    def send(self, line: str) -> None:
        try:
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def _stderr_tail(self) -> str:
        try:
            self.stderr.seek(0)
            return self.stderr.read().decode(errors="replace")[-1500:]
        except (OSError, ValueError):
            return ""

    def expect(self, prefix: str, timeout: float) -> str:
        """The next stdout line starting with ``prefix`` (others are ignored)."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self._buf:
                raw, self._buf = self._buf.split(b"\n", 1)
                line = raw.decode(errors="replace").strip()
                if line.startswith(prefix):
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChildFailed(f"{self.name}: no {prefix!r} within {timeout:.0f}s; stderr: {self._stderr_tail()}")
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.proc.wait(timeout=2)
                    raise ChildFailed(
                        f"{self.name}: exited ({self.proc.returncode}) before {prefix!r}; stderr: {self._stderr_tail()}"
                    )
                self._buf += chunk

    def close(self, grace: float = 3.0) -> None:
        try:
            if self.proc.poll() is None:
                self.send("quit")
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass
                try:
                    self.proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
        finally:
            for f in (self.proc.stdout, self.proc.stdin, self.stderr):
                try:
                    f.close()
                except Exception:  # noqa: BLE001
                    pass
            _LIVE.discard(self)

    def kill(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        finally:
            _LIVE.discard(self)


def _kill_all() -> None:
    children = list(_LIVE)
    for child in children:  # SIGKILL every one first, then reap
        if child.proc.poll() is None:
            child.proc.kill()
    for child in children:
        child.kill()


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["NODE_PATH"] = os.pathsep.join(p for p in (str(NODE_MODULES), env.get("NODE_PATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.pop("SMPPHUB_NO_UVLOOP", None)
    return env


def _server_argv(impl: str, profile: str | None, node_nodelay: bool = True) -> list[str]:
    if impl == "node":
        return [_node(), str(NODE_SERVER), "--host", HOST, "--port", "0", "--nodelay", str(int(node_nodelay))]
    argv = [sys.executable, "-m", "benchmarks.session", "server", "--impl", impl, "--host", HOST, "--port", "0"]
    return argv + (["--profile", profile] if profile else [])


def _client_argv(
    impl: str, port: int, count: int, window: int, warmup: int, profile: str | None, node_nodelay: bool = True
) -> list[str]:
    common = ["--host", HOST, "--port", str(port), "--count", str(count), "--window", str(window), "--warmup", str(warmup)]
    if impl == "node":
        return [_node(), str(NODE_CLIENT), *common, "--nodelay", str(int(node_nodelay))]
    argv = [sys.executable, "-m", "benchmarks.session", "client", "--impl", impl, *common]
    return argv + (["--profile", profile] if profile else [])


def _node() -> str:
    return shutil.which("node") or "node"


def measure(
    pair: str,
    window: int,
    *,
    count: int,
    warmup: int,
    cpus: tuple[int | None, int | None],
    profile_dir: Path | None = None,
    pyspy_dir: Path | None = None,
    tag: str = "",
    node_nodelay: bool = True,
) -> dict[str, Any]:
    """One measurement of ``pair`` at ``window``, in two fresh processes."""
    client_impl, server_impl = PAIRS[pair]
    env = _child_env()
    prof = {}
    if profile_dir is not None:
        for role, impl in (("client", client_impl), ("server", server_impl)):
            if impl != "node":
                prof[role] = str(profile_dir / f"{pair}-w{window}{tag}-{role}-{impl}.prof")
    # Generous: 20 s plus 2 ms per message (window 1 of a slow peer on a busy machine).
    timeout = 20 + count * 0.002
    server = client = None
    ok = False
    spies: list[tuple[str, str, subprocess.Popen]] = []
    try:
        server = Child(_server_argv(server_impl, prof.get("server"), node_nodelay), f"{pair} server ({server_impl})", cpus[1], env)
        port = int(server.expect("PORT", 30).split()[1])
        client = Child(
            _client_argv(client_impl, port, count, window, warmup, prof.get("client"), node_nodelay),
            f"{pair} client ({client_impl})",
            cpus[0],
            env,
        )
        client.expect("READY", 30 + warmup * 0.002)
        if pyspy_dir is not None:
            for role, impl, child in (("client", client_impl, client), ("server", server_impl, server)):
                if impl != "node":
                    path = str(pyspy_dir / f"{pair}-w{window}{tag}-{role}-{impl}.txt")
                    spies.append((role, path, _start_pyspy(child.proc.pid, path)))
            time.sleep(1.0)  # let py-spy attach
        server.send("start")
        s0 = [int(x) for x in server.expect("CPU", 10).split()[1:3]]  # user, system
        client.send("go")
        res = json.loads(client.expect("RESULT", timeout)[len("RESULT "):])
        server.send("stop")
        s1 = [int(x) for x in server.expect("CPU", 10).split()[1:3]]
        ok = True
        for _, _, spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        for role, path, spy in spies:
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            prof[f"{role}-pyspy"] = path
    finally:
        for _, _, spy in spies:
            if spy.poll() is None:
                spy.kill()
                spy.wait()
        for child in (client, server):
            if child is not None:
                child.close() if ok else child.kill()  # on any error or signal: kill at once
    n = res["n"]
    elapsed_s = res["elapsed_ns"] / 1e9
    return {
        "pair": pair,
        "window": window,
        "n": n,
        "errors": res["errors"],
        "elapsed_s": elapsed_s,
        "msg_per_s": n / elapsed_s if elapsed_s > 0 else 0.0,
        "p50_ms": res["p50_ns"] / 1e6,
        "p99_ms": res["p99_ns"] / 1e6,
        "max_ms": res["max_ns"] / 1e6,
        "client_cpu_us": res["cpu_us"] / n if n else 0.0,
        "server_cpu_us": (s1[0] + s1[1] - s0[0] - s0[1]) / n if n else 0.0,
        # the kernel's share (system time), per message: syscalls, TCP/IP on loopback
        "client_sys_us": res["cpu_sys_us"] / n if n else 0.0,
        "server_sys_us": (s1[1] - s0[1]) / n if n else 0.0,
        "profiles": prof,
    }


def _pick_cpus(pin: bool | None) -> tuple[int | None, int | None]:
    if pin is False or not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


def _available(pairs: list[str]) -> dict[str, str]:
    """pair -> why it cannot run (missing node, node-smpp or smpp34)."""
    missing: dict[str, str] = {}
    node_ok = shutil.which("node") is not None and (NODE_MODULES / "smpp").is_dir()
    try:
        import smpp34  # noqa: F401

        smpp34_ok = True
    except ImportError:
        smpp34_ok = False
    for pair in pairs:
        impls = PAIRS[pair]
        if "node" in impls and not node_ok:
            missing[pair] = "node or node-smpp not installed"
        elif "smpp34" in impls and not smpp34_ok:
            missing[pair] = "smpp34 not installed"
    return missing


def _fmt_rate(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def _fmt(x: float | None, digits: int) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def format_table(medians: dict[str, dict[int, dict[str, float]]], pairs: list[str], windows: list[int]) -> str:
    head = ["pair", "window", "msg/s", "p50 ms", "p99 ms", "client CPU us/msg", "server CPU us/msg"]
    rows = []
    for pair in pairs:
        for w in windows:
            m = medians.get(pair, {}).get(w)
            if m is None:
                rows.append([LABELS[pair], str(w), "n/a", "n/a", "n/a", "n/a", "n/a"])
                continue
            rows.append(
                [
                    LABELS[pair],
                    str(w),
                    _fmt_rate(m["msg_per_s"]),
                    _fmt(m["p50_ms"], 3),
                    _fmt(m["p99_ms"], 3),
                    _fmt(m["client_cpu_us"], 1),
                    _fmt(m["server_cpu_us"], 1),
                ]
            )
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) if rows else len(head[i]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return " | ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells))

    out = [line(head), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)


def target_lines(medians: dict[str, dict[int, dict[str, float]]], window: int = 100) -> list[str]:
    def get(pair: str, metric: str) -> float | None:
        m = medians.get(pair, {}).get(window)
        return None if m is None else m[metric]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = [f"targets at window {window}:"]
    a, b = get("ours", "msg_per_s"), get("node", "msg_per_s")
    if a and b:
        r = a / b
        lines.append(f"  ours->ours msg/s / node->node msg/s = {a:,.0f} / {b:,.0f} = {r:.2f}x (target >= 3x: {verdict(r >= 3)})")
    else:
        lines.append("  ours->ours msg/s / node->node msg/s = n/a (needs pairs ours and node)")
    for client, ours_pair, node_pair in (("ours", "ours", "ours-node"), ("node", "node-ours", "node")):
        a, b = get(ours_pair, "server_cpu_us"), get(node_pair, "server_cpu_us")
        if a is not None and b:
            r = a / b
            lines.append(
                f"  server CPU us/msg, same client ({client}): ours {a:.1f} / node-smpp {b:.1f} = {r:.3f}x"
                f" (target <= 0.25x: {verdict(r <= 0.25)})"
            )
        else:
            lines.append(
                f"  server CPU us/msg, same client ({client}): n/a (needs pairs {ours_pair} and {node_pair})"
            )
    a, b = get("ours", "msg_per_s"), get("raw", "msg_per_s")
    if a and b:
        r = a / b
        lines.append(f"  ours->ours msg/s / raw ceiling msg/s = {a:,.0f} / {b:,.0f} = {r:.1%} (target >= 60%: {verdict(r >= 0.6)})")
    else:
        lines.append("  ours->ours msg/s / raw ceiling msg/s = n/a (needs pairs ours and raw)")
    return lines


def _start_pyspy(pid: int, path: str) -> subprocess.Popen:
    """Sample ``pid`` with py-spy (not paused: --nonblocking) into ``path`` (collapsed stacks)."""
    exe = shutil.which("py-spy")
    if exe is None:
        raise ChildFailed("--pyspy needs py-spy (pip install py-spy)")
    argv = [exe, "record", "--pid", str(pid), "--format", "raw", "--rate", "997", "--nonblocking", "-o", path]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_child_setup(None))


def summarize_pyspy(path: str, top: int) -> list[tuple[float, str]]:
    """(share of samples, function) by own time, from py-spy's collapsed stacks.

    Samples whose innermost Python frame is the event loop's run call are time in
    uvloop's own C code (reading, writing, polling, running callbacks).
    """
    import collections
    import re

    own: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, n = line.rstrip().rpartition(" ")
            if not stack or not n.isdigit():
                continue
            frames = [fr for fr in stack.split(";") if not fr.startswith(("process ", "thread "))]
            if frames:
                own[re.sub(r":\d+\)$", ")", frames[-1])] += int(n)
                total += int(n)
    return [(k / total, name) for name, k in own.most_common(top)] if total else []


def _print_profile(path: str, top: int) -> None:
    import io
    import pstats

    if not os.path.exists(path):
        return
    if path.endswith(".txt"):
        print(f"--- py-spy {path} (top {top} by own time; the loop's run frame is uvloop's C code)")
        for share, name in summarize_pyspy(path, top):
            print(f"  {share:6.1%}  {name}")
        return
    buf = io.StringIO()
    pstats.Stats(path, stream=buf).sort_stats("tottime").print_stats(top)
    text = buf.getvalue()
    keep = text[text.find("   ncalls"):] if "   ncalls" in text else text
    print(f"--- profile {path} (top {top} by own time)")
    print(keep.rstrip())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.session", description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=None, help="messages per measurement (100000; --quick: 2000)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up messages before each measurement (5000; --quick: 200)")
    p.add_argument("--windows", default="1,10,100", help="comma-separated windows (1,10,100)")
    p.add_argument("--pairs", default="all", help=f"comma-separated pairs from {','.join(PAIRS)} (all)")
    p.add_argument("--repeat", type=int, default=None, help="repetitions; medians are reported (3; --quick: 1)")
    p.add_argument("--quick", action="store_true", help="CI smoke run: ~2000 messages, one repetition")
    p.add_argument("--json", metavar="PATH", help="write every figure to PATH")
    p.add_argument("--pin", dest="pin", action="store_true", default=None, help="client and server on separate CPUs (default with >= 2 CPUs)")
    p.add_argument("--no-pin", dest="pin", action="store_false")
    p.add_argument(
        "--node-nagle",
        action="store_true",
        help="leave Nagle's algorithm on in the node-smpp processes (node's default); by default they set"
        " TCP_NODELAY, as asyncio and uvloop do for every TCP transport",
    )
    p.add_argument("--profile", metavar="DIR", help="cProfile every Python process's measured phase into DIR and print the top functions")
    p.add_argument(
        "--pyspy",
        metavar="DIR",
        help="sample every Python process's measured phase with py-spy into DIR and print the top functions"
        " (needs py-spy; not part of the project's dependencies)",
    )
    p.add_argument("--profile-top", type=int, default=15)
    p.add_argument("--retries", type=int, default=1, help="measure again after a failed attempt, this many times (1)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    args = p.parse_args(argv)
    if args.count is None:
        args.count = 2000 if args.quick else 100000
    if args.warmup is None:
        args.warmup = 200 if args.quick else min(5000, max(200, args.count // 20))
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    args.window_list = [int(w) for w in args.windows.split(",") if w.strip()]
    if args.pairs == "all":
        args.pair_list = list(PAIRS)
    else:
        args.pair_list = [x.strip() for x in args.pairs.split(",") if x.strip()]
        bad = [x for x in args.pair_list if x not in PAIRS]
        if bad:
            p.error(f"unknown pair(s) {bad}; choose from {list(PAIRS)}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    pairs, windows = args.pair_list, args.window_list
    cpus = _pick_cpus(args.pin)
    profile_dir = Path(args.profile) if args.profile else None
    pyspy_dir = Path(args.pyspy) if args.pyspy else None
    for d in (profile_dir, pyspy_dir):
        if d is not None:
            d.mkdir(parents=True, exist_ok=True)
    skipped = _available(pairs)
    runnable = [p for p in pairs if p not in skipped]
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {p: {w: [] for w in windows} for p in pairs}
    failures: list[str] = []  # measurements that failed every attempt
    retried: list[str] = []  # attempts that failed and were retried

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    old_term = signal.signal(signal.SIGTERM, on_term) if _is_main_thread() else None
    started = time.monotonic()
    try:
        for rep in range(args.repeat):
            for wi, w in enumerate(windows):
                k = (rep + wi) % max(len(runnable), 1)
                order = runnable[k:] + runnable[:k]
                for pair in order:
                    tag = f"-r{rep + 1}" if args.repeat > 1 else ""
                    r = None
                    for attempt in range(1 + max(args.retries, 0)):
                        try:
                            r = measure(
                                pair, w, count=args.count, warmup=args.warmup, cpus=cpus, profile_dir=profile_dir,
                                pyspy_dir=pyspy_dir, tag=tag, node_nodelay=not args.node_nagle,
                            )
                            break
                        except ChildFailed as exc:
                            what = f"{pair} w={w} rep {rep + 1} attempt {attempt + 1}: {exc}"
                            (failures if attempt >= args.retries else retried).append(what)
                            print(f"[{rep + 1}/{args.repeat}] {LABELS[pair]:<20} w={w:<4} FAILED: {exc}", file=sys.stderr)
                    if r is None:
                        continue
                    runs[pair][w].append(r)
                    if not args.quiet:
                        print(
                            f"[{rep + 1}/{args.repeat}] {LABELS[pair]:<20} w={w:<4} {r['msg_per_s']:>9,.0f} msg/s"
                            f"  p50 {r['p50_ms']:.3f} p99 {r['p99_ms']:.3f} ms"
                            f"  cpu client {r['client_cpu_us']:.1f} ({r['client_sys_us']:.1f} sys)"
                            f" server {r['server_cpu_us']:.1f} ({r['server_sys_us']:.1f} sys) us/msg"
                            + (f"  errors {r['errors']}" if r["errors"] else ""),
                            file=sys.stderr,
                            flush=True,
                        )
    finally:
        _kill_all()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)

    medians: dict[str, dict[int, dict[str, float]]] = {}
    for pair in pairs:
        for w in windows:
            rs = runs[pair][w]
            if rs:
                medians.setdefault(pair, {})[w] = {m: statistics.median(r[m] for r in rs) for m in METRICS}

    print(
        f"session benchmark: {args.count} submit_sm per measurement after {args.warmup} warm-up,"
        f" median of {args.repeat}, two processes on loopback"
        + (f", client on CPU {cpus[0]} and server on CPU {cpus[1]}" if cpus[0] is not None else ", unpinned")
    )
    print(format_table(medians, pairs, windows))
    for pair, why in skipped.items():
        print(f"{LABELS[pair]}: n/a ({why})")
    for f in failures:
        print(f"failed: {f}")
    for f in retried:
        print(f"failed once, measured again: {f}")
    errors = sum(r["errors"] for p in runs.values() for rs in p.values() for r in rs)
    if errors:
        print(f"warning: {errors} submit_sm were answered with an error status")
    if 100 in windows:
        print("\n".join(target_lines(medians, 100)))
    if profile_dir is not None or pyspy_dir is not None:
        for pair in pairs:
            for w in windows:
                for r in runs[pair][w]:
                    for path in r["profiles"].values():
                        _print_profile(path, args.profile_top)

    result = {
        "benchmark": "session",
        "count": args.count,
        "warmup": args.warmup,
        "repeat": args.repeat,
        "windows": windows,
        "pairs": pairs,
        "cpus": list(cpus),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "elapsed_s": time.monotonic() - started,
        "median": {p: {str(w): m for w, m in ws.items()} for p, ws in medians.items()},
        "runs": {p: {str(w): rs for w, rs in ws.items()} for p, ws in runs.items()},
        "skipped": skipped,
        "failures": failures,
        "retried": retried,
        "targets": target_lines(medians, 100) if 100 in windows else [],
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _submode(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.session {argv[0]}")
    p.add_argument("--impl", required=True)
    p.add_argument("--host", default=HOST)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--count", type=int, default=100000)
    p.add_argument("--window", type=int, default=1)
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--profile", metavar="FILE")
    args = p.parse_args(argv[1:])
    return _run_submode(_server_main if argv[0] == "server" else _client_main, args)


def cli(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("server", "client"):
        return _submode(argv)
    try:
        res = main(argv)
    except KeyboardInterrupt:
        _kill_all()
        return 130
    return 1 if res["failures"] else 0


if __name__ == "__main__":
    sys.exit(cli())
