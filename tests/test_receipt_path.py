"""The hub's receipt path on its own: router.receipts and router.delivery around fakes.

An upstream's receipt goes in through :meth:`Receipts.received`; the store, the ESME's
receiver bind and the loop's services are fakes that record what they are asked, so the
durability contract can be checked step by step (the row with its receipt is durable
before the upstream hears ESME_ROK), and the fast paths of the functions on that path
(message ids already normal, an Appendix B text that starts with its id, the TLVs a
decoder gives) are checked against the general rule they shortcut.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Coroutine
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from smppcore import CommandStatus, DataSm, DeliverSm, DeliverSmResp, Pdu, Tag, decode, encode
from smppcore.constants import MessageState
from smppcore.message_ids import normalise_message_id
from smppcore.receipt import ReceiptInfo, build_receipt, receipt_info_from_tlvs
from smpphub.router import delivery as delivery_module
from smpphub.router.delivery import Deliveries, ReceiptInFlight, rewrite_receipt
from smpphub.router.lifecycle import MessageRow, RetryPolicy, State
from smpphub.router.msglog import MessageLog
from smpphub.router.receipts import Receipts

HUB_ID = "0f3c2a9e5b7d4e1a"
TEXT = b"id:1234567 sub:001 dlvrd:001 submit date:2612020500 done date:2612020501 stat:DELIVRD err:000 text:hello"

# --- message ids: the fast path gives what the rule gives ------------------------------------


def _rule(s: str, base: int | None) -> str:
    """normalise_message_id as its docstring states it, written out plainly."""
    t = s.strip(" \t\r\n\x00").lower()
    digits = "0123456789" if base == 10 else "0123456789abcdef"
    if base is not None and t and len(t) <= 64 and all(c in digits for c in t):
        return str(int(t, base))
    if t and all(c in "0123456789abcdef" for c in t):
        return t.lstrip("0") or "0"
    return t


@given(st.text(alphabet="0123456789abcdefxyzABCFZ -_\t\x00é٣", max_size=12), st.sampled_from([None, 10, 16]))
def test_normalise_message_id_follows_its_rule(s: str, base: int | None) -> None:
    assert normalise_message_id(s, base=base) == _rule(s, base)


@pytest.mark.parametrize(("raw", "base", "expected"), [
    ("1234567", None, "1234567"),  # already normal: as it is
    ("1a2b3c", None, "1a2b3c"),
    ("1a2b3c", 10, "1a2b3c"),  # not decimal: as it is
    ("1a", 16, "26"),  # a known hex base: its value
    ("0042", None, "42"),
    ("ABC", None, "abc"),
    ("٣٣", 10, "٣٣"),  # Arabic-Indic digits are not an SMSC's decimal
    (" 7\x00", 10, "7"),
])
def test_normalise_message_id_examples(raw: str, base: int | None, expected: str) -> None:
    assert normalise_message_id(raw, base=base) == expected


# --- the receipt the ESME gets ----------------------------------------------------------------


_SEARCH = re.compile(rb"(?i)\bid:\s*[^\s]*")


@given(st.binary(max_size=40), st.sampled_from([b"", b"id:", b"ID: ", b"xid:", b"id:\t", b" id:"]),
       st.binary(max_size=40))
def test_an_id_spliced_at_the_start_is_the_first_match(head: bytes, marker: bytes, tail: bytes) -> None:
    for text in (marker + tail, head + marker + tail):
        expected = _SEARCH.sub(b"id:" + HUB_ID.encode(), text, count=1)
        got = rewrite_receipt(DeliverSm(short_message=text, esm_class=4), HUB_ID).short_message
        assert got == expected


@pytest.mark.parametrize(("pdu", "kind", "short_message", "tlvs", "esm_class"), [
    # Appendix B text and both TLVs: the id replaced in both, the state kept
    (DeliverSm(esm_class=4, short_message=TEXT, tlvs={Tag.RECEIPTED_MESSAGE_ID: "1234567", Tag.MESSAGE_STATE: 2}),
     4, b"id:0f3c2a9e5b7d4e1a sub:001 dlvrd:001 submit date:2612020500 done date:2612020501 stat:DELIVRD "
        b"err:000 text:hello", {Tag.RECEIPTED_MESSAGE_ID: HUB_ID, Tag.MESSAGE_STATE: 2}, 4),
    # text only, esm_class 0 (told from an MO by its text): flagged, and no TLV added
    (DeliverSm(esm_class=0, short_message=TEXT), 4,
     b"id:0f3c2a9e5b7d4e1a sub:001 dlvrd:001 submit date:2612020500 done date:2612020501 stat:DELIVRD "
     b"err:000 text:hello", {}, 4),
    # an intermediate notification keeps its own type; a kind is only set where there was none
    (DeliverSm(esm_class=0x20, short_message=b"ID: 77 stat:ENROUTE"), 4, b"id:0f3c2a9e5b7d4e1a stat:ENROUTE", {},
     0x20),
    # the id further on (a vendor prefix) and other esm_class bits kept
    (DeliverSm(esm_class=0x80, short_message=b"DLR id:77 stat:DELIVRD"), 0x20,
     b"DLR id:0f3c2a9e5b7d4e1a stat:DELIVRD", {}, 0xA0),
    # UCS-2 text: rewritten in UCS-2
    (DeliverSm(esm_class=4, data_coding=8, short_message="id:77 stat:DELIVRD".encode("utf-16-be")), 4,
     "id:0f3c2a9e5b7d4e1a stat:DELIVRD".encode("utf-16-be"), {}, 4),
    # no text at all: the TLV carries the hub's id
    (DeliverSm(esm_class=4, tlvs={Tag.MESSAGE_STATE: 2}), 4, b"",
     {Tag.MESSAGE_STATE: 2, Tag.RECEIPTED_MESSAGE_ID: HUB_ID}, 4),
])
def test_rewrite_receipt(pdu: DeliverSm, kind: int, short_message: bytes, tlvs: dict[int, object],
                         esm_class: int) -> None:
    before = pdu.tlvs.copy()
    out = rewrite_receipt(pdu, HUB_ID, kind)
    assert (out.short_message, out.tlvs, out.esm_class, out.sequence_number) == (short_message, tlvs, esm_class, 0)
    assert pdu.tlvs == before  # the upstream's receipt is left as it came


def test_rewrite_receipt_of_a_data_sm() -> None:
    pdu = DataSm(esm_class=4, tlvs={Tag.MESSAGE_PAYLOAD: b"id:77 stat:DELIVRD", Tag.RECEIPTED_MESSAGE_ID: "77"})
    out = rewrite_receipt(pdu, HUB_ID, 4)
    assert out.tlvs == {Tag.MESSAGE_PAYLOAD: b"id:0f3c2a9e5b7d4e1a stat:DELIVRD", Tag.RECEIPTED_MESSAGE_ID: HUB_ID}


@pytest.mark.parametrize(("tlvs", "expected"), [
    ({Tag.RECEIPTED_MESSAGE_ID: "77", Tag.MESSAGE_STATE: 2}, ("77", MessageState.DELIVERED, None)),
    ({Tag.RECEIPTED_MESSAGE_ID: " 77\x00", Tag.MESSAGE_STATE: 2}, ("77", MessageState.DELIVERED, None)),
    ({Tag.RECEIPTED_MESSAGE_ID: b"77\x00", Tag.MESSAGE_STATE: b"\x05", Tag.NETWORK_ERROR_CODE: b"\x03\x00\x0b"},
     ("77", MessageState.UNDELIVERABLE, (3, 11))),
    ({Tag.RECEIPTED_MESSAGE_ID: 77, Tag.MESSAGE_STATE: 2}, None),  # not text: no id
    ({Tag.RECEIPTED_MESSAGE_ID: "77", Tag.MESSAGE_STATE: 99}, None),  # a state SMPP 3.4 does not define
    ({Tag.RECEIPTED_MESSAGE_ID: "\x00", Tag.MESSAGE_STATE: 2}, None),
    ({Tag.MESSAGE_STATE: 2}, None),
    ({Tag.RECEIPTED_MESSAGE_ID: "77", Tag.MESSAGE_STATE: 2, Tag.NETWORK_ERROR_CODE: b"\x03"},
     ("77", MessageState.DELIVERED, None)),  # a network_error_code of the wrong length: ignored
])
def test_receipt_info_from_tlvs(tlvs: dict[int, Any], expected: tuple[str, MessageState, Any] | None) -> None:
    info = receipt_info_from_tlvs(DeliverSm(esm_class=4, tlvs=tlvs))
    if expected is None:
        assert info is None
    else:
        mid, state, network_error = expected
        err = "000" if network_error is None else f"{network_error[1]:03d}"
        assert info == ReceiptInfo(message_id=mid, state=state, err=err, network_error=network_error)


# --- Receipts and Deliveries around fakes ------------------------------------------------------


class FakeStore:
    """Saves recorded; a durable save completes when the test says so."""

    def __init__(self) -> None:
        self.saved: list[list[MessageRow]] = []
        self.durable: list[tuple[list[bytes], asyncio.Future[None]]] = []

    def save(self, rows: list[MessageRow]) -> None:
        self.saved.append(list(rows))

    def save_durably(self, rows: list[MessageRow]) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.durable.append(([row.receipt for row in rows], done))  # what the write would hold
        return done

    async def pending_deliveries(self) -> list[object]:
        return []

    async def owed_receipts(self) -> list[MessageRow]:
        return []

    async def find_by_upstream_id(self, upstream: str, upstream_id: str) -> MessageRow | None:
        return None

    async def add_deliveries(self, deliveries: list[Any]) -> list[int]:
        return list(range(1, len(deliveries) + 1))

    def delete_delivery(self, delivery_id: int) -> None:
        pass


class FakeSession:
    """A receiver's session with room in its window (what an outbox reads)."""

    def __init__(self) -> None:
        self.window = SimpleNamespace(free=100)


