"""Who is calling: the bearer token of a request, checked against hub.toml's hashes.

``Authorization: Bearer <token>``: an account's token (``accounts[].api_tokens``)
acts as that account; the admin token (``[http] admin_token``) opens the admin
sections. No token, or one no hash matches: 401. A valid token used where it has no
business (an account's token on an admin route): 403. Why a SHA-256 and not scrypt:
see :mod:`.tokens`.

``/metrics`` and the dashboard's page ask for a token only when ``[http] metrics_auth``
/ ``dashboard_auth`` say ``"token"`` (:func:`require_operator`). There the token may
also come as HTTP Basic's password (any user name): Prometheus' ``basic_auth`` sends
that, and it is the only way a browser opening the page can send a token at all
(``Authorization: Bearer`` needs a script, and the page is what brings the script).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Literal

from aiohttp import web

from ..config import Account, HubConfig
from .errors import ApiError
from .tokens import token_digest
from .view import HUB

__all__ = ["bearer_token", "require_account", "require_admin", "require_operator", "TokenTable", "TOKENS"]


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
        self._scraper = ""

    def _refresh(self, config: HubConfig) -> None:
        if config is self._config:
            return
        self._accounts = {h.partition("$")[2]: acc for acc in config.accounts for h in acc.api_tokens}
        self._known = {}
        self._admin = config.http.admin_token.partition("$")[2] if config.http is not None else ""
        self._scraper = config.http.metrics_token.partition("$")[2] if config.http is not None else ""
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

    def is_scraper(self, config: HubConfig, token: str) -> bool:
        """``token`` is ``[http] metrics_token``'s: it reads /metrics and nothing else."""
        self._refresh(config)
        return bool(self._scraper) and hmac.compare_digest(self._scraper, token_digest(token))


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
    _admit(request, bearer_token(request), scraper=False,
           refusal="this token belongs to an account, not to the hub's admin")


def _admit(request: web.Request, token: str, *, scraper: bool, refusal: str) -> None:
    """Pass the admin token (and ``metrics_token`` when ``scraper``); 403 ``refusal`` for an
    account's token, 401 for any other."""
    config = request.app[HUB].config
    table = _table(request)
    if table.is_admin(config, token) or (scraper and table.is_scraper(config, token)):
        return
    if table.account(config, token) is not None:
        raise ApiError(403, refusal, field="Authorization")
    raise ApiError(401, "unknown API token", field="Authorization")


def _bearer_or_basic(header: str) -> str | None:
    """The token of ``Bearer <token>`` or of ``Basic base64(user:token)``; None when there is none.

    Malformed Basic credentials (not base64, no colon) are no token: the caller answers 401."""
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() != "basic" or not value:
        return None
    try:
        pair = base64.b64decode(value, validate=True).decode("utf-8", "surrogateescape")
    except (binascii.Error, ValueError):
        return None
    _user, colon, token = pair.partition(":")
    return token if colon and token else None


#: what a guarded operator path is: ``/metrics`` (admin or scrape token) or the dashboard's page (admin)
Guarded = Literal["metrics", "dashboard"]
_NAMES: dict[Guarded, str] = {"metrics": "/metrics", "dashboard": "the dashboard"}


def require_operator(request: web.Request, what: Guarded) -> None:
    """``/metrics`` or the dashboard's page when ``[http] metrics_auth`` / ``dashboard_auth`` is
    ``"token"``: the admin token (or, for metrics, ``metrics_token``) as Bearer or Basic password;
    401 without one, 403 with an account's token. With ``"none"`` (or no ``[http]``) anyone passes."""
    http = request.app[HUB].config.http
    if http is None or (http.metrics_auth if what == "metrics" else http.dashboard_auth) == "none":
        return
    token = _bearer_or_basic(request.headers.get("Authorization", ""))
    if token is None:
        raise ApiError(401, f"{_NAMES[what]} needs a token ([http] {what}_auth = \"token\"): "
                            "Authorization: Bearer <token>", field="Authorization")
    _admit(request, token, scraper=what == "metrics",
           refusal=f"this token belongs to an account; {_NAMES[what]} takes the hub's admin token"
                   + (" or [http] metrics_token" if what == "metrics" else ""))
