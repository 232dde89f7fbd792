"""Three faults the fault suite found below the hub's processes, each fixed where it lived.

- A known account refused for its source IP, its bind type or max_binds answered
  at once with its own status, while an unknown system_id was answered
  ESME_RINVPASWD after a scrypt check: the status and the timing told which names
  exist. Now, without the password, such a refusal looks like an unknown name (the
  same check, the same status, the same guard delay); with it, the owner learns why.
- A client that unbound while the server still owed it answers (a submit waiting for
  the store's commit) got its unbind_resp first and closed: the answers were lost.
- outbind and alert_notification, which take no response, held a window slot until
  the response timeout and then failed as unanswered.
"""

from __future__ import annotations

import asyncio

import pytest
from hubkit import hub_config, running_hub, wait_until

import smppcore
from smppcore import CommandStatus, SessionConfig, encode
from smppcore.pdus import AlertNotification, BindTransceiver, BindTransmitter, SubmitSm, SubmitSmResp, Unbind
from smpphub.router import accounts as accounts_module
from smpphub.router.auth import hash_password

HOST = "127.0.0.1"
HASH = hash_password("pw")


# ---- the same answer for an unknown name and a known one refused ------------------------------------------


def accounts_config(**security):
    return hub_config({}, [], accounts=[
        {"system_id": "acme", "password_hash": HASH},
        {"system_id": "ipbound", "password_hash": HASH, "allowed_ips": ["10.9.9.9"]},
        {"system_id": "txonly", "password_hash": HASH, "bind_types": ["tx"]},
        {"system_id": "single", "password_hash": HASH, "max_binds": 1},
    ], security={"failed_bind_delay": 0.0, "failed_bind_delay_max": 0.0, "lockout_failures": 1000, **security})


async def bind_status(port: int, system_id: str, password: str, bind: str = "trx") -> int:
    try:
        client = await smppcore.connect(HOST, port, system_id=system_id, password=password, bind=bind)
    except smppcore.SmppStatusError as exc:
        return exc.command_status
    await client.unbind()
    return 0


@pytest.fixture
def checks(monkeypatch):
    """Every password check the hub runs: (password, credential) pairs."""
    seen: list[str] = []
    real = accounts_module.verify_password

    def counting(password: str, credential: str) -> bool:
        seen.append(password)
        return real(password, credential)

    monkeypatch.setattr(accounts_module, "verify_password", counting)
    return seen


# (system_id, bind type, why a known account is refused); "single" is refused while another bind holds its slot
REFUSED = [
    ("ipbound", "trx", CommandStatus.ESME_RBINDFAIL),  # the test binds from 127.0.0.1
    ("txonly", "trx", CommandStatus.ESME_RINVBNDSTS),
    ("single", "trx", CommandStatus.ESME_RBINDFAIL),
]


@pytest.mark.parametrize("system_id,bind,status", REFUSED, ids=[r[0] for r in REFUSED])
async def test_a_refused_known_account_answers_like_an_unknown_name_unless_the_password_is_right(
        system_id, bind, status, checks):
    async with running_hub(accounts_config()) as hub:
        port = hub.servers[0].port
        held = None
        if system_id == "single":
            held = await smppcore.connect(HOST, port, system_id="single", password="pw")
        try:
            checks.clear()
            unknown = await bind_status(port, "nosuchname", "guess")
            wrong = await bind_status(port, system_id, "guess", bind)
            assert unknown == wrong == CommandStatus.ESME_RINVPASWD
            assert checks == ["guess", "guess"]  # the same scrypt work for both
            right = await bind_status(port, system_id, "pw", bind)
            assert right == status  # the owner, who knows the password, learns why
            assert checks[-1] == "pw"
        finally:
            if held is not None:
                await held.unbind()
        assert hub.handler.binds_held("single") == 0 and hub.handler.binds_held(system_id) == 0


async def test_reveal_unknown_system_id_keeps_the_old_immediate_answers(checks):
    async with running_hub(accounts_config(reveal_unknown_system_id=True)) as hub:
        port = hub.servers[0].port
        assert await bind_status(port, "txonly", "guess", "trx") == CommandStatus.ESME_RINVBNDSTS
        assert await bind_status(port, "nosuchname", "guess") == CommandStatus.ESME_RINVSYSID
        assert checks == []  # neither cost a scrypt


# ---- answers owed when the client unbinds --------------------------------------------------------------------


