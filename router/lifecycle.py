"""The life of one accepted message, as a sans-IO state machine.

Like :mod:`smppcore.session`, this module never reads a clock, never sleeps and
never does I/O: the caller feeds it events with the time they happened, and it
says where the message is now and when it next needs to be woken. Everything the
hub decides about a message (when it may leave, which upstream takes it, how
often a temporary failure is retried and with what back-off, when it fails over,
when it expires, whether the ESME is owed a receipt) is decided here and nowhere
else; the adapters around it (ESME side, upstream pools, the store) only carry
events in and act on the states that come out.

The states and what moves them (``TRANSITIONS`` is the authority; a test walks
every pair)::

    accepted -> SCHEDULED (has a time) or QUEUED (due now)

    SCHEDULED --Due--------------> QUEUED     (or EXPIRED, if validity ran out first)
    QUEUED ----Taken(upstream)---> IN_FLIGHT
    QUEUED ----UpstreamDown------> QUEUED     (next upstream of the route)
                                 -> PARKED     (no upstream of the route is up)
    PARKED ----UpstreamUp--------> QUEUED     (the route again from its start)
    IN_FLIGHT -SubmitOk(id)------> SENT
    IN_FLIGHT -SubmitTemporary---> SCHEDULED  (retry the same upstream after a back-off)
                                 -> QUEUED     (attempts there used up: fail over)
                                 -> SCHEDULED  (the whole route failed: back off, start again)
    IN_FLIGHT -SubmitPermanent---> UNDELIVERABLE  (the receipt the ESME gets says UNDELIV)
    IN_FLIGHT -UpstreamDown------> QUEUED     (connection lost before the answer: sent
                                               again elsewhere; delivery is at least once)
    IN_FLIGHT -Restarted---------> QUEUED     (the hub restarted before the answer: again, same upstream)
    SENT ------Receipt(state)----> DELIVERED | UNDELIVERABLE | EXPIRED | REJECTED | CANCELLED
    SENT ------Intermediate------> SENT
    SCHEDULED/QUEUED/PARKED --Expire--> EXPIRED;  --Cancel--> CANCELLED;  --Replace--> itself
    any final with a receipt owed --ReceiptDelivered / ReceiptDropped--> the same state, nothing owed

An event that the table does not list for the current state raises
:class:`InvalidTransition`: a duplicate receipt, a cancel of a message already
sent, an answer for a message that is not in flight. The adapter decides what that
means on the wire (ack and count the duplicate, answer ESME_RCANCELFAIL, ...);
the machine never ignores it silently.

Segments of one long message share their route: the weighted choice is made once for
all of them (by the ESME side), and they move together. While none of them has been
accepted, a segment that fails over takes its waiting siblings along (:class:`Failover`
events the caller hands them, see :meth:`Transition.failed_over_from`). Once an upstream
accepted one segment, the others are pinned to it (:class:`SiblingAccepted`): a
temporary error is retried there ``pinned_attempts`` times (10 by default, about 13
minutes of back-off) rather than failed over after the upstream's usual
``max_attempts``, because the part already delivered cannot be taken back and a
message split between carriers may never be put together again. If that upstream
goes down altogether (no bind left), or keeps refusing past ``pinned_attempts``, the
rest fail over after all: a split message beats holding its tail for the whole
validity period.

The events themselves (:class:`Event` and its kinds) are in :mod:`router.lifecycle_events`,
beside this machine as smppcore's session events are beside the session; every name is
still importable from here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum

import msgspec

from smppcore import MessageState as SmppState
from smppcore.receipt import intermediate_wanted, receipt_wanted

# the events live in their own module; re-exported here, where callers have always found them
from .lifecycle_events import (
    Cancel,
    Due,
    Event,
    Expire,
    Failover,
    Intermediate,
    Receipt,
    ReceiptDelivered,
    ReceiptDropped,
    Replace,
    Restarted,
    SiblingAccepted,
    SubmitOk,
    SubmitPermanent,
    SubmitTemporary,
    Taken,
    UpstreamDown,
    UpstreamUp,
)

__all__ = [
    "State",
    "FINAL_STATES",
    "WAITING_STATES",
    "UNWRITTEN_STATES",
    "TIMED_STATES",
    "RetryPolicy",
    "MessageRow",
    "Transition",
    "Accepted",
    "InvalidTransition",
    "TRANSITIONS",
    "Event",
    "Due",
    "Taken",
    "SubmitOk",
    "SubmitTemporary",
    "SubmitPermanent",
    "UpstreamDown",
    "UpstreamUp",
    "Failover",
    "SiblingAccepted",
    "Receipt",
    "Intermediate",
    "Expire",
    "Cancel",
    "Replace",
    "ReceiptDelivered",
    "ReceiptDropped",
    "Restarted",
    "accept",
    "apply",
    "apply_run",
    "smpp_state",
]


class State(Enum):
    """Where a message is. The values are what the store keeps."""

    # Members are singletons compared by identity: hash them by identity too, in C,
    # instead of Enum's Python-level hash of the name (a state is hashed on every event,
    # by the transition table and the state sets).
    __hash__ = object.__hash__

    SCHEDULED = "scheduled"  # waiting for its time: a scheduled delivery or a retry's back-off
    QUEUED = "queued"  # due: waiting for ``route[route_index]`` to take it
    PARKED = "parked"  # due, but no upstream of its route is up
    IN_FLIGHT = "in_flight"  # its submit_sm was written to ``upstream``; no answer yet
    SENT = "sent"  # ``upstream`` accepted it as ``upstream_id``; waiting for the receipt
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    EXPIRED = "expired"
    REJECTED = "rejected"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset({State.DELIVERED, State.UNDELIVERABLE, State.EXPIRED, State.REJECTED, State.CANCELLED})
#: Not yet handed to an upstream: these may still be cancelled, replaced, expire.
WAITING_STATES = frozenset({State.SCHEDULED, State.QUEUED, State.PARKED})
#: Not worth a write: after a restart an IN_FLIGHT message is sent again, exactly as
#: the QUEUED row the store still holds would be (see :class:`Restarted`).
UNWRITTEN_STATES = frozenset({State.IN_FLIGHT})
#: The only states in which :meth:`MessageRow.next_timer` may say anything but None: a row in
#: another state needs no timer, and the table skips asking (a call per event of every message).
TIMED_STATES = frozenset({State.SCHEDULED, State.PARKED})

# members named in the functions every message goes through (accept, taken, answered, receipt),
# by module constants: see smppcore.constants on Enum members on a hot path
_SCHEDULED, _QUEUED, _IN_FLIGHT, _SENT = State.SCHEDULED, State.QUEUED, State.IN_FLIGHT, State.SENT
_UNDELIVERABLE = State.UNDELIVERABLE

#: A final receipt's message_state -> the final state of the message.
_RECEIPT_FINAL: dict[SmppState, State] = {
    SmppState.DELIVERED: State.DELIVERED,
    SmppState.EXPIRED: State.EXPIRED,
    SmppState.DELETED: State.CANCELLED,
    SmppState.UNDELIVERABLE: State.UNDELIVERABLE,
    SmppState.REJECTED: State.REJECTED,
    SmppState.UNKNOWN: State.UNDELIVERABLE,
}

#: The message_state an ESME sees for each of our states (query_sm, the receipts we write).
_SMPP_STATE: dict[State, SmppState] = {
    State.SCHEDULED: SmppState.ENROUTE,  # 3.4 has no SCHEDULED message_state
    State.QUEUED: SmppState.ENROUTE,
    State.PARKED: SmppState.ENROUTE,
    State.IN_FLIGHT: SmppState.ENROUTE,
    State.SENT: SmppState.ENROUTE,
    State.DELIVERED: SmppState.DELIVERED,
    State.UNDELIVERABLE: SmppState.UNDELIVERABLE,
    State.EXPIRED: SmppState.EXPIRED,
    State.REJECTED: SmppState.REJECTED,
    State.CANCELLED: SmppState.DELETED,
}


def smpp_state(state: State) -> SmppState:
    """The SMPP message_state that stands for ``state`` (query_sm_resp, receipts the hub writes)."""
    return _SMPP_STATE[state]


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How temporary failures are retried; from the hub's configuration."""

    initial: float = 1.0  # seconds before the first retry on the same upstream
    maximum: float = 300.0  # no back-off is longer
    throttled_maximum: float = 1.0  # an ESME_RTHROTTLED answer is retried sooner
    #: temporary failures on one upstream before failing over, by upstream name
    attempts_per_upstream: dict[str, int] = {}
    default_attempts: int = 3
    #: temporary failures of a pinned segment (see :class:`SiblingAccepted`) before it fails over anyway
    pinned_attempts: int = 10

    def attempts_on(self, upstream: str) -> int:
        return self.attempts_per_upstream.get(upstream, self.default_attempts)

    def retry_delay(self, attempts_here: int, throttled: bool) -> float:
        """Back-off before retrying the same upstream after its ``attempts_here``-th failure."""
        delay = min(self.maximum, self.initial * 2.0 ** min(attempts_here - 1, 32))
        return min(delay, self.throttled_maximum) if throttled else delay

    def route_delay(self, attempts: int) -> float:
        """Back-off before starting the route again once every upstream of it failed."""
        return min(self.maximum, self.initial * 2.0 ** min(attempts, 16))


