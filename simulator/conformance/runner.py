"""One check-esme run: listen, let the ESME bind, play the battery, hand back the report.

::

    checker = EsmeChecker(Limits(timeout=10), host="127.0.0.1", port=0)
    port = await checker.start()          # now start the ESME against this port
    try:
        report = await checker.run()
    finally:
        await checker.close()

The run is bounded as a whole (:func:`~.battery.run_bound`) as well as check by
check; when no ESME ever binds, the judged checks after ``bind`` are skipped at once
instead of each waiting its timeout for nothing (the informational ones still say
what was seen).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from smppcore.config import format_host_port

from .battery import CHECKS, Context, Limits, run_bound
from .probe import Harness, ProbeConnection
from .report import CheckResult, Report, Status

__all__ = ["EsmeChecker"]


class EsmeChecker:
    def __init__(
        self, limits: Limits, *, host: str = "127.0.0.1", port: int = 2775,
        system_id: str | None = None, password: str | None = None,
    ) -> None:
        self.limits = limits
        self.host = host
        self.port = port
        self._credentials = (system_id, password)
        self._server: asyncio.Server | None = None
        self._harness: Harness | None = None

    @property
    def harness(self) -> Harness:
        """What the run has seen so far (after :meth:`start`)."""
        assert self._harness is not None, "start() first"
        return self._harness

    @property
    def listen(self) -> str:
        return format_host_port(self.host, self.port)

    async def start(self) -> int:
        """Listen (port 0: any free port); the port. Raises OSError when it cannot."""
        system_id, password = self._credentials
        harness = self._harness = Harness(system_id=system_id, password=password)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: ProbeConnection(harness), self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def run(self, on_result: Callable[[CheckResult], None] | None = None) -> Report:
        """Play every check in order; ``on_result`` hears each result as it is decided."""
        harness = self._harness
        assert harness is not None, "start() first"
        ctx = Context(harness, self.limits)
        report = Report(self.listen)
        try:
            async with asyncio.timeout(run_bound(self.limits)):
                for check in CHECKS:
                    if report.results and not check.informational and not any(b.status == 0 for b in harness.binds):
                        result = CheckResult(check.name, Status.SKIP, "not run: the ESME never bound")
                    else:
                        result = await check.run(ctx)
                    report.results.append(result)
                    if on_result is not None:
                        on_result(result)
        except TimeoutError:
            done = {r.name for r in report.results}
            for check in CHECKS:
                if check.name not in done:
                    result = CheckResult(check.name, Status.SKIP, "not run: the run went over its time bound")
                    report.results.append(result)
                    if on_result is not None:
                        on_result(result)
        return report

    async def close(self) -> None:
        """Stop listening and cut whatever connection is left."""
        if self._server is not None:
            self._server.close()
        if self._harness is not None:
            for conn in list(self._harness.connections):
                conn.drop()
        if self._server is not None:
            await self._server.wait_closed()
