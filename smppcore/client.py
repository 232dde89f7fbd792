"""The ESME side: connect, bind, submit, receive deliver_sm; reconnect when asked.

::

    async with smppcore.connect("127.0.0.1", 2775, system_id="id", password="pw") as client:
        resp = await client.submit_sm(destination_addr="447700900123", short_message=b"hi")
        async for pdu in client.messages():   # deliver_sm: receipts and MO
            ...

``client.send(pdu)`` returns as soon as the request is on its way, with a Future
for its response, so one task can keep a whole window in flight.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import operator
import random
import ssl as _ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Sequence
from typing import Any

import msgspec

from .backoff import Backoff
from .connection import EARLY_FLUSH, ConnectionClosed, SmppConnection, SmppStatusError
from .constants import CommandId, CommandStatus
from .pdus import Pdu, SubmitSm, SubmitSmResp
from .session import BIND_TYPES, BindRequest, Role, SessionConfig

__all__ = ["Client", "connect", "reconnecting", "BindError"]

log = logging.getLogger("smppcore.client")

#: what :meth:`Client.on_request` hands to ``on_message``; a set made once, not three
#: ``CommandId.X`` per PDU (on Python 3.11 each is a slow Enum attribute lookup, ~0.3 us)
_MESSAGES = frozenset({CommandId.DELIVER_SM, CommandId.DATA_SM, CommandId.ALERT_NOTIFICATION})
#: what :attr:`Client.on_messages` takes: the messages that are answered
_RUN_MESSAGES = frozenset({CommandId.DELIVER_SM, CommandId.DATA_SM})
#: a PDU's command_id read in C: a run's ids are checked by one issuperset, not a generator step each
_COMMAND_ID = operator.attrgetter("command_id")

MessageHandler = Callable[[Pdu], "int | None | Awaitable[int | None]"]
#: :attr:`Client.on_messages`: a run of deliver_sm / data_sm in, one result per request out, in order
MessageRunHandler = Callable[[list[Pdu]], "Sequence[int | None | Awaitable[int | None]]"]


class BindError(SmppStatusError):
    """The SMSC refused the bind."""


class Client(SmppConnection):
    """An ESME connection. Build it with :func:`connect`.

    ``on_message(pdu)`` answers each deliver_sm / data_sm by what it returns: an int
    (None: ESME_ROK) at once; an ``asyncio.Future`` when it completes (requests given
    the same Future are answered together, in the order they came); any other
    awaitable through a task. An exception, or a Future that fails, answers
    ESME_RX_T_APPN.

    ``on_messages(pdus)``, when set (an attribute, beside ``on_message``), takes the
    deliver_sm / data_sm of one read as one list (a run, see
    :meth:`SmppConnection.on_requests`) and gives back one result per request, in
    their order, each an int, None, a Future or an awaitable answered as above. Why: a hub handles a
    run in one loop, not a chain of calls a request (the receipt leg of the hub,
    callgrind: see router.upstream). It must keep one request's failure to itself (an
    exception it raises answers the whole run ESME_RX_T_APPN); a run holding anything
    else (an alert_notification, say) goes to ``on_message`` one request at a time.
    """

    role = Role.ESME
    on_messages: MessageRunHandler | None = None

    def __init__(
        self,
        *,
        system_id: str,
        password: str,
        bind: str = "trx",
        system_type: str = "",
        interface_version: int = 0x34,
        addr_ton: int = 0,
        addr_npi: int = 0,
        address_range: str = "",
        on_message: MessageHandler | None = None,
        queue_limit: int = 10000,
        config: SessionConfig | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if bind not in BIND_TYPES:
            raise ValueError(f"bind must be one of {sorted(BIND_TYPES)}, not {bind!r}")
        super().__init__(config, loop=loop)
        self.bind_type = bind
        # the bind this client sends (a copy each time: sending numbers it)
        self._bind_request: BindRequest = BIND_TYPES[bind](
            system_id=system_id,
            password=password,
            system_type=system_type,
            interface_version=interface_version,
            addr_ton=addr_ton,
            addr_npi=addr_npi,
            address_range=address_range,
        )
        self.on_message = on_message
        self.queue_limit = queue_limit
        self._incoming: asyncio.Queue[Pdu | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        # the requests waiting for a handler's Future, by Future: see _wait_for
        self._waiting: dict[asyncio.Future[int | None], list[Pdu]] = {}

    @property
    def system_id(self) -> str:
        return self._bind_request.system_id

    # ---- binding -------------------------------------------------------------------

    async def bind(self) -> Pdu:
        """Send the bind and wait for its response; raise BindError if refused."""
        request = msgspec.structs.replace(self._bind_request)
        resp = await (await self.send(request))
        if resp.command_status != CommandStatus.ESME_ROK:
            raise BindError(resp)
        return resp

    def on_outbind(self, pdu: Pdu) -> None:
        # The SMSC connected to us and asks for a bind: answer with ours.
        async def _bind() -> None:
            try:
                await self.bind()
            except Exception as exc:  # noqa: BLE001 - logged, the connection closes
                log.warning("bind after outbind failed: %s", exc)
                self.close()

        self._spawn(_bind())

    # ---- sending --------------------------------------------------------------------

    async def submit_sm(self, **fields: Any) -> SubmitSmResp:
        """Submit one message; returns submit_sm_resp or raises SmppStatusError."""
        return await self.request(SubmitSm(**fields))  # type: ignore[return-value]

    async def submit_text(
        self,
        destination_addr: str,
        text: str,
        *,
        data_coding: int | None = None,
        method: str = "udh",
        reference: int | None = None,
        ref_bits: int = 8,
        **fields: Any,
    ) -> list[SubmitSmResp]:
        """Submit ``text``, split into as many segments as it needs (UDH, SAR or payload).

        ``reference``: the concatenation reference (random when None: 8 bits, or 16 with
        ``ref_bits=16`` or ``method="sar"``, whose reference is always 16 bits).
        """
        from .text import split_text  # local: keeps the text tables off the import path

        bits = 16 if method == "sar" else ref_bits
        ref = random.randrange(1 << bits) if reference is None else reference
        segments = split_text(text, data_coding=data_coding, method=method, reference=ref, ref_bits=ref_bits)
        extra_tlvs = fields.pop("tlvs", {})
        esm_class = fields.pop("esm_class", 0)
        futures = []
        for seg in segments:
            pdu = SubmitSm(
                destination_addr=destination_addr,
                short_message=seg.short_message,
                data_coding=seg.data_coding,
                esm_class=esm_class | seg.esm_class,
                tlvs={**extra_tlvs, **seg.tlvs},
                **fields,
            )
            futures.append(await self.send(pdu))
        responses = [await f for f in futures]
        for resp in responses:
            if resp.command_status != CommandStatus.ESME_ROK:
                raise SmppStatusError(resp)
        return responses  # type: ignore[return-value]

    async def enquire_link(self) -> Pdu:
        from .pdus import EnquireLink

        return await self.request(EnquireLink())

    # ---- receiving ------------------------------------------------------------------------

    def on_requests(self, pdus: list[Pdu]) -> None:
        handler = self.on_messages
        if handler is None or self.on_message is None or not _RUN_MESSAGES.issuperset(map(_COMMAND_ID, pdus)):
            super().on_requests(pdus)
            return
        try:
            results = handler(pdus)
            if len(results) != len(pdus):
                raise ValueError(f"on_messages gave {len(results)} results for {len(pdus)} requests")
        except Exception:  # noqa: BLE001 - the handler's bug must not kill the session
            log.exception("message handler failed")
            self.session.answer(pdus, CommandStatus.ESME_RX_T_APPN)
            return
        session = self.session
        first = results[0] if results else None
        if isinstance(first, asyncio.Future) and results.count(first) == len(results):
            # the whole run waits on one Future (a hub's receipts of one durable save): added to its
            # list at once, not by the loop of _answer_run a request
            self._behind(first).extend(pdus)
        else:
            self._answer_run(pdus, results)
        if len(session._out) >= EARLY_FLUSH and self.transport is not None:
            self.transport.write(session.data_to_send())

    def _answer_run(self, pdus: list[Pdu], results: Sequence[int | None | Awaitable[int | None]]) -> None:
        """Each of a run's requests answered by its result, in their order, as :meth:`on_request` would."""
        session = self.session
        last: asyncio.Future[int | None] | None = None
        behind: list[Pdu] = []
        for pdu, result in zip(pdus, results, strict=True):
            if result is None or isinstance(result, int):
                session.answer((pdu,), result or 0)
            elif isinstance(result, asyncio.Future):
                if result is not last:  # a run's receipts share one Future: one look-up for them
                    last = result
                    behind = self._behind(result)
                behind.append(pdu)
            else:
                self._spawn(self._answer_later(pdu, result))

    def on_request(self, pdu: Pdu) -> None:
        if pdu.command_id not in _MESSAGES:
            super().on_request(pdu)
            return
        handler = self.on_message
        if handler is None:
            self._incoming.put_nowait(pdu)
            if self._incoming.qsize() >= self.queue_limit:
                self.pause_reading("incoming-queue")
            self.session.answer((pdu,))
            return
        try:
            result = handler(pdu)
        except Exception:  # noqa: BLE001 - the handler's bug must not kill the session
            log.exception("message handler failed")
            result = CommandStatus.ESME_RX_T_APPN
        if isinstance(result, asyncio.Future):
            self._wait_for(result, pdu)
        elif result is not None and type(result) is not int and inspect.isawaitable(result):
            self._spawn(self._answer_later(pdu, result))
        else:
            self.session.answer((pdu,), result or 0)

    def _wait_for(self, fut: asyncio.Future[int | None], pdu: Pdu) -> None:
        """Answer ``pdu`` when ``fut`` completes: a bare Future needs no task.

        Requests given the same Future wait in one list behind one done-callback, so
        a handler that answers a batch with one Future (a hub: the receipts of one
        durable write) costs a list append per request, not a callback scheduled and
        run for each (valgrind, the hub's receipt leg: 198k -> 179k instructions a receipt).
        """
        self._behind(fut).append(pdu)

    def _behind(self, fut: asyncio.Future[int | None]) -> list[Pdu]:
        """The requests answered when ``fut`` completes, in order (a new list, and the callback
        that answers them, for a Future seen first)."""
        waiting = self._waiting.get(fut)
        if waiting is None:
            waiting = self._waiting[fut] = []
            fut.add_done_callback(self._answer_waiting)
        return waiting

    def _answer_waiting(self, fut: asyncio.Future[int | None]) -> None:
        pdus = self._waiting.pop(fut, ())
        if fut.cancelled() or fut.exception() is not None:
            if not fut.cancelled():
                log.warning("message handler failed: %s", fut.exception())
            status: int = CommandStatus.ESME_RX_T_APPN
        else:
            status = fut.result() or 0
        if self.transport is None:
            return
        self.session.answer(pdus, status)
        self._flush_soon()

    async def _answer_later(self, pdu: Pdu, result: Awaitable[int | None]) -> None:
        try:
            status = await result
        except Exception:  # noqa: BLE001 - the handler's bug must not kill the session
            log.exception("message handler failed")
            status = CommandStatus.ESME_RX_T_APPN
        if pdu.response_type is not None:
            self.respond(pdu.make_response(command_status=status or 0))

    async def messages(self) -> AsyncIterator[Pdu]:
        """deliver_sm / data_sm / alert_notification from the SMSC, until the connection closes.

        Used when no ``on_message`` handler was given; the client answers each one
        with ESME_ROK as it queues it, and stops reading from the SMSC while
        ``queue_limit`` messages wait here.
        """
        while True:
            if self._incoming.empty() and self.transport is None:
                return
            pdu = await self._incoming.get()
            if pdu is None:
                return
            if self._incoming.qsize() < self.queue_limit // 2:
                self.resume_reading("incoming-queue")
            yield pdu

    async def next_message(self, timeout: float | None = None) -> Pdu:
        """The next deliver_sm (or data_sm) from the SMSC."""
        pdu = await asyncio.wait_for(self._incoming.get(), timeout)
        if pdu is None:
            self._incoming.put_nowait(None)
            raise ConnectionClosed("connection closed")
        if self._incoming.qsize() < self.queue_limit // 2:
            self.resume_reading("incoming-queue")
        return pdu

    def on_closed(self, exc: Exception | None) -> None:
        self._incoming.put_nowait(None)
        self._waiting.clear()  # nothing to answer on: their Futures' callbacks find no list
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- context manager ------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session.state.is_bound:
            await self.unbind()
        else:
            self.close()
            await asyncio.shield(self.closed)


