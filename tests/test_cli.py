"""The `smpphub` command: send, demo and hash-password working (their failures: test_cli_errors.py)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from hubkit import simulator

ROOT = Path(__file__).resolve().parent.parent


async def smpphub(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "smpphub", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


async def test_send_waits_for_the_receipt():
    smsc = await simulator(receipts={"delay": {"kind": "fixed", "ms": 20}})
    try:
        code, out, err = await smpphub("send", "--target", f"127.0.0.1:{smsc.port}", "--system-id", "me", "--password", "pw",
                                       "--to", "447700900123", "--from", "Acme", "--text", "hello " * 40, "--dlr")
        assert code == 0, err
        assert "submitted 2 segment(s)" in out
        assert out.count("DELIVRD") == 2
        (message,) = smsc.sim.messages
        assert message.text == "hello " * 40 and message.source_addr == "Acme"
    finally:
        await smsc.close()


async def test_send_fails_on_an_undelivered_receipt_and_on_a_refusal():
    smsc = await simulator(receipts={"final_states": {"UNDELIV": 1}}, errors={"rules": [{"destination": "999$", "status": "ESME_RINVDSTADR"}]})
    try:
        common = ["send", "--target", f"127.0.0.1:{smsc.port}", "--system-id", "me", "--password", "pw", "--text", "x"]
        code, out, _ = await smpphub(*common, "--to", "447700900123", "--dlr")
        assert code == 1 and "UNDELIV" in out
        code, _, err = await smpphub(*common, "--to", "447700900999")
        assert code == 1 and "ESME_RINVDSTADR" in err
    finally:
        await smsc.close()


async def test_hash_password_output_verifies():
    from smpphub.router.auth import verify_password

    code, out, _ = await smpphub("hash-password", "s3cret")
    assert code == 0 and verify_password("s3cret", out.strip())


def test_hash_password_reads_a_line_of_stdin(capsys, monkeypatch):
    import io

    from smpphub.cli import main
    from smpphub.router.auth import verify_password

    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\r\n"))
    assert main(["hash-password"]) == 0
    assert verify_password("s3cret", capsys.readouterr().out.strip())


async def test_demo_runs_end_to_end():
    code, out, err = await smpphub("demo", "--port", "0", "--duration", "1", timeout=90)
    assert code == 0, err
    assert "tour done" in out and "receipt" in out and "MO from" in out
