"""API tokens: made random, kept in hub.toml as ``sha256$<hex>``, looked up per request.

A bind's password is a person's choice of at most 8 characters, so it is kept as
scrypt, whose cost per guess is the defence. An API token is made by the hub
(:func:`new_token`: 32 random bytes, 256 bits): nobody can guess it, so a slow hash
buys nothing and would cost a scrypt (~50 ms of a core) per HTTP request, or a cache
of plain tokens in memory. A keyed-free SHA-256 of a 256-bit secret is as hard to
invert as the secret is to guess, and costs ~1 us: each request hashes the token it
carries and finds the account by the digest in a dict. The dict lookup's timing can
only tell an attacker about digests, which they cannot choose a token for.
"""

from __future__ import annotations

import hashlib
import re
import secrets

__all__ = ["TOKEN_PREFIX", "new_token", "hash_token", "is_valid_token_hash", "token_digest"]

#: tokens start with it, so a leaked one is recognisable by secret scanners
TOKEN_PREFIX = "shk_"
_HASH = re.compile(r"^sha256\$[0-9a-f]{64}$")


def new_token() -> str:
    """A fresh API token (give it to the client; put :func:`hash_token` of it in hub.toml)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def hash_token(token: str) -> str:
    """What hub.toml keeps of ``token``: ``sha256$<64 hex digits>``."""
    return f"sha256${token_digest(token)}"


def is_valid_token_hash(stored: str) -> bool:
    return bool(_HASH.match(stored))