class _Connect:
    """What :func:`connect` returns: awaitable, and an async context manager that unbinds."""

    def __init__(self, factory: Callable[[], Awaitable[Client]]) -> None:
        self._factory = factory
        self._client: Client | None = None

    def __await__(self) -> Generator[Any, None, Client]:
        return self._factory().__await__()

    async def __aenter__(self) -> Client:
        self._client = await self._factory()
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.__aexit__(*exc)


def connect(
    host: str,
    port: int,
    *,
    system_id: str,
    password: str,
    bind: str = "trx",
    ssl: _ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    connect_timeout: float = 10.0,
    config: SessionConfig | None = None,
    window: int | None = None,
    on_message: MessageHandler | None = None,
    client_class: Callable[..., Client] | None = None,
    **bind_fields: Any,
) -> _Connect:
    """Connect, bind and return a :class:`Client` (await it, or ``async with`` it).

    ``window`` is a shortcut for ``SessionConfig(window=...)``. Raises BindError
    when the bind is refused, OSError when the connection fails and
    asyncio.TimeoutError when either takes longer than ``connect_timeout``.
    ``client_class``: a :class:`Client` subclass (or a callable making one from the
    same keyword arguments) to use instead of Client itself.
    """
    cls = client_class or Client
    if window is not None:
        config = _with_window(config, window)

    async def factory() -> Client:
        loop = asyncio.get_running_loop()

        def make() -> Client:
            return cls(
                system_id=system_id,
                password=password,
                bind=bind,
                on_message=on_message,
                config=config,
                loop=loop,
                **bind_fields,
            )

        async def open_and_bind() -> Client:
            _, client = await loop.create_connection(
                make, host, port, ssl=ssl, server_hostname=server_hostname if ssl else None
            )
            try:
                await client.bind()
            except BaseException:
                client.close()
                raise
            return client

        client = await asyncio.wait_for(open_and_bind(), connect_timeout)
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # asyncio.wait_for (Python 3.11) hands back a bind that completed as this task
            # was cancelled, and drops the cancellation: the caller would never see, nor
            # close, this connection
            client.close()
            raise asyncio.CancelledError()
        return client

    return _Connect(factory)


