"""``smpphub simulate``: arguments and entry point."""

from __future__ import annotations

import argparse
import sys

import msgspec

from .config import ConfigError, SimulatorConfig, config_from_dict, load_config

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="simulator.toml (default: accept any bind, deliver everything)")
    p.add_argument("--listen", metavar="HOST:PORT", help="SMPP address (overrides the config; default 127.0.0.1:2775)")
    p.add_argument("--http", metavar="HOST:PORT", help="the live page, the record and the control API here")
    p.add_argument("--tls-listen", metavar="HOST:PORT", help="also listen with TLS here (with --tls-cert, --tls-key)")
    p.add_argument("--tls-cert", metavar="FILE", help="the TLS listener's certificate (PEM)")
    p.add_argument("--tls-key", metavar="FILE", help="the TLS listener's private key (PEM)")
    p.add_argument("--outbind", metavar="HOST:PORT", action="append",
                   help="call an ESME waiting there with an outbind (repeatable; with --outbind-system-id)")
    p.add_argument("--outbind-system-id", metavar="ID", help="system_id sent in the outbind")
    p.add_argument("--outbind-password", metavar="PW", default="", help="password sent in the outbind")
    p.add_argument("--pcap", metavar="FILE", help="write every PDU read or sent to this pcap file")
    p.add_argument("--seed", type=int, help="seed for every random choice (replayable runs)")
    p.add_argument("--profile", metavar="NAME",
                   help="the carrier profile of every account and prefix that names none (overrides `profile`; "
                        "a preset such as ucs2-receipts, or one of the config's [profiles])")
    p.add_argument("--quiet", action="store_true", help="no live status line")


def build_config(args: argparse.Namespace) -> SimulatorConfig:
    config = load_config(args.config) if args.config else SimulatorConfig()
    changes = {}
    if args.listen:
        changes["listen"] = args.listen
    if args.http:
        changes["http_listen"] = args.http
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.profile is not None:
        changes["profile"] = args.profile
    if args.pcap:
        changes["pcap"] = args.pcap
    tls = (args.tls_listen, args.tls_cert, args.tls_key)
    if any(tls):
        if not (args.tls_cert and args.tls_key):
            raise ConfigError("--tls-cert and --tls-key go together (and with --tls-listen)")
        section = dict(msgspec.to_builtins(config.tls)) if config.tls is not None else {}
        section.update({"cert": args.tls_cert, "key": args.tls_key})
        if args.tls_listen:
            section["listen"] = args.tls_listen
        changes["tls"] = section
    if args.outbind:
        if not args.outbind_system_id:
            raise ConfigError("--outbind needs --outbind-system-id")
        changes["outbind"] = [{"address": a, "system_id": args.outbind_system_id, "password": args.outbind_password}
                              for a in args.outbind]
    elif args.outbind_system_id:
        raise ConfigError("--outbind-system-id without --outbind")
    if changes:
        data = msgspec.to_builtins(config)
        data.update(changes)
        config = config_from_dict(data)
    return config


def run(args: argparse.Namespace) -> int:
    """Bad arguments or configuration raise ConfigError (the dispatcher's one line, exit 2);
    a listener that cannot start is one line naming its address, exit 1."""
    config = build_config(args)
    import smppcore

    from .app import ListenError, serve_forever, tls_context

    if config.tls is not None:
        tls_context(config.tls)  # a certificate that does not load: one line, exit 2, before anything starts
    try:
        smppcore.run(serve_forever(config, quiet=args.quiet))
    except ListenError as exc:
        print(f"smpphub simulate: {exc.strerror}", file=sys.stderr)
        return 1
    return 0
