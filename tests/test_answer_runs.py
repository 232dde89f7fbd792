"""Answers in runs: what SmppConnection.send_tracked sends is answered to its AnswerSink a run at a
time (every answer read before the next PDU that is not one), and the dispatcher acting on a run
leaves every message, count and save as the same answers taken one at a time would."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transportkit import RecordingTransport

from smppcore import CommandStatus, DeliverSm, GenericNack, Pdu, SubmitSm, SubmitSmResp, encode
from smppcore.connection import ConnectionClosed, ResponseTimeout, SmppConnection
from smppcore.session import SessionConfig, State
from smpphub.router.config import HubConfig, Upstream
from smpphub.router.delivery import Deliveries
from smpphub.router.dispatch import Dispatcher
from smpphub.router.lifecycle import MessageRow
from smpphub.router.stats import HubStats
from smpphub.router.store.memory import MemoryStore
from smpphub.router.upstream import Outgoing, UpstreamPool

NOW = 1_790_000_000.0  # 2026: receipts the hub writes carry two-digit years

# ---- the connection: runs, in order, before anything else of the read ------------------------------


class Sink:
    """An AnswerSink that records what it is told, in order."""

    def __init__(self, log: list[Any]) -> None:
        self.log = log

    def answered(self, contexts: list[Any], responses: list[Pdu]) -> None:
        self.log.append(("run", [(c, r.message_id) for c, r in zip(contexts, responses, strict=True)]))

    def unanswered(self, context: Any, error: Exception) -> None:
        self.log.append(("none", context, type(error).__name__))


class Peer(SmppConnection):
    """The ESME side of a hub's upstream link: requests from the SMSC are logged where they come."""

    def __init__(self, log: list[Any], response_timeout: float = 30.0) -> None:
        super().__init__(SessionConfig(window=50, response_timeout=response_timeout, enquire_link_interval=0))
        self.log = log
        self.answer_sink = Sink(log)
        self.connection_made(RecordingTransport())
        self.session.state = State.BOUND_TRX

    def on_request(self, pdu: Pdu) -> None:
        self.log.append(("request", pdu.sequence_number))


def sent(conn: Peer, names: list[str]) -> list[SubmitSm]:
    pdus = [SubmitSm(destination_addr="4477", short_message=name.encode()) for name in names]
    conn.send_tracked(pdus, names, [None] * len(pdus))
    return pdus


def resp(pdu: SubmitSm) -> bytes:
    return encode(SubmitSmResp(sequence_number=pdu.sequence_number, message_id=f"up-{pdu.short_message.decode()}"))


async def test_answers_come_in_runs_and_a_run_goes_before_the_request_read_after_it() -> None:
    log: list[Any] = []
    conn = Peer(log)
    a, b, c = sent(conn, ["a", "b", "c"])
    deliver = encode(DeliverSm(sequence_number=77, short_message=b"receipt of a"))
    conn.data_received(resp(b) + resp(a) + deliver + resp(c))
    assert log == [("run", [("b", "up-b"), ("a", "up-a")]), ("request", 77), ("run", [("c", "up-c")])]


async def test_what_gets_no_answer_is_told_to_the_sink_one_by_one() -> None:
    log: list[Any] = []
    clock = [NOW]
    conn = Peer(log, response_timeout=5.0)
    conn.clock = conn.session.clock = lambda: clock[0]
    sent(conn, ["late"])
    clock[0] += 6
    conn._on_timer()
    sent(conn, ["lost"])
    conn.connection_lost(None)
    assert log == [("none", "late", ResponseTimeout.__name__), ("none", "lost", ConnectionClosed.__name__)]


async def test_a_sink_that_fails_does_not_end_the_connection() -> None:
    class Broken(Sink):
        def answered(self, contexts: list[Any], responses: list[Pdu]) -> None:
            raise RuntimeError("bug")

    log: list[Any] = []
    conn = Peer(log)
    conn.answer_sink = Broken(log)
    [x] = sent(conn, ["x"])
    conn.data_received(resp(x) + encode(DeliverSm(sequence_number=5)))
    assert log == [("request", 5)] and conn.is_open


async def test_send_tracked_needs_a_sink() -> None:
    conn = Peer([])
    conn.answer_sink = None
    with pytest.raises(ValueError, match="answer_sink"):
        sent(conn, ["x"])
    assert len(conn.session.window) == 0


# ---- the dispatcher: a run leaves everything as one answer at a time would ----------------------------


class NoReceivers:
    def receivers(self, account: str) -> list:
        return []


class Link:
    """Enough of a link for the pool to count as up."""

    client = None


def dispatcher_with_messages(n: int) -> tuple[Dispatcher, UpstreamPool, list[Outgoing]]:
    up = Upstream(name="u", host="127.0.0.1", port=1, system_id="hub")
    store = MemoryStore()
    config = HubConfig(upstreams=[up, Upstream(name="v", host="127.0.0.1", port=2, system_id="hub")])
    dispatcher = Dispatcher(config, store, Deliveries(store, NoReceivers()), clock=lambda: NOW, stats=HubStats())
    pool = UpstreamPool(up, dispatcher)
    pool.links_up = 1
    dispatcher.pools["u"] = pool
    outs = []
    for i in range(n):
        pdu = SubmitSm(destination_addr="447700900123", short_message=b"m%d" % i, registered_delivery=1)
        row = MessageRow(id=f"m{i}", account="acme", pdu=encode(pdu), route=["u", "v"], expires_at=NOW + 600,
                         registered_delivery=1, created_at=NOW - 1)
        out = Outgoing(row, pdu)
        dispatcher.outgoing[row.id] = out
        dispatcher.table.accept(row, NOW)
        outs.append(out)
    dispatcher.taken(outs, pool)
    return dispatcher, pool, outs


