"""Kannel's /cgi-bin/sendsms: an application written for Kannel works unchanged, dlr-url escapes included."""

from __future__ import annotations

import urllib.parse

import aiohttp
import pytest
from httpkit import http_hub_config, local_web_server, running_hub
from hubkit import simulator, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_http_webhooks import Receiver

from smppcore.text import decode_text

ROUTES = [{"prefix": "44", "upstreams": ["uk"]}]


@pytest.fixture
async def receiver():
    from aiohttp import web

    rec = Receiver()
    async with local_web_server(web.get("/dlr", rec.dlr)) as rec.url:
        yield rec


@pytest.fixture
async def hub(smsc):
    async with running_hub(http_hub_config({"uk": smsc}, ROUTES)) as hub:
        yield hub


async def test_sendsms_with_dlr_url_escapes_filled_in(hub, smsc, receiver):
    dlr = receiver.url + "/dlr?type=%d&from=%p&to=%P&id=%I&smsc=%i&fid=%F&ts=%T&reply=%A&q=%Q&user=%n&kw=%k&pct=%%"
    params = {"username": "acme", "password": "pw", "from": "ACME", "to": "00447700900001", "text": "héllo world",
              "dlr-mask": "3", "dlr-url": dlr}
    async with aiohttp.ClientSession() as http:
        async with http.get(hub.http.url + "/cgi-bin/sendsms", params=params) as resp:
            assert resp.status == 202
            assert await resp.text() == "0: Accepted for delivery"
    await wait_until(lambda: receiver.gets, what="the dlr-url requested")
    got = urllib.parse.parse_qs(urllib.parse.urlsplit(receiver.gets[0]).query, keep_blank_values=True)
    one = {k: v[0] for k, v in got.items()}
    assert one["type"] == "1"  # delivered
    assert one["from"] == "ACME" and one["to"] == "447700900001" and one["q"] == "447700900001"
    assert one["smsc"] == "uk" and one["user"] == "acme" and one["kw"] == "héllo"
    assert one["id"].startswith("w") and one["fid"] == smsc.sim.messages[0].message_ids[0]
    assert one["ts"].isdigit() and "stat:DELIVRD" in one["reply"] and f"id:{one['id']}" in one["reply"]
    assert one["pct"] == "%"
    assert smsc.sim.messages[0].text == "héllo world"


async def test_sendsms_as_a_post_form_with_charset_and_ucs2(hub, smsc):
    text = "Привет"
    form = {"username": "acme", "password": "pw", "to": "447700900002 447700900003", "coding": "2",
            "charset": "ISO-8859-5"}
    body = urllib.parse.urlencode(form) + "&text=" + urllib.parse.quote_from_bytes(text.encode("iso-8859-5"))
    async with aiohttp.ClientSession() as http:
        async with http.post(hub.http.url + "/cgi-bin/sendsms", data=body,
                             headers={"Content-Type": "application/x-www-form-urlencoded"}) as resp:
            assert resp.status == 202, await resp.text()
    await wait_until(lambda: len(smsc.sim.messages) == 2, what="both destinations upstream")
    assert {m.destination_addr for m in smsc.sim.messages} == {"447700900002", "447700900003"}
    assert all(m.text == text for m in smsc.sim.messages)


async def test_sendsms_with_udh_and_binary(hub, smsc):
    udh = bytes.fromhex("0605040b8423f0")
    query = ("username=acme&password=pw&to=447700900004&coding=1&udh="
             + urllib.parse.quote_from_bytes(udh) + "&text=" + urllib.parse.quote_from_bytes(b"\x01\x02\xff"))
    async with aiohttp.ClientSession() as http:
        async with http.get(hub.http.url + "/cgi-bin/sendsms?" + query) as resp:
            assert resp.status == 202, await resp.text()
    await wait_until(lambda: smsc.sim.messages, what="the message upstream")
    got = smsc.sim.messages[0]
    assert got.data_coding == 4 and got.payload.endswith(b"\x01\x02\xff")


