"""query_sm and replace_sm answered from the record of what the simulator accepted.

Pure functions over a :class:`~simulator.records.Submit`: the engine finds the record
(``sim.by_id``) and answers with what these return. cancel_sm only ends the message
(the engine's ``_finalise``), so it stays there.
"""

from __future__ import annotations

import msgspec

from smppcore import CommandStatus, MessageState, Pdu, Tag

from .config import parse_state
from .receipts import naive_utc
from .records import Message, MessageLog, Submit

__all__ = ["query_response", "replace_response"]


def query_response(pdu: Pdu, record: Submit | None) -> Pdu:
    """The query_sm_resp for ``record``: its state and, once final, its date (ESME_RQUERYFAIL: unknown)."""
    if record is None:
        return pdu.make_response(command_status=CommandStatus.ESME_RQUERYFAIL)
    state = parse_state(record.state) or MessageState.ENROUTE
    final_date = ""
    if record.final_date is not None:
        from smppcore.smpptime import format_absolute

        final_date = format_absolute(naive_utc(record.final_date))
    return pdu.make_response(message_id=record.message_id, final_date=final_date, message_state=int(state),
                             error_code=0 if state in (MessageState.DELIVERED, MessageState.ENROUTE) else 1)


def replace_response(pdu: Pdu, record: Submit | None, messages: MessageLog) -> Pdu:
    """replace_sm: the record (and the recorded text of a one-part message) takes the new text."""
    if record is None or record.is_final:
        return pdu.make_response(command_status=CommandStatus.ESME_RREPLACEFAIL)
    old = record.pdu
    if hasattr(old, "short_message"):
        tlvs = {k: v for k, v in old.tlvs.items() if k != Tag.MESSAGE_PAYLOAD} if old.tlvs else old.tlvs
        record.pdu = msgspec.structs.replace(old, short_message=pdu.short_message, tlvs=tlvs)
    else:  # data_sm: the text is in message_payload
        record.pdu = msgspec.structs.replace(old, tlvs={**old.tlvs, Tag.MESSAGE_PAYLOAD: pdu.short_message})
    for item in reversed(messages._items):  # the recorded text follows, for a one-part message
        if item is record:
            break  # read from the record itself
        if item.__class__ is Message and record.message_id in item.message_ids:  # type: ignore[union-attr]
            if item.parts == 1:  # type: ignore[union-attr]
                item.payload = pdu.short_message  # type: ignore[union-attr]
            break
    return pdu.make_response()
