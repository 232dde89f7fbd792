"""Requests in runs: the requests of one read reach the SMSC side's handler together
(SmscHandler.handle_all), and the hub admitting a run of submits at once answers, refuses,
counts and hands to the acceptor exactly what it did taking them one at a time."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st
from test_kept_bytes import Conn, NoReceivers  # an ESME's connection as the handler sees it
from transportkit import RecordingTransport

from smppcore import CommandStatus, DataSm, EnquireLink, Pdu, QuerySm, SubmitSm, SubmitSmResp, encode
from smppcore.connection import EARLY_FLUSH
from smppcore.pdus import BindTransmitter
from smppcore.server import Server, SmscConnection, SmscHandler
from smppcore.session import SessionConfig
from smppcore.session import State as SessionState
from smpphub.router.acceptor import Submission
from smpphub.router.config import Account, HubConfig, Route, Upstream
from smpphub.router.delivery import Deliveries
from smpphub.router.dispatch import Dispatcher
from smpphub.router.esme import EsmeHandler
from smpphub.router.msglog import MessageLog
from smpphub.router.routing import RouteTable
from smpphub.router.store.memory import MemoryStore

# ---- the server: runs, and what a handler that takes them gives -------------------------------------


class RunHandler(SmscHandler):
    """Takes runs: records each, answers every request at once (or raises, if told to)."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.runs: list[list[int]] = []
        self.fail = fail

    def handle_all(self, conn: SmscConnection, pdus: list[Pdu]) -> list[Pdu | None]:
        if self.fail:
            raise RuntimeError("bug")
        self.runs.append([pdu.sequence_number for pdu in pdus])
        return [pdu.make_response(message_id=f"m{pdu.sequence_number}") for pdu in pdus]


def bound(handler: SmscHandler) -> tuple[SmscConnection, RecordingTransport]:
    server = Server(handler, config=SessionConfig(enquire_link_interval=0))
    conn = SmscConnection(server, asyncio.get_running_loop())
    transport = RecordingTransport()
    conn.connection_made(transport)
    conn.session.state = SessionState.BOUND_TRX
    return conn, transport


def submits(first: int, n: int) -> bytes:
    return b"".join(encode(SubmitSm(destination_addr="4477", sequence_number=first + i)) for i in range(n))


async def test_a_read_reaches_the_handler_in_runs_of_a_write_at_most_split_by_anything_else() -> None:
    handler = RunHandler()
    conn, transport = bound(handler)
    conn.data_received(submits(1, EARLY_FLUSH + 2) + encode(EnquireLink(sequence_number=90)) + submits(50, 3))
    conn._flush()
    assert handler.runs == [list(range(1, EARLY_FLUSH + 1)), [EARLY_FLUSH + 1, EARLY_FLUSH + 2], [50, 51, 52]]
    # answered in request order, the enquire_link_resp between the runs it came between
    wrote = b"".join(transport.writes)
    expected = [*range(1, EARLY_FLUSH + 3), 90, 50, 51, 52]
    assert [int.from_bytes(wrote[i + 12:i + 16], "big") for i in _offsets(wrote)] == expected


def _offsets(data: bytes) -> list[int]:
    out, i = [], 0
    while i < len(data):
        out.append(i)
        i += int.from_bytes(data[i:i + 4], "big")
    return out


async def test_a_run_whose_handler_fails_is_answered_system_error_each() -> None:
    conn, transport = bound(RunHandler(fail=True))
    conn.data_received(submits(1, 3))
    conn._flush()
    answers = [SubmitSmResp(sequence_number=n, command_status=CommandStatus.ESME_RSYSERR) for n in (1, 2, 3)]
    assert b"".join(transport.writes) == b"".join(encode(a) for a in answers) and conn.unanswered == 0


async def test_a_bind_at_the_end_of_a_run_is_decided_on_its_own() -> None:
    handler = RunHandler()
    server = Server(handler, config=SessionConfig(enquire_link_interval=0))
    conn = SmscConnection(server, asyncio.get_running_loop())
    conn.connection_made(RecordingTransport())
    conn.data_received(encode(BindTransmitter(system_id="a", password="b", sequence_number=1)) + submits(2, 2))
    assert conn.session.state is SessionState.BOUND_TX and handler.runs == [[2, 3]]


# ---- the hub: a run of submits admitted at once, as one at a time -------------------------------------


