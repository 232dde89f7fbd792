"""(being written)"""

from __future__ import annotations

from aiohttp import web

from .errors import ApiError
from .view import HubView


async def _post(request: web.Request) -> web.StreamResponse:
    await request.read()
    raise ApiError(501, "not yet")


def register(app: web.Application, hub: HubView) -> None:
    app.router.add_post("/v1/messages", _post)
