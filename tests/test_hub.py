"""The hub end to end over loopback: ESMEs -> hub -> simulated SMSCs, and back."""

from __future__ import annotations

import asyncio
import collections

import pytest
from hubkit import hub_config, running_hub, simulator, wait_until

import smppcore
from smppcore import CommandStatus, MessageState, SubmitSm
from smpphub.router.lifecycle import State
from smppcore.receipt import receipt_info

HOST = "127.0.0.1"


@pytest.fixture
async def two_smscs():
    uk = await simulator()
    fr = await simulator(receipts={"message_id_format": "hex"})
    yield uk, fr
    await uk.close()
    await fr.close()


async def test_routes_by_prefix_and_receipts_come_back_with_hub_ids(two_smscs):
    uk, fr = two_smscs
    config = hub_config({"uk": uk, "fr": fr}, [{"prefix": "44", "upstreams": ["uk"]}, {"prefix": "33", "upstreams": ["fr"]}])
    async with running_hub(config) as hub:
        port = hub.servers[0].port
        async with smppcore.connect(HOST, port, system_id="acme", password="pw") as acme, \
                smppcore.connect(HOST, port, system_id="beta", password="pw") as beta:
            sent = {}
            for i in range(20):
                client, name = (acme, "acme") if i % 2 else (beta, "beta")
                dest = f"4477009{i:05d}" if i % 3 else f"+3361234{i:04d}"
                resp = await client.submit_sm(destination_addr=dest, short_message=f"m{i}".encode(), registered_delivery=1)
                sent[resp.message_id] = (name, dest)
            assert len(sent) == 20
            await wait_until(lambda: len(uk.sim.messages) + len(fr.sim.messages) == 20, what="all messages upstream")
            assert all(m.destination_addr.startswith("44") for m in uk.sim.messages)
            assert all(m.destination_addr.lstrip("+").startswith("33") for m in fr.sim.messages)
            got = {}
            for client, name in ((acme, "acme"), (beta, "beta")):
                for _ in range(10):
                    info = receipt_info(await client.next_message(timeout=5))
                    got[info.message_id] = name
                    assert info.state == MessageState.DELIVERED
            assert got == {mid: owner for mid, (owner, _) in sent.items()}


async def test_unroutable_destination_is_refused(two_smscs):
    uk, _ = two_smscs
    config = hub_config({"uk": uk}, [{"prefix": "44", "upstreams": ["uk"]}])
    async with running_hub(config) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as c:
            with pytest.raises(smppcore.SmppStatusError) as info:
                await c.submit_sm(destination_addr="4912345678")
            assert info.value.command_status == CommandStatus.ESME_RINVDSTADR


async def test_bind_checks(two_smscs):
    uk, _ = two_smscs
    config = hub_config({"uk": uk}, [{"prefix": "44", "upstreams": ["uk"]}],
                        accounts=[{"system_id": "acme", "password": "pw", "bind_types": ["tx"], "max_binds": 1},
                                  {"system_id": "locked", "password": "pw", "allowed_ips": ["10.0.0.0/8"]}])
    async with running_hub(config) as hub:
        port = hub.servers[0].port
        for kwargs, status in (
            (dict(system_id="acme", password="bad", bind="tx"), CommandStatus.ESME_RINVPASWD),
            # like a wrong password: the answer does not tell which system_ids exist ([security])
            (dict(system_id="nobody", password="pw", bind="tx"), CommandStatus.ESME_RINVPASWD),
            (dict(system_id="acme", password="pw", bind="trx"), CommandStatus.ESME_RINVBNDSTS),
            (dict(system_id="locked", password="pw", bind="tx"), CommandStatus.ESME_RBINDFAIL),
        ):
            with pytest.raises(smppcore.BindError) as info:
                await smppcore.connect(HOST, port, **kwargs)
            assert info.value.command_status == status
        first = await smppcore.connect(HOST, port, system_id="acme", password="pw", bind="tx")
        with pytest.raises(smppcore.BindError):
            await smppcore.connect(HOST, port, system_id="acme", password="pw", bind="tx")
        await first.unbind()


