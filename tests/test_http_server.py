"""The HTTP server's skeleton: started and stopped with the hub, bounded, one JSON error shape."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from httpkit import http_client, http_hub_config, running_hub

from smpphub.router.config import ConfigError, config_from_dict


def _error(body: dict) -> dict:
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    return body["error"]


async def test_unknown_path_is_a_json_404_and_the_server_stops_with_the_hub():
    async with running_hub(http_hub_config({}, []), wait=False) as hub:
        assert hub.http is not None and hub.http.port
        url = hub.http.url
        async with http_client(hub) as http:
            async with http.get("/nothing/here") as resp:
                assert resp.status == 404
                assert _error(await resp.json())["code"] == "not_found"
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.get(url + "/v1/messages"):
                pass


async def test_a_body_over_max_body_bytes_is_413():
    async with running_hub(http_hub_config({}, [], http={"max_body_bytes": 1024}), wait=False) as hub:
        async with http_client(hub) as http:
            async with http.post("/v1/messages", data=b"x" * 5000,
                                 headers={"Content-Type": "application/json"}) as resp:
                assert resp.status == 413
                assert _error(await resp.json())["code"] == "too_large"


async def test_connections_over_max_connections_are_closed():
    async with running_hub(http_hub_config({}, [], http={"max_connections": 2}), wait=False) as hub:
        assert hub.http is not None
        held = [await asyncio.open_connection(hub.http.host, hub.http.port) for _ in range(2)]
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while len(hub.http._web.connections) < 2:  # both accepted by the server
                assert loop.time() < deadline
                await asyncio.sleep(0.01)
            reader, writer = await asyncio.open_connection(hub.http.host, hub.http.port)
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed without an answer
            writer.close()
            assert hub.http.refused == 1
        finally:
            for _, w in held:
                w.close()


@pytest.mark.parametrize(("http", "says"), [
    ({"listen": "8080"}, "http.listen: expected HOST:PORT"),
    ({"listen": "127.0.0.1:70000"}, "http.listen: port must be 0 to 65535"),
    ({"tls_cert": "/nonexistent.pem"}, "http: tls_cert and tls_key go together"),
    ({"tls_cert": "/nonexistent.pem", "tls_key": "/nonexistent.key"}, "http.tls_cert: no such file"),
    ({"max_body_bytes": 10}, "http.max_body_bytes: expected int >= 1024"),
    ({"max_batch": 10001}, "http.max_batch: expected int <= 10000"),
    ({"admin_token": "secret"}, "http.admin_token: not a sha256$"),
    ({"colour": "red"}, "http.colour: unknown key"),
])
def test_bad_http_sections_name_the_key(http, says):
    with pytest.raises(ConfigError) as info:
        config_from_dict({"http": http})
    assert says in str(info.value)


@pytest.mark.parametrize(("account", "says"), [
    ({"api_tokens": ["abc"]}, "accounts[0].api_tokens[0]: not a sha256$"),
    ({"webhook_url": "ftp://x"}, "accounts[0].webhook_url: must be an http"),
    ({"webhook_url": "http://x/hook"}, "accounts[0].webhook_secret: required with webhook_url"),
])
def test_bad_account_api_fields_name_the_key(account, says):
    with pytest.raises(ConfigError) as info:
        config_from_dict({"accounts": [{"system_id": "a", "password": "pw", **account}]})
    assert says in str(info.value)


def test_http_listen_may_not_take_an_smpp_listeners_address():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"listeners": [{"port": 2775}], "http": {"listen": "127.0.0.1:2775"}})
    assert "http.listen: 127.0.0.1:2775 is already listeners[0]" in str(info.value)


# ---- `smpphub serve` with an [http] section: one line, never a traceback ---------------------

CHECK_ROWS = [
    ('[http]\nlisten = "8080"\n', 2, "http.listen: expected HOST:PORT, got '8080'"),
    ('[http]\nlisten = "127.0.0.1:0"\ntls_cert = "{tmp}/no.pem"\ntls_key = "{tmp}/no.key"\n', 2,
     "http.tls_cert: no such file"),
    ('[http]\nlisten = "127.0.0.1:0"\ntls_cert = "{tmp}/bad.pem"\ntls_key = "{tmp}/bad.pem"\n', 2,
     "http: tls_cert and tls_key do not load as a certificate and its key"),
    ('[http]\nmax_connections = 0\n', 2, "http.max_connections: expected int >= 1"),
]


@pytest.mark.parametrize(("text", "code", "says"), CHECK_ROWS)
def test_serve_check_names_the_http_key(text, code, says, tmp_path, capsys):
    from smpphub import cli

    (tmp_path / "bad.pem").write_text("not a certificate\n")
    cfg = tmp_path / "hub.toml"
    cfg.write_text(text.replace("{tmp}", str(tmp_path)))
    assert cli.main(["serve", "--config", str(cfg), "--check"]) == code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert says in lines[0]


async def test_serve_says_so_when_the_http_port_is_taken(tmp_path):
    import socket
    import sys

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    cfg = tmp_path / "hub.toml"
    cfg.write_text(f'[[listeners]]\nport = 0\n[store]\npath = "{tmp_path}/hub.db"\n'
                   f'[http]\nlisten = "127.0.0.1:{port}"\n')
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "smpphub", "serve", "--config", str(cfg),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        taken.close()
    assert proc.returncode == 1
    lines = [line for line in err.decode().splitlines() if line.strip()]
    assert lines == [f"smpphub serve: cannot listen on 127.0.0.1:{port} (http.listen): address already in use"]
    assert not (tmp_path / "hub.db").exists()


async def test_a_request_over_request_timeout_is_answered_503():
    from aiohttp import web

    from smpphub.router.config import HttpConfig
    from smpphub.router.http.server import HttpServer

    never = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await never.wait()
        return web.Response(text="late")

    def register(app: web.Application, hub) -> None:
        app.router.add_get("/slow", slow)

    server = HttpServer(HttpConfig(listen="127.0.0.1:0", request_timeout=0.2), hub=None, sections=(register,))
    await server.bind()
    await server.start_serving()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.url + "/slow", timeout=aiohttp.ClientTimeout(total=10)) as resp:
                assert resp.status == 503
                assert (await resp.json())["error"]["code"] == "timeout"
    finally:
        await server.close(1.0)


async def test_tls_listener_serves_https(tmp_path):
    from tlskit import self_signed

    _, client_ctx, cert = self_signed(tmp_path)
    config = http_hub_config({}, [], http={"tls_cert": cert, "tls_key": str(tmp_path / "key.pem")})
    async with running_hub(config, wait=False) as hub:
        assert hub.http is not None and hub.http.url.startswith("https://")
        async with aiohttp.ClientSession() as http:
            async with http.get(hub.http.url + "/v1/openapi.json", ssl=client_ctx) as resp:
                assert resp.status == 200
            with pytest.raises(aiohttp.ClientError):  # plain HTTP gets nothing from it
                async with http.get(hub.http.url.replace("https://", "http://") + "/v1/openapi.json"):
                    pass


def test_api_token_command_makes_a_token_and_its_hash(capsys):
    from smpphub import cli
    from smpphub.router.http.tokens import hash_token, is_valid_token_hash

    assert cli.main(["api-token"]) == 0
    token_line, hash_line = capsys.readouterr().out.splitlines()
    token = token_line.removeprefix("token: ")
    assert token.startswith("shk_") and len(token) > 40
    assert hash_line.split()[-1] == hash_token(token) and is_valid_token_hash(hash_token(token))
    assert cli.main(["api-token", "--token", "shk_given-token-0123456789"]) == 0
    assert capsys.readouterr().out.split() == ["hash:", hash_token("shk_given-token-0123456789")]


@pytest.mark.parametrize("argv", [["api-token", "--token", "short"], ["api-token", "--token", ""]])
def test_api_token_refuses_a_short_token_in_one_line(argv, capsys):
    from smpphub import cli

    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at least 16 characters" in err and "Traceback" not in err
