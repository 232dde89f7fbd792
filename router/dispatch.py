"""Carries events between the message lifecycle and the world: upstream pools, store, ESMEs.

:mod:`router.lifecycle` decides everything about a message (when it may leave, which
upstream takes it, retries, back-off, failover, expiry, the receipt owed); this
module only turns what happens on the wire into its events and acts on the states
that come out:

==============  ===================================================================
state           what the dispatcher does
==============  ===================================================================
QUEUED          hands it to the pool of ``row.target`` (or reports that upstream down)
PARKED          keeps it until an upstream of its route comes up
SCHEDULED       nothing: the table's timer wakes it
IN_FLIGHT       nothing: the pool answers
SENT            forgets it, except for matching its receipt (bounded; else the store)
final           writes it; a receipt owed goes to the ESME's outbox
==============  ===================================================================

Upstream receipts are matched to their message (memory first, then the store),
turned into the lifecycle's Receipt / Intermediate events, and the receipt owed to
the ESME is written into the message's row durably before the upstream gets its
deliver_sm_resp: :class:`~smpphub.router.receipts.Receipts` does that, for the
dispatcher that owns it. MO messages are routed by destination to an account or a webhook (both through
:class:`~smpphub.router.delivery.Deliveries`, durable until acknowledged).

Delivery upstream is at least once: a message whose submit_sm was written but whose
answer never came (connection lost, timeout, hub restart) is written again.

What happens to many messages at once comes as a run and is acted on as one: a group
commit's messages accepted (:meth:`Dispatcher.accept_all`), a pool's turn taken
(:meth:`Dispatcher.taken`), a read's answers (:meth:`Dispatcher.answered`). The table
moves a run in one loop and :meth:`Dispatcher._steps` acts on it in one, where a chain of
calls per message (the dispatcher's move, the table's, the step, the hand-over) was most
of what the dispatcher cost it (callgrind, submit leg over fakes: 143.8k -> 139.3k
instructions a message). A run with a segment of a long message in it goes one row at a
time, since its siblings may move with it.
"""

from __future__ import annotations

import asyncio
import collections
import operator
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Protocol, cast

import structlog

from smppcore import CommandStatus, Pdu, encode
from smppcore.pdus import DataSm, DeliverSm
from smppcore.receipt import is_receipt

from .backlog import Backlog
from .batching import TurnCollector
from .config import HubConfig, Upstream
from .controls import Controls
from .delivery import Deliveries
from .lifecycle import MessageRow, RetryPolicy, State, Transition, accept
from .lifecycle_events import (
    Event,
    Expire,
    Restarted,
    SubmitOk,
    SubmitPermanent,
    SubmitTemporary,
    Taken,
    UpstreamDown,
    UpstreamUp,
)
from .messages import Change, MessageTable
from .msglog import MessageLog
from .receipts import Receipts, UnmatchedReceipt, hub_receipt
from .routing import MoRouteTable, normalise_destination
from .stats import HubStats
from .store import Store
from .upstream import Outgoing, UpstreamPool, stored_submit

__all__ = ["Dispatcher", "SubmitListener", "TEMPORARY_STATUSES", "retry_policy"]

log = structlog.get_logger("smpphub.dispatch")

#: Answers that mean "not now": retry, then fail over. Anything else is permanent.
TEMPORARY_STATUSES = frozenset(
    {
        CommandStatus.ESME_RTHROTTLED,
        CommandStatus.ESME_RMSGQFUL,
        CommandStatus.ESME_RSYSERR,
        CommandStatus.ESME_RX_T_APPN,
        CommandStatus.ESME_RUNKNOWNERR,
        CommandStatus.ESME_RINVBNDSTS,  # the bind is going away under us
        CommandStatus.ESME_RSUBMITFAIL,
    }
)

# members named in the functions every message goes through (_step, still_for, answered), by module
# constants: see smppcore.constants on Enum members on a hot path
_QUEUED, _PARKED, _IN_FLIGHT, _SENT = State.QUEUED, State.PARKED, State.IN_FLIGHT, State.SENT
_ROK = CommandStatus.ESME_ROK
#: a row's segment group ("": a message in one piece), read in C over a run
_GROUP_OF = operator.attrgetter("group")


