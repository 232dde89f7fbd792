"""(being written)"""

from __future__ import annotations

from aiohttp import web

from .view import HubView


def register(app: web.Application, hub: HubView) -> None:
    """Nothing yet."""
