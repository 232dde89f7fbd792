"""Bind abuse against the hub: max_binds under simultaneous binds, guessing slowed and locked
out, unknown system_ids answered like wrong passwords, and scrypt work bounded."""

from __future__ import annotations

import asyncio
import socket
import statistics
import threading
import time
from typing import Any

import pytest
import structlog
from hubkit import hub_config, running_hub, simulator, wait_until

import smppcore
from smppcore import CommandStatus, encode
from smppcore.pdus import BindTransceiver, SubmitSm
from smpphub.router.auth import BindGuard, GuardPolicy, hash_password, verify_password
from smpphub.router.config import ConfigError, config_from_dict

HOST = "127.0.0.1"
HASH = hash_password("pw")  # a real scrypt entry: its check costs what a hub's does


def config(max_binds: int = 10, **security: Any):
    return hub_config({}, [], accounts=[{"system_id": "acme", "password_hash": HASH, "max_binds": max_binds}],
                      security=security)


async def bind_status(port: int, system_id: str = "acme", password: str = "pw") -> int:
    """The bind's command_status (the connection is closed after)."""
    try:
        client = await smppcore.connect(HOST, port, system_id=system_id, password=password)
    except smppcore.SmppStatusError as exc:
        return exc.command_status
    await client.unbind()
    return 0


