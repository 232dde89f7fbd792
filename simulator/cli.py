"""``smpphub simulate``: arguments and entry point."""

from __future__ import annotations

import argparse
import sys

import msgspec

from .config import ConfigError, SimulatorConfig, load_config

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
        from .config import config_from_dict

        config = config_from_dict(data)
    return config


def run(args: argparse.Namespace) -> int:
    try:
        config = build_config(args)
    except ConfigError as exc:
        print(f"smpphub simulate: {exc}", file=sys.stderr)
        return 2
    import smppcore

    from .app import serve_forever

    try:
        smppcore.run(serve_forever(config, quiet=args.quiet))
    except OSError as exc:  # app.ListenError names the address; anything else is still one line
        print(f"smpphub simulate: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
