"""How smppcore's Client answers the deliver_sm / data_sm its ``on_message`` handler takes.

Every form a handler may return is answered as documented: an int or None at once; a
Future when it completes (several requests given the same Future answered together,
in the order they came, by one callback); any other awaitable through a task; an
exception or a failed Future as ESME_RX_T_APPN. Byte-level, over a fake transport, so
what goes on the wire is asserted exactly (the responses are written with the
general encoder's bytes: golden vectors in tests/test_golden.py).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Any

import pytest

from smppcore import Client, CommandStatus, DataSm, DeliverSm, Pdu, encode
from smppcore.pdus import AlertNotification
from smppcore.session import State

HEADER = struct.Struct(">IIII")


class Wire(asyncio.Transport):
    """What the client writes, kept."""

    def __init__(self) -> None:
        super().__init__()
        self.data = b""
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.data += bytes(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 2775) if name == "peername" else default

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def responses(self) -> list[tuple[int, int, int]]:
        """(command_id, command_status, sequence_number) of each PDU written, taken out."""
        out, p, data = [], 0, self.data
        while p < len(data):
            length, cid, status, seq = HEADER.unpack_from(data, p)
            out.append((cid, status, seq))
            p += length
        self.data = b""
        return out


async def bound_client(handler: Callable[[Pdu], Any]) -> tuple[Client, Wire]:
    client = Client(system_id="esme", password="pw", on_message=handler)
    wire = Wire()
    client.connection_made(wire)
    client.session.state = State.BOUND_TRX
    return client, wire


def deliver(*seqs: int, cls: type[Pdu] = DeliverSm) -> bytes:
    return b"".join(encode(cls(sequence_number=seq)) for seq in seqs)


async def settle(wire: Wire, count: int) -> list[tuple[int, int, int]]:
    """The responses once ``count`` were written (polled turn by turn, bounded)."""
    got: list[tuple[int, int, int]] = []
    for _ in range(50):
        got += wire.responses()
        if len(got) >= count:
            return got
        await asyncio.sleep(0)
    return got


RESP = 0x80000005


@pytest.mark.parametrize(("returned", "status"), [(None, 0), (0, 0), (8, 8), (CommandStatus.ESME_RX_P_APPN, 0x65)])
async def test_a_status_returned_at_once_is_the_answer(returned: int | None, status: int) -> None:
    client, wire = await bound_client(lambda pdu: returned)
    client.data_received(deliver(1, 2))
    assert wire.responses() == [(RESP, status, 1), (RESP, status, 2)]


async def test_requests_sharing_a_future_are_answered_together_in_order() -> None:
    loop = asyncio.get_running_loop()
    shared: asyncio.Future[int] = loop.create_future()
    other: asyncio.Future[int] = loop.create_future()
    futures = iter([shared, shared, other, shared])
    client, wire = await bound_client(lambda pdu: next(futures))
    client.data_received(deliver(1, 2, 3, 4))
    assert wire.responses() == [] and len(client._waiting) == 2
    other.set_result(13)
    assert await settle(wire, 1) == [(RESP, 13, 3)]
    shared.set_result(0)
    assert await settle(wire, 3) == [(RESP, 0, 1), (RESP, 0, 2), (RESP, 0, 4)]
    assert client._waiting == {}


async def test_a_data_sm_is_answered_with_a_data_sm_resp() -> None:
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    client, wire = await bound_client(lambda pdu: fut)
    client.data_received(deliver(5, cls=DataSm) + deliver(6))
    fut.set_result(0)
    assert await settle(wire, 2) == [(0x80000103, 0, 5), (RESP, 0, 6)]


@pytest.mark.parametrize("outcome", ["exception", "cancelled"])
async def test_a_future_that_fails_answers_esme_rx_t_appn(outcome: str) -> None:
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    client, wire = await bound_client(lambda pdu: fut)
    client.data_received(deliver(1, 2))
    if outcome == "exception":
        fut.set_exception(RuntimeError("store down"))
    else:
        fut.cancel()
    assert await settle(wire, 2) == [(RESP, CommandStatus.ESME_RX_T_APPN, 1), (RESP, CommandStatus.ESME_RX_T_APPN, 2)]


async def test_a_future_completed_already_is_answered_next_turn() -> None:
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    fut.set_result(0)
    client, wire = await bound_client(lambda pdu: fut)
    client.data_received(deliver(1))
    assert await settle(wire, 1) == [(RESP, 0, 1)]


async def test_a_coroutine_and_a_raising_handler_still_work() -> None:
    async def later(pdu: Pdu) -> int:
        await asyncio.sleep(0)
        return 0x45

    client, wire = await bound_client(later)
    client.data_received(deliver(1))
    assert await settle(wire, 1) == [(RESP, 0x45, 1)]

    def broken(pdu: Pdu) -> int:
        raise ValueError("bug")

    client, wire = await bound_client(broken)
    client.data_received(deliver(2))
    assert wire.responses() == [(RESP, CommandStatus.ESME_RX_T_APPN, 2)]


async def test_no_answer_after_the_connection_is_gone() -> None:
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    client, wire = await bound_client(lambda pdu: fut)
    client.data_received(deliver(1, 2))
    client.connection_lost(None)
    assert client._waiting == {}
    fut.set_result(0)
    for _ in range(3):
        await asyncio.sleep(0)
    assert wire.responses() == []


async def test_an_alert_notification_gets_no_response_whatever_the_handler_returns() -> None:
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    client, wire = await bound_client(lambda pdu: fut)
    client.data_received(encode(AlertNotification(sequence_number=3)) + deliver(4))
    fut.set_result(0)
    assert await settle(wire, 1) == [(RESP, 0, 4)]
    assert await settle(wire, 1) == []
