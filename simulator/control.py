"""Steering a running simulator: the operations behind the HTTP control API and the fixture.

One implementation, two doors: ``simulator.http_api`` turns each HTTP request into a typed
request Struct and calls a method here; the pytest fixtures (``smsc``, ``smsc_sync``) call
the same methods. So a Java test posting to ``/accounts/acme/fail-next`` and a pytest test
calling ``smsc.fail_next(..., system_id="acme")`` get the same checks and the same answer.
(The fixture's older ``send_mo`` keeps its own contract, holding an MO until its account
binds; ``POST /mo`` goes through :meth:`Control.send_mo`, which refuses instead. Both end in
the engine's one ``send_mo``.)

Every request is checked before anything changes: a bad one raises
:class:`ControlError` naming the field, with the HTTP status it deserves (400 bad
value, 404 no such bind, 409 nothing can take it now, 429 too many waiters). Every
collection has a bound: failures queued, waiters, the messages a timeout reports.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import weakref
from typing import Annotated, Any, TypeVar

import msgspec
import structlog

from smppcore.config import explain, format_host_port
from smppcore.server import SmscConnection
from smppcore.session_states import State

from .config import Address, ConfigError, SimulatorConfig, SystemId, config_from_dict, parse_status
from .engine import Simulator
from .failures import MAX_QUEUED
from .records import Message, Stats

__all__ = [
    "Control",
    "ControlError",
    "WaitTimeout",
    "MoRequest",
    "MoResult",
    "FailNextRequest",
    "FailNextResult",
    "SettingsPatch",
    "BindInfo",
    "WaitQuery",
    "MessageView",
    "Snapshot",
    "convert",
    "refusal",
]

log = structlog.get_logger("simulator.control")
T = TypeVar("T")

#: 255 segments of 153 GSM characters is the most a concatenated message holds
MAX_TEXT = 255 * 153
MAX_WAIT_S = 120.0
MAX_REGEX = 500  # characters of a /wait text pattern
MAX_SCAN = 10_000  # the newest messages a /wait looks through before it waits for new ones


class ControlError(ValueError):
    """A request the simulator refuses; ``status`` is the HTTP status, ``field`` what was wrong."""

    def __init__(self, status: int, message: str, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.extra = extra

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.field is not None:
            out["field"] = self.field
        out.update(self.extra)
        return out


class WaitTimeout(ControlError, TimeoutError):
    """``wait`` saw no matching message in time (HTTP 408); ``seen`` lists what came instead."""


def refusal(message: str) -> ControlError:
    """A 400 for a problem described as ``key: what`` (explain() and ConfigError write
    them so): the key is the field."""
    key, sep, _ = message.partition(": ")
    return ControlError(400, message, key if sep and " " not in key else None)


def convert(data: Any, type_: type[T], *, strict: bool = True) -> T:
    """``data`` (a decoded JSON body, query parameters with ``strict=False``, a fixture
    call's arguments) as the typed request ``type_``, or ControlError 400 naming the field."""
    try:
        return msgspec.convert(data, type_, strict=strict)
    except msgspec.ValidationError as exc:
        raise refusal(explain(exc)) from None


class _Request(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class MoRequest(_Request):
    """``POST /mo``: a mobile-originated message, named like ``send_mo``'s arguments.

    ``text`` is split into as many segments as it needs in ``data_coding`` (chosen for
    the text when absent); a binary ``data_coding`` takes ``hex`` instead of ``text``.
    """

    source_addr: Address
    destination_addr: Address
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT)] | None = None
    hex: Annotated[str, msgspec.Meta(max_length=280, pattern="^([0-9a-fA-F]{2})*$")] | None = None
    system_id: SystemId | None = None
    data_coding: Annotated[int, msgspec.Meta(ge=0, le=255)] | None = None


class MoResult(msgspec.Struct):
    """What ``/mo`` sent: to which accounts, how many deliver_sm each, in which coding."""

    system_ids: list[str]
    segments: int
    data_coding: int


class FailNextRequest(_Request):
    """``POST /accounts/{system_id}/fail-next``: the account's next ``count`` submits get ``status``."""

    count: Annotated[int, msgspec.Meta(ge=1, le=MAX_QUEUED)] = 1
    status: Annotated[str, msgspec.Meta(min_length=1, max_length=40)] = "ESME_RSYSERR"


