"""The simulator's receipts and MO: what it delivers to the ESME, when, to whom, and with which ids."""

from __future__ import annotations

import asyncio
import collections
import re

import pytest
from hubkit import wait_until
from simkit import TO, connect, pipeline, simulator

import smppcore
from smppcore import MessageState, SubmitSm, Tag
from smppcore.receipt import is_receipt, parse_receipt, receipt_info
from smppcore.text import Reassembler, concat_info, decode_text


async def receipts(client: smppcore.Client, n: int, timeout: float = 10.0) -> list:
    return [await client.next_message(timeout=timeout) for _ in range(n)]


def reassemble(pdus: list) -> str:
    """The text of deliver_sm segments (UDH or SAR), put back together."""
    r = Reassembler()
    for p in pdus:
        info = concat_info(p)
        if info is None:
            return decode_text(p.short_message, p.data_coding)
        whole = r.add("k", info, 0)
        if whole is not None:
            return decode_text(whole, p.data_coding)
    raise AssertionError("incomplete")


# ---- receipts ----------------------------------------------------------------------------------


async def test_receipt_is_a_standard_deliver_sm_after_the_delay():
    async with simulator(receipts={"delay": {"kind": "fixed", "ms": 150}}) as sim:
        async with connect(sim) as c:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            resp = await c.submit_sm(source_addr="Acme", source_addr_ton=5, destination_addr=TO, dest_addr_ton=1,
                                     dest_addr_npi=1, short_message=b"hello receipts", registered_delivery=1)
            pdu = await c.next_message(timeout=5)
            assert loop.time() - t0 >= 0.149
    assert is_receipt(pdu) and pdu.esm_class == 0x04
    assert (pdu.source_addr, pdu.destination_addr) == (TO, "Acme")  # back the other way
    assert (pdu.source_addr_ton, pdu.dest_addr_ton) == (1, 5)
    assert pdu.tlvs[Tag.RECEIPTED_MESSAGE_ID] == resp.message_id
    assert pdu.tlvs[Tag.MESSAGE_STATE] == MessageState.DELIVERED
    text = parse_receipt(pdu.short_message)
    assert (text.id, text.stat, text.err, text.dlvrd, text.sub) == (resp.message_id, "DELIVRD", "000", 1, 1)
    assert text.text == "hello receipts"
    assert text.submit_date is not None and text.done_date is not None
    assert sim.sim.stats.receipts_sent == sim.sim.stats.receipts_acked == 1


async def test_receipt_final_states_follow_the_weights():
    mix = {"DELIVRD": 3, "UNDELIV": 1, "EXPIRED": 0}
    async with simulator(receipts={"final_states": mix}, seed=99) as sim:
        async with connect(sim) as c:
            responses = await pipeline(c, [SubmitSm(destination_addr=TO, registered_delivery=1) for _ in range(400)])
            infos = [receipt_info(p) for p in await receipts(c, 400)]
    assert {i.message_id for i in infos} == {r.message_id for r in responses}
    states = collections.Counter(i.state for i in infos)
    assert set(states) == {MessageState.DELIVERED, MessageState.UNDELIVERABLE}  # EXPIRED has weight 0
    assert 250 <= states[MessageState.DELIVERED] <= 350
    assert all(i.err == ("000" if i.state == MessageState.DELIVERED else "001") for i in infos)
    # the record agrees with what was sent
    assert collections.Counter(s.state for s in sim.sim.submits) == {"DELIVRD": states[MessageState.DELIVERED], "UNDELIV": states[MessageState.UNDELIVERABLE]}


@pytest.mark.parametrize("word,state", [("REJECTD", MessageState.REJECTED), ("expired", MessageState.EXPIRED),
                                        ("DELETED", MessageState.DELETED), ("UNKNOWN", MessageState.UNKNOWN),
                                        ("ACCEPTD", MessageState.ACCEPTED)])
async def test_each_final_state_can_be_forced(word, state):
    async with simulator(receipts={"final_states": {word: 1}}) as sim:
        async with connect(sim) as c:
            await c.submit_sm(destination_addr=TO, registered_delivery=1)
            info = receipt_info(await c.next_message(timeout=5))
            assert info.state == state and info.receipt.stat == word.upper()
            # registered_delivery=2 asks for failures only: each of these is one
            await c.submit_sm(destination_addr=TO, registered_delivery=2)
            assert receipt_info(await c.next_message(timeout=5)).state == state


