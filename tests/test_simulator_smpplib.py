"""The simulator's key behaviours through smpplib, an independent client, against the smsc_sync fixture."""

from __future__ import annotations

import time

import pytest
from simkit import TO

from smppcore import CommandStatus
from smppcore.receipt import parse_receipt


def _smpplib_client(smsc_sync):
    import smpplib.client

    client = smpplib.client.Client(smsc_sync.host, smsc_sync.port, timeout=1, allow_unknown_opt_params=True)
    client.connect()
    return client


def _read_until(client, done, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "smpplib: not within the time"
        client.read_once()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


@pytest.mark.smsc(accounts=[{"system_id": "acme", "password": "secret", "bind_types": ["trx"]}])
def test_smpplib_bind_refusals_and_bind(smsc_sync):
    import smpplib.exceptions

    for kw, status in ((dict(system_id="acme", password="wrong"), CommandStatus.ESME_RINVPASWD),
                       (dict(system_id="nobody", password="secret"), CommandStatus.ESME_RINVSYSID)):
        client = _smpplib_client(smsc_sync)
        try:
            with pytest.raises(smpplib.exceptions.PDUError) as info:
                client.bind_transceiver(**kw)
            assert info.value.args[1] == status
        finally:
            client.disconnect()
    client = _smpplib_client(smsc_sync)
    try:
        with pytest.raises(smpplib.exceptions.PDUError) as info:  # acme may bind as a transceiver only
            client.bind_transmitter(system_id="acme", password="secret")
        assert info.value.args[1] == CommandStatus.ESME_RBINDFAIL
        resp = client.bind_transceiver(system_id="acme", password="secret")
        assert resp.status == 0 and _text(resp.system_id) == "smpphub-sim"
        client.unbind()
    finally:
        client.disconnect()
    assert smsc_sync.stats.bind_refused == 3 and smsc_sync.stats.binds == 4


@pytest.mark.smsc(errors={"rules": [{"destination": "999$", "status": "ESME_RINVDSTADR"}]},
                  receipts={"final_states": {"UNDELIV": 1}})
def test_smpplib_submit_receipt_error_rule_and_mo(smsc_sync):
    import smpplib.exceptions

    client = _smpplib_client(smsc_sync)
    sent, received = [], []
    client.set_message_sent_handler(lambda pdu: sent.append(pdu))
    client.set_message_received_handler(lambda pdu: received.append(pdu))
    try:
        client.bind_transceiver(system_id="esme", password="pw")
        # an error rule
        client.send_message(source_addr="Acme", destination_addr="447700900999", short_message=b"refused")
        with pytest.raises(smpplib.exceptions.PDUError) as info:
            _read_until(client, lambda: False)
        assert info.value.args[1] == CommandStatus.ESME_RINVDSTADR
        # a submit and its receipt
        client.send_message(source_addr_ton=5, source_addr="Acme", dest_addr_ton=1, dest_addr_npi=1,
                            destination_addr=TO, short_message=b"via smpplib", registered_delivery=1)
        _read_until(client, lambda: sent and received)
        message_id = _text(sent[0].message_id)
        receipt = received[0]
        assert _text(receipt.receipted_message_id) == message_id
        assert int(receipt.esm_class) == 0x04 and _text(receipt.source_addr) == TO and _text(receipt.destination_addr) == "Acme"
        assert parse_receipt(receipt.short_message).stat == "UNDELIV"
        # an MO, from the network
        smsc_sync.send_mo("447700900777", "12345", "MO to smpplib")
        _read_until(client, lambda: len(received) == 2)
        assert received[1].short_message == b"MO to smpplib" and _text(received[1].source_addr) == "447700900777"
        client.unbind()
    finally:
        client.disconnect()
    (message,) = smsc_sync.wait_for_messages(1)
    assert message.text == "via smpplib" and list(message.message_ids) == [message_id]
    stats = smsc_sync.stats
    assert stats.accepted == 1 and stats.rejected == {"ESME_RINVDSTADR": 1}
    assert stats.receipts_acked == 1 and stats.mo_acked == 1
    assert smsc_sync.submits[0].state == "UNDELIV"


def test_smpplib_fail_next_and_long_text(smsc_sync):
    import smpplib.consts
    import smpplib.exceptions
    import smpplib.gsm

    with pytest.raises(ValueError):
        smsc_sync.fail_next("NOT_A_STATUS")  # raised here, in the test's thread
    smsc_sync.fail_next("ESME_RTHROTTLED")
    client = _smpplib_client(smsc_sync)
    sent = []
    client.set_message_sent_handler(lambda pdu: sent.append(pdu))
    try:
        client.bind_transmitter(system_id="esme", password="pw")
        client.send_message(destination_addr=TO, short_message=b"throttled")
        with pytest.raises(smpplib.exceptions.PDUError) as info:
            _read_until(client, lambda: False)
        assert info.value.args[1] == CommandStatus.ESME_RTHROTTLED
        text = "smpplib splits this long text by itself, with a UDH on each part. " * 4
        parts, coding, esm_class = smpplib.gsm.make_parts(text)
        for part in parts:
            client.send_message(destination_addr=TO, short_message=part, data_coding=coding, esm_class=esm_class)
        _read_until(client, lambda: len(sent) == len(parts))
        client.unbind()
    finally:
        client.disconnect()
    (message,) = smsc_sync.wait_for_messages(1)
    assert message.text == text and message.parts == len(parts) > 1
