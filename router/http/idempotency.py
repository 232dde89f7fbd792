"""``Idempotency-Key``: a POST retried with the same key is answered as the first time, never sent twice.

Keys are per account, kept ``idempotency_ttl`` seconds and at most
``idempotency_keys`` of them (the oldest forgotten first: a bound, so a client
minting keys cannot fill memory). The answer kept is the first one's status and
body; the same key with a different body is a client bug, answered 422 naming the
header. A retry that comes while the first is still being stored waits for it.
Answers that say "try again" (429, 5xx) are not kept, so the retry really tries again.

Kept in memory: a retry after a hub restart is not recognised. The hub answers only
once the messages are durable, so what a restart can cost is the case of a client
that never got its answer retrying across the restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from aiohttp import web

from .errors import ApiError

__all__ = ["IdempotencyKeys", "check_key"]

_MAX_KEY = 255


def check_key(key: str) -> str:
    if not 1 <= len(key) <= _MAX_KEY or not key.isprintable():
        raise ApiError(422, f"Idempotency-Key: 1 to {_MAX_KEY} printable characters", field="Idempotency-Key")
    return key


class _Kept:
    __slots__ = ("fingerprint", "expires", "done", "status", "body", "content_type")

    def __init__(self, fingerprint: bytes, expires: float, done: asyncio.Future[None]) -> None:
        self.fingerprint = fingerprint
        self.expires = expires
        self.done = done
        self.status = 0
        self.body = b""
        self.content_type = "application/json"


class IdempotencyKeys:
    def __init__(self, limit: int, ttl: float) -> None:
        self.limit = limit
        self.ttl = ttl
        self._kept: OrderedDict[tuple[str, str], _Kept] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    async def run(self, account: str, key: str, body: bytes,
                  answer: Callable[[], Awaitable[web.Response]]) -> web.Response:
        """``answer()``'s response, or the one kept for (``account``, ``key``)."""
        now = time.monotonic()
        fingerprint = hashlib.sha256(body).digest()
        slot = (account, key)
        kept = self._kept.get(slot)
        if kept is not None and kept.expires <= now:
            del self._kept[slot]
            kept = None
        if kept is not None:
            if kept.fingerprint != fingerprint:
                raise ApiError(422, "Idempotency-Key: already used for a different request body",
                               field="Idempotency-Key", code="idempotency_mismatch")
            await asyncio.shield(kept.done)
            if kept.status:
                return web.Response(status=kept.status, body=kept.body, content_type=kept.content_type,
                                    headers={"Idempotent-Replayed": "true"})
            # the first attempt was not kept (it failed): this one tries for real
        self._expire(now)
        kept = self._kept[slot] = _Kept(fingerprint, now + self.ttl, asyncio.get_running_loop().create_future())
        try:
            response = await answer()
        except BaseException:
            self._kept.pop(slot, None)
            raise
        finally:
            if not kept.done.done():
                kept.done.set_result(None)
        if response.status == 429 or response.status >= 500 or not isinstance(response.body, bytes):
            self._kept.pop(slot, None)
        else:
            kept.status, kept.body = response.status, response.body
            kept.content_type = response.content_type
        return response

    def _expire(self, now: float) -> None:
        kept = self._kept
        while kept:
            oldest = next(iter(kept.values()))
            if oldest.expires > now and len(kept) < self.limit:
                break
            kept.popitem(last=False)