@pytest.mark.parametrize(("query", "status", "text"), [
    ("username=acme&password=wrong&to=447700900001&text=x", 403, "Authorization failed for sendsms"),
    ("username=nobody&password=pw&to=447700900001&text=x", 403, "Authorization failed for sendsms"),
    ("to=447700900001&text=x", 403, "Authorization failed for sendsms"),
    ("username=acme&password=pw&text=x", 400, "Missing receiver number, rejected"),
    ("username=acme&password=pw&to=&text=x", 400, "Empty receiver number not allowed, rejected"),
    ("username=acme&password=pw&to=44abc&text=x", 400, "Invalid character in phone number, rejected"),
    ("username=acme&password=pw&to=447700900001", 400, "Empty text and udh, rejected"),
    ("username=acme&password=pw&to=447700900001&text=x&coding=7", 400, "Invalid value for coding, rejected"),
    ("username=acme&password=pw&to=447700900001&text=x&dlr-mask=x", 400, "Invalid value for dlr-mask, rejected"),
    ("username=acme&password=pw&to=447700900001&text=%FF&charset=UTF-8", 400, "Text not in charset UTF-8, rejected"),
    ("username=acme&password=pw&to=447700900001&text=x&charset=nonesuch", 400, "Text not in charset nonesuch"),
    ("username=acme&password=pw&to=447700900001&text=x&deferred=soon", 400, "Invalid value for deferred, rejected"),
    ("username=acme&password=pw&to=33123456789&text=x", 400, "to: no route for this destination, rejected"),
    ("username=acme&password=pw&to=447700900001&text=x&from=far+too+long+sender", 400,
     "Invalid character in sender, rejected"),
])
async def test_sendsms_errors_in_kannels_words(hub, smsc, query, status, text):
    async with aiohttp.ClientSession() as http:
        async with http.get(hub.http.url + "/cgi-bin/sendsms?" + query) as resp:
            assert resp.status == status
            assert text in await resp.text()
            assert "Traceback" not in await resp.text()
    assert not smsc.sim.messages


async def test_sendsms_finds_accounts_as_the_last_reload_left_them(hub, smsc):
    """The account index follows a reload: a removed account is refused like a wrong password,
    an added one is let in."""
    import msgspec

    gamma = [msgspec.structs.replace(a, system_id="gamma") for a in hub.config.accounts if a.system_id == "beta"]
    before = hub.config
    answers = []
    async with aiohttp.ClientSession() as http:
        async def send(username: str, password: str = "pw") -> None:
            query = f"username={username}&password={password}&to=447700900020&text=x"
            async with http.get(hub.http.url + "/cgi-bin/sendsms?" + query) as resp:
                answers.append((username, password, resp.status, await resp.text()))

        await send("acme")
        await send("gamma")
        hub.reload(msgspec.structs.replace(before, accounts=gamma))
        await send("acme")
        await send("gamma")
        await send("gamma", "wrong")
        hub.reload(before)
        await send("acme")
        await send("gamma")
    refused = "Authorization failed for sendsms"
    assert answers == [("acme", "pw", 202, "0: Accepted for delivery"), ("gamma", "pw", 403, refused),
                       ("acme", "pw", 403, refused), ("gamma", "pw", 202, "0: Accepted for delivery"),
                       ("gamma", "wrong", 403, refused),
                       ("acme", "pw", 202, "0: Accepted for delivery"), ("gamma", "pw", 403, refused)]


def test_fill_dlr_url_leaves_unknown_escapes():
    from smppcore import DeliverSm, SubmitSm, encode
    from smpphub.router.http.kannel import KannelDlr, fill_dlr_url
    from smpphub.router.lifecycle import MessageRow, State

    row = MessageRow(id="w1", account="acme", pdu=encode(SubmitSm(source_addr="S", destination_addr="0044123")),
                     route=["uk"], state=State.UNDELIVERABLE, upstream="uk", upstream_id="F9", updated_at=0.0)
    receipt = DeliverSm(short_message=b"id:w1 stat:UNDELIV")
    dlr = KannelDlr(url="http://x/?a=%d&b=%Z&c=%Q&d=%t&e=%A", mask=3, username="acme")
    url = fill_dlr_url(dlr, row, receipt, 2)
    assert url == "http://x/?a=2&b=%Z&c=%2B44123&d=1970-01-01%2000%3A00%3A00&e=id%3Aw1%20stat%3AUNDELIV"
    assert decode_text(b"x", 0) == "x"



