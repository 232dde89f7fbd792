"""``smpphub check-esme``: arguments, the run, the report on stdout (and as JSON).

Exit status: 0 every check passed, 1 a check failed or was skipped (or the
listener could not start: one line naming the address), 2 bad arguments
(:class:`~smppcore.config.ConfigError`, printed by the dispatcher on one line).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import textwrap

from smppcore.config import ConfigError, parse_host_port

from .battery import CHECKS, Limits
from .report import CheckResult, Report, format_line
from .runner import EsmeChecker

__all__ = ["add_arguments", "run", "limits_from_args", "MESSAGES_NEEDED"]

#: what the ESME should be ready to send: the checks consume submits as they go
MESSAGES_NEEDED = 100


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen", metavar="HOST:PORT", default="127.0.0.1:2775",
                   help="where the ESME connects (default 127.0.0.1:2775; port 0: any free port, printed)")
    p.add_argument("--system-id", metavar="X", help="accept binds with this system_id only (default: any)")
    p.add_argument("--password", metavar="Y", help="accept binds with this password only (default: any)")
    p.add_argument("--bind-timeout", metavar="S", default="60",
                   help="how long to wait for the ESME's first bind: time to start it (default 60)")
    p.add_argument("--timeout", metavar="S", default="30",
                   help="per check: how long to wait for the ESME to submit, reconnect, bind again (default 30)")
    p.add_argument("--response-limit", metavar="S", default="2",
                   help="the longest the ESME may take to answer a PDU of the checker (default 2)")
    p.add_argument("--window", metavar="N", default="10",
                   help="requests the ESME may have in flight on one connection (default 10)")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    p.add_argument("--list", action="store_true", help="print the checks and the ESME bug each catches, and exit")


def _seconds(name: str, value: str, most: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}: expected seconds, got {value!r}") from None
    if not (math.isfinite(number) and 0 < number <= most):
        raise ConfigError(f"{name}: expected seconds above 0 and at most {most:g}, got {value!r}")
    return number


def limits_from_args(args: argparse.Namespace) -> Limits:
    try:
        window = int(args.window)
    except ValueError:
        raise ConfigError(f"--window: expected a whole number, got {args.window!r}") from None
    if not 1 <= window <= 100_000:
        raise ConfigError(f"--window: expected 1 to 100000, got {args.window!r}")
    return Limits(bind_timeout=_seconds("--bind-timeout", args.bind_timeout, 3600),
                  timeout=_seconds("--timeout", args.timeout, 3600),
                  response_limit=_seconds("--response-limit", args.response_limit, 600), window=window)


def _check_json_target(path: str | None) -> None:
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ConfigError(f"--json: {path} is a directory")
    if not os.path.isdir(folder):
        raise ConfigError(f"--json: no such folder {folder}")


def print_checks() -> None:
    """``--list``: each check and the ESME bug it catches (the first paragraph of its docstring)."""
    for check in CHECKS:
        print(check.name)
        print(textwrap.fill(check.catches, width=88, initial_indent="    ", subsequent_indent="    "))


def run(args: argparse.Namespace) -> int:
    if args.list:
        print_checks()
        return 0
    try:
        host, port = parse_host_port(args.listen, allow_port_zero=True)
    except ConfigError as exc:
        raise ConfigError(f"--listen: {exc}") from None
    limits = limits_from_args(args)
    _check_json_target(args.json)
    import smppcore

    checker = EsmeChecker(limits, host=host, port=port, system_id=args.system_id, password=args.password)
    try:
        report = smppcore.run(_run(checker))
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        print(f"smpphub check-esme: cannot listen on {args.listen}: {reason}", file=sys.stderr)
        return 1
    if args.json:
        try:
            with open(args.json, "wb") as f:
                f.write(report.to_json())
        except OSError as exc:
            print(f"smpphub check-esme: cannot write {args.json}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    return 0 if report.passed else 1


async def _run(checker: EsmeChecker) -> Report:
    await checker.start()
    print(f"check-esme: listening on {checker.listen}; start your ESME so that it binds and keeps submitting "
          f"(at least {MESSAGES_NEEDED} messages) while {len(CHECKS)} checks run", flush=True)

    def show(result: CheckResult) -> None:
        print(format_line(result), flush=True)

    try:
        report = await checker.run(show)
    finally:
        await checker.close()
    print(report.summary_line(), flush=True)
    return report
