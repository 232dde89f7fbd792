"""The ESME accounts as the hub holds them at run time, and the checks a bind must pass to act as one.

Apart from :mod:`router.esme` because binds are a purpose of their own: they are rare and
where a hostile peer is cheapest (a bind's password check costs a scrypt), while the ESME
side's submits are the hub's hot path. So an account's bind slot is reserved before the
check (``max_binds`` holds however many binds arrive at once, and across reloads), checks
run a few at a time with a bounded queue, failures are slowed and locked out per IP and per
system_id (:class:`~.auth.BindGuard`), and an unknown system_id costs and answers the same
as a wrong password.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

import msgspec
import structlog

from smppcore import CommandStatus, Pdu
from smppcore.pdus import BindReceiver, BindTransceiver, BindTransmitter
from smppcore.ratelimit import TokenBucket
from smppcore.server import SmscConnection

from .auth import (
    BindGuard,
    GuardPolicy,
    Lockout,
    SourceFilter,
    compile_ip_allowlist,
    dummy_credential,
    ip_allowed,
    verify_password,
)
from .config import Account, SecurityConfig

__all__ = ["AccountState", "BindChecks", "Refusal"]

log = structlog.get_logger("smpphub.esme")  # the ESME side's logger, as before these checks had a module

_BIND_NAMES: dict[type[Pdu], Literal["tx", "rx", "trx"]] = {
    BindTransmitter: "tx", BindReceiver: "rx", BindTransceiver: "trx",
}


class Refusal(msgspec.Struct, frozen=True):
    """Why a known account may not bind this way: the status its owner gets, and the logged reason."""

    status: int
    reason: str


class AccountState:
    """What the hub keeps per account at run time."""

    __slots__ = ("cfg", "bucket", "sources", "ips")

    def __init__(self, cfg: Account, clock: Callable[[], float]) -> None:
        self.cfg = cfg
        # no rate cap, no bucket: nothing to ask per submit
        self.bucket = TokenBucket(cfg.max_rate, clock) if cfg.max_rate else None
        self.sources = SourceFilter(cfg.source_addrs) if cfg.source_addrs else None  # None: any source
        self.ips = compile_ip_allowlist(cfg.allowed_ips)




class BindChecks:
    """Whether a bind may go on: its account's rules, its password (checked a few at a time), the
    account's bind slots, and the memory of failed binds (:class:`~.auth.BindGuard`)."""

    def __init__(self, security: SecurityConfig) -> None:
        self.security = security
        self.guard = BindGuard(_guard_policy(security))
        self._verified: dict[tuple[str, bytes], str] = {}
        # bind slots: connections holding one per account (binding now, or bound), and the reverse
        self._slots: dict[str, set[SmscConnection]] = {}
        self._slot_of: dict[SmscConnection, str] = {}
        self._dummy = dummy_credential()
        self._checks: asyncio.Semaphore | None = None  # made at the first check, sized by [security]
        self._checks_size = 0
        self._checks_waiting = 0
        self._overload_refused = 0  # binds refused at once because the check queue was full, this episode
        self.overload_refusals = 0  # the same, since start
        self._expiry: asyncio.TimerHandle | None = None

    def configure(self, security: SecurityConfig) -> None:
        """A (re)loaded [security]: failures and lockouts so far carry over to the new numbers."""
        self.security = security
        self._verified.clear()
        self.guard.policy = _guard_policy(security)

    def check(self, conn: SmscConnection, bind: BindTransmitter | BindReceiver | BindTransceiver,
              accounts: Mapping[str, AccountState]) -> int | Awaitable[int]:
        """The answer to ``bind`` from one of ``accounts``: 0, a refusal's status, or a check under way
        that gives one (its slot reserved meanwhile)."""
        security = self.security
        system_id = bind.system_id
        peer = conn.peername[0] if conn.peername else ""
        if self.guard.locked(peer, system_id, time.monotonic()):  # counted on the lockout, logged at its end
            return self._answer_later(CommandStatus.ESME_RBINDFAIL, self.guard.policy.max_delay)
        account = accounts.get(system_id)
        if account is None:
            if security.reveal_unknown_system_id:
                log.info("bind_refused", system_id=system_id, peer=peer, reason="unknown system_id")
                return self._failed(peer, system_id, CommandStatus.ESME_RINVSYSID)
            # the same work and the same answer as a wrong password: nothing tells the names that exist
            return self._verify(conn, None, bind.password, self._dummy, system_id, peer)
        refusal = self._refusal(conn, bind, account, peer)
        credential = account.cfg.credential
        key = (system_id, hashlib.sha256(bind.password.encode()).digest())
        if refusal is not None:
            if security.reveal_unknown_system_id:
                log.info("bind_refused", system_id=system_id, peer=peer, reason=refusal.reason)
                return refusal.status
            # only a caller who knows the password learns why: to anyone else this account
            # looks like an unknown system_id (the same scrypt work, ESME_RINVPASWD, the same delay)
            return self._verify(conn, key, bind.password, credential, system_id, peer, refusal)
        if self._verified.get(key) == credential:
            self.guard.succeeded(peer, system_id)
            return 0
        return self._verify(conn, key, bind.password, credential, system_id, peer)

    def _refusal(self, conn: SmscConnection, bind: Pdu, account: AccountState, peer: str) -> Refusal | None:
        """Why the account may not bind this way, whatever the password (None: it may, its slot reserved)."""
        if not ip_allowed(peer, account.ips):
            return Refusal(CommandStatus.ESME_RBINDFAIL, "source IP not allowed")
        if _BIND_NAMES[type(bind)] not in account.cfg.bind_types:
            return Refusal(CommandStatus.ESME_RINVBNDSTS, "bind type not allowed")
        if not self._reserve(conn, account.cfg.system_id, account.cfg.max_binds):
            return Refusal(CommandStatus.ESME_RBINDFAIL, "max_binds reached")
        return None

    async def _verify(self, conn: SmscConnection, key: tuple[str, bytes] | None, password: str, credential: str,
                      system_id: str, peer: str, refusal: Refusal | None = None) -> int:
        """The password check of a bind whose slot is reserved (``key`` None: an unknown system_id;
        ``refusal``: the account may not bind this way, and no slot is reserved).

        The slot is given back unless the bind succeeds, also when the connection
        closes meanwhile (this task is cancelled then).
        """
        accepted = False
        try:
            ok = await self._check_password(password, credential)
            if ok is None:  # too many checks waiting: answered at once, no delay to hold the connection
                return CommandStatus.ESME_RBINDFAIL
            if ok and refusal is not None:
                log.info("bind_refused", system_id=system_id, peer=peer, reason=refusal.reason)
                return refusal.status
            if ok and key is not None:
                self._verified[key] = credential
                self.guard.succeeded(peer, system_id)
                accepted = True
                return 0
            reason = "wrong password" if key is not None else "unknown system_id"
            log.info("bind_refused", system_id=system_id, peer=peer, reason=reason)
            return await self._failed(peer, system_id, CommandStatus.ESME_RINVPASWD)
        finally:
            if not accepted:
                self.release(conn)

    async def _failed(self, peer: str, system_id: str, status: int) -> int:
        """Count a failed bind, then answer ``status`` after the guard's delay."""
        failure = self.guard.failed(peer, system_id, time.monotonic())
        for lockout in failure.started:
            log.warning("bind_lockout_started", kind=lockout.kind, key=lockout.key, failures=lockout.failures,
                        seconds=self.guard.policy.lockout_duration)
        if failure.started:
            self._schedule_expiry()
        return await self._answer_later(status, failure.delay)

    @staticmethod
    async def _answer_later(status: int, delay: float) -> int:
        if delay > 0:
            await asyncio.sleep(delay)  # a timer, not a wait for something: the answer is slowed on purpose
        return status

    async def _check_password(self, password: str, credential: str) -> bool | None:
        """``verify_password`` in a thread, at most ``password_checks`` at once; None when the queue is full.

        The semaphore is held until the thread's scrypt is over, even when the bind is
        given up meanwhile (its connection closed): the limit counts CPU work, not waiters.
        """
        security = self.security
        if self._checks is None or self._checks_size != security.password_checks:
            self._checks = asyncio.Semaphore(security.password_checks)  # a reload's new size: checks running finish
            self._checks_size = security.password_checks
        checks = self._checks
        if checks.locked() and self._checks_waiting >= security.password_check_queue:
            self.overload_refusals += 1
            self._overload_refused += 1
            if self._overload_refused == 1:
                log.warning("bind_overload_started", waiting=self._checks_waiting, running=self._checks_size)
            return None
        self._checks_waiting += 1
        try:
            await checks.acquire()
        finally:
            self._checks_waiting -= 1
        if self._overload_refused:
            log.warning("bind_overload_ended", refused=self._overload_refused)
            self._overload_refused = 0
        work = asyncio.get_running_loop().run_in_executor(None, verify_password, password, credential)
        work.add_done_callback(functools.partial(_release_check, checks))
        return await asyncio.shield(work)

    def _schedule_expiry(self) -> None:
        """A timer for the next lockout's end (its end is logged then, with the binds it refused)."""
        when = self.guard.next_expiry()
        if when is None:
            return
        if self._expiry is not None:
            self._expiry.cancel()
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_later(max(0.0, when - time.monotonic()), self._expire)

    def _expire(self) -> None:
        self._expiry = None
        for lockout in self.guard.expire(time.monotonic()):
            _log_lockout_end(lockout)
        self._schedule_expiry()

    def _reserve(self, conn: SmscConnection, system_id: str, max_binds: int) -> bool:
        """Take one of ``system_id``'s bind slots for ``conn`` (False: all taken, by binds or binds in progress)."""
        slots = self._slots.setdefault(system_id, set())
        if conn in slots:
            return True
        if len(slots) >= max_binds:
            return False
        slots.add(conn)
        self._slot_of[conn] = system_id
        return True

    def release(self, conn: SmscConnection) -> None:
        """``conn`` closed, or its bind failed: its slot, if it held one, is free."""
        system_id = self._slot_of.pop(conn, None)
        if system_id is None:
            return
        slots = self._slots.get(system_id)
        if slots is not None:
            slots.discard(conn)
            if not slots:
                del self._slots[system_id]

    def binds_held(self, system_id: str) -> int:
        """Bind slots of ``system_id`` taken: bound connections and binds being checked."""
        return len(self._slots.get(system_id, ()))


def _guard_policy(security: SecurityConfig) -> GuardPolicy:
    return GuardPolicy(
        first_delay=security.failed_bind_delay, max_delay=security.failed_bind_delay_max,
        lockout_failures=security.lockout_failures, lockout_window=security.lockout_window,
        lockout_duration=security.lockout_duration, tracked=security.tracked_failures,
    )


def _release_check(checks: asyncio.Semaphore, work: asyncio.Future[bool]) -> None:
    """A password check's thread is done: its place goes to the next."""
    checks.release()


def _log_lockout_end(lockout: Lockout) -> None:
    log.warning("bind_lockout_ended", kind=lockout.kind, key=lockout.key, failures=lockout.failures,
                refused=lockout.refused)