async def test_mo_is_routed_to_the_right_account(two_smscs):
    uk, _ = two_smscs
    config = hub_config({"uk": uk}, [{"prefix": "44", "upstreams": ["uk"]}],
                        mo_routes=[{"prefix": "12345", "account": "beta"}, {"prefix": "777", "account": "acme"}])
    async with running_hub(config) as hub:
        port = hub.servers[0].port
        async with smppcore.connect(HOST, port, system_id="acme", password="pw", bind="rx") as acme, \
                smppcore.connect(HOST, port, system_id="beta", password="pw", bind="rx") as beta:
            uk.sim.send_mo("447700900001", "12345", "for beta")
            uk.sim.send_mo("447700900002", "7771", "for acme")
            assert (await beta.next_message(timeout=5)).short_message == b"for beta"
            assert (await acme.next_message(timeout=5)).short_message == b"for acme"
            await wait_until(lambda: uk.sim.stats.mo_acked == 2, what="MO acknowledged upstream")


async def test_receipt_held_until_the_esme_binds_a_receiver(two_smscs):
    uk, _ = two_smscs
    config = hub_config({"uk": uk}, [{"prefix": "44", "upstreams": ["uk"]}])
    async with running_hub(config) as hub:
        port = hub.servers[0].port
        async with smppcore.connect(HOST, port, system_id="acme", password="pw", bind="tx") as tx:
            resp = await tx.submit_sm(destination_addr="447700900123", short_message=b"x", registered_delivery=1)
        await wait_until(lambda: hub.deliveries.pending("acme") == 1, what="receipt held")
        async with smppcore.connect(HOST, port, system_id="acme", password="pw", bind="rx") as rx:
            info = receipt_info(await rx.next_message(timeout=5))
            assert info.message_id == resp.message_id
        await wait_until(lambda: hub.deliveries.pending("acme") == 0, what="receipt acknowledged")


async def test_held_receipt_expires(two_smscs):
    uk, _ = two_smscs
    config = hub_config({"uk": uk}, [{"prefix": "44", "upstreams": ["uk"]}],
                        accounts=[{"system_id": "acme", "password": "pw", "receipt_hold": 0.05}])
    async with running_hub(config) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw", bind="tx") as tx:
            await tx.submit_sm(destination_addr="447700900123", short_message=b"x", registered_delivery=1)
        await wait_until(lambda: hub.deliveries.pending("acme") == 1, what="receipt held")
        await asyncio.sleep(0.06)  # let the hold time pass (the clock is the subject here)
        assert hub.deliveries.sweep() == 1
        assert hub.deliveries.pending("acme") == 0
        assert not await hub.store.pending_deliveries("acme")


async def test_account_throttling(two_smscs):
    uk, _ = two_smscs
    config = hub_config({"uk": uk}, [{"prefix": "44", "upstreams": ["uk"]}],
                        accounts=[{"system_id": "acme", "password": "pw", "max_rate": 5}])
    async with running_hub(config) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as c:
            futures = [await c.send(SubmitSm(destination_addr="447700900123")) for _ in range(30)]
            statuses = collections.Counter(r.command_status for r in await asyncio.gather(*futures))
            assert statuses[CommandStatus.ESME_RTHROTTLED] >= 20
            assert 1 <= statuses[0] <= 10


async def test_upstream_rate_cap_queues_instead_of_rejecting(two_smscs):
    uk, _ = two_smscs
    config = hub_config({"uk": uk}, [{"prefix": "44", "upstreams": ["uk"]}])
    config.upstreams[0].max_rate = 50.0
    async with running_hub(config) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as c:
            loop = asyncio.get_running_loop()
            started = loop.time()
            futures = [await c.send(SubmitSm(destination_addr="447700900123")) for _ in range(40)]
            assert all(r.command_status == 0 for r in await asyncio.gather(*futures))
            await wait_until(lambda: len(uk.sim.messages) == 40, what="all 40 sent upstream")
            # 40 messages at 50/s with a 5-message burst cannot take less than 0.7 s
            assert loop.time() - started >= 0.6