# ---- dlr-mask 4, 8 and 16 -------------------------------------------------------------------------

REJECTED_PREFIX = "4479"  # the simulator below answers these ESME_RINVDSTADR: permanent


@pytest.fixture
async def picky_smsc():
    """An upstream that sends ENROUTE before each final receipt (when asked) and rejects 4479... for good."""
    sim = await simulator(receipts={"intermediate": ["ENROUTE"]},
                          errors={"rules": [{"destination": f"^{REJECTED_PREFIX}", "status": "ESME_RINVDSTADR"}]})
    yield sim
    await sim.close()


async def _sendsms(hub, to: str, mask: int, receiver) -> None:
    params = {"username": "acme", "password": "pw", "to": to, "text": "hi", "dlr-mask": str(mask),
              "dlr-url": receiver.url + "/dlr?type=%d&reply=%A&fid=%F&id=%I"}
    async with aiohttp.ClientSession() as http:
        async with http.get(hub.http.url + "/cgi-bin/sendsms", params=params) as resp:
            assert resp.status == 202, await resp.text()


def _dlrs(receiver) -> list[dict[str, str]]:
    return [{k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(g).query,
                                                        keep_blank_values=True).items()} for g in receiver.gets]


async def test_dlr_mask_8_4_1_ack_buffered_then_delivered(picky_smsc, receiver):
    async with running_hub(http_hub_config({"uk": picky_smsc}, ROUTES)) as hub:
        await _sendsms(hub, "447700900010", 1 | 4 | 8, receiver)
        await wait_until(lambda: len(receiver.gets) == 3, what="three dlr-url requests")
        await wait_until(lambda: hub.webhooks.pending() == 0, what="nothing owed")
    dlrs = _dlrs(receiver)
    by_type = {d["type"]: d for d in dlrs}
    assert sorted(by_type) == ["1", "4", "8"] and len(dlrs) == 3, dlrs
    upstream_id = picky_smsc.sim.messages[0].message_ids[0]
    assert by_type["8"]["reply"] == "ACK/" and by_type["8"]["fid"] == upstream_id  # as Kannel's smsc submit ack
    assert "stat:ENROUTE" in by_type["4"]["reply"] and "stat:DELIVRD" in by_type["1"]["reply"]
    assert len({d["id"] for d in dlrs}) == 1  # all about the one message


async def test_dlr_mask_8_once_for_a_long_message(picky_smsc, receiver):
    async with running_hub(http_hub_config({"uk": picky_smsc}, ROUTES)) as hub:
        params = {"username": "acme", "password": "pw", "to": "447700900013", "text": "long " * 60,
                  "dlr-mask": "8", "dlr-url": receiver.url + "/dlr?type=%d&id=%I"}
        async with aiohttp.ClientSession() as http:
            async with http.get(hub.http.url + "/cgi-bin/sendsms", params=params) as resp:
                assert resp.status == 202
        await wait_until(lambda: len(picky_smsc.sim.submits) == 2, what="both parts accepted upstream")
        await wait_until(lambda: receiver.gets, what="the submit ack")
        await wait_until(lambda: hub.webhooks.pending() == 0, what="nothing owed")
    assert [d["type"] for d in _dlrs(receiver)] == ["8"]  # one per message, as Kannel's for a split message


@pytest.mark.parametrize(("mask", "expected"), [
    (16, {"16"}),  # smsc reject
    (2 | 16, {"16"}),  # one request for the one outcome: the reject says it
    (2, {"2"}),  # an application that knows only 1 and 2 hears failed
    (1 | 4 | 8, set()),  # never accepted, never delivered: nothing it asked for
])
async def test_dlr_mask_16_when_the_upstream_rejects_for_good(picky_smsc, receiver, mask, expected):
    async with running_hub(http_hub_config({"uk": picky_smsc}, ROUTES)) as hub:
        await _sendsms(hub, REJECTED_PREFIX + "00900011", mask, receiver)
        # its failed receipt settled: the dlr-url requested (and answered), or not asked for
        await wait_until(lambda: hub.deliveries.delivered == 1, what="the rejection's receipt settled")
    dlrs = _dlrs(receiver)
    assert {d["type"] for d in dlrs} == expected and len(dlrs) == len(expected)
    if "16" in expected:
        assert dlrs[0]["reply"] == "NACK/0x0000000b/ESME_RINVDSTADR" and dlrs[0]["fid"] == ""


