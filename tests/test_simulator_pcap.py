"""``--pcap``: what the simulator saw and sent, read back by Wireshark's dissector (tshark).

The oracle is tshark: it must find every PDU of the session (the same number of each
command, plus the fields we sent) and flag nothing as malformed, over plain TCP, over
TLS (captured in clear), in IPv6 and across segments split at the packet size limit.
The file stops at its bound and stays readable.
"""

from __future__ import annotations

import collections
from pathlib import Path

import oracles
import pytest
from tlskit import self_signed

import smppcore
from smppcore import DeliverSm, EnquireLink, SubmitSm, SubmitSmResp
from smpphub.simulator.app import RunningSimulator, start
from smpphub.simulator.config import config_from_dict
from smpphub.simulator.control import MoRequest
from smpphub.simulator.pcap import PcapWriter

HOST = "127.0.0.1"


@pytest.fixture(autouse=True)
def _tshark() -> None:
    oracles.require(oracles.tshark_available(), "tshark")


def commands(found: oracles.TsharkResult) -> collections.Counter[str]:
    return collections.Counter(p["smpp.command_id"] for p in found)


EXPECTED = {
    "0x00000009": 1, "0x80000009": 1,  # bind_transceiver
    "0x00000004": 6, "0x80000004": 6,  # submit_sm: 3 + 3 segments
    "0x00000005": 4, "0x80000005": 4,  # deliver_sm: 3 receipts + 1 MO
    "0x00000015": 1, "0x80000015": 1,  # enquire_link
    "0x00000006": 1, "0x80000006": 1,  # unbind
}


async def run_session(port: int, running: RunningSimulator, **connect: object) -> None:
    """One ESME's session: bind, 3 submits with receipts, a 3-part text, enquire_link, an MO, unbind."""
    async with smppcore.connect(HOST, port, system_id="acme", password="secret", **connect) as esme:
        for i in range(3):
            await esme.submit_sm(source_addr="Shop", destination_addr=f"44770090012{i}",
                                 short_message=f"Your code is 48{i}1".encode(), registered_delivery=1)
        for _ in range(3):
            await esme.next_message(timeout=10)
        await esme.submit_text("447700900123", "a long message, " * 20)
        await esme.enquire_link()
        running.control.send_mo(MoRequest(source_addr="447700900999", destination_addr="12345", text="STOP"))
        mo = await esme.next_message(timeout=10)
        assert mo.short_message == b"STOP"
        await esme.unbind()


async def test_pcap_of_a_session_reads_in_tshark(tmp_path: Path) -> None:
    pcap = tmp_path / "sim.pcap"
    running = await start(config_from_dict({"listen": f"{HOST}:0", "pcap": str(pcap)}))
    port = running.port
    try:
        await run_session(port, running)
    finally:
        await running.close()
    found = oracles.tshark_read(pcap, port)
    assert not found.malformed, found.problems
    assert commands(found) == EXPECTED
    submits = [p for p in found if p["smpp.command_id"] == "0x00000004"]
    assert [p["smpp.destination_addr"] for p in submits[:3]] == ["447700900120", "447700900121", "447700900122"]
    binds = [p for p in found if p["smpp.command_id"] == "0x00000009"]
    assert binds[0]["smpp.system_id"] == "acme"
    mo = [p for p in found if p["smpp.command_id"] == "0x00000005" and p.get("smpp.source_addr") == "447700900999"]
    assert len(mo) == 1


async def test_pcap_of_a_tls_session_is_in_clear(tmp_path: Path) -> None:
    server_ctx, client_ctx, cert = self_signed(tmp_path)
    pcap = tmp_path / "tls.pcap"
    running = await start(config_from_dict({
        "listen": f"{HOST}:0", "pcap": str(pcap),
        "tls": {"listen": f"{HOST}:0", "cert": str(tmp_path / "cert.pem"), "key": str(tmp_path / "key.pem")}}))
    port = running.tls_port
    assert port is not None
    try:
        await run_session(port, running, ssl=client_ctx, server_hostname="localhost")
    finally:
        await running.close()
    found = oracles.tshark_read(pcap, port)
    assert not found.malformed, found.problems
    assert commands(found) == EXPECTED


def pdus(n: int, size: int) -> bytes:
    out = []
    for i in range(n):
        pdu = DeliverSm(source_addr="447700900123", destination_addr="12345", short_message=bytes([65 + i % 26]) * size)
        pdu.sequence_number = i + 1
        out.append(smppcore.encode(pdu))
    return b"".join(out)


@pytest.mark.parametrize("family,simulator,peer", [
    ("ipv4", ("127.0.0.1", 2775), ("127.0.0.1", 40001)),
    ("ipv6", ("::1", 2775, 0, 0), ("::1", 40001, 0, 0)),
    ("no address", None, "/tmp/socket"),
])
def test_writes_larger_than_a_packet_are_split_and_reassembled(tmp_path: Path, family: str, simulator, peer) -> None:
    path = tmp_path / "big.pcap"
    writer = PcapWriter(str(path))
    flow = writer.flow(simulator, peer)
    flow.received(smppcore.encode(EnquireLink(sequence_number=1)))
    burst = pdus(600, 250)  # ~170 kB in one write: three segments, PDUs cut at their edges
    flow.sent(burst)
    resp = SubmitSmResp(message_id="1")
    resp.sequence_number = 7
    flow.received(smppcore.encode(resp))
    flow.closed()
    writer.close()
    found = oracles.tshark_read(path, 2775)
    assert not found.malformed, found.problems
    assert commands(found)["0x00000005"] == 600
    assert [p["smpp.sequence_number"] for p in found if p["smpp.command_id"] == "0x00000005"][-1] == "600"


def test_the_file_stops_at_its_bound_and_stays_readable(tmp_path: Path) -> None:
    path = tmp_path / "bounded.pcap"
    writer = PcapWriter(str(path), max_bytes=4000)
    flow = writer.flow(("127.0.0.1", 2775), ("127.0.0.1", 40002))
    for i in range(100):
        pdu = SubmitSm(destination_addr="447700900123", short_message=b"x" * 50)
        pdu.sequence_number = i + 1
        flow.received(smppcore.encode(pdu))
    flow.closed()
    writer.close()
    assert writer.dropped > 0 and path.stat().st_size <= 4000
    found = oracles.tshark_read(path, 2775)
    assert not found.malformed, found.problems
    assert 0 < len(found) < 100


async def test_an_unwritable_pcap_is_one_config_line(tmp_path: Path) -> None:
    from smpphub.simulator.config import ConfigError

    with pytest.raises(ConfigError, match=r"^pcap: cannot write .*: no such file or directory$"):
        await start(config_from_dict({"listen": f"{HOST}:0", "pcap": str(tmp_path / "missing" / "x.pcap")}))