class MessageRow(msgspec.Struct, kw_only=True, gc=False):
    """One accepted message (one segment of a long message): its whole state in one row.

    This is what the store keeps, one row per message, rewritten as it moves; the
    machine's functions below are the only code that changes ``state`` and the
    fields that go with it.

    ``gc=False``, like :class:`Transition` and smppcore's PDUs: the cycle collector
    does not track rows (they hold strings, numbers and a list of names, so they can
    be part of no cycle). Thousands of them wait for their receipts at any time, and
    tracked they were walked at every collection that met them: a young collection of
    the hub at 4,000 msg/s held ~50,000 live objects, 40% of them rows and the trace
    ring's transitions, and paused the event loop 15-30 ms (``python -m
    smpphub.bench.steady``, 2026-12-02).
    """

    id: str  # the hub's message_id, as given to the ESME
    account: str  # system_id of the ESME that sent it
    pdu: bytes  # the submit_sm (or data_sm) to send upstream, encoded
    route: list[str]  # upstream names in failover order (a weighted choice is made before)
    group: str = ""  # segments of one long message share it (and their route)
    state: State = State.QUEUED
    route_index: int = 0  # which upstream of ``route`` it is for
    attempts_here: int = 0  # temporary failures on ``route[route_index]``
    attempts: int = 0  # submits answered or lost, all upstreams together
    due: float = 0.0  # unix time: scheduled delivery, or the end of a back-off
    expires_at: float | None = None  # unix time: the end of its validity period
    registered_delivery: int = 0
    upstream: str | None = None  # the upstream it was written to / that accepted it
    upstream_id: str | None = None  # that upstream's message_id
    error: int = 0  # the last command_status or network error seen
    receipt_owed: bool = False  # a final receipt the ESME asked for has not been acked yet
    #: an upstream accepted another segment of its message: it stays with that upstream
    #: (temporary errors are retried there, not failed over) unless the upstream goes down
    pinned: bool = False
    receipt: bytes = b""  # that receipt: the deliver_sm for the ESME, encoded (the hub fills it in; kept once sent)
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def target(self) -> str:
        """The upstream it should go to next."""
        return self.route[self.route_index]

    def next_timer(self) -> float | None:
        """When it needs :func:`apply` with :class:`Due` or :class:`Expire`; None if never.

        A QUEUED message has none: it is waiting for its upstream to take it, usually for
        milliseconds, and a timer per message (each has a validity) would cost more than
        the check its upstream makes when it comes to it (:func:`expired`).
        """
        state = self.state
        if state is State.SCHEDULED:
            return self.due if self.expires_at is None else min(self.due, self.expires_at)
        if state is State.PARKED:
            return self.expires_at
        return None

    def expired(self, now: float) -> bool:
        """Whether its validity period is over at ``now``."""
        return self.expires_at is not None and self.expires_at <= now


