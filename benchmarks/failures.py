"""Why a load run could not be carried out, said on one line.

``smpphub bench`` prints these and exits 1: the user has to know at once whether to
fix the address, the credentials, the TLS options or the server.
"""

from __future__ import annotations

import ssl

import smppcore
from smppcore import status_name

__all__ = ["BenchError", "connect_failure"]


class BenchError(Exception):
    """The run could not be carried out (a worker failed); the message says why, on one line."""


def connect_failure(host: str, port: int, exc: BaseException, timeout: float) -> str:
    """One line saying why connecting and binding to ``host:port`` failed: the user needs
    to know whether to fix the address, the credentials, the TLS options or the server."""
    where = f"{host}:{port}"
    if isinstance(exc, smppcore.BindError):
        return f"{where} refused the bind: {status_name(exc.command_status)}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS with {where}: certificate refused: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS with {where} failed ({exc.reason or exc}): is it a TLS port?"
    if isinstance(exc, TimeoutError):  # asyncio's too, and smppcore's ResponseTimeout
        return f"{where} did not answer the bind within {timeout:g} s"
    if isinstance(exc, smppcore.SmppError):
        return f"{where} closed the connection during the bind ({exc})"
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {exc.strerror or exc or type(exc).__name__}"
    return f"cannot bind to {where}: {type(exc).__name__}: {exc}"
