"""Carrier profiles against ESMEs: our client (with smppcore's receipt matching) and smpplib.

Every profile runs the same script: an ESME submits messages asking for receipts and
matches every receipt to the submit_sm_resp it reports on, the way an ESME should
(smppcore.receipt: tell receipts from MO, read TLVs or text in any coding, compare ids
in the carrier's bases, keep a receipt that overtook its response until the response
comes). The quirk itself is checked on the PDUs too, so a profile that stopped
misbehaving would fail here.
"""

from __future__ import annotations

import asyncio
import collections
import re
from pathlib import Path

import aiosmpplib
import pytest
from hubkit import wait_until
from receiptkit import DEFAULT_N, ReceiptBook, submit_all
from simkit import TO, connect, simulator
from test_simulator_smpplib import _read_until

from smppcore import DataCoding, EsmClass, Pdu, Tag
from smppcore.receipt import normalise_message_id, parse_receipt, receipt_info, receipt_text
from smpphub.simulator.config import ConfigError, config_from_dict
from smpphub.simulator.profiles import PRESETS, Profile, other_base_id
from smpphub.simulator.receipts import DEFAULT_INTERMEDIATE, plan_receipts

N = 60  # messages per profile: ids past 9 and 15 (decimal and hex ids differ in text), past one throttle burst
assert N == DEFAULT_N


# profile -> (ReceiptBook bases, finals per message, intermediates per message, registered_delivery)
EXPECTED = {
    "standard": ((None, None), 1, 0, 1),
    "other-base-ids": ((10, 16), 1, 0, 1),
    "text-only-receipts": ((None, None), 1, 0, 1),
    "ucs2-receipts": ((None, None), 1, 0, 1),
    "unflagged-receipts": ((None, None), 1, 0, 1),
    "receipt-before-response": ((None, None), 1, 0, 1),
    "intermediate-only": ((None, None), 0, 2, 1),
    "duplicate-final": ((None, None), 2, 0, 1),
    "throttle-bursts": ((None, None), 1, 0, 1),
    "silent-enquire-link": ((None, None), 1, 0, 1),
}


