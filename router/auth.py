"""Who may bind: password hashes, source-IP allow-lists, allowed source addresses, and
:class:`BindGuard`, the memory of failed binds that slows and locks out password guessing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import re
from collections import OrderedDict
from typing import Literal

import msgspec

__all__ = [
    "hash_password", "verify_password", "ip_allowed", "compile_ip_allowlist", "SourceFilter", "dummy_credential",
    "BindGuard", "GuardPolicy", "Lockout", "Failure",
]

# scrypt parameters: ~16 MiB and a few ms per verification, paid once per bind.
_N, _R, _P = 2**14, 8, 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` for the config's ``password_hash``."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def dummy_credential() -> str:
    """A scrypt entry no password matches, at the cost of a real one.

    A bind naming an unknown system_id is checked against it, so it costs the same
    scrypt work as a wrong password and its answer comes after the same time: the
    timing does not tell which system_ids exist. (Accounts kept as ``plain$`` for
    development answer a wrong password faster; their timing is not hidden.)
    """
    return f"scrypt${_N}${_R}${_P}${_b64(os.urandom(16))}${_b64(os.urandom(32))}"


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


# ---- failed binds ---------------------------------------------------------------------------------


class GuardPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """The numbers of :class:`BindGuard` (``[security]`` in hub.toml)."""

    first_delay: float  # seconds before answering the first failure; doubles with each further one
    max_delay: float
    lockout_failures: int  # failures within lockout_window (per IP, per system_id) that start a lockout
    lockout_window: float
    lockout_duration: float
    tracked: int  # IPs, and system_ids, whose failures are remembered (each; least recent forgotten first)


class Lockout(msgspec.Struct, frozen=True, kw_only=True):
    """One lockout episode, as its start and end are logged."""

    kind: Literal["ip", "system_id"]
    key: str
    failures: int  # failures that started it
    refused: int  # binds refused during it (0 at its start)
    until: float  # when it ends, on the guard's clock


class Failure(msgspec.Struct, frozen=True, kw_only=True):
    """What :meth:`BindGuard.failed` decided about one failed bind."""

    delay: float  # seconds to wait before answering it
    started: list[Lockout]  # lockouts it starts (to be logged)


class _Tally:
    """Failures of one IP or one system_id in the current window, and its lockout if any."""

    __slots__ = ("failures", "window_start", "locked_until", "refused")

    def __init__(self, now: float) -> None:
        self.failures = 0
        self.window_start = now
        self.locked_until = 0.0
        self.refused = 0


class BindGuard:
    """Failed binds per source IP and per system_id: how long to wait before answering, and lockouts.

    Sans-IO: every call takes ``now``; the caller sleeps and schedules :meth:`expire`.
    Unknown system_ids are counted like known ones, or a lockout would tell which exist.
    Each kind is a bounded LRU (``tracked`` entries), so a flood of made-up names or
    addresses costs bounded memory; a locked entry is kept apart until its lockout ends,
    so it is not pushed out by that flood (at most ``tracked`` of them too: past that the
    oldest lockout ends early).

    A system_id lockout would let anyone lock the owner out by guessing: an IP that
    bound successfully as that system_id before (remembered in a bounded LRU too) is not
    refused by the system_id's lockout, only by its own IP's.
    """

    def __init__(self, policy: GuardPolicy) -> None:
        self.policy = policy
        self._tallies: dict[str, OrderedDict[str, _Tally]] = {"ip": OrderedDict(), "system_id": OrderedDict()}
        self._locked: dict[tuple[Literal["ip", "system_id"], str], _Tally] = {}
        self._trusted: OrderedDict[tuple[str, str], None] = OrderedDict()

    def locked(self, ip: str, system_id: str, now: float) -> bool:
        """True while ``ip`` or ``system_id`` is locked out: refuse without checking the password."""
        refused = False
        ip_tally = self._locked.get(("ip", ip))
        if ip_tally is not None and ip_tally.locked_until > now:
            ip_tally.refused += 1
            refused = True
        id_tally = self._locked.get(("system_id", system_id))
        if id_tally is not None and id_tally.locked_until > now and (system_id, ip) not in self._trusted:
            id_tally.refused += 1
            refused = True
        return refused

    def failed(self, ip: str, system_id: str, now: float) -> Failure:
        """A failed bind: the delay before its answer, and the lockouts it starts."""
        started: list[Lockout] = []
        worst = 0
        keys: list[tuple[Literal["ip", "system_id"], str]] = [("ip", ip), ("system_id", system_id)]
        for kind, key in keys:
            tally = self._tally(kind, key, now)
            tally.failures += 1
            worst = max(worst, tally.failures)
            if tally.failures >= self.policy.lockout_failures and (kind, key) not in self._locked:
                tally.locked_until = now + self.policy.lockout_duration
                tally.refused = 0
                self._locked[(kind, key)] = tally
                self._tallies[kind].pop(key, None)
                started.append(Lockout(kind=kind, key=key, failures=tally.failures, refused=0,
                                       until=tally.locked_until))
        if len(self._locked) > self.policy.tracked:  # the oldest lockout gives way (it is ended at the next expire)
            oldest = min(self._locked.values(), key=_locked_until)
            oldest.locked_until = now
        delay = min(self.policy.first_delay * 2 ** (worst - 1), self.policy.max_delay) if worst else 0.0
        return Failure(delay=delay, started=started)

    def succeeded(self, ip: str, system_id: str) -> None:
        """A good bind: the system_id's failures are forgotten and ``ip`` is trusted for it."""
        self._tallies["system_id"].pop(system_id, None)
        self._trusted[(system_id, ip)] = None
        self._trusted.move_to_end((system_id, ip))
        if len(self._trusted) > self.policy.tracked:
            self._trusted.popitem(last=False)

    def next_expiry(self) -> float | None:
        """When the next lockout ends (None: none is running)."""
        return min((t.locked_until for t in self._locked.values()), default=None)

    def expire(self, now: float) -> list[Lockout]:
        """The lockouts over by ``now``, forgotten with their failures."""
        ended: list[Lockout] = []
        for (kind, key), tally in list(self._locked.items()):
            if tally.locked_until <= now:
                del self._locked[(kind, key)]
                ended.append(Lockout(kind=kind, key=key, failures=tally.failures, refused=tally.refused,
                                     until=tally.locked_until))
        return ended

    def _tally(self, kind: Literal["ip", "system_id"], key: str, now: float) -> _Tally:
        locked = self._locked.get((kind, key))
        if locked is not None:  # failed while locked (it was trusted, or raced): counts on the lockout
            return locked
        tallies = self._tallies[kind]
        tally = tallies.get(key)
        if tally is None or now - tally.window_start > self.policy.lockout_window:
            tally = tallies[key] = _Tally(now)
            if len(tallies) > self.policy.tracked:
                tallies.popitem(last=False)
        tallies.move_to_end(key)
        return tally


def _locked_until(tally: _Tally) -> float:
    return tally.locked_until
