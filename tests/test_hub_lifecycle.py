"""The message lifecycle through a real hub (issue #13): long messages keep one route,
receipts in every shape reach the ESME with the hub's id, unmatched and duplicate
receipts are handled, and scheduling, validity, cancel and restarts do what the
lifecycle says.

Upstreams are simulators (tests/hubkit.py) or, where a receipt must be crafted by
hand, a small SMSC on :func:`smppcore.serve` (:class:`CraftedSmsc`). Everything binds
127.0.0.1 on free ports; waits are on events or bounded polls.
"""

from __future__ import annotations

import asyncio
import collections
import random

import pytest
import structlog
from hubkit import hub_config, running_hub, simulator, wait_until
from netkit import free_port

import smppcore
from smppcore import CommandId, CommandStatus, DataCoding, DeliverSm, EsmClass, MessageState, SubmitSm
from smppcore.concat import concat_info
from smppcore.receipt import build_receipt, is_receipt, receipt_info, receipt_text
from smppcore.text import split_text
from smpphub.router.hub import open_store
from smpphub.router.lifecycle import State
from smpphub.simulator.app import RunningSimulator

HOST = "127.0.0.1"

# ---- long messages: one SMSC per message ------------------------------------------------------

LONG_MESSAGES = 1000
#: (method, ref_bits) taken in turn: UDH with an 8-bit reference, UDH with a 16-bit one, SAR TLVs
SPLITS = (("udh", 8), ("udh", 16), ("sar", 16))


class LongMessage:
    """One long message as the ESME sent it: its segments and how they are told apart upstream."""

    __slots__ = ("destination", "ref_bits", "reference", "segments")

    def __init__(self, destination: str, ref_bits: int, reference: int, segments: list[SubmitSm]) -> None:
        self.destination = destination
        self.ref_bits = ref_bits
        self.reference = reference
        self.segments = segments

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.destination, self.ref_bits, self.reference)


def long_messages(n: int, rng: random.Random) -> list[LongMessage]:
    """``n`` messages of 2 to 4 segments each, to distinct destinations, split three ways in turn."""
    messages = []
    for i in range(n):
        method, bits = SPLITS[i % len(SPLITS)]
        parts = 2 + i % 3
        # 153 GSM septets fit a segment beside an 8-bit UDH (152 beside a 16-bit one, 153 with SAR):
        # the length below needs exactly ``parts`` segments whichever way it is split
        text = (f"message {i:04d} " * 80)[: 152 * (parts - 1) + 40]
        reference = rng.randrange(1 << bits)
        destination = f"4477{i:08d}"
        segments = [
            SubmitSm(destination_addr=destination, source_addr="Acme", short_message=seg.short_message,
                     data_coding=seg.data_coding, esm_class=seg.esm_class, tlvs=dict(seg.tlvs))
            for seg in split_text(text, method=method, reference=reference, ref_bits=bits)
        ]
        assert len(segments) == parts
        messages.append(LongMessage(destination, bits, reference, segments))
    return messages


async def submit_pipelined(client: smppcore.Client, messages: list[LongMessage]) -> None:
    """Every segment of every message, keeping the client's window full; all must be accepted."""
    futures = [await client.send(seg) for m in messages for seg in m.segments]
    statuses = collections.Counter(r.command_status for r in await asyncio.gather(*futures))
    assert statuses == {0: len(futures)}


def segments_by_message(smscs: dict[str, RunningSimulator]) -> dict[tuple[str, int, int], dict[str, list[int]]]:
    """(destination, ref bits, reference) -> SMSC name -> the segment numbers it received."""
    seen: dict[tuple[str, int, int], dict[str, list[int]]] = collections.defaultdict(
        lambda: collections.defaultdict(list))
    for name, smsc in smscs.items():
        for record in smsc.sim.submits:
            info = concat_info(record.pdu)
            assert info is not None, "a segment lost its concatenation info on the way"
            seen[(record.pdu.destination_addr, info.ref_bits, info.reference)][name].append(info.seq)
    return seen


