"""``smpphub simulate``: configuration errors, and a standalone run stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from netkit import free_port

import smppcore
from smpphub.simulator.config import load_config

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
SIMULATE = [sys.executable, "-m", "smpphub", "simulate"]


def simulate(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([*SIMULATE, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


# ---- configuration errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    "content,expected",
    [
        # a broken TOML file
        ("window = [\n", r"sim\.toml: not valid TOML: .*line|sim\.toml: not valid TOML: .*end of document"),
        ("[receipts\nenabled = true\n", r"sim\.toml: not valid TOML"),
        # unknown keys, at the top and nested
        ("wndow = 5\n", r"sim\.toml: wndow: unknown key$"),
        ("[receipts]\ndelai = 1\n", r"sim\.toml: receipts\.delai: unknown key$"),
        ("[[accounts]]\nsystem_id = \"a\"\npassword = \"b\"\nbind_type = [\"tx\"]\n", r"accounts\[0\]\.bind_type: unknown key$"),
        # out-of-range values
        ("[throttle]\nper_bind = -1\n", r"sim\.toml: throttle\.per_bind: expected float >= 0"),
        ("window = 0\n", r"sim\.toml: window: expected int >= 1"),
        ("[errors.probabilities]\nESME_RSYSERR = 1.5\n", r"errors\.probabilities\.ESME_RSYSERR: expected a probability between 0 and 1, got 1\.5"),
        ("[chaos]\ndrop_probability = 2\n", r"chaos\.drop_probability: expected float <= 1"),
        ("[submit_latency]\nkind = \"uniform\"\nmin_ms = 10\nmax_ms = 5\n", r"submit_latency: min_ms \(10\) is above max_ms \(5\)"),
        # wrong types and values that mean nothing
        ("window = \"wide\"\n", r"window: expected int, got str"),
        ("[submit_latency]\nkind = \"gaussian\"\n", r"submit_latency\.kind: invalid enum value 'gaussian'"),
        ("[[errors.rules]]\ndestination = \"999$\"\nstatus = \"ESME_NOPE\"\n", r"errors\.rules\[0\]\.status: unknown command_status 'ESME_NOPE'"),
        ("[[errors.rules]]\ndestination = \"(\"\nstatus = \"ESME_RINVDSTADR\"\n", r"errors\.rules\[0\]\.destination: not a regular expression"),
        ("[receipts]\nfinal_states = { DELIVERD = 1 }\n", r"receipts\.final_states: 'DELIVERD' is not a final state"),
        ("[mo]\nrate = 5\n", r"mo\.templates: a rate needs at least one template"),
        ("listen = \"nohost\"\n", r"listen: expected HOST:PORT, got 'nohost'"),
    ],
)
def test_config_error_is_one_line_naming_it_and_exit_2(tmp_path, content, expected):
    path = tmp_path / "sim.toml"
    path.write_text(content)
    proc = simulate("--config", str(path))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("smpphub simulate: ")
    assert re.search(expected, lines[0]), lines[0]
    assert proc.stdout == ""


def test_missing_file_and_bad_arguments_exit_2(tmp_path):
    proc = simulate("--config", str(tmp_path / "nope.toml"))
    assert proc.returncode == 2 and proc.stderr.strip() == f"smpphub simulate: {tmp_path / 'nope.toml'}: no such file"
    proc = simulate("--listen", "nohost")
    assert proc.returncode == 2 and proc.stderr.strip() == "smpphub simulate: listen: expected HOST:PORT, got 'nohost'"
    proc = simulate("--http", "127.0.0.1:99999")
    assert proc.returncode == 2 and proc.stderr.strip() == "smpphub simulate: http_listen: port must be 0 to 65535, got '127.0.0.1:99999'"
    proc = simulate("--profile", "nope")
    assert proc.returncode == 2 and re.fullmatch(r"smpphub simulate: profile: unknown profile 'nope' \(known: .*"
                                                 r"ucs2-receipts.*\)", proc.stderr.strip()), proc.stderr


def test_profile_sets_the_carrier_profile_of_every_account():
    """``--profile ucs2-receipts``: the receipt text comes in UCS-2, as that carrier sends it."""
    port = free_port()
    proc = subprocess.Popen([*SIMULATE, "--listen", f"{HOST}:{port}", "--quiet", "--profile", "ucs2-receipts"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        wait_for_port(port, proc)

        async def esme() -> smppcore.Pdu:
            async with smppcore.connect(HOST, port, system_id="anyone", password="any") as c:
                await c.submit_sm(source_addr="Acme", destination_addr="447700900123", short_message=b"profile",
                                  registered_delivery=1)
                return await c.next_message(timeout=5)

        receipt = smppcore.run(esme())
        assert receipt.data_coding == 8 and "stat:DELIVRD" in receipt.short_message.decode("utf-16-be")
    finally:
        proc.terminate()
        proc.communicate(timeout=15)


@pytest.mark.parametrize("which", ["SMPP", "HTTP"])
def test_a_taken_port_is_exit_1_with_one_line_naming_it(which):
    with socket.socket() as s:
        s.bind((HOST, 0))
        s.listen()
        port = s.getsockname()[1]
        if which == "SMPP":
            proc = simulate("--listen", f"{HOST}:{port}", "--quiet")
        else:
            proc = simulate("--listen", f"{HOST}:{free_port()}", "--http", f"{HOST}:{port}", "--quiet")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"smpphub simulate: cannot listen on {HOST}:{port} ({which}): address already in use"]


def test_the_readme_example_config_is_valid(tmp_path):
    readme = (ROOT / "simulator" / "README.md").read_text()
    example = re.search(r"```toml\n(.*?)```", readme, re.S).group(1)
    path = tmp_path / "simulator.toml"
    path.write_text(example)
    config = load_config(str(path))
    assert config.accounts and config.errors.rules and config.mo.templates and config.chaos.drop_after
    assert config.receipts.intermediate and config.throttle.per_bind


# ---- a standalone run ----------------------------------------------------------------------------


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"simulator exited with {proc.returncode}"
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listening on {port} within {timeout}s"
            time.sleep(0.02)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.headers["Content-Type"].startswith("application/json")
        return json.loads(r.read())


def test_standalone_run_records_and_stops_on_sigterm():
    smpp_port, http_port = free_port(), free_port()
    proc = subprocess.Popen([*SIMULATE, "--listen", f"{HOST}:{smpp_port}", "--http", f"{HOST}:{http_port}", "--quiet", "--seed", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        wait_for_port(smpp_port, proc)
        wait_for_port(http_port, proc)  # the HTTP API may come up after the SMPP listener

        async def esme() -> str:
            async with smppcore.connect(HOST, smpp_port, system_id="anyone", password="any") as c:
                resp = await c.submit_sm(source_addr="Acme", destination_addr="447700900123", short_message=b"standalone",
                                         registered_delivery=1)
                await c.next_message(timeout=5)  # the receipt: a healthy SMSC by default
                return resp.message_id

        message_id = smppcore.run(esme())
        stats = get_json(f"http://{HOST}:{http_port}/stats")
        assert stats["submits"] == stats["accepted"] == stats["messages"] == 1
        assert stats["receipts_sent"] == 1 and stats["binds"] == 1
        body = get_json(f"http://{HOST}:{http_port}/messages?limit=10")
        assert body["count"] == 1 and body["messages"][0]["text"] == "standalone"
        assert body["messages"][0]["message_ids"] == [message_id]
        with pytest.raises(urllib.error.HTTPError) as info:
            get_json(f"http://{HOST}:{http_port}/messages?limit=many")
        assert info.value.code == 400
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert f"listening on {HOST}:{smpp_port}" in out
        assert f"http://{HOST}:{http_port}/messages" in out
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_status_line_on_a_terminal_and_sigint():
    port = free_port()
    master, slave = pty.openpty()
    proc = subprocess.Popen([*SIMULATE, "--listen", f"{HOST}:{port}"], stdout=subprocess.DEVNULL, stderr=slave, cwd=ROOT)
    os.close(slave)
    try:
        wait_for_port(port, proc)
        seen = b""
        deadline = time.monotonic() + 15
        while b"msg/s" not in seen:  # rewritten every second
            assert time.monotonic() < deadline, seen
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                seen += os.read(master, 4096)
        line = seen.decode(errors="replace").split("\r")[-1]
        assert re.search(r"binds +0 \| +\d+ msg/s \| accepted 0 rejected 0 throttled 0 \| receipts sent 0 pending 0 held 0 \| mo 0", line), line
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
