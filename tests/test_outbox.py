"""smppcore.outbox.Outbox on its own: the order requests go out in, what a lost
connection or a failed send gives back, and the bound on what waits.

The connections are real SmppConnection objects (SMSC role, bound as transceivers)
on a transport that only records what is written, so every send goes through the
session's window exactly as on a socket; answers and losses are fed in by hand.
"""

from __future__ import annotations

import asyncio

import pytest

from smppcore import DeliverSm, DeliverSmResp, Role, SessionConfig, SmppConnection, State, encode
from smppcore.codec import Framer
from smppcore.outbox import Outbox
from smppcore.pdus import Pdu


class RecordingTransport(asyncio.Transport):
    """A transport that keeps what is written and closes when told."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Receiver(SmppConnection):
    """An ESME's receiver bind as the SMSC side sees it."""

    role = Role.SMSC

    def __init__(self, window: int, *, state: State = State.BOUND_TRX) -> None:
        super().__init__(SessionConfig(window=window, enquire_link_interval=0))
        self.session.state = state
        self.transport_ = RecordingTransport()
        self.connection_made(self.transport_)
        self._seen = 0

    def sent(self) -> list[DeliverSm]:
        """The deliver_sm written since the last call, in order."""
        self._flush()
        pdus = Framer().feed(bytes(self.transport_.written))
        new, self._seen = pdus[self._seen:], len(pdus)
        return [p for p in new if isinstance(p, DeliverSm)]

    def answer(self, pdus: list[DeliverSm]) -> None:
        self.data_received(b"".join(encode(DeliverSmResp(sequence_number=p.sequence_number)) for p in pdus))

    def lose(self) -> None:
        self.connection_lost(ConnectionResetError("gone"))


class Receivers:
    """What the outbox asks for its connections: the open ones of a list the test changes."""

    def __init__(self, *conns: Receiver) -> None:
        self.conns = list(conns)

    def __call__(self) -> list[Receiver]:
        return [c for c in self.conns if c.is_open]


class Acks:
    """on_ack for the outbox: which contexts were answered, in order."""

    def __init__(self) -> None:
        self.contexts: list[object] = []

    def __call__(self, response: Pdu, context: object) -> None:
        assert isinstance(response, DeliverSmResp)
        self.contexts.append(context)


def message(n: int) -> DeliverSm:
    return DeliverSm(source_addr="447700900001", destination_addr="Acme", short_message=b"m%d" % n)


def texts(pdus: list[DeliverSm]) -> list[bytes]:
    return [p.short_message for p in pdus]


async def turn() -> None:
    """One turn of the loop: what put() and a response scheduled with call_soon runs."""
    await asyncio.sleep(0)


async def test_put_and_pump_keep_the_order_and_fill_the_window():
    conn = Receiver(window=3)
    box = Outbox(Receivers(conn), loop=asyncio.get_running_loop())
    acks = Acks()
    for n in range(5):
        assert box.put(message(n), acks, context=n)
    assert conn.sent() == []  # nothing before the pump of this turn
    await turn()
    first = conn.sent()
    assert texts(first) == [b"m0", b"m1", b"m2"]  # the window's worth, in order
    assert (len(box), box.in_flight) == (2, 3)
    conn.answer(first)
    assert acks.contexts == [0, 1, 2]
    await turn()
    rest = conn.sent()
    assert texts(rest) == [b"m3", b"m4"]
    conn.answer(rest)
    assert acks.contexts == [0, 1, 2, 3, 4]
    assert (len(box), box.in_flight, box.requeued) == (0, 0, 0)
    conn.lose()


async def test_pump_spreads_over_the_receivers_in_turn():
    a, b = Receiver(window=2), Receiver(window=2)
    box = Outbox(Receivers(a, b), loop=asyncio.get_running_loop())
    for n in range(5):
        box.put(message(n))
    await turn()
    assert texts(a.sent()) == [b"m0", b"m1"]
    assert texts(b.sent()) == [b"m2", b"m3"]
    assert len(box) == 1
    a.lose()
    b.lose()