class FailNextResult(msgspec.Struct):
    system_id: str | None
    count: int
    status: int
    queued: int  # failures waiting now, every account together


class SettingsPatch(_Request):
    """``PUT /settings``: any of these sections of simulator.toml, each replaced whole.

    The sections stay plain here: they are checked once merged, by the very configuration
    type simulator.toml decodes into (:class:`Delay`, :class:`Throttle`, :class:`Errors`,
    :class:`Receipts`, :class:`NetworkRule`), so a value the file would refuse is refused
    with the same message and key. ``receipts.message_id_format`` and
    ``receipts.hold_limit`` stay as they started (left out: kept; another value: 400).
    """

    submit_latency: dict[str, Any] | None = None  # a Delay
    throttle: dict[str, Any] | None = None  # a Throttle
    errors: dict[str, Any] | None = None  # Errors
    receipts: dict[str, Any] | None = None  # Receipts
    network: list[dict[str, Any]] | None = None  # every NetworkRule (per destination prefix)


#: receipts settings fixed when the simulator starts: the record's index follows the id format
_FIXED_RECEIPT_KEYS = ("message_id_format", "hold_limit")


class BindInfo(msgspec.Struct):
    """One connection as ``GET /binds`` lists it."""

    id: int
    system_id: str
    bind_type: str  # tx, rx, trx; "" before the bind
    state: str
    peer: str
    hung: bool  # stopped reading (POST /binds/{id}/hang)


class WaitQuery(_Request):
    """``GET /wait``: a message to ``to`` and/or whose text matches ``text`` (a regex)."""

    to: Address | None = None
    text: Annotated[str, msgspec.Meta(max_length=MAX_REGEX)] | None = None
    timeout: Annotated[float, msgspec.Meta(gt=0, le=MAX_WAIT_S)] = 10.0


class MessageView(msgspec.Struct):
    """A whole message as the API shows it, with what its receipts said."""

    system_id: str
    source_addr: str
    destination_addr: str
    data_coding: int
    text: str
    parts: int
    message_ids: list[str]
    received_at: float
    state: str  # of its last segment: ENROUTE until a final state
    receipts_sent: int


class Snapshot(msgspec.Struct):
    """What the web page shows: counters, binds, the newest messages (newest first), long-polls waiting."""

    stats: Stats
    binds: list[BindInfo]
    messages: list[MessageView]
    waiting: int


_BIND_TYPES = {State.BOUND_TX: "tx", State.BOUND_RX: "rx", State.BOUND_TRX: "trx"}


def _peer(conn: SmscConnection) -> str:
    peer = conn.peername
    if isinstance(peer, tuple) and len(peer) >= 2:
        return format_host_port(str(peer[0]), int(peer[1]))
    return str(peer or "")