class FakeReceiver:
    """An ESME's receiver bind: what it was sent, and its answers given by hand."""

    def __init__(self) -> None:
        self.session = FakeSession()
        self.is_open = True
        self.answer_sink: object = self  # taken: the outbox sends with a callback each
        self.sent: list[tuple[Pdu, Any, bytes | None]] = []

    def send_callback(self, pdu: Pdu, callback: Any, encoded: bytes | None = None) -> None:
        self.sent.append((pdu, callback, encoded))

    def send_callbacks(self, pdus: list[Pdu], callbacks: list[Any], encoded: list[bytes | None]) -> None:
        self.sent += zip(pdus, callbacks, encoded, strict=True)

    def answer(self, status: int = 0) -> None:
        sent, self.sent = self.sent, []
        for i, (_, callback, _) in enumerate(sent, 1):
            callback(DeliverSmResp(sequence_number=i, command_status=status), None)


class Host:
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.tasks: list[asyncio.Task[None]] = []

    def spawn(self, coro: Coroutine[object, object, None]) -> None:
        self.tasks.append(self.loop.create_task(coro))

    def future(self) -> asyncio.Future[int]:
        return self.loop.create_future()

    def call_soon(self, callback: Any) -> None:
        self.loop.call_soon(callback)


class Kit:
    def __init__(self) -> None:
        self.store = FakeStore()
        self.esme = FakeReceiver()
        self.deliveries = Deliveries(self.store, SimpleNamespace(receivers=lambda account: [self.esme]),  # type: ignore[arg-type]
                                     msglog=MessageLog.off())
        self.host = Host()
        self.receipts = Receipts(self.host, self.store, self.deliveries, MessageLog.off(),  # type: ignore[arg-type]
                                 SimpleNamespace(policy=RetryPolicy()), time.time, 1000)  # type: ignore[arg-type]
        self.pool = SimpleNamespace(name="smsc", cfg=SimpleNamespace(receipt_id_base=0, submit_id_base=0))

    def sent_row(self, upstream_id: str = "1234567", registered_delivery: int = 1) -> MessageRow:
        now = time.time()
        row = MessageRow(id=HUB_ID, account="acme", pdu=b"", route=["smsc"], state=State.SENT, upstream="smsc",
                         upstream_id=upstream_id, registered_delivery=registered_delivery, created_at=now,
                         updated_at=now)
        self.receipts.expect(row, self.pool)  # type: ignore[arg-type]
        return row


