"""Every byte the simulator reads or writes, as a pcap file Wireshark opens (``--pcap FILE``).

No packet capture privileges are needed and TLS is no obstacle: the bytes are taken
where the SMPP connection sees them (after decryption, before encryption), and each
read or write becomes one TCP segment inside fabricated Ethernet / IPv4 (or IPv6)
headers with the connection's real addresses and ports. What a dissector checks is
made right: IP total length and header checksum, TCP sequence and acknowledgement
numbers per direction, a three-way handshake before the first byte and a FIN each
way at the end, and the TCP checksum over its pseudo-header. Wireshark's SMPP
dissector then reassembles PDUs across segments as it does on a real capture.

Bounded: the file stops growing at ``max_bytes`` (one warning, then the rest is
counted in :attr:`PcapWriter.dropped`), so a long run cannot fill the disk.
Writes are buffered and flushed when a connection closes and when the writer does.
"""

from __future__ import annotations

import array
import asyncio
import ipaddress
import itertools
import struct
import time
from typing import IO, Any

import structlog

from smppcore.admission import Ticket
from smppcore.server import Server, SmscConnection

__all__ = ["PcapWriter", "Flow", "CapturedConnection", "capturing_factory"]

log = structlog.get_logger("simulator.pcap")

_LINKTYPE_ETHERNET = 1
_SNAPLEN = 65535
_MAX_PAYLOAD = 65535 - 40 - 40  # one IPv4/IPv6 packet, with room for the largest header pair
_SYN, _ACK, _PSH, _FIN = 0x02, 0x10, 0x08, 0x01
_MAC_SIMULATOR = bytes.fromhex("020000000001")  # locally administered addresses: no vendor's
_MAC_PEER = bytes.fromhex("020000000002")


def _checksum(data: bytes) -> int:
    """RFC 1071 internet checksum. Summed in native byte order (the one's complement sum
    does not care), so the caller packs the result with ``=H``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(array.array("H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


Endpoint = tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]
#: stand-ins for an end without an IP address (a UNIX socket), or one IPv4 and one IPv6 end
_SIM_STAND_IN = (ipaddress.ip_address("127.0.0.1"), 2775)
_PEER_STAND_IN = ipaddress.ip_address("127.0.0.2")


def _endpoint(address: Any) -> Endpoint | None:
    if isinstance(address, tuple) and len(address) >= 2:
        try:
            return ipaddress.ip_address(str(address[0]).split("%")[0]), int(address[1])
        except ValueError:
            pass
    return None


class Flow:
    """One TCP connection's two directions: where each stands in its sequence space."""

    def __init__(self, writer: PcapWriter, simulator: Any, peer: Any, *, simulator_connected: bool) -> None:
        self.writer = writer
        sim, far = _endpoint(simulator), _endpoint(peer)
        if sim is None or far is None or sim[0].version != far[0].version:
            sim = (_SIM_STAND_IN[0], sim[1] if sim else _SIM_STAND_IN[1])
            far = (_PEER_STAND_IN, far[1] if far else 40000 + next(writer.ip_ids) % 20000)
        (self.sim_ip, self.sim_port), (self.peer_ip, self.peer_port) = sim, far
        # fixed initial sequence numbers: a capture of the same run is the same file
        self.sim_seq = 1_000_000
        self.peer_seq = 2_000_000
        self.open = True
        if simulator_connected:  # outbind: the simulator opens the connection
            self._segment(True, _SYN, b"")
            self._segment(False, _SYN | _ACK, b"")
        else:
            self._segment(False, _SYN, b"")
            self._segment(True, _SYN | _ACK, b"")
        self._segment(not simulator_connected, _ACK, b"")

    def sent(self, data: bytes) -> None:
        """The simulator wrote ``data``."""
        self._data(True, data)

    def received(self, data: bytes) -> None:
        """The simulator read ``data``."""
        self._data(False, data)

    def closed(self) -> None:
        if not self.open:
            return
        self.open = False
        self._segment(True, _FIN | _ACK, b"")
        self._segment(False, _FIN | _ACK, b"")
        self._segment(True, _ACK, b"")
        self.writer.flush()

    def _data(self, from_simulator: bool, data: bytes) -> None:
        if not self.open:
            return
        view = memoryview(data)
        for i in range(0, len(view), _MAX_PAYLOAD):
            self._segment(from_simulator, _PSH | _ACK, bytes(view[i:i + _MAX_PAYLOAD]))

    def _segment(self, from_simulator: bool, flags: int, payload: bytes) -> None:
        if from_simulator:
            src, sport, dst, dport = self.sim_ip, self.sim_port, self.peer_ip, self.peer_port
            seq, ack = self.sim_seq, self.peer_seq
        else:
            src, sport, dst, dport = self.peer_ip, self.peer_port, self.sim_ip, self.sim_port
            seq, ack = self.peer_seq, self.sim_seq
        advance = len(payload) + (1 if flags & (_SYN | _FIN) else 0)  # SYN and FIN take one number each
        if from_simulator:
            self.sim_seq = (self.sim_seq + advance) & 0xFFFFFFFF
        else:
            self.peer_seq = (self.peer_seq + advance) & 0xFFFFFFFF
        ack_flag = flags & _ACK
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack if ack_flag else 0, 5 << 4, flags, 65535, 0, 0)
        src_b, dst_b = src.packed, dst.packed
        length = len(tcp) + len(payload)
        if src.version == 4:
            pseudo = src_b + dst_b + struct.pack("!BBH", 0, 6, length)
        else:
            pseudo = src_b + dst_b + struct.pack("!IxxxB", length, 6)
        tcp = tcp[:16] + struct.pack("=H", _checksum(pseudo + tcp + payload)) + tcp[18:]
        if src.version == 4:
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, next(self.writer.ip_ids) & 0xFFFF, 0x4000, 64, 6, 0,
                             src_b, dst_b)
            ip = ip[:10] + struct.pack("=H", _checksum(ip)) + ip[12:]
            ethertype = 0x0800
        else:
            ip = struct.pack("!IHBB16s16s", 6 << 28, length, 6, 64, src_b, dst_b)
            ethertype = 0x86DD
        macs = _MAC_PEER + _MAC_SIMULATOR if from_simulator else _MAC_SIMULATOR + _MAC_PEER
        self.writer.packet(macs + struct.pack("!H", ethertype) + ip + tcp + payload)


