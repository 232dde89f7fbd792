"""README.md's "HTTP API" blocks, as printed: a hub runs with the block's [http] and account (on free
ports instead of 8080 and 9000), every line of the shell block runs against it in bash and exits 0,
and the webhooks the block's account asked for arrive, signed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sys
import tomllib
import urllib.parse
from pathlib import Path

import pytest
from aiohttp import web
from httpkit import local_web_server
from hubkit import hub_config, running_hub, simulator, wait_until
from venvkit import block_starting

ROOT = Path(__file__).resolve().parent.parent
API_URL = "http://127.0.0.1:8080"
HOOK_URL = "http://127.0.0.1:9000"
#: how the two blocks begin (tests/test_readme_examples.py's BLOCKS names them too: API_TOML, API_SHELL)
TOML_FIRST_LINE = "# hub.toml: the HTTP API's listener, and an account that sends through it"
SHELL_FIRST_LINE = "export TOKEN="


class Application:
    """The README account's application: its webhook (POST /smpphub) and its Kannel dlr-url (GET /dlr)."""

    def __init__(self) -> None:
        self.hooks: list[tuple[dict[str, str], bytes]] = []
        self.dlrs: list[dict[str, str]] = []

    async def hook(self, request: web.Request) -> web.Response:
        self.hooks.append((dict(request.headers), await request.read()))
        return web.Response(status=200)

    async def dlr(self, request: web.Request) -> web.Response:
        self.dlrs.append(dict(request.query))
        return web.Response(text="ok")


async def test_the_http_api_examples_run_as_printed():
    app = Application()
    async with local_web_server(web.post("/smpphub", app.hook), web.get("/dlr", app.dlr)) as hook_url:
        await run_the_examples(app, hook_url)


async def run_the_examples(app: Application, hook_url: str) -> None:
    toml = tomllib.loads(block_starting(TOML_FIRST_LINE).code.replace(HOOK_URL, hook_url))
    assert toml["http"]["listen"] == API_URL.removeprefix("http://")
    (account,) = toml["accounts"]
    uk = await simulator()
    config = hub_config({"uk": uk}, [{"prefix": "44", "upstreams": ["uk"]}], accounts=[account],
                        http={**toml["http"], "listen": "127.0.0.1:0"})
    try:
        async with running_hub(config) as hub:
            script = block_starting(SHELL_FIRST_LINE).code.replace(API_URL, hub.http.url)
            script = script.replace(urllib.parse.quote(HOOK_URL, safe=""), urllib.parse.quote(hook_url, safe=""))
            env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
            proc = await asyncio.create_subprocess_exec(
                "bash", "-euo", "pipefail", "-c", script, cwd=ROOT, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 120)
            assert proc.returncode == 0, out.decode()[-3000:] + err.decode()[-2000:]
            text = out.decode()
            # the two POSTs, the scheduled one's status and its cancel, Kannel's answer, the document's head
            assert '"accepted":1,"rejected":0' in text and '"accepted":3,"rejected":0' in text, text
            assert '"state":"scheduled"' in text and '"reference":"order-42/2"' in text, text
            assert '"cancelled":[' in text, text
            assert "0: Accepted for delivery" in text and "3.1.0 ['/v1/messages', '/v1/messages/{id}']" in text, text
            # the receipts (three delivered, one cancelled) come to the account's webhook, signed; Kannel's
            # to its dlr-url
            await wait_until(lambda: len(app.hooks) >= 4 and app.dlrs, what="the webhooks and the dlr-url")
    finally:
        await uk.close()
    secret = account["webhook_secret"].encode()
    for headers, body in app.hooks:
        stamp = headers["Smpphub-Timestamp"]
        expected = "v1=" + hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(expected, headers["Smpphub-Signature"])
    states = {json.loads(b)["to"]: json.loads(b)["state"] for _, b in app.hooks}
    assert states == {"447700900123": "delivered", "447700900124": "delivered", "447700900125": "delivered",
                      "447700900126": "cancelled"}
    assert app.dlrs[0]["type"] == "1" and app.dlrs[0]["id"].startswith("w")


@pytest.mark.parametrize("line", block_starting(SHELL_FIRST_LINE).code.strip().splitlines())
def test_each_line_is_a_command_someone_can_paste(line):
    assert line.startswith(("curl ", "export ", "ID=$(curl ")) and "\\" not in line.replace("\\u", "")
