"""``[http] metrics_auth`` / ``dashboard_auth``: /metrics and the dashboard's page behind a token
when the operator says so, open as before when not.

Every row is one request (path, Authorization header) -> status, against a hub with the
options on and one with them off (the default); a refusal is 401 or 403 with the API's
JSON error body, 401 with ``WWW-Authenticate: Bearer`` (the page adds Basic, so a browser
asks for the token itself: shown in headless Chromium below). Then the options follow a
reload, and hub.toml's mistakes are one line naming the key (exit 2 from ``serve --check``).
"""

from __future__ import annotations

import asyncio
import base64
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import msgspec
import pytest
from browserkit import browser_page
from httpkit import ACME_TOKEN, ADMIN_TOKEN, http_hub_config, running_hub
from venvkit import block_starting

import smppcore
from smpphub.router.config import ConfigError, config_from_dict
from smpphub.router.http.tokens import hash_token

ROOT = Path(__file__).resolve().parent.parent
SCRAPE_TOKEN = "shk_scrape-test-token-0123456789abcdefghijklmn"
WAIT_MS = 20_000  # bound on each wait in the browser (a loaded 2-core machine)


def bearer(token: str) -> str:
    return f"Bearer {token}"


def basic(token: str, user: str = "prometheus") -> str:
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


@dataclass(frozen=True)
class Row:
    path: str
    authorization: str | None  # the header as sent; None: no header
    status: int  # with the options on ("token")
    open_status: int = 200  # with the options off (the default)


METRICS = "/metrics"
PAGE = "/dashboard"
SCRIPT = "/dashboard/static/dashboard.js"

ROWS = [
    # /metrics: the admin token or the scrape token, as Bearer or as Basic's password
    Row(METRICS, None, 401),
    Row(METRICS, bearer("shk_wrong-token"), 401),
    Row(METRICS, "Bearer ", 401),
    Row(METRICS, "Token " + SCRAPE_TOKEN, 401),
    Row(METRICS, "Basic !!not-base64!!", 401),
    Row(METRICS, "Basic " + base64.b64encode(SCRAPE_TOKEN.encode()).decode(), 401),  # no user:password
    Row(METRICS, basic("shk_wrong-token"), 401),
    Row(METRICS, bearer(ACME_TOKEN), 403),  # an account's token: known, not for this
    Row(METRICS, bearer(SCRAPE_TOKEN), 200),
    Row(METRICS, bearer(ADMIN_TOKEN), 200),
    Row(METRICS, basic(SCRAPE_TOKEN), 200),
    Row(METRICS, basic(ADMIN_TOKEN, user=""), 200),
    # the dashboard's page and its files: the admin token only
    Row(PAGE, None, 401),
    Row(PAGE, bearer("shk_wrong-token"), 401),
    Row(PAGE, bearer(SCRAPE_TOKEN), 401),  # the scrape token reads /metrics, nothing else
    Row(PAGE, bearer(ACME_TOKEN), 403),
    Row(PAGE, bearer(ADMIN_TOKEN), 200),
    Row(PAGE, basic(ADMIN_TOKEN, user="ops"), 200),
    Row(SCRIPT, None, 401),
    Row(SCRIPT, basic(ADMIN_TOKEN), 200),
    # the event stream always wanted the admin token (Bearer), whatever the options say
    Row("/dashboard/events", None, 401, open_status=401),
]

GUARDED = {"metrics_auth": "token", "metrics_token": hash_token(SCRAPE_TOKEN), "dashboard_auth": "token"}


async def answer(session: aiohttp.ClientSession, url: str, row: Row) -> tuple[int, aiohttp.ClientResponse, bytes]:
    headers = {"Authorization": row.authorization} if row.authorization is not None else {}
    async with session.get(url + row.path, headers=headers) as resp:
        if row.path == "/dashboard/events" and resp.status == 200:
            return resp.status, resp, b""  # a stream: do not read it to its end
        return resp.status, resp, await resp.read()