ANSWERS = st.lists(st.sampled_from(["ok", "ok", "throttled", "syserr", "invdst", "nack-ok", "nack-err"]),
                   min_size=1, max_size=12)


def answer(kind: str, seq: int) -> Pdu:
    if kind.startswith("nack"):
        return GenericNack(seq, 0 if kind == "nack-ok" else CommandStatus.ESME_RINVCMDLEN)
    status = {"ok": 0, "throttled": CommandStatus.ESME_RTHROTTLED, "syserr": CommandStatus.ESME_RSYSERR,
              "invdst": CommandStatus.ESME_RINVDSTADR}[kind]
    return SubmitSmResp(sequence_number=seq, command_status=status, message_id=f"up{seq}" if not status else "")


def outcome(dispatcher: Dispatcher, outs: list[Outgoing]) -> tuple:
    stats = dispatcher.stats
    rows = [(o.row.state, o.row.upstream_id, o.row.error, o.row.route_index, o.row.due, o.row.attempts) for o in outs]
    saved = sorted(row.id for row in dispatcher.table.take_changed())
    return (rows, saved, dict(stats.sent), stats.temporary_failures, stats.permanent_failures,
            sorted(dispatcher.receipts.awaiting), sorted(dispatcher.outgoing), len(dispatcher.table))


@settings(max_examples=40, deadline=None)
@given(ANSWERS)
def test_a_run_of_answers_leaves_the_dispatcher_as_one_answer_at_a_time(kinds: list[str]) -> None:
    async def both() -> None:  # in a loop: a refused message owes its ESME a receipt, queued in an outbox
        together, pool_t, outs_t = dispatcher_with_messages(len(kinds))
        alone, pool_a, outs_a = dispatcher_with_messages(len(kinds))
        responses = [answer(kind, i + 1) for i, kind in enumerate(kinds)]
        together.answered(outs_t, pool_t, responses)
        for out, response in zip(outs_a, responses, strict=True):
            alone.answered([out], pool_a, [response])
        assert outcome(together, outs_t) == outcome(alone, outs_a)

    asyncio.run(both())


def test_an_answer_for_a_message_no_longer_in_flight_there_changes_nothing() -> None:
    dispatcher, pool, [out] = dispatcher_with_messages(1)
    dispatcher.answered([out], pool, [answer("ok", 1)])
    before = outcome(dispatcher, [out])
    dispatcher.answered([out], pool, [answer("syserr", 1)])  # a duplicate answer
    dispatcher.unanswered(out, pool, ResponseTimeout("late"))
    assert outcome(dispatcher, [out]) == before[:1] + ([],) + before[2:]


@pytest.mark.parametrize(("kind", "state", "upstream_id"), [
    ("ok", "sent", "up1"), ("nack-ok", "sent", ""), ("throttled", "scheduled", None), ("syserr", "scheduled", None),
    ("invdst", "undeliverable", None), ("nack-err", "undeliverable", None),
])
async def test_each_answer_moves_its_message_as_the_lifecycle_says(
    kind: str, state: str, upstream_id: str | None
) -> None:
    dispatcher, pool, [out] = dispatcher_with_messages(1)
    dispatcher.answered([out], pool, [answer(kind, 1)])
    assert (out.row.state.value, out.row.upstream_id) == (state, upstream_id)


async def test_a_message_whose_answer_fails_leaves_the_rest_of_the_run_answered() -> None:
    dispatcher, pool, outs = dispatcher_with_messages(3)

    class Listener:
        def accepted_upstream(self, row: MessageRow) -> None:
            if row.id == "m1":
                raise RuntimeError("a webhook bug")

    dispatcher.submit_listener = Listener()
    dispatcher.answered(outs, pool, [answer("ok", n) for n in (1, 2, 3)])
    assert [o.row.state.value for o in outs] == ["sent"] * 3


@given(st.lists(st.floats(min_value=0.0, max_value=1000.0), max_size=30))
def test_a_run_of_observations_counts_as_one_observation_each(values: list[float]) -> None:
    from smpphub.router.stats import LATENCY_BOUNDS, Histogram

    together, alone = Histogram(LATENCY_BOUNDS), Histogram(LATENCY_BOUNDS)
    together.observe(0.5)
    alone.observe(0.5)
    together.observe_all(values)
    for value in values:
        alone.observe(value)
    assert (together.counts, together.total) == (alone.counts, alone.total)


async def test_what_an_upstream_accepted_is_counted_and_awaits_its_receipt_once_the_run_is_handled() -> None:
    dispatcher, pool, outs = dispatcher_with_messages(3)
    dispatcher.answered(outs, pool, [answer("ok", n) for n in (1, 2, 3)])
    stats = dispatcher.stats
    assert stats.sent["acme"] == 3 and stats.submit_latency.count == 3
    assert sorted(dispatcher.receipts.awaiting) == [("u", "up1"), ("u", "up2"), ("u", "up3")]
    assert not dispatcher.outgoing and len(dispatcher.table) == 0 and not dispatcher._sent_rows
