"""Who may bind: password hashes, source-IP allow-lists, allowed source addresses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import re

__all__ = ["hash_password", "verify_password", "ip_allowed", "compile_ip_allowlist", "SourceFilter"]

# scrypt parameters: ~16 MiB and a few ms per verification, paid once per bind.
_N, _R, _P = 2**14, 8, 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` for the config's ``password_hash``."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of ``password`` against a ``scrypt$...`` or ``plain$...`` entry."""
    try:
        scheme, rest = stored.split("$", 1)
        if scheme == "plain":
            return hmac.compare_digest(password.encode(), rest.encode())
        if scheme != "scrypt":
            return False
        n, r, p, salt, digest = rest.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def is_valid_hash(stored: str) -> bool:
    scheme, _, rest = stored.partition("$")
    if scheme == "plain":
        return True
    if scheme != "scrypt":
        return False
    parts = rest.split("$")
    if len(parts) != 5 or not all(x.isdigit() for x in parts[:3]):
        return False
    try:
        base64.b64decode(parts[3], validate=True)
        base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    return True


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def compile_ip_allowlist(entries: list[str]) -> list[Network]:
    """Parse IPs and CIDRs (``10.0.0.0/8``, ``::1``); raises ValueError on a bad entry."""
    return [ipaddress.ip_network(e.strip(), strict=False) for e in entries]


def ip_allowed(ip: str, allowed: list[Network]) -> bool:
    """True when ``allowed`` is empty or ``ip`` is inside one of its networks."""
    if not allowed:
        return True
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in allowed)


class SourceFilter:
    """Allowed source addresses: exact strings, or patterns written ``re:<regex>``."""

    __slots__ = ("exact", "patterns")

    def __init__(self, entries: list[str]) -> None:
        self.exact = {e for e in entries if not e.startswith("re:")}
        self.patterns = [re.compile(e[3:]) for e in entries if e.startswith("re:")]

    def allows(self, source_addr: str) -> bool:
        if not self.exact and not self.patterns:
            return True
        return source_addr in self.exact or any(p.fullmatch(source_addr) for p in self.patterns)
