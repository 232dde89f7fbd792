"""The load generator against the simulator and against our own server, its histogram,
its progress line and its command line."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from netkit import free_port
from tlskit import self_signed

from smpphub.bench import cli
from smpphub.bench.histogram import RELATIVE_ERROR, Histogram, HistogramData
from smpphub.bench.loadgen import (
    BenchResult,
    DestinationPattern,
    LoadOptions,
    Progress,
    Schedule,
    Tick,
    parse_mix,
    parse_ramp,
    run_bench,
)

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


@pytest.fixture
def sim_process():
    """A simulator in its own process (the load generator runs its own event loop)."""

    def start(*extra: str):
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "smpphub", "simulate", "--listen", f"{HOST}:{port}", "--quiet", *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
        assert b"listening" in proc.stdout.readline()
        procs.append(proc)
        return port

    procs: list[subprocess.Popen] = []
    yield start
    for p in procs:
        p.terminate()
        p.wait(10)


def test_counts_balance_and_receipts_are_counted_exactly(sim_process, tmp_path):
    config = tmp_path / "sim.toml"
    config.write_text('seed = 4\n[errors.probabilities]\nESME_RTHROTTLED = 0.1\n')
    port = sim_process("--config", str(config))
    result = run_bench(LoadOptions(host=HOST, port=port, system_id="lg", password="pw", count=3000, binds=2, window=50,
                                   dlr=True, progress=False))
    throttled = result.errors.get("ESME_RTHROTTLED", 0)
    assert result.sent == 3000
    assert result.acked + sum(result.errors.values()) == result.sent
    assert result.throttled == throttled and 150 <= throttled <= 450
    assert result.receipts == result.acked and result.duplicate_receipts == 0
    assert result.latency_us["count"] == 3000 and result.latency_us["p99"] >= result.latency_us["p50"] > 0
    assert result.receipt_latency_us["count"] == result.acked
    # the JSON the command writes decodes into the schema
    path = tmp_path / "r.json"
    path.write_bytes(msgspec.json.encode(result))
    again = msgspec.json.decode(path.read_bytes(), type=BenchResult)
    assert again.acked == result.acked and Histogram.from_data(again.latency_histogram).total == 3000


def test_message_mix_sends_long_and_ucs2(sim_process):
    port = sim_process()
    result = run_bench(LoadOptions(host=HOST, port=port, system_id="lg", password="pw", count=30, mix={"long": 1, "ucs2": 1},
                                   progress=False))
    assert result.sent > 30  # long messages are several submit_sm each
    assert not result.errors


def test_schedule_and_ramp():
    s = Schedule(100, None)
    assert s.due(100) == pytest.approx(1.0)
    ramp = Schedule(None, (100, 300, 10))
    assert ramp.due(0) == 0
    assert ramp.count_for(10) == 2000  # the average rate 200/s over 10 s
    assert ramp.due(2000) == pytest.approx(10.0)
    assert ramp.due(2300) == pytest.approx(11.0)  # after the ramp, at the final rate
    assert parse_ramp("1000:20000:60s") == (1000, 20000, 60)
    assert parse_ramp("10:20:2m") == (10, 20, 120)
    for bad in ("1000-2000", "1:2:0s", "a:b:c"):
        with pytest.raises(ValueError):
            parse_ramp(bad)


def test_mix_and_destinations():
    assert parse_mix("gsm:70,ucs2:20,long:10") == {"gsm": 70, "ucs2": 20, "long": 10}
    for bad in ("klingon:1", "gsm:x", "gsm:-1", "gsm:0"):
        with pytest.raises(ValueError):
            parse_mix(bad)
    d = DestinationPattern("4477009{00000-00009}", rng=random.Random(1))
    assert {d.next() for _ in range(200)} == {f"447700900{i:03d}"[:12] for i in range(10)}
    with pytest.raises(ValueError):
        DestinationPattern("44{9-1}")


def test_histogram_percentiles_within_the_stated_error():
    rng = random.Random(7)
    values = [int(rng.lognormvariate(7, 1.5)) for _ in range(20000)]
    h = Histogram()
    for v in values:
        h.record(v)
    exact = sorted(values)
    for p in (50, 90, 99, 99.9):
        true = exact[max(0, int(-(-len(exact) * p // 100)) - 1)]
        assert abs(h.percentile(p) - true) <= max(1, true * RELATIVE_ERROR)
    assert h.percentile(100) == max(values) and h.min == min(values)
    a, b = Histogram(), Histogram()
    for v in values[:10000]:
        a.record(v)
    for v in values[10000:]:
        b.record(v)
    a.merge(b)
    assert a.counts == h.counts and a.total == h.total and a.max == h.max


@pytest.mark.parametrize(
    "args",
    [
        ["--target", "nohost", "--count", "1"],
        ["--target", "127.0.0.1:2775"],
        ["--target", "127.0.0.1:2775", "--count", "10", "--rate", "-5"],
        ["--target", "127.0.0.1:2775", "--count", "10", "--ramp", "fast"],
        ["--target", "127.0.0.1:2775", "--count", "10", "--text-mix", "gsm:1,morse:2"],
        ["--target", "127.0.0.1:2775", "--count", "10", "--rate", "5", "--ramp", "1:2:3s"],
        ["--target", "127.0.0.1:2775", "--count", "10", "--window", "0"],
        ["--target", "127.0.0.1:2775", "--count", "10", "--to", "44{1-"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(args):
    proc = subprocess.run([sys.executable, "-m", "smpphub", "bench", "--system-id", "a", "--password", "b", *args],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1


def test_compare_smoke(capsys):
    from smpphub.bench.compare import main

    assert main(["--servers", "raw,ours,simulator", "--count", "500", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[0].strip(): line for line in out.splitlines() if "|" in line}
    for name in ("raw", "ours", "simulator"):
        assert float(rows[name].split("|")[1].replace(",", "")) > 0
    assert main(["--servers", "bogus"]) == 2


# --- against our own server, in a thread: errors and receipts are exact --------------------------


class Smsc:
    """``smppcore.serve`` on a loop of its own (the load generator runs its own loop).

    Every ``throttle_every``-th submit_sm is answered ESME_RTHROTTLED; the others get a
    message_id and, when asked, a receipt, sent on the *next* bound connection (so with
    several binds it reaches another bind than the one that sent the message, as real
    SMSCs do). ``drop_at``: the connection that receives that submit_sm is aborted
    without an answer, once. ``stray_receipt``: with the first submit, a receipt for an id
    nobody was given; ``late_receipt_of``: that submit's receipt waits ``late_by`` seconds more.
    """

    def __init__(self, throttle_every: int = 0, drop_at: int = 0, silent_every: int = 0, nack_every: int = 0,
                 enquire_every: int = 0, enquire_until: int = 0, receipt_delay: float = 0.0, ssl=None,
                 stray_receipt: bool = False, late_receipt_of: int = 0, late_by: float = 0.0) -> None:
        import asyncio
        import threading

        import smppcore

        self.submits = 0
        self.receipts_sent = 0
        self.enquiries_answered = 0
        self.system_types: list[str] = []
        self.receipts_answered = 0
        self.segments: dict[tuple[str, int], int] = {}
        outer = self

        class Handler(smppcore.SmscHandler):
            def authenticate(self, conn, bind):
                outer.system_types.append(bind.system_type)
                return 0

            def handle(self, conn, pdu):
                if pdu.command_id != smppcore.CommandId.SUBMIT_SM:
                    return super().handle(conn, pdu)
                outer.submits += 1
                n = outer.submits
                if pdu.esm_class & 0x40:  # a segment: count it under (destination, reference)
                    key = (pdu.destination_addr, pdu.short_message[3])
                    outer.segments[key] = outer.segments.get(key, 0) + 1
                if n == outer.drop_at:
                    conn.abort()
                    return None
                if outer.enquire_every and n <= outer.enquire_until and n % outer.enquire_every == 0:
                    conn._spawn(outer._enquire(conn))
                if outer.silent_every and n % outer.silent_every == 0:
                    return None  # never answered
                if outer.nack_every and n % outer.nack_every == 0:
                    return smppcore.GenericNack(pdu.sequence_number, smppcore.CommandStatus.ESME_RSYSERR)
                if outer.throttle_every and n % outer.throttle_every == 0:
                    return pdu.make_response(command_status=smppcore.CommandStatus.ESME_RTHROTTLED)
                resp = super().handle(conn, pdu)
                if pdu.registered_delivery & 1:
                    if outer.stray_receipt and n == 1:
                        conn._spawn(outer._receipt(conn, pdu, "ffffffff", 0.0))
                    delay = outer.receipt_delay + (outer.late_by if n == outer.late_receipt_of else 0.0)
                    conn._spawn(outer._receipt(conn, pdu, resp.message_id, delay))
                return resp

        self.drop_at = drop_at
        self.throttle_every = throttle_every
        self.silent_every = silent_every
        self.nack_every = nack_every
        self.enquire_every = enquire_every
        self.enquire_until = enquire_until
        self.receipt_delay = receipt_delay
        self.stray_receipt, self.late_receipt_of, self.late_by = stray_receipt, late_receipt_of, late_by
        self.ssl = ssl
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(Handler(),), daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _run(self, handler) -> None:
        import asyncio

        import smppcore

        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(smppcore.serve(handler, HOST, 0, ssl=self.ssl))
        self.port = self.server.port
        self.ready.set()
        self.loop.run_forever()

    async def _receipt(self, conn, pdu, message_id: str, delay: float) -> None:
        from datetime import datetime

        import asyncio

        from smppcore import MessageState
        from smppcore.receipt import build_receipt

        if delay:
            await asyncio.sleep(delay)
        conns = sorted(self.server.bound_connections(), key=id)
        target = conns[(conns.index(conn) + 1) % len(conns)] if conn in conns else conn
        now = datetime.now()
        receipt = build_receipt(message_id=message_id, state=MessageState.DELIVERED, source_addr=pdu.source_addr,
                                destination_addr=pdu.destination_addr, submit_date=now, done_date=now,
                                text=pdu.short_message)
        self.receipts_sent += 1
        answer = await target.send(receipt)
        # counted by the answer itself: this task may be cancelled (its connection closing
        # at the end of the run) after the answer came and before the task resumed
        answer.add_done_callback(self._answered)

    def _answered(self, answer) -> None:
        if not answer.cancelled() and answer.exception() is None and answer.result().command_status == 0:
            self.receipts_answered += 1

    async def _enquire(self, conn) -> None:
        import smppcore

        await conn.request(smppcore.EnquireLink())
        self.enquiries_answered += 1

    def close(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.server.close(1), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def smsc():
    """A factory of crafted :class:`Smsc` servers, in place of the simulator plugin's ``smsc`` in this module.

    It differs on purpose: these tests check the load generator's counts against faults
    placed exactly (every n-th submit throttled, nacked or unanswered, one connection cut,
    receipts sent on the other bind), faults the simulator is not scripted for here, and
    they read what each crafted server counted.
    """
    servers: list[Smsc] = []

    def start(**kwargs) -> Smsc:
        servers.append(Smsc(**kwargs))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_every_tenth_throttled_counted_exactly_and_json_decodes(smsc, tmp_path, capsys):
    server = smsc(throttle_every=10)
    path = tmp_path / "run.json"
    code = cli.main(["--target", f"{HOST}:{server.port}", "--system-id", "lg", "--password", "secret", "--count", "2000",
                     "--binds", "2", "--window", "20", "--dlr", "--json", str(path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "ESME_RTHROTTLED 200" in out and "submit_sm -> resp" in out and "submit -> receipt" in out
    r = msgspec.json.decode(path.read_bytes(), type=BenchResult)
    assert server.submits == 2000
    assert r.sent == r.messages == 2000
    assert r.errors == {"ESME_RTHROTTLED": 200} and r.throttled == 200
    assert r.acked == 1800 and r.acked + sum(r.errors.values()) == r.sent
    assert r.receipts == server.receipts_sent == 1800 and r.duplicate_receipts == 0 and r.unmatched_receipts == 0
    # each receipt matched to its submit, though it came back on the other bind
    assert r.receipt_latency_us["count"] == 1800
    # and each one answered ESME_ROK (the answers may still be on their way when the run ends)
    import time

    deadline = time.monotonic() + 10
    while server.receipts_answered < 1800 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.receipts_answered == 1800
    assert r.latency_us["count"] == 2000 and 0 < r.latency_us["p50"] <= r.latency_us["p99"] <= r.latency_us["max"]
    assert Histogram.from_data(r.latency_histogram).total == 2000
    assert sum(s.sent for s in r.timeline) == 2000 and sum(s.throttled for s in r.timeline) == 200
    assert sum(s.receipts for s in r.timeline) == 1800
    assert r.mode == "closed" and r.options.password == ""  # the password stays out of the file
    assert r.environment["python"] and "uvloop" in r.environment and "cpu" in r.environment


def test_two_workers_merge_counts_and_match_receipts_across_them(smsc):
    server = smsc(throttle_every=10)
    r = run_bench(LoadOptions(host=HOST, port=server.port, system_id="lg", password="pw", count=1000, binds=2, workers=2,
                              window=10, dlr=True, progress=False))
    assert server.submits == r.sent == 1000
    assert r.errors == {"ESME_RTHROTTLED": 100} and r.acked == 900
    assert r.receipts == 900
    # every receipt went to the other worker's bind: matched when the results merged
    assert r.receipt_latency_us["count"] == 900 and r.unmatched_receipts == 0
    assert r.latency_us["count"] == 1000


def test_late_receipts_on_the_other_workers_bind_are_all_waited_for(smsc):
    # each receipt comes 1.5 s after its message, on the other worker's bind: each worker
    # waits for the run's receipts, not only its own, and a pause is not the end
    server = smsc(receipt_delay=1.5)
    r = run_bench(LoadOptions(host=HOST, port=server.port, system_id="lg", password="pw", count=200, binds=2, workers=2,
                              window=20, dlr=True, progress=False))
    assert r.acked == 200 and r.receipts == 200 and r.unmatched_receipts == 0
    assert r.receipt_latency_us["count"] == 200 and r.receipt_latency_us["p50"] >= 1_500_000


def test_a_receipt_for_an_unknown_id_does_not_end_the_wait_for_one_still_owed(smsc):
    # one receipt for an id nobody was given (as after a hub's kill: stored, its ack lost), and the
    # 20th message's receipt a second after the others: counting receipts against acks stopped one
    # short, and that receipt came after the figures were taken (the soak's "lost 1")
    server = smsc(stray_receipt=True, late_receipt_of=20, late_by=1.0)
    r = run_bench(LoadOptions(host=HOST, port=server.port, system_id="lg", password="pw", count=50, binds=1,
                              window=10, dlr=True, progress=False))
    assert r.acked == 50 and r.receipts == 51 and r.unmatched_receipts == 1 and r.unmatched_ids == ["ffffffff"]
    assert r.unreceipted == 0 and r.unreceipted_ids == [] and r.receipt_latency_us["count"] == 50


def test_a_dropped_connection_is_reconnected_and_counted(smsc):
    server = smsc(drop_at=300)
    r = run_bench(LoadOptions(host=HOST, port=server.port, system_id="lg", password="pw", count=1000, window=10,
                              progress=False))
    assert r.reconnects == 1
    assert r.sent == 1000
    lost = r.errors.get("ConnectionClosed", 0)
    assert 1 <= lost <= 10 and set(r.errors) == {"ConnectionClosed"}
    assert r.acked + lost == r.sent


def test_open_loop_rate_from_the_send_timestamps(smsc):
    server = smsc()
    r = run_bench(LoadOptions(host=HOST, port=server.port, system_id="lg", password="pw", duration=2.0, rate=500,
                              binds=2, progress=False))
    assert r.mode == "open" and r.sent == 1000 and not r.errors
    # the generator's own accuracy: the rate between its first and last write
    assert abs(r.send_rate - 500) / 500 < 0.05
    assert r.first_send < 0.05 and 1.9 < r.last_send < 2.1
    assert [s.target_rate for s in r.timeline[:2]] == [500, 500]
    assert r.service_us["count"] == 1000


def test_open_loop_reports_how_late_each_message_was_written(smsc):
    server = smsc()
    r = run_bench(LoadOptions(host=HOST, port=server.port, system_id="lg", password="pw", count=400, rate=2000,
                              progress=False))
    assert r.sent == 400 and not r.errors
    # written on time: a millisecond timer, nothing queued behind a full window
    assert r.send_lag_us["count"] == 400 and r.send_lag_us["p50"] < 2000
    assert r.service_us["count"] == 400 and r.latency_us["p50"] >= r.service_us["p50"]


def test_unanswered_submits_time_out_and_generic_nacks_are_errors(smsc):
    server = smsc(silent_every=50, nack_every=7)
    r = run_bench(LoadOptions(host=HOST, port=server.port, system_id="lg", password="pw", count=500, window=20,
                              response_timeout=1.0, progress=False))
    assert server.submits == r.sent == 500
    nacked = sum(1 for n in range(1, 501) if n % 7 == 0 and n % 50)
    assert r.errors == {"ResponseTimeout": 10, "ESME_RSYSERR": nacked}
    assert r.acked + sum(r.errors.values()) == r.sent


def test_the_session_still_answers_the_servers_enquire_link_mid_run(smsc):
    # (none near the end: the run may be over, and the binds gone, before one is answered)
    server = smsc(enquire_every=100, enquire_until=1500)
    r = run_bench(LoadOptions(host=HOST, port=server.port, system_id="lg", password="pw", count=3000, binds=2,
                              progress=False))
    assert r.acked == 3000 and not r.errors
    assert server.enquiries_answered == 15


def test_a_long_message_goes_whole_even_through_a_window_smaller_than_it(smsc):
    server = smsc()
    r = run_bench(LoadOptions(host=HOST, port=server.port, system_id="lg", password="pw", count=60, window=2,
                              mix={"long": 1, "gsm": 1}, progress=False))
    assert not r.errors and r.messages == 60 and r.sent == server.submits
    assert server.segments and set(server.segments.values()) == {3}  # every segment of every long message


@pytest.fixture(scope="module")
def tls_server_context(tmp_path_factory):
    """A self-signed certificate for localhost / 127.0.0.1: (server context, its PEM file)."""
    server_ctx, _, cert = self_signed(tmp_path_factory.mktemp("tls"))
    return server_ctx, cert


def test_tls_verified_against_a_ca_file_or_not_at_all(smsc, tls_server_context, capsys):
    ctx, cert = tls_server_context
    server = smsc(ssl=ctx)
    r = run_bench(LoadOptions(host=HOST, port=server.port, system_id="lg", password="pw", count=500, binds=2, tls=True,
                              tls_ca=cert, progress=False))
    assert r.acked == 500 and not r.errors
    r = run_bench(LoadOptions(host=HOST, port=server.port, system_id="lg", password="pw", count=100, tls=True,
                              tls_insecure=True, progress=False))
    assert r.acked == 100
    # verified against the system's CAs, a self-signed certificate is refused: one line, exit 1
    code = cli.main(["--target", f"{HOST}:{server.port}", "--system-id", "a", "--password", "b", "--count", "10", "--tls"])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"TLS with {HOST}:{server.port}: certificate refused" in err, err
    assert server.submits == 600


def test_the_bind_carries_the_system_type(smsc):
    server = smsc()
    code = cli.main(["--target", f"{HOST}:{server.port}", "--system-id", "a", "--password", "b", "--count", "20",
                     "--binds", "2", "--system-type", "VMA", "--quiet"])
    assert code == 0 and server.system_types == ["VMA", "VMA"] and server.submits == 20


def test_bench_error_when_nobody_listens():
    from smpphub.bench.loadgen import BenchError

    port = free_port()
    with pytest.raises(BenchError, match=f"cannot connect to {HOST}:{port}: Connection refused"):
        run_bench(LoadOptions(host=HOST, port=port, system_id="lg", password="pw", count=10, progress=False))


# --- progress, histogram data, command line ---------------------------------------------------


def test_progress_line_waits_for_every_worker():
    import io

    stream = io.StringIO()
    p = Progress(LoadOptions(host=HOST, port=1, system_id="a", password="b", duration=10.0), workers=2, stream=stream)
    h = Histogram()
    for v in range(1000, 2000):
        h.record(v)
    p.add(Tick(worker=0, second=0, sent_total=100, errors_total=1, receipts_total=0, sent=100, hist=h.data()))
    assert stream.getvalue() == ""
    p.add(Tick(worker=1, second=0, sent_total=150, errors_total=2, receipts_total=0, sent=150, hist=None))
    line = stream.getvalue()
    assert line.startswith("\r") and "1s / 10s, 9s left" in line and "250 msg/s" in line and "errors 3" in line
    assert "p99    1.99 ms" in line
    p.close()
    assert stream.getvalue().endswith("\n")


def test_histogram_data_round_trip_and_bad_data():
    rng = random.Random(3)
    h = Histogram()
    for _ in range(5000):
        h.record(rng.randrange(0, 10**9))
    data = msgspec.json.decode(msgspec.json.encode(h.data()), type=HistogramData)
    again = Histogram.from_data(data)
    assert again.counts == h.counts and again.total == h.total and again.sum == h.sum
    for p in (50, 90, 99, 99.9, 100):
        assert again.percentile(p) == h.percentile(p)
    empty = Histogram()
    assert empty.percentile(99) == 0 and empty.summary()["count"] == 0


def test_record_many_is_record_in_bulk():
    rng = random.Random(5)
    values = [int(10 ** rng.uniform(0, 8)) for _ in range(20000)] + [0, -3]
    one, bulk = Histogram(), Histogram()
    for v in values:
        one.record(v)
    bulk.record_many(values[:7000])
    bulk.record_many(values[7000:])
    assert (bulk.counts, bulk.total, bulk.min, bulk.max, bulk.sum) == (one.counts, one.total, one.min, one.max, one.sum)


def test_histogram_error_bound_over_many_magnitudes():
    rng = random.Random(11)
    values = [int(10 ** rng.uniform(0, 9)) for _ in range(30000)]
    h = Histogram()
    for v in values:
        h.record(v)
    exact = sorted(values)
    for p in (1, 10, 50, 75, 90, 99, 99.9, 99.99):
        true = exact[max(0, -(-len(exact) * p // 100) - 1)] if isinstance(p, int) else exact[max(0, int(-(-len(exact) * p // 100)) - 1)]
        assert abs(h.percentile(p) - true) <= max(1, true * RELATIVE_ERROR), p
    assert h.percentile(100) == max(values) and h.percentile(0) == min(values)


@pytest.mark.parametrize(
    "args, says",
    [
        (["--count", "abc"], "--count"),
        (["--count", "10", "--target", None], "--target"),
        (["--count", "10", "--bogus"], "unrecognized"),
        (["--count", "10", "--duration", "-3s"], "--duration"),
        (["--count", "10", "--duration=-3s"], "--duration"),
        (["--duration", "soon"], "--duration"),
        (["--count", "10", "--rate", "-5"], "--rate"),
        (["--count", "10", "--rate", "fast"], "--rate"),
        (["--count", "10", "--ramp", "1000:20000"], "--ramp"),
        (["--count", "10", "--text-mix", "gsm:70,klingon:30"], "klingon"),
        (["--count", "10", "--binds", "2", "--workers", "3"], "--workers"),
        (["--count", "10", "--bind", "tx", "--dlr"], "--dlr"),
        (["--count", "10", "--to-file", "/nonexistent/numbers.txt"], "--to-file"),
        (["--count", "10", "--json", "/nonexistent/dir/run.json"], "--json"),
        (["--count", "0"], "--count"),
        ([], "--count N or --duration"),
        (["--count", "10", "--tls-ca", "/nonexistent/ca.pem"], "--tls-ca"),
        (["--count", "10", "--system-type", "x" * 13], "--system-type"),
        (["--count", "10", "--tls-ca", __file__, "--tls-insecure"], "--tls-insecure"),
    ],
)
def test_cli_bad_arguments_one_line_exit_2(args, says, capsys):
    base = {"--target": "127.0.0.1:2775", "--system-id": "a", "--password": "b"}
    if "--target" in args:
        i = args.index("--target")
        base.pop("--target")
        args = args[:i] + args[i + 2:]
    argv = [x for k, v in base.items() for x in (k, v)] + args
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and says in err, err


def test_plot_without_matplotlib_is_one_line_exit_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    code = cli.main(["--target", "127.0.0.1:2775", "--system-id", "a", "--password", "b", "--count", "10",
                     "--plot", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "matplotlib" in err
