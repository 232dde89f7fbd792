"""The asyncio edge over loopback: our client against our server, and hostile peers."""

from __future__ import annotations

import asyncio
import functools
import socket

import pytest
from tlskit import self_signed

import smppcore
from smppcore import (
    BindError,
    CommandStatus,
    ConnectionClosed,
    DeliverSm,
    EnquireLink,
    Framer,
    GenericNack,
    ResponseTimeout,
    SessionConfig,
    SmppStatusError,
    SmscHandler,
    State,
    SubmitSm,
    encode,
)

HOST = "127.0.0.1"


async def wait_until(predicate, timeout: float = 5.0) -> None:
    """Poll ``predicate`` with a bound; no fixed sleeps."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class Recorder(SmscHandler):
    def __init__(self, password: str = "pw") -> None:
        super().__init__()
        self.password = password
        self.received: list = []
        self.conns: list = []

    def authenticate(self, conn, bind):
        return 0 if bind.password == self.password else CommandStatus.ESME_RINVPASWD

    def bound(self, conn):
        self.conns.append(conn)

    def handle(self, conn, pdu):
        self.received.append(pdu)
        return super().handle(conn, pdu)


@pytest.fixture
async def server():
    handler = Recorder()
    srv = await smppcore.serve(handler, HOST, 0)
    srv.recorder = handler
    yield srv
    await srv.close(timeout=1)


async def test_bind_submit_deliver_unbind(server):
    async with smppcore.connect(HOST, server.port, system_id="acme", password="pw") as client:
        assert client.session.state is State.BOUND_TRX
        resp = await client.submit_sm(source_addr="Acme", destination_addr="447700900123", short_message=b"hello")
        assert resp.message_id == "1"
        assert server.recorder.received[0].short_message == b"hello"
        # the SMSC sends a receipt; the client answers it and hands it over
        (conn,) = server.recorder.conns
        receipt = DeliverSm(source_addr="447700900123", destination_addr="Acme", esm_class=4, short_message=b"id:1 stat:DELIVRD")
        answer = await conn.request(receipt)
        assert answer.command_status == 0
        got = await client.next_message(timeout=5)
        assert got.short_message == b"id:1 stat:DELIVRD"
        assert (await client.enquire_link()).command_status == 0
    assert client.session.state is State.CLOSED and client.closed.done()
    await wait_until(lambda: not server.connections)


async def test_bind_refused(server):
    with pytest.raises(BindError) as info:
        await smppcore.connect(HOST, server.port, system_id="acme", password="wrong")
    assert info.value.command_status == CommandStatus.ESME_RINVPASWD


async def test_pipelining_a_whole_window(server):
    async with smppcore.connect(HOST, server.port, system_id="a", password="pw", window=50) as client:
        futures = [await client.send(SubmitSm(destination_addr=str(i))) for i in range(1000)]
        responses = await asyncio.gather(*futures)
        assert len({r.message_id for r in responses}) == 1000
        assert len(client.session.window) == 0


async def test_connect_with_a_client_subclass_and_requests_tracked_by_the_caller(server):
    class Counting(smppcore.Client):
        def __init__(self, tag: str, **kwargs) -> None:
            super().__init__(**kwargs)
            self.tag = tag

    factory = functools.partial(Counting, "mine")
    async with smppcore.connect(HOST, server.port, system_id="a", password="pw", client_class=factory) as client:
        assert isinstance(client, Counting) and client.tag == "mine"
        # a number taken for a request the caller tracks itself is never handed out again
        taken = client.session.next_sequence_number()
        resp = await client.submit_sm(destination_addr="447700900123")
        assert resp.sequence_number == taken + 1


async def test_a_handler_that_raises_costs_one_answer_not_the_session():
    class Buggy(SmscHandler):
        def authenticate(self, conn, bind):
            if bind.system_id == "crash":
                raise RuntimeError("authenticator bug")
            return 0

        def handle(self, conn, pdu):
            if pdu.destination_addr == "raise":
                raise RuntimeError("handler bug")
            if pdu.destination_addr == "junk":
                return 42  # not a PDU, None or an awaitable
            return super().handle(conn, pdu)

    srv = await smppcore.serve(Buggy(), HOST, 0)
    try:
        with pytest.raises(BindError) as info:
            await smppcore.connect(HOST, srv.port, system_id="crash", password="pw")
        assert info.value.command_status == CommandStatus.ESME_RBINDFAIL
        async with smppcore.connect(HOST, srv.port, system_id="a", password="pw") as client:
            futures = [await client.send(SubmitSm(destination_addr=d)) for d in ("1", "raise", "2", "junk", "3")]
            statuses = [(await f).command_status for f in futures]
            assert statuses == [0, CommandStatus.ESME_RSYSERR, 0, CommandStatus.ESME_RSYSERR, 0]
            assert client.is_open
    finally:
        await srv.close(timeout=1)


async def test_a_message_handler_that_raises_answers_rx_t_appn(server):
    def on_message(pdu):
        raise RuntimeError("application bug")

    async with smppcore.connect(HOST, server.port, system_id="a", password="pw", on_message=on_message) as client:
        await client.submit_sm(destination_addr="447700900123")  # bound and working
        (conn,) = server.recorder.conns
        answer = await conn.send(DeliverSm(source_addr="447700900123", destination_addr="Acme", short_message=b"hi"))
        assert (await answer).command_status == CommandStatus.ESME_RX_T_APPN
        assert client.is_open and (await client.enquire_link()).command_status == 0


async def test_send_callback_answers_in_place_and_reports_timeouts_and_lost_connections():
    class Handler(SmscHandler):
        def handle(self, conn, pdu):
            if pdu.destination_addr == "silent":
                return None  # never answered
            return super().handle(conn, pdu)

    srv = await smppcore.serve(Handler(), HOST, 0)
    try:
        client = await smppcore.connect(HOST, srv.port, system_id="a", password="pw",
                                        config=SessionConfig(response_timeout=1.0))
        got: list = []
        done = asyncio.Event()

        def record(response, error):
            got.append((response.message_id if response is not None else None, type(error).__name__ if error else None))
            if len(got) == 4:
                done.set()

        def buggy(response, error):
            raise RuntimeError("caller bug")

        for dest in ("1", "2", "silent", "3"):
            client.send_callback(SubmitSm(destination_addr=dest), record)
        client.send_callback(SubmitSm(destination_addr="4"), buggy)  # logged, the connection goes on
        await asyncio.wait_for(done.wait(), 5)
        # answers in order, the unanswered one timed out after them
        assert got == [("1", None), ("2", None), ("3", None), (None, "ResponseTimeout")]
        assert client.is_open
        # requests in flight when the connection goes get ConnectionClosed
        lost: list = []
        client.send_callback(SubmitSm(destination_addr="silent"), lambda r, e: lost.append(type(e).__name__))
        client.abort()
        await client.closed
        assert lost == ["ConnectionClosed"]
    finally:
        await srv.close(timeout=1)


async def test_connect_cancelled_as_its_bind_completes_raises_and_closes(server):
    # the task is cancelled in the same step as the bind completes: the moment at which
    # asyncio.wait_for (3.11) returns the result and drops the cancellation
    made: list = []

    class CancelledAtBind(smppcore.Client):
        async def bind(self):
            resp = await super().bind()
            made.append(self)
            outer.cancel()
            return resp

    outer = asyncio.ensure_future(smppcore.connect(HOST, server.port, system_id="a", password="pw",
                                                   client_class=CancelledAtBind))
    with pytest.raises(asyncio.CancelledError):
        await outer
    (client,) = made
    await asyncio.wait_for(client.closed, 5)  # no connection left behind
    await wait_until(lambda: not server.connections)


async def test_long_text_is_split(server):
    async with smppcore.connect(HOST, server.port, system_id="a", password="pw") as client:
        responses = await client.submit_text("447700900123", "x" * 400, source_addr="Acme")
        assert len(responses) == 3
        parts = server.recorder.received
        assert all(p.esm_class & 0x40 for p in parts)


async def test_long_text_with_a_16_bit_reference(server):
    async with smppcore.connect(HOST, server.port, system_id="a", password="pw") as client:
        await client.submit_text("447700900123", "y" * 400, ref_bits=16, reference=0xBEEF)
        await client.submit_text("447700900123", "z" * 400, ref_bits=16)  # a random 16-bit one
        parts = server.recorder.received
        # IE 0x08: 16-bit reference, then the count and the sequence number
        assert [p.short_message[:6] for p in parts[:3]] == [bytes([5 + 1, 0x08, 4, 0xBE, 0xEF, 3])] * 3
        assert {p.short_message[1] for p in parts[3:]} == {0x08}


async def test_error_status_raises(server):
    class Refuser(SmscHandler):
        def handle(self, conn, pdu):
            return pdu.make_response(command_status=CommandStatus.ESME_RTHROTTLED)

    srv = await smppcore.serve(Refuser(), HOST, 0)
    try:
        async with smppcore.connect(HOST, srv.port, system_id="a", password="b") as client:
            with pytest.raises(SmppStatusError) as info:
                await client.submit_sm(destination_addr="1")
            assert info.value.command_status == CommandStatus.ESME_RTHROTTLED
    finally:
        await srv.close(timeout=1)


async def test_async_handler_and_window_back_pressure():
    gate = asyncio.Event()

    class Slow(SmscHandler):
        async def handle(self, conn, pdu):
            await gate.wait()
            return pdu.make_response(message_id="later")

    srv = await smppcore.serve(Slow(), HOST, 0)
    try:
        async with smppcore.connect(HOST, srv.port, system_id="a", password="b", window=2) as client:
            f1 = await client.send(SubmitSm())
            f2 = await client.send(SubmitSm())
            third = asyncio.ensure_future(client.send(SubmitSm()))
            await asyncio.sleep(0)
            assert not third.done() and not client.session.can_send
            gate.set()
            f3 = await asyncio.wait_for(third, 5)
            assert [r.message_id for r in await asyncio.gather(f1, f2, f3)] == ["later"] * 3
    finally:
        await srv.close(timeout=1)


async def test_response_timeout():
    class Silent(SmscHandler):
        def handle(self, conn, pdu):
            return None  # never answers

    srv = await smppcore.serve(Silent(), HOST, 0)
    try:
        cfg = SessionConfig(response_timeout=0.2, enquire_link_interval=0)
        async with smppcore.connect(HOST, srv.port, system_id="a", password="b", config=cfg) as client:
            with pytest.raises(ResponseTimeout):
                await client.submit_sm(destination_addr="1")
            assert len(client.session.window) == 0
    finally:
        await srv.close(timeout=1)


async def test_dead_peer_detected_by_enquire_link():
    """A raw SMSC that binds the client and then never answers anything."""
    accepted = asyncio.Event()

    async def fake_smsc(reader, writer):
        data = await reader.readexactly(16)
        length = int.from_bytes(data[:4], "big")
        body = await reader.readexactly(length - 16)
        bind = smppcore.decode(data + body)
        writer.write(encode(bind.make_response(system_id="x")))
        accepted.set()
        while await reader.read(4096):
            pass  # swallow enquire_links without answering

    srv = await asyncio.start_server(fake_smsc, HOST, 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        cfg = SessionConfig(enquire_link_interval=0.1, response_timeout=0.2)
        client = await smppcore.connect(HOST, port, system_id="a", password="b", config=cfg)
        await asyncio.wait_for(client.closed, 5)
        assert "enquire_link" in client.session.close_reason
        with pytest.raises(ConnectionClosed):
            await client.submit_sm()
    finally:
        srv.close()


async def test_server_unbinds_everyone_on_close():
    srv = await smppcore.serve(SmscHandler(), HOST, 0)
    clients = [await smppcore.connect(HOST, srv.port, system_id=f"c{i}", password="p") for i in range(3)]
    await srv.close(timeout=2)
    for c in clients:
        await asyncio.wait_for(c.closed, 5)
        assert c.session.state in (State.UNBOUND, State.CLOSED)


async def test_connection_limit():
    srv = await smppcore.serve(SmscHandler(), HOST, 0, max_connections=1)
    try:
        first = await smppcore.connect(HOST, srv.port, system_id="a", password="p")
        with pytest.raises((ConnectionClosed, ConnectionError, OSError, asyncio.IncompleteReadError)):
            await smppcore.connect(HOST, srv.port, system_id="b", password="p", connect_timeout=5)
        assert (await first.submit_sm()).command_status == 0
        await first.unbind()
    finally:
        await srv.close(timeout=1)


async def test_reconnecting_comes_back_after_the_server_restarts():
    srv = await smppcore.serve(SmscHandler(), HOST, 0)
    port = srv.port
    binds = 0
    backoff = smppcore.Backoff(initial=0.01, maximum=0.05)
    async for client in smppcore.reconnecting(HOST, port, system_id="a", password="p", backoff=backoff):
        binds += 1
        assert (await client.submit_sm()).command_status == 0
        if binds == 1:
            await srv.close(timeout=1)
            srv = await smppcore.serve(SmscHandler(), HOST, port)
        else:
            await client.unbind()
            break
    await srv.close(timeout=1)
    assert binds == 2


# --- TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_contexts(tmp_path_factory):
    server_ctx, client_ctx, _ = self_signed(tmp_path_factory.mktemp("tls"))
    return server_ctx, client_ctx


async def test_tls_both_sides(tls_contexts):
    server_ctx, client_ctx = tls_contexts
    srv = await smppcore.serve(SmscHandler(), HOST, 0, ssl=server_ctx)
    try:
        async with smppcore.connect(HOST, srv.port, system_id="a", password="p", ssl=client_ctx, server_hostname="localhost") as c:
            assert (await c.submit_sm(destination_addr="1")).message_id == "1"
            assert c.transport.get_extra_info("ssl_object") is not None
    finally:
        await srv.close(timeout=1)


# --- hostile peers ---------------------------------------------------------------------


class RawPeer:
    """A plain socket peer that does exactly what the test tells it to."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.framer = Framer()

    @classmethod
    async def open(cls, port):
        return cls(*await asyncio.open_connection(HOST, port))

    async def bind(self):
        self.writer.write(encode(smppcore.BindTransceiver(sequence_number=1, system_id="raw", password="pw")))
        (resp,) = await self.read_pdus(1)
        assert resp.command_status == 0

    async def read_pdus(self, n, timeout=5.0):
        out = []
        while len(out) < n:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                break
            out += self.framer.feed(data)
        return out

    async def closed_by_peer(self, timeout=5.0) -> bool:
        while True:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                return True

    def close(self):
        self.writer.close()