def where_each_message_went(messages: list[LongMessage],
                            smscs: dict[str, RunningSimulator]) -> collections.Counter[str]:
    """How many messages each SMSC got whole; fails on any message split between SMSCs or incomplete."""
    seen = segments_by_message(smscs)
    assert set(seen) == {m.key for m in messages}
    split = {key: dict(per_smsc) for key, per_smsc in seen.items() if len(per_smsc) != 1}
    assert not split, f"{len(split)} messages split between SMSCs, e.g. {next(iter(split.items()))}"
    per_smsc: collections.Counter[str] = collections.Counter()
    for m in messages:
        ((name, seqs),) = seen[m.key].items()
        assert sorted(seqs) == list(range(1, len(m.segments) + 1)), f"{m.key} reached {name} as segments {seqs}"
        per_smsc[name] += 1
    return per_smsc


def total_segments(messages: list[LongMessage]) -> int:
    return sum(len(m.segments) for m in messages)


async def test_long_messages_over_a_weighted_route_keep_one_smsc_each(smscs):
    messages = long_messages(LONG_MESSAGES, random.Random(13))
    config = hub_config(smscs, [{"prefix": "44", "weights": {"a": 1, "b": 1}}])
    async with running_hub(config) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw", window=400) as esme:
            await submit_pipelined(esme, messages)
        want = total_segments(messages)
        await wait_until(lambda: sum(len(s.sim.submits) for s in smscs.values()) >= want, what="every segment upstream")
    per_smsc = where_each_message_went(messages, smscs)
    assert sum(per_smsc.values()) == LONG_MESSAGES
    assert sum(len(s.sim.submits) for s in smscs.values()) == total_segments(messages)  # none sent twice
    # a fair coin per message: 1,000 tosses land 400..600 on each side except once in ~10^10
    assert 400 <= per_smsc["a"] <= 600 and per_smsc["a"] + per_smsc["b"] == LONG_MESSAGES


async def test_long_messages_a_primary_refuses_fail_over_whole():
    # a answers ESME_RSYSERR (temporary) for every fifth destination: those messages, every
    # segment of them, fail over to b together; the others stay on a
    a = await simulator(errors={"rules": [{"destination": "[05]$", "status": "ESME_RSYSERR"}]})
    b = await simulator()
    smscs = {"a": a, "b": b}
    try:
        messages = long_messages(LONG_MESSAGES, random.Random(31))
        config = hub_config(smscs, [{"prefix": "44", "upstreams": ["a", "b"]}])
        config.upstreams[0].max_attempts = 1  # one temporary error on a: fail over to b at once
        async with running_hub(config) as hub:
            async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw", window=400) as esme:
                await submit_pipelined(esme, messages)
            # the hub's count, not the simulators' records: a submit is recorded there before the hub
            # has read its submit_sm_resp
            await wait_until(lambda: hub.status()["counters"].get("sent", 0) >= total_segments(messages),
                             what="every segment accepted upstream")
            counters = hub.status()["counters"]
        per_smsc = where_each_message_went(messages, smscs)
        refused = [m for m in messages if m.destination[-1] in "05"]
        assert per_smsc == {"a": LONG_MESSAGES - len(refused), "b": len(refused)}
        assert {key for key, got in segments_by_message({"b": b}).items()} == {m.key for m in refused}
        # each refused message tried a with at least one segment; one still waiting for a when a sibling
        # was refused follows it to b without trying a (how many do depends on when the answers come)
        rejected = a.sim.stats.rejected.get("ESME_RSYSERR", 0)
        assert set(a.sim.stats.rejected) <= {"ESME_RSYSERR"} and len(refused) <= rejected <= total_segments(refused)
        assert counters["temporary_failures"] == rejected
        assert counters["sent"] == total_segments(messages)
    finally:
        await a.close()
        await b.close()


class RefuseSegment:
    """A refusal rule for :class:`CraftedSmsc`: segment ``seq`` of messages to destinations ending in
    ``digit`` is refused with ``status`` its first ``times`` times (every time when None)."""

    def __init__(self, seq: int, digit: str, status: int, times: int | None = None) -> None:
        self.seq = seq
        self.digit = digit
        self.status = status
        self.times = times
        self.refused: collections.Counter[tuple[str, int]] = collections.Counter()

    def __call__(self, pdu: SubmitSm) -> int:
        info = concat_info(pdu)
        if info is None or info.seq != self.seq or not pdu.destination_addr.endswith(self.digit):
            return 0
        key = (pdu.destination_addr, info.reference)
        if self.times is not None and self.refused[key] >= self.times:
            return 0
        self.refused[key] += 1
        return self.status


