"""The application API: ``/v1/messages`` (send one or many, status, cancel, list).

A message goes through exactly what an ESME's submit_sm goes through: it is made
into submit_sm PDUs (:mod:`.compose`), each admitted by the account's own path
(:meth:`router.esme.EsmeHandler.admit_submit`: throttle, source check, route, times,
hub id), and stored by the same group commit (:meth:`router.acceptor.Acceptor.accept`)
before the answer says "accepted". A long text's parts are admitted together: one
part refused refuses the message. In a batch each message (and each destination of
one) is accepted or rejected on its own, with its reason; a store failure refuses
the whole request (503), since nothing of it was stored.

Reads see the account's own messages only: another account's id is 404, as an
unknown one. Cancel takes the same path as cancel_sm (the dispatcher's Cancel
event); a message that has left can no longer be cancelled (409).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated

import msgspec
import structlog
from aiohttp import web

from smppcore import Pdu, decode
from smppcore.pdus import SubmitSm
from smppcore.receipt import error_code, receipt_info

from ..config import Account
from ..lifecycle import FINAL_STATES, MessageRow, State
from ..store.base import HttpMeta, MessageQuery
from ..upstream import Outgoing
from .auth import require_account
from .compose import CODINGS, CodedTexts, Draft, refusal, submits, utc
from .errors import ApiError, ErrorDetail, decode_json, field_of
from .idempotency import IdempotencyKeys, Keep, check_key
from .schema import (
    BatchIn,
    CancelResult,
    ItemResult,
    MessageIn,
    MessageOut,
    MessagePage,
    ReceiptOut,
    SendResult,
)
from .view import HTTP_CONFIG, HUB, HubView
from .webhooks import WEBHOOK_ID_MARK

__all__ = ["register", "Accepted", "admit_drafts", "store_accepted", "message_out"]

log = structlog.get_logger("smpphub.http")
_ENCODER = msgspec.json.Encoder()
KEYS: web.AppKey[IdempotencyKeys] = web.AppKey("smpphub.idempotency", IdempotencyKeys)
_STATES = {s.value: s for s in State}
PAGE_MAX = 1000


def json_response(value: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=_ENCODER.encode(value), content_type="application/json")


class _Answer:
    """The group commit's answer for one HTTP request (a :class:`router.acceptor.Responder`)."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def respond(self, pdu: Pdu) -> None:
        if not self.future.done():
            self.future.set_result(pdu.command_status)


class Accepted:
    """A message admitted (not stored yet): its parts as the hub will keep them, and its HTTP meta."""

    __slots__ = ("parts", "meta")

    def __init__(self, parts: list[Outgoing], meta: list[HttpMeta]) -> None:
        self.parts = parts
        self.meta = meta

    @property
    def id(self) -> str:
        return self.parts[0].row.id


def admit_drafts(hub: HubView, account: Account, draft: Draft, *, field: str = "", callback_url: str = "",
                 reference: str = "", kannel: str = "", texts: CodedTexts | None = None) -> Accepted:
    """``draft`` through the account's admission path, all parts or none (ApiError says why); ``texts``
    codes the request's texts once each."""
    if draft.send_at is not None and draft.valid_until is None:
        draft.valid_until = _valid_until(hub, draft.send_at, None)
    parts = _admit(hub, account, submits(draft, field=field, texts=texts), field)
    return Accepted(parts, _http_meta(account, parts, callback_url, reference, kannel))


def _valid_until(hub: HubView, send_at: datetime, valid_until: datetime | None) -> datetime | None:
    """``valid_until``, or by default the hub's default validity counted from when the message may
    leave, not from now: a send_at next month is fine (a time without its offset is refused later)."""
    if valid_until is None and send_at.tzinfo is not None:
        return send_at + timedelta(seconds=hub.config.default_validity)
    return valid_until


def _admit(hub: HubView, account: Account, pdus: list[SubmitSm], field: str) -> list[Outgoing]:
    """The parts of one message admitted, all or none: the first refused raises its ApiError."""
    handler = hub.handler
    parts: list[Outgoing] = []
    for pdu in pdus:
        out = handler.admit_submit(account.system_id, pdu)
        if isinstance(out, int):
            raise refusal(out, handler.unroutable, field=field)
        parts.append(out)
    return parts


