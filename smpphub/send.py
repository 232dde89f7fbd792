"""``smpphub send``: bind to an SMSC, send one (possibly long) message, wait for its receipt.

Everything that can be known before connecting is checked first (lengths, the text in
the chosen coding, option combinations that cannot work), so a mistake costs no
connection and is reported as one line, exit 2. What goes wrong on the wire is one line
naming the phase it happened in (connect, TLS, bind, submit, receipt), exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import ssl
import sys

import smppcore
from smppcore.client import BindError
from smppcore.config import ConfigError, format_host_port, parse_host_port
from smppcore.connection import ConnectionClosed, ResponseTimeout, SmppStatusError
from smppcore.constants import status_name
from smppcore.receipt import ids_match, is_receipt, receipt_info
from smppcore.text import UnencodableText, split_text

__all__ = ["add_send_arguments", "cmd_send", "check_arguments", "SendFailed"]

CODINGS: dict[str, int | None] = {"auto": None, "gsm": 0, "latin1": 3, "ucs2": 8}
CODING_NAMES = {0: "GSM 03.38", 3: "Latin-1", 8: "UCS-2"}
# C-octet string sizes of SMPP 3.4 (5.2), without the terminating NUL
MAX_SYSTEM_ID = 15
MAX_PASSWORD = 8
MAX_ADDRESS = 20


class SendFailed(Exception):
    """A run-time failure of the send, already worded for the user (exit status 1)."""


def parse_target(value: str) -> tuple[str, int]:
    """argparse type for the address to connect to (HOST:PORT, port 1-65535)."""
    try:
        return parse_host_port(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_seconds(value: str) -> float:
    """argparse type for a timeout: a number of seconds above 0 (0 or less would never wait)."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {value!r}")
    return seconds


def add_send_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", required=True, type=parse_target, metavar="HOST:PORT")
    p.add_argument("--system-id", required=True, help=f"at most {MAX_SYSTEM_ID} characters")
    p.add_argument("--password", required=True, help=f"at most {MAX_PASSWORD} characters")
    p.add_argument("--to", required=True, help="destination address")
    p.add_argument("--text", required=True)
    p.add_argument("--from", dest="source", default="", help="source address")
    p.add_argument("--dlr", action="store_true", help="request a receipt and wait for it")
    p.add_argument("--coding", choices=tuple(CODINGS), default="auto")
    p.add_argument("--split", choices=("udh", "sar", "payload"), default="udh", help="how to send a long text")
    p.add_argument("--bind", choices=("tx", "trx"), default=None, help="default: trx with --dlr, else tx")
    p.add_argument("--timeout", type=positive_seconds, default=60.0, metavar="SECONDS", help="how long to wait for the receipt")
    p.add_argument("--response-timeout", type=positive_seconds, default=10.0, metavar="SECONDS",
                   help="how long to wait for the connection and for each answer of the SMSC (bind, submit)")
    p.add_argument("--tls", action="store_true", help="connect with TLS (system trust store)")
    p.add_argument("--insecure", action="store_true", help="with --tls: do not verify the certificate")


