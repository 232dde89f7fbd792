"""The ``smpphub`` command: a thin dispatcher over the packages.

Each subcommand imports what it needs when it runs, so ``smpphub send`` does not
pay for the hub and nothing below imports this module. Exit status: 0 success,
1 failure at run time, 2 bad arguments or configuration.

What reaches the user on failure is always one line on stderr:

- bad input: a subcommand raises :class:`smppcore.config.ConfigError` (the packages
  below already speak it, and cannot import this module), printed here as
  ``smpphub COMMAND: <its line>``, exit 2; argparse's own complaints are one line too
  (:class:`OneLineParser`), not usage plus error;
- a failure at run time the subcommand foresaw: it prints its own line, returns 1;
- anything else escaping a subcommand is a bug: ``smpphub COMMAND: internal error: ...``,
  exit 1, the traceback only with ``SMPPHUB_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Callable, NoReturn

from smppcore.config import ConfigError

DEBUG_VARIABLE = "SMPPHUB_DEBUG"


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the usage and then the error; a newcomer needs the error, on one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


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


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {
    "send": Command(
        "bind to an SMSC, send one (possibly long) message, optionally wait for its receipt",
        _add_send_arguments,
        cmd_send,
    ),
    "serve": Command("run the routing hub", _add_serve_arguments, cmd_serve),
    "bench": Command("load generator: drive any SMPP server and measure it", _add_bench_arguments, cmd_bench),
    "hash-password": Command("print the password_hash of a password, for hub.toml accounts", _add_hash_arguments, cmd_hash_password),
    "simulate": Command("run the SMSC simulator (scriptable carrier for ESME tests and load tests)", _add_simulate_arguments, cmd_simulate),
    "demo": Command("run a self-contained demo: two simulated carriers, the hub, and an ESME using it", _add_demo_arguments, cmd_demo),
}


def build_parser() -> argparse.ArgumentParser:
    from smpphub import __version__

    parser = OneLineParser(prog="smpphub", description="SMPP 3.4 hub, SMSC simulator and load generator")
    parser.add_argument("--version", action="version", version=f"smpphub {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(p)
    return parser


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    name = args.command
    try:
        return COMMANDS[name].run(args)
    except ConfigError as exc:
        print(f"smpphub {name}: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a bug is one line too
        if os.environ.get(DEBUG_VARIABLE):
            raise
        detail = _one_line(str(exc))
        what = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        print(f"smpphub {name}: internal error: {what} (run with {DEBUG_VARIABLE}=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
