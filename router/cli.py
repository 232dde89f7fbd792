"""``smpphub serve`` and ``smpphub hash-password``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

import structlog

from .config import ConfigError, HubConfig, LogConfig, check_environment, config_warnings, load_config

__all__ = ["add_serve_arguments", "serve", "add_hash_arguments", "hash_password_cmd", "setup_logging",
           "add_token_arguments", "api_token_cmd"]


def setup_logging(cfg: LogConfig) -> None:
    """structlog for the hub's own events; stdlib logging (smppcore, aiohttp) through the same renderer.

    ``access`` events (``[log] access_log = "-"``) are written whatever ``level`` says:
    an operator who asked for them wants them beside warnings only, too. A file
    access log has a handler of its own (see :mod:`smpphub.router.msglog`).
    """
    level = getattr(logging, cfg.level.upper())
    if cfg.format == "json":
        # JSON has no place for a traceback object: log.exception(...) gets it as an "exception" string
        renderer: list[structlog.typing.Processor] = [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ]
    else:
        renderer = [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
        ]
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=renderer, foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("smpphub.access").setLevel(logging.INFO)


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, metavar="FILE", help="hub.toml")
    p.add_argument("--check", action="store_true", help="only check the configuration and exit")


async def _serve(path: str, config: HubConfig) -> int:
    import smppcore

    from .hub import Hub

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    log = structlog.get_logger("smpphub")
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    hub = Hub(config)
    await hub.start()
    smppcore.quiet_gc()

    def reload() -> None:
        try:
            new = load_config(path)
        except ConfigError as exc:
            log.error("reload_refused", error=str(exc))
            return
        for warning in config_warnings(new):
            log.warning("config_warning", warning=warning)
        hub.reload(new)

    loop.add_signal_handler(signal.SIGHUP, reload)
    for server in hub.servers:
        print(f"smpphub listening on {server.host}:{server.port}", flush=True)
    if hub.http is not None:
        print(f"smpphub http api on {hub.http.url}", flush=True)
    await stop.wait()
    await hub.stop()
    return 0


def serve(args: argparse.Namespace) -> int:
    """Load and check everything ``--check`` can (ConfigError: exit 2), then run the hub.

    At run time a store that cannot be opened and a listener that cannot be bound are
    one line each naming the path or address, exit 1; the start binds the listeners
    before it creates the store, so such a failure leaves no file behind (Hub.start).
    """
    config = load_config(args.config)
    try:
        check_environment(config)
    except ConfigError as exc:
        raise ConfigError(f"{args.config}: {exc}") from None
    for warning in config_warnings(config):
        print(f"warning: {args.config}: {warning}", file=sys.stderr)
    if args.check:
        print(f"{args.config}: OK ({len(config.accounts)} accounts, {len(config.upstreams)} upstreams, "
              f"{len(config.routes)} routes)")
        return 0
    setup_logging(config.log)
    import smppcore

    from .hub import ListenError
    from .store.sqlite import StoreOpenError

    try:
        return smppcore.run(_serve(args.config, config))
    except ListenError as exc:
        print(f"smpphub serve: {exc.strerror}", file=sys.stderr)
        return 1
    except StoreOpenError as exc:
        print(f"smpphub serve: {exc}", file=sys.stderr)
        return 1


def add_hash_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("password", nargs="?", help="the password (asked for, or read from stdin, when omitted)")


def _read_password() -> str:
    """The password from the terminal (not echoed) or the first line of stdin."""
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        raise ConfigError("no password: give it as an argument or on stdin (stdin is closed)")
    if stdin.isatty():
        import getpass

        try:
            return getpass.getpass("password: ")
        except EOFError:
            raise ConfigError("no password given") from None
    line = stdin.readline()
    if not line:
        raise ConfigError("no password: give it as an argument or as a line on stdin (stdin was empty)")
    return line.rstrip("\r\n")


def check_password(password: str) -> None:
    """An SMPP password is a C-octet string of at most 8 Latin-1 characters (SMPP 3.4, 4.1.1)."""
    if not password:
        raise ConfigError("the password is empty")
    if len(password) > 8:
        raise ConfigError(f"SMPP passwords are 1 to 8 characters, got {len(password)}")
    try:
        password.encode("latin-1")
    except UnicodeEncodeError:
        raise ConfigError("SMPP carries the password as Latin-1 text; this one has other characters") from None
    if "\x00" in password:
        raise ConfigError("the password holds a NUL character, which ends it on the wire")


def hash_password_cmd(args: argparse.Namespace) -> int:
    from .auth import hash_password

    password = args.password if args.password is not None else _read_password()
    check_password(password)
    print(hash_password(password))
    return 0


def add_token_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--token", help="hash this token instead of making a new one (read from stdin with -)")


def api_token_cmd(args: argparse.Namespace) -> int:
    """A new API token and the ``sha256$...`` line for ``api_tokens`` (or ``[http] admin_token``).

    The token is shown once: the hub keeps only its hash (see smpphub.router.http.tokens).
    """
    from .http.tokens import hash_token, new_token

    token = args.token
    if token == "-":
        token = sys.stdin.readline().rstrip("\r\n") if sys.stdin is not None else ""
    if token is not None and len(token) < 16:
        raise ConfigError("an API token must be at least 16 characters (a new one: smpphub api-token)")
    if token is None:
        token = new_token()
        print(f"token: {token}")
    print(f"hash:  {hash_token(token)}")
    return 0
