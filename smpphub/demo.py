"""``smpphub demo``: two simulated carriers, the hub in front of them, an ESME using it.

The demo is what a newcomer runs first, so it behaves like the real thing: the hub
stores on SQLite with ``synchronous=full`` (in a temporary folder), plays a short
scripted tour (three messages, their receipts, one MO), then stays up with a live
traffic line so the newcomer can point ``smpphub send`` or their own ESME at it. It
stops on Ctrl-C, SIGTERM or after ``--duration`` seconds, and whatever the way out it
stops the hub and the carriers and removes its temporary folder.

Exit status: 0 when stopped, 1 when it cannot start or the tour fails, 2 for a bad
argument; each failure is one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import shlex
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Literal, Protocol, TextIO

import msgspec

if TYPE_CHECKING:
    from smpphub.router.hub import Hub, Traffic
    from smpphub.simulator.app import RunningSimulator

__all__ = ["DemoOptions", "TrafficLine", "add_demo_arguments", "choose_port", "cmd_demo", "listen_problem", "parse_options"]

HOST = "127.0.0.1"
#: The hub's SMPP port when --port is not given: the well-known SMPP port, so the
#: printed commands are the ones an operator expects; a free port when it is taken.
DEFAULT_PORT = 2775
#: The hub's HTTP port (API, dashboard, metrics) when --http-port is not given: 8080, or a
#: free port when that is taken, and a free port too when --port 0 asked for free ports.
DEFAULT_HTTP_PORT = 8080
ACCOUNT = "demo"
PASSWORD = "demo"
MO_SHORT_CODE = "12345"
#: How often a non-terminal (a pipe, a log file) gets a traffic line, if anything changed.
PIPE_INTERVAL = 3.0
#: Seconds the tour waits for any one receipt or the MO before calling the demo broken.
TOUR_WAIT = 10.0
#: Seconds the hub gets to drain on the way out.
STOP_TIMEOUT = 3.0


class DemoUsageError(Exception):
    """A bad argument: one line, exit status 2."""


class DemoError(Exception):
    """The demo could not start or its tour failed: one line, exit status 1."""


class DemoOptions(msgspec.Struct, frozen=True, kw_only=True):
    """The command line, checked."""

    store: Literal["sqlite", "memory"] = "sqlite"
    port: int | None = None  # None: DEFAULT_PORT, or a free port when that is taken
    http_port: int | None = None  # None: DEFAULT_HTTP_PORT (a free one when taken, or when port is 0)
    duration: float | None = None  # None: until Ctrl-C / SIGTERM


class Carrier(msgspec.Struct, frozen=True, kw_only=True):
    """One simulated carrier: what the banner says about it and how the simulator is set up."""

    name: str
    prefix: str  # the destinations routed to it first
    behaviour: str
    config: dict[str, object]  # simulator configuration (see simulator/config.py)


CARRIERS: tuple[Carrier, ...] = (
    Carrier(
        name="carrier-uk",
        prefix="44",
        behaviour="delivers every message, DELIVRD receipt after 50-300 ms",
        config={"receipts": {"delay": {"kind": "uniform", "min_ms": 50, "max_ms": 300}}},
    ),
    Carrier(
        name="carrier-fr",
        prefix="33",
        behaviour="hex message ids, about 1 in 4 UNDELIV, receipt after 100 ms",
        config={
            "receipts": {"message_id_format": "hex", "final_states": {"DELIVRD": 3, "UNDELIV": 1}, "delay": {"kind": "fixed", "ms": 100}},
            "seed": 7,
        },
    ),
)

class TourMessage(msgspec.Struct, frozen=True):
    to: str
    text: str


#: The tour: a GSM text to carrier-uk, UCS-2 to carrier-fr, a long one (2 segments) to carrier-uk.
TOUR_MESSAGES: tuple[TourMessage, ...] = (
    TourMessage("447700900123", "Hello from smpphub"),
    TourMessage("33612345678", "Grüße, ünïcödé → UCS-2 😀"),
    TourMessage("447700900456", "long " * 60),
)


class Row(msgspec.Struct, frozen=True):
    """One line of the banner: a label in the left column, its text beside it."""

    label: str
    text: str


# --- arguments ---------------------------------------------------------------------------


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    # --port and --duration are read as text and checked in parse_options, so a bad value
    # is one line of ours (exit 2) rather than argparse's usage block.
    p.add_argument("--store", choices=("sqlite", "memory"), default="sqlite",
                   help="the hub's store (default: sqlite in a temporary folder, removed on exit)")
    p.add_argument("--port", metavar="PORT",
                   help=f"the hub's SMPP port on {HOST} (default: {DEFAULT_PORT}, or a free port if that is taken; 0: a free port)")
    p.add_argument("--http-port", metavar="PORT",
                   help=f"the hub's HTTP port on {HOST}: API, dashboard, metrics (default: {DEFAULT_HTTP_PORT}, "
                        "or a free port if that is taken or --port is 0; 0: a free port)")
    p.add_argument("--duration", metavar="SECONDS", help="stop by itself this many seconds after the tour (default: run until Ctrl-C)")


def _port(flag: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise DemoUsageError(f"{flag} must be a port number 0-65535 (0: a free port), got {text!r}")
    return port


def parse_options(args: argparse.Namespace) -> DemoOptions:
    """The checked options; raises :class:`DemoUsageError` naming the bad one."""
    port = _port("--port", args.port)
    http_port = _port("--http-port", getattr(args, "http_port", None))
    duration = None
    if args.duration is not None:
        try:
            duration = float(args.duration)
        except ValueError:
            duration = math.nan
        if not (math.isfinite(duration) and duration > 0):
            raise DemoUsageError(f"--duration must be a positive number of seconds, got {args.duration!r}")
    return DemoOptions(store=args.store, port=port, http_port=http_port, duration=duration)


def listen_problem(host: str, port: int) -> str | None:
    """Why the hub could not listen on ``host:port`` (None: it can).

    Checked before anything starts, so a taken port costs no temporary folder and no
    half-started hub; binds like asyncio's server does (SO_REUSEADDR), so a port in
    TIME_WAIT is not called taken.
    """
    if port == 0:
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            return f"cannot listen on {host}:{port}: {reason}"
    return None


class PortChoice(msgspec.Struct, frozen=True, kw_only=True):
    """Where the hub listens, and why that is not the port asked for (if it is not)."""

    port: int  # 0: a free one
    note: str | None = None  # why it is not the one asked for, for the banner


def choose_port(requested: int | None, *, host: str = HOST, default: int = DEFAULT_PORT,
                flag: str = "--port") -> PortChoice:
    """The port the hub will listen on: ``requested`` or, when none is, ``default`` if it
    is free and a free port (with a note saying why) if not.

    A requested port that cannot be used is a :class:`DemoError`: the user asked for it.
    """
    port = default if requested is None else requested
    problem = listen_problem(host, port)
    if problem is None:
        return PortChoice(port=port)
    if requested is not None:
        raise DemoError(problem)
    return PortChoice(port=0, note=f"{problem}, so the hub took a free port ({flag} chooses one)")


# --- the live traffic line ---------------------------------------------------------------------


class TrafficSource(Protocol):
    """What the traffic line reads: :class:`smpphub.router.hub.Hub` (or a test's stand-in)."""

    def traffic(self) -> Traffic: ...


class TrafficLine:
    """The hub's running totals and rates, one line: rewritten in place every second on a
    terminal, printed as an ordinary line every few seconds (when something changed) on a pipe."""

    LEGEND = (
        "ESME binds now; segments accepted, sent to carriers; receipts from carriers;"
        " receipts and MO delivered to ESMEs; MO from carriers (total +per second)"
    )

    def __init__(self, hub: TrafficSource, stream: TextIO) -> None:
        self.hub = hub
        self.stream = stream
        self.tty = stream.isatty()
        self._last = hub.traffic()
        self._last_at = time.monotonic()
        self._printed: Traffic | None = None

    def render(self) -> str:
        """The line for now; rates are over the time since the previous render."""
        now = time.monotonic()
        traffic = self.hub.traffic()
        before = self._last
        elapsed = max(now - self._last_at, 1e-3)
        self._last, self._last_at = traffic, now

        def part(label: str, total: int, previous: int) -> str:
            return f"{label} {total} +{(total - previous) / elapsed:.0f}/s"

        return " | ".join((
            f"binds {traffic.esme_binds}",
            part("accepted", traffic.accepted, before.accepted),
            part("sent", traffic.sent, before.sent),
            part("receipts", traffic.receipts_in, before.receipts_in),
            part("delivered", traffic.delivered, before.delivered),
            part("MO", traffic.mo_in, before.mo_in),
        ))

    def show(self) -> None:
        """Render and write the line (on a pipe only when the totals moved since the last one written)."""
        line = self.render()
        if self.tty:
            width = shutil.get_terminal_size().columns
            self.stream.write("\r\x1b[2K" + line[: max(width - 1, 20)])
            self.stream.flush()
        elif self._last != self._printed:
            self.stream.write(f"traffic: {line}\n")
            self.stream.flush()
            self._printed = self._last

    def finish(self) -> None:
        """End the in-place line so what follows starts on a line of its own."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    async def run(self) -> None:
        interval = 1.0 if self.tty else PIPE_INTERVAL
        self.show()
        while True:
            await asyncio.sleep(interval)
            self.show()


# --- the demo ----------------------------------------------------------------------------------


def _say(line: str = "") -> None:
    print(line, flush=True)


class Demo:
    """The carriers, the hub and the store folder of one run; :meth:`close` undoes whatever
    :meth:`start` got to, in any state."""

    def __init__(self, options: DemoOptions, port: int, http_port: int = 0) -> None:
        from smpphub.router.http.tokens import new_token

        self.options = options
        self.requested_port = port
        self.requested_http_port = http_port
        self.carriers: list[RunningSimulator] = []
        self.folder: str | None = None
        self.hub: Hub | None = None
        # made for this run only, printed in the banner: the demo account's API token and the admin's
        self.api_token = new_token()
        self.admin_token = new_token()

    @property
    def http_url(self) -> str:
        assert self.hub is not None and self.hub.http is not None
        return self.hub.http.url

    @property
    def store_path(self) -> str | None:
        return os.path.join(self.folder, "hub.db") if self.folder else None

    @property
    def port(self) -> int:
        assert self.hub is not None
        return self.hub.servers[0].port

    async def start(self) -> None:
        from smpphub.router.cli import setup_logging
        from smpphub.router.config import config_from_dict
        from smpphub.router.http.tokens import hash_token
        from smpphub.router.hub import Hub
        from smpphub.simulator.app import start as start_simulator
        from smpphub.simulator.config import config_from_dict as simulator_config

        for carrier in CARRIERS:
            self.carriers.append(await start_simulator(simulator_config(carrier.config), host=HOST, port=0))
        if self.options.store == "sqlite":
            self.folder = tempfile.mkdtemp(prefix="smpphub-demo-")
        uk, fr = CARRIERS
        config = config_from_dict({
            "listeners": [{"host": HOST, "port": self.requested_port}],
            "accounts": [{"system_id": ACCOUNT, "password": PASSWORD, "api_tokens": [hash_token(self.api_token)]}],
            "http": {"listen": f"{HOST}:{self.requested_http_port}", "admin_token": hash_token(self.admin_token)},
            "upstreams": [
                {"name": c.name, "host": HOST, "port": running.port, "system_id": "hub", "password": "hub"}
                for c, running in zip(CARRIERS, self.carriers)
            ],
            "routes": [{"prefix": uk.prefix, "upstreams": [uk.name, fr.name]}, {"prefix": fr.prefix, "upstreams": [fr.name]}],
            "mo_routes": [{"prefix": MO_SHORT_CODE, "account": ACCOUNT}],
            "store": {"backend": "sqlite", "path": self.store_path, "synchronous": "full"} if self.store_path else {"backend": "memory"},
            "log": {"level": "warning"},  # the hub's own lines would bury the tour and the traffic line
        })
        setup_logging(config.log)
        hub = Hub(config)
        await hub.start()
        self.hub = hub

    async def tour(self) -> None:
        """Three messages and their receipts, then one MO, printed as they happen."""
        import smppcore
        from smppcore.receipt import receipt_info
        from smppcore.text import decode_text

        hub = self.hub
        assert hub is not None
        await hub.wait_ready(10)
        uk = self.carriers[0]
        async with smppcore.connect(HOST, self.port, system_id=ACCOUNT, password=PASSWORD) as client:
            _say(f"tour: the hub and two simulated carriers are up; ESME {ACCOUNT!r} bound to the hub as transceiver")
            expected = 0
            for message in TOUR_MESSAGES:
                responses = await client.submit_text(message.to, message.text, source_addr="smpphub", registered_delivery=1)
                expected += len(responses)
                _say(f"  submitted to +{message.to}: {len(responses)} segment(s), hub ids {' '.join(r.message_id for r in responses)}")
            for _ in range(expected):
                try:
                    pdu = await client.next_message(timeout=TOUR_WAIT)
                except TimeoutError:
                    raise DemoError(f"the tour got no receipt within {TOUR_WAIT:g} s") from None
                info = receipt_info(pdu)
                if info is None:
                    raise DemoError("the tour got a deliver_sm that is not a receipt while it waited for receipts")
                _say(f"  receipt for {info.message_id}: {info.receipt.stat if info.receipt else info.state.name}")
            uk.sim.send_mo("447700900123", MO_SHORT_CODE, "STOP")
            try:
                mo = await client.next_message(timeout=TOUR_WAIT)
            except TimeoutError:
                raise DemoError(f"the tour got no MO within {TOUR_WAIT:g} s") from None
            if not isinstance(mo, smppcore.DeliverSm):
                raise DemoError(f"the tour waited for an MO deliver_sm and got {type(mo).__name__}")
            _say(f"  MO from +{mo.source_addr} to {mo.destination_addr}: {decode_text(mo.short_message, mo.data_coding)!r}")
        _say("tour done")

    def banner(self, note: str | None) -> list[str]:
        """What to try next, addresses and credentials: printed once the tour is done."""
        send = shlex.join([
            "smpphub", "send", "--target", f"{HOST}:{self.port}", "--system-id", ACCOUNT, "--password", PASSWORD,
            "--to", "447700900123", "--text", "Hello from smpphub", "--dlr",
        ])
        if self.store_path:
            store = f"{self.store_path} (SQLite, synchronous=full; removed on exit)"
        else:
            store = "memory (nothing on disk)"
        stop = "Ctrl-C stops it" if self.options.duration is None else f"it stops in {self.options.duration:g} s (or Ctrl-C)"
        uk, fr = CARRIERS
        routes = f"+{uk.prefix} -> {uk.name} ({fr.name} if it fails), +{fr.prefix} -> {fr.name}; MO to {MO_SHORT_CODE} -> account {ACCOUNT}"
        rows = [
            Row("hub", f"SMPP on {HOST}:{self.port}"),
            Row("account", f"system_id {ACCOUNT}, password {PASSWORD} (bind tx, rx or trx)"),
            Row("store", store),
            *(Row(c.name, f"{HOST}:{running.port}  +{c.prefix}: {c.behaviour}") for c, running in zip(CARRIERS, self.carriers)),
            Row("routes", routes),
            Row("http", f"{self.http_url} (API token of account {ACCOUNT}: {self.api_token})"),
            Row("dashboard", f"{self.http_url}/dashboard#token={self.admin_token}"),
            Row("metrics", f"{self.http_url}/metrics"),
        ]
        if note:
            rows.append(Row("note", note))
        lines = ["", f"smpphub demo is up; {stop}"]
        lines += [f"  {row.label:<11} {row.text}" for row in rows]
        lines += [
            "try it (the receipt comes back on the same bind):",
            f"  {send}",
            "or over HTTP (its state and receipt: GET /v1/messages/<id> with the same token):",
            f"  {self.curl_line()}",
            "steer the hub (binds, upstreams, routes, one message's trace):",
            f"  {self.admin_line()}",
            f"live: {TrafficLine.LEGEND}",
        ]
        return lines

    def admin_line(self) -> str:
        """``smpphub admin`` on this hub, its token in the environment as the command expects it."""
        return shlex.join(["env", f"SMPPHUB_ADMIN_TOKEN={self.admin_token}", "smpphub", "admin", "--url", self.http_url,
                           "upstreams"])

    def curl_line(self) -> str:
        """The ready-to-paste ``curl`` that sends one message over the HTTP API, asking for its receipt."""
        body = '{"to": "+447700900123", "text": "Hello over HTTP", "receipt": true}'
        return shlex.join(["curl", "-s", "-H", f"Authorization: Bearer {self.api_token}", "-H",
                           "Content-Type: application/json", "-d", body, f"{self.http_url}/v1/messages"])

    async def close(self) -> None:
        """Stop the hub, then the carriers, then remove the store folder; each step runs
        even if one before it failed."""
        try:
            if self.hub is not None:
                await self.hub.stop(timeout=STOP_TIMEOUT)
        finally:
            try:
                await asyncio.gather(*(c.close() for c in self.carriers), return_exceptions=True)
            finally:
                if self.folder is not None:
                    shutil.rmtree(self.folder, ignore_errors=True)

    def summary(self) -> str:
        received = ", ".join(f"{c.name} received {running.sim.stats.messages}" for c, running in zip(CARRIERS, self.carriers))
        removed = f"; removed {self.folder}" if self.folder else ""
        return f"demo stopped: {received} message(s){removed}"


async def _unless_stopped(work: Awaitable[None], stop: asyncio.Event) -> bool:
    """Run ``work`` until it ends (True; its exception raised) or ``stop`` is set first (False, cancelled)."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


async def _stay_up(hub: Hub, stop: asyncio.Event, duration: float | None) -> None:
    live = TrafficLine(hub, sys.stdout)
    ticker = asyncio.ensure_future(live.run())
    try:
        if duration is None:
            await stop.wait()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration)
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        live.finish()


