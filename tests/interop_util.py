"""Helpers for the whole-session interop tests (tests/test_interop_session.py).

- :class:`NodeScript`: a node-smpp script under ``tests/interop/node`` run as a
  subprocess that prints one JSON object per line; read its events with a bound,
  and it is always killed on the way out.
- :class:`RecordingProxy`: a TCP relay put between an ESME and an SMSC that keeps
  every chunk each side wrote, with its direction, in the order they were read.
- :func:`write_tcp_pcap`: a pcap of one TCP connection carrying those chunks, both
  directions, with a handshake, per-direction sequence/ack numbers, real checksums
  and a FIN exchange at the end.
- :func:`tshark_smpp`: Wireshark's SMPP dissector over such a pcap: the PDUs it saw
  (in order, with their ``smpp.*`` fields) and every expert item / malformed mark.

Nothing here uses smppcore: these helpers sit next to the oracles, not on our stack.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).resolve().parent / "interop" / "node"
HOST = "127.0.0.1"


# --- node-smpp scripts ---------------------------------------------------------------


class NodeScript:
    """``async with NodeScript("esme.js", arg, ...) as node:`` then ``await node.event("x")``.

    Every line the script prints is parsed as JSON and kept in :attr:`events`.
    ``event(name)`` waits (with a timeout) until an event with ``"event": name`` was
    printed and returns it. On exit the process is killed if still running.
    """

    def __init__(self, script: str, *args: str) -> None:
        self.argv = ["node", str(NODE_DIR / script), *args]
        self.proc: asyncio.subprocess.Process | None = None
        self.events: list[dict[str, Any]] = []
        self._stderr = b""
        self._reader: asyncio.Task | None = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> NodeScript:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=str(NODE_DIR),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.ensure_future(self._read())
        self._err_reader = asyncio.ensure_future(self._read_stderr())
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            line = line.strip()
            if line:
                try:
                    self.events.append(json.loads(line))
                except ValueError:
                    self.events.append({"event": "non-json", "line": line.decode(errors="replace")})
            self._changed.set()
        self._changed.set()

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        self._stderr = await self.proc.stderr.read()

    @property
    def stderr(self) -> str:
        return self._stderr.decode(errors="replace")

    def find(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e.get("event") == name), None)

    def names(self) -> list[str]:
        return [e.get("event", "?") for e in self.events]

    async def event(self, name: str, timeout: float = 15.0) -> dict[str, Any]:
        """The first event called ``name``, waiting up to ``timeout`` seconds for it."""

        async def wait() -> dict[str, Any]:
            while True:
                found = self.find(name)
                if found is not None:
                    return found
                if self._reader is not None and self._reader.done():
                    raise AssertionError(
                        f"{self.argv[1]} ended without {name!r}; events {self.events}; stderr {self.stderr}"
                    )
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no {name!r} from {self.argv[1]} in {timeout}s; events {self.events}") from None

    async def finished(self, timeout: float = 15.0) -> int:
        """Wait for the script to exit by itself; its exit status."""
        assert self.proc is not None
        rc = await asyncio.wait_for(self.proc.wait(), timeout)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout)
        await asyncio.wait_for(self._err_reader, timeout)
        return rc

    async def __aexit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            proc.kill()
        if proc is not None:
            await proc.wait()
        for task in (self._reader, self._err_reader):
            if task is not None:
                try:
                    await asyncio.wait_for(task, 5)
                except (asyncio.TimeoutError, asyncio.CancelledError):
                    task.cancel()


# --- a recording TCP relay -------------------------------------------------------------


class RecordingProxy:
    """Relays one or more TCP connections to ``HOST:target_port`` and records them.

    :attr:`chunks` holds ``(direction, bytes)`` with direction ``"c2s"`` (what the
    client wrote) or ``"s2c"`` (what the server wrote), in the order the relay read
    them; :attr:`client_port` is the client's ephemeral port. :meth:`wait_closed`
    returns once both directions of every relayed connection have ended.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.chunks: list[tuple[str, bytes]] = []
        self.client_port: int | None = None
        self.port: int | None = None
        self._server: asyncio.base_events.Server | None = None
        self._relays: list[asyncio.Task] = []

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _accept(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        self.client_port = cwriter.get_extra_info("peername")[1]
        task = asyncio.current_task()
        assert task is not None
        self._relays.append(task)
        sreader, swriter = await asyncio.open_connection(HOST, self.target_port)

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str) -> None:
            try:
                while data := await reader.read(65536):
                    self.chunks.append((direction, data))
                    writer.write(data)
                    await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()
            except (ConnectionError, OSError):
                pass

        await asyncio.gather(pump(creader, swriter, "c2s"), pump(sreader, cwriter, "s2c"))
        for w in (cwriter, swriter):
            w.close()

    async def wait_closed(self, timeout: float = 10.0) -> None:
        if self._relays:
            await asyncio.wait_for(asyncio.gather(*self._relays, return_exceptions=True), timeout)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._relays:
            if not task.done():
                task.cancel()
        if self._relays:
            await asyncio.gather(*self._relays, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()


# --- pcap ----------------------------------------------------------------------------

_SYN, _FIN, _PSH, _ACK = 0x02, 0x01, 0x08, 0x10
_MAX_SEGMENT = 32768


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4(addr: str) -> bytes:
    return bytes(int(x) for x in addr.split("."))


def _packet(src: tuple[str, int], dst: tuple[str, int], seq: int, ack: int, flags: int, payload: bytes, ip_id: int) -> bytes:
    """One Ethernet/IPv4/TCP frame with correct lengths and checksums."""
    sip, dip = _ipv4(src[0]), _ipv4(dst[0])
    tcp = struct.pack("!HHIIBBHHH", src[1], dst[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
    pseudo = sip + dip + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
    tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp + payload)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), ip_id & 0xFFFF, 0x4000, 64, 6, 0, sip, dip)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    mac = {src[1]: b"\x02\x00\x00\x00\x00\x01", dst[1]: b"\x02\x00\x00\x00\x00\x02"}
    return mac[dst[1]] + mac[src[1]] + b"\x08\x00" + ip + tcp + payload


