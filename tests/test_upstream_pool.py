"""UpstreamPool alone (router/upstream.py): a fake UpstreamEvents, a real smppcore server as the SMSC.

What the dispatcher relies on: messages leave in the order queued, a message that is no
longer the pool's is skipped without spending a rate token, max_rate holds, the queue is
handed back when the last bind goes, and answered() is called once per message written,
with the response or the error.
"""

from __future__ import annotations

import asyncio
import collections

import pytest
from hubkit import wait_until

import smppcore
from smppcore import CommandId, CommandStatus, Pdu, SubmitSm, encode
from smpphub.router.config import Upstream
from smpphub.router.lifecycle import MessageRow
from smpphub.router.upstream import Outgoing, UpstreamPool

HOST = "127.0.0.1"


class Answer:
    """What a pool reported about one message: the response, or the error instead of one."""

    __slots__ = ("response", "error")

    def __init__(self, response: Pdu | None, error: BaseException | None) -> None:
        self.response = response
        self.error = error


class RecordingEvents:
    """An UpstreamEvents that records every call; ``gone`` holds ids no longer for the pool."""

    def __init__(self) -> None:
        self.gone: set[str] = set()
        self.asked: list[str] = []
        self.taken_ids: list[str] = []
        self.answers: dict[str, list[Answer]] = collections.defaultdict(list)
        self.ups = 0
        self.handed_back: list[list[str]] = []

    def still_for(self, outs: list[Outgoing], pool: UpstreamPool) -> list[Outgoing]:
        self.asked += [out.row.id for out in outs]
        return [out for out in outs if out.row.id not in self.gone]

    def taken(self, outs: list[Outgoing], pool: UpstreamPool) -> None:
        self.taken_ids += [out.row.id for out in outs]

    def answered(self, outs: list[Outgoing], pool: UpstreamPool, responses: list[Pdu]) -> None:
        for out, response in zip(outs, responses, strict=True):
            self.answers[out.row.id].append(Answer(response, None))

    def unanswered(self, out: Outgoing, pool: UpstreamPool, error: BaseException) -> None:
        self.answers[out.row.id].append(Answer(None, error))

    def deliver_received(self, pool: UpstreamPool, pdu: Pdu) -> int:
        return 0

    def deliver_received_all(self, pool: UpstreamPool, pdus: list[Pdu]) -> list[int]:
        return [0] * len(pdus)

    def pool_up(self, pool: UpstreamPool) -> None:
        self.ups += 1

    def pool_down(self, pool: UpstreamPool, left: list[Outgoing]) -> None:
        self.handed_back.append([out.row.id for out in left])

    @property
    def answered_count(self) -> int:
        return sum(len(a) for a in self.answers.values())


class Smsc(smppcore.SmscHandler):
    """Records each submit_sm's text and when it came; answers at once, refuses texts
    starting with ``bad`` (ESME_RSYSERR), or with ``hold`` never answers."""

    def __init__(self, hold: bool = False) -> None:
        super().__init__()
        self.hold = hold
        self.texts: list[bytes] = []
        self.times: list[float] = []

    def handle(self, conn: smppcore.SmscConnection, pdu: Pdu) -> Pdu | None:
        if pdu.command_id != CommandId.SUBMIT_SM:
            return super().handle(conn, pdu)
        self.texts.append(pdu.short_message)
        self.times.append(asyncio.get_running_loop().time())
        if self.hold:
            return None
        if pdu.short_message.startswith(b"bad"):
            return pdu.make_response(command_status=CommandStatus.ESME_RSYSERR)
        return pdu.make_response(message_id=f"up-{len(self.texts)}")


def outgoing(n: int, text: str = "m") -> Outgoing:
    pdu = SubmitSm(destination_addr=f"4477{n:08d}", short_message=f"{text}{n}".encode())
    return Outgoing(MessageRow(id=f"id-{n}", account="acme", pdu=encode(pdu), route=["u"]), pdu)


class Running:
    """A server and a pool bound to it."""

    def __init__(self, smsc: Smsc, server: smppcore.Server, pool: UpstreamPool, events: RecordingEvents) -> None:
        self.smsc = smsc
        self.server = server
        self.pool = pool
        self.events = events