def test_every_preset_is_covered_here():
    assert set(EXPECTED) == set(PRESETS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_profile_against_our_client_every_receipt_matched_and_counted(name):
    (submit_base, receipt_base), finals, intermediates, rd = EXPECTED[name]
    book = ReceiptBook(submit_base, receipt_base)
    async with simulator(profile=name, seed=7) as sim:
        async with connect(sim, on_message=book.take) as client:
            ids = await submit_all(client, book, registered_delivery=rd)
            keys = {normalise_message_id(i, base=submit_base) for i in ids}
            assert len(keys) == N
            await wait_until(lambda: sum(book.finals.values()) >= N * finals
                             and sum(book.intermediates.values()) >= N * intermediates
                             and sim.sim.stats.receipts_pending == 0, timeout=10, what=f"{name}: every receipt")
            await wait_until(lambda: sim.sim.stats.receipts_acked == sim.sim.stats.receipts_sent, what="acknowledged")
            if name == "silent-enquire-link":
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(client.enquire_link(), 0.3)
                await client.unbind(timeout=0.2)  # the unanswered enquire_link would hold a polite unbind 5 s
            else:
                assert (await client.enquire_link()).command_status == 0
        # every receipt matched, none left over, none taken for an MO
        assert book.unmatched == 0 and not book.not_receipts
        assert set(book.finals) == (keys if finals else set())
        assert all(count == finals for count in book.finals.values())
        assert set(book.intermediates) == (keys if intermediates else set())
        assert all(count == intermediates for count in book.intermediates.values())
        assert sim.sim.stats.receipts_sent == len(book.pdus) == N * (finals + intermediates)
        if name == "receipt-before-response":
            assert book.early_count == N  # each receipt came before its submit_sm_resp
        elif name != "throttle-bursts":
            assert book.early_count == 0
        if name == "throttle-bursts":
            assert sim.sim.stats.throttled >= 10
        else:
            assert sim.sim.stats.throttled == 0
        check_quirk(name, book.pdus, ids)


def check_quirk(name: str, pdus: list[Pdu], ids: list[str]) -> None:
    """The profile's habit, seen on the receipts themselves."""
    texts = [parse_receipt(receipt_text(p)) for p in pdus]
    assert all(t is not None for t in texts)
    if name == "other-base-ids":
        assert sorted(int(t.id, 16) for t in texts) == sorted(int(i) for i in ids)
        assert {t.id for t in texts} != set(ids)  # "a" for 10, "3c" for 60...
        assert all(p.tlvs[Tag.RECEIPTED_MESSAGE_ID] == t.id for p, t in zip(pdus, texts, strict=True))
    else:
        assert sorted(t.id for t in texts) == sorted(ids * (len(pdus) // len(ids)))
    tlvs_expected = name not in ("text-only-receipts", "ucs2-receipts")
    assert all(bool(p.tlvs) == tlvs_expected for p in pdus)
    coding = DataCoding.UCS2 if name == "ucs2-receipts" else 0
    assert all(p.data_coding == coding for p in pdus)
    if name == "ucs2-receipts":
        assert all(p.short_message.decode("utf-16-be").startswith("id:") for p in pdus)
    types = {p.esm_class for p in pdus}
    if name == "unflagged-receipts":
        assert types == {0}
    elif name == "intermediate-only":
        assert types == {EsmClass.TYPE_INTERMEDIATE_NOTIFICATION}
        assert [t.stat for t in texts[:2]] == list(DEFAULT_INTERMEDIATE)
    else:
        assert types == {EsmClass.TYPE_DELIVERY_RECEIPT}
    if name == "duplicate-final":
        by_id = collections.defaultdict(list)
        for p in pdus:
            by_id[p.tlvs[Tag.RECEIPTED_MESSAGE_ID]].append(p.short_message)
        assert all(len(copies) == 2 and copies[0] == copies[1] for copies in by_id.values())


async def test_intermediate_only_ends_silently_and_query_sm_says_how():
    async with simulator(profile="intermediate-only", receipts={"final_states": {"UNDELIV": 1}}) as sim:
        book = ReceiptBook()
        async with connect(sim, on_message=book.take) as client:
            (message_id,) = await submit_all(client, book, n=1)
            await wait_until(lambda: sim.sim.stats.receipts_pending == 0, what="the silent end")
            from smppcore import QuerySm

            resp = await client.request(QuerySm(message_id=message_id, source_addr="Acme"))
            assert resp.message_state == 5  # UNDELIVERABLE, though no receipt said so
        assert sum(book.finals.values()) == 0 and sum(book.intermediates.values()) == 2


async def test_hex_ids_with_other_base_receipts_come_back_in_decimal():
    book = ReceiptBook(16, 10)
    async with simulator(profile="other-base-ids", receipts={"message_id_format": "hex"}) as sim:
        async with connect(sim, on_message=book.take) as client:
            ids = await submit_all(client, book, n=3)
            await wait_until(lambda: sum(book.finals.values()) == 3, what="three receipts")
    assert sorted(receipt_info(p).message_id for p in book.pdus) == sorted(str(int(i, 16)) for i in ids)


async def test_profiles_per_account_and_per_prefix_longest_prefix_first():
    config = {
        "accounts": [{"system_id": "plain", "password": "pw"},
                     {"system_id": "quirky", "password": "pw", "profile": "unflagged-receipts"}],
        "profiles": {"hexless": {"receipt_id_base": "other", "receipt_tlvs": False}},
        "network": [{"prefix": "4477", "profile": "ucs2-receipts"}, {"prefix": "447700", "profile": "hexless"}],
    }
    async with simulator(**config) as sim:
        seen: dict[tuple[str, str], Pdu] = {}
        for account in ("plain", "quirky"):
            book = ReceiptBook()
            async with connect(sim, system_id=account, on_message=book.take) as client:
                for n, dest in enumerate(("3361234", "447712345", "447700123"), 1):
                    resp = await client.submit_sm(destination_addr=dest, short_message=b"x", registered_delivery=1)
                    await wait_until(lambda: len(book.pdus) == n, what="its receipt")  # noqa: B023 - awaited here
                    pdu = seen[(account, dest)] = book.pdus[-1]
                    assert receipt_info(pdu).message_id in (resp.message_id, other_base_id(resp.message_id, "decimal"))
    assert seen[("plain", "3361234")].esm_class == 4 and seen[("plain", "3361234")].data_coding == 0
    assert seen[("quirky", "3361234")].esm_class == 0  # the account's profile
    for account in ("plain", "quirky"):  # a prefix's profile wins over the account's
        assert seen[(account, "447712345")].data_coding == 8 and seen[(account, "447712345")].esm_class == 4
        hexless = seen[(account, "447700123")]
        assert not hexless.tlvs and hexless.data_coding == 0


def test_plan_receipts_steps():
    steps = plan_receipts(final="DELIVRD", state=2, delay=3.0, registered_delivery=0x11, intermediate=["ENROUTE"],
                          intermediate_always=False, profile=PRESETS["duplicate-final"])
    assert [(s.delay, s.word, s.kind) for s in steps] == [(1.5, "ENROUTE", "intermediate"), (3.0, "DELIVRD", "final"),
                                                          (3.1, "DELIVRD", "copy")]
    steps = plan_receipts(final="DELIVRD", state=2, delay=3.0, registered_delivery=1, intermediate=[],
                          intermediate_always=False, profile=PRESETS["receipt-before-response"])
    assert [(s.delay, s.kind) for s in steps] == [(0.0, "final")]
    steps = plan_receipts(final="DELIVRD", state=2, delay=3.0, registered_delivery=2, intermediate=[],
                          intermediate_always=False, profile=PRESETS["standard"])
    assert [(s.delay, s.kind) for s in steps] == [(3.0, "silent")]  # asked for failures only


@pytest.mark.parametrize(
    "config, message",
    [
        ({"profile": "tmobile"}, "profile: unknown profile 'tmobile' (known: duplicate-final, intermediate-only, "
                                 "other-base-ids, receipt-before-response, silent-enquire-link, standard, "
                                 "text-only-receipts, throttle-bursts, ucs2-receipts, unflagged-receipts)"),
        ({"accounts": [{"system_id": "a", "password": "p", "profile": "x"}]},
         "accounts[0].profile: unknown profile 'x'"),
        ({"network": [{"prefix": "44", "profile": "nope"}]}, "network[0].profile: unknown profile 'nope'"),
        ({"profiles": {"mine": {"receipt_tlvs": False}}, "profile": "mine2"},
         "known: duplicate-final, intermediate-only, mine,"),
        ({"network": [{"prefix": "44", "profile": "silent-enquire-link"}]}, "network[0].profile: profile "
         "'silent-enquire-link' acts on binds (answer_enquire_link), not on messages"),
        ({"profiles": {"standard": {}}}, "profiles.standard: 'standard' is a preset"),
        ({"profiles": {"mine": {"throttle_every": 5, "throttle_burst": 6}}},
         "profiles.mine: throttle_burst (6) is above"),
        ({"profiles": {"mine": {"receipt_colour": "red"}}}, "receipt_colour: unknown key"),
        ({"profiles": {"mine": {"receipt_coding": "ebcdic"}}}, "receipt_coding: invalid enum value 'ebcdic'"),
        ({"profile": "other-base-ids", "receipts": {"message_id_format": "uuid"}},
         "profile: profile 'other-base-ids' writes receipt ids in the other base"),
    ],
)
def test_bad_profile_configuration_is_one_line_naming_it(config, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict(config)
    text = str(info.value)
    assert message in text and "\n" not in text


def test_a_custom_profile_is_typed():
    config = config_from_dict({"profiles": {"legacy": {"receipt_id_base": "other", "throttle_every": 100,
                                                       "throttle_burst": 5}}, "profile": "legacy"})
    assert config.profiles["legacy"] == Profile(receipt_id_base="other", throttle_every=100, throttle_burst=5)


# ---- smpplib, an ESME nobody here wrote ----------------------------------------------------------------


def _smpplib(smsc_sync, events: list):
    import smpplib.client

    client = smpplib.client.Client(smsc_sync.host, smsc_sync.port, timeout=2, allow_unknown_opt_params=True)
    client.set_message_sent_handler(lambda pdu: events.append(("resp", pdu)))
    client.set_message_received_handler(lambda pdu: events.append(("deliver", pdu)))
    client.connect()
    client.bind_transceiver(system_id="esme", password="pw")
    return client


def _b(value) -> bytes:
    return value if isinstance(value, bytes) else (value or "").encode()


SMPPLIB_CASES = ["other-base-ids", "text-only-receipts", "ucs2-receipts", "unflagged-receipts",
                 "receipt-before-response", "duplicate-final", "intermediate-only"]


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.smsc(profile=name)) for name in SMPPLIB_CASES])
def test_profile_through_smpplib(name, smsc_sync):
    events: list = []
    client = _smpplib(smsc_sync, events)
    try:
        n = 12
        for i in range(n):
            client.send_message(source_addr="Acme", destination_addr=TO, short_message=f"m{i}".encode(),
                                registered_delivery=1)
        per_message = 2
        if name != "duplicate-final":
            per_message = 2 if name == "intermediate-only" else 1
        _read_until(client, lambda: sum(1 for kind, _ in events if kind == "resp") == n
                    and sum(1 for kind, _ in events if kind == "deliver") == n * per_message)
        client.unbind()
    finally:
        client.disconnect()
    resp_ids = [_b(p.message_id).decode() for kind, p in events if kind == "resp"]
    delivers = [p for kind, p in events if kind == "deliver"]
    texts = [parse_receipt(_b(p.short_message), int(p.data_coding)) for p in delivers]
    assert all(t is not None for t in texts), "smpplib handed over a receipt text smppcore cannot read"
    if name == "other-base-ids":
        assert sorted(int(t.id, 16) for t in texts) == sorted(int(i) for i in resp_ids)
    else:
        assert sorted({t.id for t in texts}) == sorted(resp_ids)
    if name == "text-only-receipts" or name == "ucs2-receipts":
        assert all(getattr(p, "receipted_message_id", None) in (None, b"", "") for p in delivers)
    if name == "ucs2-receipts":
        assert {int(p.data_coding) for p in delivers} == {8}
    if name == "unflagged-receipts":
        assert {int(p.esm_class) for p in delivers} == {0}
    if name == "intermediate-only":
        assert {int(p.esm_class) for p in delivers} == {0x20}
    if name == "receipt-before-response":  # on the wire, each receipt precedes its message's response
        order = [(kind, _b(p.message_id if kind == "resp" else p.receipted_message_id).decode()) for kind, p in events]
        for message_id in resp_ids:
            assert order.index(("deliver", message_id)) < order.index(("resp", message_id))


@pytest.mark.smsc(profile="silent-enquire-link")
def test_silent_enquire_link_through_smpplib(smsc_sync):
    import smpplib.smpp

    events: list = []
    client = _smpplib(smsc_sync, events)
    try:
        client.send_pdu(smpplib.smpp.make_pdu("enquire_link", client=client))
        client.send_message(source_addr="Acme", destination_addr=TO, short_message=b"still served")
        _read_until(client, lambda: any(kind == "resp" for kind, _ in events))
        got = [getattr(p, "command", "") for _, p in events]
        assert "enquire_link_resp" not in got
    finally:
        client.disconnect()


# ---- the README's examples ---------------------------------------------------------------------------


def readme_block(first_line: str) -> str:
    from venvkit import fenced_blocks

    (code,) = [b.code for b in fenced_blocks("simulator/README.md") if b.first_line == first_line]
    return code


def test_the_readme_profiles_block_loads_and_says_what_it_does():
    import tomllib

    config = config_from_dict(tomllib.loads(readme_block("# simulator.toml: carrier profiles")))
    assert config.profile == "standard" and config.accounts[0].profile == "other-base-ids"
    worst = config.profiles["worst"]
    assert worst == Profile(receipt_id_base="other", receipt_tlvs=False, receipt_coding="ucs2", receipt_flagged=False,
                            receipt_before_response=True, duplicate_final=True, throttle_every=50, throttle_burst=10)
    assert config.network[0].profile == "worst"


async def test_the_readme_profiles_table_names_every_preset():
    text = (Path(__file__).parent.parent / "simulator" / "README.md").read_text()
    section = text[text.index("### Carrier profiles"):text.index("### Network model")]
    assert set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.M)) == set(PRESETS)


