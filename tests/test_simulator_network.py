"""The network model per destination prefix: its figures over 10,000 seeded messages, and over SMPP.

The statistics drive :meth:`NetworkModel.decide` (the engine's own draws, without I/O);
one end-to-end test sends a few hundred messages through the simulator to show the
engine uses the same routes: error mix, latency, final states, delays, throttle.
"""

from __future__ import annotations

import asyncio
import collections
import random
import statistics

import pytest
from hubkit import wait_until
from simkit import connect, simulator

from smppcore import CommandStatus, SubmitSm
from smppcore.receipt import receipt_info
from smpphub.simulator.config import ConfigError, Delay, config_from_dict, parse_delay
from smpphub.simulator.network import NetworkModel

DRAWS = 10_000

CONFIG = {
    "receipts": {"final_states": {"DELIVRD": 1}},
    "network": [
        # "4477 delivers 98% within 2 s"
        {"prefix": "4477", "delivered": 0.98, "receipt_delay": "0-2s"},
        # "4479 has 20% UNDELIV after 30 s"
        {"prefix": "4479", "undeliverable": 0.20, "receipt_delay": "1s", "receipt_delays": {"UNDELIV": "30s"}},
        # a longer prefix inside 4479: its own errors, latency and states; the delay the simulator's own
        {"prefix": "+447912", "errors": {"ESME_RSYSERR": 0.10, "ESME_RINVDSTADR": 0.05}, "submit_latency": "100-200ms",
         "expired": 0.5},
    ],
}


def draws(seed: int = 11, config: dict | None = None) -> dict[str, list]:
    model = NetworkModel(config_from_dict(config or CONFIG), random.Random(seed))
    rng = random.Random(99)  # the destinations, apart from the model's draws
    out: dict[str, list] = collections.defaultdict(list)
    # (4479's numbers start 44795: none of them falls under 447912)
    for prefix, start in (("4477", "4477"), ("4479", "44795"), ("447912", "+447912"), ("3361", "3361")):
        for _ in range(DRAWS):
            out[prefix].append(model.decide(f"{start}{rng.randrange(10**6):06d}"))
    return out


def share(outcomes: list, predicate) -> float:
    return sum(1 for o in outcomes if predicate(o)) / len(outcomes)


def test_per_prefix_figures_over_ten_thousand_seeded_messages():
    out = draws()
    # 4477: 98% DELIVRD (the rest UNDELIV), every receipt within 0-2 s, evenly spread
    o = out["4477"]
    assert {x.prefix for x in o} == {"4477"} and all(x.status == 0 for x in o)
    assert share(o, lambda x: x.final == "DELIVRD") == pytest.approx(0.98, abs=0.006)
    assert share(o, lambda x: x.final == "UNDELIV") == pytest.approx(0.02, abs=0.006)
    delays = [x.receipt_delay for x in o]
    assert 0 <= min(delays) and max(delays) <= 2.0
    assert statistics.mean(delays) == pytest.approx(1.0, abs=0.05)
    assert all(x.latency == 0 for x in o)  # the simulator's own submit_latency
    # 4479: 20% UNDELIV after 30 s, the rest DELIVRD after 1 s
    o = out["4479"]
    assert {x.prefix for x in o} == {"4479"}
    assert share(o, lambda x: x.final == "UNDELIV") == pytest.approx(0.20, abs=0.016)
    assert all(x.receipt_delay == (30.0 if x.final == "UNDELIV" else 1.0) for x in o)
    # +447912 (longest prefix, "+" dropped): 10% RSYSERR, 5% RINVDSTADR, the accepted half EXPIRED
    o = out["447912"]
    assert {x.prefix for x in o} == {"447912"}
    assert share(o, lambda x: x.status == CommandStatus.ESME_RSYSERR) == pytest.approx(0.10, abs=0.012)
    assert share(o, lambda x: x.status == CommandStatus.ESME_RINVDSTADR) == pytest.approx(0.05, abs=0.009)
    accepted = [x for x in o if x.status == 0]
    assert share(accepted, lambda x: x.final == "EXPIRED") == pytest.approx(0.5, abs=0.02)
    assert share(accepted, lambda x: x.final == "DELIVRD") == pytest.approx(0.5, abs=0.02)
    assert all(0.1 <= x.latency <= 0.2 for x in accepted)
    assert statistics.mean(x.latency for x in accepted) == pytest.approx(0.15, abs=0.003)
    assert all(x.receipt_delay == 0 for x in accepted)  # what a rule leaves out is the simulator's, not 4479's
    # no rule: the simulator's own settings
    o = out["3361"]
    assert {x.prefix for x in o} == {""}
    assert all(x.final == "DELIVRD" and x.status == 0 and x.receipt_delay == 0 for x in o)