async def test_a_lost_connection_gives_its_requests_back_in_order():
    first = Receiver(window=10)
    receivers = Receivers(first)
    box = Outbox(receivers, loop=asyncio.get_running_loop())
    acks = Acks()
    for n in range(5):
        box.put(message(n), acks, context=n)
    await turn()
    sent = first.sent()
    first.answer(sent[:2])
    first.lose()  # m2, m3, m4 were in flight
    assert acks.contexts == [0, 1]
    assert (len(box), box.in_flight, box.requeued) == (3, 0, 3)
    for n in (5, 6):
        box.put(message(n), acks, context=n)
    second = Receiver(window=10)
    receivers.conns.append(second)
    box.pump()  # what a holder does when a receiver binds
    again = second.sent()
    assert texts(again) == [b"m2", b"m3", b"m4", b"m5", b"m6"]  # given back first, in their order
    second.answer(again)
    assert acks.contexts == [0, 1, 2, 3, 4, 5, 6]  # each acknowledged once
    second.lose()


async def test_a_send_that_fails_keeps_its_request():
    # a bind the request may not go out on (a transmitter: no deliver_sm) raises in send_callback
    refusing = Receiver(window=10, state=State.BOUND_TX)
    good = Receiver(window=10)
    receivers = Receivers(refusing)
    box = Outbox(receivers, loop=asyncio.get_running_loop())
    for n in range(3):
        box.put(message(n))
    await turn()
    assert refusing.sent() == []
    assert (len(box), box.in_flight) == (3, 0)  # nothing lost, nothing counted as sent
    receivers.conns.append(good)
    box.pump()
    assert texts(good.sent()) == [b"m0", b"m1", b"m2"]
    refusing.lose()
    good.lose()


async def test_without_a_receiver_requests_wait_up_to_the_limit():
    receivers = Receivers()
    box = Outbox(receivers, limit=3, loop=asyncio.get_running_loop())
    assert all(box.put(message(n), context=n) for n in range(3))
    assert box.full
    assert not box.put(message(3))  # refused, nothing queued
    await turn()
    assert len(box) == 3
    assert box.drain() == [(message(n), n) for n in range(3)]
    assert len(box) == 0 and not box.full


async def test_drop_oldest_takes_requests_given_back_first():
    conn = Receiver(window=10)
    receivers = Receivers(conn)
    box = Outbox(receivers, loop=asyncio.get_running_loop())
    for n in range(2):
        box.put(message(n), context=n)
    await turn()
    conn.sent()
    receivers.conns.clear()
    box.put(message(2), context=2)
    conn.lose()  # m0, m1 come back: older than m2
    dropped = [box.drop_oldest() for _ in range(3)]
    assert [(pdu.short_message, context) for pdu, context in dropped] == [(b"m0", 0), (b"m1", 1), (b"m2", 2)]
    assert box.drop_oldest() is None
    assert len(box) == 0


@pytest.mark.parametrize("window", [1, 7])
async def test_many_requests_arrive_once_each_in_order(window: int):
    conn = Receiver(window=window)
    box = Outbox(Receivers(conn), loop=asyncio.get_running_loop())
    acks = Acks()
    for n in range(50):
        box.put(message(n), acks, context=n)
    got: list[bytes] = []
    for _ in range(200):  # bounded: each turn answers what went out
        await turn()
        batch = conn.sent()
        got += texts(batch)
        conn.answer(batch)
        if len(acks.contexts) == 50:
            break
    assert got == [b"m%d" % n for n in range(50)]
    assert acks.contexts == list(range(50))
    conn.lose()


# --- batches: put_all and the pump's one send_callbacks a connection, pinned to one by one -------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from smppcore.pdus import AlertNotification, DataSm  # noqa: E402


class OneByOne(Receiver):
    """A receiver that refuses every batch: the outbox sends its requests one at a time."""

    def send_callbacks(self, *args: object, **kwargs: object) -> None:
        raise ValueError("one by one")

    def send_tracked(self, *args: object, **kwargs: object) -> None:
        raise ValueError("one by one")