class SlowStore(smppcore.SmscHandler):
    """Answers submits only when ``release`` is set (a store commit that takes a while)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    def handle(self, conn, pdu):
        return self._later(pdu)

    async def _later(self, pdu):
        await self.release.wait()
        return pdu.make_response(message_id="m1")


async def read_pdus(reader: asyncio.StreamReader, n: int) -> list:
    framer = smppcore.Framer()
    got: list = []
    while len(got) < n:
        chunk = await asyncio.wait_for(reader.read(65536), 10)
        if not chunk:
            break
        got += framer.feed(chunk)
    return got


async def test_an_unbind_waits_for_the_answers_owed_and_they_go_out_first():
    handler = SlowStore()
    server = await smppcore.serve(handler, HOST, 0, config=SessionConfig(enquire_link_interval=0))
    try:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        # bind, two submits and the unbind in one write: a client that does not wait for its answers
        writer.write(encode(BindTransmitter(sequence_number=1, system_id="a", password="b"))
                     + encode(SubmitSm(sequence_number=2, destination_addr="1", short_message=b"x"))
                     + encode(SubmitSm(sequence_number=3, destination_addr="1", short_message=b"y"))
                     + encode(Unbind(sequence_number=4)))
        await wait_until(lambda: any(c.session.unbind_response for c in server.connections), what="unbind read")
        handler.release.set()
        pdus = await read_pdus(reader, 4)
        assert [(p.command_name, p.sequence_number, p.command_status) for p in pdus] == [
            ("bind_transmitter_resp", 1, 0), ("submit_sm_resp", 2, 0), ("submit_sm_resp", 3, 0),
            ("unbind_resp", 4, 0)]
        assert await asyncio.wait_for(reader.read(1), 10) == b""  # then it closes
        writer.close()
    finally:
        await server.close()


async def test_answers_never_given_do_not_hold_the_connection_past_the_response_timeout():
    handler = SlowStore()  # never released
    server = await smppcore.serve(handler, HOST, 0, config=SessionConfig(enquire_link_interval=0, response_timeout=0.3))
    try:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        writer.write(encode(BindTransmitter(sequence_number=1, system_id="a", password="b"))
                     + encode(SubmitSm(sequence_number=2, destination_addr="1", short_message=b"x"))
                     + encode(Unbind(sequence_number=3)))
        pdus = await read_pdus(reader, 2)
        assert [p.command_name for p in pdus] == ["bind_transmitter_resp", "unbind_resp"]
        assert await asyncio.wait_for(reader.read(1), 10) == b""
        writer.close()
    finally:
        await server.close()


async def test_the_hub_answers_submits_written_together_with_the_unbind():
    # an upstream that is down: accepted messages wait for it, stored
    async with running_hub(hub_config({"down": 1}, [{"prefix": "44", "upstreams": ["down"]}]), wait=False) as hub:
        reader, writer = await asyncio.open_connection(HOST, hub.servers[0].port)
        submits = b"".join(encode(SubmitSm(sequence_number=i, destination_addr="447700900123", short_message=b"z"))
                           for i in range(2, 12))
        writer.write(encode(BindTransceiver(sequence_number=1, system_id="acme", password="pw")))
        await writer.drain()
        assert (await read_pdus(reader, 1))[0].command_status == 0
        writer.write(submits + encode(Unbind(sequence_number=12)))
        pdus = await read_pdus(reader, 11)
        answers = [p for p in pdus if isinstance(p, SubmitSmResp)]
        assert [(p.sequence_number, p.command_status) for p in answers] == [(i, 0) for i in range(2, 12)]
        assert pdus[-1].command_name == "unbind_resp"
        assert hub.acceptor.accepted == 10  # every message answered was stored
        writer.close()


# ---- requests that take no response ----------------------------------------------------------------------------


async def test_alert_notifications_take_no_window_slot():
    got: list = []
    server = await smppcore.serve(smppcore.SmscHandler(), HOST, 0,
                                  config=SessionConfig(window=1, enquire_link_interval=0))
    try:
        async with smppcore.connect(HOST, server.port, system_id="a", password="b", on_message=got.append) as client:
            await wait_until(lambda: len(server.bound_connections()) == 1, what="bound")
            conn = server.bound_connections()[0]
            for i in range(5):  # a window of 1: the second would have waited for a response that never comes
                sent = await asyncio.wait_for(conn.send(AlertNotification(source_addr=f"44{i}", esme_addr="a")), 5)
                assert (await sent) is not None
            assert len(conn.session.window) == 0
            await wait_until(lambda: len(got) == 5, what="five alerts read")
            assert [p.source_addr for p in got] == [f"44{i}" for i in range(5)]
            resp = await client.submit_sm(destination_addr="1", short_message=b"still works")
            assert resp.command_status == 0
    finally:
        await server.close()


# ---- a client flooding past its max_rate ----------------------------------------------------------------------


async def test_a_flood_past_max_rate_is_read_no_faster_than_max_unanswered_per_throttled_answer_delay():
    """The soak found it: over-rate submits were answered ESME_RTHROTTLED at once, so a client that never
    reads kept the hub reading (and answering) until the kernel's socket buffers were full, hundreds of
    thousands of submits, and the good client fell to a tenth of its rate. Answered after a delay, they
    hold the connection's max_unanswered and the rest of its stream waits unread."""
    config = hub_config({}, [], accounts=[{"system_id": "flood", "password": "pw", "max_rate": 10}],
                        listeners=[{"host": "127.0.0.1", "port": 0, "max_unanswered": 200}],
                        security={"throttled_answer_delay": 3.0})
    async with running_hub(config) as hub:
        reader, writer = await asyncio.open_connection(HOST, hub.servers[0].port)
        writer.write(encode(BindTransceiver(sequence_number=1, system_id="flood", password="pw")))
        writer.write(b"".join(encode(SubmitSm(sequence_number=i, destination_addr="447700900123", short_message=b"f"))
                              for i in range(2, 20_002)))  # ~1 MB: far more than one read
        refused = hub.dispatcher.stats.refused

        def throttled() -> int:
            # only these hold an answer slot; what the bucket lets through (its burst, and what
            # it refills while a slow machine reads) is refused as unroutable and answered at once
            return refused.get("flood", {}).get(CommandStatus.ESME_RTHROTTLED, 0)

        await wait_until(lambda: throttled() >= 200, what="the first max_unanswered over-rate submits")
        conn = next(iter(hub.servers[0].connections))
        # an observation window well inside the delay (3 s from the first throttled answer, not
        # from when this poll saw the 200th): nothing more may be read in it
        await asyncio.sleep(0.5)
        assert throttled() == 200  # max_unanswered
        assert conn.unanswered >= 190 and conn.session.held  # the rest of the stream waits, unread
        writer.close()
