"""The load generator's connection: smppcore's Client with a lean lane for submit_sm.

A load generator has to be faster than the servers it measures, and the general
request path (a Pdu object, an encoding, a Future and a callback per message) costs
more per message than a lean server does. So the submit_sm traffic takes a lane of
its own beside the session:

- the window is filled from prepared bytes (:class:`benchmarks.messages.MessagePool`):
  per submit_sm only the sequence number is put in, all of a pump in one write;
- a chunk read from the socket is framed here; submit_sm_resp, data_sm_resp,
  submit_multi_resp (and generic_nack) for our requests are read in place, their
  16-octet header and, when receipts are asked for, the message_id (and a
  submit_multi_resp's count of unsuccessful destinations), and timed when the chunk
  was read;
- deliver_sm (receipts) while bound: decoded by smppcore, handed to the worker and
  answered ESME_ROK from prepared bytes, all the answers of a chunk in one write;
- every other PDU (bind and unbind responses, enquire_link either way, a PDU that
  does not decode) goes to the :class:`smppcore.Session` underneath, which answers
  and times it as in any client. The sequence numbers come from that session, so
  the two kinds of request never collide.
"""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING, Any

import smppcore
from smppcore import CommandId, DeliverSmResp
from smppcore.codec import HEADER, decode, encode
from smppcore.errors import PduError
from smppcore.session import State

if TYPE_CHECKING:  # pragma: no cover
    from .worker import Worker

__all__ = ["BulkEsme"]

_SUBMIT_MULTI_RESP = int(CommandId.SUBMIT_MULTI_RESP)
#: the answers to what the lane sends (submit_sm, data_sm, submit_multi), and generic_nack
_ANSWERS = frozenset({int(CommandId.SUBMIT_SM_RESP), int(CommandId.DATA_SM_RESP), _SUBMIT_MULTI_RESP,
                      int(CommandId.GENERIC_NACK)})
_DELIVER_SM = int(CommandId.DELIVER_SM)
#: deliver_sm_resp (ESME_ROK, empty message_id) as smppcore encodes it, split around
#: the sequence number that each answer puts in
_DELIVER_SM_RESP = encode(DeliverSmResp())
_DELIVER_SM_RESP_HEAD, _DELIVER_SM_RESP_TAIL = _DELIVER_SM_RESP[:12], _DELIVER_SM_RESP[16:]
_SENDING_STATES = (State.BOUND_TX, State.BOUND_TRX)
_RECEIVING_STATES = (State.BOUND_RX, State.BOUND_TRX)


def _receipts_owed(cid: int, dests: int, body: bytes) -> int:
    """How many receipts an accepted request owes: one, or for a submit_multi one per
    destination less those its response lists as unsuccessful (``body`` its body)."""
    if cid != _SUBMIT_MULTI_RESP:
        return 1
    nul = body.find(b"\0")
    refused = body[nul + 1] if 0 <= nul < len(body) - 1 else 0
    return max(0, (dests or 1) - refused)