class InvalidTransition(Exception):
    """An event that the current state does not take (a duplicate receipt, a late cancel...)."""

    def __init__(self, row: MessageRow, event: Event) -> None:
        super().__init__(f"message {row.id} in state {row.state.value} cannot take {event!r}")
        self.state = row.state
        self.event = event


_ALL_FINALS = frozenset(FINAL_STATES)

#: (state, event) -> the states it may lead to. Not listed: InvalidTransition.
TRANSITIONS: dict[tuple[State, type[Event]], frozenset[State]] = {
    (State.SCHEDULED, Due): frozenset({State.QUEUED, State.EXPIRED}),
    (State.SCHEDULED, Expire): frozenset({State.EXPIRED}),
    (State.SCHEDULED, Cancel): frozenset({State.CANCELLED}),
    (State.SCHEDULED, Replace): frozenset({State.SCHEDULED, State.QUEUED}),
    (State.SCHEDULED, Failover): frozenset({State.SCHEDULED}),
    (State.SCHEDULED, SiblingAccepted): frozenset({State.SCHEDULED}),
    (State.QUEUED, Taken): frozenset({State.IN_FLIGHT}),
    (State.QUEUED, UpstreamDown): frozenset({State.QUEUED, State.PARKED}),
    (State.QUEUED, Failover): frozenset({State.QUEUED}),
    (State.QUEUED, SiblingAccepted): frozenset({State.QUEUED}),
    (State.QUEUED, Expire): frozenset({State.EXPIRED}),
    (State.QUEUED, Cancel): frozenset({State.CANCELLED}),
    (State.QUEUED, Replace): frozenset({State.SCHEDULED, State.QUEUED}),
    (State.PARKED, UpstreamUp): frozenset({State.QUEUED}),
    (State.PARKED, Expire): frozenset({State.EXPIRED}),
    (State.PARKED, Cancel): frozenset({State.CANCELLED}),
    (State.PARKED, Replace): frozenset({State.SCHEDULED, State.PARKED}),
    (State.PARKED, Failover): frozenset({State.PARKED}),
    (State.PARKED, SiblingAccepted): frozenset({State.PARKED}),
    (State.IN_FLIGHT, SiblingAccepted): frozenset({State.IN_FLIGHT}),
    (State.IN_FLIGHT, SubmitOk): frozenset({State.SENT}),
    (State.IN_FLIGHT, SubmitTemporary): frozenset({State.SCHEDULED, State.QUEUED, State.EXPIRED}),
    (State.IN_FLIGHT, SubmitPermanent): frozenset({State.UNDELIVERABLE}),
    (State.IN_FLIGHT, UpstreamDown): frozenset({State.QUEUED, State.PARKED}),
    (State.IN_FLIGHT, Restarted): frozenset({State.QUEUED}),
    (State.SENT, Receipt): _ALL_FINALS,
    (State.SENT, Intermediate): frozenset({State.SENT}),
    **{(final, ReceiptDelivered): frozenset({final}) for final in FINAL_STATES},
    **{(final, ReceiptDropped): frozenset({final}) for final in FINAL_STATES},
}