async def test_dlr_mask_without_8_or_4_sends_neither(picky_smsc, receiver):
    async with running_hub(http_hub_config({"uk": picky_smsc}, ROUTES)) as hub:
        await _sendsms(hub, "447700900012", 1, receiver)
        await wait_until(lambda: receiver.gets, what="the delivered dlr")
        await wait_until(lambda: hub.webhooks.pending() == 0, what="nothing owed")
    assert [d["type"] for d in _dlrs(receiver)] == ["1"]
    # no ENROUTE was asked for: the hub asks for intermediate notifications only with dlr-mask 4
    assert picky_smsc.sim.submits[0].pdu.registered_delivery == 1


def test_dlr_request_types_follow_kannel():
    import msgspec

    from smppcore import DeliverSm, SubmitSm, encode
    from smpphub.router.http.kannel import KannelDlr, ack_request, dlr_request, intermediate_request
    from smpphub.router.lifecycle import MessageRow, State

    def row(state, upstream_id=None, error=0):
        return MessageRow(id="w1", account="acme", pdu=encode(SubmitSm(destination_addr="44")), route=["uk"],
                          state=state, upstream="uk", upstream_id=upstream_id, error=error)

    def kept(mask):
        return msgspec.json.encode(KannelDlr(url="http://x/?t=%d&a=%A", mask=mask, username="acme")).decode()

    receipt = DeliverSm(short_message=b"id:w1 stat:UNDELIV")
    assert dlr_request(kept(31), row(State.DELIVERED, "F"), receipt).startswith("http://x/?t=1&")
    assert dlr_request(kept(31), row(State.UNDELIVERABLE, "F"), receipt).startswith("http://x/?t=2&")
    assert dlr_request(kept(31), row(State.EXPIRED), receipt).startswith("http://x/?t=2&")
    assert dlr_request(kept(31), row(State.UNDELIVERABLE, None, 0x45), receipt) == \
        "http://x/?t=16&a=NACK%2F0x00000045%2FESME_RSUBMITFAIL"
    assert dlr_request(kept(1), row(State.UNDELIVERABLE, None, 0x45), receipt) is None
    assert intermediate_request(kept(4), row(State.SENT, "F"), receipt).startswith("http://x/?t=4&")
    assert intermediate_request(kept(3), row(State.SENT, "F"), receipt) is None
    assert ack_request(kept(8), row(State.SENT, "F")) == "http://x/?t=8&a=ACK%2F"
    assert ack_request(kept(23), row(State.SENT, "F")) is None


PARAMS = ["username", "password", "from", "to", "text", "coding", "charset", "udh", "dlr-mask", "dlr-url",
          "validity", "deferred", "smsc", "mclass", "user", "pass"]
VALUES = st.one_of(st.text(max_size=30), st.sampled_from(["acme", "pw", "447700900001", "0", "1", "2", "UTF-8",
                                                          "http://127.0.0.1:1/x?%d", "%FF%00", "-1", "9" * 30]))


async def test_sendsms_never_answers_5xx_or_a_traceback(hub):
    """Random parameter sets, as a hostile client sends them: always Kannel's 202, 400 or 403."""
    import urllib.parse

    queries: list[str] = []

    @settings(max_examples=60, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.dictionaries(st.sampled_from(PARAMS), VALUES, max_size=8))
    def collect(params: dict[str, str]) -> None:
        queries.append(urllib.parse.urlencode(params))

    collect()
    async with aiohttp.ClientSession() as http:
        for query in queries:
            async with http.get(hub.http.url + "/cgi-bin/sendsms?" + query) as resp:
                body = await resp.text()
                assert resp.status in (202, 400, 403), (query, resp.status, body)
                assert "Traceback" not in body