class BulkEsme(smppcore.Client):
    """One bind of a load run. ``inflight``: sequence number -> the time the message was due
    (open loop) or written (closed loop); ``sent_at``: the write time too, in open loop;
    ``multi``: the number of destinations of each submit_multi in flight (only those)."""

    def __init__(self, worker: Worker, slot: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.worker = worker
        self.slot = slot
        self.window = self.config.window
        self.max_pdu_size = self.config.max_pdu_size
        self.inflight: dict[int, float] = {}
        self.sent_at: dict[int, float] = {}
        self.multi: dict[int, int] = {}
        self.open_loop = worker.open_loop
        self.dlr = worker.opts.dlr
        self.held: Any = None  # a message taken from the feed that did not fit in the window yet
        self._rest = b""

    # ---- sending -----------------------------------------------------------------------------

    def pump(self) -> None:
        """Fill the window from the worker's feed, all of it in one write."""
        if self._writing_paused or self.transport is None or self.session.state not in _SENDING_STATES:
            return
        inflight = self.inflight
        free = self.window - len(inflight)
        if free <= 0:
            return
        take = self.worker.take
        next_seq = self.session.next_sequence_number
        now = perf_counter()
        out: list[bytes] = []
        sent = 0
        msg = self.held
        open_loop = self.open_loop
        sent_at = self.sent_at
        lags: list[int] | None = [] if open_loop else None
        while free > 0:
            if msg is None:
                msg = take(now)
                if msg is None:
                    break
            (parts, dests, _), due = msg
            n = len(parts)
            if n > free and inflight:
                break  # a long message waits until all its segments fit
            for head, body in parts:
                seq = next_seq()
                out += (head, seq.to_bytes(4, "big"), body)
                inflight[seq] = due
                if open_loop:
                    sent_at[seq] = now
                if dests:
                    self.multi[seq] = dests
            if lags is not None:
                lags.append(int((now - due) * 1e6))
            free -= n
            sent += n
            msg = None
        self.held = msg
        if sent:
            self.transport.write(b"".join(out))  # type: ignore[union-attr]
            self.worker.on_sent(sent, now, lags)

    def resume_writing(self) -> None:
        super().resume_writing()
        self.pump()

    # ---- receiving ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        buf = self._rest + data if self._rest else data
        end = len(buf)
        pos = 0
        inflight = self.inflight
        multi = self.multi
        unpack = HEADER.unpack_from
        now = perf_counter()
        latencies: list[int] = []
        record = latencies.append
        service: list[int] | None = [] if self.open_loop else None
        sent_at = self.sent_at
        failed: list[int] | None = None
        ids: list | None = [] if self.dlr else None
        others: list[bytes] | None = None
        answers: list[bytes] | None = None
        receipts = self.session.state in _RECEIVING_STATES
        while end - pos >= 16:
            length, cid, status, seq = unpack(buf, pos)
            if length < 16 or length > self.max_pdu_size:
                # out of step: the session reports it and closes
                others = (others or []) + [buf[pos:]]
                pos = end
                break
            if end - pos < length:
                break
            if cid in _ANSWERS:
                due = inflight.pop(seq, None)
                if due is not None:
                    dests = multi.pop(seq, 0) if multi else 0
                    record(int((now - due) * 1e6))
                    if service is not None:
                        service.append(int((now - sent_at.pop(seq, now)) * 1e6))
                    if status:
                        if failed is None:
                            failed = []
                        failed.append(status)
                    elif ids is not None:
                        body = buf[pos + 16:pos + length]
                        ids.append((body, due, _receipts_owed(cid, dests, body)))
                    pos += length
                    continue
            elif cid == _DELIVER_SM and receipts:
                try:
                    pdu = decode(buf[pos:pos + length])
                except PduError:
                    pass  # the session answers it with the right status
                else:
                    self.worker.on_message(pdu)
                    if answers is None:
                        answers = []
                    answers += (_DELIVER_SM_RESP_HEAD, buf[pos + 12:pos + 16], _DELIVER_SM_RESP_TAIL)
                    pos += length
                    continue
            if others is None:
                others = []
            others.append(buf[pos:pos + length])
            pos += length
        self._rest = buf[pos:] if pos < end else b""
        if latencies or answers:
            session = self.session
            session.last_received = session.last_activity = self.loop.time()
        if answers and self.transport is not None:
            self.transport.write(b"".join(answers))
        if latencies:
            self.worker.on_responses(now, latencies, service, failed, ids)
        if others:
            super().data_received(b"".join(others))
        if latencies:
            self.pump()
            if not inflight:
                self.worker.bind_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        lost = len(self.inflight)
        self.inflight.clear()
        self.sent_at.clear()
        self.multi.clear()
        held, self.held = self.held, None
        self.worker.bind_lost(self, lost, held)

    def expire(self, now: float, timeout: float) -> int:
        """Forget the requests written more than ``timeout`` seconds ago; how many they were."""
        inflight, sent_at = self.inflight, self.sent_at
        old = []
        for seq, t in inflight.items():
            if sent_at:
                t = sent_at.get(seq, t)
            if now - t < timeout:
                break
            old.append(seq)
        for seq in old:
            del inflight[seq]
            sent_at.pop(seq, None)
            self.multi.pop(seq, None)
        return len(old)
