"""One measurement of the session benchmark: a server and a client in fresh processes.

The orchestrator (:mod:`smpphub.bench.session`) calls :func:`measure` once per pair,
window and repetition. This module starts the two child processes (pinned to their
CPUs, killed with the orchestrator), speaks their line protocol (``PORT``, ``READY``,
``go``, ``RESULT``, ``start``/``stop`` -> ``CPU``, ``quit``), optionally samples them
with py-spy, and turns what they report into one row of figures. Kept apart from the
orchestrator's loop and tables because other benchmarks (:mod:`smpphub.bench.simulator`,
:mod:`smpphub.bench.compare`) manage their children with the same pieces.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from .session_sides import HOST

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(__file__).resolve().parent / "peers"
NODE_CLIENT = PEERS / "node_session_client.js"
NODE_SERVER = PEERS / "node_session_server.js"
NODE_MODULES = ROOT / "tests" / "interop" / "node" / "node_modules"

# pair -> (client implementation, server implementation)
PAIRS: dict[str, tuple[str, str]] = {
    "ours": ("ours", "ours"),
    "smpp34": ("smpp34", "smpp34"),
    "node": ("node", "node"),
    "raw": ("ours", "raw"),
    "ours-node": ("ours", "node"),
    "node-ours": ("node", "ours"),
}


# ---- child processes ------------------------------------------------------------------

_LIVE: set["Child"] = set()


def _child_setup(cpu: int | None) -> Callable[[], None]:
    def setup() -> None:
        # Die with the orchestrator, whatever kills it (Linux: PR_SET_PDEATHSIG).
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)
        except Exception:  # noqa: BLE001 - not Linux: the finally blocks still clean up
            pass
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            try:
                os.sched_setaffinity(0, {cpu})
            except OSError:
                pass

    return setup


class ChildFailed(RuntimeError):
    pass


class Child:
    """A sub-process speaking the line protocol of smpphub.bench.session's sub-modes."""

    def __init__(self, argv: list[str], name: str, cpu: int | None, env: dict[str, str]) -> None:
        self.name = name
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            cwd=str(ROOT),
            env=env,
            preexec_fn=_child_setup(cpu),
        )
        _LIVE.add(self)
        self._buf = b""

    def send(self, line: str) -> None:
        try:
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def _stderr_tail(self) -> str:
        try:
            self.stderr.seek(0)
            return self.stderr.read().decode(errors="replace")[-1500:]
        except (OSError, ValueError):
            return ""

    def expect(self, prefix: str, timeout: float) -> str:
        """The next stdout line starting with ``prefix`` (others are ignored)."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self._buf:
                raw, self._buf = self._buf.split(b"\n", 1)
                line = raw.decode(errors="replace").strip()
                if line.startswith(prefix):
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChildFailed(f"{self.name}: no {prefix!r} within {timeout:.0f}s; stderr: {self._stderr_tail()}")
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.proc.wait(timeout=2)
                    raise ChildFailed(
                        f"{self.name}: exited ({self.proc.returncode}) before {prefix!r}; stderr: {self._stderr_tail()}"
                    )
                self._buf += chunk

    def close(self, grace: float = 3.0) -> None:
        try:
            if self.proc.poll() is None:
                self.send("quit")
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass
                try:
                    self.proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
        finally:
            for f in (self.proc.stdout, self.proc.stdin, self.stderr):
                try:
                    f.close()
                except Exception:  # noqa: BLE001
                    pass
            _LIVE.discard(self)

    def kill(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        finally:
            _LIVE.discard(self)


def _kill_all() -> None:
    children = list(_LIVE)
    for child in children:  # SIGKILL every one first, then reap
        if child.proc.poll() is None:
            child.proc.kill()
    for child in children:
        child.kill()


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["NODE_PATH"] = os.pathsep.join(p for p in (str(NODE_MODULES), env.get("NODE_PATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.pop("SMPPHUB_NO_UVLOOP", None)
    return env


# ---- one measurement ------------------------------------------------------------------


def _server_argv(impl: str, profile: str | None, node_nodelay: bool = True) -> list[str]:
    if impl == "node":
        return [_node(), str(NODE_SERVER), "--host", HOST, "--port", "0", "--nodelay", str(int(node_nodelay))]
    argv = [sys.executable, "-m", "smpphub.bench.session", "server", "--impl", impl, "--host", HOST, "--port", "0"]
    return argv + (["--profile", profile] if profile else [])


def _client_argv(
    impl: str, port: int, count: int, window: int, warmup: int, profile: str | None, node_nodelay: bool = True
) -> list[str]:
    common = ["--host", HOST, "--port", str(port), "--count", str(count), "--window", str(window), "--warmup", str(warmup)]
    if impl == "node":
        return [_node(), str(NODE_CLIENT), *common, "--nodelay", str(int(node_nodelay))]
    argv = [sys.executable, "-m", "smpphub.bench.session", "client", "--impl", impl, *common]
    return argv + (["--profile", profile] if profile else [])


def _node() -> str:
    return shutil.which("node") or "node"


def measure(
    pair: str,
    window: int,
    *,
    count: int,
    warmup: int,
    cpus: tuple[int | None, int | None],
    profile_dir: Path | None = None,
    pyspy_dir: Path | None = None,
    tag: str = "",
    node_nodelay: bool = True,
) -> dict[str, Any]:
    """One measurement of ``pair`` at ``window``, in two fresh processes."""
    client_impl, server_impl = PAIRS[pair]
    env = _child_env()
    prof = {}
    if profile_dir is not None:
        for role, impl in (("client", client_impl), ("server", server_impl)):
            if impl != "node":
                prof[role] = str(profile_dir / f"{pair}-w{window}{tag}-{role}-{impl}.prof")
    # Generous: 20 s plus 2 ms per message (window 1 of a slow peer on a busy machine).
    timeout = 20 + count * 0.002
    server = client = None
    ok = False
    spies: list[tuple[str, str, subprocess.Popen]] = []
    try:
        server = Child(_server_argv(server_impl, prof.get("server"), node_nodelay), f"{pair} server ({server_impl})", cpus[1], env)
        port = int(server.expect("PORT", 30).split()[1])
        client = Child(
            _client_argv(client_impl, port, count, window, warmup, prof.get("client"), node_nodelay),
            f"{pair} client ({client_impl})",
            cpus[0],
            env,
        )
        client.expect("READY", 30 + warmup * 0.002)
        if pyspy_dir is not None:
            for role, impl, child in (("client", client_impl, client), ("server", server_impl, server)):
                if impl != "node":
                    path = str(pyspy_dir / f"{pair}-w{window}{tag}-{role}-{impl}.txt")
                    spies.append((role, path, _start_pyspy(child.proc.pid, path)))
            time.sleep(1.0)  # let py-spy attach
        server.send("start")
        s0 = [int(x) for x in server.expect("CPU", 10).split()[1:3]]  # user, system
        client.send("go")
        res = json.loads(client.expect("RESULT", timeout)[len("RESULT "):])
        server.send("stop")
        s1 = [int(x) for x in server.expect("CPU", 10).split()[1:3]]
        ok = True
        for _, _, spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        for role, path, spy in spies:
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            prof[f"{role}-pyspy"] = path
    finally:
        for _, _, spy in spies:
            if spy.poll() is None:
                spy.kill()
                spy.wait()
        for child in (client, server):
            if child is not None:
                child.close() if ok else child.kill()  # on any error or signal: kill at once
    n = res["n"]
    elapsed_s = res["elapsed_ns"] / 1e9
    return {
        "pair": pair,
        "window": window,
        "n": n,
        "errors": res["errors"],
        "elapsed_s": elapsed_s,
        "msg_per_s": n / elapsed_s if elapsed_s > 0 else 0.0,
        "p50_ms": res["p50_ns"] / 1e6,
        "p99_ms": res["p99_ns"] / 1e6,
        "max_ms": res["max_ns"] / 1e6,
        "client_cpu_us": res["cpu_us"] / n if n else 0.0,
        "server_cpu_us": (s1[0] + s1[1] - s0[0] - s0[1]) / n if n else 0.0,
        # the kernel's share (system time), per message: syscalls, TCP/IP on loopback
        "client_sys_us": res["cpu_sys_us"] / n if n else 0.0,
        "server_sys_us": (s1[1] - s0[1]) / n if n else 0.0,
        "profiles": prof,
    }


def _pick_cpus(pin: bool | None) -> tuple[int | None, int | None]:
    if pin is False or not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


def _start_pyspy(pid: int, path: str) -> subprocess.Popen:
    """Sample ``pid`` with py-spy (not paused: --nonblocking) into ``path`` (collapsed stacks)."""
    exe = shutil.which("py-spy")
    if exe is None:
        raise ChildFailed("--pyspy needs py-spy (pip install py-spy)")
    argv = [exe, "record", "--pid", str(pid), "--format", "raw", "--rate", "997", "--nonblocking", "-o", path]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_child_setup(None))