async def test_long_messages_stay_whole_when_a_segment_is_refused_for_a_while():
    # a accepts segment 1, then refuses segment 2 twice (temporary) for every tenth message; a's own
    # max_attempts (1) would fail that segment over at once, but its sibling is with a: it stays
    a = await CraftedSmsc.start(refuse=RefuseSegment(2, "7", CommandStatus.ESME_RSYSERR, times=2))
    b = await CraftedSmsc.start()
    try:
        messages = long_messages(200, random.Random(7))
        config = hub_config({"a": a.port, "b": b.port}, [{"prefix": "44", "upstreams": ["a", "b"]}])
        config.upstreams[0].max_attempts = 1
        async with running_hub(config) as hub:
            async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw", window=400) as esme:
                await submit_pipelined(esme, messages)
            await wait_until(lambda: hub.status()["counters"].get("sent", 0) >= total_segments(messages),
                             what="every segment accepted upstream")
        where = crafted_segments_by_message({"a": a, "b": b})
        assert [key for key, smscs in where.items() if len(smscs) > 1] == []
        assert b.submits == [] and len(a.submits) == total_segments(messages)
        refused = a.refuse.refused if a.refuse is not None else {}
        assert refused and set(refused.values()) == {2}  # the rule did bite, twice per message
    finally:
        await a.close()
        await b.close()


async def test_a_long_message_splits_only_when_its_upstream_keeps_refusing_past_pinned_attempts():
    # a refuses segment 2 of every tenth message every time: after pinned_attempts (3) that segment
    # fails over to b, the last resort; every other message stays whole with a
    a = await CraftedSmsc.start(refuse=RefuseSegment(2, "7", CommandStatus.ESME_RSYSERR))
    b = await CraftedSmsc.start()
    try:
        messages = long_messages(200, random.Random(11))
        config = hub_config({"a": a.port, "b": b.port}, [{"prefix": "44", "upstreams": ["a", "b"]}],
                            pinned_attempts=3)
        config.upstreams[0].max_attempts = 1
        async with running_hub(config) as hub:
            async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw", window=400) as esme:
                await submit_pipelined(esme, messages)
            await wait_until(lambda: hub.status()["counters"].get("sent", 0) >= total_segments(messages),
                             what="every segment accepted upstream")
        where = crafted_segments_by_message({"a": a, "b": b})
        split = {key for key, smscs in where.items() if len(smscs) > 1}
        refused = a.refuse.refused if a.refuse is not None else {}
        assert split == {key for key in where if (key[0], key[2]) in refused}
        assert split and set(refused.values()) == {3}  # each tried pinned_attempts times on a
        assert len(a.submits) + len(b.submits) == total_segments(messages)  # each segment accepted once
    finally:
        await a.close()
        await b.close()


def crafted_segments_by_message(smscs: dict[str, CraftedSmsc]) -> dict[tuple[str, int, int], set[str]]:
    seen: dict[tuple[str, int, int], set[str]] = collections.defaultdict(set)
    for name, smsc in smscs.items():
        for pdu in smsc.submits:
            info = concat_info(pdu)
            assert info is not None
            seen[(pdu.destination_addr, info.ref_bits, info.reference)].add(name)
    return seen


# ---- an SMSC whose receipts the test writes ---------------------------------------------------------