class Control:
    """The control operations over one :class:`Simulator`."""

    def __init__(self, sim: Simulator, *, max_waiters: int = 64) -> None:
        self.sim = sim
        self.max_waiters = max_waiters
        self.waiting = 0
        self._ids: weakref.WeakKeyDictionary[SmscConnection, int] = weakref.WeakKeyDictionary()
        self._next_id = itertools.count(1)
        self._hung: weakref.WeakSet[SmscConnection] = weakref.WeakSet()
        self._closing = asyncio.Event()

    # ---- MO ------------------------------------------------------------------------------

    def send_mo(self, request: MoRequest) -> MoResult:
        """Send the MO to ``system_id``'s receivers (or every account with one bound).

        The request is checked first (400), then whether a bound receiver or transceiver
        can take it now (409): a test that injects an MO wants it delivered, not held for
        a bind that may never come.
        """
        from smppcore.text import choose_coding, encode_text, split_text

        sim = self.sim
        if (request.text is None) == (request.hex is None):
            raise ControlError(400, "give text, or hex for a binary data_coding (one of them)", "text")
        payload: str | bytes
        if request.hex is not None:
            payload = bytes.fromhex(request.hex)
            coding = request.data_coding if request.data_coding is not None else 4
            segments = 1
        else:
            payload = request.text or ""
            coding = request.data_coding if request.data_coding is not None else choose_coding(payload)
            try:
                encode_text(payload, coding)
            except ValueError as exc:  # a character that coding lacks, a binary or unknown coding
                raise ControlError(400, str(exc), "data_coding") from None
            try:
                segments = len(split_text(payload, data_coding=coding))
            except ValueError as exc:  # past 255 segments
                raise ControlError(400, str(exc), "text") from None
        targets = [request.system_id] if request.system_id else sim.bound_systems()
        if not targets or not sim.receivers(targets[0]):
            who = f"account {request.system_id!r} has" if request.system_id else "there is"
            raise ControlError(409, f"{who} no receiver or transceiver bound to take an MO", "system_id")
        sim.send_mo(request.source_addr, request.destination_addr, payload, system_id=request.system_id,
                    data_coding=coding)
        log.info("mo_injected", system_ids=targets, segments=segments, data_coding=coding)
        return MoResult(targets, segments, coding)

    # ---- failures --------------------------------------------------------------------------

    def fail_next(self, request: FailNextRequest, system_id: str | None = None) -> FailNextResult:
        """Answer the next ``count`` submits (of ``system_id``, or anyone's) with ``status``."""
        status = parse_status(request.status)
        if status is None or status == 0:
            why = "is success, not an error" if status == 0 else "is not a command_status name or number"
            raise ControlError(400, f"{request.status!r} {why}", "status")
        if system_id is not None and self.sim.config.accounts and system_id not in {
                a.system_id for a in self.sim.config.accounts}:
            raise ControlError(404, f"no account {system_id!r}", "system_id")
        try:
            self.sim.fail_next(status, request.count, system_id=system_id)
        except ValueError as exc:  # past MAX_QUEUED: the queue says so, and queues nothing
            raise ControlError(409, str(exc), "count") from None
        return FailNextResult(system_id, request.count, status, self.sim.failures_queued)

    # ---- settings --------------------------------------------------------------------------

    def update_settings(self, patch: SettingsPatch) -> SimulatorConfig:
        """Replace the given sections of the running configuration; the rest stays."""
        data = msgspec.to_builtins(self.sim.config)
        changes: dict[str, Any] = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not None}
        if patch.receipts is not None:
            receipts = changes["receipts"] = dict(patch.receipts)
            for key in _FIXED_RECEIPT_KEYS:
                if key in receipts and receipts[key] != data["receipts"][key]:
                    raise ControlError(400, f"fixed when the simulator starts ({data['receipts'][key]!r})",
                                       f"receipts.{key}")
                receipts[key] = data["receipts"][key]
        if not changes:
            raise ControlError(400, "nothing to change: give submit_latency, throttle, errors, receipts or network",
                               None)
        data.update(changes)
        try:
            config = config_from_dict(data)
        except ConfigError as exc:
            raise refusal(str(exc)) from None
        self.sim.reconfigure(config)
        log.info("settings_changed", sections=sorted(changes))
        return config

    def settings(self) -> dict[str, Any]:
        config = self.sim.config
        return {k: msgspec.to_builtins(getattr(config, k)) for k in SettingsPatch.__struct_fields__}

    # ---- binds --------------------------------------------------------------------------------

    def _id(self, conn: SmscConnection) -> int:
        bind_id = self._ids.get(conn)
        if bind_id is None:
            bind_id = self._ids[conn] = next(self._next_id)
        return bind_id

    def binds(self) -> list[BindInfo]:
        """Every open connection, oldest first (ids stay the same while it lives)."""
        conns = sorted(self.sim.connections, key=lambda c: c.session.opened_at)
        return [self._info(c) for c in conns]

    def _info(self, conn: SmscConnection) -> BindInfo:
        state = conn.session.state
        return BindInfo(self._id(conn), conn.system_id, _BIND_TYPES.get(state, ""), state.value, _peer(conn),
                        conn in self._hung)

    def _find(self, bind_id: int) -> SmscConnection:
        for conn in list(self.sim.connections):
            if self._id(conn) == bind_id:
                return conn
        raise ControlError(404, f"no bind {bind_id} (GET /binds lists them)", "id")

    def drop(self, bind_id: int) -> BindInfo:
        """Close the connection at once, without an unbind: a carrier's link going down."""
        conn = self._find(bind_id)
        info = self._info(conn)
        self.sim.stats.dropped_connections += 1
        conn.abort()
        log.info("bind_dropped", id=bind_id, system_id=info.system_id)
        return info

    def hang(self, bind_id: int) -> BindInfo:
        """Stop reading the connection: nothing it sends is answered any more, enquire_link
        included, and the deliver_sm in flight are never acknowledged; the connection stays
        open, as with a carrier whose process hangs. Only dropping it ends that."""
        conn = self._find(bind_id)
        conn.pause_reading("hang")
        self._hung.add(conn)
        log.info("bind_hung", id=bind_id, system_id=conn.system_id)
        return self._info(conn)

    # ---- the record ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget what was received (messages, submits, receipts, MO sent); binds stay."""
        self.sim.clear()

    def view(self, message: Message) -> MessageView:
        state, receipts = "ENROUTE", 0
        for message_id in message.message_ids:
            record = self.sim.by_id.get(message_id)
            if record is not None:
                state = record.state
                receipts += record.receipts_sent
        return MessageView(message.system_id, message.source_addr, message.destination_addr, message.data_coding,
                           message.text, message.parts, list(message.message_ids), message.received_at, state, receipts)

    def messages(self, limit: int) -> list[MessageView]:
        """The ``limit`` newest messages, oldest first."""
        return [self.view(m) for m in self.sim.messages.last(limit)]

    def snapshot(self, limit: int = 50) -> Snapshot:
        views = self.messages(limit)
        views.reverse()
        return Snapshot(self.sim.stats, self.binds(), views, self.waiting)

    # ---- waiting -------------------------------------------------------------------------------

    @staticmethod
    def matcher(query: WaitQuery) -> _Matcher:
        if query.to is None and query.text is None:
            raise ControlError(400, "say what to wait for: to, text or both", "to")
        pattern = None
        if query.text is not None:
            try:
                pattern = re.compile(query.text)
            except re.error as exc:
                raise ControlError(400, f"not a regular expression: {exc}", "text") from None
        return _Matcher(query.to, pattern)

    async def _arrival(self, n: int, timeout: float) -> bool:
        """True when the n-th message arrived within ``timeout``; False on timeout; 503 when
        the simulator closes meanwhile (a long-poll must not hold its shutdown)."""
        arrival = asyncio.ensure_future(self.sim.message_arrival(n, timeout))
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait((arrival, closing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            arrival.cancel()
            closing.cancel()
        if closing.done() and not closing.cancelled():
            raise ControlError(503, "the simulator is shutting down", None)
        return arrival.done() and not arrival.cancelled() and arrival.exception() is None

    def close(self) -> None:
        """Answer every long-poll now (503): the simulator is stopping."""
        self._closing.set()

    async def wait(self, query: WaitQuery) -> MessageView:
        """The newest message already received that matches (among the last :data:`MAX_SCAN`),
        or the first one to arrive within ``timeout``. A timeout raises WaitTimeout (408)
        listing (up to 20) messages that did arrive, newest first, so the caller sees what
        came instead; 429 past ``max_waiters``, 503 when the simulator stops meanwhile."""
        match = self.matcher(query)
        sim = self.sim
        for message in reversed(sim.messages.last(MAX_SCAN)):
            if match(message):
                return self.view(message)
        if self._closing.is_set():
            raise ControlError(503, "the simulator is shutting down", None)
        if self.waiting >= self.max_waiters:
            raise ControlError(429, f"{self.waiting} requests are waiting already (at most {self.max_waiters})", None)
        self.waiting += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + query.timeout
        try:
            while True:
                seen = sim.stats.messages
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                if not await self._arrival(seen + 1, remaining):
                    break
                arrived = sim.stats.messages - seen
                for message in sim.messages.last(arrived if arrived > 0 else len(sim.messages)):
                    if match(message):
                        return self.view(message)
        finally:
            self.waiting -= 1
        recent = [msgspec.to_builtins(self.view(m)) for m in reversed(sim.messages.last(20))]
        raise WaitTimeout(408, f"no matching message within {query.timeout:g}s", None, seen=recent)


class _Matcher:
    """Does a message match a /wait query: its destination (any of a submit_multi's), its text."""

    def __init__(self, to: str | None, pattern: re.Pattern[str] | None) -> None:
        self.to = to
        self.pattern = pattern

    def __call__(self, message: Message) -> bool:
        if self.to is not None and self.to not in message.destination_addr.split(","):
            return False
        return self.pattern is None or self.pattern.search(message.text) is not None

