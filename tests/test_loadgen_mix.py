"""The load generator's operation mix (submit_sm, submit_multi, data_sm) and source addresses.

What the generator says it sent is checked against what the simulator recorded, PDU by
PDU; receipts are matched per message and handset, so a submit_multi to N
destinations owes N of them. Through the hub (which splits a submit_multi into one
message per destination, numbered id, id.1, id.2, ...) every destination's receipt
comes back and is matched.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from smppcore import CommandId, Tag
from smpphub.bench import cli
from smpphub.bench.loadgen import LoadOptions, run_bench
from smpphub.bench.messages import OPS, AddressPattern, MessagePool, parse_op_mix

HOST = "127.0.0.1"


def _opts(port: int, **kw) -> LoadOptions:
    return LoadOptions(host=HOST, port=port, system_id="lg", password="pw", progress=False, **kw)


def test_op_mix_sends_each_operation_and_counts_submit_multi_per_destination(smsc_sync):
    ops = {"submit_sm": 2, "submit_multi": 1, "data_sm": 1}
    r = run_bench(_opts(smsc_sync.port, count=400, ops=ops, multi_dests=3, mix={"gsm": 3, "long": 1}, dlr=True,
                        receipt_wait=1.0, source="4477{0000-0099}"))
    submits = smsc_sync.submits
    pdus = Counter(s.pdu.command_id for s in submits)
    assert r.sent == len(submits) == sum(pdus.values()) and not r.errors
    assert sum(r.ops.values()) == r.messages == 400 and set(r.ops) == set(OPS)
    assert len(smsc_sync.messages) == 400  # the simulator put every long one back together
    # data_sm carries the whole text in message_payload: one PDU per message, however long
    data = [s.pdu for s in submits if s.pdu.command_id == CommandId.DATA_SM]
    assert len(data) == r.ops["data_sm"] and all(Tag.MESSAGE_PAYLOAD in p.tlvs for p in data)
    multi = [s.pdu for s in submits if s.pdu.command_id == CommandId.SUBMIT_MULTI]
    assert multi and all(len(p.dest_address) == 3 for p in multi)
    assert r.recipients == r.messages + 2 * r.ops["submit_multi"]
    # every accepted PDU owes a receipt, a submit_multi one per destination
    assert r.receipts_expected == r.acked + 2 * len(multi)
    # what the simulator sent is every receipt counted, each matched to its submit
    assert r.receipts == len(smsc_sync.receipts) > 0
    assert r.unmatched_receipts == 0 and r.duplicate_receipts == 0
    assert r.receipt_latency_us["count"] == r.receipts


def test_summary_shows_the_operations_and_recipients(smsc_sync, capsys):
    code = cli.main(["--target", smsc_sync.address, "--system-id", "lg", "--password", "pw", "--quiet", "--count", "60",
                     "--op-mix", "submit_sm:1,submit_multi:1", "--multi-dests", "4", "--from", "4477{0000-9999}"])
    out = capsys.readouterr().out
    assert code == 0
    (ops,) = [line for line in out.splitlines() if line.strip().startswith("operations")]
    assert "submit_multi" in ops and "of 4 destinations" in ops
    (messages,) = [line for line in out.splitlines() if line.strip().startswith("messages")]
    assert messages.split()[1] == "60" and "recipients" in messages


def test_source_patterns_and_files(smsc_sync, tmp_path):
    run_bench(_opts(smsc_sync.port, count=200, source="4477{0000-0009}"))
    sources = Counter((s.pdu.source_addr, s.pdu.source_addr_ton, s.pdu.source_addr_npi) for s in smsc_sync.submits)
    assert {a for a, _, _ in sources} <= {f"4477{i:04d}" for i in range(10)} and len(sources) >= 5
    assert {(ton, npi) for _, ton, npi in sources} == {(1, 1)}  # international, E.164
    smsc_sync.clear()
    senders = tmp_path / "senders.txt"
    senders.write_text("ACME\n\n447700900001\nShop\n")
    run_bench(_opts(smsc_sync.port, count=200, source_file=str(senders)))
    seen = {(s.pdu.source_addr, s.pdu.source_addr_ton) for s in smsc_sync.submits}
    assert seen == {("ACME", 5), ("447700900001", 1), ("Shop", 5)}  # alphanumeric senders get TON 5


def test_pool_draws_operations_by_weight_and_is_seeded():
    a = MessagePool(to="4477{000-999}", to_file=None, mix={"gsm": 1}, source="x", dlr=False, seed=1,
                    ops={"submit_sm": 8, "submit_multi": 1, "data_sm": 1}, multi_dests=5, size=2000)
    b = MessagePool(to="4477{000-999}", to_file=None, mix={"gsm": 1}, source="x", dlr=False, seed=1,
                    ops={"submit_sm": 8, "submit_multi": 1, "data_sm": 1}, multi_dests=5, size=2000)
    assert a.messages == b.messages
    counts = Counter(OPS[op] for _, _, op in a.messages)
    assert 1450 < counts["submit_sm"] < 1750 and 120 < counts["submit_multi"] < 280 and 120 < counts["data_sm"] < 280
    assert {multi for _, multi, op in a.messages if OPS[op] == "submit_multi"} == {5}
    assert {multi for _, multi, op in a.messages if OPS[op] != "submit_multi"} == {0}
    assert parse_op_mix("submit_multi") == {"submit_multi": 1.0}


ADDRESS_ERRORS = [
    ("4477{9-1}", None, "empty range in '4477{9-1}'"),
    ("4477{1-2", None, "bad address pattern '4477{1-2' (expected PREFIX{FROM-TO})"),
    ("44{0-1}{0-1}", None, "bad address pattern"),
    ("4477009001234567890{0-99}", None, "makes addresses longer than 20 characters"),
    ("x" * 21, None, "longer than 20 characters"),
]


@pytest.mark.parametrize("pattern, _, says", ADDRESS_ERRORS, ids=[e[0][:20] for e in ADDRESS_ERRORS])
def test_bad_address_patterns_are_refused(pattern, _, says):
    with pytest.raises(ValueError) as err:
        AddressPattern(pattern)
    assert says in str(err.value)


def test_address_files_are_read_with_a_bound_and_checked(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(ValueError, match="no addresses in it"):
        AddressPattern("", str(empty))
    long = tmp_path / "long.txt"
    long.write_text("447700900123\n" + "9" * 30 + "\n")
    with pytest.raises(ValueError, match="is longer than 20 characters"):
        AddressPattern("", str(long))
    endless = tmp_path / "endless.txt"
    endless.write_text("4" * 5_000_000)  # no line break: read 256 characters, not the whole file
    with pytest.raises(ValueError, match="is longer than 20 characters"):
        AddressPattern("", str(endless))
    ok = tmp_path / "ok.txt"
    ok.write_text("".join(f"4477{i:06d}\n" for i in range(50)))
    p = AddressPattern("", str(ok), random.Random(2))
    assert {p.next() for _ in range(500)} <= {f"4477{i:06d}" for i in range(50)}


# --- through the hub -----------------------------------------------------------------------------


class HubInThread:
    """The hub with one simulated upstream, on a loop of its own (the generator runs its own loop)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.hub, self.sim = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(20)

    async def _start(self):
        from smpphub.pytest_hub import build_configs, hub_config_with
        from smpphub.router.hub import Hub
        from smpphub.simulator.app import start

        sims, hub_dict = build_configs({"accounts": [{"system_id": "lg", "password": "pw"}]})
        sim = await start(sims["smsc"], port=0)
        hub = Hub(hub_config_with(hub_dict, {"smsc": sim.port}))
        await hub.start()
        await hub.wait_ready(10)
        return hub, sim

    @property
    def port(self) -> int:
        return self.hub.servers[0].port

    def close(self) -> None:
        async def stop() -> None:
            await self.hub.stop(timeout=2)
            await self.sim.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def hub_thread() -> Iterator[HubInThread]:
    hub = HubInThread()
    try:
        yield hub
    finally:
        hub.close()


def test_through_the_hub_every_destination_of_a_submit_multi_gets_its_receipt_matched(hub_thread):
    r = run_bench(_opts(hub_thread.port, count=150, ops={"submit_sm": 1, "submit_multi": 1}, multi_dests=3, dlr=True,
                        receipt_wait=10.0))
    assert not r.errors and r.ops["submit_multi"] > 20
    assert r.recipients == r.messages + 2 * r.ops["submit_multi"]
    assert r.receipts == r.receipts_expected == r.recipients  # every handset's receipt, none left over
    assert r.unmatched_receipts == 0 and r.duplicate_receipts == 0
    assert r.receipt_latency_us["count"] == r.receipts
