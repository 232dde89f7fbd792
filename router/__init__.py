"""The routing hub (installed as ``smpphub.router``, run by ``smpphub serve``).

ESMEs bind to it and submit; it stores each message durably before answering,
routes it by destination to an upstream SMSC, retries and fails over, and brings the
receipts (and MO messages) back to the ESME that is owed them. Its parts:
``lifecycle`` (one message's states and transitions, sans-IO), ``messages`` (the
in-memory table of messages, their timers and segment groups), ``dispatch`` (wire
events in, lifecycle events out, acting on the resulting states), ``esme`` (binds and
submits from ESMEs), ``upstream`` (the pools of binds to each SMSC), ``delivery``
(receipts and MO on their way to the ESMEs), ``store`` (memory and SQLite), ``routing``
and ``config`` (hub.toml), ``msglog`` (message and access logs), ``hub`` and ``cli``
(the process).
"""
