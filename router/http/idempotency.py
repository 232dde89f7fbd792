"""``Idempotency-Key``: a POST retried with the same key is answered as the first time, never sent twice.

Keys are per account. The answer is kept in the store (:class:`~router.store.base.KeptAnswer`)
*before* the messages it answers are: its write is queued ahead of them in the store's
writer, so it is durable no later than they are, and a retry after a crash or a restart
finds it. Being ahead, it could also be durable *without* them: the messages' write
failed (the answer is forgotten again and the request answered 503, but a crash before
that forgetting is durable would leave it alone), or the hub died between the two. So it
is written *provisional* (its status negated) and confirmed by a second write once the
messages are stored; a provisional answer read back from the store is replayed only if
its first message is in the store (the messages of one request are one store write:
all there or none), else it is forgotten and the retry sends for real. No 202 is ever
replayed for messages that were never stored, and no window lets a retry send twice.
Keys expire after ``idempotency_ttl`` seconds (housekeeping removes them
from the store); memory holds the most recent ``idempotency_keys`` (the oldest forgotten
first: a bound, so a client minting keys cannot fill memory; older ones are read back from
the store). The same key with a different body is a client bug, answered 422 naming the
header. A retry that comes while the first is still being stored waits for it. Answers
that say "try again" (429, 5xx) and refusals (4xx) are not kept, so the retry really
tries again.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import msgspec
import structlog
from aiohttp import web

from ..store import Store
from ..store.base import KeptAnswer
from .errors import ApiError

__all__ = ["IdempotencyKeys", "check_key", "Keep"]

log = structlog.get_logger("smpphub.http")

_MAX_KEY = 255
#: what the request's handler calls with its answer (status, body) just before it stores the messages
Keep = Callable[[int, bytes], None]


def check_key(key: str) -> str:
    if not 1 <= len(key) <= _MAX_KEY or not key.isprintable():
        raise ApiError(422, f"Idempotency-Key: 1 to {_MAX_KEY} printable characters", field="Idempotency-Key")
    return key


class _Kept:
    __slots__ = ("fingerprint", "expires", "done", "status", "body")

    def __init__(self, fingerprint: bytes, expires: float, done: asyncio.Future[None]) -> None:
        self.fingerprint = fingerprint
        self.expires = expires
        self.done = done
        self.status = 0  # 0: no answer kept (yet)
        self.body = b""


class _Item(msgspec.Struct):
    id: str | None = None


class _Answered(msgspec.Struct):
    """What this module reads of a kept answer's body (a SendResult): the ids it gave."""

    messages: list[_Item] = []


def _first_id(body: bytes) -> str | None:
    """The first message id a kept answer gave (None: it accepted none, or is not a SendResult)."""
    try:
        answered = msgspec.json.decode(body, type=_Answered)
    except msgspec.DecodeError:
        return None
    return next((item.id for item in answered.messages if item.id), None)


def _replay(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json",
                        headers={"Idempotent-Replayed": "true"})


def _mismatch() -> ApiError:
    return ApiError(422, "Idempotency-Key: already used for a different request body", field="Idempotency-Key",
                    code="idempotency_mismatch")


class IdempotencyKeys:
    def __init__(self, limit: int, ttl: float, store: Store) -> None:
        self.limit = limit
        self.ttl = ttl
        self.store = store
        self._kept: OrderedDict[tuple[str, str], _Kept] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    async def run(self, account: str, key: str, body: bytes,
                  answer: Callable[[Keep], Awaitable[web.Response]]) -> web.Response:
        """``answer(keep)``'s response, or the one kept for (``account``, ``key``)."""
        fingerprint = hashlib.sha256(body).digest()
        slot = (account, key)
        kept = self._live(slot)
        if kept is None:
            stored = await self._stored(account, key)
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    raise _mismatch()
                return _replay(stored.status, stored.body)
            kept = self._live(slot)  # another request with this key may have come meanwhile
        if kept is not None:
            if kept.fingerprint != fingerprint:
                raise _mismatch()
            await asyncio.shield(kept.done)
            if kept.status:
                return _replay(kept.status, kept.body)
            # the first attempt was not kept (it failed): this one tries for real
        self._trim()
        kept = self._kept[slot] = _Kept(fingerprint, time.time() + self.ttl,
                                        asyncio.get_running_loop().create_future())

        def keep(status: int, answer_body: bytes) -> None:
            kept.status, kept.body = status, answer_body
            self.store.keep_answer(KeptAnswer(account=account, key=key, fingerprint=fingerprint, status=-status,
                                              body=answer_body, expires=kept.expires))  # provisional

        try:
            response = await answer(keep)
        except BaseException:
            self._drop(slot, kept)
            raise
        finally:
            if not kept.done.done():
                kept.done.set_result(None)
        if response.status == 429 or response.status >= 500:
            self._drop(slot, kept)
        elif kept.status:  # its messages are stored: confirmed
            self.store.keep_answer(KeptAnswer(account=account, key=key, fingerprint=fingerprint, status=kept.status,
                                              body=kept.body, expires=kept.expires))
        return response

    async def _stored(self, account: str, key: str) -> KeptAnswer | None:
        """The answer the store kept for (account, key), if it holds: a provisional one only if its
        messages were stored (then it is confirmed now), else it is forgotten (see the module docstring)."""
        stored = await self.store.kept_answer(account, key)
        if stored is None or stored.status > 0:
            return stored
        witness = _first_id(stored.body)
        if witness is not None and await self.store.get(witness) is None:
            log.warning("idempotent_answer_orphaned", account=account, key=key, message_id=witness,
                        note="its messages were never stored: the retry sends them")
            self.store.forget_answer(account, key)
            return None
        confirmed = msgspec.structs.replace(stored, status=-stored.status)
        self.store.keep_answer(confirmed)
        return confirmed

    def _live(self, slot: tuple[str, str]) -> _Kept | None:
        kept = self._kept.get(slot)
        if kept is not None and kept.expires <= time.time():
            del self._kept[slot]
            return None
        return kept

    def _drop(self, slot: tuple[str, str], kept: _Kept) -> None:
        """Nothing is kept for ``slot``: the answer did not hold (its messages were not stored)."""
        if self._kept.get(slot) is kept:
            del self._kept[slot]
        if kept.status:
            kept.status = 0
            self.store.forget_answer(*slot)

    def _trim(self) -> None:
        while len(self._kept) >= self.limit:
            self._kept.popitem(last=False)  # the store still has it: it is read back if retried