class Transition(msgspec.Struct, frozen=True, gc=False):
    """What one event did to one message, and when: the adapter acts on ``row.state`` and these facts.

    It also carries the row's fields a step is told by, as they were right after it, so
    that the trace ring (:mod:`router.trace`) keeps the transition itself as its record of
    the step: one C call per transition, where building a tuple of those fields in a Python
    method cost ~1,900 instructions (valgrind). Untracked by the cycle collector, as
    :class:`MessageRow` says why (the ring keeps ~50,000).
    """

    before: State
    after: State
    #: the route index this message left by failing over (its waiting siblings follow), else None
    failed_over_from: int | None = None
    #: an intermediate notification the ESME asked for (bit 4 of registered_delivery)
    forward_intermediate: bool = False
    message_id: str = ""
    at: float = 0.0  # unix time of the event: the row's updated_at
    upstream: str | None = None  # the row's: the upstream it was written to / that accepted it
    route_index: int = 0  # the row's: which upstream of its route it is for
    error: int = 0  # the row's last command_status or network error

    @property
    def became_final(self) -> bool:
        return self.after.is_final and not self.before.is_final


class Accepted(Transition, frozen=True, gc=False):
    """The transition of a message just accepted (:func:`accept`): where its story starts."""


# --- the machine ----------------------------------------------------------------------


