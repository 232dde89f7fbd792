"""replace_sm and query_sm reach a message that waits in the store only (scheduled past the hold horizon),
as cancel_sm does: the dispatcher takes it back from the store first (Controls.waiting_anywhere)."""

from __future__ import annotations

import pytest
from hubkit import hub_config, running_hub, simulator, wait_until

import smppcore
from smppcore import CommandStatus, MessageState
from smpphub.router.lifecycle import State

HOST = "127.0.0.1"
AN_HOUR_AHEAD = "000001000000000R"
TWO_SECONDS_AHEAD = "000000000002000R"


class Setup:
    """A hub holding only what is due within 5 s, its simulator upstream, and a bound ESME."""

    def __init__(self, hub, smsc, esme) -> None:
        self.hub, self.smsc, self.esme = hub, smsc, esme


@pytest.fixture
async def setup():
    smsc = await simulator()
    try:
        config = hub_config({"uk": smsc}, [{"prefix": "44", "upstreams": ["uk"]}], hold_horizon=5)
        async with running_hub(config) as hub:
            async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as esme:
                yield Setup(hub, smsc, esme)
    finally:
        await smsc.close()


async def test_replace_sm_reaches_a_message_waiting_in_the_store_only(setup) -> None:
    hub, smsc, esme = setup.hub, setup.smsc, setup.esme
    later = await esme.submit_sm(destination_addr="447700900001", short_message=b"old text",
                                 schedule_delivery_time=AN_HOUR_AHEAD)
    assert later.message_id not in hub.dispatcher.table  # the store only
    query = await esme.request(smppcore.QuerySm(message_id=later.message_id))
    assert query.command_status == 0 and query.message_state == MessageState.ENROUTE
    replaced = await esme.request(smppcore.ReplaceSm(
        message_id=later.message_id, short_message=b"new text", schedule_delivery_time=TWO_SECONDS_AHEAD))
    assert replaced.command_status == CommandStatus.ESME_ROK
    await wait_until(lambda: len(smsc.sim.submits) == 1, what="the replaced message sent")
    assert smsc.sim.submits[0].pdu.short_message == b"new text"
    await wait_until(lambda: (row := hub.dispatcher.table.get(later.message_id)) is None
                     or row.state is not State.SCHEDULED, what="it left")
    assert hub.status()["backlog"] == 0


async def test_replace_sm_of_an_unknown_or_sent_message_still_fails(setup) -> None:
    hub, smsc, esme = setup.hub, setup.smsc, setup.esme
    unknown = await (await esme.send(smppcore.ReplaceSm(message_id="nope", short_message=b"x")))
    assert unknown.command_status == CommandStatus.ESME_RREPLACEFAIL
    sent = await esme.submit_sm(destination_addr="447700900002", short_message=b"now")
    await wait_until(lambda: len(smsc.sim.submits) == 1, what="sent")
    await wait_until(lambda: hub.dispatcher.controls.waiting(sent.message_id) is None, what="left")
    late = await (await esme.send(smppcore.ReplaceSm(message_id=sent.message_id, short_message=b"x")))
    assert late.command_status == CommandStatus.ESME_RREPLACEFAIL
