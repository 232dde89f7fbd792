"""A group commit's answers go out per connection at once (SmscConnection.respond_all), exactly as
the same answers given one by one with respond() would: same bytes, same quota, the read resumed
and the unbind finished the same way; and the acceptor hands each submitter its own answers, in
the order they came, whatever kind of submitter it is (an ESME's connection, an HTTP request)."""

from __future__ import annotations

import asyncio

import pytest
from transportkit import RecordingTransport

from smppcore import Pdu, SubmitSm, SubmitSmResp, Unbind, encode
from smppcore.server import Server, SmscConnection, SmscHandler
from smppcore.session import SessionConfig, State
from smpphub.router.acceptor import Acceptor
from smpphub.router.config import HubConfig, Upstream
from smpphub.router.delivery import Deliveries
from smpphub.router.dispatch import Dispatcher
from smpphub.router.lifecycle import MessageRow
from smpphub.router.store.memory import MemoryStore
from smpphub.router.upstream import Outgoing


class Later(SmscHandler):
    """Answers nothing at once: the test answers with respond or respond_all."""

    def handle(self, conn: SmscConnection, pdu: Pdu) -> None:
        return None


def bound_conn(max_unanswered: int = 1000) -> tuple[SmscConnection, RecordingTransport]:
    server = Server(Later(), config=SessionConfig(max_unanswered=max_unanswered, enquire_link_interval=0))
    conn = SmscConnection(server, asyncio.get_running_loop())
    transport = RecordingTransport()
    conn.connection_made(transport)
    conn.session.state = State.BOUND_TRX
    return conn, transport


def submits(n: int, first: int = 1) -> bytes:
    return b"".join(encode(SubmitSm(destination_addr="4477", sequence_number=first + i)) for i in range(n))


def answers(n: int, first: int = 1) -> list[Pdu]:
    return [SubmitSmResp(sequence_number=first + i, message_id=f"id{first + i}") for i in range(n)]


async def settle(conn: SmscConnection) -> bytes:
    await asyncio.sleep(0)  # the flush is a loop callback
    await asyncio.sleep(0)
    return b"".join(conn.transport.writes) if conn.transport is not None else b""  # type: ignore[attr-defined]


async def test_respond_all_writes_and_counts_as_respond_one_by_one() -> None:
    one, one_t = bound_conn()
    many, many_t = bound_conn()
    for conn in (one, many):
        conn.data_received(submits(5))
    assert one.unanswered == many.unanswered == 5
    for response in answers(5):
        one.respond(response)
    many.respond_all(answers(5))
    assert await settle(many) == await settle(one) == b"".join(encode(r) for r in answers(5))
    assert len(many_t.writes) == 1 and one.unanswered == many.unanswered == 0


async def test_answers_past_what_is_owed_do_not_raise_the_quota() -> None:
    conn, _ = bound_conn(max_unanswered=10)
    conn.data_received(submits(2))
    conn.respond_all(answers(4))  # two more than owed (a handler bug): sent, never counted as room
    assert conn.session.quota == 10 and conn.unanswered == 0


async def test_a_connection_paused_at_its_limit_reads_again_once_half_are_answered() -> None:
    conn, transport = bound_conn(max_unanswered=4)
    conn.data_received(submits(6))  # the limit: reading stops, what is over it waits
    assert transport.paused and conn.unanswered == 4
    conn.respond_all(answers(2))
    await settle(conn)
    assert not transport.paused and conn.unanswered == 4  # the two held were handed over on resuming


async def test_the_last_answers_owed_after_an_unbind_end_the_grace_at_once() -> None:
    conn, transport = bound_conn()
    conn.data_received(submits(3) + encode(Unbind(sequence_number=9)))
    assert conn._unbind_grace is not None
    conn.respond_all(answers(3))
    assert conn._unbind_grace is None and transport.writes  # answers, then unbind_resp, written


class Answer:
    """A submitter that is not an ESME's connection (an HTTP request waiting for its answer)."""

    def __init__(self) -> None:
        self.got: list[Pdu] = []

    def respond(self, pdu: Pdu) -> None:
        self.got.append(pdu)


class NoReceivers:
    def receivers(self, account: str) -> list:
        return []


def message(n: int) -> Outgoing:
    pdu = SubmitSm(destination_addr="447700900123", short_message=b"m%d" % n)
    return Outgoing(MessageRow(id=f"m{n}", account="acme", pdu=encode(pdu), route=["u"]), pdu)


@pytest.mark.parametrize("order", ["interleaved", "grouped"])
async def test_the_acceptor_answers_each_submitter_its_own_answers_in_order(order: str) -> None:
    store = MemoryStore()
    await store.open()
    up = Upstream(name="u", host="127.0.0.1", port=1, system_id="hub")
    acceptor = Acceptor(store, Dispatcher(HubConfig(upstreams=[up]), store, Deliveries(store, NoReceivers())))
    a, _ = bound_conn()
    b, _ = bound_conn()
    http = Answer()
    a.data_received(submits(3))
    b.data_received(submits(3, first=10))
    sequence = ([a, b, http, a, b, a, b] if order == "interleaved" else [a, a, a, b, b, b, http])
    given: dict[object, list[Pdu]] = {a: [], b: [], http: []}
    for n, who in enumerate(sequence):
        response = SubmitSmResp(sequence_number=n + 1, message_id=f"id{n}")
        given[who].append(response)
        acceptor.accept(who, SubmitSm(sequence_number=n + 1), response, [message(n)])  # type: ignore[arg-type]
    await acceptor.drain()
    assert http.got == given[http]
    for conn in (a, b):
        assert await settle(conn) == b"".join(encode(r) for r in given[conn]) and conn.unanswered == 0