async def test_failover_and_return(two_smscs):
    primary, backup = two_smscs
    port = primary.port
    config = hub_config({"primary": primary, "backup": backup}, [{"prefix": "44", "upstreams": ["primary", "backup"]}])
    async with running_hub(config) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as c:
            async def send(n, start):
                futs = [await c.send(SubmitSm(destination_addr=f"4477{start + i:08d}", short_message=b"x")) for i in range(n)]
                return [r.message_id for r in await asyncio.gather(*futs)]

            await send(10, 0)
            await wait_until(lambda: len(primary.sim.messages) == 10, what="first batch on primary")
            await primary.close()  # the primary SMSC dies
            await wait_until(lambda: not hub.dispatcher.pools["primary"].available, what="primary seen down")
            await send(10, 10)
            await wait_until(lambda: len(backup.sim.messages) == 10, what="second batch failed over")
            revived = await simulator(listen=f"127.0.0.1:{port}")
            try:
                await wait_until(lambda: hub.dispatcher.pools["primary"].available, what="primary back")
                await send(10, 20)
                await wait_until(lambda: len(revived.sim.messages) == 10, what="traffic back on primary")
                handset = [m.destination_addr for m in [*primary.sim.messages, *backup.sim.messages, *revived.sim.messages]]
                # every message reached an SMSC; duplicates are allowed only for messages in flight when the
                # primary died, and here the first batch was complete before it did
                assert sorted(set(handset)) == [f"4477{i:08d}" for i in range(30)]
                assert len(handset) == 30
            finally:
                await revived.close()


async def test_temporary_errors_retry_then_fail_over_and_permanent_errors_give_a_failed_receipt():
    flaky = await simulator(errors={"probabilities": {"ESME_RTHROTTLED": 1.0}})
    good = await simulator()
    try:
        config = hub_config({"flaky": flaky, "good": good}, [{"prefix": "44", "upstreams": ["flaky", "good"]},
                                                            {"prefix": "49", "upstreams": ["good"]}])
        async with running_hub(config) as hub:
            async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as c:
                await c.submit_sm(destination_addr="447700900001", short_message=b"retry me")
                await wait_until(lambda: len(good.sim.messages) == 1, what="failed over after retries")
                assert flaky.sim.stats.submits == config.upstreams[0].max_attempts
                good.sim.fail_next("ESME_RINVDSTADR")
                resp = await c.submit_sm(destination_addr="491234567", short_message=b"bad", registered_delivery=1)
                info = receipt_info(await c.next_message(timeout=5))
                assert info.message_id == resp.message_id
                assert info.state == MessageState.UNDELIVERABLE
    finally:
        await flaky.close()
        await good.close()


async def test_scheduled_delivery_waits(two_smscs):
    uk, _ = two_smscs
    config = hub_config({"uk": uk}, [{"prefix": "44", "upstreams": ["uk"]}])
    async with running_hub(config) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as c:
            resp = await c.submit_sm(destination_addr="447700900001", schedule_delivery_time="000000000001000R")
            row = hub.dispatcher.table.get(resp.message_id)
            assert row is not None and row.state is State.SCHEDULED and len(uk.sim.messages) == 0
            await wait_until(lambda: len(uk.sim.messages) == 1, timeout=5, what="sent when due")


async def test_expired_while_no_upstream_gives_expired_receipt():
    config = hub_config({"dead": 1}, [{"prefix": "44", "upstreams": ["dead"]}])
    async with running_hub(config, wait=False) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as c:
            resp = await c.submit_sm(destination_addr="447700900001", validity_period="000000000001000R", registered_delivery=1)
            info = receipt_info(await c.next_message(timeout=5))
            assert info.message_id == resp.message_id and info.state == MessageState.EXPIRED