# ---- config ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("security", "message"), [
    ({"failed_bind_delay": 2.0, "failed_bind_delay_max": 1.0}, "security.failed_bind_delay_max: must be at least"),
    ({"lockout_failures": 0}, "security.lockout_failures"),
    ({"password_checks": 0}, "security.password_checks"),
    ({"password_check_queue": -1}, "security.password_check_queue"),
    ({"reveal_unknown_system_id": "no"}, "security.reveal_unknown_system_id"),
    ({"lockout": 3}, "security.lockout"),
])
def test_bad_security_values_are_one_line_naming_the_key(security: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict({"security": security})
    assert message in str(err.value) and "\n" not in str(err.value)


# ---- the guard, sans-IO --------------------------------------------------------------------------------


POLICY = GuardPolicy(first_delay=0.1, max_delay=0.5, lockout_failures=4, lockout_window=10.0,
                     lockout_duration=30.0, tracked=3)


def test_delays_double_then_a_lockout_starts_and_ends_once_with_its_count() -> None:
    guard = BindGuard(POLICY)
    delays = [guard.failed("10.0.0.1", "acme", now=float(i)) for i in range(4)]
    assert [d.delay for d in delays] == [0.1, 0.2, 0.4, 0.5]
    assert [[(lk.kind, lk.key, lk.failures) for lk in d.started] for d in delays] == [
        [], [], [], [("ip", "10.0.0.1", 4), ("system_id", "acme", 4)]]
    assert guard.locked("10.0.0.1", "other", now=5.0)  # the IP, whatever name
    assert guard.locked("10.0.0.2", "acme", now=5.0)  # the name, from anywhere
    assert not guard.locked("10.0.0.2", "other", now=5.0)
    assert guard.next_expiry() == 33.0
    assert guard.expire(now=20.0) == []
    ended = guard.expire(now=33.0)
    assert sorted((lk.kind, lk.refused) for lk in ended) == [("ip", 1), ("system_id", 1)]
    assert not guard.locked("10.0.0.1", "acme", now=34.0)


def test_failures_outside_the_window_start_over_and_success_forgets_the_name() -> None:
    guard = BindGuard(POLICY)
    for now in (0.0, 1.0, 2.0):
        guard.failed("10.0.0.1", "acme", now)
    assert guard.failed("10.0.0.1", "acme", now=20.0).started == []  # a new window: 1 failure
    guard.succeeded("10.0.0.9", "beta")
    for now in (21.0, 22.0, 23.0):
        assert guard.failed(f"10.0.0.{now:.0f}", "beta", now).delay <= 0.4


def test_a_trusted_ip_is_not_locked_out_by_its_system_ids_lockout() -> None:
    guard = BindGuard(POLICY)
    guard.succeeded("10.0.0.9", "acme")  # the owner bound from here before
    for i in range(4):
        guard.failed(f"10.0.1.{i}", "acme", now=float(i))
    assert guard.locked("10.0.0.8", "acme", now=5.0)
    assert not guard.locked("10.0.0.9", "acme", now=5.0)


def test_memory_is_bounded_by_tracked() -> None:
    guard = BindGuard(POLICY)
    for i in range(1000):
        guard.failed(f"10.1.{i // 250}.{i % 250}", f"name{i}", now=float(i) / 1000)
    assert all(len(t) <= POLICY.tracked for t in guard._tallies.values())
    assert len(guard._trusted) == 0


# ---- max_binds is atomic ---------------------------------------------------------------------------------


async def test_ten_simultaneous_first_binds_with_max_binds_2_accept_exactly_2_also_across_a_reload() -> None:
    cfg = config(max_binds=2)
    async with running_hub(cfg) as hub:
        port = hub.servers[0].port

        async def try_bind() -> smppcore.Client | None:
            try:
                return await smppcore.connect(HOST, port, system_id="acme", password="pw")
            except smppcore.SmppStatusError as exc:
                assert exc.command_status == CommandStatus.ESME_RBINDFAIL
                return None

        async def round_of_ten(reload_meanwhile: bool) -> list[smppcore.Client]:
            attempts = asyncio.gather(*(try_bind() for _ in range(10)))
            if reload_meanwhile:  # while the first checks run in their threads
                await wait_until(lambda: hub.handler.binds_held("acme") == 2, what="slots reserved")
                hub.reload(cfg)
            return [c for c in await attempts if c is not None]

        first = await round_of_ten(reload_meanwhile=True)
        assert len(first) == 2
        assert hub.binds_by_account() == {"acme": 2}
        hub.reload(cfg)  # as SIGHUP does: the two binds keep their slots
        assert await round_of_ten(reload_meanwhile=False) == []
        for client in first:
            await client.unbind()
        await wait_until(lambda: hub.handler.binds_held("acme") == 0, what="slots released")
        again = await round_of_ten(reload_meanwhile=False)
        assert len(again) == 2
        for client in again:
            await client.unbind()


async def test_a_connection_closed_during_its_password_check_gives_its_slot_back() -> None:
    async with running_hub(config(max_binds=1)) as hub:
        port = hub.servers[0].port
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(encode(BindTransceiver(system_id="acme", password="pw", sequence_number=1)))
        await writer.drain()
        await wait_until(lambda: hub.handler.binds_held("acme") == 1, what="slot reserved")
        writer.close()
        await wait_until(lambda: hub.handler.binds_held("acme") == 0, what="slot released")
        assert await bind_status(port) == 0


# ---- unknown system_id and wrong password look the same ---------------------------------------------


async def test_unknown_system_id_and_wrong_password_get_one_status_after_the_same_scrypt_work() -> None:
    start = time.perf_counter()
    verify_password("nope", HASH)
    scrypt = time.perf_counter() - start
    cfg = config(failed_bind_delay=0.0, failed_bind_delay_max=0.0, lockout_failures=1000)
    async with running_hub(cfg) as hub:
        port = hub.servers[0].port
        timings: dict[str, list[float]] = {"acme": [], "nosuchid": []}
        statuses: set[int] = set()
        for _ in range(5):
            for system_id, times in timings.items():
                start = time.perf_counter()
                statuses.add(await bind_status(port, system_id, "wrong"))
                times.append(time.perf_counter() - start)
        assert statuses == {CommandStatus.ESME_RINVPASWD}
        wrong, unknown = statistics.median(timings["acme"]), statistics.median(timings["nosuchid"])
        assert wrong > scrypt / 2 and unknown > scrypt / 2, (scrypt, timings)
        assert 1 / 3 < unknown / wrong < 3, timings


async def test_reveal_unknown_system_id_answers_rinvsysid() -> None:
    async with running_hub(config(reveal_unknown_system_id=True, failed_bind_delay=0.0)) as hub:
        port = hub.servers[0].port
        assert await bind_status(port, "nosuchid", "pw") == CommandStatus.ESME_RINVSYSID
        assert await bind_status(port, "acme", "wrong") == CommandStatus.ESME_RINVPASWD


# ---- slowed and locked out --------------------------------------------------------------------------------


async def test_guessing_is_slowed_then_locked_out_with_one_log_line_at_start_and_end() -> None:
    cfg = config(failed_bind_delay=0.05, failed_bind_delay_max=0.2, lockout_failures=3, lockout_duration=1.5)
    async with running_hub(cfg) as hub:
        port = hub.servers[0].port
        with structlog.testing.capture_logs() as logs:
            times = []
            for _ in range(3):
                start = time.perf_counter()
                assert await bind_status(port, "acme", "wrong") == CommandStatus.ESME_RINVPASWD
                times.append(time.perf_counter() - start)
            assert times[2] >= 0.2  # 0.05, 0.1, then 0.2 before the answer
            for _ in range(2):  # locked out: refused even with the right password, no check (0.2 s each)
                assert await bind_status(port, "acme", "pw") == CommandStatus.ESME_RBINDFAIL
            await wait_until(lambda: any(e["event"] == "bind_lockout_ended" for e in logs), what="lockout end")
            await wait_until(lambda: sum(e["event"] == "bind_lockout_ended" for e in logs) == 2, timeout=2)
        started = [(e["kind"], e["failures"]) for e in logs if e["event"] == "bind_lockout_started"]
        ended = [(e["kind"], e["refused"]) for e in logs if e["event"] == "bind_lockout_ended"]
        assert sorted(started) == [("ip", 3), ("system_id", 3)]
        assert sorted(ended) == [("ip", 2), ("system_id", 2)]
        assert await bind_status(port, "acme", "pw") == 0  # over: the good password binds again


# ---- scrypt work bounded ---------------------------------------------------------------------------------


async def test_binds_beyond_the_check_queue_are_refused_at_once_and_logged_once() -> None:
    cfg = config(failed_bind_delay=0.0, lockout_failures=1000, password_checks=1, password_check_queue=2)
    async with running_hub(cfg) as hub:
        port = hub.servers[0].port
        with structlog.testing.capture_logs() as logs:
            statuses = await asyncio.gather(*(bind_status(port, f"guess{i}", "wrong") for i in range(12)))
        assert statuses.count(CommandStatus.ESME_RINVPASWD) >= 3  # one running, two waiting
        assert statuses.count(CommandStatus.ESME_RBINDFAIL) == hub.handler.overload_refusals > 0
        assert [e["event"] for e in logs if e["event"].startswith("bind_overload")] == [
            "bind_overload_started", "bind_overload_ended"]
        assert next(e for e in logs if e["event"] == "bind_overload_ended")["refused"] == hub.handler.overload_refusals


class Guesser:
    """Threads that bind with wrong passwords over raw sockets, off the hub's event loop."""

    def __init__(self, port: int, connections: int, pause: float) -> None:
        self.port, self.pause = port, pause
        self.tries = 0
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(connections)]

    def _run(self, n: int) -> None:
        seq = 0
        while not self.stopping.is_set():
            seq += 1
            try:
                with socket.create_connection((HOST, self.port), timeout=10) as sock:
                    sock.sendall(encode(BindTransceiver(system_id=f"acme{n % 2 or ''}", password=f"g{seq}",
                                                        sequence_number=seq)))
                    sock.recv(16)
            except OSError:
                pass
            self.tries += 1
            self.stopping.wait(self.pause)  # the attacker's own pace

    def __enter__(self) -> Guesser:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(15)


