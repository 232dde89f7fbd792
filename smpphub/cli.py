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
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from smppcore.config import ConfigError

DEBUG_VARIABLE = "SMPPHUB_DEBUG"


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the usage and then the error; a newcomer needs the error, on one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


# --- dispatcher ----------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _lazy(summary: str, module: str, add_arguments: str, run: str) -> Command:
    """A subcommand whose module is imported when its functions are called, never when
    this module is: the packages below import nothing from here, and none of them at
    the import of another."""

    def add(p: argparse.ArgumentParser) -> None:
        adder: Callable[[argparse.ArgumentParser], None] = getattr(importlib.import_module(module), add_arguments)
        adder(p)

    def call(args: argparse.Namespace) -> int:
        runner: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), run)
        return runner(args)

    return Command(summary, add, call)


COMMANDS: dict[str, Command] = {
    "send": _lazy(
        "bind to an SMSC, send one (possibly long) message, optionally wait for its receipt",
        "smpphub.send", "add_send_arguments", "cmd_send",
    ),
    "serve": _lazy("run the routing hub", "smpphub.router.cli", "add_serve_arguments", "serve"),
    "bench": _lazy("load generator: drive any SMPP server and measure it", "smpphub.bench.cli", "add_arguments", "run"),
    "hash-password": _lazy("print the password_hash of a password, for hub.toml accounts",
                           "smpphub.router.cli", "add_hash_arguments", "hash_password_cmd"),
    "api-token": _lazy("make an HTTP API token: prints the token (for the client) and its hash (for hub.toml)",
                       "smpphub.router.cli", "add_token_arguments", "api_token_cmd"),
    "simulate": _lazy("run the SMSC simulator (scriptable carrier for ESME tests and load tests)",
                      "smpphub.simulator.cli", "add_arguments", "run"),
    "check-esme": _lazy("play a fixed conformance battery against your ESME, which binds here; pass/fail per item",
                        "smpphub.simulator.conformance.cli", "add_arguments", "run"),
    "demo": _lazy("run a self-contained demo: two simulated carriers, the hub, and an ESME using it",
                  "smpphub.demo", "add_demo_arguments", "cmd_demo"),
    "admin": _lazy("steer a running hub through its admin API: binds, upstreams, routes, traces",
                   "smpphub.admin", "add_admin_arguments", "cmd_admin"),
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