async def test_query_cancel_replace():
    config = hub_config({"dead": 1}, [{"prefix": "44", "upstreams": ["dead"]}])
    async with running_hub(config, wait=False) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as c:
            a = await c.submit_sm(destination_addr="447700900001", short_message=b"old")
            b = await c.submit_sm(destination_addr="447700900002", short_message=b"keep")
            q = await c.request(smppcore.QuerySm(message_id=a.message_id))
            assert q.message_state == MessageState.ENROUTE
            assert (await c.request(smppcore.ReplaceSm(message_id=b.message_id, short_message=b"new"))).command_status == 0
            assert hub.dispatcher.outgoing[b.message_id].pdu.short_message == b"new"
            assert (await c.request(smppcore.CancelSm(message_id=a.message_id))).command_status == 0
            q = await c.request(smppcore.QuerySm(message_id=a.message_id))
            assert q.message_state == MessageState.DELETED and q.final_date
            with pytest.raises(smppcore.SmppStatusError) as info:
                await c.request(smppcore.CancelSm(message_id=a.message_id))
            assert info.value.command_status == CommandStatus.ESME_RCANCELFAIL
            with pytest.raises(smppcore.SmppStatusError) as info:
                await c.request(smppcore.QuerySm(message_id="nope"))
            assert info.value.command_status == CommandStatus.ESME_RQUERYFAIL


async def test_submit_multi_is_expanded(two_smscs):
    uk, _ = two_smscs
    config = hub_config({"uk": uk}, [{"prefix": "44", "upstreams": ["uk"]}])
    async with running_hub(config) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as c:
            dests = [smppcore.DestAddress("447700900001", 1, 1), smppcore.DestAddress("4912345", 1, 1),
                     smppcore.DestAddress("447700900002", 1, 1)]
            resp = await c.request(smppcore.SubmitMulti(dest_address=dests, short_message=b"multi"))
            assert resp.message_id
            assert [u.destination_addr for u in resp.unsuccess_sme] == ["4912345"]
            assert resp.unsuccess_sme[0].error_status_code == CommandStatus.ESME_RINVDSTADR
            await wait_until(lambda: len(uk.sim.messages) == 2, what="both routable destinations sent")


async def test_submit_multi_draws_one_hub_id_per_request(two_smscs):
    """The first accepted destination's message has the resp's id, the one at index i "<id>.<i>";
    one id is drawn per request, none when every destination is refused."""
    uk, _ = two_smscs
    config = hub_config({"uk": uk}, [{"prefix": "44", "upstreams": ["uk"]}])
    async with running_hub(config) as hub:
        ids = hub.handler.ids
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as c:
            dests = [smppcore.DestAddress("4912345", 1, 1), smppcore.DestAddress("447700900001", 1, 1),
                     smppcore.DestAddress("447700900002", 1, 1)]
            drawn = ids.n
            resp = await c.request(smppcore.SubmitMulti(dest_address=dests, short_message=b"multi"))
            assert ids.n == drawn + 1
            expected = {resp.message_id: "447700900001", f"{resp.message_id}.2": "447700900002"}
            for message_id, dest in expected.items():
                row = await hub.store.get(message_id)
                assert row is not None and smppcore.decode(row.pdu).destination_addr == dest
            none_routable = [smppcore.DestAddress("4912345", 1, 1), smppcore.DestAddress("4912346", 1, 1)]
            refused = await c.request(smppcore.SubmitMulti(dest_address=none_routable, short_message=b"multi"))
            assert refused.message_id == "" and len(refused.unsuccess_sme) == 2
            assert ids.n == drawn + 1
            await wait_until(lambda: len(uk.sim.messages) == 2, what="both routable destinations sent")


async def test_long_message_passes_through_with_udh(two_smscs):
    uk, _ = two_smscs
    config = hub_config({"uk": uk}, [{"prefix": "44", "upstreams": ["uk"]}])
    async with running_hub(config) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as c:
            text = "A long message that needs several parts. " * 10
            await c.submit_text("447700900001", text)
            messages = await uk.sim.wait_for_messages(1)
            assert messages[0].text == text and messages[0].parts == 3