async def turns(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def upstream_receipt(text: bytes = TEXT, **kw: Any) -> DeliverSm:
    return build_receipt(message_id="1234567", state=MessageState.DELIVERED, source_addr="Acme",
                         destination_addr="447700900123", submit_date=datetime(2026, 12, 2, 5, 0),
                         done_date=datetime(2026, 12, 2, 5, 1), text=b"hello", **kw)


async def test_the_row_with_its_receipt_is_durable_before_the_upstream_hears_rok() -> None:
    kit = Kit()
    await kit.deliveries.start()
    row = kit.sent_row()
    answer = kit.receipts.received(kit.pool, upstream_receipt())  # type: ignore[arg-type]
    assert isinstance(answer, asyncio.Future)
    await turns()
    # the end of the turn asked for the durable save, with the receipt in the row
    [(receipts, write)] = kit.store.durable
    assert row.state is State.DELIVERED and row.receipt_owed and receipts == [row.receipt]
    # the ESME has it already (the bytes sent are the row's), the upstream not yet its answer
    [(pdu, _, encoded)] = kit.esme.sent
    assert encoded == row.receipt and decode(encoded) == pdu
    assert pdu.tlvs[Tag.RECEIPTED_MESSAGE_ID] == HUB_ID and pdu.short_message.startswith(b"id:" + HUB_ID.encode())
    assert not answer.done()
    write.set_result(None)
    await turns()
    assert answer.result() == 0
    # the ESME acknowledges: nothing is owed any more, and that is saved
    kit.esme.answer()
    await turns()
    assert not row.receipt_owed and kit.store.saved[-1] == [row]
    await kit.deliveries.stop()


async def test_a_failed_write_makes_the_upstream_send_it_again() -> None:
    kit = Kit()
    await kit.deliveries.start()
    kit.sent_row()
    answer = kit.receipts.received(kit.pool, upstream_receipt())  # type: ignore[arg-type]
    await turns()
    kit.store.durable[0][1].set_exception(OSError("disk full"))
    await turns()
    assert isinstance(answer, asyncio.Future) and answer.result() == CommandStatus.ESME_RSYSERR
    await kit.deliveries.stop()


async def test_a_turns_receipts_share_one_write_and_each_gets_its_answer() -> None:
    kit = Kit()
    await kit.deliveries.start()
    rows = []
    answers = []
    for i in range(5):
        row = kit.sent_row(upstream_id=str(100 + i))
        row.id = f"hub{i}"
        rows.append(row)
        pdu = build_receipt(message_id=str(100 + i), state=MessageState.UNDELIVERABLE, source_addr="A",
                            destination_addr="44", submit_date=None, done_date=None,
                            network_error=(3, 11))
        answers.append(kit.receipts.received(kit.pool, pdu))  # type: ignore[arg-type]
    await turns()
    [(receipts, write)] = kit.store.durable
    assert receipts == [row.receipt for row in rows]
    assert [pdu.tlvs[Tag.RECEIPTED_MESSAGE_ID] for pdu, _, _ in kit.esme.sent] == [row.id for row in rows]
    write.set_result(None)
    await turns()
    assert [a.result() for a in answers if isinstance(a, asyncio.Future)] == [0] * 5
    assert all(row.state is State.UNDELIVERABLE for row in rows)
    await kit.deliveries.stop()


async def test_an_unflagged_text_only_receipt_reaches_the_esme_flagged() -> None:
    kit = Kit()
    await kit.deliveries.start()
    kit.sent_row()
    kit.receipts.received(kit.pool, DeliverSm(esm_class=0, short_message=TEXT))  # type: ignore[arg-type]
    await turns()
    [(pdu, _, _)] = kit.esme.sent
    assert pdu.esm_class == 4 and pdu.tlvs == {}
    assert pdu.short_message == TEXT.replace(b"1234567", HUB_ID.encode())
    await kit.deliveries.stop()


async def test_a_refused_receipt_is_sent_again_with_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery_module, "RETRY_DELAY", 0.0)
    kit = Kit()
    await kit.deliveries.start()
    row = kit.sent_row()
    kit.receipts.received(kit.pool, upstream_receipt())  # type: ignore[arg-type]
    await turns()
    kit.store.durable[0][1].set_result(None)
    first = kit.esme.sent[0][2]
    kit.esme.answer(CommandStatus.ESME_RSYSERR)
    for _ in range(50):  # the retry is a call_later(0): a few turns
        await turns(1)
        if kit.esme.sent:
            break
    assert [encoded for _, _, encoded in kit.esme.sent] == [first] and row.receipt_owed
    kit.esme.answer()
    await turns()
    assert not row.receipt_owed
    await kit.deliveries.stop()


