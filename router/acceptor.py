"""The group commit of accepted messages: stored durably first, then answered and dispatched.

Every submit the hub accepts (an SMPP submit_sm / data_sm / submit_multi, or a message
of an HTTP request) comes here with its answer ready. Everything that arrives in one
event-loop turn is stored in one write (:class:`~.batching.TurnBatcher`), and only when
that write has returned does each submitter get its answer and each message go to the
dispatcher: an answer is a promise that the message survives a SIGKILL. A store failure
(disk full, read-only) answers ESME_RMSGQFUL instead: the message was not accepted, so
the submitter keeps it and comes back later.
"""

from __future__ import annotations

import time
from typing import Protocol

import msgspec
import structlog

from smppcore import CommandStatus, Pdu
from smppcore.server import SmscConnection

from .batching import TurnBatcher
from .dispatch import Dispatcher
from .msglog import MessageLog, destination_of
from .stats import HubStats
from .store import Store
from .upstream import Outgoing

__all__ = ["Acceptor", "Responder", "Submission"]

log = structlog.get_logger("smpphub.esme")


class Responder(Protocol):
    """Where a submit's answer goes once its messages are stored (or not): an ESME's connection,
    or an HTTP request waiting for it."""

    def respond(self, pdu: Pdu) -> None: ...


class Submission(msgspec.Struct):
    """Submits of one submitter waiting for their group commit: where to answer, the requests
    and their answers (``responses[i]`` to ``requests[i]``), and the messages they made.

    Either one request and its messages (a submit_multi, an HTTP request: any number), or
    the submits of one read of an ESME, one message each (``messages[i]`` of ``requests[i]``):
    one Submission for the read, where one a submit made the commit loop over them one by
    one (callgrind, submit leg over fakes: ~2.3k instructions a message). A Struct, built by
    msgspec in C.
    """

    conn: Responder | None
    requests: list[Pdu]
    responses: list[Pdu]
    messages: list[Outgoing]

    def request_of_each(self) -> list[Pdu]:
        """The request each of :attr:`messages` came in, in their order."""
        if len(self.requests) == len(self.messages):
            return self.requests
        return [self.requests[0]] * len(self.messages)


class Acceptor:
    """Group-commits accepted messages, then answers and hands them to the dispatcher."""

    def __init__(self, store: Store, dispatcher: Dispatcher, msglog: MessageLog | None = None) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.msglog = msglog or MessageLog.off()
        self._batcher: TurnBatcher[Submission] = TurnBatcher(self._commit)
        self.store_failures = 0  # messages refused since the store last failed (0: it works)

    @property
    def commits(self) -> int:
        return self._batcher.batches

    @property
    def accepted(self) -> int:
        """Messages (segments) stored and answered, all accounts: the hub's stats count them, by account."""
        return self.dispatcher.stats.accepted_total()

    def accept(self, conn: Responder | None, request: Pdu, response: Pdu, messages: list[Outgoing]) -> None:
        """Store ``messages``; then send ``response`` on ``conn`` and dispatch them."""
        self._batcher.add(Submission(conn, [request], [response], messages))

    def accept_run(self, conn: Responder | None, requests: list[Pdu], responses: list[Pdu],
                   messages: list[Outgoing]) -> None:
        """:meth:`accept` of each of ``requests`` (the submits of one read), in order: ``messages[i]``
        made of ``requests[i]``, answered ``responses[i]`` once stored."""
        if len(requests) != len(responses) or len(requests) != len(messages):
            raise ValueError(f"{len(requests)} requests, {len(responses)} responses, {len(messages)} messages")
        self._batcher.add(Submission(conn, requests, responses, messages))

    async def _commit(self, batch: list[Submission]) -> None:
        rows = [out.row for sub in batch for out in sub.messages]
        started = time.perf_counter()
        try:
            await self.store.add_messages(rows)
        except Exception as exc:  # noqa: BLE001 - not accepted: the ESMEs keep their messages
            # ESME_RMSGQFUL, not ESME_RSYSERR: a full or read-only disk passes, and this is
            # the status that tells a client to keep the message and come back later
            if not self.store_failures:
                log.error("store_failed", messages=len(rows), error=str(exc))  # once per episode
            self.store_failures += len(rows)
            for sub in batch:
                if sub.conn is not None:
                    for request in sub.requests:
                        sub.conn.respond(request.make_response(command_status=CommandStatus.ESME_RMSGQFUL))
                if self.msglog.on:
                    for out, request in zip(sub.messages, sub.request_of_each(), strict=True):
                        self.msglog.refused(out.row.account, request, CommandStatus.ESME_RMSGQFUL,
                                            f"store failed: {exc}", destination_of(out.pdu))
            return
        if self.store_failures:
            log.warning("store_recovered", refused=self.store_failures)
            self.store_failures = 0
        stats: HubStats = self.dispatcher.stats
        stats.store_commit.observe(time.perf_counter() - started)
        stats.store_batch.observe(len(rows))
        stats.accepted.update([row.account for row in rows])
        trace = self.msglog.trace
        accepted: list[Outgoing] = []
        answers: dict[Responder, list[Pdu]] = {}  # by submitter, in the order they came
        for sub in batch:
            conn = sub.conn
            if conn is not None:
                owed = answers.get(conn)
                if owed is None:
                    answers[conn] = list(sub.responses)
                else:
                    owed += sub.responses
            if trace:
                for out in sub.messages:
                    self.msglog.accepted(out)
            accepted += sub.messages
        for conn, responses in answers.items():
            if isinstance(conn, SmscConnection):  # an ESME's connection: all its answers in one go
                conn.respond_all(responses)
            else:
                for response in responses:
                    conn.respond(response)
        self.dispatcher.accept_all(accepted)

    async def drain(self) -> None:
        await self._batcher.drain()