class CapturingAcceptor:
    """What the handler hands over to be stored, in order (it reads only these three attributes)."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.msglog = MessageLog.off()
        self.submissions: list[Submission] = []

    def accept(self, conn: object, request: Pdu, response: Pdu, messages: list) -> None:
        self.submissions.append(Submission(conn, [request], [response], messages))  # type: ignore[arg-type]

    def accept_run(self, conn: object, requests: list[Pdu], responses: list[Pdu], messages: list) -> None:
        self.submissions.append(Submission(conn, requests, responses, messages))  # type: ignore[arg-type]


CONFIG = HubConfig(upstreams=[Upstream(name="u", host="127.0.0.1", port=1, system_id="hub")],
                   accounts=[Account(system_id="acme", password="pw", source_addrs=["123", "456"])],
                   routes=[Route(prefix="44", upstreams=["u"])])


def hub() -> tuple[EsmeHandler, CapturingAcceptor]:
    store = MemoryStore()
    acceptor = CapturingAcceptor(Dispatcher(CONFIG, store, Deliveries(store, NoReceivers())))
    return EsmeHandler(CONFIG, store, acceptor, RouteTable.build(CONFIG), binds=None), acceptor  # type: ignore[arg-type]


SUBMITS = st.lists(st.tuples(
    st.sampled_from(["submit_sm", "data_sm"]),
    st.sampled_from(["447700900123", "+44 7700 900124", "33612345678"]),  # the last: no route
    st.sampled_from(["123", "456", "789"]),  # the last: a source the account may not use
    st.sampled_from(["", "000001000000000R", "991231235959000+", "nonsense"]),  # validity: none, ok, past, bad
), min_size=1, max_size=EARLY_FLUSH)


def made(kind: str, dest: str, source: str, validity: str, seq: int) -> SubmitSm | DataSm:
    if kind == "data_sm":
        return DataSm(destination_addr=dest, source_addr=source, sequence_number=seq)
    return SubmitSm(destination_addr=dest, source_addr=source, validity_period=validity, sequence_number=seq,
                    short_message=b"m%d" % seq)


def seen(results: list, acceptor: CapturingAcceptor, handler: EsmeHandler) -> tuple:
    answers = [None if r is None else (r.command_id, r.command_status, r.sequence_number) for r in results]
    kept = [(request.sequence_number, response.sequence_number, type(response), response.message_id == m.row.id,
             m.row.pdu, m.row.route, m.row.due, m.row.registered_delivery, m.pdu)
            for s in acceptor.submissions
            for request, response, m in zip(s.request_of_each(), s.responses, s.messages, strict=True)]
    return answers, kept, {a: dict(c) for a, c in handler.dispatcher.stats.refused.items()}


@settings(max_examples=60, deadline=None)
@given(SUBMITS)
def test_a_run_of_submits_is_admitted_as_one_at_a_time(sent: list[tuple[str, str, str, str]]) -> None:
    together, by_run = hub()
    alone, one_by_one = hub()
    pdus = [made(*fields, seq=n + 1) for n, fields in enumerate(sent)]
    run = together.handle_all(Conn(), pdus)  # type: ignore[arg-type]
    each = [alone.handle(Conn(), pdu) for pdu in pdus]  # type: ignore[arg-type]
    assert run is not None
    assert seen(run, by_run, together) == seen(each, one_by_one, alone)


def test_a_run_with_anything_but_submits_in_it_is_taken_one_at_a_time() -> None:
    handler, _ = hub()
    assert handler.handle_all(Conn(), [SubmitSm(destination_addr="44"), QuerySm(message_id="x")]) is None  # type: ignore[arg-type]


def test_a_submit_the_hub_fails_on_is_refused_alone_and_the_rest_of_its_run_goes_on(monkeypatch) -> None:
    handler, acceptor = hub()
    real = handler._message

    def message(message_id, account, pdu, *rest):  # a bug met by one submit only
        if pdu.sequence_number == 2:
            raise RuntimeError("bug")
        return real(message_id, account, pdu, *rest)

    monkeypatch.setattr(handler, "_message", message)
    results = handler.handle_all(Conn(), [made("submit_sm", "447700900123", "123", "", n) for n in (1, 2, 3)])
    assert results is not None and results[0] is None and results[2] is None
    assert results[1].command_status == CommandStatus.ESME_RSYSERR
    assert [request.sequence_number for sub in acceptor.submissions for request in sub.requests] == [1, 3]