@pytest.fixture
async def running(request: pytest.FixtureRequest):
    """``request.param``: (Smsc keyword arguments, Upstream keyword arguments); the pool not started."""
    smsc_kw, upstream_kw = getattr(request, "param", ({}, {}))
    smsc = Smsc(**smsc_kw)
    server = await smppcore.serve(smsc, HOST, 0)
    events = RecordingEvents()
    cfg = Upstream(name="u", host=HOST, port=server.port, system_id="hub", reconnect_initial=0.05,
                   reconnect_max=0.2, response_timeout=5, **upstream_kw)
    pool = UpstreamPool(cfg, events)
    yield Running(smsc, server, pool, events)
    await pool.stop(1.0)
    await server.close(timeout=1.0)


async def test_messages_leave_in_order_and_each_is_answered_once(running: Running):
    pool, events = running.pool, running.events
    pool.start()
    await wait_until(lambda: pool.available, what="pool bound")
    messages = [outgoing(i, "bad" if i % 10 == 3 else "m") for i in range(300)]
    for out in messages:
        pool.submit(out)
    await wait_until(lambda: events.answered_count == 300, what="every message answered")
    assert running.smsc.texts == [out.pdu.short_message for out in messages]
    assert events.taken_ids == [out.row.id for out in messages]
    assert all(len(answers) == 1 for answers in events.answers.values()) and len(events.answers) == 300
    statuses = collections.Counter(a[0].response.command_status for a in events.answers.values() if a[0].response)
    assert statuses == {CommandStatus.ESME_ROK: 270, CommandStatus.ESME_RSYSERR: 30}
    assert all(a[0].error is None for a in events.answers.values())
    assert pool.sent == 300 and pool.in_flight == 0 and not pool.queue


@pytest.mark.parametrize("running", [({}, {"max_rate": 1.0})], indirect=True)
async def test_a_message_no_longer_for_the_pool_is_skipped_without_a_rate_token(running: Running):
    pool, events = running.pool, running.events
    # queued before the bind is up: the first pump sees all four at once
    skipped = [outgoing(i) for i in range(3)]
    kept = outgoing(3)
    events.gone.update(out.row.id for out in skipped)
    pool.start()
    for out in [*skipped, kept]:
        pool.submit(out)
    # one token at 1/s: had a skipped message spent it, the kept one would wait a whole second
    await wait_until(lambda: events.answered_count == 1, timeout=0.8, what="the kept message answered at once")
    assert events.taken_ids == [kept.row.id]
    assert running.smsc.texts == [kept.pdu.short_message]
    assert set(events.asked) == {out.row.id for out in [*skipped, kept]}
    assert list(events.answers) == [kept.row.id] and not pool.queue


@pytest.mark.parametrize("running", [({}, {"max_rate": 20.0})], indirect=True)
async def test_the_rate_cap_holds(running: Running):
    pool, events = running.pool, running.events
    pool.start()
    await wait_until(lambda: pool.available, what="pool bound")
    for i in range(15):
        pool.submit(outgoing(i))
    await wait_until(lambda: events.answered_count == 15, what="all answered")
    times = running.smsc.times
    # 20/s with a burst of 2 (a tenth of a second's worth, at least one): 13 waits of 1/20 s
    assert times[-1] - times[0] >= 13 / 20 - 0.05
    # and never faster than the cap over any stretch past the burst
    for i in range(len(times) - 5):
        assert times[i + 5] - times[i] >= (5 - 2) / 20 - 0.02


@pytest.mark.parametrize("running", [({"hold": True}, {"window": 2})], indirect=True)
async def test_the_queue_is_handed_back_when_the_last_bind_goes(running: Running):
    pool, events = running.pool, running.events
    pool.start()
    await wait_until(lambda: pool.available, what="pool bound")
    messages = [outgoing(i) for i in range(6)]
    for out in messages:
        pool.submit(out)
    await wait_until(lambda: len(running.smsc.texts) == 2, what="a window's worth written")
    assert events.taken_ids == ["id-0", "id-1"]
    await running.server.close(timeout=0.5)  # the SMSC goes away without answering
    await wait_until(lambda: events.handed_back and events.answered_count == 2, what="pool down")
    assert events.handed_back == [["id-2", "id-3", "id-4", "id-5"]]  # in their order, once
    for mid in ("id-0", "id-1"):  # written, never answered: reported once each, with the error
        (answer,) = events.answers[mid]
        assert answer.response is None and answer.error is not None
    assert not pool.available and not pool.queue and pool.in_flight == 0
    assert events.taken_ids == ["id-0", "id-1"]
