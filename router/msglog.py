"""What the hub says about each message: a debug trace of every step, and the access log.

Two readers. An operator following one message sets ``[log] level = "debug"``:
every step is a structlog event on the ``smpphub.msg`` logger with the same keys
(``message_id`` is always the hub's id), so filtering on one ``message_id`` tells
its whole story::

    message_accepted -> message_routed -> message_submitted
        -> receipt_received -> receipt_delivered (or receipt_held, until a receiver binds)

with ``message_refused``, ``message_scheduled``, ``message_parked``, ``message_retry``,
``message_failover``, ``message_failed`` / ``message_expired`` / ``message_cancelled``,
``mo_received`` / ``mo_held`` / ``mo_delivered`` where they happen.

An operator keeping a record of traffic sets ``[log] access_log``: one ``access``
event per outcome, like Kannel's access-log ("Sent SMS", "FAILED Send SMS", "DLR",
"Receive SMS"): ``step`` is one of :data:`ACCESS_STEPS`, and every line has the keys
of :data:`ACCESS_FIELDS` (``-`` / null where one does not apply). Unlike Kannel's,
it never holds the message text (it would copy customers' content into a log).
``"-"`` sends them through the hub's own logging with everything else (filter on
``event == "access"``); a path gets a file of its own, reopened when logrotate moves
it.

The hub handles 12-20k messages a second, so callers test the plain booleans
:attr:`MessageLog.trace` (debug trace on) and :attr:`MessageLog.on` (trace or access
log on), copied once into their own attributes, before calling anything here: with
both off a step costs one attribute test and builds no keys.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
from collections.abc import Iterable

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from smppcore import Pdu, Tag, status_name
from smppcore.concat import concat_info
from smppcore.receipt import receipt_info, receipt_info_from_tlvs

from .config import LogConfig
from .lifecycle import MessageRow, State, Transition
from .trace import TraceRing
from .upstream import Outgoing

__all__ = ["ACCESS_FIELDS", "ACCESS_STEPS", "MessageLog", "bind_name", "destination_of"]

#: What an access line can record: the outcomes of a submit, and what came back.
ACCESS_STEPS = ("sent", "failed", "expired", "cancelled", "refused", "receipt", "mo")
#: Every access line has these keys, in this order (after the time and the step).
ACCESS_FIELDS = (
    "account", "upstream", "message_id", "upstream_id", "source", "dest", "segments", "part", "length", "status",
)

#: the access step (and ``message_<step>`` event) of each outcome the hub decides itself
_HUB_OUTCOMES = {State.UNDELIVERABLE: "failed", State.EXPIRED: "expired", State.CANCELLED: "cancelled"}


class Shape:
    """How big one PDU's message is: its segment of how many, and its user data octets."""

    __slots__ = ("segments", "part", "length")

    def __init__(self, pdu: Pdu) -> None:
        data = getattr(pdu, "short_message", b"") or pdu.tlvs.get(Tag.MESSAGE_PAYLOAD, b"")
        self.segments, self.part, self.length = 1, 1, len(data)
        try:
            info = concat_info(pdu)
        except ValueError:  # a malformed UDH travels on as it came: count it as one part
            info = None
        if info is not None:
            self.segments, self.part, self.length = info.total, info.seq, len(info.payload)


def bind_name(peername: tuple[str, int] | None, state: str) -> str:
    """``10.0.0.7:40512/bound_trx``: which of an account's binds, as an operator would name it."""
    where = f"{peername[0]}:{peername[1]}" if peername else "?"
    return f"{where}/{state}"


def receipted_id(pdu: Pdu) -> str:
    """The message id a receipt is about (the hub's, once the hub has rewritten it)."""
    info = receipt_info_from_tlvs(pdu) or receipt_info(pdu)
    return info.message_id if info is not None else ""


