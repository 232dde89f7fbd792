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
    """Token digests -> accounts, rebuilt when the hub's configuration object changes (a reload).

    A token that matched is remembered as it is (up to ``remembered`` of them, forgotten
    at a reload): a client sends the same token with every request, and its SHA-256 (~1 us,
    0.4% of the hub's profile under one-message requests) need not be paid again. Only tokens that matched are
    kept, so the cache holds at most the configured tokens and a flood of made-up ones
    never enters it (each still pays its SHA-256). Looking a token up by its text leaks no
    more than the digest lookup does: a str key is found by its (per-process, keyed) hash,
    and compared only on an equal hash.
    """

    def __init__(self, remembered: int = 1024) -> None:
        self._config: HubConfig | None = None
        self._accounts: dict[str, Account] = {}
        self._known: dict[str, Account] = {}
        self.remembered = remembered
        self._admin = ""

    def _refresh(self, config: HubConfig) -> None:
        if config is self._config:
            return
        self._accounts = {h.partition("$")[2]: acc for acc in config.accounts for h in acc.api_tokens}
        self._known = {}
        self._admin = config.http.admin_token.partition("$")[2] if config.http is not None else ""
        self._config = config

    def account(self, config: HubConfig, token: str) -> Account | None:
        self._refresh(config)
        account = self._known.get(token)
        if account is None:
            account = self._accounts.get(token_digest(token))
            if account is not None and len(self._known) < self.remembered:
                self._known[token] = account
        return account

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
