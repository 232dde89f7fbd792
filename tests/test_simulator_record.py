"""The simulator's record: long messages whole, its bounds, query/cancel/replace, submit_multi, data_sm, HTTP, a long run."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from hubkit import wait_until
from netkit import free_port
from simkit import HOST, TO, connect, pipeline, simulator

import smppcore
from smppcore import CommandStatus, MessageState, SubmitSm, Tag
from smppcore.receipt import receipt_info
from smppcore.text import split_text

# ---- long messages ---------------------------------------------------------------------------------

LONG = "Ünïcödé text that needs several parts → and a bit more 😀 " * 4
LONG_GSM = "Plain GSM text with an escape € and [brackets] that spans several messages. " * 5


@pytest.mark.parametrize("method", ["udh", "sar", "payload"])
@pytest.mark.parametrize("text", [LONG, LONG_GSM], ids=["ucs2", "gsm"])
async def test_long_messages_are_recorded_whole(method, text):
    async with simulator() as sim:
        async with connect(sim) as c:
            responses = await c.submit_text(TO, text, method=method, source_addr="Acme")
            (message,) = await sim.sim.wait_for_messages(1)
    assert message.text == text
    assert message.parts == len(responses) and list(message.message_ids) == [r.message_id for r in responses]
    assert (message.source_addr, message.destination_addr) == ("Acme", TO)
    assert len(sim.sim.submits) == len(responses)


async def test_long_message_with_16_bit_udh_and_interleaved_segments():
    async with simulator() as sim:
        async with connect(sim) as c:
            a = split_text("first long message " * 12, ref_bits=16, reference=0x1234)
            b = split_text("second long message " * 12, ref_bits=16, reference=0x1235)
            assert len(a) > 1 and len(b) > 1
            mixed = [s for pair in zip(a, b) for s in pair] + a[len(b):] + b[len(a):]
            mixed.reverse()  # out of order too
            await pipeline(c, [SubmitSm(destination_addr=TO, short_message=s.short_message, data_coding=s.data_coding,
                                        esm_class=s.esm_class) for s in mixed])
            messages = await sim.sim.wait_for_messages(2)
    assert sorted(m.text for m in messages) == sorted(["first long message " * 12, "second long message " * 12])


async def test_odd_udh_is_no_reason_to_fail():
    async with simulator() as sim:
        async with connect(sim) as c:
            # a UDH without concatenation (port addressing): the text is what follows it
            await c.submit_sm(destination_addr=TO, esm_class=0x40, short_message=bytes([6, 5, 4, 0x0B, 0x84, 0x23, 0xF0]) + b"hello")
            # a UDH whose length runs past the message: accepted, recorded as it came, connection alive
            resp = await c.submit_sm(destination_addr=TO, esm_class=0x40, short_message=bytes([9, 0, 3, 1]))
            assert resp.message_id
            await c.enquire_link()
    assert [m.payload for m in sim.sim.messages] == [b"hello", bytes([9, 0, 3, 1])]


# ---- the record -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["decimal", "hex", "uuid"])
async def test_the_record_is_bounded_and_found_by_id_in_every_format(fmt):
    async with simulator(record_limit=5, receipts={"message_id_format": fmt}) as sim:
        async with connect(sim) as c:
            ids = [(await c.submit_sm(destination_addr=TO, short_message=b"%d" % i)).message_id for i in range(8)]
            for mid in ids[3:]:
                q = await c.request(smppcore.QuerySm(message_id=mid))
                assert q.message_id == mid and q.message_state == MessageState.ENROUTE
            for mid in (ids[2], "nonsense", ids[-1] + "0", ""):  # pushed out, or never given
                with pytest.raises(smppcore.SmppStatusError) as info:
                    await c.request(smppcore.QuerySm(message_id=mid))
                assert info.value.command_status == CommandStatus.ESME_RQUERYFAIL
        assert list(sim.sim.by_id) == ids[3:] and len(sim.sim.by_id) == 5
        assert sim.sim.by_id[ids[4]].pdu.short_message == b"4" and sim.sim.by_id.get(ids[0]) is None
        assert [m.text for m in sim.sim.messages] == ["3", "4", "5", "6", "7"] and sim.sim.stats.messages == 8


async def test_record_limit_0_counts_but_keeps_nothing():
    async with simulator(record_limit=0) as sim:
        async with connect(sim) as c:
            resp = await c.submit_sm(destination_addr=TO, registered_delivery=1)
            assert receipt_info(await c.next_message(timeout=5)).message_id == resp.message_id  # receipts still come
            await c.submit_text(TO, LONG)
            await sim.sim.wait_for_messages(2)
            with pytest.raises(smppcore.SmppStatusError):
                await c.request(smppcore.QuerySm(message_id=resp.message_id))
        assert len(sim.sim.messages) == len(sim.sim.submits) == len(sim.sim.by_id) == 0
        assert sim.sim.stats.messages == 2 and sim.sim.stats.receipts_acked == 1


# ---- query / cancel / replace --------------------------------------------------------------------


async def test_query_cancel_replace_answered_from_the_record():
    async with simulator(receipts={"delay": {"kind": "fixed", "ms": 400}}) as sim:
        async with connect(sim) as c:
            a = await c.submit_sm(destination_addr=TO, short_message=b"a", registered_delivery=1)
            b = await c.submit_sm(destination_addr=TO, short_message=b"b", registered_delivery=1)
            plain = await c.submit_sm(destination_addr=TO, short_message=b"no receipt asked")
            q = await c.request(smppcore.QuerySm(message_id=a.message_id))
            assert (q.message_id, q.message_state, q.final_date, q.error_code) == (a.message_id, MessageState.ENROUTE, "", 0)
            # replace: the record, the recorded text and the receipt's quote follow
            await c.request(smppcore.ReplaceSm(message_id=b.message_id, short_message=b"replaced"))
            assert sim.sim.by_id[b.message_id].pdu.short_message == b"replaced"
            assert [m.text for m in sim.sim.messages][1] == "replaced"
            # cancel: DELETED, no receipt, cannot be cancelled or replaced again
            await c.request(smppcore.CancelSm(message_id=a.message_id))
            q = await c.request(smppcore.QuerySm(message_id=a.message_id))
            assert q.message_state == MessageState.DELETED and q.final_date
            for bad in (smppcore.CancelSm(message_id=a.message_id), smppcore.ReplaceSm(message_id=a.message_id, short_message=b"x")):
                with pytest.raises(smppcore.SmppStatusError) as info:
                    await c.request(bad)
                assert info.value.command_status in (CommandStatus.ESME_RCANCELFAIL, CommandStatus.ESME_RREPLACEFAIL)
            await c.request(smppcore.CancelSm(message_id=plain.message_id))
            with pytest.raises(smppcore.SmppStatusError) as info:
                await c.request(smppcore.QuerySm(message_id="no-such-id"))
            assert info.value.command_status == CommandStatus.ESME_RQUERYFAIL
            # b's receipt comes (a's does not), quoting the replaced text; then b is final
            pdu = await c.next_message(timeout=5)
            info = receipt_info(pdu)
            assert info.message_id == b.message_id and info.receipt.text == "replaced"
            q = await c.request(smppcore.QuerySm(message_id=b.message_id))
            assert q.message_state == MessageState.DELIVERED and q.final_date
            with pytest.raises(smppcore.SmppStatusError):
                await c.request(smppcore.ReplaceSm(message_id=b.message_id, short_message=b"too late"))
        assert sim.sim.stats.receipts_pending == 0 and sim.sim.stats.receipts_sent == 1


# ---- submit_multi and data_sm ------------------------------------------------------------------------


async def test_submit_multi_reports_rule_matches_in_unsuccess_sme():
    rules = [{"destination": "999$", "status": "ESME_RINVDSTADR"}, {"destination": "^33", "status": "ESME_RX_P_APPN"}]
    async with simulator(errors={"rules": rules}) as sim:
        async with connect(sim) as c:
            resp = await c.request(smppcore.SubmitMulti(
                source_addr="Acme",
                dest_address=[smppcore.DestAddress("447700900123", 1, 1), smppcore.DestAddress("447700900999", 1, 1),
                              smppcore.DestAddress("33612345678", 1, 1)],
                short_message=b"to many", registered_delivery=1))
            assert resp.message_id
            assert [(u.destination_addr, u.dest_addr_ton, u.error_status_code) for u in resp.unsuccess_sme] == [
                ("447700900999", 1, CommandStatus.ESME_RINVDSTADR), ("33612345678", 1, CommandStatus.ESME_RX_P_APPN)]
            assert receipt_info(await c.next_message(timeout=5)).message_id == resp.message_id
    (message,) = sim.sim.messages
    assert message.text == "to many" and "447700900123" in message.destination_addr


async def test_submit_multi_gets_a_receipt_from_every_destination_it_accepted():
    """One receipt per accepted destination (a handset each), none for those the response refused."""
    rules = [{"destination": "999$", "status": "ESME_RINVDSTADR"}]
    accepted = ["447700900123", "447700900124", "33612345678"]
    async with simulator(errors={"rules": rules}) as sim:
        async with connect(sim) as c:
            resp = await c.request(smppcore.SubmitMulti(
                source_addr="Acme", short_message=b"to many", registered_delivery=1,
                dest_address=[smppcore.DestAddress(d, 1, 1) for d in [*accepted[:2], "447700900999", accepted[2]]]))
            assert [u.destination_addr for u in resp.unsuccess_sme] == ["447700900999"]
            receipts = [await c.next_message(timeout=5) for _ in accepted]
    assert sorted(r.source_addr for r in receipts) == sorted(accepted)  # a receipt comes from the handset
    assert {receipt_info(r).message_id for r in receipts} == {resp.message_id}
    assert sim.sim.stats.receipts_sent == len(accepted)


async def test_data_sm_is_accepted_recorded_and_receipted():
    async with simulator() as sim:
        async with connect(sim) as c:
            resp = await c.request(smppcore.DataSm(source_addr="Acme", destination_addr=TO, registered_delivery=1,
                                                   tlvs={Tag.MESSAGE_PAYLOAD: b"over data-sm"}))
            assert resp.message_id
            info = receipt_info(await c.next_message(timeout=5))
            assert info.message_id == resp.message_id
    (message,) = sim.sim.messages
    assert message.text == "over data-sm" and message.source_addr == "Acme"


# ---- HTTP record ------------------------------------------------------------------------------------


async def test_http_messages_and_stats():
    async with simulator(http_listen=f"{HOST}:{free_port()}") as sim:
        async with connect(sim) as c:
            for i in range(3):
                await c.submit_sm(source_addr="Acme", destination_addr=TO, short_message=f"message {i}".encode())
            await c.submit_text(TO, LONG)
            with pytest.raises(smppcore.SmppStatusError):
                sim.sim.fail_next("ESME_RSYSERR")
                await c.submit_sm(destination_addr=TO)
        base = f"http://{HOST}:{sim.http_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/messages") as r:
                assert r.status == 200 and r.content_type == "application/json"
                body = await r.json()
            assert body["count"] == 4
            first = body["messages"][0]
            assert {k: first[k] for k in ("system_id", "source_addr", "destination_addr", "text", "parts")} == {
                "system_id": "esme", "source_addr": "Acme", "destination_addr": TO, "text": "message 0", "parts": 1}
            assert body["messages"][-1]["text"] == LONG and body["messages"][-1]["parts"] > 1
            async with http.get(f"{base}/messages?limit=2") as r:
                assert [m["text"] for m in (await r.json())["messages"]] == ["message 2", LONG]
            async with http.get(f"{base}/stats") as r:
                stats = await r.json()
            assert stats["accepted"] == sim.sim.stats.accepted and stats["messages"] == 4
            assert stats["rejected"] == {"ESME_RSYSERR": 1} and stats["binds"] == 1
            for bad in ("x", "1.5", ""):
                async with http.get(f"{base}/messages", params={"limit": bad}) as r:
                    assert r.status == 400
                    assert "limit" in (await r.json())["error"]


# ---- the long run -------------------------------------------------------------------------------------


async def test_ten_thousand_messages_balance_exactly():
    n = 10_000
    config = {
        "submit_latency": {"kind": "uniform", "min_ms": 0, "max_ms": 5},
        "errors": {"probabilities": {"ESME_RSYSERR": 0.05}},
        "receipts": {"delay": {"kind": "uniform", "min_ms": 0, "max_ms": 20}},
        "seed": 2024,
    }
    async with simulator(**config) as sim:
        got: list[str] = []
        expected = {"n": None}
        all_in = asyncio.Event()

        def on_message(pdu) -> None:
            got.append(receipt_info(pdu).message_id)
            if len(got) == expected["n"]:
                all_in.set()

        c = await connect(sim, window=200, on_message=on_message)
        responses = await pipeline(c, [SubmitSm(destination_addr=TO, registered_delivery=1, short_message=b"%d" % i) for i in range(n)])
        accepted = [r.message_id for r in responses if r.command_status == 0]
        rejected = [r for r in responses if r.command_status != 0]
        expected["n"] = len(accepted)
        if len(got) == len(accepted):
            all_in.set()
        await asyncio.wait_for(all_in.wait(), 60)
        await wait_until(lambda: sim.sim.stats.receipts_acked == len(accepted), what="every receipt acknowledged")
        await c.unbind()
        stats = sim.sim.stats
        assert len(accepted) + len(rejected) == n
        assert all(r.command_status == CommandStatus.ESME_RSYSERR for r in rejected)
        assert 350 <= len(rejected) <= 650  # 5%, seeded
        assert stats.submits == n and stats.accepted == len(accepted) and stats.rejected == {"ESME_RSYSERR": len(rejected)}
        assert len(got) == len(set(got)) == len(accepted) == stats.receipts_acked == stats.receipts_sent
        assert set(got) == set(accepted)
        assert stats.receipts_pending == 0 and stats.held == 0
        assert len(sim.sim.messages) == len(accepted)
