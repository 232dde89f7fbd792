"""Typed configuration at the edge: TOML or dicts decoded into msgspec Structs.

The hub and the simulator describe their configuration as msgspec Structs; this
module turns what users wrote into them, and every problem into a
:class:`ConfigError` whose one line names the key (``upstreams[1].port: expected
int <= 65535``), so ``smpphub`` can print it and exit with status 2.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any, TypeVar

import msgspec

__all__ = ["ConfigError", "explain", "decode_config", "load_toml_config", "parse_host_port", "format_host_port"]

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration problem, described on one line that names the key."""


def parse_host_port(value: str, *, allow_port_zero: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:2775`` for IPv6) -> (host, port); the one place this is read.

    Raises :class:`ConfigError` with a line that names what is wrong. Port 0 ("any free
    port") is for listeners only, so callers that connect leave ``allow_port_zero`` off.
    """
    host, sep, port = value.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"expected HOST:PORT, got {value!r}")
    number = int(port)
    low = 0 if allow_port_zero else 1
    if not low <= number <= 65535:
        raise ConfigError(f"port must be {low} to 65535, got {value!r}")
    if ":" in host and not value.strip().startswith("["):
        raise ConfigError(f"write an IPv6 address as [ADDRESS]:PORT, got {value!r}")
    return host, number


def format_host_port(host: str, port: int) -> str:
    """``HOST:PORT`` as a user writes it (``[::1]:2775`` for IPv6): what :func:`parse_host_port` reads."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def explain(exc: msgspec.ValidationError) -> str:
    """msgspec says ``Expected `int`, got `str` - at `$.window` ``; we say ``window: expected int, got str``."""
    msg = str(exc)
    m = re.match(r"(?s)(.*?)(?: - at `\$\.?(.*)`)?$", msg)
    what, where = m.groups() if m else (msg, "")
    unknown = re.match(r"Object contains unknown field `(.*)`", what)
    if unknown:
        key = f"{where}.{unknown.group(1)}" if where else unknown.group(1)
        return f"{key}: unknown key"
    missing = re.match(r"Object missing required field `(.*)`", what)
    if missing:
        key = f"{where}.{missing.group(1)}" if where else missing.group(1)
        return f"{key}: required"
    what = what.replace("`", "")
    if len(what) > 1 and what[1].islower():  # "Expected ..." -> "expected ...", but keep "SMPP ..."
        what = what[0].lower() + what[1:]
    return f"{where}: {what}" if where else what


def decode_config(data: dict[str, Any], type_: type[T]) -> T:
    try:
        return msgspec.convert(data, type_)
    except msgspec.ValidationError as exc:
        raise ConfigError(explain(exc)) from None


def load_toml_config(path: str, type_: type[T]) -> T:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return decode_config(data, type_)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