async def test_garbage_bytes_get_nack_and_close(server):
    peer = await RawPeer.open(server.port)
    peer.writer.write(b"\x00\x00\x00\x05garbage that is not smpp at all")
    (nack,) = await peer.read_pdus(1)
    assert isinstance(nack, GenericNack) and nack.command_status == CommandStatus.ESME_RINVCMDLEN
    assert await peer.closed_by_peer()


async def test_huge_command_length_is_refused_at_once(server):
    peer = await RawPeer.open(server.port)
    peer.writer.write(bytes.fromhex("7fffffff 00000004 00000000 00000009".replace(" ", "")))
    (nack,) = await peer.read_pdus(1)
    assert nack == GenericNack(sequence_number=9, command_status=CommandStatus.ESME_RINVCMDLEN)
    assert await peer.closed_by_peer()


async def test_peer_that_never_binds_is_dropped():
    srv = await smppcore.serve(SmscHandler(), HOST, 0, config=SessionConfig(bind_timeout=0.2))
    try:
        peer = await RawPeer.open(srv.port)
        assert await peer.closed_by_peer(timeout=5)
        await wait_until(lambda: not srv.connections)
    finally:
        await srv.close(timeout=1)


async def test_submit_before_bind_is_refused(server):
    peer = await RawPeer.open(server.port)
    peer.writer.write(encode(SubmitSm(sequence_number=4)))
    (resp,) = await peer.read_pdus(1)
    assert resp.command_status == CommandStatus.ESME_RINVBNDSTS and resp.sequence_number == 4
    peer.close()


