"""The simulator's TLS listener end to end: smpplib (an independent client) binds over TLS to
``smpphub simulate --tls-listen`` and gets its receipt, the plain listener goes on beside it,
a client that does not speak TLS is turned away without harm, the capture shows the TLS
session in clear; bad TLS arguments are one line each, exit 2."""

from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import oracles
import pytest
from simulatekit import simulate_process
from tlskit import self_signed

import smppcore
from smpphub import cli

HOST = "127.0.0.1"


@dataclass
class Served:
    smpp_port: int
    tls_port: int
    http_port: int
    pcap: Path
    client_ctx: ssl.SSLContext


@dataclass
class Certs:
    directory: Path
    client_ctx: ssl.SSLContext


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    directory = tmp_path_factory.mktemp("certs")
    _, client_ctx, _ = self_signed(directory)
    client_ctx.check_hostname = False  # smpplib wraps its socket without a server name; the chain is still checked
    return Certs(directory, client_ctx)


@pytest.fixture
def served(tmp_path: Path, certs: Certs) -> Iterator[Served]:
    pcap = tmp_path / "tls.pcap"
    with simulate_process(tmp_path, "--listen", f"{HOST}:0", "--http", f"{HOST}:0", "--quiet",
                          "--tls-listen", f"{HOST}:0", "--tls-cert", str(certs.directory / "cert.pem"),
                          "--tls-key", str(certs.directory / "key.pem"), "--pcap", str(pcap)) as sim:
        yield Served(sim.port(r"listening on [\d.]+:(\d+)\n"), sim.port(r"TLS on [\d.]+:(\d+)\n"),
                     sim.port(r"http://[\d.]+:(\d+)/"), pcap, certs.client_ctx)


def smpplib_over_tls(served: Served) -> None:
    """bind, submit asking for a receipt, read the receipt, unbind: smpplib's own TLS socket."""
    import smpplib.client
    import smpplib.consts

    received: list[object] = []
    client = smpplib.client.Client(HOST, served.tls_port, timeout=5, allow_unknown_opt_params=True,
                                   ssl_context=served.client_ctx)
    client.set_message_received_handler(lambda pdu: received.append(pdu))
    client.connect()
    try:
        client.bind_transceiver(system_id="acme", password="secret")
        client.send_message(source_addr="Shop", destination_addr="447700900123", short_message=b"over TLS",
                            registered_delivery=1)
        deadline = time.monotonic() + 10
        while not received:
            assert time.monotonic() < deadline, "no receipt over TLS"
            client.read_once()
        client.unbind()
    finally:
        client.disconnect()
    assert b"stat:DELIVRD" in received[0].short_message


def test_smpplib_binds_over_tls_beside_the_plain_listener(served: Served) -> None:
    smpplib_over_tls(served)

    # a client that speaks plain SMPP to the TLS port gets nowhere, and harms nothing
    with socket.create_connection((HOST, served.tls_port), timeout=5) as raw:
        raw.sendall(bytes.fromhex("0000002500000009000000000000000161636d650073656372657400000034000000"))
        raw.settimeout(10)
        try:
            data = raw.recv(4096)
        except ConnectionResetError:
            data = b""
        assert data == b"" or data[0] == 0x15, data  # closed, or a TLS alert record: never an SMPP answer

    # the plain listener beside it
    async def plain() -> None:
        async with smppcore.connect(HOST, served.smpp_port, system_id="acme", password="secret") as esme:
            await esme.submit_sm(destination_addr="447700900124", short_message=b"in plain")

    smppcore.run(plain())
    with urllib.request.urlopen(f"http://{HOST}:{served.http_port}/messages", timeout=10) as answer:
        texts = [m["text"] for m in json.load(answer)["messages"]]
    assert texts == ["over TLS", "in plain"]


def test_the_tls_capture_reads_in_tshark(served: Served) -> None:
    smpplib_over_tls(served)
    # the capture is flushed as each connection closes
    deadline = time.monotonic() + 10
    while True:
        found = oracles.tshark_read(served.pcap, served.tls_port) if oracles.tshark_available() else None
        if found is None or any(p["smpp.command_id"] == "0x80000006" for p in found) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    oracles.require(oracles.tshark_available(), "tshark")
    assert found is not None and not found.malformed, found.problems if found else None
    ids = [p["smpp.command_id"] for p in found]
    assert ids[:2] == ["0x00000009", "0x80000009"]
    assert ids.count("0x00000004") == 1 and ids.count("0x00000005") == 1 and ids[-2:] == ["0x00000006", "0x80000006"]


TOGETHER = "smpphub simulate: --tls-cert and --tls-key go together (and with --tls-listen)"


@pytest.mark.parametrize("args,line", [
    (["--tls-cert", "{tmp}/cert.pem"], TOGETHER),
    (["--tls-listen", "127.0.0.1:0"], TOGETHER),
    (["--tls-listen", "here", "--tls-cert", "{tmp}/cert.pem", "--tls-key", "{tmp}/key.pem"],
     "smpphub simulate: tls.listen: expected HOST:PORT, got 'here'"),
    (["--tls-cert", "{tmp}/missing.pem", "--tls-key", "{tmp}/key.pem"],
     "smpphub simulate: tls.cert, tls.key: {tmp}/missing.pem and {tmp}/key.pem do not load as a certificate and its"
     " key (no such file or directory)"),
    (["--tls-cert", "{tmp}/key.pem", "--tls-key", "{tmp}/cert.pem"],
     "smpphub simulate: tls.cert, tls.key: {tmp}/key.pem and {tmp}/cert.pem do not load as a certificate and its"
     " key ("),
    (["--pcap", "{tmp}/no/such/dir/x.pcap"],
     "smpphub simulate: pcap: cannot write {tmp}/no/such/dir/x.pcap: no such file or directory"),
])
def test_tls_and_pcap_arguments_refused_in_one_line(certs: Certs, args: list[str], line: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    tmp_path = certs.directory
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert cli.main(["simulate", "--listen", f"{HOST}:0", "--quiet", *argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line.replace("{tmp}", str(tmp_path))), lines



@pytest.fixture
def smsc_config(certs: Certs) -> dict[str, object]:
    """The simulator fixture of this module: TLS and HTTP asked for on fixed ports, which it moves to free ones."""
    return {"tls": {"cert": str(certs.directory / "cert.pem"), "key": str(certs.directory / "key.pem"),
                    "listen": "127.0.0.1:3550"}, "http_listen": "127.0.0.1:8080"}


def test_the_sync_fixture_speaks_tls_on_a_free_port(certs: Certs, smsc_sync) -> None:
    import smpplib.client

    assert smsc_sync.tls_port not in (None, 3550) and smsc_sync.http_port not in (None, 8080)
    client = smpplib.client.Client(HOST, smsc_sync.tls_port, timeout=5, allow_unknown_opt_params=True,
                                   ssl_context=certs.client_ctx)
    client.connect()
    try:
        client.bind_transmitter(system_id="acme", password="x")
        client.send_message(destination_addr="447700900123", short_message=b"fixture over TLS")
        assert smsc_sync.wait_for(text="fixture over TLS", timeout=5).system_id == "acme"
    finally:
        client.disconnect()
