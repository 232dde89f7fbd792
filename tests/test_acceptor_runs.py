"""The acceptor's runs against one submit at a time.

The submits of one read of an ESME are one Submission (Acceptor.accept_run): stored in
the same group commit as everything else of the turn, then answered and dispatched. A
run must answer, dispatch, count and log exactly what the same submits handed over one
at a time (Acceptor.accept) do, when the store takes them and when it fails, mixed with
submissions of other submitters and with one request of several messages (submit_multi,
the HTTP API).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smppcore import CommandStatus, Pdu, SubmitSm, encode
from smpphub.router.acceptor import Acceptor
from smpphub.router.lifecycle import MessageRow
from smpphub.router.stats import HubStats
from smpphub.router.upstream import Outgoing


class Conn:
    """A submitter that records its answers (not an SMSC connection: answered one by one)."""

    def __init__(self, name: str, log: list[tuple[str, int, int, str]]) -> None:
        self.name = name
        self.log = log

    def respond(self, pdu: Pdu) -> None:
        self.log.append((self.name, pdu.sequence_number, pdu.command_status, getattr(pdu, "message_id", "")))


class Store:
    def __init__(self, fails: bool) -> None:
        self.fails = fails
        self.added: list[str] = []

    async def add_messages(self, rows: list[MessageRow]) -> None:
        if self.fails:
            raise OSError("disk full")
        self.added += [row.id for row in rows]


class Dispatcher:
    def __init__(self) -> None:
        self.stats = HubStats()
        self.dispatched: list[str] = []

    def accept_all(self, outs: list[Outgoing]) -> None:
        self.dispatched += [out.row.id for out in outs]


class MessageLog:
    on = True
    trace = True

    def __init__(self) -> None:
        self.lines: list[tuple[Any, ...]] = []

    def refused(self, account: str, request: Pdu, status: int, reason: str, destination: str = "") -> None:
        self.lines.append(("refused", account, request.sequence_number, status, destination))

    def accepted(self, out: Outgoing) -> None:
        self.lines.append(("accepted", out.row.id))


def message(conn: str, seq: int, part: int = 0) -> tuple[SubmitSm, Pdu, Outgoing]:
    pdu = SubmitSm(destination_addr=f"4477009{seq:05d}", sequence_number=seq)
    row = MessageRow(id=f"{conn}-{seq}-{part}", account=conn, pdu=encode(pdu), route=["u"])
    return pdu, pdu.make_response(message_id=row.id), Outgoing(row, pdu)


# a submitter's submissions: a run of submits (one message each), or one request of several messages
SUBMISSIONS = st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["run", "multi"]),
                                 st.integers(1, 5)), min_size=1, max_size=6)


def handed_over(submissions: list[tuple[str, str, int]], fails: bool, together: bool) -> tuple[Any, ...]:
    async def run() -> tuple[Any, ...]:
        answers: list[tuple[str, int, int, str]] = []
        conns = {name: Conn(name, answers) for name in "ab"}
        store, dispatcher, msglog = Store(fails), Dispatcher(), MessageLog()
        acceptor = Acceptor(store, dispatcher, msglog)  # type: ignore[arg-type]
        seq = 0
        for name, kind, n in submissions:
            if kind == "multi":  # one request, n messages
                seq += 1
                parts = [message(name, seq, part) for part in range(n)]
                acceptor.accept(conns[name], parts[0][0], parts[0][1], [out for _, _, out in parts])
                continue
            made = [message(name, seq + i + 1) for i in range(n)]
            seq += n
            if together:
                acceptor.accept_run(conns[name], [r for r, _, _ in made], [a for _, a, _ in made],
                                    [o for _, _, o in made])
            else:
                for request, response, out in made:
                    acceptor.accept(conns[name], request, response, [out])
        await acceptor.drain()
        return (answers, store.added, dispatcher.dispatched, msglog.lines, dict(dispatcher.stats.accepted),
                acceptor.store_failures, acceptor.commits)

    return asyncio.run(run())


@settings(max_examples=60, deadline=None)
@given(SUBMISSIONS, st.booleans())
def test_a_run_is_stored_answered_and_dispatched_as_its_submits_one_at_a_time(
    submissions: list[tuple[str, str, int]], fails: bool
) -> None:
    assert handed_over(submissions, fails, together=True) == handed_over(submissions, fails, together=False)


def test_a_store_that_fails_refuses_each_submit_of_a_run_and_logs_each_message_with_its_request() -> None:
    answers, added, dispatched, lines, _, failures, commits = handed_over([("a", "run", 3), ("b", "multi", 2)],
                                                                          fails=True, together=True)
    assert answers == [("a", n, CommandStatus.ESME_RMSGQFUL, "") for n in (1, 2, 3)] + [
        ("b", 4, CommandStatus.ESME_RMSGQFUL, "")]
    assert [line[2] for line in lines] == [1, 2, 3, 4, 4]  # each message with the request it came in
    assert (added, dispatched, failures, commits) == ([], [], 5, 1)


def test_a_run_of_unequal_parts_is_refused_before_anything_is_queued() -> None:
    acceptor = Acceptor(Store(False), Dispatcher())  # type: ignore[arg-type]
    request, response, out = message("a", 1)
    with pytest.raises(ValueError, match="2 requests, 1 responses, 1 messages"):
        acceptor.accept_run(None, [request, request], [response], [out])
    assert acceptor.commits == 0
