"""``smpphub send``: bind to an SMSC, send one (possibly long) message, wait for its receipt."""

from __future__ import annotations

import argparse
import sys

from smppcore.config import ConfigError, parse_host_port


def parse_target(value: str) -> tuple[str, int]:
    """argparse type for the address to connect to (HOST:PORT, port 1-65535)."""
    try:
        return parse_host_port(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