class CraftedSmsc(smppcore.SmscHandler):
    """An SMSC on :func:`smppcore.serve`: accepts binds, answers submit_sm with ``up-N``
    (or the status ``refuse`` gives), records what it accepted, and sends whatever
    deliver_sm the test crafts to the hub (:meth:`deliver`)."""

    system_id = "crafted"

    def __init__(self, refuse: RefuseSegment | None = None) -> None:
        super().__init__()
        self.refuse = refuse
        self.submits: list[SubmitSm] = []
        self.ids: list[str] = []
        self.conns: list[smppcore.SmscConnection] = []
        self.server: smppcore.Server | None = None

    @classmethod
    async def start(cls, refuse: RefuseSegment | None = None) -> CraftedSmsc:
        smsc = cls(refuse)
        smsc.server = await smppcore.serve(smsc, HOST, 0)
        return smsc

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close(timeout=1.0)

    def bound(self, conn: smppcore.SmscConnection) -> None:
        self.conns.append(conn)

    def closed(self, conn: smppcore.SmscConnection) -> None:
        if conn in self.conns:
            self.conns.remove(conn)

    def handle(self, conn: smppcore.SmscConnection, pdu: smppcore.Pdu) -> smppcore.Pdu | None:
        if pdu.command_id != CommandId.SUBMIT_SM:
            return super().handle(conn, pdu)
        status = self.refuse(pdu) if self.refuse is not None else 0
        if status:
            return pdu.make_response(command_status=status)
        self.submits.append(pdu)
        self.ids.append(f"up-{len(self.submits)}")
        return pdu.make_response(message_id=self.ids[-1])

    async def deliver(self, pdu: smppcore.Pdu) -> smppcore.Pdu:
        """Send ``pdu`` to the hub on its bind; the hub's deliver_sm_resp (any status)."""
        return await (await self.conns[0].send(pdu))


def appendix_b(message_id: str, stat: str = "DELIVRD") -> str:
    return (f"id:{message_id} sub:001 dlvrd:001 submit date:2611250800 done date:2611250801 "
            f"stat:{stat} err:000 text:hello")


def crafted_receipt(submit: SubmitSm, text: bytes, *, esm_class: int, data_coding: int) -> DeliverSm:
    """A receipt for ``submit`` carrying only ``text``: no receipted_message_id, no message_state."""
    return DeliverSm(source_addr=submit.destination_addr, destination_addr=submit.source_addr, esm_class=esm_class,
                     data_coding=data_coding, short_message=text)


@pytest.fixture
async def crafted():
    smsc = await CraftedSmsc.start()
    yield smsc
    await smsc.close()


async def submit_one(hub, crafted: CraftedSmsc, esme: smppcore.Client, destination: str) -> tuple[str, SubmitSm]:
    """Submit a message asking for a receipt; its hub id and the submit_sm the SMSC got."""
    resp = await esme.submit_sm(destination_addr=destination, source_addr="Acme", short_message=b"hello",
                                registered_delivery=1)
    await wait_until(lambda: crafted.submits and hub.status()["counters"].get("sent", 0) >= len(crafted.submits),
                     what="submit accepted upstream")
    return resp.message_id, crafted.submits[-1]


@pytest.mark.parametrize(
    ("esm_class", "data_coding", "encoding"),
    [
        pytest.param(EsmClass.TYPE_DELIVERY_RECEIPT, DataCoding.UCS2, "utf-16-be", id="ucs2-without-tlvs"),
        pytest.param(0, DataCoding.SMSC_DEFAULT, "ascii", id="esm-class-0-appendix-b"),
        pytest.param(0, DataCoding.UCS2, "utf-16-be", id="esm-class-0-ucs2"),
    ],
)
async def test_receipt_without_tlvs_reaches_the_esme_with_the_hub_id(crafted, esm_class, data_coding, encoding):
    config = hub_config({"c": crafted.port}, [{"prefix": "44", "upstreams": ["c"]}])
    async with running_hub(config) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as esme:
            hub_id, submit = await submit_one(hub, crafted, esme, "447700900001")
            text = appendix_b(crafted.ids[-1]).encode(encoding)
            answer = await crafted.deliver(crafted_receipt(submit, text, esm_class=esm_class, data_coding=data_coding))
            assert answer.command_status == CommandStatus.ESME_ROK
            got = await esme.next_message(timeout=5)
            info = receipt_info(got)
            assert info is not None and info.message_id == hub_id
            assert info.state == MessageState.DELIVERED
            assert is_receipt(got)
            assert crafted.ids[-1] not in receipt_text(got)  # the upstream's id is gone from the text too
            assert hub.status()["counters"]["delivered"] == 1
            assert hub.status()["receipts_unmatched"] == []


