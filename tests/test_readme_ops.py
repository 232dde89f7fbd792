"""README.md's "Operating the hub" blocks, as printed: a hub runs with the block's [http]
(on a free port instead of 8080), and every line of the shell block runs against it in
bash, with `smpphub` on the PATH, and exits 0."""

from __future__ import annotations

import asyncio
import os
import sys
import tomllib
from pathlib import Path

import pytest
from hubkit import hub_config, running_hub, simulator
from venvkit import block_starting

import smppcore

ROOT = Path(__file__).resolve().parent.parent
README_URL = "http://127.0.0.1:8080"
#: how the two blocks begin (tests/test_readme_examples.py's BLOCKS names them too: OPS_TOML, OPS_SHELL)
TOML_FIRST_LINE = "# in hub.toml: the listener, and the admin token"
SHELL_FIRST_LINE = "curl -s http://127.0.0.1:8080/metrics"


def ops_http_section() -> dict:
    http = tomllib.loads(block_starting(TOML_FIRST_LINE).code)["http"]
    assert http["listen"] == README_URL.removeprefix("http://")
    return {**http, "listen": "127.0.0.1:0"}


async def test_the_operating_examples_run_as_printed():
    shell = block_starting(SHELL_FIRST_LINE).code
    uk = await simulator()
    config = hub_config({"carrier-uk": uk}, [{"prefix": "44", "upstreams": ["carrier-uk"]}], http=ops_http_section())
    try:
        async with running_hub(config) as hub:
            async with smppcore.connect("127.0.0.1", hub.servers[0].port, system_id="acme", password="pw") as acme:
                await acme.submit_sm(destination_addr="447700900123", short_message=b"hi")
                script = shell.replace(README_URL, hub.http.url)
                env = {k: v for k, v in os.environ.items() if not k.startswith("SMPPHUB_ADMIN")}
                env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
                proc = await asyncio.create_subprocess_exec(
                    "bash", "-euo", "pipefail", "-x", "-c", script, cwd=ROOT, env=env,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
                out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        await uk.close()
    assert proc.returncode == 0, err.decode()[-2000:]
    text = out.decode()
    assert 'smpphub_messages_accepted_total{account="acme"} 1.0' in text, text
    assert "acme" in text and "bound_trx" in text  # binds
    assert "carrier-uk  paused" in text and "carrier-uk  running" in text  # pause, resume
    assert "+447700900123 (as 447700900123) for acme: carrier-uk by prefix 44" in text  # route
    assert text.rstrip().endswith("44 -> carrier-uk")  # routes


@pytest.mark.parametrize("line", block_starting(SHELL_FIRST_LINE).code.strip().splitlines())
def test_each_line_is_a_command_someone_can_paste(line):
    assert line.startswith(("curl ", "export ", "smpphub admin --url ")) and "\\" not in line
