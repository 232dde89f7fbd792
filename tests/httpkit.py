"""Test kit for the hub's HTTP side: a hub with [http] on a free port, tokens, a client session."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from hubkit import hub_config, running_hub

from smpphub.router.http.tokens import hash_token
from smpphub.router.hub import Hub

#: the API tokens of hub_config's two accounts, and the admin's
ACME_TOKEN = "shk_acme-test-token-0123456789abcdefghijklmnop"
BETA_TOKEN = "shk_beta-test-token-0123456789abcdefghijklmnop"
ADMIN_TOKEN = "shk_admin-test-token-0123456789abcdefghijklmno"


def http_hub_config(upstreams: dict[str, Any], routes: list[dict], *, http: dict[str, Any] | None = None,
                    acme: dict[str, Any] | None = None, beta: dict[str, Any] | None = None, **extra: Any):
    """hub_config's accounts with API tokens (and what ``acme``/``beta`` add), [http] on a free port."""
    accounts = [
        {"system_id": "acme", "password": "pw", "api_tokens": [hash_token(ACME_TOKEN)], **(acme or {})},
        {"system_id": "beta", "password": "pw", "api_tokens": [hash_token(BETA_TOKEN)], **(beta or {})},
    ]
    section = {"listen": "127.0.0.1:0", "admin_token": hash_token(ADMIN_TOKEN), **(http or {})}
    return hub_config(upstreams, routes, accounts=accounts, http=section, **extra)


@contextlib.asynccontextmanager
async def local_web_server(*routes: Any) -> AsyncIterator[str]:
    """An aiohttp server on a free 127.0.0.1 port serving ``routes`` (``web.post(...)``,
    ``web.get(...)``): a test's webhook or dlr-url receiver. Yields its base URL."""
    from aiohttp import web

    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def http_client(hub: Hub, token: str | None = ACME_TOKEN) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session on the hub's HTTP listener (base URL set), sending ``token``."""
    assert hub.http is not None
    headers = bearer(token) if token else {}
    async with aiohttp.ClientSession(base_url=hub.http.url, headers=headers) as session:
        yield session


__all__ = ["ACME_TOKEN", "BETA_TOKEN", "ADMIN_TOKEN", "http_hub_config", "bearer", "http_client", "running_hub"]