async def test_a_receipt_the_esme_did_not_ask_for_is_saved_and_not_sent() -> None:
    kit = Kit()
    await kit.deliveries.start()
    row = kit.sent_row(registered_delivery=2)  # failures only
    assert kit.receipts.received(kit.pool, upstream_receipt()) == 0  # type: ignore[arg-type]
    await turns()
    assert row.state is State.DELIVERED and not row.receipt_owed and kit.store.saved == [[row]]
    assert not kit.esme.sent and not kit.store.durable
    await kit.deliveries.stop()


async def test_an_intermediate_notification_asked_for_reaches_the_esme_with_the_hubs_id() -> None:
    kit = Kit()
    await kit.deliveries.start()
    row = kit.sent_row(registered_delivery=0x11)  # final receipt and intermediate notifications
    enroute = build_receipt(message_id="1234567", state=MessageState.ENROUTE, source_addr="Acme",
                            destination_addr="447700900123", submit_date=None, done_date=None,
                            esm_class=0)  # unflagged: the text's stat says it is not final
    answer = kit.receipts.received(kit.pool, enroute)  # type: ignore[arg-type]
    assert isinstance(answer, asyncio.Future) and await answer == 0  # stored (as an MO-like delivery) first
    await turns()
    [(pdu, _, _)] = kit.esme.sent
    assert pdu.esm_class == 0x20 and pdu.tlvs[Tag.RECEIPTED_MESSAGE_ID] == HUB_ID
    assert row.state is State.SENT and ("smsc", "1234567") in kit.receipts.awaiting  # the final one still to come
    await kit.deliveries.stop()


