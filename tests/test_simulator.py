"""The SMSC simulator, every configurable behaviour asserted from the client side.

Our client (smppcore) drives most of it; the smpplib tests at the end check the key
behaviours with an independent client against the ``smsc_sync`` fixture. Everything
runs on 127.0.0.1 with free ports, and waits on events or polls with a bound.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import socket
import time
from typing import Any, AsyncIterator

import aiohttp
import pytest

import smppcore
from simulator.app import RunningSimulator, start
from simulator.config import config_from_dict
from smppcore import CommandStatus, MessageState, SubmitSm, Tag
from smppcore.receipt import is_receipt, parse_receipt, receipt_info
from smppcore.text import Reassembler, concat_info, decode_text, split_text

HOST = "127.0.0.1"
TO = "447700900123"


# ---- helpers ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def simulator(**config: Any) -> AsyncIterator[RunningSimulator]:
    """A simulator with ``config`` (the keys of simulator.toml) on a free port."""
    config.setdefault("listen", f"{HOST}:0")
    running = await start(config_from_dict(config), port=0)
    try:
        yield running
    finally:
        await running.close()


def connect(sim: RunningSimulator, **kw: Any):
    kw.setdefault("system_id", "esme")
    kw.setdefault("password", "pw")
    return smppcore.connect(HOST, sim.port, **kw)


async def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.005)


async def pipeline(client: smppcore.Client, pdus: list) -> list:
    """Send every PDU keeping the window full; the responses (or exceptions), in order."""
    futures = [await client.send(p) for p in pdus]
    return await asyncio.gather(*futures, return_exceptions=True)


async def receipts(client: smppcore.Client, n: int, timeout: float = 10.0) -> list:
    return [await client.next_message(timeout=timeout) for _ in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


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


# ---- accounts ---------------------------------------------------------------------------

ACCOUNTS = [
    {"system_id": "acme", "password": "secret", "bind_types": ["tx", "rx"], "max_binds": 2},
    {"system_id": "beta", "password": "pw2"},
]


@pytest.mark.parametrize(
    "system_id,password,bind,status",
    [
        ("acme", "wrong", "tx", CommandStatus.ESME_RINVPASWD),
        ("nobody", "secret", "tx", CommandStatus.ESME_RINVSYSID),
        ("acme", "secret", "trx", CommandStatus.ESME_RBINDFAIL),  # not among acme's bind types
        ("beta", "secret", "trx", CommandStatus.ESME_RINVPASWD),  # another account's password
    ],
)
async def test_bind_refusals(system_id, password, bind, status):
    async with simulator(accounts=ACCOUNTS) as sim:
        with pytest.raises(smppcore.BindError) as info:
            await connect(sim, system_id=system_id, password=password, bind=bind)
        assert info.value.command_status == status
        assert sim.sim.stats.bind_refused == 1 and sim.sim.stats.bound == 0


async def test_accounts_bind_with_their_types_up_to_max_binds():
    async with simulator(accounts=ACCOUNTS) as sim:
        tx = await connect(sim, system_id="acme", password="secret", bind="tx")
        rx = await connect(sim, system_id="acme", password="secret", bind="rx")
        with pytest.raises(smppcore.BindError) as info:  # max_binds = 2
            await connect(sim, system_id="acme", password="secret", bind="tx")
        assert info.value.command_status == CommandStatus.ESME_RBINDFAIL
        beta = await connect(sim, system_id="beta", password="pw2", bind="trx")  # every type by default
        assert sim.sim.stats.bound == 3
        await rx.unbind()
        await wait_until(lambda: sim.sim.stats.bound == 2, what="unbind seen")
        again = await connect(sim, system_id="acme", password="secret", bind="rx")  # room again
        for c in (tx, beta, again):
            await c.unbind()


async def test_without_accounts_any_bind_is_accepted_up_to_max_binds_per_account():
    async with simulator(max_binds_per_account=2) as sim:
        a = await connect(sim, system_id="anyone", password="anything")
        b = await connect(sim, system_id="anyone", password="else", bind="rx")
        with pytest.raises(smppcore.BindError):
            await connect(sim, system_id="anyone", password="x")
        other = await connect(sim, system_id="someone-else", password="")
        for c in (a, b, other):
            await c.unbind()


# ---- latency ------------------------------------------------------------------------------


async def test_fixed_latency_is_a_lower_bound_of_every_response_time():
    async with simulator(submit_latency={"kind": "fixed", "ms": 60}) as sim:
        async with connect(sim) as c:
            loop = asyncio.get_running_loop()
            for _ in range(3):
                t0 = loop.time()
                resp = await c.submit_sm(destination_addr=TO)
                assert loop.time() - t0 >= 0.059
                assert resp.message_id
            # pipelined: each still waits its own latency
            t0 = loop.time()
            times = []
            futures = [await c.send(SubmitSm(destination_addr=TO)) for _ in range(10)]
            for f in futures:
                f.add_done_callback(lambda _f: times.append(loop.time() - t0))
            assert all(r.command_status == 0 for r in await asyncio.gather(*futures))
            assert min(times) >= 0.059


@pytest.mark.parametrize(
    "latency,low",
    [
        ({"kind": "uniform", "min_ms": 20, "max_ms": 40}, 0.019),
        ({"kind": "exponential", "mean_ms": 3, "max_ms": 20}, 0.0),
        ({"kind": "uniform", "min_ms": 0, "max_ms": 5}, 0.0),
    ],
)
async def test_random_latencies_answer_everything(latency, low):
    async with simulator(submit_latency=latency, seed=7) as sim:
        async with connect(sim, window=50) as c:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            responses = await pipeline(c, [SubmitSm(destination_addr=TO) for _ in range(200)])
            assert loop.time() - t0 >= low
            assert [r.command_status for r in responses] == [0] * 200
            assert len({r.message_id for r in responses}) == 200
            assert sim.sim.stats.accepted == 200


# ---- throttling ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["ESME_RTHROTTLED", "ESME_RMSGQFUL"])
async def test_throttle_per_bind_answers_the_configured_status(status):
    async with simulator(throttle={"per_bind": 10, "status": status}) as sim:
        async with connect(sim, window=100) as c:
            got = collections.Counter(r.command_status for r in await pipeline(c, [SubmitSm(destination_addr=TO) for _ in range(60)]))
        # a burst of one second's worth (10) passes, then a few more as tokens come back
        assert 10 <= got[0] <= 30 and got[CommandStatus[status]] == 60 - got[0]
        assert sim.sim.stats.throttled == got[CommandStatus[status]]
        assert sim.sim.stats.rejected == {status: got[CommandStatus[status]]}


async def test_throttle_per_bind_counts_each_bind_separately():
    async with simulator(throttle={"per_bind": 10}) as sim:
        async with connect(sim) as a, connect(sim, system_id="other") as b:
            ra, rb = await asyncio.gather(
                pipeline(a, [SubmitSm(destination_addr=TO) for _ in range(30)]),
                pipeline(b, [SubmitSm(destination_addr=TO) for _ in range(30)]),
            )
        for responses in (ra, rb):
            ok = sum(r.command_status == 0 for r in responses)
            assert 10 <= ok <= 25  # each bind has its own 10/s


async def test_throttle_total_is_shared_by_every_bind():
    async with simulator(throttle={"total": 10}) as sim:
        async with connect(sim) as a, connect(sim, system_id="other") as b:
            ra, rb = await asyncio.gather(
                pipeline(a, [SubmitSm(destination_addr=TO) for _ in range(30)]),
                pipeline(b, [SubmitSm(destination_addr=TO) for _ in range(30)]),
            )
        ok = sum(r.command_status == 0 for r in ra + rb)
        assert 10 <= ok <= 25  # 10/s in all, not per bind
        assert all(r.command_status in (0, CommandStatus.ESME_RTHROTTLED) for r in ra + rb)


# ---- errors ---------------------------------------------------------------------------------


async def _statuses(seed: int | None, n: int = 1000) -> list[int]:
    probabilities = {"ESME_RSYSERR": 0.1, "ESME_RX_T_APPN": 0.05}
    async with simulator(errors={"probabilities": probabilities}, seed=seed) as sim:
        async with connect(sim) as c:
            responses = await pipeline(c, [SubmitSm(destination_addr=TO) for _ in range(n)])
        statuses = [r.command_status for r in responses]
        counts = collections.Counter(statuses)
        assert sim.sim.stats.accepted == counts[0]
        assert sim.sim.stats.rejected == {smppcore.status_name(s): k for s, k in counts.items() if s}
        return statuses


async def test_error_probabilities_roughly_match_and_replay_exactly_with_a_seed():
    first = await _statuses(seed=1234)
    counts = collections.Counter(first)
    assert 65 <= counts[CommandStatus.ESME_RSYSERR] <= 135  # 10% of 1000
    assert 25 <= counts[CommandStatus.ESME_RX_T_APPN] <= 75  # 5%
    assert set(counts) == {0, CommandStatus.ESME_RSYSERR, CommandStatus.ESME_RX_T_APPN}
    assert await _statuses(seed=1234) == first  # the same seed: the same message fails
    assert await _statuses(seed=4321) != first


async def test_destination_rules_reject_on_purpose():
    rules = [
        {"destination": "999$", "status": "ESME_RINVDSTADR"},
        {"destination": "^1555", "status": "0x45"},  # ESME_RSUBMITFAIL, by number
        {"destination": "^44770090088", "status": "ESME_RX_P_APPN", "probability": 0.5},
    ]
    async with simulator(errors={"rules": rules}, seed=3) as sim:
        async with connect(sim) as c:
            with pytest.raises(smppcore.SmppStatusError) as info:
                await c.submit_sm(destination_addr="447700900999")
            assert info.value.command_status == CommandStatus.ESME_RINVDSTADR
            with pytest.raises(smppcore.SmppStatusError) as info:
                await c.submit_sm(destination_addr="15551234")
            assert info.value.command_status == CommandStatus.ESME_RSUBMITFAIL
            assert (await c.submit_sm(destination_addr="447700900123")).message_id
            half = collections.Counter(r.command_status for r in await pipeline(c, [SubmitSm(destination_addr="447700900881") for _ in range(200)]))
            assert 60 <= half[CommandStatus.ESME_RX_P_APPN] <= 140 and half[0] == 200 - half[CommandStatus.ESME_RX_P_APPN]
        assert [m.destination_addr for m in sim.sim.messages][0] == "447700900123"


async def test_fail_next_fails_exactly_the_next_submits():
    for config in ({}, {"submit_latency": {"kind": "fixed", "ms": 1}}):  # fast path and not
        async with simulator(**config) as sim:
            async with connect(sim) as c:
                sim.sim.fail_next("ESME_RX_T_APPN", 2)
                sim.sim.fail_next(0x58)
                statuses = [r.command_status for r in await pipeline(c, [SubmitSm(destination_addr=TO) for _ in range(5)])]
                assert statuses == [CommandStatus.ESME_RX_T_APPN] * 2 + [CommandStatus.ESME_RTHROTTLED, 0, 0]
            with pytest.raises(ValueError):
                sim.sim.fail_next("ESME_NOSUCHTHING")


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


# ---- chaos ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("latency", [None, {"kind": "uniform", "min_ms": 1, "max_ms": 20}])
async def test_drop_after_answers_n_then_closes(latency):
    config = {"chaos": {"drop_after": 3}, "seed": 2}
    if latency:
        config["submit_latency"] = latency
    async with simulator(**config) as sim:
        c = await connect(sim, window=10)
        results = await pipeline(c, [SubmitSm(destination_addr=TO) for _ in range(6)])
        await asyncio.wait_for(c.closed, 5)
        assert [r.command_status for r in results[:3]] == [0, 0, 0]
        assert all(isinstance(r, smppcore.ConnectionClosed) for r in results[3:])
        assert sim.sim.stats.accepted == 3 and sim.sim.stats.dropped_connections == 1
        # the next connection gets its own N
        async with connect(sim) as again:
            await again.submit_sm(destination_addr=TO)


async def test_drop_probability_closes_with_that_message_unanswered():
    async with simulator(chaos={"drop_probability": 0.2}, seed=11) as sim:
        c = await connect(sim, window=50)
        results = await pipeline(c, [SubmitSm(destination_addr=TO) for _ in range(50)])
        await asyncio.wait_for(c.closed, 5)
        ok = [r for r in results if not isinstance(r, BaseException)]
        assert ok and len(ok) < 50 and all(r.command_status == 0 for r in ok)
        assert all(isinstance(r, smppcore.ConnectionClosed) for r in results[len(ok):])
        # what the ESME saw accepted is exactly what the simulator accepted
        assert sim.sim.stats.accepted == len(ok) == len(sim.sim.messages)
        assert sim.sim.stats.dropped_connections == 1


async def test_ignore_enquire_link_plays_a_hung_peer():
    async with simulator(chaos={"ignore_enquire_link": True}) as sim:
        cfg = smppcore.SessionConfig(response_timeout=0.3, enquire_link_interval=0)
        c = await connect(sim, config=cfg)
        assert (await c.submit_sm(destination_addr=TO)).message_id  # it still answers submits
        with pytest.raises(smppcore.ResponseTimeout):
            await c.enquire_link()
        await c.unbind(timeout=1)
    async with simulator() as sim:  # and normally it does answer
        async with connect(sim, config=smppcore.SessionConfig(response_timeout=2)) as c:
            await c.enquire_link()


async def test_bind_delay_and_max_binds_counted_after_it():
    async with simulator(chaos={"bind_delay_ms": 150}, accounts=[{"system_id": "a", "password": "p", "max_binds": 1}]) as sim:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        results = await asyncio.gather(connect(sim, system_id="a", password="p"), connect(sim, system_id="a", password="p"),
                                       return_exceptions=True)
        assert loop.time() - t0 >= 0.149
        bound = [r for r in results if isinstance(r, smppcore.Client)]
        refused = [r for r in results if isinstance(r, smppcore.BindError)]
        assert len(bound) == 1 and len(refused) == 1  # not both: the limit is checked when the delay is over
        await bound[0].unbind()


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


# ---- smpplib, an independent client, against the smsc_sync fixture ------------------------------------


def _smpplib_client(smsc_sync):
    import smpplib.client

    client = smpplib.client.Client(smsc_sync.host, smsc_sync.port, timeout=1, allow_unknown_opt_params=True)
    client.connect()
    return client


def _read_until(client, done, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "smpplib: not within the time"
        client.read_once()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


@pytest.mark.smsc(accounts=[{"system_id": "acme", "password": "secret", "bind_types": ["trx"]}])
def test_smpplib_bind_refusals_and_bind(smsc_sync):
    import smpplib.exceptions

    for kw, status in ((dict(system_id="acme", password="wrong"), CommandStatus.ESME_RINVPASWD),
                       (dict(system_id="nobody", password="secret"), CommandStatus.ESME_RINVSYSID)):
        client = _smpplib_client(smsc_sync)
        try:
            with pytest.raises(smpplib.exceptions.PDUError) as info:
                client.bind_transceiver(**kw)
            assert info.value.args[1] == status
        finally:
            client.disconnect()
    client = _smpplib_client(smsc_sync)
    try:
        with pytest.raises(smpplib.exceptions.PDUError) as info:  # acme may bind as a transceiver only
            client.bind_transmitter(system_id="acme", password="secret")
        assert info.value.args[1] == CommandStatus.ESME_RBINDFAIL
        resp = client.bind_transceiver(system_id="acme", password="secret")
        assert resp.status == 0 and _text(resp.system_id) == "smpphub-sim"
        client.unbind()
    finally:
        client.disconnect()
    assert smsc_sync.stats.bind_refused == 3 and smsc_sync.stats.binds == 4


@pytest.mark.smsc(errors={"rules": [{"destination": "999$", "status": "ESME_RINVDSTADR"}]},
                  receipts={"final_states": {"UNDELIV": 1}})
def test_smpplib_submit_receipt_error_rule_and_mo(smsc_sync):
    import smpplib.exceptions

    client = _smpplib_client(smsc_sync)
    sent, received = [], []
    client.set_message_sent_handler(lambda pdu: sent.append(pdu))
    client.set_message_received_handler(lambda pdu: received.append(pdu))
    try:
        client.bind_transceiver(system_id="esme", password="pw")
        # an error rule
        client.send_message(source_addr="Acme", destination_addr="447700900999", short_message=b"refused")
        with pytest.raises(smpplib.exceptions.PDUError) as info:
            _read_until(client, lambda: False)
        assert info.value.args[1] == CommandStatus.ESME_RINVDSTADR
        # a submit and its receipt
        client.send_message(source_addr_ton=5, source_addr="Acme", dest_addr_ton=1, dest_addr_npi=1,
                            destination_addr=TO, short_message=b"via smpplib", registered_delivery=1)
        _read_until(client, lambda: sent and received)
        message_id = _text(sent[0].message_id)
        receipt = received[0]
        assert _text(receipt.receipted_message_id) == message_id
        assert int(receipt.esm_class) == 0x04 and _text(receipt.source_addr) == TO and _text(receipt.destination_addr) == "Acme"
        assert parse_receipt(receipt.short_message).stat == "UNDELIV"
        # an MO, from the network
        smsc_sync.send_mo("447700900777", "12345", "MO to smpplib")
        _read_until(client, lambda: len(received) == 2)
        assert received[1].short_message == b"MO to smpplib" and _text(received[1].source_addr) == "447700900777"
        client.unbind()
    finally:
        client.disconnect()
    (message,) = smsc_sync.wait_for_messages(1)
    assert message.text == "via smpplib" and list(message.message_ids) == [message_id]
    stats = smsc_sync.stats
    assert stats.accepted == 1 and stats.rejected == {"ESME_RINVDSTADR": 1}
    assert stats.receipts_acked == 1 and stats.mo_acked == 1
    assert smsc_sync.submits[0].state == "UNDELIV"


def test_smpplib_fail_next_and_long_text(smsc_sync):
    import smpplib.consts
    import smpplib.exceptions
    import smpplib.gsm

    with pytest.raises(ValueError):
        smsc_sync.fail_next("NOT_A_STATUS")  # raised here, in the test's thread
    smsc_sync.fail_next("ESME_RTHROTTLED")
    client = _smpplib_client(smsc_sync)
    sent = []
    client.set_message_sent_handler(lambda pdu: sent.append(pdu))
    try:
        client.bind_transmitter(system_id="esme", password="pw")
        client.send_message(destination_addr=TO, short_message=b"throttled")
        with pytest.raises(smpplib.exceptions.PDUError) as info:
            _read_until(client, lambda: False)
        assert info.value.args[1] == CommandStatus.ESME_RTHROTTLED
        text = "smpplib splits this long text by itself, with a UDH on each part. " * 4
        parts, coding, esm_class = smpplib.gsm.make_parts(text)
        for part in parts:
            client.send_message(destination_addr=TO, short_message=part, data_coding=coding, esm_class=esm_class)
        _read_until(client, lambda: len(sent) == len(parts))
        client.unbind()
    finally:
        client.disconnect()
    (message,) = smsc_sync.wait_for_messages(1)
    assert message.text == text and message.parts == len(parts) > 1