def _http_meta(account: Account, parts: list[Outgoing], callback_url: str, reference: str,
               kannel: str) -> list[HttpMeta]:
    """What is kept beside the admitted ``parts`` of one message (nothing for a one-part message
    with neither callback nor reference: the usual case). Marks their ids when their receipts go
    by webhook, whatever the account does (see .webhooks): read the id after this."""
    if callback_url or kannel:
        for p in parts:
            p.row.id = WEBHOOK_ID_MARK + p.row.id
    if len(parts) == 1 and not (callback_url or reference or kannel):
        return []
    ids = [p.row.id for p in parts]
    return [HttpMeta(id=i, message=ids[0], account=account.system_id, parts=ids, callback_url=callback_url,
                     reference=reference, kannel=kannel, created_at=parts[0].row.created_at) for i in ids]


async def store_accepted(hub: HubView, accepted: list[Accepted]) -> None:
    """Store every message of ``accepted`` (one group commit with whatever else is arriving);
    503 if the store failed, in which case none of them was stored."""
    committed = commit_accepted(hub, accepted)
    if committed is not None:
        _stored(hub, await committed)


def commit_accepted(hub: HubView, accepted: list[Accepted]) -> asyncio.Future[int] | None:
    """Hand ``accepted`` to the group commit: the future gives its status (0: stored; for
    :func:`_stored`), None if there is nothing to store. A handler that awaits the future
    itself is one coroutine shallower than one awaiting :func:`store_accepted`: every
    level is paid twice per request, on suspending and on resuming."""
    return _commit(hub, [p for a in accepted for p in a.parts], [m for a in accepted for m in a.meta])


def _commit(hub: HubView, parts: list[Outgoing], meta: list[HttpMeta]) -> asyncio.Future[int] | None:
    """:func:`commit_accepted` of the messages' ``parts`` and their ``meta``, in request order."""
    if not parts:
        return None
    if meta:
        hub.store.add_http_meta(meta)  # queued ahead of the messages: durable with them
    first = parts[0].pdu
    answer = _Answer()
    hub.acceptor.accept(answer, first, first.make_response(message_id=parts[0].row.id), parts)
    return answer.future


def _stored(hub: HubView, status: int) -> None:
    if status:
        raise refusal(status, hub.handler.unroutable)


# ---- POST /v1/messages ----------------------------------------------------------------------------


async def send(request: web.Request) -> web.Response:
    account = require_account(request)
    body = await request.read()
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return await _send(request, account, body)
    keys = request.app[KEYS]
    return await keys.run(account.system_id, check_key(key), body, functools.partial(_send, request, account, body))


async def _send(request: web.Request, account: Account, body: bytes, keep: Keep | None = None) -> web.Response:
    """Each message (and each destination of one) admitted or rejected with its reason, then the
    accepted ones stored in one group commit before the answer.

    The per-destination work is the batch's hot path (py-spy, 1,000-message batches): a
    one-part text's submit_sm is made once per request and copied per destination
    (:meth:`CodedTexts.submits_to`), the parts and meta go straight into the lists the
    commit takes, and a field's JSON path (``messages[3].to``) is written only for an
    item that is rejected (:func:`_in_item`).
    """
    hub = request.app[HUB]
    config = request.app[HTTP_CONFIG]
    # one message (the usual case) is decoded once; so is a batch whose every item is valid
    batched = _batch(body, config.max_batch) if b'"messages"' in body else None
    batch = batched is not None
    messages: list[MessageIn | ApiError] = batched if batched is not None else [decode_json(body, MessageIn)]
    destinations = sum(1 if isinstance(m, str) else len(m) for m in _targets(messages))
    if destinations > config.max_batch:
        raise ApiError(422, f"{'messages' if batch else 'to'}: at most {config.max_batch} destinations in one "
                            f"request, got {destinations}", field="messages" if batch else "to")
    results: list[ItemResult] = []
    parts: list[Outgoing] = []
    meta: list[HttpMeta] = []
    texts = CodedTexts()
    accepted = 0
    for index, message in enumerate(messages):
        if isinstance(message, ApiError):
            results.append(_rejected(index, "", message))
            continue
        callback = message.callback_url or ""
        if callback and not account.webhook_secret:
            unsigned = ApiError(422, "callback_url: the account has no webhook_secret to sign webhooks with",
                                field="callback_url")
            if not batch:
                raise unsigned
            results.append(_rejected(index, "", _in_item(unsigned, index)))
            continue
        reference = message.reference or ""
        receipt = message.receipt if message.receipt is not None else bool(callback or account.webhook_url)
        coding = None if message.coding == "auto" else CODINGS[message.coding]
        send_at = message.send_at
        valid_until = message.valid_until if send_at is None else _valid_until(hub, send_at, message.valid_until)
        for to in [message.to] if isinstance(message.to, str) else message.to:
            try:
                one = _admit(hub, account, texts.submits_to(to, message.text, coding, message.sender, receipt,
                                                            send_at, valid_until), "")
            except ApiError as exc:
                if not batch and isinstance(message.to, str):
                    raise
                results.append(_rejected(index, to, _in_item(exc, index) if batch else exc, message.reference))
                continue
            if callback or reference or len(one) > 1:
                meta += _http_meta(account, one, callback, reference, "")
            parts += one
            accepted += 1
            results.append(ItemResult(index=index, to=to, status="accepted", id=one[0].row.id, parts=len(one),
                                      reference=message.reference))
    answer = _ENCODER.encode(SendResult(messages=results, accepted=accepted, rejected=len(results) - accepted))
    if keep is not None:
        keep(202, answer)  # before the messages: the kept answer is durable with them (see .idempotency)
    committed = _commit(hub, parts, meta)
    if committed is not None:
        _stored(hub, await committed)
    return web.Response(status=202, body=answer, content_type="application/json")