async def test_reload_changes_routes_without_dropping_binds(two_smscs):
    uk, fr = two_smscs
    config = hub_config({"uk": uk, "fr": fr}, [{"prefix": "44", "upstreams": ["uk"]}])
    async with running_hub(config) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as c:
            await c.submit_sm(destination_addr="447700900001")
            hub.reload(hub_config({"uk": uk, "fr": fr}, [{"prefix": "44", "upstreams": ["fr"]}]))
            await c.submit_sm(destination_addr="447700900002")
            await wait_until(lambda: len(uk.sim.messages) == 1 and len(fr.sim.messages) == 1, what="second message on new route")
            assert c.is_open


async def test_smpplib_esme_through_the_hub(two_smscs):
    """An independent client (smpplib, synchronous, in a thread) binds to the hub, submits, gets the receipt."""
    import smpplib.client

    uk, _ = two_smscs
    result: dict = {}
    config = hub_config({"uk": uk}, [{"prefix": "44", "upstreams": ["uk"]}])
    async with running_hub(config) as hub:
        port = hub.servers[0].port

        def esme():
            client = smpplib.client.Client(HOST, port, allow_unknown_opt_params=True)
            receipts, sent = [], []
            client.set_message_received_handler(lambda pdu: receipts.append(pdu))
            client.set_message_sent_handler(lambda pdu: sent.append(pdu.message_id))
            client.connect()
            try:
                client.bind_transceiver(system_id="acme", password="pw")
                client.send_message(source_addr="Acme", destination_addr="447700900321", short_message=b"via smpplib",
                                    registered_delivery=1)
                while not (sent and receipts):
                    client.read_once()
                client.unbind()
            finally:
                client.disconnect()
            result["sent"] = sent[0]
            result["receipt"] = receipts[0].receipted_message_id

        await asyncio.wait_for(asyncio.to_thread(esme), 20)
    assert uk.sim.messages and uk.sim.messages[0].text == "via smpplib"
    as_text = lambda v: v.decode() if isinstance(v, bytes) else v  # noqa: E731
    assert as_text(result["receipt"]) == as_text(result["sent"])


async def test_stopping_while_a_bind_completes_leaves_no_connection_behind(monkeypatch):
    # asyncio.wait_for (Python 3.11) can return a bind that completes just as its task is
    # cancelled, dropping the cancellation: the link must close that client itself, or
    # stop() waits for a connection nobody will close (the hub never exits)
    from smpphub.router import upstream as upstream_module
    from smpphub.router.config import Upstream

    sim = await simulator()
    try:
        real = await smppcore.connect(HOST, sim.port, system_id="hub", password="x")
        asked = asyncio.Event()

        async def bind_that_ignores_cancellation(*args, **kwargs):
            asked.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                pass  # the bind "completed" as the cancellation came
            return real

        monkeypatch.setattr(upstream_module.smppcore, "connect", bind_that_ignores_cancellation)
        pool = upstream_module.UpstreamPool(Upstream(name="u", host=HOST, port=sim.port, system_id="hub"), IgnoredEvents())
        pool.start()
        await asyncio.wait_for(asked.wait(), 5)
        await asyncio.wait_for(pool.stop(1.0), 5)
        await asyncio.wait_for(real.closed, 5)
        assert pool.links[0].client is None and pool.links_up == 0
    finally:
        await sim.close()


class IgnoredEvents:
    """An UpstreamEvents that does nothing (the pool alone is under test)."""

    def still_for(self, outs, pool) -> list:
        return outs

    def taken(self, outs, pool) -> None:
        pass

    def answered(self, outs, pool, responses) -> None:
        pass

    def unanswered(self, out, pool, error) -> None:
        pass

    def deliver_received(self, pool, pdu) -> int:
        return 0

    def deliver_received_all(self, pool, pdus) -> list[int]:
        return [0] * len(pdus)

    def pool_up(self, pool) -> None:
        pass

    def pool_down(self, pool, left) -> None:
        pass
