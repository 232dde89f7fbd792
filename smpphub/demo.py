"""``smpphub demo``: two simulated carriers, the hub in front of them, and an ESME using it."""

from __future__ import annotations

import argparse


async def _demo(backend: str) -> int:
    """Two simulated carriers, the hub in front of them, and an ESME using it."""
    import asyncio
    import os
    import tempfile

    import smppcore
    from smpphub.router.config import config_from_dict
    from smpphub.router.hub import Hub
    from smpphub.simulator.app import start as start_simulator
    from smpphub.simulator.config import config_from_dict as simulator_config
    from smppcore.receipt import receipt_info

    uk = await start_simulator(simulator_config({"receipts": {"delay": {"kind": "uniform", "min_ms": 50, "max_ms": 300}}}), port=0)
    fr = await start_simulator(simulator_config({"receipts": {"message_id_format": "hex", "final_states": {"DELIVRD": 3, "UNDELIV": 1}, "delay": {"kind": "fixed", "ms": 100}}, "seed": 7}), port=0)
    tmp = tempfile.mkdtemp(prefix="smpphub-demo-")
    config = config_from_dict({
        "listeners": [{"host": "127.0.0.1", "port": 0}],
        "accounts": [{"system_id": "demo", "password": "demo"}],
        "upstreams": [
            {"name": "carrier-uk", "host": "127.0.0.1", "port": uk.port, "system_id": "hub", "password": "hub"},
            {"name": "carrier-fr", "host": "127.0.0.1", "port": fr.port, "system_id": "hub", "password": "hub"},
        ],
        "routes": [{"prefix": "44", "upstreams": ["carrier-uk", "carrier-fr"]}, {"prefix": "33", "upstreams": ["carrier-fr"]}],
        "mo_routes": [{"prefix": "12345", "account": "demo"}],
        "store": {"backend": backend, "path": os.path.join(tmp, "hub.db")},
        "log": {"level": "warning"},
    })
    from smpphub.router.cli import setup_logging

    setup_logging(config.log)
    hub = Hub(config)
    await hub.start()
    try:
        await hub.wait_ready(10)
        port = hub.servers[0].port
        print(f"simulated carriers on :{uk.port} (+44) and :{fr.port} (+33); hub on 127.0.0.1:{port}, store: {backend}")
        async with smppcore.connect("127.0.0.1", port, system_id="demo", password="demo") as client:
            print("ESME 'demo' bound to the hub as transceiver")
            messages = [("447700900123", "Hello from smpphub"), ("33612345678", "Grüße, ünïcödé → UCS-2 😀"),
                        ("447700900456", "long " * 60)]
            expected = 0
            for dest, text in messages:
                responses = await client.submit_text(dest, text, source_addr="smpphub", registered_delivery=1)
                expected += len(responses)
                print(f"  submitted to +{dest}: {len(responses)} segment(s), hub ids {[r.message_id for r in responses]}")
            for _ in range(expected):
                info = receipt_info(await client.next_message(timeout=10))
                print(f"  receipt {info.message_id}: {info.state.name}")
            uk.sim.send_mo("447700900123", "12345", "STOP")
            mo = await client.next_message(timeout=10)
            print(f"  MO from +{mo.source_addr} to {mo.destination_addr}: {mo.short_message.decode()!r}")
        print(f"carrier-uk received {len(uk.sim.messages)} message(s), carrier-fr {len(fr.sim.messages)}; demo done")
    finally:
        await hub.stop()
        await uk.close()
        await fr.close()
        await asyncio.sleep(0)
    return 0


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", choices=("sqlite", "memory"), default="memory", help="the hub's store (default: memory)")


def cmd_demo(args: argparse.Namespace) -> int:
    import smppcore

    return smppcore.run(_demo(args.store))
