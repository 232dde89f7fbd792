"""Store benchmark: how fast the SQLite store takes durable writes.

Run ``python -m smpphub.bench.store`` (``--quick`` for a smoke run). Every row gets a
fresh database file (in ``--dir``, default the system temp directory: it must be on
the disk the hub would use, not a tmpfs, or the fsyncs cost nothing) and one
:class:`router.store.sqlite.SqliteStore` on the event loop the hub uses (uvloop when
installed). Rows:

- **add**: ``--records`` messages (200,000; a 60-octet submit_sm each, as
  :class:`router.lifecycle.MessageRow`) stored by C concurrent callers, each awaiting
  ``add_messages([row])`` (one row per call, the worst case for the store: the hub's
  acceptor hands it a whole loop turn of messages per call). One caller waits for a
  commit per row, so that row stores at most ``--serial-records`` (10,000) messages;
  the ``records`` column says how many.
- **add, per-call 100**: one caller, 100 rows per call (what the hub's acceptor does
  under load).
- **save**: every message leaving as the dispatcher writes it: taken by an upstream
  (IN_FLIGHT) in one loop turn, accepted by it (SENT, with its upstream_id) in the
  next; each turn ends with ONE fire-and-forget ``save()`` of the rows it changed
  (``--turn`` messages taken plus the previous turn's answered: two row writes per
  message), the loop yielding between turns as traffic would, then ``flush()`` (its
  p50 / p99 are that flush's wait: how far the writer lagged behind).
- **lookup**: ``find_by_upstream_id`` for every sent message (up to 100,000), 100
  concurrent callers (the receipt path when the hub's in-memory map misses).
- **receipt**: the final receipt of those messages, 100 concurrent callers, each
  awaiting ``save_durably([row])`` of the row made DELIVERED with the receipt owed to
  its ESME (a 150-octet deliver_sm: the hub acks the SMSC only after that commit),
  then, once the ESME acked it, a fire-and-forget ``save()`` of the row owing nothing.
  p50 / p99 are the ``save_durably`` waits.
- **message**: every write a message costs the store in the hub with receipts, ``--turn``
  messages a turn: accepted (awaited ``add_messages``), sent (``save()``) a turn later,
  given its receipt (``save_durably``, awaited) a turn after that, the ESME's
  acknowledgement merged into it for 44% of them and a turn later for the rest (the
  shares the hub showed, 2026-12-02). CPU us/rec is the CPU of a message's whole life in
  the store, the writer thread and the loop together; p50 / p99 are the turns' waits.

Each for ``synchronous`` FULL (fsync at every commit: survives a power cut) and
NORMAL (survives a process kill, not a power cut), and the add rows also with
``commit_interval`` 0.002 (the writer waits 2 ms for more once idle) to show whether
waiting buys anything. Columns: records (or operations) per second over the whole
run; commits per second and records per commit from the store's ``commits``
counter; p50 / p99 of each awaited call in ms; process CPU (all threads, user +
system) per record in microseconds. With ``--repeat N`` everything runs N times
(in order, so a noisy neighbour hits every row alike) and each row shows the run
with the median records/s. The first lines printed give the load average before
and after: the figures mean little on a machine that was busy with something else.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn

if __name__ == "__main__" and not __package__:  # python benchmarks/store.py
    _ROOT = Path(__file__).resolve().parent.parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"]
    sys.path.insert(0, str(_ROOT))

from smpphub.router.lifecycle import MessageRow, State  # noqa: E402
from smpphub.router.store.sqlite import SqliteStore  # noqa: E402

PDU = bytes(range(60))  # the size of an encoded submit_sm with a 40-octet text
RECEIPT = bytes(range(150))  # the size of an encoded deliver_sm carrying a receipt's text
UPSTREAMS = ["smsc-a", "smsc-b"]


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def make_rows(n: int) -> list[MessageRow]:
    """Accepted messages as the acceptor stores them: QUEUED, due now, a receipt asked for."""
    now = time.time()
    return [
        MessageRow(id=f"{i:016x}", account="acme", pdu=PDU, route=list(UPSTREAMS), state=State.QUEUED, due=now,
                   created_at=now, updated_at=now, registered_delivery=1)
        for i in range(n)
    ]


def pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] * 1000


class Bench:
    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.runs: list[dict] = []
        self.n = 0

    def path(self) -> str:
        self.n += 1
        return os.path.join(self.directory, f"bench{self.n}.db")

    async def open(self, sync: str, interval: float = 0.0) -> SqliteStore:
        store = SqliteStore(self.path(), synchronous=sync, commit_interval=interval)
        await store.open()
        return store

    def row(self, op: str, sync: str, callers: int, per_call: int, interval: float, n: int, elapsed: float,
            commits: int, lat: list[float], used_cpu: float) -> None:
        lat.sort()
        self.runs.append(dict(
            op=op, sync=sync.upper(), callers=callers, per_call=per_call, interval=interval, n=n,
            rate=n / elapsed, commits=commits / elapsed, per_commit=n / commits if commits else float("nan"),
            p50=pct(lat, 0.50), p99=pct(lat, 0.99), cpu=used_cpu / n * 1e6,
        ))
        r = self.runs[-1]
        print(f"  {op:<7} {r['sync']:<6} callers={callers:<5} per_call={per_call:<4} interval={interval:<6} "
              f"{r['rate']:>10,.0f}/s  {r['commits']:>7,.0f} commits/s", file=sys.stderr, flush=True)

    async def add(self, sync: str, callers: int, per_call: int, n: int, interval: float = 0.0) -> None:
        store = await self.open(sync, interval)
        rows = make_rows(n)
        share = n // callers
        lat: list[float] = []
        clock = time.perf_counter

        async def caller(k: int) -> None:
            mine = rows[k * share:(k + 1) * share]
            for j in range(0, len(mine), per_call):
                chunk = mine[j:j + per_call]
                t = clock()
                await store.add_messages(chunk)
                lat.append(clock() - t)

        c0, cpu0, t0 = store.commits, cpu(), clock()
        await asyncio.gather(*(caller(k) for k in range(callers)))
        elapsed, used, commits = clock() - t0, cpu() - cpu0, store.commits - c0
        await store.close()
        self.row("add", sync, callers, per_call, interval, share * callers, elapsed, commits, lat, used)

    async def lifecycle(self, sync: str, n: int, turn: int) -> None:
        """save, lookup and receipt rows on one store, in the order a message lives them."""
        store = await self.open(sync)
        rows = make_rows(n)
        for j in range(0, n, 1000):
            await store.add_messages(rows[j:j + 1000])
        clock = time.perf_counter

        # save: turn k takes rows[k] (IN_FLIGHT) and hears the answers for rows[k - 1] (SENT)
        turns = [rows[j:j + turn] for j in range(0, n, turn)] + [[]]
        c0, cpu0, t0 = store.commits, cpu(), clock()
        answered: list[MessageRow] = []
        for taken in turns:
            t = time.time()
            for r in taken:
                r.state, r.upstream, r.updated_at = State.IN_FLIGHT, r.route[r.route_index], t
            for r in answered:
                r.state, r.upstream_id, r.attempts, r.updated_at = State.SENT, f"U{r.id}", r.attempts + 1, t
            store.save(taken + answered)
            answered = taken
            await asyncio.sleep(0)
        t1 = clock()
        await store.flush()
        elapsed, used, commits = clock() - t0, cpu() - cpu0, store.commits - c0
        self.row("save", sync, 1, turn, 0.0, n, elapsed, commits, [clock() - t1], used)

        callers = 100
        many = min(n, 100_000)
        share = many // callers

        async def lookup(k: int, lat: list[float]) -> None:
            for r in rows[k * share:(k + 1) * share]:
                t = clock()
                found = await store.find_by_upstream_id(r.upstream or "", f"U{r.id}")
                lat.append(clock() - t)
                assert found is not None and found.id == r.id

        async def receipt(k: int, lat: list[float]) -> None:
            for r in rows[k * share:(k + 1) * share]:
                r.state, r.receipt_owed, r.receipt, r.updated_at = State.DELIVERED, True, RECEIPT, time.time()
                t = clock()
                await store.save_durably([r])
                lat.append(clock() - t)
                r.receipt_owed, r.receipt, r.updated_at = False, b"", time.time()  # the ESME acked it
                store.save([r])

        for op, work in (("lookup", lookup), ("receipt", receipt)):
            lat: list[float] = []
            c0, cpu0, t0 = store.commits, cpu(), clock()
            await asyncio.gather(*(work(k, lat) for k in range(callers)))
            await store.flush()
            elapsed, used, commits = clock() - t0, cpu() - cpu0, store.commits - c0
            self.row(op, sync, callers, 1, 0.0, share * callers, elapsed, commits, lat, used)
        counts, owed = await store.counts(), len(await store.owed_receipts())
        await store.close()
        # what was measured must be what was meant
        if counts.get("delivered", 0) != share * callers or owed or store.errors:
            raise RuntimeError(f"the store ended with {counts}, {owed} receipts owed, {store.errors} errors")

    async def messages(self, sync: str, n: int, turn: int) -> None:
        """A message's writes as the hub makes them, turn by turn (see the module docstring)."""
        store = await self.open(sync)
        rows = make_rows(n)
        batches = [rows[j:j + turn] for j in range(0, n, turn)]
        merged = int(turn * 0.44)  # acknowledged before their receipt's save went to the writer
        lat: list[float] = []
        clock = time.perf_counter
        c0, cpu0, t0 = store.commits, cpu(), clock()
        for k in range(len(batches) + 3):
            t = time.time()
            waits = [asyncio.ensure_future(store.add_messages(batches[k]))] if k < len(batches) else []
            if 0 <= k - 1 < len(batches):
                for r in batches[k - 1]:
                    r.state, r.upstream, r.upstream_id, r.attempts = State.SENT, "smsc-a", f"U{r.id}", 1
                    r.updated_at = t
                store.save(batches[k - 1])
            if 0 <= k - 2 < len(batches):
                for r in batches[k - 2]:
                    r.state, r.receipt_owed, r.receipt, r.updated_at = State.DELIVERED, True, RECEIPT, t
                waits.append(store.save_durably(batches[k - 2]))
                for r in batches[k - 2][:merged]:
                    r.receipt_owed = False
                store.save(batches[k - 2][:merged])
            if 0 <= k - 3 < len(batches):
                for r in batches[k - 3][merged:]:
                    r.receipt_owed = False
                store.save(batches[k - 3][merged:])
            started = clock()
            await asyncio.gather(*waits)
            lat.append(clock() - started)
        await store.flush()
        elapsed, used, commits = clock() - t0, cpu() - cpu0, store.commits - c0
        counts, owed = await store.counts(), len(await store.owed_receipts())
        await store.close()
        if counts != {"delivered": n} or owed or store.errors:
            raise RuntimeError(f"the store ended with {counts}, {owed} receipts owed, {store.errors} errors")
        self.row("message", sync, 1, turn, 0.0, n, elapsed, commits, lat, used)

    @property
    def rows(self) -> list[dict]:
        """One row per configuration: the run with the median records/s of its repetitions."""
        groups: dict[tuple, list[dict]] = {}
        for r in self.runs:
            groups.setdefault((r["op"], r["sync"], r["callers"], r["per_call"], r["interval"]), []).append(r)
        return [sorted(g, key=lambda r: r["rate"])[len(g) // 2] for g in groups.values()]

    def table(self) -> str:
        head = ("op", "sync", "callers", "rec/call", "wait ms", "records", "records/s", "commits/s", "rec/commit",
                "p50 ms", "p99 ms", "CPU us/rec")
        lines = [head]
        for r in self.rows:
            lines.append((
                r["op"], r["sync"], str(r["callers"]), str(r["per_call"]), f"{r['interval'] * 1000:g}", f"{r['n']:,}",
                f"{r['rate']:,.0f}", f"{r['commits']:,.0f}", f"{r['per_commit']:,.1f}",
                f"{r['p50']:.2f}", f"{r['p99']:.2f}", f"{r['cpu']:.1f}",
            ))
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        out = []
        for k, line in enumerate(lines):
            cells = (c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
            out.append("| " + " | ".join(cells) + " |")
            if k == 0:
                out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        return "\n".join(out)


async def run(args: argparse.Namespace, bench: Bench) -> None:
    syncs, callers, intervals = args.sync, args.callers, [x / 1000 for x in args.intervals]
    for _ in range(args.repeat):
        for sync in syncs:
            for interval in intervals:
                for c in callers:
                    n = min(args.records, args.serial_records) if c == 1 else args.records
                    await bench.add(sync, c, 1, n - n % c, interval)
                await bench.add(sync, 1, 100, args.records, interval)
            await bench.lifecycle(sync, args.records, args.turn)
            await bench.messages(sync, args.records, min(args.turn, 256))


class _Parser(argparse.ArgumentParser):
    """Reports a bad command line on one line (exit 2), like every other bad argument."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def _positives(text: str) -> list[int]:
    return [_positive(part.strip()) for part in text.split(",")]


def _millis(text: str) -> list[float]:
    out = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not a number of ms") from None
        if not value >= 0:  # NaN too
            raise argparse.ArgumentTypeError(f"{part.strip()} is not >= 0")
        out.append(value)
    return out


def _syncs(text: str) -> list[str]:
    out = [part.strip().lower() for part in text.split(",")]
    for sync in out:
        if sync not in ("full", "normal"):
            raise argparse.ArgumentTypeError(f"{sync!r} is neither full nor normal")
    return out


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="python -m smpphub.bench.store", description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=_positive, default=200_000)
    p.add_argument("--serial-records", type=_positive, default=10_000,
                   help="records for the one-caller, one-per-call rows")
    p.add_argument("--callers", type=_positives, default="1,100,1000", help="comma-separated caller counts")
    p.add_argument("--turn", type=_positive, default=1000, help="messages taken per loop turn in the save row")
    p.add_argument("--sync", type=_syncs, default="full,normal", help="full, normal or both")
    p.add_argument("--intervals", type=_millis, default="0,2", help="commit_interval values to try, in ms")
    p.add_argument("--repeat", type=_positive, default=1,
                   help="run everything this many times; each row is the median run")
    p.add_argument("--dir", default=None, help="where the database files go (default: a new temp directory)")
    p.add_argument("--no-uvloop", action="store_true")
    p.add_argument("--quick", action="store_true", help="20,000 records, 1,000 serial: a smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.records, args.serial_records = 20_000, 1_000
    if args.dir is not None and not os.path.isdir(args.dir):
        p.error(f"--dir: {args.dir} is not a folder")
    if max(args.callers) > args.records:
        p.error(f"--callers: {max(args.callers)} callers for {args.records} records leaves some with none")
    loop_name = "asyncio"
    runner = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop

            runner, loop_name = uvloop.run, "uvloop"
        except ImportError:
            pass
    load_before = os.getloadavg()
    # the databases go with the directory however the run ends (an error, Ctrl-C)
    with tempfile.TemporaryDirectory(prefix="smpphub-store-", dir=args.dir, ignore_cleanup_errors=True) as directory:
        bench = Bench(directory)
        runner(run(args, bench))
    print(f"python -m smpphub.bench.store {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip())
    print(f"SQLite {__import__('sqlite3').sqlite_version}, Python {sys.version.split()[0]}, {loop_name}, "
          f"{os.cpu_count()} CPUs, files in {directory} (removed)")
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (1 min)")
    print(bench.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