def test_seeded_runs_replay_and_other_seeds_do_not():
    assert draws(5) == draws(5)
    assert draws(5)["4477"] != draws(6)["4477"]


def test_longest_prefix_wins_and_plus_is_dropped():
    model = NetworkModel(config_from_dict(CONFIG), random.Random(1))
    assert model.route("447712345678").prefix == "4477"
    assert model.route("+447912000000").prefix == "447912"
    assert model.route("447913000000").prefix == "4479"
    assert model.route("4479").prefix == "4479"
    assert model.route("447").prefix == ""
    assert model.route("").prefix == ""


def test_parse_delay():
    assert parse_delay("30s") == Delay(kind="fixed", ms=30_000)
    assert parse_delay("150ms") == Delay(kind="fixed", ms=150)
    assert parse_delay("0-2s") == Delay(kind="uniform", min_ms=0, max_ms=2000)
    assert parse_delay(" 10 - 20 ms ") == Delay(kind="uniform", min_ms=10, max_ms=20)
    assert parse_delay("0.5s") == Delay(kind="fixed", ms=500)
    table = Delay(kind="exponential", mean_ms=10)
    assert parse_delay(table) is table
    for bad in ("30", "2-1s", "s", "1h", "-1s", "1-s", ""):
        with pytest.raises(ValueError):
            parse_delay(bad)


