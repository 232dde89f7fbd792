"""Runs of deliver_sm: what one read brings is handled as one list, and gives what one at a time gives.

smppcore's Client hands a read's deliver_sm / data_sm to ``on_messages`` as one run when
it is set (the hub's upstream links set it); the dispatcher passes a run of receipts to
:meth:`Receipts.received_all`, which matches them in one loop. Each shortcut is pinned
here to the path it replaces: the same bytes on the wire, in the same order, the same
rows moved, the same writes and the same deliveries to the ESME, and one request's
failure kept to itself.
"""

from __future__ import annotations

import asyncio
import collections
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_client_answers import Wire, bound_client
from test_receipt_path import Kit, turns

from smppcore import Client, CommandStatus, DeliverSm, Pdu, Tag, encode
from smppcore.constants import MessageState
from smppcore.message_ids import normalise_message_id
from smppcore.pdus import AlertNotification
from smppcore.receipt import ReceiptInfo, _tlv_facts, build_receipt, receipt_info_from_tlvs, receipts_requested
from smpphub.router import receipts as receipts_module
from smpphub.router.lifecycle import MessageRow, State

# --- the Client: a run handler's results answered as on_message's -----------------------------------

#: what a handler gives for one request: a status, a shared Future ("A", "B", resolved at the end with
#: a status each), or an exception (a run handler gives ESME_RX_T_APPN for it, as the Client does alone)
OUTCOMES = st.sampled_from([0, None, 0x45, 0x58, "A", "B", "raise"])


def _handlers(outcomes: list[Any], futures: dict[str, asyncio.Future[int]]) -> tuple[Any, Any]:
    by_seq = dict(enumerate(outcomes, 1))

    def one(pdu: Pdu) -> Any:
        outcome = by_seq[pdu.sequence_number]
        if outcome == "raise":
            raise RuntimeError("a bug met by this request alone")
        return futures[outcome] if isinstance(outcome, str) else outcome

    def run(pdus: list[Pdu]) -> list[Any]:
        results = []
        for pdu in pdus:
            try:
                results.append(one(pdu))
            except RuntimeError:
                results.append(CommandStatus.ESME_RX_T_APPN)
        return results

    return one, run


async def _wire_after(outcomes: list[Any], runs: bool) -> bytes:
    loop = asyncio.get_running_loop()
    futures = {"A": loop.create_future(), "B": loop.create_future()}
    one, run = _handlers(outcomes, futures)
    client, wire = await bound_client(one)
    if runs:
        client.on_messages = run
    client.data_received(b"".join(encode(DeliverSm(sequence_number=seq)) for seq in range(1, len(outcomes) + 1)))
    written = wire.data
    futures["B"].set_result(0x14)
    futures["A"].set_result(0)
    for _ in range(3):
        await asyncio.sleep(0)
    client.connection_lost(None)
    return written + b"|" + wire.data[len(written):]


@settings(max_examples=60, deadline=None)
@given(st.lists(OUTCOMES, min_size=1, max_size=20))
async def test_a_run_is_answered_as_one_request_at_a_time(outcomes: list[Any]) -> None:
    """The same responses, byte for byte, in the same order, before and after the Futures complete."""
    assert await _wire_after(outcomes, runs=True) == await _wire_after(outcomes, runs=False)


async def test_a_run_handler_that_raises_answers_its_run_with_an_error() -> None:
    def broken(pdus: list[Pdu]) -> list[int]:
        raise RuntimeError("a bug")

    client, wire = await bound_client(lambda pdu: 0)
    client.on_messages = broken
    client.data_received(b"".join(encode(DeliverSm(sequence_number=seq)) for seq in (1, 2)))
    assert [(status, seq) for _, status, seq in wire.responses()] == [(CommandStatus.ESME_RX_T_APPN, 1),
                                                                       (CommandStatus.ESME_RX_T_APPN, 2)]


