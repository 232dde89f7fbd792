"""Test kit for receipts as an ESME sees them: each matched to its message, counted.

:class:`ReceiptBook` is the receipt matching an ESME should do, built on smppcore.receipt;
:func:`submit_all` submits messages the way an ESME should (resubmitting throttled ones
after a back-off). Used against the simulator's carrier profiles and against the hub.
"""

from __future__ import annotations

import asyncio
import collections

from smppcore import CommandStatus, EsmClass, Pdu, SubmitSm
from smppcore.receipt import is_receipt, normalise_message_id, receipt_info

DEFAULT_N = 60
TO = "447700900123"


class ReceiptBook:
    """An ESME's receipt matching: every receipt to its message, by id, in the carrier's bases.

    A receipt whose id no submit_sm_resp has named yet waits in ``early`` until one does
    (a carrier may send the receipt first).
    """

    def __init__(self, submit_base: int | None = None, receipt_base: int | None = None) -> None:
        self.submit_base = submit_base
        self.receipt_base = receipt_base
        self.known: set[str] = set()
        self.early: dict[str, list[Pdu]] = {}
        self.early_count = 0
        self.finals: collections.Counter[str] = collections.Counter()
        self.intermediates: collections.Counter[str] = collections.Counter()
        self.not_receipts: list[Pdu] = []
        self.pdus: list[Pdu] = []

    def submitted(self, message_id: str) -> None:
        key = normalise_message_id(message_id, base=self.submit_base)
        self.known.add(key)
        for pdu in self.early.pop(key, []):
            self._count(key, pdu)

    def take(self, pdu: Pdu) -> int:
        """The client's on_message handler: ESME_ROK for everything."""
        self.pdus.append(pdu)
        if not is_receipt(pdu):
            self.not_receipts.append(pdu)
            return 0
        info = receipt_info(pdu)
        assert info is not None, pdu
        key = normalise_message_id(info.message_id, base=self.receipt_base)
        if key in self.known:
            self._count(key, pdu)
        else:
            self.early.setdefault(key, []).append(pdu)
            self.early_count += 1
        return 0

    def _count(self, key: str, pdu: Pdu) -> None:
        info = receipt_info(pdu)
        assert info is not None
        intermediate = pdu.esm_class & EsmClass.TYPE_MASK == EsmClass.TYPE_INTERMEDIATE_NOTIFICATION
        if intermediate or not info.state.is_final:
            self.intermediates[key] += 1
        else:
            self.finals[key] += 1

    @property
    def unmatched(self) -> int:
        return sum(len(v) for v in self.early.values())


async def submit_all(client, book: ReceiptBook, n: int = DEFAULT_N, registered_delivery: int = 1,
                     destination_addr: str = TO) -> list[str]:
    """Submit ``n`` messages (pipelined), resubmitting throttled ones after a short back-off; their ids."""
    ids: list[str | None] = [None] * n
    todo = list(range(n))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    backoff = 0.01
    while todo:
        assert loop.time() < deadline, f"{len(todo)} messages never accepted"
        futures = []
        for i in todo:
            pdu = SubmitSm(source_addr="Acme", destination_addr=destination_addr, short_message=f"msg {i}".encode(),
                           registered_delivery=registered_delivery)
            futures.append((i, await client.send(pdu)))
        todo = []
        for i, fut in futures:
            resp = await fut
            if resp.command_status == CommandStatus.ESME_RTHROTTLED:
                todo.append(i)
                continue
            assert resp.command_status == 0, resp
            ids[i] = resp.message_id
            book.submitted(resp.message_id)
        if todo:
            await asyncio.sleep(backoff)  # back-off before resubmitting
            backoff = min(backoff * 2, 0.2)
    return [i for i in ids if i is not None]