def _in_item(exc: ApiError, index: int) -> ApiError:
    """``exc`` of the batch's item ``index``: its field (and the message, which begins with the
    field) as the JSON path from the top of the body, ``messages[3].to`` for ``to``."""
    if not exc.field:
        return exc
    at = f"messages[{index}]."
    return ApiError(exc.status, at + exc.message, field=at + exc.field, code=exc.code)


def _batch(body: bytes, max_batch: int) -> list[MessageIn | ApiError] | None:
    """The messages of a batch body, each decoded or its own error; None when the body is one message.

    A batch of valid messages (the usual case) is one decode, straight into the types.
    Only when that fails is the body read again, in steps: a top-level "messages" (else
    it is one message, whose text may say "messages"), then each item on its own, so a
    bad item is that item's rejection and the others go on.
    """
    try:
        whole: list[MessageIn | ApiError] = list(msgspec.json.decode(body, type=BatchIn).messages)
    except msgspec.DecodeError:  # (ValidationError is one)
        pass
    else:
        _check_batch_size(len(whole), max_batch)
        return whole
    if "messages" not in decode_json(body, dict[str, msgspec.Raw]):
        return None
    raws = decode_json(body, _RawBatch).messages
    _check_batch_size(len(raws), max_batch)
    return [_decode_item(raw, i) for i, raw in enumerate(raws)]


def _check_batch_size(n: int, max_batch: int) -> None:
    if n > max_batch:
        raise ApiError(422, f"messages: at most {max_batch} in one request", field="messages")


def _targets(messages: list[MessageIn | ApiError]) -> list[str | list[str]]:
    return [m.to for m in messages if not isinstance(m, ApiError)]


class _RawBatch(msgspec.Struct):
    """A batch with its items left undecoded: each is decoded on its own, so one bad item is that item's error."""

    messages: Annotated[list[msgspec.Raw], msgspec.Meta(min_length=1)]


def _decode_item(raw: msgspec.Raw, index: int) -> MessageIn | ApiError:
    try:
        return msgspec.json.decode(raw, type=MessageIn)
    except msgspec.ValidationError as exc:
        field, message = field_of(exc, f"messages[{index}]")
        return ApiError(422, f"{field}: {message}", field=field)


def _rejected(index: int, to: str, exc: ApiError, reference: str | None = None) -> ItemResult:
    return ItemResult(index=index, to=to, status="rejected", reference=reference,
                      error=ErrorDetail(code=exc.code, message=exc.message, field=exc.field))


# ---- GET / DELETE /v1/messages/{id}, GET /v1/messages ---------------------------------------------


async def _row(hub: HubView, message_id: str) -> MessageRow | None:
    """The row as it is now: the dispatcher's, when it holds it, is newer than the store's."""
    return hub.dispatcher.table.get(message_id) or await hub.store.get(message_id)


async def _own(hub: HubView, account: Account, message_id: str) -> tuple[MessageRow, HttpMeta | None]:
    row = await _row(hub, message_id)
    if row is None or row.account != account.system_id:
        raise ApiError(404, f"no message {message_id!r} of this account")
    return row, await hub.store.http_meta(message_id)


async def message_out(hub: HubView, row: MessageRow, meta: HttpMeta | None) -> MessageOut:
    """What ``GET /v1/messages/{id}`` says of a message (all its parts when it has several)."""
    rows = [row]
    if meta is not None and len(meta.parts) > 1:
        rows = [r for r in [await _row(hub, i) for i in meta.parts] if r is not None]
    pdu = decode(row.pdu)
    assert isinstance(pdu, SubmitSm)
    receipts = [_receipt(r) for r in rows if r.receipt]
    return MessageOut(
        id=meta.message if meta is not None else row.id, state=_state(rows).value, to=pdu.destination_addr,
        sender=pdu.source_addr, parts=[r.id for r in rows], route=list(row.route), upstream=row.upstream,
        upstream_id=row.upstream_id, attempts=max(r.attempts for r in rows), error=row.error,
        created_at=utc(row.created_at), updated_at=utc(max(r.updated_at for r in rows)),
        send_at=utc(row.due) if row.due else None,
        valid_until=utc(row.expires_at) if row.expires_at is not None else None,
        reference=(meta.reference or None) if meta is not None else None,
        callback_url=(meta.callback_url or None) if meta is not None else None,
        receipts=receipts,
    )


