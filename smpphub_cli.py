"""The ``smpphub`` command: a thin dispatcher over the packages.

Each subcommand imports what it needs when it runs, so ``smpphub send`` does not
pay for the hub and nothing below imports this module. Exit status: 0 success,
1 failure at run time, 2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

class UsageError(Exception):
    """A bad argument: reported on one line, exit status 2."""


def parse_target(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


# --- send ---------------------------------------------------------------------------


def add_send_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", required=True, type=parse_target, metavar="HOST:PORT")
    p.add_argument("--system-id", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--to", required=True, help="destination address")
    p.add_argument("--text", required=True)
    p.add_argument("--from", dest="source", default="", help="source address")
    p.add_argument("--dlr", action="store_true", help="request a receipt and wait for it")
    p.add_argument("--coding", choices=("auto", "gsm", "latin1", "ucs2"), default="auto")
    p.add_argument("--split", choices=("udh", "sar", "payload"), default="udh", help="how to send a long text")
    p.add_argument("--bind", choices=("tx", "trx"), default=None, help="default: trx with --dlr, else tx")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the receipt")
    p.add_argument("--tls", action="store_true", help="connect with TLS (system trust store)")
    p.add_argument("--insecure", action="store_true", help="with --tls: do not verify the certificate")


async def _send(args: argparse.Namespace) -> int:
    import asyncio
    import ssl

    import smppcore
    from smppcore.receipt import ids_match, is_receipt, receipt_info

    codings = {"auto": None, "gsm": 0, "latin1": 3, "ucs2": 8}
    host, port = args.target
    ctx = None
    if args.tls:
        ctx = ssl.create_default_context()
        if args.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    bind = args.bind or ("trx" if args.dlr else "tx")
    async with smppcore.connect(
        host, port, system_id=args.system_id, password=args.password, bind=bind, ssl=ctx,
        server_hostname=host if ctx else None,
    ) as client:
        responses = await client.submit_text(
            args.to,
            args.text,
            data_coding=codings[args.coding],
            method=args.split,
            source_addr=args.source,
            source_addr_ton=5 if args.source and not args.source.lstrip("+").isdigit() else (1 if args.source else 0),
            source_addr_npi=0 if args.source and not args.source.lstrip("+").isdigit() else (1 if args.source else 0),
            dest_addr_ton=1,
            dest_addr_npi=1,
            registered_delivery=1 if args.dlr else 0,
        )
        ids = [r.message_id for r in responses]
        print(f"submitted {len(ids)} segment(s): message_id {' '.join(ids)}")
        if not args.dlr:
            return 0
        waiting = set(ids)
        ok = True
        deadline = asyncio.get_running_loop().time() + args.timeout
        while waiting:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                print(f"no receipt for {' '.join(sorted(waiting))} within {args.timeout:g}s", file=sys.stderr)
                return 1
            pdu = await client.next_message(timeout=remaining)
            info = receipt_info(pdu) if is_receipt(pdu) else None
            if info is None:
                continue
            match = next((i for i in waiting if ids_match(i, info.message_id)), None)
            if match is None:
                continue
            waiting.discard(match)
            stat = info.receipt.stat if info.receipt else info.state.name
            print(f"receipt for {match}: {stat} (state {info.state.name}, err {info.err})")
            if info.state != smppcore.MessageState.DELIVERED:
                ok = False
        return 0 if ok else 1


def cmd_send(args: argparse.Namespace) -> int:
    import smppcore

    try:
        return smppcore.run(_send(args))
    except smppcore.SmppStatusError as exc:
        print(f"smpphub send: refused: {exc}", file=sys.stderr)
        return 1
    except (OSError, TimeoutError, smppcore.SmppError) as exc:
        print(f"smpphub send: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


# --- demo ----------------------------------------------------------------------------


async def _demo(backend: str) -> int:
    """Two simulated carriers, the hub in front of them, and an ESME using it."""
    import asyncio
    import os
    import tempfile

    import smppcore
    from router.config import config_from_dict
    from router.hub import Hub
    from simulator.app import start as start_simulator
    from simulator.config import config_from_dict as simulator_config
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
    from router.cli import setup_logging

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


def _add_demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", choices=("sqlite", "memory"), default="memory", help="the hub's store (default: memory)")


def cmd_demo(args: argparse.Namespace) -> int:
    import smppcore

    return smppcore.run(_demo(args.store))


# --- subcommands that live in the packages -----------------------------------------------


def _add_simulate_arguments(p: argparse.ArgumentParser) -> None:
    from simulator.cli import add_arguments

    add_arguments(p)


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulator.cli import run

    return run(args)


def _add_serve_arguments(p: argparse.ArgumentParser) -> None:
    from router.cli import add_serve_arguments

    add_serve_arguments(p)


def cmd_serve(args: argparse.Namespace) -> int:
    from router.cli import serve

    return serve(args)


def _add_hash_arguments(p: argparse.ArgumentParser) -> None:
    from router.cli import add_hash_arguments

    add_hash_arguments(p)


def cmd_hash_password(args: argparse.Namespace) -> int:
    from router.cli import hash_password_cmd

    return hash_password_cmd(args)


def _add_bench_arguments(p: argparse.ArgumentParser) -> None:
    from benchmarks.cli import add_arguments

    add_arguments(p)


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks.cli import run

    return run(args)


# --- dispatcher ----------------------------------------------------------------------

#: name -> (help, how to add its arguments, what runs it)
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None] | None, Callable[[argparse.Namespace], int]]] = {
    "send": (
        "bind to an SMSC, send one (possibly long) message, optionally wait for its receipt",
        add_send_arguments,
        cmd_send,
    ),
    "serve": ("run the routing hub", _add_serve_arguments, cmd_serve),
    "bench": ("load generator: drive any SMPP server and measure it", _add_bench_arguments, cmd_bench),
    "hash-password": ("print the password_hash of a password, for hub.toml accounts", _add_hash_arguments, cmd_hash_password),
    "simulate": ("run the SMSC simulator (scriptable carrier for ESME tests and load tests)", _add_simulate_arguments, cmd_simulate),
    "demo": ("run a self-contained demo: two simulated carriers, the hub, and an ESME using it", _add_demo_arguments, cmd_demo),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smpphub", description="SMPP 3.4 hub, SMSC simulator and load generator")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_args, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if add_args is not None:
            add_args(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _, _, run = COMMANDS[args.command]
    try:
        return run(args)
    except UsageError as exc:
        print(f"smpphub {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