@pytest.mark.parametrize(
    "toml, line",
    [
        ('[[accounts]]\nsystem_id = "a"\npassword = "b"\nprofile = "tmobile"\n',
         "smpphub simulate: simulator.toml: accounts[0].profile: unknown profile 'tmobile' (known: duplicate-final, "
         "intermediate-only, other-base-ids, receipt-before-response, silent-enquire-link, standard, "
         "text-only-receipts, throttle-bursts, ucs2-receipts, unflagged-receipts)"),
        ('[[network]]\nprefix = "44"\nreceipt_delay = "soon"\n',
         "smpphub simulate: simulator.toml: network[0].receipt_delay: expected a delay such as \"30s\", \"150ms\" or "
         "\"0-2s\", got 'soon'"),
    ],
)
def test_smpphub_simulate_prints_the_one_line_and_exits_2(tmp_path, toml, line):
    import subprocess
    import sys

    (tmp_path / "simulator.toml").write_text(toml)
    done = subprocess.run([sys.executable, "-m", "smpphub", "simulate", "--config", "simulator.toml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr.strip(), done.stdout) == (2, line, "")


# ---- aiosmpplib's correlator, another ESME nobody here wrote -------------------------------------------

#: what aiosmpplib's ESME makes of 20 receipted messages from each profile: receipts correlated to the right
#: message or to a wrong one, receipts it could not correlate, and receipts it took for MO messages
AIOSMPPLIB = {
    "standard": {"right": 20},
    "other-base-ids": {"right": 9, "wrong": 5, "uncorrelated": 6},  # hex "10" is taken for message "10", not 16
    "text-only-receipts": {"right": 20},
    "ucs2-receipts": {"right": 20},
    "unflagged-receipts": {"mo": 20},  # is_receipt() reads esm_class only
    "receipt-before-response": {"uncorrelated": 20},  # a receipt for an id it has not seen yet is not kept
    "intermediate-only": {"mo": 40},  # esm_class 0x20 is not a receipt to it
    "duplicate-final": {"right": 20, "uncorrelated": 20},  # the copy finds its correlation gone
}


class AioHook(aiosmpplib.AbstractHook):
    """aiosmpplib's hook: what came back for each log_id (``other_base``: the carrier writes receipt ids in hex)."""

    def __init__(self, other_base: bool) -> None:
        self.other_base = other_base
        self.submitted: dict[str, str] = {}  # log_id -> message_id from submit_sm_resp
        self.seen: collections.Counter[str] = collections.Counter()

    async def sending(self, smpp_message, pdu, client_id) -> None:
        pass

    async def received(self, message, pdu, client_id) -> None:
        if isinstance(message, aiosmpplib.SubmitSmResp):
            self.submitted[message.log_id] = message.message_id
        elif isinstance(message, aiosmpplib.DeliverSm):
            if not message.is_receipt():
                self.seen["mo"] += 1
            elif not message.log_id:
                self.seen["uncorrelated"] += 1
            else:  # the id the receipt was written with, against the one for the message it was given to
                true_id = self.submitted.get(message.log_id, "")
                written = other_base_id(true_id, "decimal") if self.other_base else true_id
                self.seen["right" if message.parse_receipt()["id"] == written else "wrong"] += 1

    async def send_error(self, smpp_message, error, client_id) -> None:
        self.seen["send_error"] += 1


@pytest.mark.parametrize("name", sorted(AIOSMPPLIB))
async def test_what_aiosmpplib_makes_of_each_profile(name):
    import logging

    from aiosmpplib import NPI, TON, PhoneNumber
    from aiosmpplib.broker import SimpleBroker

    n = 20
    expected = AIOSMPPLIB[name]
    async with simulator(profile=name) as sim:
        hook = AioHook(other_base=name == "other-base-ids")
        broker = SimpleBroker(maxsize=1000)
        esme = aiosmpplib.ESME(smsc_host="127.0.0.1", smsc_port=sim.port, system_id="aio", password="pw",
                               broker=broker, hook=hook, log_level=logging.CRITICAL)
        task = asyncio.ensure_future(esme.start())
        try:
            for i in range(1, n + 1):
                await broker.enqueue(aiosmpplib.SubmitSm(
                    short_message=f"m{i}", source=PhoneNumber("Acme", TON.ALPHANUMERIC, NPI.UNKNOWN),
                    destination=PhoneNumber(f"4477009{i:05d}", TON.INTERNATIONAL, NPI.ISDN), log_id=str(i),
                    registered_delivery=1))
            await wait_until(lambda: len(hook.submitted) == n and sum(hook.seen.values()) == sum(expected.values())
                             and sim.sim.stats.receipts_acked == sim.sim.stats.receipts_sent, timeout=15,
                             what=f"aiosmpplib: {name}")
        finally:
            await asyncio.wait_for(esme.stop(), 10)
            await asyncio.wait_for(task, 10)
    assert dict(hook.seen) == expected