async def test_intermediate_states_come_first_when_asked_for():
    config = {"receipts": {"intermediate": ["ENROUTE", "ACCEPTD"], "delay": {"kind": "uniform", "min_ms": 0, "max_ms": 30}}, "seed": 5}
    async with simulator(**config) as sim:
        async with connect(sim) as c:
            responses = await pipeline(c, [SubmitSm(destination_addr=TO, registered_delivery=0x11) for _ in range(30)])
            by_id = collections.defaultdict(list)
            for p in await receipts(c, 90):
                info = receipt_info(p)
                by_id[info.message_id].append((info.state, p.esm_class))
            assert set(by_id) == {r.message_id for r in responses}
            for states in by_id.values():
                assert states == [(MessageState.ENROUTE, 0x20), (MessageState.ACCEPTED, 0x20), (MessageState.DELIVERED, 0x04)]
            # without bit 0x10: the final receipt only
            resp = await c.submit_sm(destination_addr=TO, registered_delivery=1)
            pdu = await c.next_message(timeout=5)
            assert receipt_info(pdu).message_id == resp.message_id and pdu.esm_class == 0x04
            # only 0x10: the intermediate ones, and no final receipt
            await c.submit_sm(destination_addr=TO, registered_delivery=0x10)
            assert [receipt_info(p).state for p in await receipts(c, 2)] == [MessageState.ENROUTE, MessageState.ACCEPTED]
            await wait_until(lambda: sim.sim.stats.receipts_pending == 0, what="all final")
            assert sim.sim.stats.receipts_sent == 90 + 1 + 2


async def test_intermediate_always_sends_them_unasked():
    async with simulator(receipts={"intermediate": ["ENROUTE"], "intermediate_always": True}) as sim:
        async with connect(sim) as c:
            await c.submit_sm(destination_addr=TO, registered_delivery=1)
            assert [receipt_info(p).state for p in await receipts(c, 2)] == [MessageState.ENROUTE, MessageState.DELIVERED]


async def test_registered_delivery_2_reports_failures_only():
    async with simulator(receipts={"final_states": {"DELIVRD": 1, "UNDELIV": 1}}, seed=8) as sim:
        async with connect(sim) as c:
            await pipeline(c, [SubmitSm(destination_addr=TO, registered_delivery=2) for _ in range(100)])
            await wait_until(lambda: sim.sim.stats.receipts_pending == 0, what="all final")
            failed = [s.message_id for s in sim.sim.submits if s.state == "UNDELIV"]
            assert 25 <= len(failed) <= 75
            got = [receipt_info(p) for p in await receipts(c, len(failed))]
            assert sorted(i.message_id for i in got) == sorted(failed)
            assert {i.state for i in got} == {MessageState.UNDELIVERABLE}
            assert sim.sim.stats.receipts_sent == len(failed)


async def test_registered_delivery_3_reports_successes_only():
    # reserved in SMPP 3.4; SMPP 5.0 (and smppcore.receipt.receipt_wanted, the hub's rule too): success only
    async with simulator(receipts={"final_states": {"DELIVRD": 1, "UNDELIV": 1}}, seed=8) as sim:
        async with connect(sim) as c:
            await pipeline(c, [SubmitSm(destination_addr=TO, registered_delivery=3) for _ in range(100)])
            await wait_until(lambda: sim.sim.stats.receipts_pending == 0, what="all final")
            delivered = [s.message_id for s in sim.sim.submits if s.state == "DELIVRD"]
            assert 25 <= len(delivered) <= 75
            got = [receipt_info(p) for p in await receipts(c, len(delivered))]
            assert sorted(i.message_id for i in got) == sorted(delivered)
            assert {i.state for i in got} == {MessageState.DELIVERED}
            assert sim.sim.stats.receipts_sent == len(delivered)


async def test_no_receipt_unless_asked_or_when_disabled():
    async with simulator() as sim:
        async with connect(sim) as c:
            await c.submit_sm(destination_addr=TO)  # registered_delivery 0
        assert sim.sim.stats.receipts_sent == 0 and sim.sim.stats.receipts_pending == 0
    async with simulator(receipts={"enabled": False}) as sim:
        async with connect(sim) as c:
            await c.submit_sm(destination_addr=TO, registered_delivery=1)
        assert sim.sim.stats.receipts_sent == 0 and sim.sim.stats.receipts_pending == 0


async def test_receipt_is_held_until_the_account_binds_a_receiver():
    async with simulator() as sim:
        async with connect(sim, bind="tx") as tx:
            ids = [(await tx.submit_sm(destination_addr=TO, registered_delivery=1)).message_id for _ in range(3)]
            await wait_until(lambda: sim.sim.stats.held == 3, what="receipts held")
            # another account's receiver does not get them
            async with connect(sim, system_id="someone-else", bind="rx"):
                assert sim.sim.stats.held == 3
        async with connect(sim, bind="rx") as rx:
            got = [receipt_info(p).message_id for p in await receipts(rx, 3)]
        assert got == ids
        await wait_until(lambda: sim.sim.stats.receipts_acked == 3, what="acked")
        assert sim.sim.stats.held == 0


