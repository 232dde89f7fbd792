"""The HTTP API's benchmark: a client (aiohttp, or wrk) -> the hub's /v1/messages -> a simulated SMSC.

Three processes share the machine: the load (this one, an aiohttp client with keep-alive
over several connections; or wrk, in a process of its own), the hub (``smpphub serve``, SQLite with
``synchronous = full``: every answer waits for its messages to be on disk) and the
upstream simulator (``smpphub simulate`` at zero latency). Variants:

- ``single``: one message per request; requests per second and their latency;
- ``batch``: ``--batch`` messages per request (1,000 by default); messages per second;
- ``smpp``: the same hub and store driven over SMPP by ``smpphub bench`` (the SMPP
  path's figure from :mod:`benchmarks.hub`, no receipts), for comparison;
- ``ceiling``: the same single-message load against a bare aiohttp server that answers
  202 with a canned body at once (no hub): what HTTP itself costs here;
- ``wrk-single`` and ``wrk-ceiling``: the single and ceiling loads driven by ``wrk``
  (C, ~20 us of CPU a request, where the Python client spends ~200-240 us: that client
  cannot drive more than ~4,000 requests/s on two cores, whatever the server does).
  wrk runs for ``--duration`` seconds over ``--connections`` keep-alive connections, a
  Lua script POSTing one message a request with the bearer token; its summary (requests,
  non-2xx answers, socket errors, latency percentiles) is parsed into the same table.
  Without wrk (Debian: ``apt-get install wrk``) these variants are skipped with a line
  saying so.

Each variant is run ``--repeat`` times (3 by default) and the median of each figure
printed, with the CPU each process spent per message (microseconds; from /proc).
The hub, its config, its database and the simulator are set up by the functions of
:mod:`benchmarks.hub`, as for the SMPP benchmark.

    python -m smpphub.bench.http
    python -m smpphub.bench.http --count 2000 --batch-count 20000 --repeat 1
    python -m smpphub.bench.http --variants wrk-ceiling,wrk-single,batch,smpp
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .hub import HOST, cpu_seconds, free_port, hub_config, measure_hub, measure_through_hub, median_of, start, stop

TOKEN = "shk_http-benchmark-token-000000000000000000000"


def http_hub_config(path: Path, hub_port: int, http_port: int, smsc_port: int, db: Path) -> None:
    """:func:`benchmarks.hub.hub_config`'s hub, with an [http] listener and an account that has an API token."""
    from smpphub.router.http.tokens import hash_token

    hub_config(path, hub_port, smsc_port, "sqlite", db)
    with path.open("a") as f:
        f.write(f"""
[[accounts]]
system_id = "http"
password = "http"
api_tokens = ["{hash_token(TOKEN)}"]

[http]
listen = "{HOST}:{http_port}"
max_body_bytes = 16777216
""")


async def _load(url: str, requests: int, per_request: int, connections: int) -> dict:
    """``requests`` POSTs of ``per_request`` messages over ``connections`` keep-alive connections."""
    import aiohttp

    if per_request == 1:
        bodies = [json.dumps({"to": f"4477009{i % 100000:05d}", "text": "benchmark message"}).encode()
                  for i in range(min(requests, 1000))]
    else:
        bodies = [json.dumps({"messages": [{"to": f"4477009{(i + j) % 100000:05d}", "text": "benchmark message"}
                                           for j in range(per_request)]}).encode() for i in range(2)]
    latencies: list[float] = []
    errors = 0
    accepted = 0
    left = requests
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(url, connector=connector, headers=headers) as http:
        async def worker() -> None:
            nonlocal left, errors, accepted
            while left > 0:
                left -= 1
                body = bodies[left % len(bodies)]
                started = time.perf_counter()
                async with http.post("/v1/messages", data=body) as resp:
                    answer = await resp.read()
                latencies.append(time.perf_counter() - started)
                if resp.status != 202:
                    errors += per_request
                    continue
                got = json.loads(answer)
                accepted += got["accepted"]
                errors += got["rejected"]

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": requests, "messages": accepted, "errors": errors, "elapsed": elapsed,
        "req_rate": requests / elapsed, "msg_rate": accepted / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000, "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


