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


# --- subcommands, each in a module of its own ---------------------------------------


def _add_send_arguments(p: argparse.ArgumentParser) -> None:
    from smpphub.send import add_send_arguments

    add_send_arguments(p)


def cmd_send(args: argparse.Namespace) -> int:
    from smpphub.send import cmd_send as run

    return run(args)


def _add_demo_arguments(p: argparse.ArgumentParser) -> None:
    from smpphub.demo import add_demo_arguments

    add_demo_arguments(p)


def cmd_demo(args: argparse.Namespace) -> int:
    from smpphub.demo import cmd_demo as run

    return run(args)


# --- subcommands that live in the packages -----------------------------------------------


def _add_simulate_arguments(p: argparse.ArgumentParser) -> None:
    from smpphub.simulator.cli import add_arguments

    add_arguments(p)


def cmd_simulate(args: argparse.Namespace) -> int:
    from smpphub.simulator.cli import run

    return run(args)


def _add_serve_arguments(p: argparse.ArgumentParser) -> None:
    from smpphub.router.cli import add_serve_arguments

    add_serve_arguments(p)


def cmd_serve(args: argparse.Namespace) -> int:
    from smpphub.router.cli import serve

    return serve(args)


def _add_hash_arguments(p: argparse.ArgumentParser) -> None:
    from smpphub.router.cli import add_hash_arguments

    add_hash_arguments(p)


def cmd_hash_password(args: argparse.Namespace) -> int:
    from smpphub.router.cli import hash_password_cmd

    return hash_password_cmd(args)


def _add_bench_arguments(p: argparse.ArgumentParser) -> None:
    from smpphub.bench.cli import add_arguments

    add_arguments(p)


def cmd_bench(args: argparse.Namespace) -> int:
    from smpphub.bench.cli import run

    return run(args)


# --- dispatcher ----------------------------------------------------------------------

#: name -> (help, how to add its arguments, what runs it)
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None] | None, Callable[[argparse.Namespace], int]]] = {
    "send": (
        "bind to an SMSC, send one (possibly long) message, optionally wait for its receipt",
        _add_send_arguments,
        cmd_send,
    ),
    "serve": ("run the routing hub", _add_serve_arguments, cmd_serve),
    "bench": ("load generator: drive any SMPP server and measure it", _add_bench_arguments, cmd_bench),
    "hash-password": ("print the password_hash of a password, for hub.toml accounts", _add_hash_arguments, cmd_hash_password),
    "simulate": ("run the SMSC simulator (scriptable carrier for ESME tests and load tests)", _add_simulate_arguments, cmd_simulate),
    "demo": ("run a self-contained demo: two simulated carriers, the hub, and an ESME using it", _add_demo_arguments, cmd_demo),
}


def build_parser() -> argparse.ArgumentParser:
    from smpphub import __version__

    parser = argparse.ArgumentParser(prog="smpphub", description="SMPP 3.4 hub, SMSC simulator and load generator")
    parser.add_argument("--version", action="version", version=f"smpphub {__version__}")
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