async def test_unmatched_receipt_is_acked_kept_and_logged(crafted):
    config = hub_config({"c": crafted.port}, [{"prefix": "44", "upstreams": ["c"]}])
    async with running_hub(config) as hub:
        with structlog.testing.capture_logs() as logs:
            receipt = build_receipt(message_id="nobody-sent-this", state=MessageState.DELIVERED, source_addr="Acme",
                                    destination_addr="447700900001", submit_date=None, done_date=None)
            answer = await crafted.deliver(receipt)
        assert answer.command_status == CommandStatus.ESME_ROK
        status = hub.status()
        assert [(r["upstream"], r["message_id"], r["state"]) for r in status["receipts_unmatched"]] == \
            [("c", "nobody-sent-this", "DELIVERED")]
        assert status["counters"]["receipts_unmatched"] == 1
        assert status["deliveries_pending"] == 0
    events = [e for e in logs if e["event"] == "receipt_unmatched"]
    assert len(events) == 1
    assert events[0]["upstream"] == "c" and events[0]["upstream_id"] == "nobody-sent-this"


async def test_duplicate_final_receipt_is_acked_and_forwarded_once(crafted):
    config = hub_config({"c": crafted.port}, [{"prefix": "44", "upstreams": ["c"]}])
    async with running_hub(config) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as esme:
            first_id, first = await submit_one(hub, crafted, esme, "447700900001")
            first_upstream = crafted.ids[-1]
            second_id, second = await submit_one(hub, crafted, esme, "447700900002")
            second_upstream = crafted.ids[-1]

            def receipt_for(submit: SubmitSm, upstream_id: str) -> DeliverSm:
                return build_receipt(message_id=upstream_id, state=MessageState.DELIVERED,
                                     source_addr=submit.source_addr, destination_addr=submit.destination_addr,
                                     submit_date=None, done_date=None)

            assert (await crafted.deliver(receipt_for(first, first_upstream))).command_status == 0
            assert receipt_info(await esme.next_message(timeout=5)).message_id == first_id
            assert (await crafted.deliver(receipt_for(first, first_upstream))).command_status == 0  # again
            assert hub.status()["counters"]["receipts_duplicate"] == 1
            # the next thing the ESME gets is the second message's receipt: the duplicate never came
            assert (await crafted.deliver(receipt_for(second, second_upstream))).command_status == 0
            assert receipt_info(await esme.next_message(timeout=5)).message_id == second_id
            await wait_until(lambda: hub.deliveries.delivered == 2, what="both receipts acknowledged")
            status = hub.status()
            assert status["counters"]["receipts_in"] == 3  # matched to a message, the duplicate too
            assert status["counters"]["receipts_duplicate"] == 1
            assert status["counters"]["delivered"] == 2
            assert status["receipts_unmatched"] == []


# ---- the lifecycle through a real hub ------------------------------------------------------------


async def test_a_scheduled_message_leaves_at_its_time_not_before(smscs):
    a = smscs["a"]
    config = hub_config({"a": a}, [{"prefix": "44", "upstreams": ["a"]}])
    async with running_hub(config) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as esme:
            resp = await esme.submit_sm(destination_addr="447700900001", short_message=b"later",
                                        schedule_delivery_time="000000000001000R")  # in one second
            row = hub.dispatcher.table.get(resp.message_id)
            assert row is not None and row.state is State.SCHEDULED
            due = row.due
            assert len(a.sim.submits) == 0
            await wait_until(lambda: len(a.sim.submits) == 1, timeout=5, what="sent when due")
            assert a.sim.submits[0].received_at >= due
            assert len(a.sim.submits) == 1


