"""Kannel's ``/cgi-bin/sendsms``, so an application written for Kannel works unchanged.

Parameters as Kannel's user guide lists them for sendsms: ``username`` and
``password`` (here an account's system_id and its SMPP password), ``from``, ``to``
(several numbers separated by spaces), ``text``, ``charset`` (what ``text``'s octets
are in; UTF-8 when absent), ``coding`` (0: 7-bit, 1: 8-bit binary, 2: UCS-2; absent:
chosen for the text), ``udh`` (octets, URL-encoded), ``validity`` and ``deferred``
(minutes), ``dlr-mask`` and ``dlr-url``. GET with a query string or POST with a form
body. Answers as Kannel does: ``202 0: Accepted for delivery`` (``3: Queued for later
delivery`` when deferred), 403 ``Authorization failed for sendsms``, 400 with Kannel's
wording for a missing or bad parameter, 503 ``Sending failed.``; in text/html, as
Kannel sends them. Parameters Kannel knows and the hub does not use (``smsc``,
``mclass``, ``priority``...) are taken and ignored; unknown ones too, as Kannel does.

The message goes through the same admission and durable store as any other
(:func:`.api.admit_drafts`). A ``dlr-url`` is kept with the message
(:class:`~router.store.base.HttpMeta`.kannel) and requested (GET) with its escapes
filled in for each event its ``dlr-mask`` asks for, with Kannel's dlr types:

====  ==================  =====================================================================
type  Kannel's name       when (``%A``)
====  ==================  =====================================================================
1     delivered           the final receipt says delivered (the receipt text)
2     failed              the final receipt says anything else (the receipt text); also an upstream
                          rejection when the mask has 2 and not 16
4     buffered            an intermediate notification from the upstream (ENROUTE, ACCEPTED...;
                          the hub asks for them, registered_delivery bit 4, when the mask has 4)
8     smsc submit ack     the upstream accepted the message (submit_sm_resp ESME_ROK; ``ACK/``),
                          once per message (its first part), not durable: lost if the hub dies first
16    smsc reject         no upstream accepted it: a permanent error, or retries and failover
                          exhausted (``NACK/0x<status, 8 hex digits>/<status name>``)
====  ==================  =====================================================================

1, 2, 4 and 16 travel with the receipt on its durable path (stored before the upstream
is answered, requested until a 2xx). The escapes (:func:`fill_dlr_url`): ``%d`` the dlr
type, ``%A`` as above, ``%p``/``%P`` the sender and receiver,
``%q``/``%Q`` the same with a leading 00 written +, ``%t`` the time
(``YYYY-MM-DD HH:MM:SS``), ``%T`` the unix time, ``%i`` the upstream (Kannel's smsc-id),
``%I`` the hub's message id, ``%F`` the upstream's message id, ``%n`` the username,
``%b`` the text, ``%a`` all its words, ``%k`` its first word, ``%s`` its second, ``%c``
the coding, ``%%`` a percent sign; each value URL-encoded, as Kannel does.

The account named by ``username`` is found in an index by system_id, built once per
configuration object (a reload gives the hub a new one, which the next request sees),
not by scanning the accounts on every request. Password checks are scrypt (~50 ms of a
core): a password that passed is remembered (its SHA-256, per account,
``PASSWORDS_REMEMBERED`` at most) and checks run one at a time beside the event loop, so
a flood of bad passwords costs one core, not the hub.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import urllib.parse
from collections import OrderedDict
from datetime import UTC, datetime, timedelta

import msgspec
from aiohttp import web
from multidict import MultiDict

from smppcore import Pdu, decode, status_name
from smppcore.pdus import DeliverSm, SubmitSm
from smppcore.text import decode_text

from ..auth import verify_password
from ..config import Account
from ..lifecycle import MessageRow, State
from .api import Accepted, admit_drafts, store_accepted
from .compose import Draft
from .errors import ApiError
from .schema import ADDRESS_PATTERN, SENDER_PATTERN
from .view import HUB, HubView

__all__ = ["register", "dlr_request", "intermediate_request", "ack_request", "fill_dlr_url", "KannelDlr"]

PASSWORDS_REMEMBERED = 10_000
_NUMBER = re.compile(ADDRESS_PATTERN)
_SENDER = re.compile(SENDER_PATTERN)
_ACCEPTED = "0: Accepted for delivery"
_DEFERRED = "3: Queued for later delivery"

# Kannel's dlr-mask bits, which are also the dlr types (%d) it sends
DLR_DELIVERED = 1
DLR_FAILED = 2
DLR_BUFFERED = 4
DLR_SMSC_ACK = 8
DLR_SMSC_REJECT = 16
_DLR_ANY = DLR_DELIVERED | DLR_FAILED | DLR_BUFFERED | DLR_SMSC_ACK | DLR_SMSC_REJECT
#: the outcomes told by a final receipt (the hub asks the upstream for receipts only for these)
_DLR_FINAL = DLR_DELIVERED | DLR_FAILED | DLR_SMSC_REJECT


class KannelDlr(msgspec.Struct, kw_only=True):
    """What a sendsms with a dlr-url keeps beside its message (HttpMeta.kannel, as JSON), to fill the escapes."""

    url: str
    mask: int
    username: str
    sender: str = ""
    text: str = ""
    coding: str = "0"


class _Sendsms(msgspec.Struct, kw_only=True):
    """A sendsms request made into messages: one draft per receiver, and its dlr-url if it asked for one."""

    drafts: list[Draft]
    dlr: KannelDlr | None


class _Logins:
    """Passwords that passed, by (system_id, SHA-256), bounded; checks one at a time. (The
    accounts themselves are the dispatcher's index, which a reload replaces.)"""

    def __init__(self) -> None:
        self._ok: OrderedDict[tuple[str, bytes], str] = OrderedDict()
        self._lock = asyncio.Lock()

    async def check(self, account: Account, password: str) -> bool:
        key = (account.system_id, hashlib.sha256(password.encode("utf-8", "surrogateescape")).digest())
        credential = account.credential
        if self._ok.get(key) == credential:
            return True
        async with self._lock:
            ok = await asyncio.get_running_loop().run_in_executor(None, verify_password, password, credential)
        if ok:
            self._ok[key] = credential
            while len(self._ok) > PASSWORDS_REMEMBERED:
                self._ok.popitem(last=False)
        return ok


LOGINS: web.AppKey[_Logins] = web.AppKey("smpphub.kannel_logins", _Logins)


def _kannel(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/html")


def _params(raw_query: str) -> MultiDict[bytes]:
    """The parameters as octets: ``text`` and ``udh`` are decoded by ``charset`` and ``coding``, not as UTF-8."""
    out: MultiDict[bytes] = MultiDict()
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        out.add(urllib.parse.unquote_plus(name), urllib.parse.unquote_to_bytes(value.replace("+", " ")))
    return out


def _text_param(params: MultiDict[bytes], name: str) -> str:
    return params.get(name, b"").decode("utf-8", "replace")


async def sendsms(request: web.Request) -> web.Response:
    if request.method == "POST":
        body = await request.read()
        params = _params(body.decode("latin-1"))
        for name, value in _params(request.rel_url.raw_query_string).items():
            params.setdefault(name, value)
    else:
        params = _params(request.rel_url.raw_query_string)
    hub = request.app[HUB]
    username = _text_param(params, "username") or _text_param(params, "user")
    password = _text_param(params, "password") or _text_param(params, "pass")
    logins = request.app[LOGINS]
    account = hub.dispatcher.accounts.get(username)
    if account is None or not password or not await logins.check(account, password):
        return _kannel(403, "Authorization failed for sendsms")
    try:
        sendsms = _drafts(params, account)
    except _Rejected as exc:
        return _kannel(400, str(exc))
    accepted: list[Accepted] = []
    try:
        kept = msgspec.json.encode(sendsms.dlr).decode() if sendsms.dlr is not None else ""
        for draft in sendsms.drafts:
            accepted.append(admit_drafts(hub, account, draft, kannel=kept))
        await store_accepted(hub, accepted)
    except ApiError as exc:
        if exc.status == 422:
            return _kannel(400, f"{exc.message}, rejected")
        return _kannel(503, "Sending failed.")
    return _kannel(202, _DEFERRED if sendsms.drafts[0].send_at is not None else _ACCEPTED)


class _Rejected(Exception):
    """A request Kannel would answer 400, with Kannel's words."""


def _drafts(params: MultiDict[bytes], account: Account) -> _Sendsms:
    to = _text_param(params, "to")
    if "to" not in params:
        raise _Rejected("Missing receiver number, rejected")
    numbers = [_plus(n) for n in to.split()]  # 00 for international, as +
    if not numbers:
        raise _Rejected("Empty receiver number not allowed, rejected")
    for number in numbers:
        if not _NUMBER.match(number):
            raise _Rejected("Invalid character in phone number, rejected")
    sender = _text_param(params, "from") or None
    if sender is not None and not _SENDER.match(sender):
        raise _Rejected("Invalid character in sender, rejected")
    raw_text = params.get("text", b"")
    udh = params.get("udh", b"")
    if not raw_text and not udh:
        raise _Rejected("Empty text and udh, rejected")
    coding_param = _text_param(params, "coding")
    if coding_param not in ("", "0", "1", "2"):
        raise _Rejected("Invalid value for coding, rejected")
    charset = _text_param(params, "charset") or "UTF-8"
    binary: bytes | None = None
    data_coding: int | None = None
    text = ""
    if coding_param == "1":
        binary = raw_text
    else:
        try:
            text = raw_text.decode(charset)
        except (LookupError, UnicodeDecodeError):
            raise _Rejected(f"Text not in charset {charset}, rejected") from None
        data_coding = {"0": 0, "2": 8}.get(coding_param)
    send_at = _minutes(params, "deferred")
    valid_until = _minutes(params, "validity")
    mask_text = _text_param(params, "dlr-mask") or "0"
    if not mask_text.isdigit() or int(mask_text) > 255:
        raise _Rejected("Invalid value for dlr-mask, rejected")
    mask = int(mask_text)
    dlr_url = _text_param(params, "dlr-url")
    wants = bool(mask & _DLR_ANY) and bool(dlr_url)
    dlr = None
    if wants:
        if not re.match(r"^https?://", dlr_url):
            raise _Rejected("Invalid dlr-url, rejected")
        dlr = KannelDlr(url=dlr_url, mask=mask, sender=sender or "", username=account.system_id, text=text,
                        coding=coding_param or "0")
    drafts = [Draft(n, text, sender=sender,
                    data_coding=data_coding, send_at=send_at, valid_until=valid_until,
                    receipt=wants and bool(mask & _DLR_FINAL), intermediate=wants and bool(mask & DLR_BUFFERED),
                    udh=udh, binary=binary) for n in numbers]
    return _Sendsms(drafts=drafts, dlr=dlr)


def _minutes(params: MultiDict[bytes], name: str) -> datetime | None:
    value = _text_param(params, name)
    if not value:
        return None
    if not value.isdigit() or int(value) > 60 * 24 * 365:
        raise _Rejected(f"Invalid value for {name}, rejected")
    return datetime.now(UTC) + timedelta(minutes=int(value))


# ---- dlr-url --------------------------------------------------------------------------------------


def dlr_request(kannel: str, row: MessageRow, receipt: Pdu) -> str | None:
    """The URL to GET for ``row``'s final receipt (type 1, 2 or 16), or None when the dlr-mask did not ask
    for this outcome."""
    dlr = msgspec.json.decode(kannel, type=KannelDlr)
    if row.state is State.DELIVERED:
        dlr_type, reply = DLR_DELIVERED, None
    elif row.state is State.UNDELIVERABLE and row.upstream_id is None and dlr.mask & DLR_SMSC_REJECT:
        # no upstream ever accepted it: what Kannel reports as an SMSC reject, in its words
        dlr_type, reply = DLR_SMSC_REJECT, f"NACK/0x{row.error:08x}/{status_name(row.error)}"
    else:
        dlr_type, reply = DLR_FAILED, None
    if not dlr.mask & dlr_type:
        return None
    return fill_dlr_url(dlr, row, receipt, dlr_type, reply=reply)


def intermediate_request(kannel: str, row: MessageRow, notification: Pdu) -> str | None:
    """The URL to GET for an upstream's intermediate notification about ``row`` (type 4), or None
    when the dlr-mask did not ask for it."""
    dlr = msgspec.json.decode(kannel, type=KannelDlr)
    if not dlr.mask & DLR_BUFFERED:
        return None
    return fill_dlr_url(dlr, row, notification, DLR_BUFFERED)


def ack_request(kannel: str, row: MessageRow) -> str | None:
    """The URL to GET once an upstream accepted ``row`` (type 8, ``%A`` = ``ACK/``), or None when the
    dlr-mask did not ask for it."""
    dlr = msgspec.json.decode(kannel, type=KannelDlr)
    if not dlr.mask & DLR_SMSC_ACK:
        return None
    return fill_dlr_url(dlr, row, None, DLR_SMSC_ACK, reply="ACK/")


def fill_dlr_url(dlr: KannelDlr, row: MessageRow, receipt: Pdu | None, dlr_type: int, *,
                 reply: str | None = None) -> str:
    """The dlr-url with Kannel's escapes filled in (see the module docstring); unknown ones stay as they are.

    ``%A`` is ``reply`` when given (Kannel's ACK/ and NACK/ texts), else ``receipt``'s text.
    """
    text = dlr.text
    words = text.split()
    submit = _decoded(row.pdu)
    sender = dlr.sender or (submit.source_addr if submit is not None else "")
    receiver = submit.destination_addr if submit is not None else ""
    when = datetime.fromtimestamp(row.updated_at, UTC)
    values = {
        "d": str(dlr_type), "A": reply if reply is not None else _receipt_text(receipt), "p": sender, "P": receiver,
        "q": _plus(sender), "Q": _plus(receiver), "t": when.strftime("%Y-%m-%d %H:%M:%S"),
        "T": str(int(row.updated_at)), "i": row.upstream or "", "I": row.id, "F": row.upstream_id or "",
        "n": dlr.username, "b": text, "a": text, "k": words[0] if words else "",
        "s": words[1] if len(words) > 1 else "", "c": dlr.coding, "%": "%",
    }

    def one(m: re.Match[str]) -> str:
        key = m.group(1)
        if key == "%":
            return "%"
        value = values.get(key)
        return m.group(0) if value is None else urllib.parse.quote(value, safe="")

    return re.sub(r"%(.)", one, dlr.url)


def _decoded(data: bytes) -> SubmitSm | None:
    try:
        pdu = decode(data)
    except ValueError:
        return None
    return pdu if isinstance(pdu, SubmitSm) else None


def _receipt_text(pdu: Pdu | None) -> str:
    if isinstance(pdu, DeliverSm) and pdu.short_message:
        try:
            return decode_text(pdu.short_message, pdu.data_coding)
        except ValueError:
            return pdu.short_message.decode("latin-1")
    return ""  # only a deliver_sm's short_message is read


def _plus(number: str) -> str:
    return "+" + number[2:] if number.startswith("00") else number


def register(app: web.Application, hub: HubView) -> None:
    app[LOGINS] = _Logins()
    app.router.add_route("GET", "/cgi-bin/sendsms", sendsms)
    app.router.add_route("POST", "/cgi-bin/sendsms", sendsms)