async def submit_rate(client: smppcore.Client, count: int) -> float:
    """Submits per CPU second of the loop thread for a bound client.

    CPU, not wall seconds: the machine is shared (other processes swing a wall rate by
    2x). What guessing could take from a bound client is the loop thread's time (the
    bind handling, the GIL); the cores scrypt takes are bounded and measured apart.
    """
    start = time.thread_time()
    futures = []
    for i in range(count):
        futures.append(await client.send(SubmitSm(source_addr="1", destination_addr="4477", short_message=b"hi")))
        if i % 20 == 19:
            await asyncio.sleep(0)
    answers = await asyncio.gather(*futures)
    assert all(a.command_status == 0 for a in answers)
    return count / (time.thread_time() - start)


async def test_a_password_guesser_does_not_take_a_bound_client_below_half_its_rate() -> None:
    sim = await simulator()
    try:
        cfg = hub_config({"up": sim}, [{"prefix": "", "upstreams": ["up"]}],
                         accounts=[{"system_id": "acme", "password_hash": HASH}, {"system_id": "acme1",
                                                                                   "password_hash": HASH}],
                         security={"failed_bind_delay": 0.0, "lockout_failures": 100_000})
        async with running_hub(cfg) as hub:
            port = hub.servers[0].port
            client = await smppcore.connect(HOST, port, system_id="acme", password="pw")
            try:
                alone = max([await submit_rate(client, 1500) for _ in range(2)])
                with Guesser(port, connections=8, pause=0.02) as guesser:
                    await wait_until(lambda: guesser.tries >= 20, what="guessing under way")
                    before, cpu, wall = guesser.tries, time.process_time(), time.perf_counter()
                    under = max([await submit_rate(client, 1500) for _ in range(2)])  # the machine is shared
                    during = guesser.tries - before
                    cores = (time.process_time() - cpu) / (time.perf_counter() - wall)
                    await wait_until(lambda: guesser.tries >= 200, timeout=30, what="200 guesses")
                assert during > 0, "the guessing went on while the good client sent"
                # the loop, one scrypt at a time (password_checks = 1) and the guessing threads' little work
                assert cores < 2.5, f"the hub process used {cores:.1f} cores under guessing"
                assert under >= alone / 2, f"good client: {alone:.0f}/s alone, {under:.0f}/s under guessing"
            finally:
                await client.unbind()
    finally:
        await sim.close()
