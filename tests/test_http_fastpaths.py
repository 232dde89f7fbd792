"""The HTTP API's fast paths say the same as the slow ones they skip (see tests/test_http_api.py end to end).

Table-driven: a batch decoded in one go against item by item; a text coded once per
request against each time; a remembered token against the digest lookup, with its bounds;
the server's one middleware (errors and deadlines, once two) against every kind of failure.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from smppcore.concat import concat_info
from smpphub.router.config import HttpConfig
from smpphub.router.http.api import _batch, _decode_item
from smpphub.router.http.auth import TokenTable
from smpphub.router.http.compose import CodedTexts, Draft, submits
from smpphub.router.http.errors import ApiError
from smpphub.router.http.schema import MessageIn
from smpphub.router.http.server import build_app
from smpphub.router.http.tokens import hash_token

GOOD = {"to": "447700900001", "text": "hello"}


def _itemwise(body: bytes) -> list[MessageIn | ApiError]:
    raws = msgspec.json.decode(msgspec.json.decode(body, type=dict[str, msgspec.Raw])["messages"],
                               type=list[msgspec.Raw])
    return [_decode_item(raw, i) for i, raw in enumerate(raws)]


def _same(a: MessageIn | ApiError, b: MessageIn | ApiError) -> bool:
    if isinstance(a, ApiError) or isinstance(b, ApiError):
        return isinstance(a, ApiError) and isinstance(b, ApiError) and (a.status, a.field) == (b.status, b.field)
    return a == b


@pytest.mark.parametrize("body", [
    {"messages": [GOOD, {"to": ["447700900002", "447700900003"], "text": "Ünïcode ✓", "reference": "r"}]},
    {"messages": [GOOD, {"to": "not a number", "text": "x"}, GOOD]},  # one bad item: item by item
    {"messages": [GOOD], "extra": 1},  # a top-level field the batch type does not know: item by item, as before
    {"messages": [{"to": "447700900001", "text": "x", "colour": "red"}]},
], ids=["valid", "one-bad-item", "extra-top-level", "unknown-item-field"])
def test_a_batch_decodes_as_item_by_item(body):
    raw = msgspec.json.encode(body)
    fast = _batch(raw, 10_000)
    slow = _itemwise(raw)
    assert fast is not None and len(fast) == len(slow)
    assert all(_same(a, b) for a, b in zip(fast, slow, strict=True))


@pytest.mark.parametrize(("body", "status", "field"), [
    (b'{"to": "447700900001", "text": "the word \\"messages\\" in a text"}', None, None),  # one message
    (b'{"messages": []}', 422, "messages"),
    (b'{"messages": "x"}', 422, "messages"),
    (b'{"messages": [' + b",".join([b'{"to": "447700900001", "text": "x"}'] * 4) + b"]}", 422, "messages"),
    (b'{"messages": [1, 2', 400, None),
])
def test_batch_bounds_and_non_batches(body, status, field):
    if status is None:
        assert _batch(body, 3) is None
        return
    with pytest.raises(ApiError) as err:
        _batch(body, 3)
    assert (err.value.status, err.value.field) == (status, field)


def test_a_short_text_is_coded_once_per_request_a_long_one_each_time():
    texts = CodedTexts(limit=2)
    a = submits(Draft("447700900001", "same text"), texts=texts)
    b = submits(Draft("447700900002", "same text"), texts=texts)
    assert a[0].short_message is b[0].short_message and b[0].destination_addr == "447700900002"
    uncached = submits(Draft("447700900003", "same text"))
    assert uncached == [msgspec.structs.replace(a[0], destination_addr="447700900003")]
    long = [submits(Draft("447700900004", "x" * 400), texts=texts) for _ in range(2)]
    refs = [{concat_info(p).reference for p in parts} for parts in long]
    assert all(len(r) == 1 for r in refs) and refs[0] != refs[1]  # each long message its own reference
    for text in ("two", "three", "four"):  # the bound: the third distinct text is coded but not kept
        submits(Draft("447700900005", text), texts=texts)
    assert len(texts._single) == 2


def _config(*tokens: str) -> SimpleNamespace:
    account = SimpleNamespace(system_id="acme", api_tokens=[hash_token(t) for t in tokens])
    return SimpleNamespace(accounts=[account], http=SimpleNamespace(admin_token="", metrics_token=""))


def test_a_token_that_matched_is_remembered_others_never_and_a_reload_forgets():
    table = TokenTable(remembered=1)
    config = _config("shk_one", "shk_two")
    assert table.account(config, "shk_one").system_id == "acme"  # type: ignore[arg-type]
    assert table.account(config, "shk_made_up") is None  # type: ignore[arg-type]
    assert table.account(config, "shk_two").system_id == "acme"  # type: ignore[arg-type]
    assert list(table._known) == ["shk_one"]  # bounded, and made-up tokens never enter
    reloaded = _config("shk_two")
    assert table.account(reloaded, "shk_one") is None  # type: ignore[arg-type]
    assert table.account(reloaded, "shk_two") is not None  # type: ignore[arg-type]
    assert list(table._known) == ["shk_two"]


async def _bug(request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


async def _invalid(request: web.Request) -> web.Response:
    raise ApiError(422, "x: wrong", field="x")


async def _unauthorised(request: web.Request) -> web.Response:
    raise ApiError(401, "no token", field="Authorization")


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/elsewhere")


async def _forbidden(request: web.Request) -> web.Response:
    raise web.HTTPForbidden()


async def _slow(request: web.Request) -> web.Response:
    await asyncio.Event().wait()
    raise AssertionError("never")


def _section(app: web.Application, hub: object) -> None:
    for path, handler in [("/bug", _bug), ("/invalid", _invalid), ("/unauthorised", _unauthorised),
                          ("/redirect", _redirect), ("/forbidden", _forbidden), ("/slow", _slow)]:
        app.router.add_get(path, handler)


@pytest.mark.parametrize(("method", "path", "status", "code", "header"), [
    ("GET", "/bug", 500, "internal", None),
    ("GET", "/invalid", 422, "invalid_field", None),
    ("GET", "/unauthorised", 401, "unauthorized", ("WWW-Authenticate", "Bearer")),
    ("GET", "/redirect", 302, None, ("Location", "/elsewhere")),
    ("GET", "/forbidden", 403, "forbidden", None),
    ("GET", "/nowhere", 404, "not_found", None),
    ("POST", "/bug", 405, "method_not_allowed", ("Allow", "GET,HEAD")),
])
async def test_the_one_middleware_answers_every_failure_as_json(method, path, status, code, header):
    app = build_app(HttpConfig(listen="127.0.0.1:0"), SimpleNamespace(), sections=(_section,))  # type: ignore[arg-type]
    async with TestServer(app, host="127.0.0.1", port=0) as server, TestClient(server) as client:
        async with client.request(method, path, allow_redirects=False) as resp:
            assert resp.status == status
            if code is not None:
                assert (await resp.json())["error"]["code"] == code
            if header is not None:
                assert resp.headers[header[0]] == header[1]


async def test_a_request_past_its_deadline_is_a_json_503():
    app = build_app(HttpConfig(listen="127.0.0.1:0", request_timeout=0.2), SimpleNamespace(),  # type: ignore[arg-type]
                    sections=(_section,))
    async with TestServer(app, host="127.0.0.1", port=0) as server, TestClient(server) as client:
        async with client.get("/slow") as resp:
            assert resp.status == 503 and (await resp.json())["error"]["code"] == "timeout"