def _check_length(option: str, value: str, limit: int) -> None:
    try:
        size = len(value.encode("latin-1"))
    except UnicodeEncodeError:
        raise ConfigError(f"{option}: SMPP carries it as Latin-1 text, {value!r} is not") from None
    if size > limit:
        raise ConfigError(f"{option}: at most {limit} characters, got {size}")


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse what cannot work before connecting: raises ConfigError (one line, exit 2)."""
    _check_length("--system-id", args.system_id, MAX_SYSTEM_ID)
    _check_length("--password", args.password, MAX_PASSWORD)
    if not args.to.strip():
        raise ConfigError("--to: a destination address is needed")
    _check_length("--to", args.to, MAX_ADDRESS)
    _check_length("--from", args.source, MAX_ADDRESS)
    if not args.text:
        raise ConfigError("--text: the message is empty")
    if args.dlr and args.bind == "tx":
        raise ConfigError("--dlr needs a bind that receives (--bind trx): a transmitter bind gets no receipts")
    if args.insecure and not args.tls:
        raise ConfigError("--insecure only means something with --tls")
    try:
        split_text(args.text, data_coding=CODINGS[args.coding], method=args.split)
    except UnencodableText as exc:
        coding = CODING_NAMES.get(exc.data_coding, str(exc.data_coding))
        raise ConfigError(
            f"--text: {coding} cannot carry {exc.char!r} (U+{ord(exc.char):04X}, character {exc.position + 1});"
            f" use --coding ucs2 or --coding auto"
        ) from None
    except ValueError as exc:  # more than 255 segments
        raise ConfigError(f"--text: {exc}") from None


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.tls:
        return None
    ctx = ssl.create_default_context()
    if args.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _address_kind(source: str) -> tuple[int, int]:
    """source_addr_ton/npi: none for no source, international E.164 for digits, alphanumeric otherwise."""
    if not source:
        return 0, 0
    if source.lstrip("+").isdigit():
        return 1, 1
    return 5, 0


async def _open(args: argparse.Namespace, where: str) -> smppcore.Client:
    """Connect and bind, every failure turned into a SendFailed that says what happened."""
    host, port = args.target
    ctx = _tls_context(args)
    bind = args.bind or ("trx" if args.dlr else "tx")
    config = smppcore.SessionConfig(response_timeout=args.response_timeout)
    try:
        return await smppcore.connect(
            host, port, system_id=args.system_id, password=args.password, bind=bind, ssl=ctx,
            server_hostname=host if ctx else None, connect_timeout=args.response_timeout, config=config,
        )
    except BindError as exc:
        raise SendFailed(f"bind refused by {where}: {status_name(exc.command_status)}") from None
    except ssl.SSLCertVerificationError as exc:
        raise SendFailed(f"TLS certificate of {where} not accepted: {exc.verify_message} (--insecure skips the check)") from None
    except ssl.SSLError as exc:
        reason = exc.reason.replace("_", " ").lower() if exc.reason else str(exc)
        raise SendFailed(f"TLS handshake with {where} failed: {reason} (is it a TLS port?)") from None
    except socket.gaierror as exc:
        raise SendFailed(f"cannot resolve {host!r}: {exc.strerror}") from None
    except (TimeoutError, ResponseTimeout):
        raise SendFailed(
            f"no bind response from {where} within {args.response_timeout:g}s (is it an SMPP server? --response-timeout)"
        ) from None
    except ConnectionClosed:
        raise SendFailed(f"{where} closed the connection before answering the bind") from None
    except OSError as exc:
        reason = exc.strerror.lower() if exc.strerror else str(exc)
        raise SendFailed(f"cannot connect to {where}: {reason}") from None


async def _submit(client: smppcore.Client, args: argparse.Namespace, where: str) -> list[str]:
    ton, npi = _address_kind(args.source)
    try:
        responses = await client.submit_text(
            args.to,
            args.text,
            data_coding=CODINGS[args.coding],
            method=args.split,
            source_addr=args.source,
            source_addr_ton=ton,
            source_addr_npi=npi,
            dest_addr_ton=1,
            dest_addr_npi=1,
            registered_delivery=1 if args.dlr else 0,
        )
    except SmppStatusError as exc:
        raise SendFailed(f"submit refused by {where}: {status_name(exc.command_status)}") from None
    except ResponseTimeout:
        raise SendFailed(f"no submit_sm_resp from {where} within {args.response_timeout:g}s (--response-timeout)") from None
    except ConnectionClosed:
        raise SendFailed(f"{where} closed the connection before answering the submit") from None
    return [r.message_id for r in responses]


async def _wait_receipts(client: smppcore.Client, ids: list[str], args: argparse.Namespace, where: str) -> bool:
    """Print each segment's receipt as it arrives; True if all of them say DELIVERED."""
    loop = asyncio.get_running_loop()
    waiting = set(ids)
    delivered = True
    deadline = loop.time() + args.timeout
    while waiting:
        remaining = deadline - loop.time()
        try:
            if remaining <= 0:
                raise TimeoutError
            pdu = await client.next_message(timeout=remaining)
        except TimeoutError:
            raise SendFailed(
                f"no receipt from {where} for message_id {' '.join(sorted(waiting))} within {args.timeout:g}s (--timeout)"
            ) from None
        except ConnectionClosed:
            raise SendFailed(f"{where} closed the connection while waiting for the receipt of {' '.join(sorted(waiting))}") from None
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
            delivered = False
    return delivered


async def _send(args: argparse.Namespace) -> int:
    host, port = args.target
    where = format_host_port(host, port)
    client = await _open(args, where)
    async with client:  # unbinds (or closes when the SMSC is gone) whatever happened inside
        ids = await _submit(client, args, where)
        print(f"submitted {len(ids)} segment(s): message_id {' '.join(ids)}", flush=True)
        if args.dlr and not await _wait_receipts(client, ids, args, where):
            return 1
        return 0


def cmd_send(args: argparse.Namespace) -> int:
    check_arguments(args)
    try:
        return smppcore.run(_send(args))
    except SendFailed as exc:
        print(f"smpphub send: {exc}", file=sys.stderr)
        return 1
