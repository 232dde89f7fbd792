"""`smpphub admin` as a subprocess against a running hub: each action's output, and every
failure as one line on stderr with the right exit status."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from httpkit import ACME_TOKEN, ADMIN_TOKEN, http_hub_config, running_hub
from hubkit import simulator
from tlskit import self_signed

import smppcore

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


async def admin(url: str | None, *args: str, token: str | None = ADMIN_TOKEN) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMPPHUB_ADMIN")}
    if token is not None:
        env["SMPPHUB_ADMIN_TOKEN"] = token
    argv = [*(["--url", url] if url else []), *args]
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "smpphub", "admin", *argv, cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def hub():
    uk = await simulator()
    config = http_hub_config({"uk": uk}, [{"prefix": "44", "upstreams": ["uk"]}])
    async with running_hub(config) as hub:
        yield hub
    await uk.close()


async def test_each_action_prints_its_answer(hub, tmp_path):
    url = hub.http.url
    async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as acme:
        resp = await acme.submit_sm(destination_addr="447700900123", short_message=b"hi", registered_delivery=1)
        await acme.next_message(timeout=10)
        code, out, err = await admin(url, "binds")
        assert code == 0, err
        assert out.splitlines()[0].split() == ["ID", "ACCOUNT", "STATE", "PEER"]
        assert out.splitlines()[1].split()[1:3] == ["acme", "bound_trx"]
        bind_id = out.splitlines()[1].split()[0]
        code, out, err = await admin(url, "kick", bind_id)
        assert (code, out) == (0, f"unbound bind {bind_id} (acme)\n"), err
    code, out, _ = await admin(url, "pause", "uk")
    assert code == 0 and out.splitlines()[1].split()[:2] == ["uk", "paused"]
    code, out, _ = await admin(url, "upstreams")
    assert code == 0 and out.splitlines()[1].split()[:3] == ["uk", "paused", "up"]
    code, out, _ = await admin(url, "resume", "uk")
    assert code == 0 and out.splitlines()[1].split()[:2] == ["uk", "running"]
    code, out, _ = await admin(url, "route", "--to", "+447700900123", "--account", "acme")
    assert code == 0 and out.startswith("+447700900123 (as 447700900123) for acme: uk by prefix 44: ")
    code, out, _ = await admin(url, "trace", resp.message_id)
    assert code == 0 and out.startswith(f"message {resp.message_id} of acme: delivered, upstream uk")
    assert "queued -> in_flight upstream uk" in out and "receipt_delivered" in out
    routes = tmp_path / "routes.toml"
    routes.write_text('[[routes]]\nprefix = "44"\nupstreams = ["uk"]\n\n'
                      '[[routes]]\nprefix = "33"\nupstreams = ["uk"]\n')
    code, out, _ = await admin(url, "routes", "--set", str(routes))
    assert code == 0 and out.splitlines() == ["routes replaced: 1 added, 0 removed, 1 unchanged", "  + 33 -> uk"]
    code, out, _ = await admin(url, "routes")
    assert code == 0 and out.splitlines() == ["44 -> uk", "33 -> uk"]
    code, out, _ = await admin(url, "--json", "upstreams")
    assert code == 0 and '"upstreams"' in out


@pytest.mark.parametrize(("args", "token", "code", "says"), [
    (["binds"], None, 2, "smpphub admin: an admin token is needed: --token or $SMPPHUB_ADMIN_TOKEN"),
    (["binds"], "shk_wrong", 1, "smpphub admin binds: HTTP 401: unknown API token"),
    (["binds"], ACME_TOKEN, 1, "smpphub admin binds: HTTP 403: this token belongs to an account"),
    (["pause", "nowhere"], ADMIN_TOKEN, 1, "smpphub admin pause: HTTP 404: no upstream 'nowhere'"),
    (["kick", "42"], ADMIN_TOKEN, 1, "smpphub admin kick: HTTP 404: no bind '42'"),
    (["route", "--to", "x", "--account", "acme"], ADMIN_TOKEN, 1, "smpphub admin route: HTTP 422: to: 'x' is not"),
    (["route", "--to", "44"], ADMIN_TOKEN, 2, "smpphub admin route: the following arguments are required: --account"),
    (["routes", "--set", "/nonexistent.toml"], ADMIN_TOKEN, 2, "smpphub admin: /nonexistent.toml: No such file"),
    (["routes", "--set", "BAD_TOML"], ADMIN_TOKEN, 2, "smpphub admin: BAD_TOML: not valid TOML"),
    (["routes", "--set", "UNKNOWN_UPSTREAM"], ADMIN_TOKEN, 1,
     "smpphub admin routes: HTTP 422: routes[0].upstreams: unknown upstream 'mars'"),
    (["--url", "ftp://x", "binds"], ADMIN_TOKEN, 2, "smpphub admin: --url must be an http:// or https:// address"),
    (["--url", "http://127.0.0.1:1", "binds"], ADMIN_TOKEN, 1,
     "smpphub admin binds: cannot reach the hub at http://127.0.0.1:1: Connection refused"),
    (["explode"], ADMIN_TOKEN, 2, "smpphub admin: argument ACTION: invalid choice: 'explode'"),
    (["--cafile", "/nonexistent.pem", "binds"], ADMIN_TOKEN, 2,
     "smpphub admin: --cafile /nonexistent.pem: No such file"),
])
async def test_failures_are_one_line(hub, tmp_path, args, token, code, says):
    files = {"BAD_TOML": "[[routes]\n", "UNKNOWN_UPSTREAM": '[[routes]]\nprefix = "1"\nupstreams = ["mars"]\n'}
    for i, arg in enumerate(args):
        if arg in files:
            path = tmp_path / f"{arg}.toml"
            path.write_text(files[arg])
            args = [*args[:i], str(path), *args[i + 1:]]
            says = says.replace(arg, str(path))
    url = None if "--url" in args else hub.http.url
    got, out, err = await admin(url, *args, token=token)
    assert got == code, (out, err)
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith(says), err


async def test_an_https_hub_with_a_self_signed_certificate(tmp_path):
    _, _, cert = self_signed(tmp_path)
    config = http_hub_config({}, [], http={"tls_cert": cert, "tls_key": str(tmp_path / "key.pem")})
    async with running_hub(config, wait=False) as hub:
        assert hub.http.url.startswith("https://")
        code, out, err = await admin(hub.http.url, "--cafile", cert, "binds")
        assert (code, out) == (0, "no binds\n"), err
        code, out, err = await admin(hub.http.url, "binds")  # not trusted without it
        assert code == 1 and out == "" and "CERTIFICATE_VERIFY_FAILED" in err and len(err.splitlines()) == 1
