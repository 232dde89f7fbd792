"""The SMSC simulator's binds and answers to submits: accounts, latency, throttling, errors and chaos."""

from __future__ import annotations

import asyncio
import collections

import pytest
from hubkit import wait_until
from simkit import TO, connect, pipeline, simulator

import smppcore
from smppcore import CommandStatus, SubmitSm


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
