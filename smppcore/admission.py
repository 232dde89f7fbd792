"""Who may hold a connection slot: the server's accounting at accept time.

A server has three budgets, checked when a TCP connection is accepted (before any
TLS handshake, so a peer that never starts one is counted too):

- ``max_connections``: every connection, bound or not;
- ``max_connections_per_ip``: connections from one source address (0: no limit);
- ``max_unbound``: connections that have not bound yet (0: no limit). A bound
  session never loses its slot to them.

When the unbound budget (or the total) is full, the oldest *idle* unbound connection
(connected, no bind in progress) is closed to make room: a flood of connections that
never bind then only ever pushes out its own oldest members, and a good client, which
sends its bind right after connecting, gets in. Refusing the newcomer instead would
lock every new client out for ``bind_timeout``. When every unbound connection is busy
(a bind being checked, a TLS handshake), the newcomer is refused. The per-IP limit
refuses the newcomer: one address cannot push anybody out by itself.

This module is bookkeeping only (no I/O): :class:`Admission` says admit, admit after
closing this one, or refuse; the server acts on it.
"""

from __future__ import annotations

import logging
from typing import NamedTuple, Protocol

__all__ = ["Admission", "Decision", "Ticket", "RefusalLog", "Evictable"]


class Evictable(Protocol):
    """What admission needs of a connection it may push out."""

    def abort(self) -> None: ...


class Ticket:
    """One admitted connection's slot, from the TCP accept to the close."""

    __slots__ = ("ip", "accepted_at", "conn", "binding", "left")

    def __init__(self, ip: str, accepted_at: float) -> None:
        self.ip = ip
        self.accepted_at = accepted_at
        #: the connection, once its transport is up (after the TLS handshake on a TLS listener)
        self.conn: Evictable | None = None
        #: a bind is being checked: not idle, not pushed out
        self.binding = False
        #: the slot is given back (closed, pushed out): later calls are no-ops
        self.left = False


class Decision(NamedTuple):
    """What :meth:`Admission.enter` decided: ``ticket`` (admitted) or ``refused`` (why)."""

    ticket: Ticket | None
    refused: str = ""
    #: the idle unbound connection closed to make room (the caller aborts it)
    evicted: Ticket | None = None


class Admission:
    """Counts of connections per budget; see the module docstring for the rules."""

    def __init__(self, max_connections: int, max_connections_per_ip: int = 0, max_unbound: int = 0) -> None:
        for name, value in (
            ("max_connections", max_connections),
            ("max_connections_per_ip", max_connections_per_ip),
            ("max_unbound", max_unbound),
        ):
            if value < 0:
                raise ValueError(f"{name} must not be negative")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.max_connections = max_connections
        self.max_connections_per_ip = max_connections_per_ip
        self.max_unbound = max_unbound
        self.total = 0
        self.per_ip: dict[str, int] = {}
        #: unbound tickets, oldest first (a dict keeps insertion order and removes in O(1))
        self.unbound: dict[Ticket, None] = {}

    def enter(self, ip: str, now: float) -> Decision:
        """Admit a connection from ``ip`` accepted at ``now``, maybe pushing out an idle one."""
        per_ip = self.max_connections_per_ip
        if per_ip and self.per_ip.get(ip, 0) >= per_ip:
            return Decision(None, "max_connections_per_ip")
        evicted = None
        unbound_full = bool(self.max_unbound) and len(self.unbound) >= self.max_unbound
        if unbound_full or self.total >= self.max_connections:
            evicted = self._oldest_idle()
            if evicted is None:
                return Decision(None, "max_unbound" if unbound_full else "max_connections")
            self.leave(evicted)
        ticket = Ticket(ip, now)
        self.total += 1
        self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
        self.unbound[ticket] = None
        return Decision(ticket, evicted=evicted)

    def _oldest_idle(self) -> Ticket | None:
        for ticket in self.unbound:
            if ticket.conn is not None and not ticket.binding:
                return ticket
        return None

    def bound(self, ticket: Ticket) -> None:
        """The connection bound: it no longer counts against the unbound budget."""
        self.unbound.pop(ticket, None)

    def leave(self, ticket: Ticket) -> None:
        """The connection is gone (or pushed out): its slots are free. Idempotent."""
        if ticket.left:
            return
        ticket.left = True
        self.total -= 1
        left = self.per_ip[ticket.ip] - 1
        if left:
            self.per_ip[ticket.ip] = left
        else:
            del self.per_ip[ticket.ip]
        self.unbound.pop(ticket, None)


class RefusalLog:
    """One log line per kind of refusal per ``interval``, with the count it stands for.

    A flood of refused connections must not become a flood of log lines: the first
    refusal of a kind is logged at once, the ones after it within ``interval`` are
    counted and reported by the next line of that kind.
    """

    def __init__(self, log: logging.Logger, interval: float = 10.0) -> None:
        self.log = log
        self.interval = interval
        self._last: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def note(self, event: str, reason: str, peer: str, now: float) -> None:
        key = f"{event}:{reason}"
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._unlogged[key] = self._unlogged.get(key, 0) + 1
            return
        self._last[key] = now
        more = self._unlogged.pop(key, 0)
        self.log.warning("%s peer=%s reason=%s not_logged_since_last=%d", event, peer, reason, more)