@pytest.mark.parametrize(
    "rule, message",
    [
        ({"prefix": "44x"}, "network[0].prefix: expected str matching regex"),
        ({"prefix": ""}, "network[0].prefix: expected str matching regex"),
        ({"prefix": "4" * 21}, "network[0].prefix: expected str matching regex"),
        ({"prefix": "44", "receipt_delay": "3 min"}, "network[0].receipt_delay: expected a delay such as"),
        ({"prefix": "44", "submit_latency": "2-1s"}, "network[0].submit_latency: the range '2-1s' runs backwards"),
        ({"prefix": "44", "submit_latency": {"kind": "uniform", "min_ms": 5, "max_ms": 1}},
         "network[0].submit_latency: min_ms (5) is above max_ms (1)"),
        ({"prefix": "44", "delivered": 0.7, "expired": 0.5},
         "network[0]: the final-state shares add up to more than 1"),
        ({"prefix": "44", "delivered": 1.5}, "network[0].delivered: expected float <= 1"),
        ({"prefix": "44", "errors": {"ESME_RNOPE": 0.1}}, "network[0].errors.ESME_RNOPE: unknown command_status"),
        ({"prefix": "44", "errors": {"ESME_ROK": 0.1}}, "is success, not an error status"),
        ({"prefix": "44", "errors": {"ESME_RSYSERR": 0.6, "ESME_RTHROTTLED": 0.6}},
         "network[0].errors: the probabilities add up to more than 1"),
        ({"prefix": "44", "errors": {"ESME_RSYSERR": 2}}, "network[0].errors.ESME_RSYSERR: expected a probability"),
        ({"prefix": "44", "receipt_delays": {"SOON": "1s"}}, "network[0].receipt_delays: 'SOON' is not a final state"),
        ({"prefix": "44", "receipt_delays": {"UNDELIV": "later"}},
         "network[0].receipt_delays.UNDELIV: expected a delay"),
        ({"prefix": "44", "throttle": -1}, "network[0].throttle: expected float >= 0"),
        ({"prefix": "44", "latency": "1s"}, "network[0].latency: unknown key"),
    ],
)
def test_bad_network_rule_is_one_line_naming_the_key(rule, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict({"network": [rule]})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_prefix_given_twice_is_refused():
    with pytest.raises(ConfigError, match=r"network\[1\].prefix: prefix '\+44' appears twice"):
        config_from_dict({"network": [{"prefix": "44"}, {"prefix": "+44"}]})


# ---- end to end, over SMPP -------------------------------------------------------------------------


async def run_traffic(seed: int, per_prefix: int = 150) -> tuple[dict, dict, dict]:
    """Submit ``per_prefix`` messages to each of three prefixes; per prefix: response statuses,
    final states by message index, and the slowest response time of an accepted one."""
    config = {
        "seed": seed,
        "receipts": {"final_states": {"DELIVRD": 1}},
        "network": [
            {"prefix": "4477", "delivered": 0.9, "receipt_delay": "0-50ms"},
            {"prefix": "4479", "undeliverable": 0.3, "expired": 0.2, "errors": {"ESME_RSYSERR": 0.2},
             "submit_latency": "60ms", "receipt_delay": "10ms"},
        ],
    }
    statuses: dict = collections.defaultdict(collections.Counter)
    states: dict = {}
    slowest: dict = collections.defaultdict(float)
    receipts: list = []
    async with simulator(**config) as sim:
        async with connect(sim, on_message=lambda pdu: receipts.append(pdu) or 0) as client:
            loop = asyncio.get_running_loop()
            sent = []
            for i in range(per_prefix):
                for prefix in ("4477", "4479", "3361"):
                    pdu = SubmitSm(destination_addr=f"{prefix}{i:06d}", short_message=f"{prefix}/{i}".encode(),
                                   registered_delivery=1)
                    sent.append((prefix, i, loop.time(), await client.send(pdu)))
            ids = {}
            for prefix, i, t0, fut in sent:
                resp = await fut
                statuses[prefix][resp.command_status] += 1
                if resp.command_status == 0:
                    slowest[prefix] = max(slowest[prefix], loop.time() - t0)
                    ids[resp.message_id] = (prefix, i)
            await wait_until(lambda: len(receipts) == len(ids), what="a receipt for every accepted message")
    for pdu in receipts:
        info = receipt_info(pdu)
        states[ids[info.message_id]] = info.receipt.stat
    return statuses, states, slowest


async def test_the_engine_follows_the_model_per_prefix_and_replays_with_its_seed():
    statuses, states, slowest = await run_traffic(seed=3)
    by_prefix = collections.defaultdict(collections.Counter)
    for (prefix, _), stat in states.items():
        by_prefix[prefix][stat] += 1
    # the error mix only where it is configured
    assert set(statuses["4477"]) == {0} and set(statuses["3361"]) == {0}
    assert statuses["4479"][CommandStatus.ESME_RSYSERR] == pytest.approx(30, abs=20)
    # the final states, per prefix (150 messages each: a wide tolerance)
    assert by_prefix["3361"] == {"DELIVRD": 150}
    assert by_prefix["4477"]["DELIVRD"] == pytest.approx(135, abs=15)
    assert set(by_prefix["4477"]) <= {"DELIVRD", "UNDELIV"}
    accepted = statuses["4479"][0]
    assert by_prefix["4479"]["UNDELIV"] == pytest.approx(0.3 * accepted, abs=20)
    assert by_prefix["4479"]["EXPIRED"] == pytest.approx(0.2 * accepted, abs=20)
    # the latency of 4479 only
    assert slowest["4479"] >= 0.06
    # the same seed, the same outcome for every message
    again = await run_traffic(seed=3)
    assert (statuses, states) == again[:2]


async def test_a_prefix_throttle_refuses_its_own_traffic_only():
    config = {"network": [{"prefix": "4470", "throttle": 20}]}
    async with simulator(**config) as sim:
        async with connect(sim) as client:
            loop = asyncio.get_running_loop()
            started = loop.time()
            futures = [await client.send(SubmitSm(destination_addr=f"{prefix}{i:04d}"))
                       for i in range(60) for prefix in ("4470", "4471")]
            results = collections.defaultdict(collections.Counter)
            for n, fut in enumerate(futures):
                results[("4470", "4471")[n % 2]][(await fut).command_status] += 1
            elapsed = loop.time() - started
    assert results["4471"] == {0: 60}
    assert 20 <= results["4470"][0] <= 20 + 20 * elapsed + 1  # one second's worth, and what refilled meanwhile
    assert results["4470"][0] < 60
    assert results["4470"][CommandStatus.ESME_RTHROTTLED] == 60 - results["4470"][0]
    assert sim.sim.stats.throttled == results["4470"][CommandStatus.ESME_RTHROTTLED]


def test_the_readme_network_block_holds_what_its_comments_say():
    import tomllib

    from venvkit import fenced_blocks

    (code,) = [b.code for b in fenced_blocks("simulator/README.md")
               if b.first_line == "# simulator.toml: the network per destination prefix"]
    config = config_from_dict(tomllib.loads(code))
    model = NetworkModel(config, random.Random(config.seed))
    uk = [model.decide(f"4477{n:06d}") for n in range(DRAWS)]
    assert share(uk, lambda x: x.final == "DELIVRD") == pytest.approx(0.98, abs=0.006)
    assert all(x.receipt_delay <= 2.0 for x in uk)
    other = [model.decide(f"44795{n:06d}") for n in range(DRAWS)]
    assert share(other, lambda x: x.final == "UNDELIV") == pytest.approx(0.20, abs=0.016)
    assert all(x.receipt_delay == (30.0 if x.final == "UNDELIV" else 1.0) for x in other)
    assert model.route("447912000001").prefix == "447912"