async def test_validity_running_out_while_the_upstream_is_down_gives_an_expired_receipt(smscs):
    a = smscs["a"]
    config = hub_config({"a": a}, [{"prefix": "44", "upstreams": ["a"]}])
    async with running_hub(config) as hub:
        await a.close()  # the only upstream goes away
        await wait_until(lambda: not hub.dispatcher.pools["a"].available, what="upstream seen down")
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as esme:
            resp = await esme.submit_sm(destination_addr="447700900001", short_message=b"short-lived",
                                        validity_period="000000000001000R", registered_delivery=1)
            info = receipt_info(await esme.next_message(timeout=5))
            assert info.message_id == resp.message_id and info.state == MessageState.EXPIRED
            query = await esme.request(smppcore.QuerySm(message_id=resp.message_id))
            assert query.message_state == MessageState.EXPIRED
        assert hub.status()["counters"]["expired"] == 1
    assert len(a.sim.submits) == 0


async def test_a_cancelled_message_is_never_sent_when_its_upstream_comes_back():
    port = free_port()
    config = hub_config({"later": port}, [{"prefix": "44", "upstreams": ["later"]}])
    async with running_hub(config, wait=False) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as esme:
            cancelled = await esme.submit_sm(destination_addr="447700900001", short_message=b"cancelled")
            kept = await esme.submit_sm(destination_addr="447700900002", short_message=b"kept")
            await esme.request(smppcore.CancelSm(message_id=cancelled.message_id))
            query = await esme.request(smppcore.QuerySm(message_id=cancelled.message_id))
            assert query.message_state == MessageState.DELETED
            smsc = await simulator(listen=f"{HOST}:{port}")
            try:
                # both waited for the same upstream: once the kept one is there, the cancelled one had its chance
                await wait_until(lambda: len(smsc.sim.submits) >= 1, what="the kept message sent")
                await wait_until(lambda: hub.status()["counters"].get("sent", 0) == 1, what="its answer back")
                assert [s.pdu.short_message for s in smsc.sim.submits] == [b"kept"]
                query = await esme.request(smppcore.QuerySm(message_id=kept.message_id))
                assert query.message_state == MessageState.ENROUTE
                assert (await esme.request(smppcore.QuerySm(message_id=cancelled.message_id))).message_state \
                    == MessageState.DELETED
            finally:
                await smsc.close()


async def test_a_restart_sends_what_was_queued_and_delivers_the_receipts_owed(smscs, tmp_path):
    live = smscs["a"]
    later_port = free_port()
    config = hub_config({"live": live, "later": later_port},
                        [{"prefix": "44", "upstreams": ["live"]}, {"prefix": "33", "upstreams": ["later"]}],
                        store={"backend": "sqlite", "path": str(tmp_path / "hub.db")})
    # first run: receipts come back for the 44 messages while no receiver is bound (owed);
    # the 33 messages wait for an upstream that is not there
    async with running_hub(config, store=open_store(config), wait=False) as hub:
        await wait_until(lambda: hub.dispatcher.pools["live"].available, what="live upstream bound")
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw", bind="tx") as tx:
            owed = [(await tx.submit_sm(destination_addr=f"4477009{i:05d}", short_message=f"owed{i}".encode(),
                                        registered_delivery=1)).message_id for i in range(5)]
            queued = [(await tx.submit_sm(destination_addr=f"3361234{i:04d}", short_message=f"queued{i}".encode(),
                                          registered_delivery=1)).message_id for i in range(5)]
        await wait_until(lambda: hub.deliveries.pending("acme") == 5, what="five receipts held for acme")
        assert hub.status()["parked"] == 5
    assert len(live.sim.submits) == 5
    # second run, same SQLite file; the missing upstream is there now
    later = await simulator(listen=f"{HOST}:{later_port}")
    try:
        async with running_hub(config, store=open_store(config)) as hub:
            async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw", bind="rx") as rx:
                got = collections.Counter()
                for _ in range(10):
                    info = receipt_info(await rx.next_message(timeout=5))
                    assert info.state == MessageState.DELIVERED
                    got[info.message_id] += 1
                assert got == collections.Counter(owed + queued)
                await wait_until(lambda: hub.deliveries.pending("acme") == 0, what="every receipt acknowledged")
        assert sorted(s.pdu.short_message for s in later.sim.submits) == [f"queued{i}".encode() for i in range(5)]
        assert len(live.sim.submits) == 5  # nothing sent twice
    finally:
        await later.close()