def write_tcp_pcap(
    path: str | os.PathLike,
    chunks: list[tuple[str, bytes]],
    client: tuple[str, int],
    server: tuple[str, int],
) -> int:
    """Write a pcap (Ethernet) of one TCP connection ``client`` <-> ``server``.

    ``chunks`` are ``("c2s" | "s2c", payload)`` in order; each becomes one or more
    PSH/ACK segments (at most 32 KiB each) whose sequence number continues that
    direction's byte count and whose ack is everything the other direction sent so
    far. A three-way handshake opens it and a FIN/ACK exchange closes it. Returns the
    number of frames written.
    """
    c_isn, s_isn = 0x10000000, 0x50000000
    cseq, sseq = c_isn + 1, s_isn + 1
    frames = [
        _packet(client, server, c_isn, 0, _SYN, b"", 1),
        _packet(server, client, s_isn, cseq, _SYN | _ACK, b"", 1),
        _packet(client, server, cseq, sseq, _ACK, b"", 2),
    ]
    ids = {"c2s": 3, "s2c": 2}
    for direction, data in chunks:
        for off in range(0, len(data), _MAX_SEGMENT):
            seg = bytes(data[off : off + _MAX_SEGMENT])
            if direction == "c2s":
                frames.append(_packet(client, server, cseq, sseq, _PSH | _ACK, seg, ids["c2s"]))
                cseq += len(seg)
            elif direction == "s2c":
                frames.append(_packet(server, client, sseq, cseq, _PSH | _ACK, seg, ids["s2c"]))
                sseq += len(seg)
            else:
                raise ValueError(f"direction must be c2s or s2c, not {direction!r}")
            ids[direction] += 1
    frames += [
        _packet(client, server, cseq, sseq, _FIN | _ACK, b"", ids["c2s"]),
        _packet(server, client, sseq, cseq + 1, _FIN | _ACK, b"", ids["s2c"]),
        _packet(client, server, cseq + 1, sseq + 1, _ACK, b"", ids["c2s"] + 1),
    ]
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for i, frame in enumerate(frames):
            f.write(struct.pack("<IIII", 1_700_000_000 + i // 1000, (i % 1000) * 1000, len(frame), len(frame)))
            f.write(frame)
    return len(frames)


# --- tshark ----------------------------------------------------------------------------


def tshark_available() -> bool:
    return shutil.which("tshark") is not None


# Expert severities as tshark -T json writes them (epan/proto.h PI_*), and by name.
_SEVERITY = {"2097152": "chat", "4194304": "note", "6291456": "warning", "8388608": "error",
             "chat": "chat", "note": "note", "warning": "warning", "error": "error"}


class TsharkSmpp:
    """What tshark saw in a capture.

    ``pdus``: one dict per SMPP PDU, in order, ``smpp.*`` field -> value (tshark's
    strings; a field repeated within one PDU becomes a list), plus ``"frame"``.
    ``experts``: ``(frame, severity, message)`` for every expert item anywhere in the
    packet (TCP analysis included). ``malformed``: frames marked ``_ws.malformed``.
    """

    def __init__(self) -> None:
        self.pdus: list[dict[str, Any]] = []
        self.experts: list[tuple[str, str, str]] = []
        self.malformed: list[str] = []

    def problems(self, at_least: str = "warning") -> list[str]:
        order = ["chat", "note", "warning", "error"]
        bad = [f"frame {f}: {sev}: {msg}" for f, sev, msg in self.experts if order.index(sev) >= order.index(at_least)]
        return bad + [f"frame {f}: malformed" for f in self.malformed]


def _walk(node: Any, frame: str, fields: dict[str, Any] | None, out: TsharkSmpp) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, frame, fields, out)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key.startswith("_ws.malformed"):
            out.malformed.append(frame)
        if key == "_ws.expert":
            for exp in value if isinstance(value, list) else [value]:
                if isinstance(exp, dict):
                    sev = _SEVERITY.get(str(exp.get("_ws.expert.severity")), str(exp.get("_ws.expert.severity")))
                    out.experts.append((frame, sev, str(exp.get("_ws.expert.message", ""))))
            continue
        if isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, dict) for v in value)):
            _walk(value, frame, fields, out)
            continue
        if fields is not None and key.startswith("smpp."):
            if key in fields:
                prev = fields[key]
                fields[key] = (prev if isinstance(prev, list) else [prev]) + (value if isinstance(value, list) else [value])
            else:
                fields[key] = value