class OtherSink:
    """Someone else's answer_sink: the outbox must not use it (it sends with callbacks then)."""

    def answered(self, contexts: list[object], responses: list[Pdu]) -> None:
        raise AssertionError("not mine")

    def unanswered(self, context: object, error: Exception) -> None:
        raise AssertionError("not mine")


class WithCallbacks(Receiver):
    """A receiver whose answers another object takes: batches go with send_callbacks."""

    def __init__(self, window: int) -> None:
        super().__init__(window)
        self.answer_sink = OtherSink()


def request(kind: int, n: int) -> Pdu:
    """The requests an outbox carries: deliver_sm, data_sm, and an alert_notification, which
    takes no response and which only send_callback sends (its batch falls back to one by one)."""
    if kind == 0:
        return message(n)
    if kind == 1:
        return DataSm(source_addr="447700900001", destination_addr="Acme", tlvs={0x0424: b"d%d" % n})
    return AlertNotification(source_addr="447700900001", esme_addr="Acme")


def _item_view(box: Outbox) -> list[tuple[object, ...]]:
    return [(item.pdu, item.on_ack, item.context, item.encoded) for item in box.queue]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 6), st.integers(0, 8), st.integers(1, 8))
def test_put_all_queues_what_put_queues(before: int, count: int, limit: int) -> None:
    loop = asyncio.new_event_loop()
    try:
        acks = Acks()
        boxes = [Outbox(Receivers(), limit=limit, loop=loop) for _ in range(2)]
        for box in boxes:
            for n in range(before):
                box.put(message(n), acks, n)
        pdus = [message(100 + n) for n in range(count)]
        encoded: list[bytes | None] = [encode(p) if n % 2 else None for n, p in enumerate(pdus)]
        taken = sum(boxes[0].put(p, acks, n, e) for n, (p, e) in enumerate(zip(pdus, encoded, strict=True)))
        assert boxes[1].put_all(pdus, acks, list(range(count)), encoded) == taken
        assert _item_view(boxes[1]) == _item_view(boxes[0])
    finally:
        loop.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.booleans()), max_size=12), st.integers(1, 8),
       st.lists(st.booleans(), max_size=4))
async def test_a_batch_goes_out_as_one_by_one(kinds: list[tuple[int, bool]], window: int,
                                              answers: list[bool]) -> None:
    """Tracked (the outbox takes the connection's answers in runs), with a callback each (the
    answers are someone else's), or one at a time (the batch refused): the same bytes written,
    the same window, the same acknowledgements in the same order."""
    loop = asyncio.get_running_loop()
    conns = [Receiver(window=window), WithCallbacks(window=window), OneByOne(window=window)]
    boxes = [Outbox(Receivers(conn), loop=loop) for conn in conns]
    acks = [Acks() for _ in conns]
    for box, ack in zip(boxes, acks, strict=True):
        for n, (kind, pre_encoded) in enumerate(kinds):
            pdu = request(kind, n)
            box.put(pdu, ack, n, encode(pdu) if pre_encoded else None)
    for answer in [True, *answers]:  # pump, answer what went out (or lose nothing), pump again
        for box in boxes:
            box.pump()
        for conn in conns:
            conn._flush()
        written = [bytes(conn.transport_.written) for conn in conns]
        assert written[0] == written[1] == written[2]
        assert len({(len(box), box.in_flight) for box in boxes}) == 1
        if answer:
            for conn in conns:
                conn.answer(conn.sent())
        assert acks[0].contexts == acks[1].contexts == acks[2].contexts
    assert conns[0].answer_sink is (boxes[0] if kinds else None)  # the first one's went tracked
    for conn in conns:
        conn.lose()


async def test_a_failing_acknowledgement_costs_the_others_nothing():
    conn = Receiver(window=5)
    box = Outbox(Receivers(conn), loop=asyncio.get_running_loop())
    acked: list[object] = []

    def on_ack(response: Pdu, context: object) -> None:
        if context == 1:
            raise RuntimeError("a bug in the holder")
        acked.append(context)

    for n in range(3):
        box.put(message(n), on_ack, n)
    await turn()
    conn.answer(conn.sent())  # one run of three answers
    assert acked == [0, 2] and box.in_flight == 0
    conn.lose()
