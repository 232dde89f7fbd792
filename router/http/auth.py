"""Who is calling: the bearer token of a request, checked against hub.toml's hashes.

``Authorization: Bearer <token>``: an account's token (``accounts[].api_tokens``)
acts as that account; the admin token (``[http] admin_token``) opens the admin
sections. No token, or one no hash matches: 401. A valid token used where it has no
business (an account's token on an admin route): 403. Why a SHA-256 and not scrypt:
see :mod:`.tokens`.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from ..config import Account, HubConfig
from .errors import ApiError
from .tokens import token_digest
from .view import HUB

__all__ = ["bearer_token", "require_account", "require_admin", "TokenTable", "TOKENS"]


class TokenTable:
    """Token digests -> accounts, rebuilt when the hub's configuration object changes (a reload)."""

    def __init__(self) -> None:
        self._config: HubConfig | None = None
        self._accounts: dict[str, Account] = {}
        self._admin = ""

    def _refresh(self, config: HubConfig) -> None:
        if config is self._config:
            return
        self._accounts = {h.partition("$")[2]: acc for acc in config.accounts for h in acc.api_tokens}
        self._admin = config.http.admin_token.partition("$")[2] if config.http is not None else ""
        self._config = config

    def account(self, config: HubConfig, token: str) -> Account | None:
        self._refresh(config)
        return self._accounts.get(token_digest(token))

    def is_admin(self, config: HubConfig, token: str) -> bool:
        self._refresh(config)
        return bool(self._admin) and hmac.compare_digest(self._admin, token_digest(token))


#: the application's token table (set by the server when it builds the application)
TOKENS: web.AppKey[TokenTable] = web.AppKey("smpphub.tokens", TokenTable)


def _table(request: web.Request) -> TokenTable:
    return request.app[TOKENS]


def bearer_token(request: web.Request) -> str:
    """The request's bearer token; 401 when there is none."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "an API token is needed: Authorization: Bearer <token>", field="Authorization")
    return token


def require_account(request: web.Request) -> Account:
    """The account whose token the request carries (401 otherwise)."""
    token = bearer_token(request)
    config = request.app[HUB].config
    account = _table(request).account(config, token)
    if account is None:
        if _table(request).is_admin(config, token):
            raise ApiError(403, "the admin token does not send messages: use an account's token",
                           field="Authorization")
        raise ApiError(401, "unknown API token", field="Authorization")
    return account


def require_admin(request: web.Request) -> None:
    """Admin routes: 401 without a valid token, 403 with an account's token."""
    token = bearer_token(request)
    config = request.app[HUB].config
    table = _table(request)
    if table.is_admin(config, token):
        return
    if table.account(config, token) is not None:
        raise ApiError(403, "this token belongs to an account, not to the hub's admin", field="Authorization")
    raise ApiError(401, "unknown API token", field="Authorization")