async def test_a_run_handler_that_gives_too_few_results_answers_its_run_with_an_error() -> None:
    client, wire = await bound_client(lambda pdu: 0)
    client.on_messages = lambda pdus: [0]
    client.data_received(b"".join(encode(DeliverSm(sequence_number=seq)) for seq in (1, 2)))
    assert {status for _, status, _ in wire.responses()} == {CommandStatus.ESME_RX_T_APPN}


async def test_a_run_with_an_alert_in_it_goes_to_on_message_one_at_a_time() -> None:
    seen: list[str] = []
    client, wire = await bound_client(lambda pdu: seen.append(pdu.command_name))
    client.on_messages = lambda pdus: pytest.fail("not a run of messages to answer")
    client.data_received(encode(DeliverSm(sequence_number=1)) + encode(AlertNotification(sequence_number=2)))
    assert seen == ["deliver_sm", "alert_notification"] and [seq for _, _, seq in wire.responses()] == [1]


async def test_without_on_message_a_run_is_queued_for_messages() -> None:
    client = Client(system_id="esme", password="pw")
    client.on_messages = lambda pdus: pytest.fail("the queue takes them")
    wire = Wire()
    client.connection_made(wire)
    client.session.state = client.session.state.BOUND_TRX
    client.data_received(encode(DeliverSm(sequence_number=1)))
    assert (await client.next_message(1.0)).sequence_number == 1


# --- Receipts: a run matched in one loop, as one at a time ---------------------------------------------

#: one receipt of a run: which message it names (by index; -1 an id nobody sent), final or not
RECEIPTS = st.lists(st.tuples(st.integers(-1, 3), st.sampled_from(["final", "intermediate", "no id"])),
                    min_size=1, max_size=10)


def _receipt(index: int, kind: str) -> DeliverSm:
    if kind == "no id":
        return DeliverSm(esm_class=4)  # flagged a receipt, names nothing
    state = MessageState.ENROUTE if kind == "intermediate" else MessageState.DELIVERED
    return build_receipt(message_id=str(500 + index) if index >= 0 else "999999", state=state, source_addr="A",
                         destination_addr="44", submit_date=None, done_date=None, text=b"hi")


async def _handled(run: list[tuple[int, str]], together: bool, fail_on: str = "") -> tuple[Any, ...]:
    kit = Kit()
    await kit.deliveries.start()
    rows: list[MessageRow] = []
    for i in range(4):
        row = kit.sent_row(upstream_id=str(500 + i), registered_delivery=1 | 0x10)  # intermediate too
        row.id = f"hub{i}"
        rows.append(row)
    pdus = [_receipt(index, kind) for index, kind in run]
    if together:
        results = kit.receipts.received_all(kit.pool, pdus)  # type: ignore[arg-type]
    else:
        results = [kit.receipts.received(kit.pool, pdu) for pdu in pdus]  # type: ignore[arg-type]
    await turns()
    for _, write in kit.store.durable:
        write.set_result(None)
    await turns()
    answers = [r.result() if isinstance(r, asyncio.Future) and r.done() else r if isinstance(r, int) else "later"
               for r in results]
    for task in kit.host.tasks:  # an id nobody sent is looked for in the store: not here
        task.cancel()
    await asyncio.gather(*kit.host.tasks, return_exceptions=True)
    view = (answers, [(row.state, row.receipt) for row in rows], [receipts for receipts, _ in kit.store.durable],
            [(pdu, encoded) for pdu, _, encoded in kit.esme.sent], kit.receipts.stats.receipts_in,
            kit.receipts.stats.receipts_duplicate, kit.receipts.stats.receipts_unmatched)
    await kit.deliveries.stop()
    return view


@settings(max_examples=60, deadline=None)
@given(RECEIPTS)
async def test_a_run_of_receipts_is_matched_as_one_at_a_time(run: list[tuple[int, str]]) -> None:
    """The same answers, rows, durable writes, deliveries to the ESME and counts, duplicates and
    unknown ids included."""
    assert await _handled(run, together=True) == await _handled(run, together=False)