async def _demo(options: DemoOptions) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)  # from here on Ctrl-C is a clean stop, not a KeyboardInterrupt
    choice = choose_port(options.port)
    http_default = 0 if options.port == 0 else DEFAULT_HTTP_PORT  # --port 0: free ports for both
    http_choice = choose_port(options.http_port, default=http_default, flag="--http-port")
    demo = Demo(options, choice.port, http_choice.port)
    try:
        await demo.start()
        if not await _unless_stopped(demo.tour(), stop):
            return 0
        for line in demo.banner("; ".join(n for n in (choice.note, http_choice.note) if n) or None):
            _say(line)
        assert demo.hub is not None
        await _stay_up(demo.hub, stop, options.duration)
    finally:
        await demo.close()
        _say(demo.summary())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import smppcore

    try:
        options = parse_options(args)
    except DemoUsageError as exc:
        print(f"smpphub demo: {exc}", file=sys.stderr)
        return 2
    try:
        return smppcore.run(_demo(options))
    except (DemoError, OSError, smppcore.SmppError) as exc:  # OSError includes TimeoutError
        print(f"smpphub demo: {_one_line(exc)}", file=sys.stderr)
        return 1


def _one_line(exc: Exception) -> str:
    """The error for a person: an OSError's own words without its ``[Errno N]``."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())