def _with_window(config: SessionConfig | None, window: int) -> SessionConfig:
    base = config or SessionConfig()
    return SessionConfig(
        window=window,
        response_timeout=base.response_timeout,
        bind_timeout=base.bind_timeout,
        enquire_link_interval=base.enquire_link_interval,
        inactivity_timeout=base.inactivity_timeout,
        max_pdu_size=base.max_pdu_size,
    )


async def reconnecting(
    host: str,
    port: int,
    *,
    backoff: Backoff | None = None,
    **connect_kwargs: Any,
) -> AsyncIterator[Client]:
    """Yield a freshly bound client each time the previous one is gone.

    Failed attempts are retried after exponential back-off with jitter; a
    successful bind resets it. A refused bind (BindError) is retried the same
    way, since SMSCs refuse binds while they restart. ::

        async for client in reconnecting(host, port, system_id="id", password="pw"):
            await use(client)          # returns when client.closed is done
    """
    backoff = backoff or Backoff()
    while True:
        try:
            client = await connect(host, port, **connect_kwargs)
        except (TimeoutError, OSError, SmppStatusError, ConnectionClosed) as exc:
            delay = backoff.next_delay()
            log.info("connect to %s:%s failed (%s); retry in %.2fs", host, port, exc, delay)
            await asyncio.sleep(delay)
            continue
        backoff.reset()
        try:
            yield client
            await client.closed
        finally:
            client.close()