def check_refusal(row: Row, status: int, resp: aiohttp.ClientResponse, body: bytes) -> None:
    """A refusal is the API's JSON error shape naming Authorization; a 401 says Bearer (the page: Basic too)."""
    assert resp.content_type == "application/json", row
    error = msgspec.json.decode(body)["error"]
    assert error["field"] == "Authorization", (row, error)
    assert error["code"] == {401: "unauthorized", 403: "forbidden"}[status], (row, error)
    challenges = resp.headers.getall("WWW-Authenticate", [])
    if status == 401:
        assert challenges[0] == "Bearer", (row, challenges)
        if row.path.startswith("/dashboard/static") or row.path == PAGE:
            assert challenges[1].startswith('Basic realm="smpphub dashboard"'), (row, challenges)
    else:
        assert challenges == [], (row, challenges)


@pytest.mark.parametrize("guarded", [True, False], ids=["token", "none"])
async def test_each_request_is_answered_as_the_options_say(guarded):
    config = http_hub_config({}, [], http=GUARDED if guarded else {})
    async with running_hub(config, wait=False) as hub, aiohttp.ClientSession() as session:
        failures = []
        for row in ROWS:
            expected = row.status if guarded else row.open_status
            status, resp, body = await answer(session, hub.http.url, row)
            if status != expected:
                failures.append(f"{row}: {status}, expected {expected}: {body[:200]!r}")
            elif status == 200 and row.path == METRICS:
                assert b"smpphub_messages_held" in body and resp.content_type == "text/plain"
            elif status == 200 and row.path == PAGE:
                assert b"<title>smpphub dashboard</title>" in body
            elif status != 200:
                check_refusal(row, status, resp, body)
        assert failures == []


async def test_the_options_follow_a_reload():
    """Tokens and options come from the hub's configuration at each request, as the API's do."""
    config = http_hub_config({}, [])
    async with running_hub(config, wait=False) as hub, aiohttp.ClientSession() as session:
        rows = [Row(METRICS, None, 401), Row(PAGE, None, 401), Row(METRICS, bearer(SCRAPE_TOKEN), 200)]
        assert [(await answer(session, hub.http.url, row))[0] for row in rows] == [200, 200, 200]
        hub.reload(http_hub_config({}, [], http=GUARDED))
        assert [(await answer(session, hub.http.url, row))[0] for row in rows] == [401, 401, 200]
        hub.reload(config)
        assert [(await answer(session, hub.http.url, row))[0] for row in rows] == [200, 200, 200]


async def test_a_browser_asks_for_the_token_and_opens_the_page_with_it():
    """Headless Chromium on the guarded page: the Basic challenge is answered with the admin token
    as the password (what a person types into the browser's prompt; Playwright's http_credentials
    answer only a challenge), and the page, its script and its style load and the events flow."""
    config = http_hub_config({}, [], http={"dashboard_auth": "token"})
    credentials = {"username": "operator", "password": ADMIN_TOKEN}
    async with running_hub(config, wait=False) as hub, browser_page(http_credentials=credentials) as page:
        statuses: list[tuple[str, int]] = []
        page.on("response", lambda response: statuses.append((response.url, response.status)))
        opened = await page.goto(f"{hub.http.url}/dashboard#token={ADMIN_TOKEN}")
        assert opened is not None and opened.status == 200
        await page.wait_for_selector("#status.live", timeout=WAIT_MS)
        page_files = [(url.removeprefix(hub.http.url), status) for url, status in statuses
                      if not url.endswith("/events")]
        assert ("/dashboard", 200) in page_files
        assert ("/dashboard/static/dashboard.js", 200) in page_files
        assert ("/dashboard/static/dashboard.css", 200) in page_files


