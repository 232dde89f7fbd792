"""Event loop selection: uvloop when installed, unless disabled."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run", "new_event_loop", "uvloop_enabled"]

T = TypeVar("T")


def uvloop_enabled(use_uvloop: bool | None = None) -> bool:
    """True when uvloop is importable and not turned off (argument or SMPPHUB_NO_UVLOOP=1)."""
    if use_uvloop is False or (use_uvloop is None and os.environ.get("SMPPHUB_NO_UVLOOP") == "1"):
        return False
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def new_event_loop(use_uvloop: bool | None = None) -> asyncio.AbstractEventLoop:
    if uvloop_enabled(use_uvloop):
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T], *, use_uvloop: bool | None = None) -> T:
    """``asyncio.run`` on uvloop when available."""
    with asyncio.Runner(loop_factory=lambda: new_event_loop(use_uvloop)) as runner:
        return runner.run(main)