async def test_one_future_answers_a_turns_receipts_and_the_next_turn_gets_its_own() -> None:
    """smppcore's Client answers every deliver_sm waiting on one Future from one callback."""
    kit = Kit()
    await kit.deliveries.start()
    first = []
    for i in range(3):
        kit.sent_row(upstream_id=str(200 + i)).id = f"first{i}"
        first.append(kit.receipts.received(kit.pool, _receipt_for_id(str(200 + i))))  # type: ignore[arg-type]
    assert all(a is first[0] for a in first) and isinstance(first[0], asyncio.Future)
    await turns()
    kit.sent_row(upstream_id="300").id = "second"
    second = kit.receipts.received(kit.pool, _receipt_for_id("300"))  # type: ignore[arg-type]
    assert isinstance(second, asyncio.Future) and second is not first[0]
    await turns()
    [(_, write1), (_, write2)] = kit.store.durable
    write2.set_exception(OSError("disk full"))
    await turns()
    assert not first[0].done() and second.result() == CommandStatus.ESME_RSYSERR
    write1.set_result(None)
    await turns()
    assert first[0].result() == 0
    await kit.deliveries.stop()


def _receipt_for_id(upstream_id: str) -> DeliverSm:
    return build_receipt(message_id=upstream_id, state=MessageState.DELIVERED, source_addr="A",
                         destination_addr="44", submit_date=None, done_date=None)


# --- the text's err: Appendix B's three decimal digits, and the hex some SMSCs write ------------


@pytest.mark.parametrize(("err", "expected"), [
    ("000", 0),
    ("011", 11),  # leading zeros are Appendix B's form (int(s, 0) refused them: it was read as 0)
    ("001", 1),
    ("255", 255),
    ("0x0B", 11),
    ("00b", 11),  # a letter: it cannot be decimal
    ("1f4", 500),
    ("-01", 0),  # not an error code
    ("x", 0),
    ("", 0),
    ("9" * 40, 0),  # longer than any error code
])
async def test_the_error_a_text_only_receipt_gives_is_kept_in_the_row(err: str, expected: int) -> None:
    kit = Kit()
    await kit.deliveries.start()
    row = kit.sent_row()
    text = TEXT.replace(b"stat:DELIVRD err:000", b"stat:UNDELIV err:" + err.encode())
    pdu = msgspec.structs.replace(upstream_receipt(), short_message=text, tlvs={})
    kit.receipts.received(kit.pool, pdu)  # type: ignore[arg-type]
    await turns()
    assert row.state is State.UNDELIVERABLE and row.error == expected
    await kit.deliveries.stop()


async def test_receipts_arriving_as_the_store_closes_are_answered_with_an_error() -> None:
    kit = Kit()
    await kit.deliveries.start()
    kit.sent_row()

    def closed(rows: list[MessageRow]) -> asyncio.Future[None]:
        raise RuntimeError("the store is not open")

    kit.store.save_durably = closed  # type: ignore[method-assign]
    answer = kit.receipts.received(kit.pool, upstream_receipt())  # type: ignore[arg-type]
    await turns()
    # answered, not left waiting until the upstream's connection closes: the SMSC sends it again
    assert isinstance(answer, asyncio.Future) and answer.result() == CommandStatus.ESME_RSYSERR
    await kit.deliveries.stop()


