"""The SMSC side's runs against one request at a time, on the wire: a handler that takes the
requests of a read together (SmscHandler.handle_all) and gives each the answer handle() would
writes the same bytes, in the same order, and sees the same requests as one taken one at a
time, whatever else the reads hold (enquire_link, unbind, an unknown command, an answer nobody
asked for, an alert_notification), however they are cut into reads, whatever the limit of
answers owed, and whether answers come at once, later or from a handler that raises."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from hypothesis import given, settings
from hypothesis import strategies as st
from transportkit import RecordingTransport

from smppcore import CommandStatus, EnquireLink, Pdu, QuerySm, SubmitSm, SubmitSmResp, encode
from smppcore.pdus import AlertNotification, Unbind
from smppcore.server import Server, SmscConnection, SmscHandler
from smppcore.session import SessionConfig
from smppcore.session import State as SessionState

KINDS = ("submit", "submit", "submit", "query", "enquire_link", "unbind", "stray_answer", "unknown", "alert")


def wire(kind: str, seq: int) -> bytes:
    if kind == "submit":
        return encode(SubmitSm(destination_addr="4477", sequence_number=seq))
    if kind == "query":
        return encode(QuerySm(message_id="1", sequence_number=seq))
    if kind == "enquire_link":
        return encode(EnquireLink(sequence_number=seq))
    if kind == "unbind":
        return encode(Unbind(sequence_number=seq))
    if kind == "stray_answer":
        return encode(SubmitSmResp(sequence_number=seq, message_id="x"))
    if kind == "alert":
        return encode(AlertNotification(sequence_number=seq, source_addr="1", esme_addr="2"))
    data = bytearray(encode(EnquireLink(sequence_number=seq)))
    data[4:8] = (0x77).to_bytes(4, "big")  # no such command
    return bytes(data)


class OneAtATime(SmscHandler):
    """Answers a submit at once, later (respond, next turn) or by raising, by its sequence number."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int]] = []

    def handle(self, conn: SmscConnection, pdu: Pdu) -> Pdu | None:
        self.seen.append((pdu.command_id, pdu.sequence_number))
        if isinstance(pdu, SubmitSm):
            if pdu.sequence_number % 5 == 0:
                asyncio.get_running_loop().call_soon(conn.respond, pdu.make_response(message_id="later"))
                return None
            if pdu.sequence_number % 7 == 0:
                raise RuntimeError("a bug met by this submit")
            return pdu.make_response(message_id=f"m{pdu.sequence_number}")
        return pdu.make_response(command_status=CommandStatus.ESME_RINVCMDID)


class Runs(OneAtATime):
    """The same answers, given for a run at once (a run holding an alert_notification: one at a time)."""

    def handle_all(self, conn: SmscConnection, pdus: list[Pdu]) -> list[Pdu | None | Awaitable[Pdu | None]] | None:
        if any(isinstance(pdu, AlertNotification) for pdu in pdus):
            return None
        answers: list[Pdu | None | Awaitable[Pdu | None]] = []
        for pdu in pdus:
            try:
                answers.append(self.handle(conn, pdu))
            except RuntimeError:
                answers.append(pdu.make_response(command_status=CommandStatus.ESME_RSYSERR))
        return answers


async def played(handler: OneAtATime, reads: list[bytes], limit: int) -> tuple[bytes, list[tuple[int, int]]]:
    server = Server(handler, config=SessionConfig(enquire_link_interval=0, max_unanswered=limit))
    conn = SmscConnection(server, asyncio.get_running_loop())
    transport = RecordingTransport()
    conn.connection_made(transport)
    conn.session.state = SessionState.BOUND_TRX
    for data in reads:
        conn.data_received(data)
        for _ in range(3):
            await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)
    conn.transport = None  # no timers left behind
    conn.session.state = SessionState.CLOSED
    return b"".join(transport.writes), handler.seen


@settings(max_examples=150, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=60),
    cuts=st.lists(st.sampled_from((7, 16, 50, 300, 100_000)), min_size=1, max_size=8),
    limit=st.sampled_from((3, 8, 64)),
)
def test_a_handler_taking_runs_answers_on_the_wire_as_one_taking_requests_one_at_a_time(
        kinds: list[str], cuts: list[int], limit: int) -> None:
    data = b"".join(wire(kind, seq) for seq, kind in enumerate(kinds, start=1))
    reads = []
    at = 0
    for i in range(len(data)):
        if at >= len(data):
            break
        step = cuts[i % len(cuts)]
        reads.append(data[at:at + step])
        at += step
    logging.disable(logging.ERROR)  # the handler's "bug" is logged with a traceback each time
    try:
        one = asyncio.run(played(OneAtATime(), reads, limit))
        runs = asyncio.run(played(Runs(), reads, limit))
    finally:
        logging.disable(logging.NOTSET)
    assert runs == one
