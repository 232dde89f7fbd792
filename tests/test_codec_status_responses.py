"""A response written without making it is the response make_response makes, encoded.

A client answers every deliver_sm with a status and nothing else: Session.answer writes
those answers through codec.encode_status_responses, without building a response
object each. Checked here against ``encode(request.make_response(command_status=...))``
for every request type and status, and end to end through a Client answering a batch.
"""

from __future__ import annotations

import asyncio
import struct

import pytest
from transportkit import RecordingTransport

from smppcore import Client, CommandStatus, DeliverSm, encode
from smppcore.codec import encode_status_responses
from smppcore.pdus import PDU_TYPES, Pdu
from smppcore.session import Role, Session
from smppcore.session import State as SessionState

REQUESTS = [cls for cls in PDU_TYPES.values() if not cls.is_response]
STATUSES = [0, 1, 0x45, 0x64, 0xFFFFFFFF]
HEADER = struct.Struct(">IIII")


def made(request: Pdu, status: int) -> list[bytes]:
    """The general path: the response made, then encoded (nothing for a request without one)."""
    return [] if request.response_type is None else [encode(request.make_response(command_status=status))]


@pytest.mark.parametrize("cls", REQUESTS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("seq", [0, 1, 0x7FFFFFFF, 0xFFFFFFFF])
def test_a_status_response_is_the_made_response_encoded(cls: type[Pdu], status: int, seq: int) -> None:
    request = cls(sequence_number=seq)
    assert encode_status_responses([request], status) == made(request, status)


@pytest.mark.parametrize("status", STATUSES)
def test_a_batch_is_answered_in_order_and_session_answer_queues_it(status: int) -> None:
    requests = [cls(sequence_number=i + 1) for i, cls in enumerate(REQUESTS)]
    expected = [data for request in requests for data in made(request, status)]
    assert encode_status_responses(requests, status) == expected
    session = Session(Role.ESME)
    session.answer(requests, status)
    assert session.data_to_send() == b"".join(expected)


def test_a_status_that_does_not_fit_32_bits_raises_rather_than_being_written() -> None:
    with pytest.raises(struct.error):
        encode_status_responses([DeliverSm(sequence_number=1)], 1 << 32)


@pytest.mark.parametrize("answer", [None, 0, CommandStatus.ESME_RX_T_APPN, "future"])
async def test_a_client_answers_deliver_sm_as_make_response_would(answer: int | str | None) -> None:
    """Each way on_message answers (None, a status, a Future for a batch) writes the made responses."""
    loop = asyncio.get_running_loop()
    batch: asyncio.Future[int | None] = loop.create_future()

    def on_message(pdu: Pdu) -> int | None | asyncio.Future[int | None]:
        return batch if answer == "future" else answer  # type: ignore[return-value]

    client = Client(system_id="x", password="", on_message=on_message, loop=loop)
    transport = RecordingTransport()
    client.connection_made(transport)
    client.session.state = SessionState.BOUND_TRX
    delivers = [DeliverSm(sequence_number=i, short_message=b"id:%d" % i) for i in (7, 8, 9)]
    client.data_received(b"".join(encode(p) for p in delivers))
    status = 0 if answer in (None, "future") else int(answer)  # type: ignore[arg-type]
    if answer == "future":
        assert transport.writes == []  # answered when the batch's Future is
        batch.set_result(None)
        for _ in range(100):  # the Future's callback, then the flush, each one loop turn
            if transport.writes:
                break
            await asyncio.sleep(0)
    assert b"".join(transport.writes) == b"".join(encode(p.make_response(command_status=status)) for p in delivers)
    client.connection_lost(None)
