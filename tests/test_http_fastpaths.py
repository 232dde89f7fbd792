"""The HTTP API's fast paths say the same as the slow ones they skip (see tests/test_http_api.py end to end).

Table-driven: a batch decoded in one go against item by item; a text coded once per
request against each time; a one-part submit_sm made once per request and copied per
destination against one made each time; a rejected item's field path written only when it
is rejected against the single message's; a remembered token against the digest lookup,
with its bounds; the server's one middleware (errors and deadlines, once two) against
every kind of failure.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from httpkit import http_client, http_hub_config, running_hub

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


_SOON = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
_LATER = datetime(2031, 1, 5, 0, 0, 0, tzinfo=timezone(timedelta(hours=2)))


@pytest.mark.parametrize(("text", "coding", "sender", "receipt", "send_at", "valid_until"), [
    ("benchmark message", None, None, False, None, None),  # the batch benchmark's message
    ("price: 5€ {ok}", None, "ACME", True, None, None),  # GSM with its extension table
    ("Привет", None, "+447700900999", False, None, None),  # UCS-2, chosen
    ("héllo", 3, "447700900999", True, _SOON, None),  # latin1, asked for
    ("plain", 1, "Sender One", False, None, _LATER),  # ia5
    ("x" * 160, None, None, True, _SOON, _LATER),  # the most one GSM part takes
    ("x" * 161, None, "ACME", False, None, None),  # two parts: each message splits it afresh
    ("Привет, мир! " * 12, None, None, False, None, None),  # three UCS-2 parts
], ids=["bench", "gsm-ext", "ucs2", "latin1-times", "ia5-validity", "gsm-160", "gsm-161", "ucs2-long"])
def test_submits_to_gives_what_submits_gives_whether_made_or_copied(text, coding, sender, receipt, send_at,
                                                                   valid_until):
    texts = CodedTexts()
    for to in ("447700900001", "+33612345678", "447700900002"):  # made, then copied for the others
        fast = texts.submits_to(to, text, coding, sender, receipt, send_at, valid_until)
        slow = submits(Draft(to, text, sender=sender, data_coding=coding, send_at=send_at, valid_until=valid_until,
                             receipt=receipt))
        assert len(fast) == len(slow)
        if len(slow) == 1:
            assert fast == slow
            assert fast[0].tlvs is not slow[0].tlvs  # a PDU's own TLV dict, never a shared one
        else:  # the same but for the concatenation reference each long message draws
            assert [_unreferenced(p) for p in fast] == [_unreferenced(p) for p in slow]
            assert concat_info(fast[0]).reference != concat_info(slow[0]).reference  # type: ignore[union-attr]


def _unreferenced(pdu):
    assert pdu.short_message[:3] == b"\x05\x00\x03"  # 8-bit reference concatenation UDH
    return msgspec.structs.replace(pdu, short_message=pdu.short_message[:3] + b"?" + pdu.short_message[4:])


def test_submits_to_keeps_at_most_limit_messages_and_refuses_as_submits_does():
    texts = CodedTexts(limit=2)
    for text in ("one", "two", "three"):
        texts.submits_to("447700900001", text, None, None, False, None, None)
    assert len(texts._one_part) == 2
    again = texts.submits_to("447700900002", "three", None, None, False, None, None)  # past the bound: made again
    assert again == submits(Draft("447700900002", "three"))
    naive = datetime(2031, 1, 2, 3, 4, 5)
    for args, field in [(("Привет", 0, None, False, None, None), "text"),
                        (("x", None, None, False, naive, None), "send_at"),
                        (("x", None, None, False, None, naive), "valid_until")]:
        with pytest.raises(ApiError) as err:
            texts.submits_to("447700900001", *args)
        assert err.value.field == field and err.value.message.startswith(f"{field}: ")


_PAST = "2020-01-01T00:00:00Z"
_NAIVE = "2031-01-02T03:04:05"
#: items whose error the API names with a field below the item: (item, field, message after the field)
_BAD_ITEMS = [
    ({"to": "447700900001", "text": "x", "callback_url": "http://127.0.0.1:9/cb"}, "callback_url",
     "the account has no webhook_secret to sign webhooks with"),
    ({"to": "447700900001", "text": "x", "send_at": _NAIVE}, "send_at", "give the time with its offset (Z or +hh:mm)"),
    ({"to": "447700900001", "text": "x", "valid_until": _NAIVE}, "valid_until",
     "give the time with its offset (Z or +hh:mm)"),
    ({"to": "447700900001", "text": "Привет", "coding": "ia5"}, "text",
     "character 'П' (U+041F) at position 0 cannot be encoded with data_coding 1"),
    ({"to": "447700900001", "text": "x", "valid_until": _PAST}, "valid_until", "must be in the future"),
    ({"to": "447700900001", "text": "x", "send_at": "2031-01-03T00:00:00Z", "valid_until": "2031-01-02T00:00:00Z"},
     "send_at", "not a time the message can wait for (past valid_until?)"),
    ({"to": "447700900001", "text": "x", "from": "OTHER"}, "from", "this sender is not allowed for the account"),
    ({"to": "33123456789", "text": "x"}, "to", "no route for this destination"),
    ({"to": "447700900001", "text": "y" * 200, "from": "OTHER"}, "from", "this sender is not allowed for the account"),
]


@pytest.fixture
async def picky_hub(smsc):
    config = http_hub_config({"uk": smsc}, [{"prefix": "44", "upstreams": ["uk"]}], acme={"source_addrs": ["ACME", ""]})
    async with running_hub(config) as hub:
        yield hub


async def test_a_batch_names_each_bad_items_field_from_the_top_as_a_single_message_names_it(picky_hub):
    """Fields are written from the item and prefixed only for a rejected one (api._in_item): the
    answer is the one a per-item path would give, item by item, beside good items of every shape."""
    good = [{"to": "447700900002", "text": "fine", "from": "ACME"},
            {"to": ["447700900003", "33123456789"], "text": "z" * 200, "reference": "long"}]
    items = [item for item, _, _ in _BAD_ITEMS]
    async with http_client(picky_hub) as http:
        async with http.post("/v1/messages", json={"messages": [good[0], *items, good[1]]}) as resp:
            assert resp.status == 202
            body = await resp.json()
        singles = []
        for item in items:
            async with http.post("/v1/messages", json=item) as resp:
                singles.append((resp.status, await resp.json()))
    n = len(items)
    assert (body["accepted"], body["rejected"]) == (2, n + 1)
    answers = body["messages"]
    assert answers[0]["status"] == "accepted" and answers[0]["parts"] == 1
    for i, (item, field, message) in enumerate(_BAD_ITEMS, start=1):
        to = "" if field == "callback_url" else item["to"]
        path = f"messages[{i}].{field}"
        assert answers[i]["to"] == to and answers[i]["index"] == i
        assert answers[i]["error"]["field"] == path and answers[i]["error"]["message"] == f"{path}: {message}"
        status, single = singles[i - 1]
        assert status == 422 and single["error"]["field"] == field
        assert single["error"]["message"] == f"{field}: {message}"
        assert single["error"]["code"] == answers[i]["error"]["code"]
    assert [(a["status"], a["to"]) for a in answers[n + 1:]] == [("accepted", "447700900003"),
                                                                 ("rejected", "33123456789")]
    assert answers[n + 1]["parts"] == 2 and answers[n + 1]["reference"] == "long"
    assert answers[n + 2]["error"]["field"] == f"messages[{n + 1}].to"