def accept(row: MessageRow, now: float) -> Transition:
    """A message just accepted: SCHEDULED if it has a time in the future, else QUEUED.

    ``row.due`` holds the scheduled delivery time (0 for none).
    """
    row.created_at = row.created_at or now
    row.updated_at = now
    row.state = _SCHEDULED if row.due > now else _QUEUED
    return Accepted(_QUEUED, row.state, message_id=row.id, at=now, upstream=row.upstream, route_index=row.route_index,
                    error=row.error)


def apply(row: MessageRow, event: Event, now: float, policy: RetryPolicy) -> Transition:
    """Move ``row`` on ``event`` at time ``now``; raises :class:`InvalidTransition`."""
    before = row.state
    rule = _RULES.get(type(event), _NO_RULES).get(before)
    if rule is None:
        raise InvalidTransition(row, event)
    failed_over, forward = rule.handler(row, event, now, policy)
    if row.state not in rule.allowed:  # a bug in a handler, not in the caller: say so loudly
        raise AssertionError(f"{type(event).__name__} took {before.value} to {row.state.value}")
    if rule.stamps:
        row.updated_at = now
    after = row.state
    if after in FINAL_STATES and before not in FINAL_STATES:
        row.receipt_owed = receipt_wanted(row.registered_delivery, _SMPP_STATE[after])
    return Transition(before, after, failed_over_from=failed_over, forward_intermediate=forward, message_id=row.id,
                      at=now, upstream=row.upstream, route_index=row.route_index, error=row.error)


def apply_run(rows: Sequence[MessageRow], events: Sequence[Event], now: float, policy: RetryPolicy,
              moved: list[Transition]) -> None:
    """:func:`apply` of ``events[i]`` to ``rows[i]`` for each, in order, each transition appended
    to ``moved``; raises like apply at the first row whose state does not take its event (the
    rows before it moved, their transitions in ``moved``).

    The two events every message takes come in runs (a pool's turn taken, a read's answers):
    Taken from QUEUED and SubmitOk from IN_FLIGHT. Those two steps are taken here inline, an
    optimistic path with apply behind it as the checked one (as smppcore's codec decodes):
    the states they lead from and to are the table's (:data:`_RUN_STEPS`, checked against
    :data:`TRANSITIONS` at import), and the fields they set are those of ``_on_taken`` and
    ``_on_submit_ok``, which ``tests/test_lifecycle_runs.py`` pins to apply over random rows and
    events. Neither step can end a message, so no receipt becomes owed here. Any other event
    or state goes through apply. Measured (valgrind, the submit leg over fakes): apply's
    look-ups, checks and handler call were ~3,000 instructions of each of these two steps.
    """
    append = moved.append
    for row, event in zip(rows, events, strict=True):
        kind = type(event)
        before = row.state
        if kind is Taken and before is _QUEUED:
            row.state = _IN_FLIGHT
            row.upstream = event.upstream  # type: ignore[attr-defined]
            row.updated_at = now
            append(Transition(_QUEUED, _IN_FLIGHT, None, False, row.id, now, row.upstream, row.route_index, row.error))
        elif kind is SubmitOk and before is _IN_FLIGHT:
            row.attempts += 1
            row.state = _SENT
            row.upstream_id = event.upstream_id  # type: ignore[attr-defined]
            row.error = 0
            row.updated_at = now
            append(Transition(_IN_FLIGHT, _SENT, None, False, row.id, now, row.upstream, row.route_index, 0))
        else:
            append(apply(row, event, now, policy))


# Each handler changes the row and returns (failed_over_from, forward_intermediate).
_Outcome = tuple[int | None, bool]
_NOTHING: _Outcome = (None, False)


