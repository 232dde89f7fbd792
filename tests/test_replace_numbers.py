"""replace_sm of a waiting message stores its new PDU with sequence_number and command_status 0.

The message's PDU is the submit as the ESME sent it (router.esme._message: no copy with its
numbers zeroed), so replace_sm zeroes them in the PDU it makes: the stored bytes of a
replaced message are what they were before, whatever number the submit came with.
"""

from __future__ import annotations

import struct

from hubkit import hub_config, running_hub, simulator

import smppcore
from smppcore import CommandStatus, decode

HOST = "127.0.0.1"
HALF_A_MINUTE_AHEAD = "000000000030000R"


async def test_a_replaced_message_is_stored_with_its_numbers_zero() -> None:
    smsc = await simulator()
    try:
        config = hub_config({"uk": smsc}, [{"prefix": "44", "upstreams": ["uk"]}])
        async with running_hub(config) as hub:
            async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as esme:
                for _ in range(3):  # the submit below comes with a sequence number well past 1
                    await esme.request(smppcore.EnquireLink())
                later = await esme.submit_sm(destination_addr="447700900001", short_message=b"old text",
                                             schedule_delivery_time=HALF_A_MINUTE_AHEAD)
                out = hub.dispatcher.controls.waiting(later.message_id)  # held: due within the hold horizon
                assert out is not None and out.pdu.sequence_number > 1  # the ESME's, as it came
                replaced = await esme.request(smppcore.ReplaceSm(message_id=later.message_id,
                                                                 short_message=b"new text"))
                assert replaced.command_status == CommandStatus.ESME_ROK
                row = hub.dispatcher.table.get(later.message_id)
                assert row is not None
                assert struct.unpack_from(">II", row.pdu, 8) == (0, 0)  # command_status, sequence_number
                assert decode(row.pdu).short_message == b"new text"
    finally:
        await smsc.close()