async def test_a_receipt_the_hub_fails_on_is_refused_alone_and_the_rest_of_its_run_goes_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = receipts_module.rewrite_receipt

    def rewrite(pdu: DeliverSm, hub_id: str, kind: int = 0) -> DeliverSm:
        if hub_id == "hub1":
            raise RuntimeError("a bug met by this receipt alone")
        return real(pdu, hub_id, kind)

    monkeypatch.setattr(receipts_module, "rewrite_receipt", rewrite)
    answers, rows, *_ = await _handled([(0, "final"), (1, "final"), (2, "final")], together=True)
    assert answers == [0, CommandStatus.ESME_RX_T_APPN, 0]
    assert [state.value for state, _ in rows] == ["delivered", "delivered", "delivered", "sent"]


# --- SENT rows kept to match their receipts: a run in one loop, keyed as the general rule keys them ------

@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.text(alphabet="0123456789abcdefABC \x00٣", max_size=8), st.text(max_size=6)),
                          st.integers(0, 0xFF), st.sampled_from(["smsc", "other", "gone"])), max_size=8),
       st.sampled_from([0, 10, 16]), st.integers(1, 5))
async def test_a_run_of_sent_rows_is_kept_as_one_at_a_time_by_the_general_rule(
        rows: list[tuple[str, int, str]], submit_base: int, limit: int) -> None:
    """Receipts.expect_all keys each row by normalise_message_id(its id, the pool's submit base) when
    it asked for any receipt (receipts_requested), skips a row whose pool is gone, and keeps at most
    ``limit``, the oldest let go: as the rule applied one row at a time does."""
    kit = Kit()
    kit.receipts.limit = limit
    pools = {name: SimpleNamespace(name=name, cfg=SimpleNamespace(receipt_id_base=0, submit_id_base=submit_base))
             for name in ("smsc", "other")}
    sent = [MessageRow(id=f"hub{n}", account="acme", pdu=b"", route=[upstream], state=State.SENT, upstream=upstream,
                       upstream_id=upstream_id, registered_delivery=rd, created_at=0.0, updated_at=0.0)
            for n, (upstream_id, rd, upstream) in enumerate(rows)]
    kit.receipts.expect_all(sent, pools)  # type: ignore[arg-type]
    expected: collections.OrderedDict[tuple[str, str], MessageRow] = collections.OrderedDict()
    for row in sent:
        pool = pools.get(row.upstream or "")
        if row.upstream_id and receipts_requested(row.registered_delivery) and pool is not None:
            expected[(pool.name, normalise_message_id(row.upstream_id, base=submit_base or None))] = row
            if len(expected) > limit:
                expected.popitem(last=False)
    assert list(kit.receipts.awaiting.items()) == list(expected.items())


# --- receipt_info_from_tlvs: the decoder's common shape read without _tlv_facts, as _tlv_facts reads it ----

def _from_tlvs_by_the_general_path(pdu: DeliverSm) -> ReceiptInfo | None:
    """receipt_info_from_tlvs as it was before its shortcut: every receipt through _tlv_facts."""
    if not pdu.tlvs:
        return None
    mid, state, network_error = _tlv_facts(pdu.tlvs)
    if not mid or state is None:
        return None
    err = "000" if network_error is None else f"{network_error[1]:03d}"
    return ReceiptInfo(message_id=mid, state=state, err=err, network_error=network_error)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.text(alphabet="12ab \x00", max_size=5), st.binary(max_size=3)),
       st.one_of(st.none(), st.integers(-1, 10), st.binary(max_size=2)),
       st.one_of(st.none(), st.binary(min_size=2, max_size=4)))
def test_receipt_info_from_tlvs_reads_the_common_shape_as_the_general_path(mid: Any, state: Any, nec: Any) -> None:
    tlvs: dict[int, Any] = {}
    for tag, value in ((Tag.RECEIPTED_MESSAGE_ID, mid), (Tag.MESSAGE_STATE, state), (Tag.NETWORK_ERROR_CODE, nec)):
        if value is not None:
            tlvs[int(tag)] = value
    pdu = DeliverSm(esm_class=4, tlvs=tlvs)
    assert receipt_info_from_tlvs(pdu) == _from_tlvs_by_the_general_path(pdu)
