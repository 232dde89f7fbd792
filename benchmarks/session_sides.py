"""The two sides of the session benchmark: what its Python child processes run.

``python -m smpphub.bench.session server --impl {ours,raw,smpp34}`` and
``python -m smpphub.bench.session client --impl {ours,smpp34}`` land here (through
:func:`_submode`); the line protocol they speak with the orchestrator
(:mod:`smpphub.bench.session`) is described there. Kept apart from the orchestrator so a
child process holds only what it measures with: the workload's message, the raw
ceiling server, the client drivers, and the CPU, latency and profiling helpers both
sides share (:mod:`smpphub.bench.simulator` reuses them too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import struct
import sys
import time
from functools import partial
from typing import Any, Callable

HOST = "127.0.0.1"
SOURCE = "447700900001"
DESTINATION = "447700900123"
TEXT = b"Your verification code is 482913. Thanks"  # 40 octets of GSM 03.38 text


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


async def serve_until_quit(port: int, stop: Callable[[], Any], prof: Profile | None = None) -> None:
    """A server sub-mode's life once it listens on ``port``: say ``PORT``, answer the
    orchestrator's ``start``/``stop`` on stdin with the CPU used so far, and on ``quit``
    (or stdin closing) call ``stop``."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def on_line(line: str | None) -> None:
        if line == "start":
            say("CPU %d %d" % cpu_split_us())
            if prof is not None:
                prof.start()
        elif line == "stop":
            if prof is not None:
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


async def _server_main(args: argparse.Namespace) -> None:
    prof = Profile(args.profile)
    port, stop = await _start_server(args.impl, args.host, args.port)
    await serve_until_quit(port, stop, prof)


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


def go_and_quit(loop: asyncio.AbstractEventLoop) -> tuple[asyncio.Future, asyncio.Future]:
    """A client sub-mode's two orders from stdin: ``go`` (start measuring) and ``quit``
    (unbind and exit; stdin closing counts as both)."""
    go = loop.create_future()
    quit_ = loop.create_future()

    def on_line(line: str | None) -> None:
        if line == "go" and not go.done():
            go.set_result(None)
        elif line is None or line == "quit":
            for f in (go, quit_):
                if not f.done():
                    f.set_result(None)

    StdinCommands(loop, on_line)
    return go, quit_


async def _client_main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    prof = Profile(args.profile)
    go, quit_ = go_and_quit(loop)

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


# ---- entry: python -m smpphub.bench.session {server,client} ------------------------------


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


def _submode(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog=f"python -m smpphub.bench.session {argv[0]}")
    p.add_argument("--impl", required=True)
    p.add_argument("--host", default=HOST)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--count", type=int, default=100000)
    p.add_argument("--window", type=int, default=1)
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--profile", metavar="FILE")
    args = p.parse_args(argv[1:])
    return _run_submode(_server_main if argv[0] == "server" else _client_main, args)
