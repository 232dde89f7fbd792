"""Ports for the tests that must name one before anything listens on it.

Most servers in the tests bind port 0 and say which port they got. A few cannot: a
process started with ``--listen host:port`` (the test needs the number first), or an
upstream that is down now and must come back later on the port the hub already dials.
For those, ``free_port`` asks the kernel for a port that is free at this moment and
closes it again. Another process could take it before it is used, so it is for those
cases only: wherever a server can bind port 0 itself, it should.
"""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on ``HOST`` that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])
