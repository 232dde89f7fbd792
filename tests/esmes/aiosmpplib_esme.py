"""An ESME on aiosmpplib (PyPI, asyncio), for tests/test_check_esme.py.

    python tests/esmes/aiosmpplib_esme.py --port 2775 [--seconds 60]

aiosmpplib keeps the connection (reconnects with its retry timer, answers
enquire_link and deliver_sm); its default throttle handler holds the sender back
only once ESME_RTHROTTLED passes 1% of at least 50 answers. What it leaves to its
user is putting a throttled message back in the queue, done here in the hook
``--retry-after`` seconds later. Submits numbered messages at ``--rate`` per second
until ``--seconds`` have passed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import aiosmpplib
from aiosmpplib import NPI, TON, AbstractHook, PhoneNumber, SmppCommandStatus
from aiosmpplib.broker import SimpleBroker
from aiosmpplib.retrytimer import SimpleExponentialBackoff


class Requeue(AbstractHook):
    """Puts a message answered ESME_RTHROTTLED back in the broker's queue."""

    def __init__(self, broker: SimpleBroker, retry_after: float) -> None:
        self.broker = broker
        self.retry_after = retry_after
        self.sent: dict[str, aiosmpplib.SubmitSm] = {}
        self.tasks: set[asyncio.Task] = set()

    def requeue(self, log_id: str, delay: float) -> None:
        async def later() -> None:
            await asyncio.sleep(delay)
            await self.broker.enqueue(submit(log_id))

        task = asyncio.ensure_future(later())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def sending(self, smpp_message, pdu, client_id) -> None:
        if isinstance(smpp_message, aiosmpplib.SubmitSm):
            self.sent[smpp_message.log_id] = smpp_message

    async def received(self, smpp_message, pdu, client_id) -> None:
        if isinstance(smpp_message, aiosmpplib.SubmitSmResp):
            original = self.sent.pop(smpp_message.log_id, None)
            if original is not None and smpp_message.command_status == SmppCommandStatus.ESME_RTHROTTLED:
                self.requeue(original.log_id, self.retry_after)

    async def send_error(self, smpp_message, error, client_id) -> None:
        if isinstance(smpp_message, aiosmpplib.SubmitSm):
            self.requeue(smpp_message.log_id, 0.0)


def submit(log_id: str) -> aiosmpplib.SubmitSm:
    number = int(log_id)
    return aiosmpplib.SubmitSm(
        short_message=f"aiosmpplib test message {number}",
        source=PhoneNumber("AioSmpp", TON.ALPHANUMERIC, NPI.UNKNOWN),
        destination=PhoneNumber(f"4477007{number:05d}", TON.INTERNATIONAL, NPI.ISDN),
        log_id=log_id,
        registered_delivery=1,
    )


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--system-id", default="aiosmpplib")
    p.add_argument("--password", default="secret")
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--retry-after", type=float, default=0.3)
    args = p.parse_args()
    broker = SimpleBroker(maxsize=100_000)
    esme = aiosmpplib.ESME(
        smsc_host=args.host, smsc_port=args.port, system_id=args.system_id, password=args.password,
        broker=broker, hook=Requeue(broker, args.retry_after), log_level=logging.WARNING, enquire_link_interval=1.0,
        retry_timer=SimpleExponentialBackoff(min_delay=200),
    )
    task = asyncio.ensure_future(esme.start())
    loop = asyncio.get_running_loop()
    end = loop.time() + args.seconds
    number = 0
    while loop.time() < end and not task.done():
        number += 1
        await broker.enqueue(submit(str(number)))
        await asyncio.sleep(1 / args.rate)
    await asyncio.wait_for(esme.stop(), 10)
    await asyncio.wait_for(task, 10)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