async def test_past_hold_limit_the_oldest_receipts_give_way_and_are_counted(caplog):
    async with simulator(receipts={"hold_limit": 3}) as sim:
        async with connect(sim, bind="tx") as tx:
            ids = [(await tx.submit_sm(destination_addr=TO, registered_delivery=1)).message_id for _ in range(5)]
            await wait_until(lambda: sim.sim.stats.held_dropped == 2, what="two given up")
        assert sim.sim.stats.held == 3
        assert [r.message for r in caplog.records if "hold_limit" in r.message] == [
            "esme: 3 receipts and MO wait for its receivers (hold_limit): the oldest give way"]  # once
        async with connect(sim, bind="rx") as rx:
            got = [receipt_info(p).message_id for p in await receipts(rx, 3)]
        assert got == ids[2:]  # the newest three


async def test_receipts_unanswered_by_a_dropped_receiver_go_to_the_next_one():
    async with simulator() as sim:
        unanswered = asyncio.get_running_loop().create_future()
        first = await connect(sim, on_message=lambda pdu: unanswered)  # never answers
        ids = [(await first.submit_sm(destination_addr=TO, registered_delivery=1)).message_id for _ in range(5)]
        await wait_until(lambda: sim.sim.stats.receipts_sent == 5, what="sent")
        first.abort()
        await first.closed
        async with connect(sim, bind="rx") as second:
            got = [receipt_info(p).message_id for p in await receipts(second, 5)]
        assert got == ids  # in their order
        await wait_until(lambda: sim.sim.stats.receipts_acked == 5, what="acked")


@pytest.mark.parametrize(
    "fmt,pattern",
    [("decimal", r"[1-9][0-9]*"), ("hex", r"[0-9a-f]{8}"), ("uuid", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")],
)
async def test_message_id_formats(fmt, pattern):
    async with simulator(receipts={"message_id_format": fmt}) as sim:
        async with connect(sim) as c:
            ids = [(await c.submit_sm(destination_addr=TO, registered_delivery=1)).message_id for _ in range(5)]
            got = [receipt_info(p).message_id for p in await receipts(c, 5)]
    assert all(re.fullmatch(pattern, i) for i in ids), ids
    assert len(set(ids)) == 5 and got == ids
    assert parse_receipt(sim.sim.receipts[0].short_message).id == ids[0]


# ---- MO ------------------------------------------------------------------------------------------


async def test_mo_rate_with_templates():
    templates = [{"source_addr": "447700900001", "destination_addr": "555", "text": "STOP"},
                 {"source_addr": "447700900002", "destination_addr": "556", "text": "Grüße 😀"}]
    async with simulator(mo={"rate": 200, "templates": templates}, seed=1) as sim:
        async with connect(sim, bind="rx") as rx:
            got = [await rx.next_message(timeout=5) for _ in range(20)]
    seen = {(p.source_addr, p.destination_addr, decode_text(p.short_message, p.data_coding)) for p in got}
    assert seen == {("447700900001", "555", "STOP"), ("447700900002", "556", "Grüße 😀")}
    assert not any(is_receipt(p) for p in got)
    assert sim.sim.stats.mo_sent >= 20


async def test_mo_template_goes_to_its_account_only():
    templates = [{"text": "for beta", "system_id": "beta"}]
    async with simulator(mo={"rate": 100, "templates": templates}) as sim:
        async with connect(sim, system_id="alpha", bind="rx") as alpha, connect(sim, system_id="beta", bind="rx") as beta:
            assert [(await beta.next_message(timeout=5)).short_message for _ in range(3)] == [b"for beta"] * 3
            with pytest.raises(asyncio.TimeoutError):
                await alpha.next_message(timeout=0.05)


async def test_echo_mode_returns_every_mt_as_mo():
    async with simulator(mo={"echo": True}) as sim:
        async with connect(sim) as c:
            await c.submit_sm(source_addr="Acme", destination_addr=TO, short_message=b"ping")
            mo = await c.next_message(timeout=5)
            assert (mo.source_addr, mo.destination_addr, mo.short_message) == (TO, "Acme", b"ping")
            assert not is_receipt(mo)
            text = "an echo of a long message, " * 8
            n = len(await c.submit_text(TO, text, source_addr="Acme"))
            assert n > 1
            assert reassemble([await c.next_message(timeout=5) for _ in range(n)]) == text
        assert sim.sim.stats.mo_acked == 1 + n


async def test_send_mo_long_text_and_held_until_bound():
    async with simulator() as sim:
        text = "Ünïcödé MO → that does not fit one message " * 4
        sent = sim.sim.send_mo("447700900001", "12345", text, system_id="esme")  # nobody bound yet: held
        assert len(sent) > 1 and sim.sim.stats.held == len(sent)
        async with connect(sim, bind="rx") as rx:
            got = [await rx.next_message(timeout=5) for _ in range(len(sent))]
        assert reassemble(got) == text
        assert all(p.esm_class & 0x40 and p.data_coding == 8 for p in got)
