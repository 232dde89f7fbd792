"""Which upstreams a message goes to: longest destination prefix, then conditions.

Lookup probes one dict per prefix length present in the table, longest first, so
its cost depends on the length of the longest prefix (a dozen digits), never on
how many routes there are.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

import msgspec

from .config import HubConfig, MoRoute

__all__ = ["normalise_destination", "Candidate", "Route", "RouteTable", "MoRouteTable"]

_STRIP = str.maketrans("", "", " -().")


def normalise_destination(addr: str, ton: int = 0, npi: int = 0, *, country_code: str | None = None) -> str:
    """The digits a route is looked up by.

    ``+44 7700-900123``, ``0044...`` and TON international all become
    ``447700900123``. With ``country_code`` set, a national number (TON 2, or a
    single leading 0 with TON unknown) gets it in place of the trunk 0. An
    alphanumeric address (TON 5) is returned unchanged.
    """
    if ton == 5:
        return addr
    if addr.isdigit() and addr[0] != "0" and not (country_code and ton == 2):
        return addr  # the usual case, digits already: nothing to strip or replace (0.6 -> 0.1 us)
    a = addr.translate(_STRIP)
    if a.startswith("+"):
        return a[1:]
    if a.startswith("00"):
        return a[2:]
    if country_code and (ton == 2 or (ton == 0 and a.startswith("0"))):
        return country_code + a.lstrip("0")
    return a


class Route:
    """One route: a prefix, its conditions, and upstreams in failover order or by weight."""

    __slots__ = ("prefix", "upstreams", "weights", "accounts", "route_group", "source_prefix", "unconditional",
                 "fixed", "_names", "_cum")

    def __init__(
        self,
        prefix: str,
        upstreams: list[str] | None = None,
        weights: dict[str, float] | None = None,
        *,
        accounts: Iterable[str] = (),
        route_group: str | None = None,
        source_prefix: str | None = None,
    ) -> None:
        self.prefix = prefix
        self.weights = dict(weights or {})
        self.upstreams = list(upstreams or self.weights)
        self.accounts = frozenset(accounts)
        self.route_group = route_group
        self.source_prefix = source_prefix
        #: no condition: it matches any message (lookup skips the call to matches)
        self.unconditional = not self.accounts and route_group is None and source_prefix is None
        #: what :meth:`pick` gives a route without weights (always its upstreams), None for a weighted
        #: route: a caller picking per message reads it without the call
        self.fixed: list[str] | None = None if self.weights else self.upstreams
        self._names = list(self.weights)
        total = 0.0
        self._cum = []
        for name in self._names:
            total += self.weights[name]
            self._cum.append(total)

    def matches(self, account: str, group: str, source_addr: str) -> bool:
        if self.accounts and account not in self.accounts:
            return False
        if self.route_group is not None and self.route_group != group:
            return False
        if self.source_prefix is not None and not source_addr.startswith(self.source_prefix):
            return False
        return True

    def why_not(self, account: str, group: str, source_addr: str) -> str | None:
        """Which condition keeps this route from a message (None: none does); :meth:`matches` in words."""
        if self.accounts and account not in self.accounts:
            return f"only for accounts {', '.join(sorted(self.accounts))}"
        if self.route_group is not None and self.route_group != group:
            return f"only for route_group {self.route_group!r} (the account's is {group!r})"
        if self.source_prefix is not None and not source_addr.startswith(self.source_prefix):
            return f"only for sources starting {self.source_prefix!r}"
        return None

    def pick(self, rng: random.Random | None = None) -> list[str]:
        """Upstreams to try, in order: for a weighted route the first is drawn by weight."""
        if self.fixed is not None:
            return self.fixed
        r = (rng or random).random() * self._cum[-1]
        for i, c in enumerate(self._cum):
            if r < c:
                first = self._names[i]
                return [first, *[n for n in self._names if n != first]]
        return self._names  # pragma: no cover - float edge

    def __repr__(self) -> str:
        return f"Route(prefix={self.prefix!r}, upstreams={self.upstreams!r})"


class RouteTable:
    """Routes by prefix; see the module docstring for the cost of a lookup."""

    def __init__(self, routes: Iterable[Route], default: Route | None = None) -> None:
        self._by_length: dict[int, dict[str, list[Route]]] = {}
        for route in routes:
            self._by_length.setdefault(len(route.prefix), {}).setdefault(route.prefix, []).append(route)
        self._lengths = sorted(self._by_length, reverse=True)
        self.default = default
        self.probes = 0  # dict probes made, for tests that check the lookup's cost

    @classmethod
    def build(cls, config: HubConfig) -> RouteTable:
        routes = [
            Route(r.prefix, r.upstreams, r.weights, accounts=r.accounts, route_group=r.route_group,
                  source_prefix=r.source_prefix)
            for r in config.routes
        ]
        default = None
        if config.default_route is not None:
            default = Route("", config.default_route.upstreams, config.default_route.weights)
        return cls(routes, default)

    def lookup(self, destination: str, *, account: str = "", source_addr: str = "",
               group: str = "default") -> Route | None:
        n = len(destination)
        for length in self._lengths:
            if length > n:
                continue
            self.probes += 1
            candidates = self._by_length[length].get(destination[:length])
            if candidates:
                for route in candidates:
                    if route.unconditional or route.matches(account, group, source_addr):
                        return route
        return self.default

    def explain(self, destination: str, *, account: str = "", source_addr: str = "",
                group: str = "default") -> list[Candidate]:
        """Every route whose prefix ``destination`` starts with, in the order :meth:`lookup` tries
        them (longest prefix first, then file order), each saying whether it matches and why
        not; the first that matches is the one taken (none: the default route, if any)."""
        found: list[Candidate] = []
        for length in self._lengths:
            if length > len(destination):
                continue
            for route in self._by_length[length].get(destination[:length], ()):
                reason = route.why_not(account, group, source_addr)
                found.append(Candidate(prefix=route.prefix, upstreams=route.upstreams, weights=route.weights,
                                       matches=reason is None, reason=reason or "matches"))
        return found

    def __len__(self) -> int:
        return sum(len(v) for by_prefix in self._by_length.values() for v in by_prefix.values())


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """A route a destination's prefix selects, as :meth:`RouteTable.explain` reports it."""

    prefix: str
    upstreams: list[str]  # in failover order (a weighted route: its names; the first is drawn by weight)
    weights: dict[str, float]
    matches: bool  # its conditions (accounts, route_group, source_prefix) hold for the message
    reason: str  # "matches", or the condition that does not hold


class MoRouteTable:
    """MO destination (short code or prefix) -> account or webhook, longest prefix first."""

    def __init__(self, config: HubConfig) -> None:
        self._by_length: dict[int, dict[str, MoRoute]] = {}
        for mo in config.mo_routes:
            self._by_length.setdefault(len(mo.prefix), {}).setdefault(mo.prefix, mo)
        self._lengths = sorted(self._by_length, reverse=True)

    def lookup(self, destination: str) -> MoRoute | None:
        n = len(destination)
        for length in self._lengths:
            if length <= n:
                hit = self._by_length[length].get(destination[:length])
                if hit is not None:
                    return hit
        return None