#: wrk's script: one message a request (the destination varies), and a summary line :func:`_parse_wrk` reads
_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"to":"4477009%%05d","text":"benchmark message"}', n %% 100000)
  return wrk.format(nil, "/v1/messages", nil, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK_RESULT %%d %%d %%d %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    e.status, e.connect, e.read, e.write, e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_missing() -> str | None:
    """Why the wrk variants cannot run here (None: they can)."""
    if shutil.which("wrk") is None:
        return "wrk is not installed (Debian/Ubuntu: apt-get install wrk)"
    return None


def _parse_wrk(output: str) -> dict:
    """The figures of wrk's summary line (see :data:`_WRK_SCRIPT`): counts, and latencies in microseconds."""
    for line in output.splitlines():
        if line.startswith("WRK_RESULT "):
            requests, duration_us, status, connect, read, write, timeout, p50, p99 = map(int, line.split()[1:])
            elapsed = duration_us / 1e6
            errors = status + connect + read + write + timeout
            ok = max(0, requests - status)
            return {"requests": requests, "messages": ok, "errors": errors, "elapsed": elapsed,
                    "req_rate": requests / elapsed, "msg_rate": ok / elapsed,
                    "p50_ms": p50 / 1000, "p99_ms": p99 / 1000}
    raise RuntimeError(f"wrk printed no summary: {output[-2000:]}")


def _wrk_load(url: str, seconds: float, connections: int) -> dict:
    """wrk (one thread: the two cores are the server's) for ``seconds`` over ``connections`` connections."""
    with tempfile.TemporaryDirectory(prefix="smpphub-wrk-") as folder:
        script = Path(folder) / "post.lua"
        script.write_text(_WRK_SCRIPT % {"token": TOKEN})
        child = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s",
                                "-s", str(script), url], capture_output=True, text=True, timeout=seconds + 120)
    if child.returncode != 0:
        raise RuntimeError(f"wrk failed: {child.stderr[-2000:]}")
    return _parse_wrk(child.stdout)


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


Load = Callable[[str], dict]


def python_load(requests: int, per_request: int, connections: int) -> Load:
    """The aiohttp client: ``requests`` POSTs of ``per_request`` messages; its CPU is this process's."""
    def run(url: str) -> dict:
        before = time.process_time()
        result = asyncio.run(_load(url, requests, per_request, connections))
        result["load_cpu_us"] = (time.process_time() - before) / max(1, result["messages"]) * 1e6
        return result
    return run


def wrk_load(seconds: float, connections: int) -> Load:
    """wrk for ``seconds``; its CPU is what this process's waited-for children spent meanwhile."""
    def run(url: str) -> dict:
        before = _children_cpu()
        result = _wrk_load(url, seconds, connections)
        result["load_cpu_us"] = (_children_cpu() - before) / max(1, result["requests"]) * 1e6
        return result
    return run


def measure_http(requests: int, per_request: int, connections: int, load: Load | None = None) -> dict:
    run = load or python_load(requests, per_request, connections)
    http_port = free_port()
    return measure_through_hub(
        "smpphub-http-bench-",
        lambda path, hub_port, smsc_port, db: http_hub_config(path, hub_port, http_port, smsc_port, db),
        b"http api on", lambda _: run(f"http://{HOST}:{http_port}"), lambda result: result["messages"])


_CANNED = (b'{"messages":[{"index":0,"to":"447700900001","status":"accepted","id":"0123456789abcdef","parts":1}],'
           b'"accepted":1,"rejected":0}')


def plain_server_main(port: int) -> None:
    """The ceiling: aiohttp on the hub's event loop policy, answering every POST at once."""
    from aiohttp import web

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=202, body=_CANNED, content_type="application/json")

    async def serve() -> None:
        app = web.Application()
        app.router.add_post("/v1/messages", answer)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, HOST, port).start()
        print("http api on", flush=True)  # only once it is listening
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    import smppcore

    smppcore.run(serve())


def measure_ceiling(requests: int, connections: int, load: Load | None = None) -> dict:
    load = load or python_load(requests, 1, connections)
    port = free_port()
    srv = start([sys.executable, "-m", "smpphub.bench.http", "--plain-server", str(port)], b"http api on")
    try:
        cpu = cpu_seconds(srv.pid)
        result = load(f"http://{HOST}:{port}")
        n = max(1, result["messages"])
        result["hub_cpu_us"] = (cpu_seconds(srv.pid) - cpu) / n * 1e6
        result["smsc_cpu_us"] = 0.0
    finally:
        stop(srv)
    return result


