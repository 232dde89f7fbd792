"""Shared by the interop tests: our recording SMSC handler, a bounded poll, and the
fixed values the sessions use."""

from __future__ import annotations

import asyncio
import struct
import time
from datetime import datetime, timezone
from typing import Any, Callable

import smppcore
from smppcore import CommandId, CommandStatus, EnquireLink, MessageState
from smppcore.receipt import build_receipt

HOST = "127.0.0.1"
PASSWORD = "secret"
SUBMIT_DATE = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
DONE_DATE = datetime(2026, 11, 25, 8, 1, tzinfo=timezone.utc)

# 300 GSM 03.38 characters (basic table only, some of them non-ASCII): two parts.
LONG_TEXT = ("Long message £@Ø é ü, split by the peer and carried as UDH parts. " * 5)[:300]


async def eventually(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` (bounded) until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


def s(value: Any) -> Any:
    """smpplib hands C-strings back as bytes; compare them as str."""
    return value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else value


class RecordingSmsc(smppcore.SmscHandler):
    """Our server's handler for these tests.

    Checks the password, records binds and submits, answers submit_sm with
    ``msg-000N`` and, when ``receipts`` and the submit asks for one
    (registered_delivery), sends a DELIVERED receipt back on the same connection
    right after the response, recording the ESME's deliver_sm_resp; with
    ``ping_after_receipt`` it then sends an enquire_link of its own (``pings``).
    """

    system_id = "smpphub"

    def __init__(self, receipts: bool = True, ping_after_receipt: bool = False) -> None:
        super().__init__()
        self.receipts = receipts
        self.ping_after_receipt = ping_after_receipt
        self.pings: list = []
        self.binds: list = []
        self.bound_conns: list = []
        self.closed_conns: list = []
        self.submits: list = []
        self.receipts_sent: list = []
        self.receipt_resps: list = []
        self.failures: list = []
        self._tasks: set[asyncio.Task] = set()

    def authenticate(self, conn, bind):
        self.binds.append(bind)
        return 0 if bind.password == PASSWORD else CommandStatus.ESME_RINVPASWD

    def bound(self, conn):
        self.bound_conns.append(conn)

    def closed(self, conn):
        self.closed_conns.append(conn)

    def handle(self, conn, pdu):
        if pdu.command_id != CommandId.SUBMIT_SM:
            return super().handle(conn, pdu)
        self.submits.append(pdu)
        resp = pdu.make_response(message_id=f"msg-{len(self.submits):04d}")
        if self.receipts and pdu.registered_delivery & 0x03:
            task = asyncio.ensure_future(self._send_receipt(conn, pdu, resp.message_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return resp

    async def _send_receipt(self, conn, submit, message_id: str) -> None:
        receipt = build_receipt(
            message_id=message_id,
            state=MessageState.DELIVERED,
            source_addr=submit.source_addr,
            destination_addr=submit.destination_addr,
            source_addr_ton=submit.source_addr_ton,
            source_addr_npi=submit.source_addr_npi,
            dest_addr_ton=submit.dest_addr_ton,
            dest_addr_npi=submit.dest_addr_npi,
            submit_date=SUBMIT_DATE,
            done_date=DONE_DATE,
            text=submit.short_message,
        )
        self.receipts_sent.append(receipt)
        try:
            self.receipt_resps.append(await conn.request(receipt))
            if self.ping_after_receipt:
                self.pings.append(await conn.request(EnquireLink()))
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.failures.append(exc)

    async def settle(self) -> None:
        if self._tasks:
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 5)


def split_stream(data: bytes) -> list[tuple[int, int, int, int]]:
    """(command_length, command_id, command_status, sequence_number) of each PDU in
    one direction's byte stream, read straight from the headers (no smppcore)."""
    out = []
    pos = 0
    while pos < len(data):
        length, cid, status, seq = struct.unpack_from("!IIII", data, pos)
        assert length >= 16 and pos + length <= len(data), f"bad PDU header at {pos}: {data[pos:pos + 16].hex()}"
        out.append((length, cid, status, seq))
        pos += length
    return out
