"""Who may bind: the configured accounts, their passwords, bind types and bind limits.

One pure function, so the rule reads in one place; the engine counts the binds.
"""

from __future__ import annotations

import hmac

from smppcore import CommandId, CommandStatus, Pdu

from .config import Account

__all__ = ["bind_status", "BIND_NAMES"]

BIND_NAMES = {CommandId.BIND_TRANSMITTER: "tx", CommandId.BIND_RECEIVER: "rx", CommandId.BIND_TRANSCEIVER: "trx"}


def bind_status(accounts: dict[str, Account], bind: Pdu, bound_now: int, default_limit: int) -> int:
    """The bind's command_status (0: accepted). No accounts: any system_id binds.

    ``bound_now`` is how many binds ``bind.system_id`` has already. The password is
    compared in constant time.
    """
    limit = default_limit
    if accounts:
        account = accounts.get(bind.system_id)
        if account is None:
            return CommandStatus.ESME_RINVSYSID
        if not hmac.compare_digest(account.password.encode(), bind.password.encode()):
            return CommandStatus.ESME_RINVPASWD
        if BIND_NAMES[bind.command_id] not in account.bind_types:
            return CommandStatus.ESME_RBINDFAIL
        limit = account.max_binds or default_limit
    if bound_now >= limit:
        return CommandStatus.ESME_RBINDFAIL
    return 0