def _expired(row: MessageRow, now: float) -> bool:
    return row.expires_at is not None and row.expires_at <= now


def _on_due(row: MessageRow, event: Due, now: float, policy: RetryPolicy) -> _Outcome:
    row.state = State.EXPIRED if _expired(row, now) else State.QUEUED
    return _NOTHING


def _on_taken(row: MessageRow, event: Taken, now: float, policy: RetryPolicy) -> _Outcome:
    row.state = _IN_FLIGHT
    row.upstream = event.upstream
    return _NOTHING


def _on_submit_ok(row: MessageRow, event: SubmitOk, now: float, policy: RetryPolicy) -> _Outcome:
    row.attempts += 1
    row.state = _SENT
    row.upstream_id = event.upstream_id
    row.error = 0
    return _NOTHING


def _next_upstream(row: MessageRow, now: float, policy: RetryPolicy, *, down: bool) -> _Outcome:
    """Fail over to the route's next upstream; past its end, wait (PARKED if down, else back off)."""
    left = row.route_index
    row.attempts_here = 0
    row.pinned = False
    if row.route_index + 1 < len(row.route):
        row.route_index += 1
        row.state = State.QUEUED
    else:
        row.route_index = 0
        if down:
            row.state = State.PARKED
        else:
            row.state = State.SCHEDULED
            row.due = now + policy.route_delay(row.attempts)
    return (left, False)


def _on_submit_temporary(row: MessageRow, event: SubmitTemporary, now: float, policy: RetryPolicy) -> _Outcome:
    row.attempts += 1
    row.attempts_here += 1
    row.error = event.status
    if _expired(row, now):
        row.state = State.EXPIRED
        return _NOTHING
    limit = policy.pinned_attempts if row.pinned else policy.attempts_on(row.target)
    if row.attempts_here < limit:
        row.state = State.SCHEDULED
        row.due = now + policy.retry_delay(row.attempts_here, event.throttled)
        return _NOTHING
    return _next_upstream(row, now, policy, down=False)


def _on_submit_permanent(row: MessageRow, event: SubmitPermanent, now: float, policy: RetryPolicy) -> _Outcome:
    row.attempts += 1
    row.error = event.status
    row.state = State.UNDELIVERABLE
    return _NOTHING


def _on_upstream_down(row: MessageRow, event: UpstreamDown, now: float, policy: RetryPolicy) -> _Outcome:
    row.pinned = False  # its upstream is gone altogether: a split message beats holding its tail for days
    if row.state is State.IN_FLIGHT:
        row.attempts += 1  # written, never answered: it will be written again
    return _next_upstream(row, now, policy, down=True)


def _on_upstream_up(row: MessageRow, event: UpstreamUp, now: float, policy: RetryPolicy) -> _Outcome:
    row.route_index = 0
    row.attempts_here = 0
    row.state = State.QUEUED
    return _NOTHING


def _on_failover(row: MessageRow, event: Failover, now: float, policy: RetryPolicy) -> _Outcome:
    if row.route_index == event.from_index and event.from_index + 1 < len(row.route):
        row.route_index += 1
        row.attempts_here = 0
        row.pinned = False
    return _NOTHING


def _on_sibling_accepted(row: MessageRow, event: SiblingAccepted, now: float, policy: RetryPolicy) -> _Outcome:
    if row.route_index == event.route_index:
        row.pinned = True
    return _NOTHING


def _on_receipt(row: MessageRow, event: Receipt, now: float, policy: RetryPolicy) -> _Outcome:
    row.state = _RECEIPT_FINAL.get(event.state, _UNDELIVERABLE)
    row.error = event.error
    return _NOTHING


def _on_intermediate(row: MessageRow, event: Intermediate, now: float, policy: RetryPolicy) -> _Outcome:
    return (None, intermediate_wanted(row.registered_delivery))


def _on_expire(row: MessageRow, event: Expire, now: float, policy: RetryPolicy) -> _Outcome:
    if not _expired(row, now):
        raise InvalidTransition(row, event)
    row.state = State.EXPIRED
    return _NOTHING


