"""SIGTERM while the upstreams and the ESMEs drop at the same moment, many times over with
varied timing: the hub exits, with status 0, within its drain timeout every time, and
nothing it acked is lost.

An operator stopping a whole stack stops the SMSCs and the hub together, and the ESMEs
go with them. Each round here does the three (SIGTERM to the hub; the SMSCs unbinding
politely or dropping their connections; the ESMEs resetting theirs) in a shuffled
order, a few milliseconds apart, at a different point of a submit stream. Before this
suite, about half such stops left the hub retrying a dead upstream's bind forever.
"""

from __future__ import annotations

import asyncio
import functools
import random
import signal

from faultkit import Esme, HubProcess, Upstream, free_port, hub_toml, payloads, settle
from hubkit import simulator, wait_until

from smpphub.simulator.app import RunningSimulator

DRAIN = 2.0  # the hub's drain_timeout in these rounds
ROUNDS = 8
#: the process's own exit after the drain (interpreter teardown), on a loaded 2-core machine
EXIT_MARGIN = 3.0


def drop_all(smsc: RunningSimulator) -> None:
    """An SMSC that dies: its connections reset, its port closed."""
    smsc.server.stop_accepting()
    for conn in list(smsc.server.connections):
        conn.abort()


def close_soon(smsc: RunningSimulator) -> None:
    """An SMSC stopped the polite way (its SIGTERM): it unbinds its binds, then closes."""
    asyncio.ensure_future(smsc.close())


class SigtermClock:
    """Sends the hub its SIGTERM and times the exit from that moment."""

    def __init__(self, hub: HubProcess) -> None:
        self.hub = hub
        self.at = 0.0

    def sigterm(self) -> None:
        self.at = asyncio.get_running_loop().time()
        self.hub.signal(signal.SIGTERM)

    def since(self) -> float:
        return asyncio.get_running_loop().time() - self.at


async def test_sigterm_while_upstreams_and_esmes_drop_exits_within_the_drain_timeout_every_time(tmp_path):
    rng = random.Random(14)
    ports = [free_port(), free_port()]
    config = tmp_path / "hub.toml"
    hub_port = free_port()
    config.write_text(hub_toml(hub_port, [Upstream(name=f"s{i}", port=p, response_timeout=1.0)
                                          for i, p in enumerate(ports)], tmp_path / "hub.db",
                               extra=f"drain_timeout = {DRAIN}"))
    hub = HubProcess(config, hub_port)
    every_smsc: list[RunningSimulator] = []
    esmes: list[Esme] = []
    exits: list[float] = []
    try:
        for round_ in range(ROUNDS):
            smscs = [await simulator(listen=f"127.0.0.1:{p}", submit_latency={"kind": "uniform", "max_ms": 30})
                     for p in ports]
            every_smsc += smscs
            await hub.start()
            mine = [Esme(hub.port, window=30) for _ in range(3)]
            esmes += mine
            for esme in mine:
                await esme.connect()
            streams = [asyncio.ensure_future(e.submit(payloads(f"s{round_}-{i}-", 3000))) for i, e in enumerate(mine)]
            target = rng.randint(20, 400)
            await wait_until(lambda m=mine, t=target: sum(len(e.acked) for e in m) >= t, timeout=30, what="acks")
            clock = SigtermClock(hub)
            polite = rng.random() < 0.5  # SMSCs stopped by SIGTERM unbind first; killed ones just vanish
            strikes = [clock.sigterm, *(e.vanish for e in mine),
                       *(functools.partial(close_soon if polite else drop_all, s) for s in smscs)]
            rng.shuffle(strikes)
            for strike in strikes:
                strike()
                await asyncio.sleep(rng.uniform(0, 0.01))  # varied timing between the strikes, on purpose
            code = await hub.wait(timeout=DRAIN + 30)
            exits.append(clock.since())
            assert code == 0, f"round {round_}: exit status {code}\n{hub.tail()}"
            assert exits[-1] <= DRAIN + EXIT_MARGIN, f"round {round_}: {exits[-1]:.2f}s to exit\n{hub.tail()}"
            await asyncio.gather(*streams)
            await asyncio.gather(*(s.close() for s in smscs))
        # every message acked in any round goes out once the stack is back
        smscs = [await simulator(listen=f"127.0.0.1:{p}") for p in ports]
        every_smsc += smscs
        await hub.start()
        result = await settle(esmes, every_smsc)
        assert not result.lost and result.delivered == result.acked, result.explain()
        assert result.acked > ROUNDS * 20
        # at most what was in flight upstream when each stop came: a window per bind per round
        assert result.duplicates <= ROUNDS * len(ports) * Upstream(name="", port=0).window, result.explain()
        print(f"exits after SIGTERM: max {max(exits):.2f}s, rounds {ROUNDS}, {result.explain()}")
    finally:
        await hub.kill()
        await asyncio.gather(*(s.close() for s in every_smsc), return_exceptions=True)