def _state(rows: list[MessageRow]) -> State:
    """A long message's state: the first part's, unless a part ended otherwise than delivered."""
    for r in rows:
        if r.state in FINAL_STATES and r.state is not State.DELIVERED:
            return r.state
    return rows[0].state


def _receipt(row: MessageRow) -> ReceiptOut:
    info = receipt_info(decode(row.receipt))
    if info is None:  # the hub wrote this receipt itself: it always parses; say what the row says
        return ReceiptOut(part_id=row.id, state=row.state.value, error=row.error, at=utc(row.updated_at))
    code = error_code(info.err)
    done = info.receipt.done_date if info.receipt is not None else None
    return ReceiptOut(part_id=row.id, state=info.state.name.lower(), error=code, at=done)


async def get_message(request: web.Request) -> web.Response:
    account = require_account(request)
    hub = request.app[HUB]
    row, meta = await _own(hub, account, request.match_info["id"])
    return json_response(await message_out(hub, row, meta))


async def cancel_message(request: web.Request) -> web.Response:
    account = require_account(request)
    hub = request.app[HUB]
    row, meta = await _own(hub, account, request.match_info["id"])
    parts = meta.parts if meta is not None else [row.id]
    cancelled = await hub.dispatcher.controls.cancel_anywhere(parts)  # cancel_sm's path
    if not cancelled:
        raise ApiError(409, f"message {row.id} is {row.state.value}: it can no longer be cancelled",
                       code="not_cancellable")
    await hub.store.flush()
    return json_response(CancelResult(id=meta.message if meta else row.id, cancelled=cancelled,
                                      state=State.CANCELLED.value))


def _query(request: web.Request, account: Account) -> MessageQuery:
    q = request.query
    unknown = set(q) - {"state", "to", "since", "until", "limit"}
    if unknown:
        name = sorted(unknown)[0]
        raise ApiError(422, f"{name}: unknown query parameter", field=name)
    state = None
    if "state" in q:
        state = _STATES.get(q["state"])
        if state is None:
            raise ApiError(422, f"state: one of {', '.join(_STATES)}", field="state")
    to = q.get("to")
    if to is not None and not to.lstrip("+").isdigit():
        raise ApiError(422, "to: digits, + for international", field="to")
    limit = 100
    if "limit" in q:
        if not q["limit"].isdigit() or not 1 <= int(q["limit"]) <= PAGE_MAX:
            raise ApiError(422, f"limit: 1 to {PAGE_MAX}", field="limit")
        limit = int(q["limit"])
    return MessageQuery(account=account.system_id, state=state, destination=to.lstrip("+") if to else None,
                        since=_time(q, "since"), until=_time(q, "until"), limit=limit)


def _time(q: Mapping[str, str], name: str) -> float | None:
    value = q.get(name)
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(422, f"{name}: an RFC 3339 time, like 2026-01-31T12:00:00Z", field=name) from None
    if when.tzinfo is None:
        raise ApiError(422, f"{name}: give the time with its offset (Z or +hh:mm)", field=name)
    return when.timestamp()


async def list_messages(request: web.Request) -> web.Response:
    account = require_account(request)
    hub = request.app[HUB]
    rows = await hub.store.find_messages(_query(request, account))
    out: list[MessageOut] = []
    groups: set[str] = set()
    for r in rows:
        if r.group:  # a long message: once, with all its parts (``limit`` counts the parts read)
            if r.group in groups:
                continue
            groups.add(r.group)
        meta = await hub.store.http_meta(r.id) if r.group else None
        out.append(await message_out(hub, hub.dispatcher.table.get(r.id) or r, meta))
    return json_response(MessagePage(messages=out, count=len(out)))


def register(app: web.Application, hub: HubView) -> None:
    config = app[HTTP_CONFIG]
    app[KEYS] = IdempotencyKeys(config.idempotency_keys, config.idempotency_ttl, hub.store)
    app.router.add_post("/v1/messages", send)
    app.router.add_get("/v1/messages", list_messages)
    app.router.add_get("/v1/messages/{id}", get_message)
    app.router.add_delete("/v1/messages/{id}", cancel_message)