class PcapWriter:
    """A pcap file (libpcap format, microsecond timestamps, Ethernet link type)."""

    def __init__(self, path: str, max_bytes: int = 100 * 1024 * 1024) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._file: IO[bytes] | None = open(path, "wb")  # noqa: SIM115 - open for the writer's life, closed by close()
        self._file.write(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, _SNAPLEN, _LINKTYPE_ETHERNET))
        self.size = 24
        self.packets = 0
        self.dropped = 0  # packets past max_bytes
        self.ip_ids = itertools.count(1)

    def flow(self, simulator: Any, peer: Any, *, simulator_connected: bool = False) -> Flow:
        """A new connection between ``simulator`` and ``peer`` (socket addresses)."""
        return Flow(self, simulator, peer, simulator_connected=simulator_connected)

    def packet(self, frame: bytes) -> None:
        f = self._file
        if f is None:
            return
        if self.size + 16 + len(frame) > self.max_bytes:
            if not self.dropped:
                log.warning("pcap_full", path=self.path, max_bytes=self.max_bytes)
            self.dropped += 1
            return
        now = time.time()
        seconds = int(now)
        f.write(struct.pack("=IIII", seconds, int((now - seconds) * 1_000_000), len(frame), len(frame)))
        f.write(frame)
        self.size += 16 + len(frame)
        self.packets += 1

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _TappedTransport:
    """The connection's transport, with every write also going to the capture."""

    def __init__(self, transport: asyncio.Transport, flow: Flow) -> None:
        self._transport = transport
        self._flow = flow

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._flow.sent(bytes(data))
        self._transport.write(data)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def __getattr__(self, name: str) -> Any:  # everything else is the real transport's
        return getattr(self._transport, name)


class CapturedConnection(SmscConnection):
    """An SMSC connection whose reads and writes go to a :class:`PcapWriter` too."""

    def __init__(self, server: Server, loop: asyncio.AbstractEventLoop, ticket: Ticket | None = None, *,
                 capture: PcapWriter, outgoing: bool = False) -> None:
        super().__init__(server, loop, ticket)
        self._capture = capture
        self._outgoing = outgoing
        self._flow: Flow | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        info = transport.get_extra_info
        flow = self._flow = self._capture.flow(info("sockname"), info("peername"), simulator_connected=self._outgoing)
        super().connection_made(_TappedTransport(transport, flow))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self._flow is not None:
            self._flow.received(data)
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._flow is not None:
            self._flow.closed()
        super().connection_lost(exc)


def capturing_factory(capture: PcapWriter) -> Any:
    """A ``Server.connection_factory`` whose connections write to ``capture``."""

    def make(server: Server, loop: asyncio.AbstractEventLoop, ticket: Ticket | None) -> SmscConnection:
        return CapturedConnection(server, loop, ticket, capture=capture)

    return make
