"""What the hub's CPU work (benchmarks/results/2026-12-01-hub-cpu.txt) changed, held to its meaning.

The speed itself is shown by ``python -m smpphub.bench.hub``, not by timed tests; these
check that the faster forms answer exactly what the slower ones did.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

import smppcore
from smppcore import EsmClass, MessageState
from smppcore.runtime import GC_YOUNG_THRESHOLD
from smppcore.session_states import State
from smpphub.router import receipts

FINAL = {MessageState.DELIVERED, MessageState.EXPIRED, MessageState.DELETED, MessageState.UNDELIVERABLE,
         MessageState.UNKNOWN, MessageState.REJECTED}
BOUND = {State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX}


@pytest.mark.parametrize("state", list(MessageState))
def test_message_state_is_final_as_smpp_3_4_section_5_2_28_says(state: MessageState) -> None:
    assert state.is_final is (state in FINAL)


@pytest.mark.parametrize("state", list(State))
def test_session_state_is_bound_only_in_the_three_bound_states(state: State) -> None:
    assert state.is_bound is (state in BOUND)
    assert {state: 1}[state] == 1 and hash(state) == hash(state)  # hashed by identity, still a key


@pytest.mark.parametrize("esm_class", [0x00, 0x04, 0x08, 0x10, 0x20, 0x24, 0x40, 0x44, 0x60, 0x80, 0xC4])
def test_receipt_esm_class_masks_are_the_enums_values(esm_class: int) -> None:
    assert esm_class & receipts._TYPE_MASK == int(esm_class & EsmClass.TYPE_MASK)
    intermediate = esm_class & EsmClass.TYPE_MASK == EsmClass.TYPE_INTERMEDIATE_NOTIFICATION
    assert (esm_class & receipts._TYPE_MASK == receipts._INTERMEDIATE) is intermediate


@pytest.fixture
def gc_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_quiet_gc_moves_the_young_collection_out_and_keeps_the_older_ones(gc_restored: None) -> None:
    """What the hub, the simulator and the load generator's processes run once they are up."""
    _, middle, old = gc.get_threshold()
    smppcore.quiet_gc()
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, middle, old)
    assert gc.get_freeze_count() > 0 and gc.isenabled()


@pytest.mark.parametrize("kind", ["MessageRow", "Transition"])
def test_rows_and_transitions_are_not_tracked_by_the_cycle_collector(kind: str) -> None:
    from smpphub.router import lifecycle

    if kind == "MessageRow":
        obj: object = lifecycle.MessageRow(id="m", account="a", pdu=b"", route=["up"])
    else:
        obj = lifecycle.Transition(lifecycle.State.QUEUED, lifecycle.State.IN_FLIGHT)
    assert not gc.is_tracked(obj)