# --- a turn's receipts to their outboxes in one put_all an account, as one by one ----------------


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["acme", "beta", "gamma"]), max_size=12), st.integers(1, 6))
async def test_a_turns_receipts_reach_the_outboxes_as_one_by_one(accounts: list[str], limit: int) -> None:
    """Deliveries.deliver_receipts (an outbox's put_all an account) queues what _enqueue_receipt
    does for each receipt in turn: the same requests, callbacks, contexts and bytes, in order,
    and the same refused past the hold limit."""
    unbound = SimpleNamespace(receivers=lambda account: [])  # nothing sent: the queues stay to compare
    batched, each = (Deliveries(FakeStore(), unbound, hold_limit=limit) for _ in range(2))  # type: ignore[arg-type]
    for deliveries in (batched, each):
        deliveries.loop = asyncio.get_running_loop()
    now = time.time()
    receipts = []
    for n, account in enumerate(accounts):
        row = MessageRow(id=f"hub{n}", account=account, pdu=b"", route=["smsc"], state=State.DELIVERED,
                         upstream="smsc", registered_delivery=1, created_at=now, updated_at=now)
        pdu = rewrite_receipt(upstream_receipt(), row.id, 4)
        row.receipt = encode(pdu)
        receipts.append(ReceiptInFlight(row, pdu))
    batched.deliver_receipts(receipts)
    for receipt in receipts:
        each._enqueue_receipt(receipt)

    def view(deliveries: Deliveries) -> dict[str, list[tuple[object, ...]]]:
        return {account: [(item.pdu, item.on_ack.__func__, item.context, item.encoded) for item in box.queue]
                for account, box in deliveries.outboxes.items()}

    assert view(batched) == view(each)
    await turns(1)  # their pumps find no receiver


# --- a receipt's id looked up as it came, then normalised: the rule's match, no other -------------

IDS = st.text(alphabet="0123456789abcdefxyzABCFZ -_\t\x00é٣", max_size=12)


@given(st.one_of(IDS, st.text(max_size=12)), st.sampled_from([None, 10]), st.sampled_from([None, 10, 16]))
def test_an_awaiting_key_is_its_own_normal_form(s: str, base: int | None, submit_base: int | None) -> None:
    """What Receipts.received's look-up as it came rests on: a key (an id normalised with the
    submit base) comes back unchanged normalised without a base or with base 10."""
    key = normalise_message_id(s, base=submit_base)
    assert normalise_message_id(key, base=base) == key


#: how an SMSC writes in its receipt the id its submit_sm_resp gave: as it was, or otherwise
SAME_ID_WRITTEN = [lambda s: s, str.upper, lambda s: "00" + s, lambda s: s + "\x00", lambda s: " " + s]


@settings(max_examples=150, deadline=None)
@given(IDS, st.one_of(st.sampled_from(SAME_ID_WRITTEN), IDS), st.sampled_from([0, 10, 16]),
       st.sampled_from([0, 10, 16]))
async def test_a_receipt_finds_the_message_its_normal_id_names(submitted: str, written: Any, submit_base: int,
                                                              receipt_base: int) -> None:
    receipted = written(submitted) if callable(written) else written
    assume(submitted and receipted.strip(" \x00"))  # an id in both (none: not matched at all)
    kit = Kit()
    kit.pool.cfg = SimpleNamespace(receipt_id_base=receipt_base, submit_id_base=submit_base)
    row = kit.sent_row(upstream_id=submitted)
    pdu = build_receipt(message_id=receipted, state=MessageState.DELIVERED, source_addr="A",
                        destination_addr="44", submit_date=None, done_date=None)
    pdu.tlvs[Tag.RECEIPTED_MESSAGE_ID] = receipted  # as it came: padding and all
    expected = (normalise_message_id(receipted, base=receipt_base or None)
                == normalise_message_id(submitted, base=submit_base or None))
    kit.receipts.received(kit.pool, pdu)  # type: ignore[arg-type]
    assert (row.state is State.DELIVERED) == expected
    for task in kit.host.tasks:  # the store looked for an unknown id: not here
        task.cancel()
    await asyncio.gather(*kit.host.tasks, return_exceptions=True)
