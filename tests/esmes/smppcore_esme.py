"""An ESME built on smppcore's client, for tests/test_check_esme.py: a well-behaved one,
or with ``--break ITEM`` one that gets exactly that check-esme item wrong.

    python tests/esmes/smppcore_esme.py --port 2775 [--window 10] [--rate 100] [--break throttling]

It binds as a transceiver (``--bind tx+rx``: a transmitter and a receiver, two
connections; ``--bind tx``: a transmitter alone), submits numbered messages (``check-esme test message N``) at
``--rate`` per second, keeps at most ``--window`` in flight, answers deliver_sm, pauses
and retries a message answered ESME_RTHROTTLED after ``--retry-after`` seconds and one lost with a
connection on the next connection, reconnects with back-off, and exits 0 when the SMSC
unbinds every bind. Prints one line per event worth asserting on (``bound``, ``unbound``).

The breaks: ``bind`` announces interface_version 0x33; ``enquire_link``, ``reject`` and
``unbind`` leave the SMSC's enquire_link, unknown PDU, unbind unanswered; ``window`` keeps
five times the window in flight (sending in one burst); ``throttling`` resends a throttled
message at once; ``receipts_mo`` answers deliver_sm ESME_RX_T_APPN; ``reconnect`` exits
when the connection drops.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys

import smppcore
from smppcore import Backoff, CommandId, CommandStatus, SessionConfig, SubmitSm
from smppcore.session import Session
from smppcore.session_events import Unbound

BREAKS = ("bind", "enquire_link", "window", "throttling", "receipts_mo", "reject", "reconnect", "unbind")
#: the answers a broken session leaves out, by break
UNANSWERED = {
    "enquire_link": CommandId.ENQUIRE_LINK_RESP,
    "reject": CommandId.GENERIC_NACK,
    "unbind": CommandId.UNBIND_RESP,
}


class MuteSession(Session):
    """A session that never sends one kind of the answers it gives on its own."""

    muted: int = 0

    def _answer(self, data: bytes, events: list) -> None:
        if int.from_bytes(data[4:8], "big") == self.muted:
            return
        super()._answer(data, events)


class TestEsme(smppcore.Client):
    muted: int | None = None

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.unbound_by_peer = False
        if self.muted is not None:
            self.session.__class__ = MuteSession
            self.session.muted = self.muted  # type: ignore[attr-defined]

    def handle_events(self, events) -> None:
        if any(isinstance(e, Unbound) and e.by_peer for e in events):
            self.unbound_by_peer = True
        super().handle_events(events)


def say(event: str, **fields: object) -> None:
    extra = " ".join(f"{k}={v}" for k, v in fields.items())
    print(f"{event} {extra}".rstrip(), flush=True)


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--system-id", default="esme")
    p.add_argument("--password", default="secret")
    p.add_argument("--window", type=int, default=10)
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--retry-after", type=float, default=0.3)
    p.add_argument("--bind", default="trx", choices=("trx", "tx", "rx", "tx+rx"))
    p.add_argument("--break", dest="broken", choices=BREAKS)
    args = p.parse_args()
    broken = args.broken
    TestEsme.muted = UNANSWERED.get(broken or "")
    window = args.window * 5 if broken == "window" else args.window
    rate = args.rate * 100 if broken == "window" else args.rate  # past the window in one burst
    retry_after = 0.0 if broken == "throttling" else args.retry_after

    def on_message(pdu) -> int:
        return CommandStatus.ESME_RX_T_APPN if broken == "receipts_mo" else CommandStatus.ESME_ROK

    retries: collections.deque[int] = collections.deque()
    wake = asyncio.Event()
    numbers = iter(range(1, 1 << 30))
    loop = asyncio.get_running_loop()

    def retry(number: int) -> None:
        retries.append(number)
        wake.set()

    paused_until = 0.0  # after ESME_RTHROTTLED the sender pauses, as the SMSC asked

    def answered(number: int, fut: asyncio.Future) -> None:
        nonlocal paused_until
        if fut.cancelled() or fut.exception() is not None:
            retry(number)  # lost with the connection: send it again on the next one
        elif fut.result().command_status == CommandStatus.ESME_RTHROTTLED:
            if retry_after:
                paused_until = loop.time() + retry_after
                loop.call_later(retry_after, retry, number)
            else:
                retry(number)

    async def submit(client: smppcore.Client) -> None:
        while True:
            if paused_until > loop.time():
                await asyncio.sleep(paused_until - loop.time())
            if retries:
                number = retries.popleft()
            else:
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), 1 / rate)
                except TimeoutError:
                    pass
                number = retries.popleft() if retries else next(numbers)
            pdu = SubmitSm(source_addr="CheckEsme", destination_addr=f"4477009{number:05d}",
                           short_message=f"check-esme test message {number}".encode(), registered_delivery=1)
            fut = await client.send(pdu)
            fut.add_done_callback(lambda f, n=number: answered(n, f))

    config = SessionConfig(window=window, enquire_link_interval=0.5)

    async def keep(bind: str) -> None:
        """One bind of ``bind`` type, again after each drop, until the SMSC unbinds it."""
        async for client in smppcore.reconnecting(
            args.host, args.port, backoff=Backoff(initial=0.2, maximum=1.0), system_id=args.system_id,
            password=args.password, bind=bind, config=config, on_message=on_message, client_class=TestEsme,
            interface_version=0x33 if broken == "bind" else 0x34,
        ):
            say("bound", bind=bind)
            sender = asyncio.ensure_future(submit(client)) if bind != "rx" else None
            await client.closed
            if sender is not None:
                sender.cancel()
            if client.unbound_by_peer:
                say("unbound", bind=bind)
                return
            if broken == "reconnect":
                say("gone", bind=bind)
                return

    await asyncio.gather(*(keep(bind) for bind in args.bind.split("+")))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