async def test_flood_of_10000_pdus_without_waiting(server):
    peer = await RawPeer.open(server.port)
    await peer.bind()
    flood = b"".join(encode(SubmitSm(sequence_number=i, destination_addr="1")) for i in range(2, 10002))
    peer.writer.write(flood)
    responses = await peer.read_pdus(10000, timeout=30)
    assert len(responses) == 10000
    assert [r.sequence_number for r in responses] == list(range(2, 10002))
    peer.close()


async def test_peer_that_stops_reading_does_not_grow_our_memory(server):
    """It floods enquire_links and never reads: we stop reading from it, and others go on."""
    sock = socket.create_connection((HOST, server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    link = encode(EnquireLink(sequence_number=1))
    await loop.sock_sendall(sock, encode(smppcore.BindTransceiver(sequence_number=1, system_id="x", password="pw")))
    await wait_until(lambda: server.recorder.conns)
    (conn,) = server.recorder.conns
    blob = link * 4096  # 64 KiB a write
    sent = 0
    try:
        while sent < 64 * 1024 * 1024:
            await asyncio.wait_for(loop.sock_sendall(sock, blob), 1.0)
            sent += len(blob)
    except asyncio.TimeoutError:
        pass  # our sends back up once the server stops reading: that is the point
    assert sent < 64 * 1024 * 1024, "the server kept reading from a peer that does not read"
    high = conn.transport.get_write_buffer_limits()[1]
    assert conn.transport.get_write_buffer_size() <= high + 16 * 65536
    assert "write-backlog" in conn._read_pauses
    # another client on the same server is served meanwhile
    async with smppcore.connect(HOST, server.port, system_id="ok", password="pw") as other:
        assert (await other.submit_sm(destination_addr="1")).command_status == 0
    sock.close()