def retry_policy(config: HubConfig) -> RetryPolicy:
    """The lifecycle's retry rules from hub.toml."""
    return RetryPolicy(
        initial=config.retry_initial,
        maximum=config.retry_max,
        attempts_per_upstream={u.name: u.max_attempts for u in config.upstreams},
        pinned_attempts=config.pinned_attempts,
    )


class SubmitListener(Protocol):
    """Who hears that an upstream accepted a message: the HTTP API's webhooks (Kannel's dlr-mask 8,
    "SMSC submit ack", is sent then, not at the receipt). Called after the row took the answer in."""

    def accepted_upstream(self, row: MessageRow) -> None: ...


class Dispatcher:
    """The adapter between :class:`MessageTable` and pools, store and deliveries."""

    def __init__(self, config: HubConfig, store: Store, deliveries: Deliveries, msglog: MessageLog | None = None,
                 *, clock: Callable[[], float] = time.time, stats: HubStats | None = None) -> None:
        self.config = config
        self.store = store
        self.deliveries = deliveries
        self.msglog = msglog or MessageLog.off()
        self._trace = self.msglog.trace
        self._msglog_on = self.msglog.on
        # the trace ring's record (router.trace): called with each transition, None when the ring is off
        self._record = self.msglog.ring.record if self.msglog.ring is not None else None
        self.stats = stats or HubStats()
        self.clock = clock
        self.table = MessageTable(retry_policy(config))
        self.backlog = Backlog(store, self, max_held=config.max_held, horizon=config.hold_horizon, clock=clock)
        self.outgoing: dict[str, Outgoing] = {}  # rows in the table that have not been accepted upstream
        self.parked: dict[str, MessageRow] = {}
        self.pools: dict[str, UpstreamPool] = {}
        self.mo_routes = MoRouteTable(config)
        self.accounts = {a.system_id: a for a in config.accounts}
        self.receipts = Receipts(self, store, deliveries, self.msglog, self.table, clock,
                                 limit=config.max_awaiting_receipt, stats=self.stats)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        # once per turn of the loop, after all its events (see _settle); runs once start() gives it the loop
        self._turn_end: TurnCollector[MessageRow] = TurnCollector(self._settle)
        self._tasks: set[asyncio.Task[None]] = set()
        # what operators and ESMEs ask of upstreams and messages already here (pause, cancel_sm...)
        self.controls = Controls(self)
        self.submit_listener: SubmitListener | None = None  # set by the hub when it sends webhooks
        # while accept_all hands a group commit over: the pools given messages, pumped once at its end
        # (one pump per message cost more than the queueing itself)
        self._pump_after: set[UpstreamPool] | None = None
        # rows that became SENT in the run of answers being handled (see _sent_all)
        self._sent_rows: list[MessageRow] = []

    # ---- pools ------------------------------------------------------------------------

    def start(self, spilled_at_start: int = 0) -> None:
        """Connect the upstreams; ``spilled_at_start`` open messages wait in the store (a restart)."""
        self.loop = asyncio.get_running_loop()
        self._turn_end.runner = self.loop
        for up in self.config.upstreams:
            self.add_pool(up)
        self.backlog.start(spilled_at_start)

    def add_pool(self, cfg: Upstream) -> UpstreamPool:
        pool = UpstreamPool(cfg, self)
        self.pools[cfg.name] = pool
        pool.start()
        return pool

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop the pools (in-flight submits get until ``timeout`` for their answers), write what
        changed, and give the dispatcher's own tasks what is left of ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await self.backlog.stop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        results = await asyncio.gather(*(p.stop(timeout) for p in self.pools.values()), return_exceptions=True)
        left = sum(len(r) for r in results if isinstance(r, list))
        if left:
            log.info("queued_at_shutdown", messages=left, note="in the store; they go out after a restart")
        self._write_now()
        if self._tasks:
            _, late = await asyncio.wait(list(self._tasks), timeout=max(0.01, deadline - loop.time()))
            for task in late:  # out of time: they stop here rather than run on after the store closes
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    def reload(self, config: HubConfig) -> None:
        """New routes/accounts/MO routes take effect; new upstreams start, removed ones drain."""
        self.config = config
        self.table.policy = retry_policy(config)
        self.mo_routes = MoRouteTable(config)
        self.accounts = {a.system_id: a for a in config.accounts}
        wanted = {u.name: u for u in config.upstreams}
        for name, cfg in wanted.items():
            if name not in self.pools:
                self.add_pool(cfg)
                log.info("upstream_added", upstream=name)
        for name in [n for n in self.pools if n not in wanted]:
            self.spawn(self._retire(self.pools.pop(name)))

    async def _retire(self, pool: UpstreamPool) -> None:
        left = await pool.stop()
        log.info("upstream_removed", upstream=pool.name)
        self.pool_down(pool, left)

    # ---- messages in ----------------------------------------------------------------------

    def accept(self, out: Outgoing) -> None:
        """A message the store holds durably and the ESME was answered for: on its way."""
        self.accept_all([out])

    def accept_all(self, outs: list[Outgoing]) -> None:
        """Messages the store holds durably (one group commit) and whose submitters were answered.

        When the dispatcher holds its limit already, or a message is due only later than
        the hold horizon, it waits in the store instead (see :mod:`router.backlog`). They
        were committed together, so one time stands for all of them.
        """
        now = self.clock()
        backlog = self.backlog
        table = self.table
        step = self._step
        # the backlog's room, asked once per commit and counted down: a message accepted here
        # takes a place (one that ends at once keeps it until the next commit: never over the limit)
        room = backlog.room()
        pumps: set[UpstreamPool] = set()
        self._pump_after = pumps
        kept: list[MessageRow] = []
        grouped = False
        try:
            for out in outs:
                row = out.row
                if room <= 0 or (row.due and backlog.too_far(row.due)):  # due 0: now, never too far
                    if accept(row, now).after is not _QUEUED:
                        self.store.save([row])  # SCHEDULED: the row as inserted said QUEUED
                    backlog.spill([row.id])
                    continue
                room -= 1
                self.outgoing[row.id] = out
                kept.append(row)
                grouped = grouped or bool(row.group)
            if grouped:  # a segment handed over may fail over with its siblings: each held and stepped in turn
                for row in kept:
                    step(row, table.accept(row, now), True)
            else:
                self._steps(kept, table.accept_all(kept, now), True)
        finally:
            self._pump_after = None
            for pool in pumps:
                pool.pump()
        self._turn_end.wake()

    # the Holder interface (router.backlog)

    def held(self) -> int:
        return len(self.table)

    def take_back(self, rows: list[MessageRow]) -> None:
        """Spilled messages the store handed back (at a restart: every open one, in turn)."""
        now = self.clock()
        changes: list[Change] = []
        queued: list[MessageRow] = []
        for row in rows:
            if row.id in self.table:
                continue  # held already (spilled and taken back twice after a store error)
            self.outgoing[row.id] = Outgoing(row, stored_submit(row))
            self.table.hold(row)
            if row.state is _IN_FLIGHT:  # written before a restart, answer unknown: again
                changes.extend(self.table.apply(row, Restarted(), now))
            elif row.state is _PARKED:
                if any(pool.available for name in row.route if (pool := self.pools.get(name)) is not None):
                    changes.extend(self.table.apply(row, UpstreamUp(), now))
                else:
                    self.parked[row.id] = row
            elif row.state is _QUEUED:
                queued.append(row)
        self.act(changes)
        for row in queued:
            self._hand_over(row)

    # ---- acting on what the lifecycle decided --------------------------------------------------

    def event(self, row: MessageRow, event: Event) -> None:
        """``event`` for ``row`` now, its steps taken and the end of the turn woken (for :mod:`router.controls`)."""
        self._move(row, event, self.clock())
        self._turn_end.wake()

    def _move(self, row: MessageRow, event: Event, now: float) -> None:
        """``event`` for ``row`` at ``now``, and the steps it leads to; the caller wakes the end of the turn."""
        if row.group:  # its siblings may move with it
            for change in self.table.apply(row, event, now):
                self._step(change.row, change.transition, change.new_target)
        else:  # alone: no Change and no list (the path of every message: taken, answered)
            self._step(row, self.table.move(row, event, now), False)

    def _move_run(self, rows: list[MessageRow], events: list[Event], now: float) -> None:
        """:meth:`_move` of ``rows[i]`` by ``events[i]`` for each, in order: a pool's turn taken or a
        run of its answers. Rows of no group are moved by the table in one loop and stepped in one
        (:meth:`_steps`); a run with a segment of a long message in it goes one row at a time (its
        siblings may move with it). The caller wakes the end of the turn.

        A failure (a bug) met by one row is logged and kept to it, as one row alone would meet it:
        the rows before it moved and are stepped, those after it move on.
        """
        if any(map(_GROUP_OF, rows)):
            for row, event in zip(rows, events, strict=True):
                try:
                    self._move(row, event, now)
                except Exception:  # noqa: BLE001 - logged with its message; the run goes on
                    log.exception("move_failed", message_id=row.id, event=type(event).__name__)
            return
        moved: list[Transition] = []
        try:
            self.table.move_all(rows, events, now, moved)
        except Exception:  # noqa: BLE001 - logged with its message; the run goes on
            done = len(moved)
            log.exception("move_failed", message_id=rows[done].id, event=type(events[done]).__name__)
            self._steps(rows[:done], moved, False)
            self._move_run(rows[done + 1:], events[done + 1:], now)
            return
        self._steps(rows, moved, False)

    def act(self, changes: list[Change]) -> None:
        """The steps of ``changes`` (the table's, of one event), then the end of the turn woken."""
        step = self._step
        for change in changes:
            step(change.row, change.transition, change.new_target)
        self._turn_end.wake()

    def _step(self, row: MessageRow, transition: Transition, new_target: bool) -> None:
        """Act on one row's move (see the module docstring); ``new_target`` as :class:`Change` says.

        The caller wakes the end of the turn (:meth:`_settle`) once, after all its steps.
        """
        if self._record is not None:
            self._record(transition)
        if self._msglog_on:
            self.msglog.moved(self.outgoing.get(row.id), row, transition, self.clock())
        self._follow(row, transition, new_target)

    def _steps(self, rows: list[MessageRow], transitions: list[Transition], new_target: bool) -> None:
        """:meth:`_step` of ``rows[i]`` and ``transitions[i]`` for each, in order: a run's (a commit
        accepted, a pool's turn taken, a run of answers). What nearly every one of them comes to
        is done here without a call of :meth:`_step` and :meth:`_follow`: IN_FLIGHT nothing, SENT
        kept for :meth:`_sent_all`, QUEUED for a new target handed over; the rest is followed.

        A failure (a bug) met by one step is logged and kept to its row: the run goes on.
        """
        msglog_on = self._msglog_on  # the message log writes each step: through _step, then
        record = self._record
        step = self._step
        follow = self._follow
        sent = self._sent_rows
        handed: list[MessageRow] = []  # handed over together, before anything else is followed
        for row, transition in zip(rows, transitions, strict=True):
            try:
                if msglog_on:
                    step(row, transition, new_target)
                    continue
                if record is not None:
                    record(transition)
                after = transition.after
                if transition.before is not _PARKED:  # else the parked list lets it go first
                    if after is _IN_FLIGHT:
                        continue  # the pool answers
                    if after is _SENT:
                        sent.append(row)
                        continue
                    if after is _QUEUED and new_target:
                        handed.append(row)
                        continue
                if handed:
                    self._hand_over_all(handed)
                    handed = []
                follow(row, transition, new_target)
            except Exception:  # noqa: BLE001 - logged with its message; the run goes on
                log.exception("step_failed", message_id=row.id, state=transition.after.value)
        if handed:
            self._hand_over_all(handed)

    def _follow(self, row: MessageRow, transition: Transition, new_target: bool) -> None:
        """What the dispatcher does about ``row``'s move, once it is recorded (see :meth:`_step`)."""
        before, after = transition.before, transition.after
        if before is _PARKED and after is not _PARKED:
            self.parked.pop(row.id, None)
        if after is _IN_FLIGHT:
            return  # the pool answers
        if after is _QUEUED:
            # a pool already holds it unless it just became due or now waits for another upstream
            # (a replace_sm, or a pin by a sibling, leaves it where it is)
            if before is not _QUEUED or transition.failed_over_from is not None or new_target:
                self._hand_over(row)
        elif after is _SENT:
            self._sent_rows.append(row)  # counted and let go together, at the end of the run (see _sent_all)
        elif after is _PARKED:
            self.parked[row.id] = row
        elif transition.became_final:
            self._finished(row)
        elif after is State.SCHEDULED and self.backlog.too_far(row.due):
            self._let_go(row)  # a long back-off or a replace_sm that moved it far: wait in the store
            self.backlog.spill([row.id])

    def _let_go(self, row: MessageRow) -> None:
        """``row`` is no longer held in memory: sent, final, or left to wait in the store."""
        self.outgoing.pop(row.id, None)
        self.table.release(row.id)

    def _hand_over(self, row: MessageRow) -> None:
        self._hand_over_all((row,))

    def _hand_over_all(self, rows: Iterable[MessageRow]) -> None:
        """Each of ``rows`` to the pool of its target, in order, or UpstreamDown when that pool is
        missing or not available. A run's rows (a commit's: nearly all for one upstream) have
        their pool looked up and asked once for each change of target, not once a row."""
        pumps = self._pump_after
        outgoing = self.outgoing
        pools = self.pools
        name: str | None = None
        pool: UpstreamPool | None = None
        for row in rows:
            target = row.route[row.route_index]  # row.target, without the property's call
            if target != name:
                name = target
                pool = pools.get(target)
                if pool is not None and not pool.available:
                    pool = None
                if pool is not None and pumps is not None:
                    pumps.add(pool)  # accept_all pumps each pool once, after the whole commit is queued
            if pool is None:
                self.event(row, UpstreamDown())
            elif pumps is None:
                pool.submit(outgoing[row.id])
            else:  # queued without pumping (the pool's own deque, not a call of ours a message)
                pool.queue.append(outgoing[row.id])

    def _sent_all(self) -> None:
        """The rows an upstream accepted since the last call (a run of answers): counted, their
        latencies observed, let go, and each kept to match its receipt."""
        rows, self._sent_rows = self._sent_rows, []
        stats = self.stats
        stats.sent.update([row.account for row in rows])
        stats.submit_latency.observe_all([row.updated_at - row.created_at for row in rows])
        outgoing = self.outgoing
        for row in rows:  # _let_go of each: no longer held in memory
            outgoing.pop(row.id, None)
        self.table.release_all(rows)
        self.receipts.expect_all(rows, self.pools)

    def _finished(self, row: MessageRow) -> None:
        """A final outcome the hub decided itself (expired, rejected, cancelled)."""
        self.stats.final(row.account, row.state._value_)  # not .value: Enum's property is a Python call
        self._let_go(row)
        if row.receipt_owed:
            receipt = hub_receipt(row)
            row.receipt = encode(receipt)
            self.deliveries.deliver_receipt(row, receipt)

    def _settle(self, _: list[MessageRow]) -> None:
        """Once per turn of the loop, after all its events: write what changed (one save for
        them all), set the timer, and take back spilled messages if there is room.

        Nothing is added to ``_turn_end``: the table keeps the rows changed this turn
        (once each, however often they moved), and they are taken from it here."""
        if self._sent_rows:  # SENT reached outside a run of answers (none does today): counted all the same
            self._sent_all()
        self._write_now()
        self._arm()
        self.backlog.refill()

    def _write_now(self) -> None:
        rows = self.table.take_changed()
        if rows:
            self.store.save(rows)

    # ---- time -------------------------------------------------------------------------------

    def _arm(self) -> None:
        when = self.table.next_timer()
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None and self.loop is not None:
            self._timer = self.loop.call_later(max(0.0, when - self.clock()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        self.act(self.table.tick(self.clock()))

    # ---- what pools report (the UpstreamEvents interface) -----------------------------------------

    def still_for(self, outs: list[Outgoing], pool: UpstreamPool) -> list[Outgoing]:
        """Those of ``outs`` (taken from ``pool``'s queue, in order) still for it: not cancelled, expired
        or failed over while they waited there.

        A queued message's validity is checked here, when its turn comes (it has no timer
        of its own: see :meth:`MessageRow.next_timer`); one past it expires now.
        """
        kept: list[Outgoing] = []
        now = self.clock()
        outgoing = self.outgoing
        name = pool.name
        expired = False
        for out in outs:
            row = out.row
            # route[route_index], not row.target: a property is a Python call, and this runs per message
            if row.state is not _QUEUED or row.route[row.route_index] != name or outgoing.get(row.id) is not out:
                continue
            expires_at = row.expires_at  # row.expired(now), without the call
            if expires_at is not None and expires_at <= now:
                self._move(row, Expire(), now)
                expired = True
                continue
            kept.append(out)
        if expired:
            self._turn_end.wake()
        return kept

    def taken(self, outs: list[Outgoing], pool: UpstreamPool) -> None:
        """A pool's turn of messages written now: one event and one time for them all."""
        self._move_run([out.row for out in outs], [Taken(pool.name)] * len(outs), self.clock())
        self._turn_end.wake()

    def answered(self, outs: list[Outgoing], pool: UpstreamPool, responses: list[Pdu]) -> None:
        """A run of submit_sm_resp from ``pool``: one time and one end of the turn for them all."""
        now = self.clock()
        name = pool.name
        rows: list[MessageRow] = []
        events: list[Event] = []
        for out, response in zip(outs, responses, strict=True):
            row = out.row
            if row.state is not _IN_FLIGHT or row.upstream != name:
                continue
            status = response.command_status
            event: Event
            if status == _ROK:
                event = SubmitOk(getattr(response, "message_id", ""))  # a generic_nack has none
            elif status not in TEMPORARY_STATUSES:
                self.stats.permanent_failures += 1
                event = SubmitPermanent(status)
            else:
                event = self._temporary(row, pool, status, None)
            rows.append(row)
            events.append(event)
        # one message's failure (a bug) must not leave the rest of the run in flight: see _move_run
        self._move_run(rows, events, now)
        listener = self.submit_listener
        if listener is not None:  # told once the row took the answer in
            for row, event in zip(rows, events, strict=True):
                if type(event) is SubmitOk and row.state is _SENT:
                    try:
                        listener.accepted_upstream(row)
                    except Exception:  # noqa: BLE001 - logged with its message; the run goes on
                        log.exception("answer_failed", message_id=row.id, upstream=name)
        if self._sent_rows:
            self._sent_all()
        self._turn_end.wake()

    def unanswered(self, out: Outgoing, pool: UpstreamPool, error: BaseException) -> None:
        """No answer will come for ``out``: written again elsewhere if its connection went with it."""
        row = out.row
        if row.state is not _IN_FLIGHT or row.upstream != pool.name:
            return
        # the connection went with it: another upstream, now; else a timeout, retried like "not now"
        self.event(row, UpstreamDown() if not pool.available else self._temporary(row, pool, 0, error))

    def _temporary(self, row: MessageRow, pool: UpstreamPool, status: int, error: BaseException | None) -> Event:
        """The event of a submit answered "not now" (``status``) or not answered (``error``)."""
        self.stats.temporary_failures += 1
        if self._trace and error is not None:
            self.msglog.unanswered(row, pool.name, error)
        return SubmitTemporary(status, throttled=status == CommandStatus.ESME_RTHROTTLED)

    def pool_up(self, pool: UpstreamPool) -> None:
        waiting = [row for row in self.parked.values() if pool.name in row.route]
        now = self.clock()
        changes: list[Change] = []
        for row in waiting:
            changes.extend(self.table.apply(row, UpstreamUp(), now))
        self.act(changes)

    def pool_down(self, pool: UpstreamPool, left: list[Outgoing]) -> None:
        if left:
            log.warning("upstream_failover", upstream=pool.name, messages=len(left), reason="every bind is down")
        now = self.clock()
        changes: list[Change] = []
        for out in left:
            row = out.row
            if row.state is _QUEUED and row.target == pool.name and self.outgoing.get(row.id) is out:
                changes.extend(self.table.apply(row, UpstreamDown(), now))
        self.act(changes)

    def deliver_received(self, pool: UpstreamPool, pdu: Pdu) -> int | asyncio.Future[int]:
        """A deliver_sm/data_sm from an upstream: a receipt or an MO; the status to answer it with."""
        if not isinstance(pdu, (DeliverSm, DataSm)):
            # alert_notification (the client hands it over too): nothing to route, no response to give
            log.info("upstream_alert_ignored", upstream=pool.name, command=pdu.command_name)
            return 0
        if is_receipt(pdu):
            return self.receipts.received(pool, pdu)
        return self._mo(pool, pdu)

    def deliver_received_all(self, pool: UpstreamPool, pdus: list[Pdu]) -> list[int | asyncio.Future[int]]:
        """A run of them, read at once: :meth:`deliver_received`'s result for each, in order.

        A run of receipts only (nearly every run) is matched in one loop
        (:meth:`Receipts.received_all`); anything else takes them one at a time. Either
        way a request the hub fails on is answered ESME_RX_T_APPN alone, as smppcore's
        Client answers one whose handler raised, and the rest of its run goes on.
        """
        if all(is_receipt(pdu) for pdu in pdus):  # each a deliver_sm or data_sm, then
            return self.receipts.received_all(pool, cast("list[DeliverSm | DataSm]", pdus))
        results: list[int | asyncio.Future[int]] = []
        for pdu in pdus:
            try:
                results.append(self.deliver_received(pool, pdu))
            except Exception:  # noqa: BLE001 - logged; the SMSC sends it again
                log.exception("deliver_failed", upstream=pool.name, command=pdu.command_name)
                results.append(CommandStatus.ESME_RX_T_APPN)
        return results

    # ---- MO ----------------------------------------------------------------------------------------

    def _mo(self, pool: UpstreamPool, pdu: DeliverSm | DataSm) -> int | asyncio.Future[int]:
        dest = normalise_destination(pdu.destination_addr, pdu.dest_addr_ton)
        route = self.mo_routes.lookup(dest)
        if route is None:
            self.stats.mo_unroutable += 1
            if self._msglog_on:
                self.msglog.mo(pool.name, pdu, None, None, CommandStatus.ESME_RINVDSTADR)
            log.warning("mo_unroutable", upstream=pool.name, dest=pdu.destination_addr)
            return CommandStatus.ESME_RINVDSTADR
        self.stats.mo_in += 1
        if self._msglog_on:
            self.msglog.mo(pool.name, pdu, route.account, route.webhook, 0)
        # an account's receivers or an HTTP webhook (router.http.webhooks): stored either way before
        # the upstream hears ESME_ROK, delivered until acknowledged
        owner = route.account if route.account is not None else route.webhook_owner
        return self.deliveries.deliver_mo(owner, pdu, kind="mo")

    # ---- the loop's services (the ReceiptHost interface) ---------------------------------------------

    @property
    def awaiting_receipt(self) -> collections.OrderedDict[tuple[str, str], MessageRow]:
        """SENT messages waiting for their receipt (see :class:`Receipts`)."""
        return self.receipts.awaiting

    @property
    def unmatched(self) -> collections.deque[UnmatchedReceipt]:
        """Receipts that matched no message, kept for the operator."""
        return self.receipts.unmatched

    def spawn(self, coro: Coroutine[object, object, None]) -> None:
        """Run ``coro`` as a task that :meth:`stop` waits for."""
        assert self.loop is not None
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def future(self) -> asyncio.Future[int]:
        assert self.loop is not None
        return self.loop.create_future()

    def call_soon(self, callback: Callable[[], None]) -> None:
        assert self.loop is not None
        self.loop.call_soon(callback)