def tshark_smpp(pcap: str | os.PathLike, port: int) -> TsharkSmpp:
    """Run ``tshark -r pcap -d tcp.port==port,smpp -T json`` and collect its verdicts."""
    with tempfile.TemporaryDirectory(prefix="smpphub-tshark-") as home:
        proc = subprocess.run(
            [
                "tshark", "-n", "-r", str(pcap),
                "-o", "tcp.desegment_tcp_streams:TRUE",
                "-o", "tcp.analyze_sequence_numbers:TRUE",
                "-d", f"tcp.port=={port},smpp",
                "-T", "json", "--no-duplicate-keys",
            ],
            capture_output=True,
            timeout=60,
            check=False,
            env={**os.environ, "HOME": home},
        )
    if proc.returncode != 0:
        raise RuntimeError(f"tshark failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    out = TsharkSmpp()
    for packet in json.loads(proc.stdout or b"[]"):
        layers = packet["_source"]["layers"]
        frame = layers.get("frame", {}).get("frame.number", "?")
        for key, value in layers.items():
            if key == "smpp":
                for pdu_layer in value if isinstance(value, list) else [value]:
                    fields: dict[str, Any] = {"frame": frame}
                    _walk(pdu_layer, frame, fields, out)
                    out.pdus.append(fields)
            else:
                _walk({key: value}, frame, None, out)
    return out