class MessageLog:
    """The trace and access events of one hub; see the module docstring."""

    def __init__(self, cfg: LogConfig) -> None:
        self.trace = cfg.level == "debug"
        self._log = structlog.get_logger("smpphub.msg")
        self._handler: logging.Handler | None = None
        self._access: FilteringBoundLogger | None = None
        if cfg.access_log == "-":
            # the configured pipeline, but filtered at INFO whatever [log] level says: asked for, so written
            self._access = structlog.wrap_logger(
                None,
                wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
                logger_factory_args=("smpphub.access",),
            )
        elif cfg.access_log:
            self._access = self._file_logger(cfg)
        self.on = self.trace or self._access is not None
        #: the steps of recent messages (``[log] trace_messages``), for the admin API; None: off.
        #: The parts that move messages record into it themselves (router/trace.py says why it is cheap).
        self.ring = TraceRing(cfg.trace_messages) if cfg.trace_messages else None

    @classmethod
    def off(cls) -> MessageLog:
        """No trace, no access log, no ring: for parts built without a hub (tests, tools)."""
        return cls(LogConfig(trace_messages=0))

    def _file_logger(self, cfg: LogConfig) -> FilteringBoundLogger:
        """A logger of its own (not in logging's registry: two hubs in one process keep
        their files apart) writing one rendered line per event to ``access_log``."""
        # delay: the file is created at the first line, so a hub that fails to start leaves none
        self._handler = logging.handlers.WatchedFileHandler(cfg.access_log, encoding="utf-8", delay=True)
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        target = logging.Logger("smpphub.access")
        target.addHandler(self._handler)
        renderer: Processor = structlog.processors.JSONRenderer() if cfg.format == "json" else _render_line
        logger: FilteringBoundLogger = structlog.wrap_logger(
            target,
            processors=[structlog.processors.TimeStamper(fmt="iso", utc=True), renderer],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        )
        return logger

    def close(self) -> None:
        if self._handler is not None:
            self._handler.close()
            self._handler = None
            self._access = None
            self.on = self.trace

    def _line(self, step: str, **fields: object) -> None:
        if self._access is not None:
            self._access.info("access", step=step, **{key: fields.get(key) for key in ACCESS_FIELDS})

    # ---- the ESME side ---------------------------------------------------------------------

    def refused(self, account: str, pdu: Pdu, status: int, reason: str, dest: str | None = None) -> None:
        """A submit the hub answered with an error: it has no hub id, its sequence number finds it.

        ``dest``: the destination refused, when it is not the PDU's own (submit_multi).
        """
        dest = destination_of(pdu) if dest is None else dest
        name = status_name(status)
        if self.trace:
            self._log.debug("message_refused", account=account, source=_source(pdu), dest=dest, status=name,
                            reason=reason, sequence=pdu.sequence_number)
        self._line("refused", account=account, source=_source(pdu), dest=dest, status=name)

    def accepted(self, out: Outgoing) -> None:
        row, pdu = out.row, out.pdu
        shape = Shape(pdu)
        self._log.debug("message_accepted", message_id=row.id, account=row.account, source=_source(pdu),
                        dest=destination_of(pdu), segments=shape.segments, part=shape.part, length=shape.length,
                        route=row.route, prefix=out.prefix, registered_delivery=row.registered_delivery)

    # ---- on the way upstream: one line per lifecycle transition -------------------------------

    def moved(self, out: Outgoing | None, row: MessageRow, transition: Transition, now: float) -> None:
        """What ``transition`` of ``row`` (at ``now``) means to an operator, if anything.

        ``out`` is the message on its way (its PDU and route prefix); None once an
        upstream accepted it.
        """
        before, after = transition.before, transition.after
        left = transition.failed_over_from
        prefix = out.prefix if out is not None else ""
        if self.trace:
            if before is State.QUEUED and after is State.IN_FLIGHT:
                self._log.debug("message_routed", message_id=row.id, account=row.account, upstream=row.upstream,
                                prefix=prefix, route_index=row.route_index, attempt=row.attempts + 1)
            elif left is not None:
                delay = round(row.due - now, 3) if after is State.SCHEDULED else None
                self._log.debug("message_failover", message_id=row.id, account=row.account, upstream=row.route[left],
                                next_upstream=row.target if after is State.QUEUED else None, delay=delay,
                                attempts=row.attempts)
            elif before is State.IN_FLIGHT and after is State.SCHEDULED:
                self._log.debug("message_retry", message_id=row.id, account=row.account, upstream=row.upstream,
                                status=_name(row.error), attempt=row.attempts_here, delay=round(row.due - now, 3))
            elif after is State.SCHEDULED and before is not State.SCHEDULED:
                self._log.debug("message_scheduled", message_id=row.id, account=row.account,
                                delay=round(row.due - now, 3))
            if after is State.PARKED and before is not State.PARKED:
                self._log.debug("message_parked", message_id=row.id, account=row.account, route=row.route,
                                reason="no upstream of its route is up")
        if after is State.SENT and before is State.IN_FLIGHT:
            self._submitted(out, row)
        elif transition.became_final and before is not State.SENT:
            self._finished(out, row)

    def _submitted(self, out: Outgoing | None, row: MessageRow) -> None:
        if self.trace:
            self._log.debug("message_submitted", message_id=row.id, account=row.account, upstream=row.upstream,
                            upstream_id=row.upstream_id, attempts=row.attempts)
        if out is not None:
            pdu = out.pdu
            shape = Shape(pdu)
            self._line("sent", account=row.account, upstream=row.upstream, message_id=row.id,
                       upstream_id=row.upstream_id, source=_source(pdu), dest=destination_of(pdu),
                       segments=shape.segments, part=shape.part, length=shape.length, status="ESME_ROK")

    def _finished(self, out: Outgoing | None, row: MessageRow) -> None:
        """A final outcome the hub decided itself: failed (the upstream's permanent error), expired, cancelled."""
        step = _HUB_OUTCOMES.get(row.state, row.state.value)
        status = row.error if row.state is State.UNDELIVERABLE else 0
        upstream = row.upstream if status else None
        if self.trace:
            self._log.debug(f"message_{step}", message_id=row.id, account=row.account, upstream=upstream,
                            status=_name(status), attempts=row.attempts)
        pdu = out.pdu if out is not None else None
        shape = Shape(pdu) if pdu is not None else None
        self._line(step, account=row.account, upstream=upstream, message_id=row.id,
                   source=_source(pdu) if pdu is not None else None,
                   dest=destination_of(pdu) if pdu is not None else None,
                   segments=shape.segments if shape else None, part=shape.part if shape else None,
                   length=shape.length if shape else None, status=_name(status))

    def unanswered(self, row: MessageRow, upstream: str, error: BaseException) -> None:
        """No answer from ``upstream`` (timeout, connection lost): the retry line that follows says what next."""
        self._log.debug("message_unanswered", message_id=row.id, account=row.account, upstream=upstream,
                        error=f"{type(error).__name__}: {error}")

    # ---- what comes back ---------------------------------------------------------------------

    def receipt(self, message_id: str, account: str, upstream: str, upstream_id: str, pdu: Pdu, state: str,
                final: bool, forwarded: bool) -> None:
        """A receipt from ``upstream`` mapped to the hub's ``message_id`` (``forwarded``: the ESME asked for it)."""
        source, dest = _addresses("receipt", pdu)
        if self.trace:
            self._log.debug("receipt_received", message_id=message_id, account=account, upstream=upstream,
                            upstream_id=upstream_id, state=state, final=final, forwarded=forwarded)
        self._line("receipt", account=account, upstream=upstream, message_id=message_id, upstream_id=upstream_id,
                   source=source, dest=dest, status=state)

    def mo(self, upstream: str, pdu: Pdu, account: str | None, webhook: str | None, status: int) -> None:
        """An MO from ``upstream`` for ``account`` or ``webhook`` (neither, and ``status`` set: no MO route)."""
        shape = Shape(pdu)
        if self.trace:
            self._log.debug("mo_received", account=account, webhook=webhook, upstream=upstream, source=_source(pdu),
                            dest=destination_of(pdu), segments=shape.segments, part=shape.part, length=shape.length,
                            status=_name(status))
        self._line("mo", account=account, upstream=upstream, source=_source(pdu), dest=destination_of(pdu),
                   segments=shape.segments, part=shape.part, length=shape.length, status=_name(status))

    def held(self, kind: str, account: str, pdu: Pdu, hold: float) -> None:
        """Stored for ``account``, which has no receiver bind right now: it waits up to ``hold`` seconds."""
        source, dest = _addresses(kind, pdu)
        self._log.debug(f"{kind}_held", message_id=receipted_id(pdu) if kind == "receipt" else None, account=account,
                        source=source, dest=dest, hold=hold)

    def delivered(self, kind: str, account: str, pdu: Pdu, bind: str | None, status: int, attempts: int) -> None:
        """The ESME answered ``pdu`` on ``bind`` (``status`` not 0 after the last attempt: dropped)."""
        source, dest = _addresses(kind, pdu)
        self._log.debug(f"{kind}_delivered", message_id=receipted_id(pdu) if kind == "receipt" else None,
                        account=account, bind=bind, status=_name(status), attempts=attempts, source=source, dest=dest)


def _source(pdu: Pdu) -> str:
    return getattr(pdu, "source_addr", "")


def destination_of(pdu: Pdu) -> str:
    """The destination of a submit_sm, data_sm or deliver_sm ("" for a submit_multi: several)."""
    return getattr(pdu, "destination_addr", "")


def _addresses(kind: str, pdu: Pdu) -> tuple[str, str]:
    """(source, dest) as the message had them: a receipt carries them swapped (from the handset)."""
    if kind == "receipt":
        return destination_of(pdu), _source(pdu)
    return _source(pdu), destination_of(pdu)


def _name(status: int | None) -> str | None:
    return None if status is None else status_name(status)


def _render_line(_logger: WrappedLogger, _name: str, event: EventDict) -> str:
    """``<time> <step> key=value ...``: the access file's console format, one awk-able line."""
    parts: Iterable[str] = (f"{key}={_value(event.get(key))}" for key in ACCESS_FIELDS)
    return f"{event.get('timestamp')} {event.get('step')} {' '.join(parts)}"


def _value(value: object) -> str:
    if value is None or value == "":
        return "-"
    text = str(value)
    if any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text