async def test_a_browser_with_a_wrong_token_gets_no_page():
    config = http_hub_config({}, [], http={"dashboard_auth": "token"})
    credentials = {"username": "operator", "password": "shk_wrong-token"}
    async with running_hub(config, wait=False) as hub, browser_page(http_credentials=credentials) as page:
        refused = await page.goto(f"{hub.http.url}/dashboard")
        assert refused is not None and refused.status == 401
        assert '"field":"Authorization"' in (await page.text_content("body") or "")


# ---- hub.toml -----------------------------------------------------------------------------

ADMIN_HASH = hash_token(ADMIN_TOKEN)


@pytest.mark.parametrize(("http", "message"), [
    ({"metrics_auth": "tokens"}, "http.metrics_auth: invalid enum value 'tokens'"),
    ({"dashboard_auth": True}, "http.dashboard_auth: expected str, got bool"),
    ({"metrics_auth": "token"}, 'http.metrics_auth: "token" needs metrics_token or admin_token'),
    ({"dashboard_auth": "token", "metrics_auth": "token", "metrics_token": hash_token(SCRAPE_TOKEN)},
     'http.dashboard_auth: "token" needs admin_token'),
    ({"metrics_auth": "token", "metrics_token": SCRAPE_TOKEN}, "http.metrics_token: not a sha256$... token hash"),
    ({"metrics_token": hash_token(SCRAPE_TOKEN)}, 'http.metrics_token: only with metrics_auth = "token"'),
])
def test_config_mistakes_name_the_key(http, message):
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"http": http})
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.mark.parametrize("http", [
    {},
    {"metrics_auth": "none", "dashboard_auth": "none"},
    {"metrics_auth": "token", "admin_token": ADMIN_HASH},
    {"metrics_auth": "token", "metrics_token": hash_token(SCRAPE_TOKEN)},
    {"dashboard_auth": "token", "admin_token": ADMIN_HASH},
])
def test_these_configs_load(http):
    assert config_from_dict({"http": http}).http is not None


async def test_serve_check_refuses_an_unknown_value_in_one_line(tmp_path):
    cfg = tmp_path / "hub.toml"
    cfg.write_text(f'[store]\npath = "{tmp_path}/hub.db"\n[http]\nlisten = "127.0.0.1:0"\nmetrics_auth = "yes"\n')
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "smpphub", "serve", "--config", str(cfg), "--check", cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2, (out, err)
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "http.metrics_auth: invalid enum value 'yes'" in lines[0], lines


# ---- README.md ----------------------------------------------------------------------------

README_URL = "http://127.0.0.1:8080"


async def test_the_readme_example_runs_as_printed():
    """The README's [http] lines added to its "Operating the hub" [http] (port 0), and its two
    curl lines run in bash as printed: the scrape token reads the metrics, no token gets 401."""
    ops = tomllib.loads(block_starting("# in hub.toml: the listener, and the admin token").code)["http"]
    added = tomllib.loads(block_starting("# in hub.toml's [http], beside admin_token: /metrics").code)
    shell = block_starting('curl -s -H "Authorization: Bearer shk_scrape').code
    assert ops["listen"] == README_URL.removeprefix("http://") and README_URL in shell
    config = http_hub_config({}, [], http={**ops, **added, "listen": "127.0.0.1:0"})
    assert config.http is not None and config.http.metrics_auth == "token" == config.http.dashboard_auth
    async with running_hub(config, wait=False) as hub:
        async with smppcore.connect("127.0.0.1", hub.servers[0].port, system_id="acme", password="pw"):
            proc = await asyncio.create_subprocess_exec(
                "bash", "-euo", "pipefail", "-c", shell.replace(README_URL, hub.http.url),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    *binds, refused = out.decode().splitlines()
    assert binds == ['smpphub_binds{account="acme"} 1.0', 'smpphub_binds{account="beta"} 0.0']
    body, _, status = refused.rpartition(" HTTP ")
    assert status == "401"
    assert msgspec.json.decode(body)["error"]["field"] == "Authorization"
