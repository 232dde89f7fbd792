"""``smpphub simulate``: arguments and entry point."""

from __future__ import annotations

import argparse
import sys

import msgspec

from .config import SimulatorConfig, config_from_dict, load_config

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="simulator.toml (default: accept any bind, deliver everything)")
    p.add_argument("--listen", metavar="HOST:PORT", help="SMPP address (overrides the config; default 127.0.0.1:2775)")
    p.add_argument("--http", metavar="HOST:PORT", help="serve GET /messages and /stats as JSON here")
    p.add_argument("--seed", type=int, help="seed for every random choice (replayable runs)")
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

    from .app import ListenError, serve_forever

    try:
        smppcore.run(serve_forever(config, quiet=args.quiet))
    except ListenError as exc:
        print(f"smpphub simulate: {exc.strerror}", file=sys.stderr)
        return 1
    return 0
