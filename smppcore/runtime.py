"""Event loop selection (uvloop when installed, unless disabled), and the cycle collector
tuned for a long-running server."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run", "new_event_loop", "uvloop_enabled", "quiet_gc", "GC_YOUNG_THRESHOLD"]

#: allocations of container objects between two young-generation collections (CPython's default: 700)
GC_YOUNG_THRESHOLD = 10_000

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


def quiet_gc(young_threshold: int = GC_YOUNG_THRESHOLD) -> None:
    """Keep the cycle collector off the per-message path of a server that has started.

    Every message allocates a few dozen containers, so at CPython's default threshold a
    young collection runs every ~20 messages, and the older generations, which hold
    every message in flight, are walked over and over: py-spy put 9-13% of the hub's
    event loop in the collector (benchmarks/results/2026-12-01-hub-cpu.txt). What the
    start made (modules, configuration, the server's objects) is frozen out of the
    collector's sight; then a young collection runs every ``young_threshold`` allocations.

    Why 10,000 and not more: a young collection walks every live object allocated since
    the last one, ~0.5 us each, and at a steady rate most of them are still alive
    (waiting for a receipt), so its pause grows with the threshold. At 50,000 the hub's
    event loop stopped 15-30 ms each time; measured with ``python -m smpphub.bench.steady``
    (4,000 msg/s, 15 s, two runs each, 2026-12-02), submit latency p99.9 went from 118
    and 111 ms at 50,000 to 81 and 84 ms at 10,000, with the same CPU per message in the
    closed-loop hub benchmark (event loop 105.8 vs 105.0 us, medians of three).
    Call it once the server is up; it runs one full collection first.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
