"""The hub against carriers with bad habits: each simulator profile as its upstream.

Whatever the upstream does with its receipts (ids in another base, no TLVs, UCS-2 text,
esm_class 0, the receipt before the response, a second copy, intermediate states only),
the ESME behind the hub must get every receipt once, under the hub's own message id,
flagged as a receipt. A link that throttles in bursts or never answers enquire_link must
not lose a message either.
"""

from __future__ import annotations

import msgspec
import pytest
from hubkit import hub_config, running_hub, simulator, wait_until
from receiptkit import ReceiptBook, submit_all

import smppcore
from smppcore import EsmClass
from smppcore.receipt import receipt_info
from smpphub.router.config import config_from_dict as router_config
from smpphub.simulator.profiles import PRESETS

HOST = "127.0.0.1"
N = 30

# profile -> (what the operator writes for that upstream, receipts per message, registered_delivery)
CASES = {
    "standard": ({}, 1, 1),
    "other-base-ids": ({"submit_id_base": 10, "receipt_id_base": 16}, 1, 1),
    "text-only-receipts": ({}, 1, 1),
    "ucs2-receipts": ({}, 1, 1),
    "unflagged-receipts": ({}, 1, 1),
    "receipt-before-response": ({}, 1, 1),
    "intermediate-only": ({}, 2, 0x11),  # the ESME asked for intermediate notifications too
    "duplicate-final": ({}, 1, 1),
    "throttle-bursts": ({}, 1, 1),
    "silent-enquire-link": ({"enquire_link_interval": 0.2, "response_timeout": 0.5}, 1, 1),
    # every receipt habit at once, a profile of the simulator.toml's own
    "worst": ({"submit_id_base": 10, "receipt_id_base": 16}, 1, 1),
}
WORST = {"receipt_id_base": "other", "receipt_tlvs": False, "receipt_coding": "ucs2", "receipt_flagged": False,
         "receipt_before_response": True, "duplicate_final": True, "throttle_every": 7, "throttle_burst": 2}


def test_every_preset_is_played_against_the_hub():
    assert set(CASES) == {*PRESETS, "worst"}


def _config(sim, operator: dict):
    """hubkit's hub with one upstream, the keys ``operator`` sets for that carrier checked as hub.toml's are."""
    config = hub_config({"up": sim}, [{"prefix": "44", "upstreams": ["up"]}])
    data = msgspec.to_builtins(config)
    data["upstreams"][0].update(operator)
    return router_config(data)


@pytest.mark.parametrize("name", sorted(CASES))
async def test_the_esme_gets_every_receipt_under_the_hub_id(name):
    operator, per_message, rd = CASES[name]
    sim = await simulator(profile=name, seed=5, profiles={"worst": WORST})
    try:
        async with running_hub(_config(sim, operator)) as hub:
            book = ReceiptBook()
            async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw",
                                        on_message=book.take) as esme:
                hub_ids = await submit_all(esme, book, n=N, registered_delivery=rd)
                assert len(set(hub_ids)) == N
                await wait_until(lambda: len(book.pdus) >= N * per_message and sim.sim.stats.receipts_pending == 0,
                                 timeout=15, what=f"{name}: the receipts through the hub")
                if name in ("duplicate-final", "worst"):  # the copy reaches the hub after the first
                    await wait_until(lambda: hub.dispatcher.stats.receipts_duplicate == N,
                                     what="every second copy seen")
                await wait_until(lambda: sim.sim.stats.receipts_acked == sim.sim.stats.receipts_sent,
                                 what="the hub acknowledged every upstream receipt")
                if name == "silent-enquire-link":  # the hub's keep-alive found the link dead and bound again
                    await wait_until(lambda: sim.sim.stats.binds >= 2, what="a new bind after the silent enquire_link")
            assert hub.dispatcher.stats.receipts_unmatched == 0, hub.status()["receipts_unmatched"]
    finally:
        await sim.close()
    upstream_ids = {s.message_id for s in sim.sim.submits}
    assert len(upstream_ids) == N  # none lost, none sent twice (throttled ones were retried by the hub)
    assert book.unmatched == 0 and not book.not_receipts
    keys = set(book.known)
    if per_message == 2:
        assert set(book.intermediates) == keys and all(n == 2 for n in book.intermediates.values())
        assert not book.finals
    else:
        assert set(book.finals) == keys and all(n == 1 for n in book.finals.values())  # one each, copies absorbed
    assert len(book.pdus) == N * per_message
    for pdu in book.pdus:
        info = receipt_info(pdu)
        assert info.message_id in hub_ids and info.message_id not in upstream_ids - set(hub_ids)
        assert pdu.esm_class & EsmClass.TYPE_MASK in (EsmClass.TYPE_DELIVERY_RECEIPT,
                                                       EsmClass.TYPE_INTERMEDIATE_NOTIFICATION), name


@pytest.mark.parametrize(
    "receipt_id, submit_base, receipt_base, looked_up",
    [
        ("a", 10, 16, "10"),
        ("10", 10, 16, "16"),  # not the message whose decimal id is "10"
        ("26", 16, 10, "1a"),
        ("0A", 10, 16, "10"),
        ("not-a-number", 10, 16, "not-a-number"),
        ("a", 0, 16, "a"),  # bases not configured: as it came
        ("10", 16, 16, "10"),
    ],
)
def test_a_receipt_id_is_looked_up_in_the_store_as_the_submit_response_wrote_it(receipt_id, submit_base, receipt_base,
                                                                                looked_up):
    from smpphub.router.receipts import _as_submitted

    assert _as_submitted(receipt_id, submit_base, receipt_base) == looked_up