def measure_smpp(count: int) -> dict:
    r = measure_hub("sqlite", False, count, 200, 2)
    return {"requests": r["count"], "messages": r["count"], "errors": r["errors"], "req_rate": r["accept_rate"],
            "msg_rate": r["accept_rate"], "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
            "load_cpu_us": r["load_cpu_us"], "hub_cpu_us": r["hub_cpu_us"], "smsc_cpu_us": r["smsc_cpu_us"]}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--plain-server":
        plain_server_main(int(argv[1]))
        return 0
    p = argparse.ArgumentParser(prog="python -m smpphub.bench.http", description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=20_000, help="single-message requests per run")
    p.add_argument("--batch-count", type=int, default=200_000, help="messages per run of the batch variant")
    p.add_argument("--batch", type=int, default=1000, help="messages per batch request")
    p.add_argument("--connections", type=int, default=128,
                   help="keep-alive connections of the single and ceiling variants (each request waits for a commit)")
    p.add_argument("--batch-connections", type=int, default=8)
    p.add_argument("--smpp-count", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0, help="seconds of each wrk run")
    p.add_argument("--variants", default="ceiling,single,wrk-ceiling,wrk-single,batch,smpp")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    results: dict[str, dict] = {}
    skipped: list[str] = []
    for name in [v.strip() for v in args.variants.split(",") if v.strip()]:
        if name.startswith("wrk-") and wrk_missing():
            skipped.append(f"{name}: skipped: {wrk_missing()}")
            print(f"  {skipped[-1]}", file=sys.stderr, flush=True)
            continue
        runs = []
        for _ in range(args.repeat):
            if name == "single":
                runs.append(measure_http(args.count, 1, args.connections))
            elif name == "batch":
                runs.append(measure_http(max(1, args.batch_count // args.batch), args.batch, args.batch_connections))
            elif name == "smpp":
                runs.append(measure_smpp(args.smpp_count))
            elif name == "ceiling":
                runs.append(measure_ceiling(args.count, args.connections))
            elif name == "wrk-single":
                runs.append(measure_http(0, 1, args.connections, wrk_load(args.duration, args.connections)))
            elif name == "wrk-ceiling":
                runs.append(measure_ceiling(0, args.connections, wrk_load(args.duration, args.connections)))
            else:
                p.error(f"unknown variant {name!r} (ceiling, single, wrk-ceiling, wrk-single, batch, smpp)")
            print(f"  {name}: {runs[-1]['msg_rate']:,.0f} msg/s", file=sys.stderr, flush=True)
        results[name] = median_of(runs)
    print()
    print(f"HTTP API vs SMPP, hub on SQLite synchronous=full, median of {args.repeat}; single: {args.count:,} requests "
          f"over {args.connections} connections; batch: {args.batch:,} messages a request over "
          f"{args.batch_connections} connections; wrk: {args.duration:g} s a run over {args.connections} connections")
    head = (f"{'variant':<11} | {'requests/s':>10} | {'messages/s':>10} | {'p50 ms':>8} | {'p99 ms':>8} | "
            f"{'errors':>6} | {'load us':>7} | {'hub us':>7} | {'smsc us':>7}")
    print(head)
    print("-" * len(head))
    for name, r in results.items():
        print(f"{name:<11} | {r['req_rate']:>10,.0f} | {r['msg_rate']:>10,.0f} | {r['p50_ms']:>8.2f} | "
              f"{r['p99_ms']:>8.2f} | {int(r['errors']):>6} | {r['load_cpu_us']:>7.1f} | {r['hub_cpu_us']:>7.1f} | "
              f"{r['smsc_cpu_us']:>7.1f}")
    for line in skipped:
        print(line)
    print("ceiling = the single load against a bare aiohttp server answering at once (no hub, no store);")
    print("wrk-* = the same single-message loads driven by wrk (one thread) instead of the Python client;")
    print("us = CPU microseconds per message of each process (load = the client: this one, wrk, or smpphub bench);")
    print("latency: per request (a batch request's answer covers its messages), SMPP: submit_sm -> submit_sm_resp.")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
