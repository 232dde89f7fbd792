"""What a check-esme run found: one result per check, as text for a terminal and as JSON.

A result says what the checker *saw* (times, counts, statuses), not only pass or
fail, so a failing ESME's developer knows where to look without a packet capture.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

__all__ = ["Status", "CheckResult", "Report", "format_line"]


class Status(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    #: informational: reported, never fails the run
    INFO = "info"
    #: not run because what it needs is missing (another check failed first)
    SKIP = "skip"


class CheckResult(msgspec.Struct, frozen=True):
    name: str
    status: Status
    summary: str  # one line: what was seen
    #: the measured figures behind the summary (seconds, counts), for --json
    figures: dict[str, Any] = {}


class Report(msgspec.Struct):
    listen: str
    results: list[CheckResult] = []

    @property
    def passed(self) -> bool:
        """Every check passed (informational ones aside): the exit status is 0."""
        return all(r.status in (Status.PASS, Status.INFO) for r in self.results)

    def counts(self) -> dict[Status, int]:
        return {s: sum(1 for r in self.results if r.status is s) for s in Status}

    def summary_line(self) -> str:
        c = self.counts()
        judged = c[Status.PASS] + c[Status.FAIL] + c[Status.SKIP]
        line = f"check-esme: {c[Status.PASS]} of {judged} checks passed"
        extra = [f"{c[s]} {_LABELS[s]}" for s in (Status.FAIL, Status.SKIP, Status.INFO) if c[s]]
        return line + (f" ({', '.join(extra)})" if extra else "")

    def to_json(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(
            {"listen": self.listen, "passed": self.passed, "checks": self.results}
        ), indent=2) + b"\n"


_LABELS = {Status.FAIL: "failed", Status.SKIP: "skipped", Status.INFO: "informational"}


def format_line(result: CheckResult) -> str:
    """``PASS  enquire_link    answered ESME_ROK in 0.8 ms (limit 2000 ms)``."""
    return f"{result.status.name:<5} {result.name:<17} {result.summary}"