def _on_cancel(row: MessageRow, event: Cancel, now: float, policy: RetryPolicy) -> _Outcome:
    row.state = State.CANCELLED
    return _NOTHING


def _on_replace(row: MessageRow, event: Replace, now: float, policy: RetryPolicy) -> _Outcome:
    row.due = event.due
    row.expires_at = event.expires_at
    if event.registered_delivery is not None:
        row.registered_delivery = event.registered_delivery
    if row.due > now:
        row.state = State.SCHEDULED
    elif row.state is State.SCHEDULED:
        row.state = State.QUEUED
    return _NOTHING


def _on_restarted(row: MessageRow, event: Restarted, now: float, policy: RetryPolicy) -> _Outcome:
    row.attempts += 1  # written, never answered: it will be written again
    row.state = State.QUEUED
    return _NOTHING


def _on_receipt_delivered(row: MessageRow, event: ReceiptDelivered | ReceiptDropped, now: float,
                          policy: RetryPolicy) -> _Outcome:
    if not row.receipt_owed:
        raise InvalidTransition(row, event)
    row.receipt_owed = False
    return _NOTHING


_HANDLERS: dict[type[Event], Callable[..., _Outcome]] = {
    Due: _on_due,
    Taken: _on_taken,
    SubmitOk: _on_submit_ok,
    SubmitTemporary: _on_submit_temporary,
    SubmitPermanent: _on_submit_permanent,
    UpstreamDown: _on_upstream_down,
    UpstreamUp: _on_upstream_up,
    Failover: _on_failover,
    SiblingAccepted: _on_sibling_accepted,
    Receipt: _on_receipt,
    Intermediate: _on_intermediate,
    Expire: _on_expire,
    Cancel: _on_cancel,
    Replace: _on_replace,
    ReceiptDelivered: _on_receipt_delivered,
    ReceiptDropped: _on_receipt_delivered,
    Restarted: _on_restarted,
}


# The receipt's delivery to the ESME is bookkeeping, not a change of the message: the row's
# updated_at stays the time of its last change of state (a receipt's done date, query_sm's
# final_date), as the store keeps it (its acknowledgement writes receipts_owed, not the row).
_UNSTAMPED: frozenset[type[Event]] = frozenset({ReceiptDelivered, ReceiptDropped})


class _Rule:
    """One entry of :data:`TRANSITIONS` as :func:`apply` reads it: the states the event may lead
    to from one state, and the handler that moves the row."""

    __slots__ = ("allowed", "handler", "stamps")

    def __init__(self, allowed: frozenset[State], handler: Callable[..., _Outcome], stamps: bool) -> None:
        self.allowed = allowed
        self.handler = handler
        self.stamps = stamps  # sets the row's updated_at (see _UNSTAMPED)


#: :data:`TRANSITIONS` by event type, then state (made from it, never edited): :func:`apply` finds
#: an event's rule with two plain lookups, where a (state, event type) key cost a tuple built and
#: hashed per event (valgrind: ~600 instructions of the ~5,000 an event took)
_RULES: dict[type[Event], dict[State, _Rule]] = {}
for (_state, _kind), _allowed in TRANSITIONS.items():
    _RULES.setdefault(_kind, {})[_state] = _Rule(_allowed, _HANDLERS[_kind], _kind not in _UNSTAMPED)
del _state, _kind, _allowed
_NO_RULES: dict[State, _Rule] = {}


#: the steps :func:`apply_run` takes inline: (state, event) -> the one state it leads to, which
#: the table must say and which must not end a message (checked here, once)
_RUN_STEPS: dict[tuple[State, type[Event]], State] = {(_QUEUED, Taken): _IN_FLIGHT, (_IN_FLIGHT, SubmitOk): _SENT}
for (_state, _kind), _after in _RUN_STEPS.items():
    if TRANSITIONS[(_state, _kind)] != {_after} or _after in FINAL_STATES or _kind in _UNSTAMPED:
        raise AssertionError(f"apply_run's step {_kind.__name__} from {_state.value} is not the table's")
del _state, _kind, _after
