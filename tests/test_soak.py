"""The soak command, short (CI's smoke run): every phase runs, the table prints, nothing is lost.

The real soak is ``python -m smpphub.bench.soak --duration 10m`` by hand (its figures
are in benchmarks/results/*-soak.txt and the README); here the same schedule is
squeezed into a few seconds, so the per-phase rates mean little, but every fault and
attack is started and stopped once, the hub is SIGKILLed and restarted, and the end
to end count (acked = distinct receipts) must hold.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from smpphub.bench.soak import PHASES

ROOT = Path(__file__).resolve().parent.parent


async def test_a_short_soak_runs_every_phase_and_loses_nothing(tmp_path):
    out = tmp_path / "soak.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "smpphub.bench.soak", "--duration", "6s", "--rate", "50", "--receipt-wait", "15s",
        "--json", str(out),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 240)
    table = stdout.decode()
    assert proc.returncode == 0, table + stderr.decode()
    report = json.loads(out.read_text())
    assert [p["name"] for p in report["phases"]] == PHASES
    assert all(p["name"] in table for p in report["phases"])
    assert report["lost"] == 0 and "lost 0" in table
    # every acked message has its receipt, or the hub holds it for the client's next bind, or it was
    # delivered to the SMSC the soak kills, which died before receipting it (the soak's own count of lost)
    assert report["acked"] > 0
    assert report["receipted"] + report["receipts_held"] + report["awaiting_receipt"] == report["acked"], report
    assert report["reused_ids"] == 0, report
    assert report["hub_starts"] == 2  # the SIGKILL and its restart
    assert report["hub_peak_rss_mib"] > 0
    attacks = report["attacks"]
    assert attacks["idle connections opened"] > 0 and attacks["password guesses answered"] > 0
    assert attacks["non-reader submits written"] > 0


async def test_bad_arguments_are_one_line():
    for args, fragment in ((["--duration", "soon"], "--duration"), (["--rate", "-5"], "--rate must be positive"),
                           (["--receipt-wait", "later"], "--receipt-wait"),
                           (["--rate", "fast"], "--rate: expected a number")):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "smpphub.bench.soak", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
        lines = stderr.decode().strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and fragment in lines[0], lines


def test_a_run_that_cannot_finish_says_why_with_the_hubs_last_lines(tmp_path, monkeypatch, capsys):
    from smpphub.bench import soak

    log = tmp_path / "hub.log"
    log.write_text("".join(f"line {i}\n" for i in range(50)))
    runner = soak.HubRunner(tmp_path / "hub.toml", log)

    async def failing_run(self):
        raise soak.SoakError(f"the load generator failed: closed during the bind{runner.log_tail(3)}")

    monkeypatch.setattr(soak.Soak, "run", failing_run)
    assert soak.main(["--duration", "1s"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("smpphub.bench.soak: the load generator failed: closed during the bind\n")
    assert err.splitlines()[-3:] == ["line 47", "line 48", "line 49"] and "Traceback" not in err
